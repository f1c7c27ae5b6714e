/* hooks.c — named events on a per-host bus. Each event name maps to a list of handlers sorted
 * by descending priority (insertion order among equals), so running an event is one hash lookup
 * and a walk of exactly the handlers that asked for it. Delivery and element hooks, which run
 * on every stanza a session receives or on rare stream elements, are plain lists on the host.
 *
 * Names are checked when a hook is added: a misspelt event would never fire, so it is refused,
 * logged, and (during a module's load) fails the load naming it. Every handler runs with its
 * module marked as running (owner.h), so what it registers belongs to that module. */
#include "host/hooks.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "host/owner.h"

typedef enum hook_kind {
    HOOK_STANZA, HOOK_SESSION, HOOK_FEATURES, HOOK_ACCOUNT, HOOK_DELIVER, HOOK_ELEMENT,
    HOOK_PREAUTH_IQ, HOOK_PREAUTH_FEATURES,
} hook_kind;

struct hook {
    hook_kind kind;
    int priority;
    union {
        tern_stanza_handler stanza;
        tern_session_handler session;
        tern_features_handler features;
        tern_account_handler account;
        tern_deliver_handler deliver;
        tern_element_handler element;
        tern_preauth_iq_handler preauth_iq;
        tern_preauth_features_handler preauth_features;
    } fn;
    void *data;
    const module_instance *owner;
    char *xmlns, *name; /* HOOK_ELEMENT: what it claims (name NULL: the whole namespace);
                         * HOOK_PREAUTH_IQ: the payload namespace */
    hook *next;
};

#define FEATURES_EVENT "stream-features"
#define PREAUTH_FEATURES_EVENT "stream-features-preauth"

/* ---- event names ---- */

static const char *const stanza_kinds[] = { "message", "presence", "iq-get", "iq-set",
                                            "iq-result", "iq-error", NULL };
static const char *const destinations[] = { "host", "bare", "full", "remote", NULL };
static const char *const filter_events[] = { "stanza/in", "message/out", "presence/out",
                                             "iq/out", "presence/broadcast", NULL };
static const char *const session_events[] = { "session/bound", "session/available",
                                              "session/unavailable", "session/closed", NULL };
static const char *const account_events[] = { "account/created", "account/deleting",
                                              "account/deleted", NULL };

static bool in_list(const char *const *list, const char *s, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && memcmp(*list, s, len) == 0)
            return true;
    return false;
}

/* "iq-get/host/NS:EL" for requests to local destinations (the router names the payload),
 * "<kind>/<dest>" otherwise; and the filters. */
static bool stanza_event_known(const char *event)
{
    if (in_list(filter_events, event, strlen(event)))
        return true;
    const char *slash = strchr(event, '/');
    if (!slash || !in_list(stanza_kinds, event, (size_t)(slash - event)))
        return false;
    bool request = strncmp(event, "iq-get/", 7) == 0 || strncmp(event, "iq-set/", 7) == 0;
    const char *dest = slash + 1;
    const char *payload = strchr(dest, '/');
    size_t dest_len = payload ? (size_t)(payload - dest) : strlen(dest);
    if (!in_list(destinations, dest, dest_len))
        return false;
    bool remote = dest_len == 6 && memcmp(dest, "remote", 6) == 0;
    if (!request || remote)
        return payload == NULL;
    /* The payload is "namespace:element"; the namespace may itself hold ':' and '/'. */
    const char *colon = payload ? strrchr(payload + 1, ':') : NULL;
    return colon && colon > payload + 1 && colon[1] && !strchr(colon + 1, '/');
}

static int refuse(tern_host *host, const char *what, const char *event, const char *expected)
{
    const module_instance *m = host->running;
    log_error(0, "host %s: %s%s hooks unknown %s \"%s\" (%s); it would never run", host->name,
              m ? "module " : "the core", m ? m->def->name : "", what, event, expected);
    if (m && m == host->loading && !host->load_error)
        host->load_error = xasprintf("it hooks unknown %s \"%s\" (%s)", what, event, expected);
    return -1;
}

/* ---- adding ---- */

static hook *hook_new(tern_host *host, hook_kind kind, int priority, const void *fn, void *data)
{
    hook *h = xcalloc(1, sizeof *h);
    h->kind = kind;
    h->priority = priority;
    h->data = data;
    h->owner = owner_of(host, fn);
    return h;
}

static void insert_sorted(hook **head, hook *h)
{
    hook **at = head;
    while (*at && (*at)->priority >= h->priority)
        at = &(*at)->next;
    h->next = *at;
    *at = h;
}

static int add_named(tern_host *host, const char *event, hook *h)
{
    hook *head = hashmap_get(host->hooks, event);
    insert_sorted(&head, h);
    hashmap_put(host->hooks, event, head);
    return 0;
}

