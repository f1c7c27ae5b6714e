/* presence — presence broadcast, probes and directed presence (RFC 6121 §4).
 *
 * Who may see whose presence comes from the roster service (tern/roster.h): a user's presence
 * goes to the contacts with a subscription "from" (or "both"), and the user's server probes
 * the contacts with "to" (or "both") when a resource becomes available. Without the roster
 * module every contact counts as "none": presence then only flows between the user's own
 * resources and by directed presence.
 *
 * The last unavailable presence of each account is kept in the keyval store "last-presence"
 * (the stanza as sent, with from = the full JID that sent it and an XEP-0203 <delay/> whose
 * stamp is the time it was received), to answer probes while no resource is available
 * (RFC 6121 §4.3.2). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/module.h>
#include <tern/roster.h>

#define LAST_PRESENCE_STORE "last-presence"
static const tern_setting_def presence_settings[] = {
    { "max_directed", TERN_SETTING_UINT, "1000", 1, 100000,
      "directed-presence recipients remembered per session (told when it goes offline)", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

/* Per-session state, under the key &session_key. */
typedef struct presence_session {
    bool announced;   /* initial presence was broadcast, unavailable not yet */
    char **directed;  /* RFC 6121 §4.6: recipients of directed available presence */
    size_t n_directed;
} presence_session;

static const char session_key = 0;

static void session_state_free(void *data)
{
    presence_session *ps = data;
    for (size_t i = 0; i < ps->n_directed; i++)
        free(ps->directed[i]);
    free(ps->directed);
    free(ps);
}

static presence_session *session_state(tern_session *s)
{
    presence_session *ps = tern_session_get_data(s, &session_key);
    if (!ps) {
        ps = calloc(1, sizeof *ps);
        if (!ps)
            abort();
        tern_session_set_data(s, &session_key, ps, session_state_free);
    }
    return ps;
}

static bool is_type(const tern_xml *stanza, const char *type)
{
    const char *t = xml_attr(stanza, "type");
    return type ? t && strcmp(t, type) == 0 : t == NULL;
}

/* A copy of `stanza` from `from` to `to`, routed as the server. */
static void route_copy(tern_host *host, const tern_xml *stanza, const char *from,
                       const char *to)
{
    tern_xml *copy = xml_copy(stanza);
    xml_set_attr(copy, "from", from);
    xml_set_attr(copy, "to", to);
    tern_route(host, copy);
}

/* ---- broadcast (RFC 6121 §4.2.2, §4.4.2, §4.5.2) ---- */

typedef struct broadcast_ctx {
    tern_host *host;
    tern_session *origin;    /* the session whose presence this is */
    const tern_xml *stanza;
    const char *from;        /* its full JID */
} broadcast_ctx;

static void broadcast_to_contact(void *arg, const char *contact)
{
    broadcast_ctx *bc = arg;
    route_copy(bc->host, bc->stanza, bc->from, contact);
}

/* The user's available resources see each other's presence, the sender included
 * (§4.2.2, §4.4.2); a session that is closing is no longer one of them. */
static void broadcast_to_resource(tern_session *s, void *arg)
{
    broadcast_ctx *bc = arg;
    if (!tern_session_available(s) || (s == bc->origin && is_type(bc->stanza, "unavailable")))
        return;
    tern_xml *copy = xml_copy(bc->stanza);
    xml_set_attr(copy, "from", bc->from);
    xml_set_attr(copy, "to", tern_session_jid(s)->full);
    tern_session_send(s, copy);
    xml_unref(copy);
}

static void broadcast(tern_host *host, tern_session *origin, const tern_xml *stanza)
{
    const tern_jid *jid = tern_session_jid(origin);
    broadcast_ctx bc = { host, origin, stanza, jid->full };
    const tern_roster_api *roster = tern_roster(host);
    if (roster)
        roster->each_contact(host, jid->bare, false, true, broadcast_to_contact, &bc);
    tern_host_each_session(host, jid->bare, broadcast_to_resource, &bc);
}

static void probe_contact(void *arg, const char *contact)
{
    broadcast_ctx *bc = arg;
    tern_xml *probe = xml_new("presence", NS_CLIENT);
    xml_set_attr(probe, "type", "probe");
    xml_set_attr(probe, "from", bc->from);
    xml_set_attr(probe, "to", contact);
    tern_route(bc->host, probe);
}

