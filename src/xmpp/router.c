/* router.c — where a stanza goes (RFC 6121 §8), by the class of its 'to' address.
 *
 * Every stanza first runs the hooks named for it (e.g. "message/bare"); when no module claims
 * it, the defaults below apply: delivery to sessions by the rules of RFC 6121 §8.5, and the
 * RFC's errors for everything that cannot be delivered. Errors are never answered with errors,
 * so a bounce cannot loop. */
#include "xmpp/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "host/hooks.h"
#include "host/served.h"
#include "process/server.h"
#include "xmpp/accounts.h"
#include "xmpp/session.h"

typedef enum dest_class { DEST_HOST, DEST_BARE, DEST_FULL, DEST_REMOTE } dest_class;

static const char *const dest_names[] = { "host", "bare", "full", "remote" };

static bool attr_is(const tern_xml *x, const char *name, const char *value)
{
    const char *v = xml_attr(x, name);
    return v && strcmp(v, value) == 0;
}

static bool is_message(const tern_xml *x) { return strcmp(xml_name(x), "message") == 0; }
static bool is_presence(const tern_xml *x) { return strcmp(xml_name(x), "presence") == 0; }
static bool is_error(const tern_xml *x) { return attr_is(x, "type", "error"); }

static bool is_subscription_presence(const tern_xml *x)
{
    const char *t = xml_attr(x, "type");
    return t && (!strcmp(t, "subscribe") || !strcmp(t, "subscribed") ||
                 !strcmp(t, "unsubscribe") || !strcmp(t, "unsubscribed"));
}

/* ---- replies ---- */

void router_reply_error(const tern_stanza_event *ev, tern_stanza_error cond, const char *text)
{
    tern_xml *reply = stanza_error_reply(ev->stanza, cond, text);
    if (!reply)
        return;
    /* The error comes from the prepared destination: also right when the stanza had no 'to'
     * (RFC 6120 §10.3: its account) or an unusable one (then ev->to is the server). */
    xml_set_attr(reply, "from", ev->to->full);
    xml_set_attr(reply, "to", ev->from->full);
    router_route(reply, NULL);
}

void tern_reply_error(const tern_stanza_event *ev, tern_stanza_error cond, const char *text)
{
    router_reply_error(ev, cond, text);
}

tern_xml *tern_iq_result_new(const tern_stanza_event *ev)
{
    tern_xml *iq = xml_new("iq", NS_CLIENT);
    xml_set_attr(iq, "type", "result");
    const char *id = xml_attr(ev->stanza, "id");
    if (id)
        xml_set_attr(iq, "id", id);
    return iq;
}

void tern_reply(const tern_stanza_event *ev, tern_xml *reply)
{
    if (!xml_attr(reply, "from"))
        xml_set_attr(reply, "from", ev->to->full);
    xml_set_attr(reply, "to", ev->from->full);
    router_route(reply, NULL);
}

void tern_route(tern_host *host, tern_xml *stanza)
{
    (void)host;
    router_route(stanza, NULL);
}

/* ---- delivery ---- */

static void deliver(tern_session *s, const tern_xml *stanza)
{
    session_deliver(s, stanza);
}

/* RFC 6121 §8.5.2.1.1: chat and normal messages to a bare JID go to the available resources
 * with the highest non-negative priority (all of them when several share it). Returns the
 * number of sessions reached. */
static size_t deliver_to_highest(user_sessions *u, const tern_xml *stanza)
{
    int best = -1;
    for (tern_session *s = u ? u->head : NULL; s; s = s->next_of_user)
        if (s->available && s->priority >= 0 && s->priority > best)
            best = s->priority;
    if (best < 0)
        return 0;
    size_t n = 0;
    for (tern_session *s = u->head; s; s = s->next_of_user)
        if (s->available && s->priority == best) {
            deliver(s, stanza);
            n++;
        }
    return n;
}

static size_t deliver_to_available(user_sessions *u, const tern_xml *stanza, bool non_negative)
{
    size_t n = 0;
    for (tern_session *s = u ? u->head : NULL; s; s = s->next_of_user)
        if (s->available && (!non_negative || s->priority >= 0)) {
            deliver(s, stanza);
            n++;
        }
    return n;
}

static tern_session *find_resource(user_sessions *u, const char *resource)
{
    for (tern_session *s = u ? u->head : NULL; s; s = s->next_of_user)
        if (strcmp(s->jid.resource, resource) == 0)
            return s;
    return NULL;
}

/* ---- event names ---- */

/* The stanza kinds events are named after. Their event names are spelled out here, so
 * routing a stanza builds no strings except for iq requests, whose events name the payload. */
