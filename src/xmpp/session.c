/* session.c — binding sessions into the host's routing table, presence state, teardown. */
#include "xmpp/session.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "host/hooks.h"
#include "host/owner.h"
#include "xmpp/session_order.h"

tern_session *session_new(tern_host *host, uint64_t id, const session_transport *t, void *ctx)
{
    tern_session *s = xcalloc(1, sizeof *s);
    s->id = id;
    s->host = host;
    s->transport = t;
    s->transport_ctx = ctx;
    return s;
}

static void table_insert(tern_session *s)
{
    tern_host *h = s->host;
    user_sessions *u = hashmap_get(h->users, s->jid.bare);
    if (!u) {
        u = xcalloc(1, sizeof *u);
        hashmap_put(h->users, s->jid.bare, u);
    }
    s->next_of_user = u->head;
    u->head = s;
    u->count++;
    h->n_sessions++;
}

static void table_remove(tern_session *s)
{
    tern_host *h = s->host;
    user_sessions *u = hashmap_get(h->users, s->jid.bare);
    if (!u)
        return;
    for (tern_session **at = &u->head; *at; at = &(*at)->next_of_user) {
        if (*at == s) {
            *at = s->next_of_user;
            u->count--;
            h->n_sessions--;
            break;
        }
    }
    if (u->count == 0)
        free(hashmap_remove(h->users, s->jid.bare));
}

static tern_session *find_bound(tern_host *h, const tern_jid *full)
{
    user_sessions *u = hashmap_get(h->users, full->bare);
    for (tern_session *s = u ? u->head : NULL; s; s = s->next_of_user)
        if (strcmp(s->jid.resource, full->resource) == 0)
            return s;
    return NULL;
}

struct session_data {
    const void *key;
    void *data;
    void (*free_fn)(void *data);
    const module_instance *owner; /* whose free_fn it is: dropped when that module unloads */
    session_data *next;
};

/* Handlers of session/closed see the session as it was: bound, and available or not. */
static void unbind(tern_session *s)
{
    if (!s->bound)
        return;
    hooks_run_session(s->host, "session/closed", s);
    table_remove(s);
    s->bound = false;
    s->available = false;
}

int session_bind(tern_session *s, const char *node, const char *resource, unsigned max_sessions,
                 tern_stanza_error *cond, const char **why)
{
    *cond = STANZA_ERR_BAD_REQUEST;
    char generated[24];
    if (!resource || !*resource) {
        /* RFC 6120 §7.6.2.1: the server generates a resource unique for the account. */
        memcpy(generated, "tern-", 5);
        random_token(generated + 5, 12);
        resource = generated;
    }
    tern_jid jid;
    if (jid_from_parts(node, s->host->name, resource, &jid, why) != 0)
        return -1;
    tern_session *old = find_bound(s->host, &jid);
    const user_sessions *user = host_user(s->host, jid.bare);
    if (!old && user && user->count >= max_sessions) {
        /* RFC 6120 §7.6.2.1; replacing a resource (above) adds no session, so it may. */
        log_info(s->id, "refusing a session for %s: %zu sessions already", jid.bare, user->count);
        jid_free(&jid);
        *cond = STANZA_ERR_RESOURCE_CONSTRAINT;
        *why = "too many sessions for this account";
        return -1;
    }
    if (old) {
        log_info(old->id, "%s replaced by session s%llu", jid.full, (unsigned long long)s->id);
        unbind(old);
        old->transport->close(old->transport_ctx, STREAM_ERR_CONFLICT,
                              "Replaced by a new session with the same resource");
    }
    jid_free(&s->jid);
    s->jid = jid;
    s->bound = true;
    table_insert(s);
    hooks_run_session(s->host, "session/bound", s);
    return 0;
}

void session_set_presence(tern_session *s, const tern_xml *presence)
{
    const char *type = xml_attr(presence, "type");
    bool was_available = s->available;
    if (type && strcmp(type, "unavailable") == 0) {
        s->available = false;
        s->priority = 0;
    } else {
        s->available = true;
        /* RFC 6121 §4.7.2.3: an integer -128..127; anything else counts as 0. */
        const char *p = xml_child_text(presence, "priority", NULL);
        long prio = 0;
        if (p) {
            char *end;
            prio = strtol(p, &end, 10);
            if (*end || end == p || prio < -128 || prio > 127)
                prio = 0;
        }
        s->priority = (int)prio;
    }
    if (s->presence)
        xml_unref(s->presence);
    s->presence = xml_copy(presence);
    if (s->available && !was_available)
        hooks_run_session(s->host, "session/available", s);
    else if (!s->available && was_available)
        hooks_run_session(s->host, "session/unavailable", s);
}