/* §4.2.2: a new resource learns the presence of the user's other available resources. */
static void tell_new_resource(tern_session *s, void *arg)
{
    tern_session *fresh = arg;
    const tern_xml *last = tern_session_presence(s);
    if (s == fresh || !tern_session_available(s) || !last)
        return;
    tern_xml *copy = xml_copy(last);
    xml_set_attr(copy, "from", tern_session_jid(s)->full);
    xml_set_attr(copy, "to", tern_session_jid(fresh)->full);
    tern_session_send(fresh, copy);
    xml_unref(copy);
}

/* §4.6.3: everyone who got directed available presence gets unavailable presence too. */
static void end_directed(tern_host *host, tern_session *s, presence_session *ps)
{
    for (size_t i = 0; i < ps->n_directed; i++) {
        tern_xml *p = xml_new("presence", NS_CLIENT);
        xml_set_attr(p, "type", "unavailable");
        xml_set_attr(p, "from", tern_session_jid(s)->full);
        xml_set_attr(p, "to", ps->directed[i]);
        tern_route(host, p);
        free(ps->directed[i]);
    }
    ps->n_directed = 0;
}

/* Keeps the account's last unavailable presence for probes (§4.3.2). */
static void remember_unavailable(tern_host *host, tern_session *s, const tern_xml *stanza)
{
    tern_xml *copy = xml_copy(stanza);
    xml_set_attr(copy, "from", tern_session_jid(s)->full);
    xml_set_attr(copy, "to", NULL);
    tern_xml *old;
    while ((old = xml_child(copy, "delay", NS_DELAY)))
        xml_remove_child(copy, old);
    tern_stanza_add_delay(copy, tern_host_name(host), time(NULL));
    tern_buf buf;
    buf_init(&buf);
    xml_serialize(copy, NS_CLIENT, &buf);
    if (storage_kv_put(tern_host_storage(host), LAST_PRESENCE_STORE, tern_session_jid(s)->bare,
                       buf.data, buf.len) < 0)
        log_warn(tern_session_id(s), "presence: the last presence could not be stored");
    buf_free(&buf);
    xml_unref(copy);
}

static void go_unavailable(tern_host *host, tern_session *s, const tern_xml *stanza)
{
    presence_session *ps = session_state(s);
    if (ps->announced) {
        ps->announced = false;
        broadcast(host, s, stanza);
        remember_unavailable(host, s, stanza);
    }
    end_directed(host, s, ps);
}

/* Broadcast presence (no 'to') from a session, after the core recorded it. */
static tern_event_result presence_broadcast(const tern_stanza_event *ev, void *data)
{
    (void)data;
    tern_session *s = ev->origin;
    if (!s)
        return TERN_PASS;
    if (is_type(ev->stanza, "unavailable")) { /* §4.5.2 */
        go_unavailable(ev->host, s, ev->stanza);
        return TERN_HANDLED;
    }
    presence_session *ps = session_state(s);
    bool initial = !ps->announced;
    ps->announced = true;
    const tern_jid *jid = tern_session_jid(s);
    broadcast_ctx bc = { ev->host, s, ev->stanza, jid->bare };
    const tern_roster_api *roster = tern_roster(ev->host);
    if (initial && roster) /* §4.2.2: probes go out from the bare JID */
        roster->each_contact(ev->host, jid->bare, true, false, probe_contact, &bc);
    broadcast(ev->host, s, ev->stanza);
    if (initial)
        tern_host_each_session(ev->host, jid->bare, tell_new_resource, s);
    return TERN_HANDLED;
}

/* A session that ends while available sends unavailable presence implicitly (§4.5.2). */
static void session_closed(tern_session *s, void *data)
{
    tern_host *host = data;
    if (!tern_session_get_data(s, &session_key))
        return;
    tern_xml *p = xml_new("presence", NS_CLIENT);
    xml_set_attr(p, "type", "unavailable");
    xml_set_attr(p, "from", tern_session_jid(s)->full);
    go_unavailable(host, s, p);
    xml_unref(p);
}

/* ---- directed presence (RFC 6121 §4.6) ---- */

