/* served.c — domains of their own that modules serve (tern/module.h, "domains"): a MUC
 * service at conference.example.org, an upload service, an external component's gateway.
 *
 * One table for the whole server, domain → entry: a domain is served at most once, and never
 * when it is a host. An entry belongs to the module that registered it (owner_of() on its
 * handler) and goes when that module unloads (served_remove_owned(), from host_remove_owned()).
 * The router consults the table for a destination that is no host, and for the 'from' of a
 * stanza a module sends, so that both are routed like a local host's. */
#include "host/served.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "host/owner.h"
#include "process/server.h"
#include "tern/hashmap.h"
#include "tern/jid.h"
#include "tern/log.h"

struct served_domain {
    char *domain;                 /* prepared */
    char *name;                   /* for disco#items; may be NULL */
    tern_host *host;
    tern_domain_handler fn;
    void *data;
    const module_instance *owner;
};

static hashmap *table;            /* domain → served_domain */

bool served_any(void)
{
    return table != NULL;
}

served_domain *served_find(const char *domain)
{
    return table && domain ? hashmap_get(table, domain) : NULL;
}

tern_host *served_host(const served_domain *sd)
{
    return sd->host;
}

void served_deliver(const served_domain *sd, const tern_stanza_event *ev)
{
    const module_instance *prev = owner_enter(sd->host, sd->owner);
    sd->fn(ev, sd->data);
    owner_leave(sd->host, prev);
}

int tern_serve_domain(tern_host *host, const char *domain, const char *name,
                      tern_domain_handler fn, void *data)
{
    char *prepared = NULL;
    if (!fn || !domain || jid_prep_domain(domain, &prepared) != 0) {
        log_error(0, "%s: cannot serve '%s': not a valid domain", host->name,
                  domain ? domain : "(null)");
        free(prepared);
        return -1;
    }
    if (server_find_host(prepared) || served_find(prepared)) {
        log_error(0, "%s: cannot serve %s: it is %s", host->name, prepared,
                  server_find_host(prepared) ? "a host" : "served already");
        free(prepared);
        return -1;
    }
    if (!table)
        table = hashmap_new();
    served_domain *sd = xcalloc(1, sizeof *sd);
    sd->domain = prepared;
    sd->name = name ? xstrdup(name) : NULL;
    sd->host = host;
    sd->fn = fn;
    sd->data = data;
    sd->owner = owner_of(host, (const void *)fn);
    hashmap_put(table, prepared, sd);
    log_info(0, "%s: serving %s", host->name, prepared);
    return 0;
}

static void entry_free(served_domain *sd)
{
    free(sd->domain);
    free(sd->name);
    free(sd);
}

void tern_unserve_domain(tern_host *host, const char *domain)
{
    char *prepared = NULL;
    if (domain && jid_prep_domain(domain, &prepared) == 0) {
        served_domain *sd = served_find(prepared);
        if (sd && sd->host == host) {
            hashmap_remove(table, prepared);
            entry_free(sd);
        }
    }
    free(prepared);
}

typedef struct removal {
    tern_host *host;
    const module_instance *owner;
    served_domain **doomed;
    size_t n;
} removal;

static void collect(void *ctx, const char *domain, void *value)
{
    (void)domain;
    removal *r = ctx;
    served_domain *sd = value;
    if (sd->host == r->host && (!r->owner || sd->owner == r->owner)) {
        r->doomed = xrealloc(r->doomed, (r->n + 1) * sizeof *r->doomed);
        r->doomed[r->n++] = sd;
    }
}

void served_remove_owned(tern_host *host, const module_instance *owner)
{
    if (!table)
        return;
    removal r = { host, owner, NULL, 0 };
    hashmap_each(table, collect, &r); /* removal while iterating is not allowed: collect first */
    for (size_t i = 0; i < r.n; i++) {
        hashmap_remove(table, r.doomed[i]->domain);
        log_info(0, "%s: no longer serving %s", host->name, r.doomed[i]->domain);
        entry_free(r.doomed[i]);
    }
    free(r.doomed);
    if (hashmap_count(table) == 0) {
        hashmap_free(table);
        table = NULL;
    }
}

typedef struct listing {
    tern_host *host;
    void (*fn)(void *ctx, const char *domain, const char *name);
    void *ctx;
} listing;

static void list_one(void *ctx, const char *domain, void *value)
{
    listing *l = ctx;
    served_domain *sd = value;
    if (sd->host == l->host)
        l->fn(l->ctx, domain, sd->name);
}

void tern_served_each(tern_host *host, void (*fn)(void *ctx, const char *domain,
                                                   const char *name),
                      void *ctx)
{
    if (!table)
        return;
    listing l = { host, fn, ctx };
    hashmap_each(table, list_one, &l);
}
