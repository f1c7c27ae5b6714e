/* host.c — virtual hosts: creation, registries, timers, and the host half of the module API. */
#include "host/host.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "core/config_lists.h"
#include "core/config_values.h"
#include "core/util.h"
#include "host/hooks.h"
#include "host/owner.h"
#include "host/served.h"
#include "net/conn.h"
#include "net/listen.h"
#include "process/server.h"
#include "tern_build.h"

struct registry_item {
    char *registry;
    char *item;
    const void *data;
    const void *owner;
    registry_item *next;
};

/* A listener a module opened (tern_listen): closed with the module. */
struct host_listener {
    listener *list;             /* one per address */
    void (*fn)(int fd, void *data);
    void *data;
    const void *owner;
    host_listener *next;
};

struct tern_timer {
    tern_host *host;
    struct event *ev;
    bool repeat;
    void (*fn)(void *data);
    void *data;
    const void *owner;
    tern_timer *prev, *next;
};

tern_host *host_new(const config_host *cfg)
{
    tern_host *h = xcalloc(1, sizeof *h);
    h->name = xstrdup(cfg->name);
    h->cfg = cfg;
    h->hooks = hashmap_new();
    h->users = hashmap_new();
    return h;
}

static void free_user(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

void host_free(tern_host *host)
{
    if (!host)
        return;
    host_remove_owned(host, NULL);
    hooks_free_all(host);
    hashmap_each(host->users, free_user, NULL);
    hashmap_free(host->users);
    free(host->load_error);
    free(host->name);
    free(host);
}

user_sessions *host_user(tern_host *host, const char *bare)
{
    return hashmap_get(host->users, bare);
}

/* ---- registries ---- */

int tern_registry_add(tern_host *host, const char *registry, const char *item, const void *data)
{
    registry_item *r = xcalloc(1, sizeof *r);
    r->registry = xstrdup(registry);
    r->item = xstrdup(item);
    r->data = data;
    r->owner = owner_of(host, data);
    /* Append, so collectors see items in registration order. */
    registry_item **at = &host->registry;
    while (*at)
        at = &(*at)->next;
    *at = r;
    return 0;
}

void tern_registry_each(tern_host *host, const char *registry, tern_registry_fn fn, void *ctx)
{
    for (registry_item *r = host->registry; r; r = r->next)
        if (strcmp(r->registry, registry) == 0)
            fn(ctx, r->item, r->data);
}

void tern_disco_add_feature(tern_host *host, const char *var)
{
    tern_registry_add(host, TERN_REG_DISCO_FEATURE, var, NULL);
}

void tern_metric_add(tern_host *host, const tern_metric *m)
{
    tern_registry_add(host, TERN_REG_METRIC, m->name, m);
}

void tern_disco_add_extension(tern_host *host, const char *form_type,
                              const tern_disco_extension *ext)
{
    tern_registry_add(host, TERN_REG_DISCO_EXTENSION, form_type, ext);
}

void tern_disco_add_identity(tern_host *host, const char *category, const char *type,
                             const char *name)
{
    char *item = xasprintf("%s/%s", category, type);
    tern_registry_add(host, TERN_REG_DISCO_IDENTITY, item, name);
    free(item);
}

#define SERVICE_REGISTRY "service"

typedef struct service_lookup {
    const char *name;
    const void *api;
} service_lookup;

static void match_service(void *ctx, const char *item, const void *data)
{
    service_lookup *l = ctx;
    if (!l->api && strcmp(item, l->name) == 0)
        l->api = data;
}

void tern_service_provide(tern_host *host, const char *name, const void *api)
{
    tern_registry_add(host, SERVICE_REGISTRY, name, api);
}

const void *tern_service_get(tern_host *host, const char *name)
{
    service_lookup l = { name, NULL };
    tern_registry_each(host, SERVICE_REGISTRY, match_service, &l);
    return l.api;
}

/* ---- timers ---- */

static void unlink_timer(tern_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->host->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    event_free(t->ev);
    free(t);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    tern_timer *t = arg;
    (void)fd;
    (void)what;
    bool repeat = t->repeat;
    void (*fn)(void *) = t->fn;
    void *data = t->data;
    tern_host *host = t->host;
    const module_instance *owner = t->owner;
    if (!repeat)
        unlink_timer(t); /* one-shot timers are gone before their function runs */
    const module_instance *prev = owner_enter(host, owner);
    fn(data);
    owner_leave(host, prev);
}

tern_timer *tern_timer_add(tern_host *host, unsigned ms, bool repeat, void (*fn)(void *data),
                           void *data)
{
    tern_timer *t = xcalloc(1, sizeof *t);
    t->host = host;
    t->repeat = repeat;
    t->fn = fn;
    t->data = data;
    t->owner = owner_of(host, (const void *)fn);
    t->ev = event_new(server.base, -1, repeat ? EV_PERSIST : 0, on_timer, t);
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_add(t->ev, &tv);
    t->next = host->timers;
    if (t->next)
        t->next->prev = t;
    host->timers = t;
    return t;
}

void tern_timer_cancel(tern_timer *timer)
{
    if (timer)
        unlink_timer(timer);
}

/* ---- listeners of modules ---- */

static void module_accept(evutil_socket_t fd, bool tls, void *arg)
{
    (void)tls;
    host_listener *hl = arg;
    hl->fn(fd, hl->data);
}

int tern_listen(tern_host *host, const char *addresses, const char *label,
                void (*fn)(int fd, void *data), void *data, char *err, size_t err_len)
{
    config_addr_list addrs = { 0 };
    char *copy = xstrdup(addresses);
    int rc = 0;
    for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w && rc == 0;
         w = strtok_r(NULL, " \t", &save)) {
        config_addr a;
        const char *why = NULL;
        if (config_parse_addr_why(w, &a, &why) != 0) {
            snprintf(err, err_len, "%s: %s", w, why ? why : "not an address");
            rc = -1;
        } else {
            config_addrs_add(&addrs, &a);
        }
    }
    free(copy);
    if (rc == 0 && addrs.n == 0) {
        snprintf(err, err_len, "no address to listen on");
        rc = -1;
    }
    host_listener *hl = NULL;
    if (rc == 0) {
        hl = xcalloc(1, sizeof *hl);
        hl->fn = fn;
        hl->data = data;
        hl->owner = owner_of(host, (const void *)fn);
        rc = listen_add(&hl->list, server.base, &addrs, module_accept, false, hl, label, err,
                        err_len);
    }
    free(addrs.items);
    if (rc != 0) {
        if (hl)
            listen_free_all(hl->list);
        free(hl);
        return -1;
    }
    hl->next = host->listeners;
    host->listeners = hl;
    return 0;
}