static void free_data(session_data *d)
{
    if (d->free_fn)
        d->free_fn(d->data);
    free(d);
}

void session_free(tern_session *s)
{
    if (!s)
        return;
    unbind(s);
    if (s->order)
        order_detach(s->order);
    while (s->data) {
        session_data *d = s->data;
        s->data = d->next;
        free_data(d);
    }
    if (s->presence)
        xml_unref(s->presence);
    jid_free(&s->jid);
    free(s);
}

/* ---- the session half of the module API ---- */

uint64_t tern_session_id(const tern_session *s) { return s->id; }

const tern_jid *tern_session_jid(const tern_session *s) { return &s->jid; }

tern_host *tern_session_host(tern_session *s) { return s->host; }

bool tern_session_available(const tern_session *s) { return s->available; }

int tern_session_priority(const tern_session *s) { return s->priority; }

const tern_xml *tern_session_presence(const tern_session *s) { return s->presence; }

void tern_session_record_presence(tern_session *s, const tern_xml *presence)
{
    if (!s->presence || presence == s->presence)
        return;
    tern_xml *copy = xml_copy(presence);
    xml_unref(s->presence);
    s->presence = copy;
}

void tern_session_set_data(tern_session *s, const void *key, void *data,
                           void (*free_fn)(void *data))
{
    for (session_data **at = &s->data; *at; at = &(*at)->next) {
        if ((*at)->key == key) {
            session_data *old = *at;
            *at = old->next;
            free_data(old);
            break;
        }
    }
    if (!data)
        return;
    session_data *d = xmalloc(sizeof *d);
    *d = (session_data){ key, data, free_fn, owner_of(s->host, key), s->data };
    s->data = d;
}

void *tern_session_get_data(const tern_session *s, const void *key)
{
    for (session_data *d = s->data; d; d = d->next)
        if (d->key == key)
            return d->data;
    return NULL;
}

void session_drop_owned_data(tern_session *s, const module_instance *owner)
{
    if (s->order)
        order_release_owned(s->order, owner);
    session_data **at = &s->data;
    while (*at) {
        if ((*at)->owner == owner) {
            session_data *dead = *at;
            *at = dead->next;
            free_data(dead);
        } else {
            at = &(*at)->next;
        }
    }
}

void session_deliver_now(tern_session *s, const tern_xml *stanza)
{
    if (!s->host->deliver_hooks ||
        hooks_run_deliver(s->host, s, stanza, INT_MAX) == TERN_PASS)
        s->transport->send(s->transport_ctx, stanza);
}

void session_deliver(tern_session *s, const tern_xml *stanza)
{
    if (s->order && order_hold(s->order, stanza))
        return; /* behind a slot (session_order.c) */
    session_deliver_now(s, stanza);
}

tern_output_slot *tern_session_reserve(tern_session *s)
{
    if (!s->order)
        s->order = order_new(s, session_deliver_now, s->id);
    return order_reserve(s->order, s->host->running);
}

void tern_session_send(tern_session *s, const tern_xml *stanza)
{
    session_deliver(s, stanza);
}

void tern_session_send_past(tern_session *s, const tern_xml *stanza, int priority)
{
    if (hooks_run_deliver(s->host, s, stanza, priority) == TERN_PASS)
        s->transport->send(s->transport_ctx, stanza);
}

void tern_session_send_element(tern_session *s, const tern_xml *element)
{
    s->transport->send(s->transport_ctx, element);
}

void tern_host_each_session(tern_host *host, const char *bare,
                            void (*fn)(tern_session *session, void *ctx), void *ctx)
{
    user_sessions *u = host_user(host, bare);
    if (!u)
        return;
    tern_session *next;
    for (tern_session *s = u->head; s; s = next) {
        next = s->next_of_user; /* fn may close s */
        fn(s, ctx);
    }
}

typedef struct drop_ctx {
    const module_instance *owner;
} drop_ctx;

static void drop_user_data(void *arg, const char *bare, void *value)
{
    const drop_ctx *d = arg;
    (void)bare;
    for (tern_session *s = ((user_sessions *)value)->head; s; s = s->next_of_user)
        session_drop_owned_data(s, d->owner);
}

void session_drop_module_data(tern_host *host, const module_instance *owner)
{
    drop_ctx d = { owner };
    hashmap_each(host->users, drop_user_data, &d);
}