int tern_hook_stanza(tern_host *host, const char *event, int priority, tern_stanza_handler fn,
                     void *data)
{
    if (!stanza_event_known(event))
        return refuse(host, "stanza event", event,
                      "KIND/DEST with KIND message, presence, iq-get, iq-set, iq-result or "
                      "iq-error and DEST host, bare, full or remote; iq-get and iq-set to "
                      "host, bare or full name the payload as KIND/DEST/NAMESPACE:ELEMENT; "
                      "or a filter: stanza/in, message/out, presence/out, iq/out, "
                      "presence/broadcast");
    hook *h = hook_new(host, HOOK_STANZA, priority, (const void *)fn, data);
    h->fn.stanza = fn;
    return add_named(host, event, h);
}

int tern_hook_iq(tern_host *host, const char *type, const char *destination, const char *xmlns,
                 const char *element, tern_stanza_handler fn, void *data)
{
    char event[512];
    int n = snprintf(event, sizeof event, "iq-%s/%s/%s:%s", type, destination, xmlns, element);
    if (n < 0 || (size_t)n >= sizeof event)
        return refuse(host, "stanza event", "(too long)", "an iq hook of at most 511 bytes");
    return tern_hook_stanza(host, event, TERN_PRIORITY_DEFAULT, fn, data);
}

int tern_hook_session(tern_host *host, const char *event, tern_session_handler fn, void *data)
{
    if (!in_list(session_events, event, strlen(event)))
        return refuse(host, "session event", event,
                      "session/bound, session/available, session/unavailable or session/closed");
    hook *h = hook_new(host, HOOK_SESSION, TERN_PRIORITY_DEFAULT, (const void *)fn, data);
    h->fn.session = fn;
    return add_named(host, event, h);
}

int tern_hook_features(tern_host *host, tern_features_handler fn, void *data)
{
    hook *h = hook_new(host, HOOK_FEATURES, TERN_PRIORITY_DEFAULT, (const void *)fn, data);
    h->fn.features = fn;
    return add_named(host, FEATURES_EVENT, h);
}

int tern_hook_account(tern_host *host, const char *event, tern_account_handler fn, void *data)
{
    if (!in_list(account_events, event, strlen(event)))
        return refuse(host, "account event", event,
                      "account/created, account/deleting or account/deleted");
    hook *h = hook_new(host, HOOK_ACCOUNT, TERN_PRIORITY_DEFAULT, (const void *)fn, data);
    h->fn.account = fn;
    return add_named(host, event, h);
}

int tern_hook_deliver(tern_host *host, int priority, tern_deliver_handler fn, void *data)
{
    hook *h = hook_new(host, HOOK_DELIVER, priority, (const void *)fn, data);
    h->fn.deliver = fn;
    insert_sorted(&host->deliver_hooks, h);
    return 0;
}

int tern_hook_element(tern_host *host, const char *xmlns, const char *name,
                      tern_element_handler fn, void *data)
{
    if (!xmlns || !*xmlns || strcmp(xmlns, NS_CLIENT) == 0 || (name && !*name))
        return refuse(host, "stream element", xmlns ? xmlns : "(no namespace)",
                      "a namespace other than jabber:client, and a name or NULL");
    hook *h = hook_new(host, HOOK_ELEMENT, TERN_PRIORITY_DEFAULT, (const void *)fn, data);
    h->fn.element = fn;
    h->xmlns = xstrdup(xmlns);
    h->name = name ? xstrdup(name) : NULL;
    insert_sorted(&host->element_hooks, h);
    return 0;
}

int tern_hook_preauth_iq(tern_host *host, const char *xmlns, tern_preauth_iq_handler fn,
                         void *data)
{
    if (!xmlns || !*xmlns)
        return refuse(host, "pre-authentication iq", "(no namespace)", "a payload namespace");
    hook *h = hook_new(host, HOOK_PREAUTH_IQ, TERN_PRIORITY_DEFAULT, (const void *)fn, data);
    h->fn.preauth_iq = fn;
    h->xmlns = xstrdup(xmlns);
    insert_sorted(&host->preauth_hooks, h);
    return 0;
}

int tern_hook_preauth_features(tern_host *host, tern_preauth_features_handler fn, void *data)
{
    hook *h = hook_new(host, HOOK_PREAUTH_FEATURES, TERN_PRIORITY_DEFAULT, (const void *)fn,
                       data);
    h->fn.preauth_features = fn;
    return add_named(host, PREAUTH_FEATURES_EVENT, h);
}

/* ---- running ---- */

void hooks_run_account(tern_host *host, const char *event, const char *bare)
{
    for (hook *h = hashmap_get(host->hooks, event); h; h = h->next) {
        const module_instance *prev = owner_enter(host, h->owner);
        h->fn.account(host, bare, h->data);
        owner_leave(host, prev);
    }
}