static tern_event_result presence_directed(const tern_stanza_event *ev, void *data)
{
    (void)data;
    bool available = is_type(ev->stanza, NULL), unavailable = is_type(ev->stanza, "unavailable");
    if (!ev->origin || (!available && !unavailable) || strcmp(ev->from->bare, ev->to->bare) == 0)
        return TERN_PASS;
    presence_session *ps = session_state(ev->origin);
    size_t at = 0;
    while (at < ps->n_directed && strcmp(ps->directed[at], ev->to->full) != 0)
        at++;
    if (unavailable && at < ps->n_directed) {
        free(ps->directed[at]);
        ps->directed[at] = ps->directed[--ps->n_directed];
    } else if (available && at == ps->n_directed &&
               ps->n_directed < tern_setting_uint(ev->host, "presence", "max_directed")) {
        /* A contact with a subscription "from" gets the broadcasts anyway (§4.6.2). */
        const tern_roster_api *roster = tern_roster(ev->host);
        if (roster &&
            TERN_SUB_HAS_FROM(roster->subscription(ev->host, ev->from->bare, ev->to->bare)))
            return TERN_PASS;
        char **grown = realloc(ps->directed, (ps->n_directed + 1) * sizeof *grown);
        char *copy = strdup(ev->to->full);
        if (!grown || !copy)
            abort();
        ps->directed = grown;
        ps->directed[ps->n_directed++] = copy;
    }
    return TERN_PASS; /* the core routes it */
}

/* ---- probes (RFC 6121 §4.3.2) ---- */

typedef struct probe_ctx {
    tern_host *host;
    const char *to;
    const char *only; /* a resource named by the probe, or NULL */
    size_t answered;
} probe_ctx;

static void answer_with_session(tern_session *s, void *arg)
{
    probe_ctx *pc = arg;
    const tern_xml *last = tern_session_presence(s);
    if (!tern_session_available(s) || !last ||
        (pc->only && strcmp(pc->only, tern_session_jid(s)->resource) != 0))
        return;
    route_copy(pc->host, last, tern_session_jid(s)->full, pc->to);
    pc->answered++;
}

static void answer_unavailable(tern_host *host, const char *owner, const char *to)
{
    void *data = NULL;
    size_t len = 0;
    tern_xml *p = NULL;
    if (storage_kv_get(tern_host_storage(host), LAST_PRESENCE_STORE, owner, &data, &len) == 1) {
        p = tern_stanza_parse(data, len);
        free(data);
    }
    if (!p) {
        p = xml_new("presence", NS_CLIENT);
        xml_set_attr(p, "type", "unavailable");
        xml_set_attr(p, "from", owner);
    }
    xml_set_attr(p, "to", to);
    tern_route(host, p);
}

/* Probes are answered by the server and never reach a client, whether they name the bare
 * JID or a resource (§8.5.3.1). */
static tern_event_result presence_probe(const tern_stanza_event *ev, void *data)
{
    (void)data;
    if (!is_type(ev->stanza, "probe"))
        return TERN_PASS;
    const char *owner = ev->to->bare;
    const tern_roster_api *roster = tern_roster(ev->host);
    bool allowed = strcmp(owner, ev->from->bare) == 0 ||
                   (roster && TERN_SUB_HAS_FROM(roster->subscription(ev->host, owner,
                                                                     ev->from->bare)));
    if (!allowed) {
        /* The prober is not subscribed: reveal nothing, and say so with "unsubscribed",
         * which lets the prober's server correct a stale subscription. */
        tern_xml *p = xml_new("presence", NS_CLIENT);
        xml_set_attr(p, "type", "unsubscribed");
        xml_set_attr(p, "from", owner);
        xml_set_attr(p, "to", ev->from->bare);
        tern_route(ev->host, p);
        return TERN_HANDLED;
    }
    probe_ctx pc = { ev->host, ev->from->full, ev->to->resource, 0 };
    tern_host_each_session(ev->host, owner, answer_with_session, &pc);
    if (pc.answered == 0)
        answer_unavailable(ev->host, owner, ev->from->full);
    return TERN_HANDLED;
}

static int presence_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    tern_hook_stanza(host, "presence/broadcast", TERN_PRIORITY_DEFAULT, presence_broadcast, NULL);
    tern_hook_stanza(host, "presence/out", TERN_PRIORITY_DEFAULT, presence_directed, NULL);
    tern_hook_stanza(host, "presence/bare", TERN_PRIORITY_DEFAULT, presence_probe, NULL);
    tern_hook_stanza(host, "presence/full", TERN_PRIORITY_DEFAULT, presence_probe, NULL);
    tern_hook_session(host, "session/closed", session_closed, host);
    return 0;
}

TERN_MODULE_SETTINGS("presence", presence_load, NULL, presence_settings);