void host_close_listeners(tern_host *host)
{
    while (host->listeners) {
        host_listener *hl = host->listeners;
        host->listeners = hl->next;
        listen_free_all(hl->list);
        free(hl);
    }
}

conn *conn_accept(int fd, const conn_handlers *h, void *ctx, uint64_t id)
{
    conn *c = conn_new(server.base, fd, h, ctx, id ? id : server_next_id());
    const config_send_queue *q = &server.cfg->c2s_send_queue;
    conn_set_send_limits(c, &(conn_send_limits){ q->high_water, q->max, q->timeout });
    return c;
}

/* ---- ownership ---- */

void host_remove_owned(tern_host *host, const module_instance *owner)
{
    if (owner)
        hooks_remove_owner(host, owner);
    served_remove_owned(host, owner);
    registry_item **at = &host->registry;
    while (*at) {
        registry_item *r = *at;
        if (!owner || r->owner == owner) {
            *at = r->next;
            free(r->registry);
            free(r->item);
            free(r);
        } else {
            at = &r->next;
        }
    }
    host_listener **at_l = &host->listeners;
    while (*at_l) {
        host_listener *hl = *at_l;
        if (!owner || hl->owner == owner) {
            *at_l = hl->next;
            listen_free_all(hl->list);
            free(hl);
        } else {
            at_l = &hl->next;
        }
    }
    tern_timer *t = host->timers;
    while (t) {
        tern_timer *next = t->next;
        if (!owner || t->owner == owner)
            unlink_timer(t);
        t = next;
    }
}

/* ---- the host half of the module API ---- */

const char *tern_host_name(const tern_host *host) { return host->name; }

bool tern_host_registration_open(const tern_host *host) { return host->cfg->registration; }

tern_storage *tern_host_storage(tern_host *host)
{
    (void)host;
    return server.storage;
}

bool tern_host_is_admin(const tern_host *host, const char *bare_jid)
{
    (void)host;
    return config_is_admin(server.cfg, bare_jid);
}

size_t tern_host_session_count(const tern_host *host) { return host->n_sessions; }

const char *tern_server_version(void) { return PACKAGE_VERSION; }

const char *tern_server_name(void) { return "tern"; }
