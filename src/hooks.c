/* hooks.c — named events on a per-host bus. Each event name maps to a list of handlers sorted
 * by descending priority (insertion order among equals), so running an event is one hash lookup
 * and a walk of exactly the handlers that asked for it. */
#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum hook_kind { HOOK_STANZA, HOOK_SESSION, HOOK_FEATURES, HOOK_ACCOUNT } hook_kind;

struct hook {
    hook_kind kind;
    int priority;
    union {
        tern_stanza_handler stanza;
        tern_session_handler session;
        tern_features_handler features;
        tern_account_handler account;
    } fn;
    void *data;
    const void *owner;
    hook *next;
};

#define FEATURES_EVENT "stream-features"

static int add_hook(tern_host *host, const char *event, hook *h)
{
    h->owner = host->loading;
    hook *head = hashmap_get(host->hooks, event);
    hook **at = &head;
    while (*at && (*at)->priority >= h->priority)
        at = &(*at)->next;
    h->next = *at;
    *at = h;
    hashmap_put(host->hooks, event, head);
    return 0;
}

int tern_hook_stanza(tern_host *host, const char *event, int priority, tern_stanza_handler fn,
                     void *data)
{
    hook *h = xcalloc(1, sizeof *h);
    h->kind = HOOK_STANZA;
    h->priority = priority;
    h->fn.stanza = fn;
    h->data = data;
    return add_hook(host, event, h);
}

int tern_hook_iq(tern_host *host, const char *type, const char *destination, const char *xmlns,
                 const char *element, tern_stanza_handler fn, void *data)
{
    char event[512];
    int n = snprintf(event, sizeof event, "iq-%s/%s/%s:%s", type, destination, xmlns, element);
    if (n < 0 || (size_t)n >= sizeof event)
        return -1;
    return tern_hook_stanza(host, event, TERN_PRIORITY_DEFAULT, fn, data);
}

int tern_hook_session(tern_host *host, const char *event, tern_session_handler fn, void *data)
{
    hook *h = xcalloc(1, sizeof *h);
    h->kind = HOOK_SESSION;
    h->fn.session = fn;
    h->data = data;
    return add_hook(host, event, h);
}

int tern_hook_features(tern_host *host, tern_features_handler fn, void *data)
{
    hook *h = xcalloc(1, sizeof *h);
    h->kind = HOOK_FEATURES;
    h->fn.features = fn;
    h->data = data;
    return add_hook(host, FEATURES_EVENT, h);
}

int tern_hook_account(tern_host *host, const char *event, tern_account_handler fn, void *data)
{
    hook *h = xcalloc(1, sizeof *h);
    h->kind = HOOK_ACCOUNT;
    h->fn.account = fn;
    h->data = data;
    return add_hook(host, event, h);
}

void hooks_run_account(tern_host *host, const char *event, const char *bare)
{
    for (hook *h = hashmap_get(host->hooks, event); h; h = h->next)
        if (h->kind == HOOK_ACCOUNT)
            h->fn.account(host, bare, h->data);
}

tern_event_result hooks_run_stanza(tern_host *host, const char *event,
                                   const tern_stanza_event *ev)
{
    for (hook *h = hashmap_get(host->hooks, event); h; h = h->next)
        if (h->kind == HOOK_STANZA && h->fn.stanza(ev, h->data) == TERN_HANDLED)
            return TERN_HANDLED;
    return TERN_PASS;
}

void hooks_run_session(tern_host *host, const char *event, tern_session *session)
{
    for (hook *h = hashmap_get(host->hooks, event); h; h = h->next)
        if (h->kind == HOOK_SESSION)
            h->fn.session(session, h->data);
}

void hooks_run_features(tern_host *host, tern_session *session, tern_xml *features)
{
    for (hook *h = hashmap_get(host->hooks, FEATURES_EVENT); h; h = h->next)
        if (h->kind == HOOK_FEATURES)
            h->fn.features(session, features, h->data);
}

typedef struct remove_ctx {
    tern_host *host;
    const void *owner; /* NULL: remove all */
} remove_ctx;

static void remove_from_list(void *arg, const char *event, void *value)
{
    remove_ctx *rc = arg;
    hook *head = value;
    hook **at = &head;
    while (*at) {
        if (!rc->owner || (*at)->owner == rc->owner) {
            hook *dead = *at;
            *at = dead->next;
            free(dead);
        } else {
            at = &(*at)->next;
        }
    }
    /* Replacing a value while iterating is safe: the slot stays where it is. */
    hashmap_put(rc->host->hooks, event, head);
}

void hooks_remove_owner(tern_host *host, const void *owner)
{
    remove_ctx rc = { host, owner };
    hashmap_each(host->hooks, remove_from_list, &rc);
}

void hooks_free_all(tern_host *host)
{
    remove_ctx rc = { host, NULL };
    hashmap_each(host->hooks, remove_from_list, &rc);
    hashmap_free(host->hooks);
    host->hooks = NULL;
}