tern_event_result hooks_run_stanza(tern_host *host, const char *event,
                                   const tern_stanza_event *ev)
{
    for (hook *h = hashmap_get(host->hooks, event); h; h = h->next) {
        const module_instance *prev = owner_enter(host, h->owner);
        tern_event_result r = h->fn.stanza(ev, h->data);
        owner_leave(host, prev);
        if (r == TERN_HANDLED)
            return TERN_HANDLED;
    }
    return TERN_PASS;
}

void hooks_run_session(tern_host *host, const char *event, tern_session *session)
{
    for (hook *h = hashmap_get(host->hooks, event); h; h = h->next) {
        const module_instance *prev = owner_enter(host, h->owner);
        h->fn.session(session, h->data);
        owner_leave(host, prev);
    }
}

void hooks_run_features(tern_host *host, tern_session *session, tern_xml *features)
{
    for (hook *h = hashmap_get(host->hooks, FEATURES_EVENT); h; h = h->next) {
        const module_instance *prev = owner_enter(host, h->owner);
        h->fn.features(session, features, h->data);
        owner_leave(host, prev);
    }
}

tern_event_result hooks_run_deliver(tern_host *host, tern_session *session,
                                    const tern_xml *stanza, int below)
{
    for (hook *h = host->deliver_hooks; h; h = h->next) {
        if (h->priority >= below)
            continue;
        const module_instance *prev = owner_enter(host, h->owner);
        tern_event_result r = h->fn.deliver(session, stanza, h->data);
        owner_leave(host, prev);
        if (r == TERN_HANDLED)
            return TERN_HANDLED;
    }
    return TERN_PASS;
}

tern_event_result hooks_run_element(tern_host *host, tern_session *session,
                                    const tern_xml *element)
{
    const char *ns = xml_ns(element), *name = xml_name(element);
    for (hook *h = host->element_hooks; h; h = h->next) {
        if (strcmp(h->xmlns, ns) != 0 || (h->name && strcmp(h->name, name) != 0))
            continue;
        const module_instance *prev = owner_enter(host, h->owner);
        tern_event_result r = h->fn.element(session, element, h->data);
        owner_leave(host, prev);
        if (r == TERN_HANDLED)
            return TERN_HANDLED;
    }
    return TERN_PASS;
}

tern_xml *hooks_run_preauth_iq(const tern_preauth *stream, const tern_xml *iq, bool *claimed)
{
    tern_host *host = stream->host;
    const tern_xml *payload = xml_first_element(iq);
    *claimed = false;
    for (hook *h = payload ? host->preauth_hooks : NULL; h; h = h->next) {
        if (strcmp(h->xmlns, xml_ns(payload)) != 0)
            continue;
        *claimed = true;
        const module_instance *prev = owner_enter(host, h->owner);
        tern_xml *reply = h->fn.preauth_iq(stream, iq, h->data);
        owner_leave(host, prev);
        if (reply)
            return reply;
    }
    return NULL;
}

void hooks_run_preauth_features(const tern_preauth *stream, tern_xml *features)
{
    tern_host *host = stream->host;
    for (hook *h = hashmap_get(host->hooks, PREAUTH_FEATURES_EVENT); h; h = h->next) {
        const module_instance *prev = owner_enter(host, h->owner);
        h->fn.preauth_features(stream, features, h->data);
        owner_leave(host, prev);
    }
}

/* ---- removing ---- */

static void free_hook(hook *h)
{
    free(h->xmlns);
    free(h->name);
    free(h);
}

static void remove_from(hook **head, const module_instance *owner, bool all)
{
    hook **at = head;
    while (*at) {
        if (all || (*at)->owner == owner) {
            hook *dead = *at;
            *at = dead->next;
            free_hook(dead);
        } else {
            at = &(*at)->next;
        }
    }
}

typedef struct remove_ctx {
    tern_host *host;
    const module_instance *owner;
    bool all;
} remove_ctx;

static void remove_from_named(void *arg, const char *event, void *value)
{
    remove_ctx *rc = arg;
    hook *head = value;
    remove_from(&head, rc->owner, rc->all);
    /* Replacing a value while iterating is safe: the slot stays where it is. */
    hashmap_put(rc->host->hooks, event, head);
}

static void remove_hooks(tern_host *host, const module_instance *owner, bool all)
{
    remove_ctx rc = { host, owner, all };
    hashmap_each(host->hooks, remove_from_named, &rc);
    remove_from(&host->deliver_hooks, owner, all);
    remove_from(&host->element_hooks, owner, all);
    remove_from(&host->preauth_hooks, owner, all);
}

void hooks_remove_owner(tern_host *host, const module_instance *owner)
{
    remove_hooks(host, owner, false);
}

void hooks_free_all(tern_host *host)
{
    remove_hooks(host, NULL, true);
    hashmap_free(host->hooks);
    host->hooks = NULL;
}