typedef enum stanza_kind {
    KIND_MESSAGE, KIND_PRESENCE, KIND_IQ_GET, KIND_IQ_SET, KIND_IQ_RESULT, KIND_IQ_ERROR,
    N_KINDS,
    KIND_INVALID = N_KINDS, /* an iq without a valid type, or not a stanza at all */
} stanza_kind;
static const char *const kind_names[N_KINDS] = { "message", "presence", "iq-get",
                                                 "iq-set", "iq-result", "iq-error" };
/* Indexed by kind, then by dest_class (the order of dest_names). */
#define KIND_EVENTS(k) { k "/host", k "/bare", k "/full", k "/remote" }
static const char *const kind_events[N_KINDS][4] = {
    KIND_EVENTS("message"), KIND_EVENTS("presence"),  KIND_EVENTS("iq-get"),
    KIND_EVENTS("iq-set"),  KIND_EVENTS("iq-result"), KIND_EVENTS("iq-error"),
};
/* What a local client sends, before routing. */
static const char *const out_events[N_KINDS] = { "message/out", "presence/out", "iq/out",
                                                 "iq/out",      "iq/out",       "iq/out" };

static stanza_kind kind_of(const tern_xml *x)
{
    const char *name = xml_name(x);
    if (strcmp(name, "message") == 0)
        return KIND_MESSAGE;
    if (strcmp(name, "presence") == 0)
        return KIND_PRESENCE;
    const char *t = strcmp(name, "iq") == 0 ? xml_attr(x, "type") : NULL;
    for (int k = KIND_IQ_GET; t && k <= KIND_IQ_ERROR; k++)
        if (strcmp(t, kind_names[k] + 3) == 0) /* past "iq-" */
            return (stanza_kind)k;
    return KIND_INVALID;
}

static bool is_request(const tern_xml *x)
{
    return strcmp(xml_name(x), "iq") == 0 && (attr_is(x, "type", "get") || attr_is(x, "type", "set"));
}

/* The one child of an iq request (RFC 6120 §8.2.3: exactly one), or NULL. */
static const tern_xml *iq_payload(const tern_xml *iq)
{
    const tern_xml *child = xml_first_element(iq);
    if (!child || xml_next_element(child))
        return NULL;
    return child;
}

static bool run_hooks(const tern_stanza_event *ev, dest_class dest, stanza_kind kind)
{
    /* Remote destinations are one event per kind ("iq-get/remote"): the s2s module carries
     * every payload alike. */
    if (is_request(ev->stanza) && dest != DEST_REMOTE) {
        char event[600];
        const tern_xml *p = iq_payload(ev->stanza);
        snprintf(event, sizeof event, "%s/%s/%s:%s", kind_names[kind], dest_names[dest],
                 xml_ns(p), xml_name(p));
        return hooks_run_stanza(ev->host, event, ev) == TERN_HANDLED;
    }
    return hooks_run_stanza(ev->host, kind_events[kind][dest], ev) == TERN_HANDLED;
}

/* ---- defaults per destination class ---- */

static void default_host(const tern_stanza_event *ev)
{
    const tern_xml *x = ev->stanza;
    if (is_request(x) || (is_message(x) && !is_error(x) && !attr_is(x, "type", "headline")))
        router_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    /* presence, iq results and errors to the server: nothing to do */
}

static void default_bare(const tern_stanza_event *ev, user_sessions *u)
{
    const tern_xml *x = ev->stanza;
    if (is_request(x)) {
        /* An iq to a bare JID is answered by the server on the account's behalf (RFC 6121
         * §8.5.2.1.3); no module claimed this one. */
        router_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    if (is_message(x)) {
        const char *type = tern_message_type(x);
        if (!strcmp(type, "groupchat")) {
            router_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        } else if (!strcmp(type, "headline")) {
            deliver_to_available(u, x, true);
        } else if (deliver_to_highest(u, x) == 0 && strcmp(type, "error") != 0) {
            /* No available resource and no module stored it (the offline module would). */
            router_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        }
        return;
    }
    if (is_presence(x) && !attr_is(x, "type", "probe"))
        deliver_to_available(u, x, false);
}

static void route_local(tern_stanza_event *ev, dest_class dest, stanza_kind kind);

static void default_full(tern_stanza_event *ev, stanza_kind kind, user_sessions *u)
{
    const tern_xml *x = ev->stanza;
    tern_session *s = find_resource(u, ev->to->resource);
    if (s) {
        deliver(s, x);
        return;
    }
    /* RFC 6121 §8.5.3.2: the resource is not online. */
    if (is_request(x)) {
        router_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    bool as_bare = false;
    if (is_message(x)) {
        const char *type = tern_message_type(x);
        if (!strcmp(type, "groupchat"))
            router_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        as_bare = !strcmp(type, "chat") || !strcmp(type, "normal");
    } else if (is_presence(x)) {
        as_bare = is_subscription_presence(x);
    }
    if (as_bare) {
        tern_jid bare;
        jid_bare(&bare, ev->to);
        tern_stanza_event bare_ev = *ev;
        bare_ev.to = &bare;
        route_local(&bare_ev, DEST_BARE, kind);
        jid_free(&bare);
    }
}

static void route_local(tern_stanza_event *ev, dest_class dest, stanza_kind kind)
{
    user_sessions *u = NULL;
    if (dest != DEST_HOST) {
        u = host_user(ev->host, ev->to->bare);
        /* Online sessions prove the account exists; otherwise ask storage. */
        if (!u && !account_exists(server.storage, ev->to->bare)) {
            /* RFC 6121 §8.5.1: no such user. Presence is dropped silently. */
            if (is_request(ev->stanza) ||
                (is_message(ev->stanza) && !attr_is(ev->stanza, "type", "headline")))
                router_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
            return;
        }
    }
    if (run_hooks(ev, dest, kind))
        return;
    switch (dest) {
    case DEST_HOST:
        default_host(ev);
        break;
    case DEST_BARE:
        default_bare(ev, u);
        break;
    case DEST_FULL:
        default_full(ev, kind, u);
        break;
    case DEST_REMOTE:
        break;
    }
}

/* ---- entry point ---- */

static void broadcast_presence(tern_stanza_event *ev)
{
    session_set_presence(ev->origin, ev->stanza);
    if (hooks_run_stanza(ev->host, "presence/broadcast", ev) == TERN_HANDLED)
        return;
    /* Without a presence module: the account's other available resources see it
     * (RFC 6121 §4.2.2, the part that needs no roster). */
    user_sessions *u = host_user(ev->host, ev->from->bare);
    for (tern_session *s = u ? u->head : NULL; s; s = s->next_of_user)
        if (s != ev->origin && s->available)
            deliver(s, ev->stanza);
}

void router_route(tern_xml *stanza, tern_session *origin)
{
    tern_jid from = { 0 }, to = { 0 };
    const char *why = NULL;
    const char *from_text = xml_attr(stanza, "from");
    const char *to_text = xml_attr(stanza, "to");
    stanza_kind kind = kind_of(stanza);

    if (!from_text || jid_parse(from_text, &from, &why) != 0) {
        log_warn(origin ? origin->id : 0, "router: dropping a stanza without a valid 'from'");
        goto done;
    }
    tern_stanza_event ev = { NULL, stanza, &from, &to, origin };
    ev.host = origin ? origin->host : server_find_host(from.domain);
    if (!ev.host) {
        /* A module sends from a domain it serves: routed as its host's. */
        const served_domain *sd = served_find(from.domain);
        ev.host = sd ? served_host(sd) : NULL;
    }

    if (to_text && jid_parse(to_text, &to, &why) != 0) {
        /* The server itself answers for an address that cannot be used. */
        if (ev.host && jid_parse(ev.host->name, &to, &why) == 0)
            router_reply_error(&ev, STANZA_ERR_JID_MALFORMED, "the 'to' address is not a valid JID");
        goto done;
    }
    if (kind == KIND_INVALID) {
        if (!to_text)
            jid_bare(&to, &from);
        if (ev.host)
            router_reply_error(&ev, STANZA_ERR_BAD_REQUEST,
                               strcmp(xml_name(stanza), "iq") == 0 ? "invalid iq type"
                                                                  : "not a stanza");
        goto done;
    }
    if (!to_text) {
        if (origin && is_presence(stanza) &&
            (!xml_attr(stanza, "type") || attr_is(stanza, "type", "unavailable"))) {
            jid_bare(&to, &from);
            broadcast_presence(&ev);
            goto done;
        }
        /* RFC 6120 §10.3: no 'to' means the sender's own account. */
        jid_bare(&to, &from);
    }
    if (is_request(stanza) && !iq_payload(stanza)) {
        if (ev.host)
            router_reply_error(&ev, STANZA_ERR_BAD_REQUEST,
                               "an iq request must have exactly one child element");
        goto done;
    }
    if (origin) {
        if (hooks_run_stanza(ev.host, out_events[kind], &ev) == TERN_HANDLED)
            goto done;
    }

    tern_host *dest_host = server_find_host(to.domain);
    const served_domain *served = dest_host ? NULL : served_find(to.domain);
    if (served) {
        ev.host = served_host(served);
        served_deliver(served, &ev);
        goto done;
    }
    if (!dest_host) {
        if (!ev.host)
            goto done; /* neither end is ours: never relay */
        if (!run_hooks(&ev, DEST_REMOTE, kind))
            router_reply_error(&ev, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, NULL);
        goto done;
    }
    ev.host = dest_host;
    dest_class dest = !to.node ? DEST_HOST : !to.resource ? DEST_BARE : DEST_FULL;
    if (dest != DEST_HOST && hooks_run_stanza(ev.host, "stanza/in", &ev) == TERN_HANDLED)
        goto done;
    route_local(&ev, dest, kind);
done:
    jid_free(&from);
    jid_free(&to);
    xml_unref(stanza);
}
