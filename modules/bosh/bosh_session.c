/* bosh_session.c — one BOSH session over time (see bosh_session.h for the split with bosh_route.c).
 *
 * Requests wait in `pending` until every lower rid has arrived, then are processed in rid
 * order (§14.2): their payloads go to the c2s, and the request moves to `held`. A held request
 * is answered when there is something for the client, when a newer request pushes it out
 * (more than `hold` held, §11), or after `wait` seconds (empty). Output from the c2s is
 * queued and goes out with the oldest held request at the end of the event loop turn, so what
 * the c2s sends at once goes out in one response. Answers are kept (the last `requests` of
 * them) for a client that resends a request whose answer it lost (§14.3).
 *
 * The end: the c2s closes its stream (a terminal <body/> is then owed to the client), the
 * client sends type='terminate', the client breaks a rule (a terminal binding condition of
 * ours), or nothing is open for `inactivity` seconds (§12: ended without telling the client).
 * Either way the sid is forgotten at once and the c2s is told from an event of its own, since
 * the end may be decided while the c2s is on the stack. */
#include "bosh_session.h"

#include <event2/event.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tern/c2s.h>
#include <tern/hashmap.h>
#include <tern/module.h>
#include <tern/ns.h>
#include <tern/util.h>

#define BOSH_MIN_QUEUE (1u << 20) /* see queue_limit() */

static void work(bosh_session *s);

static void arm(struct event *ev, unsigned seconds)
{
    struct timeval tv = { seconds, 0 };
    evtimer_add(ev, &tv);
}

/* ---- the sid table ---- */

static hashmap *sessions; /* sid -> bosh_session */

void bosh_session_register(bosh_session *s)
{
    if (!sessions)
        sessions = hashmap_new();
    hashmap_put(sessions, s->sid, s);
}

bosh_session *bosh_session_by_sid(const char *sid)
{
    return sessions ? hashmap_get(sessions, sid) : NULL;
}

/* Takes s out of the sid table: from now on its sid is unknown. */
static void forget(bosh_session *s)
{
    hashmap_remove(sessions, s->sid);
    if (hashmap_count(sessions) == 0) {
        hashmap_free(sessions);
        sessions = NULL;
    }
}

/* §17.1: the starred conditions go to legacy clients as HTTP errors. */
static int status_for(bool legacy, const char *condition)
{
    if (!legacy || !condition)
        return 200;
    if (strcmp(condition, "bad-request") == 0)
        return 400;
    if (strcmp(condition, "policy-violation") == 0)
        return 403;
    if (strcmp(condition, "item-not-found") == 0)
        return 404;
    return 200;
}

/* ---- requests ---- */

static void on_http_gone(tern_http_request *http, void *data);
static void on_request_timer(evutil_socket_t fd, short what, void *arg);

static bool is_true(const char *v) { return v && (!strcmp(v, "true") || !strcmp(v, "1")); }

bosh_request *bosh_request_new(bosh_session *s, tern_http_request *http, uint64_t rid,
                               tern_xml *body, tern_xml **payloads, size_t n_payloads)
{
    bosh_request *r = xcalloc(1, sizeof *r);
    r->s = s;
    r->rid = rid;
    r->http[0] = http;
    tern_http_on_gone(http, on_http_gone, r);
    r->body = body;
    r->payloads = payloads;
    r->n_payloads = n_payloads;
    const char *type = xml_attr(body, "type");
    r->terminate = type && strcmp(type, "terminate") == 0;
    r->restart = is_true(xml_attr_ns(body, NS_XBOSH, "restart"));
    r->pause = xml_attr(body, "pause") != NULL;
    r->empty = n_payloads == 0 && !r->terminate && !r->restart && !r->pause;
    r->timer = evtimer_new(tern_event_base(), on_request_timer, r);
    return r;
}

void bosh_request_free(bosh_request *r)
{
    for (size_t i = 0; i < r->n_payloads; i++)
        if (r->payloads[i])
            xml_unref(r->payloads[i]);
    free(r->payloads);
    free(r->error_text);
    xml_unref(r->body);
    event_free(r->timer);
    free(r);
}

static bool request_alive(const bosh_request *r) { return r->http[0] || r->http[1]; }

static void list_insert(bosh_request **list, bosh_request *r)
{
    while (*list && (*list)->rid < r->rid)
        list = &(*list)->next;
    r->next = *list;
    *list = r;
}

static bool list_remove(bosh_request **list, bosh_request *r)
{
    for (; *list; list = &(*list)->next)
        if (*list == r) {
            *list = r->next;
            r->next = NULL;
            return true;
        }
    return false;
}

static bosh_request *list_find(bosh_request *list, uint64_t rid)
{
    for (; list; list = list->next)
        if (list->rid == rid)
            return list;
    return NULL;
}

bosh_request *bosh_session_find_open(bosh_session *s, uint64_t rid)
{
    bosh_request *r = list_find(s->held, rid);
    return r ? r : list_find(s->pending, rid);
}

/* ---- answering ---- */

static void write_creation_attrs(bosh_session *s, const bosh_request *r, tern_buf *out)
{
    /* §7.2 and XEP-0206 §4; requests = hold + 1, the RECOMMENDED value; secure: tern is
     * both the connection manager and the server. */
    buf_printf(out, " xmlns:xmpp='" NS_XBOSH "' sid='%s' wait='%u' hold='%u' requests='%u'"
               " polling='%d' inactivity='%d' maxpause='%d' ver='%d.%u' secure='true'"
               " xmpp:version='1.0' xmpp:restartlogic='true'",
               s->sid, s->wait, s->hold, s->requests, BOSH_POLLING, BOSH_INACTIVITY,
               BOSH_MAXPAUSE, BOSH_VERSION_MAJOR, s->ver_minor);
    if (s->from) {
        buf_append_str(out, " from='");
        buf_append_escaped(out, s->from, strlen(s->from));
        buf_append_str(out, "'");
    }
    if (s->authid)
        buf_printf(out, " authid='%s'", s->authid);
    if (s->acks) /* §9.1: acknowledgements are used throughout the session */
        buf_printf(out, " ack='%llu'", (unsigned long long)r->rid);
}

/* The response to r: our attributes and, when `payloads`, what is queued. Returns whether it
 * carried payloads. */
static bool build_response(bosh_session *s, const bosh_request *r, bool payloads, tern_buf *out)
{
    buf_append_str(out, "<body xmlns='" NS_HTTPBIND "'");
    if (r->creation)
        write_creation_attrs(s, r, out);
    else if (s->acks && s->next_rid - 1 != r->rid) /* §9.1: the highest rid received in order */
        buf_printf(out, " ack='%llu'", (unsigned long long)(s->next_rid - 1));
    if (s->terminal) {
        buf_append_str(out, " type='terminate'");
        if (*s->terminal)
            buf_printf(out, " condition='%s'", s->terminal);
    }
    payloads = payloads && s->queue.len > 0;
    if (payloads && s->queue_stream_ns) /* XEP-0206 §3 */
        buf_append_str(out, " xmlns:stream='" NS_STREAMS "'");
    if (!payloads) {
        buf_append_str(out, "/>");
        return false;
    }
    buf_append_str(out, ">");
    buf_append(out, s->queue.data, s->queue.len);
    buf_append_str(out, "</body>");
    buf_reset(&s->queue);
    s->queue_stream_ns = false;
    return true;
}

static void keep_response(bosh_session *s, uint64_t rid, const tern_buf *body)
{
    kept_response *k = &s->kept[s->kept_next];
    s->kept_next = (s->kept_next + 1) % BOSH_KEPT_RESPONSES;
    free(k->body);
    k->rid = rid;
    k->len = body->len;
    k->body = xmalloc(body->len ? body->len : 1);
    memcpy(k->body, body->data, body->len);
}

const kept_response *bosh_session_find_kept(const bosh_session *s, uint64_t rid)
{
    for (size_t i = 0; i < BOSH_KEPT_RESPONSES; i++)
        if (s->kept[i].body && s->kept[i].rid == rid)
            return &s->kept[i];
    return NULL;
}

void bosh_session_idle(bosh_session *s)
{
    /* §12: inactivity counts from the last response, with the pause asked for, if any. */
    if (bosh_outstanding(s) == 0 && !s->ended)
        arm(s->inactivity, s->pause ? s->pause : BOSH_INACTIVITY);
}

/* Answers r and frees it. Payloads only go to a request someone still waits for; the answer
 * to a gone one is empty, and kept, so a resend of it gets it (§14.3). */
static void answer(bosh_session *s, bosh_request *r, bool payloads)
{
    if (list_remove(&s->held, r))
        s->n_held--;
    else if (list_remove(&s->pending, r))
        s->n_pending--;
    tern_buf body;
    buf_init(&body);
    bool carried = build_response(s, r, payloads && request_alive(r), &body);
    int status = s->terminal ? status_for(s->legacy, s->terminal) : 200;
    for (int i = 0; i < 2; i++)
        if (r->http[i]) {
            tern_http_respond(r->http[i], status, s->content_type, body.data, body.len);
            r->http[i] = NULL;
        }
    /* §14.3: the responses kept are those to requests that were no pause and got no
     * binding error. */
    if (!s->terminal && !r->pause)
        keep_response(s, r->rid, &body);
    s->last_answer_empty = !carried;
    buf_free(&body);
    bosh_request_free(r);
    bosh_session_idle(s);
}

/* The session is over for the client: out of the table now, the c2s told from an event. */
static void end_session(bosh_session *s, const char *reason)
{
    if (s->ended)
        return;
    s->ended = true;
    s->end_reason = reason;
    forget(s);
    evtimer_del(s->inactivity);
    while (s->held)
        answer(s, s->held, false);
    while (s->pending)
        answer(s, s->pending, false);
    event_active(s->end_ev, 0, 0);
}

void bosh_session_deliver_terminal(bosh_session *s, bosh_request *extra)
{
    /* The oldest request someone waits for carries what is queued (the stanzas before a
     * <stream:error/>, XEP-0206 §6); all of them get the terminal attributes. Without any
     * such request, the next one gets it (or inactivity ends the session). */
    bool delivered = false;
    while (s->held || s->pending || extra) {
        bosh_request *r = s->held ? s->held : s->pending ? s->pending : extra;
        if (r == extra)
            extra = NULL;
        bool alive = request_alive(r);
        answer(s, r, !delivered);
        delivered = delivered || alive;
    }
    /* A stopping server does not wait for a client to come back for it. */
    if (delivered || tern_server_stopping())
        end_session(s, *s->terminal ? s->terminal : "terminated");
}

void bosh_session_fail(bosh_session *s, const char *condition, bosh_request *extra)
{
    log_info(s->id, "bosh: session %s ends: %s", s->sid, condition);
    s->terminal = condition;
    buf_reset(&s->queue); /* lost with the session, as what a broken TCP socket held */
    s->queue_stream_ns = false;
    bosh_session_deliver_terminal(s, extra);
}

/* ---- processing, in rid order ---- */

/* §15: each key is the SHA-1 (hex) of the next one; newkey starts a new sequence. */
static bool key_ok(bosh_session *s, const tern_xml *body)
{
    const char *key = xml_attr(body, "key");
    const char *newkey = xml_attr(body, "newkey");
    if (s->key) {
        unsigned char digest[20];
        char hex[41];
        if (!key || gnutls_hash_fast(GNUTLS_DIG_SHA1, key, strlen(key), digest) != 0)
            return false;
        for (int i = 0; i < 20; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        if (strcasecmp(hex, s->key) != 0)
            return false;
    }
    const char *next = newkey ? newkey : key;
    if (next) {
        free(s->key);
        s->key = xstrdup(next);
    }
    return true;
}

static unsigned pause_seconds(const tern_xml *body)
{
    const char *text = xml_attr(body, "pause");
    unsigned long v = 0;
    for (const char *p = text; *p && v <= BOSH_MAXPAUSE; p++) {
        if (*p < '0' || *p > '9')
            return BOSH_INACTIVITY; /* not a number: no change */
        v = v * 10 + (unsigned long)(*p - '0');
    }
    /* §12: up to maxpause (more is cut down to it); less than inactivity is allowed too. */
    return v == 0 ? BOSH_INACTIVITY : v > BOSH_MAXPAUSE ? BOSH_MAXPAUSE : (unsigned)v;
}

static void hold(bosh_session *s, bosh_request *r)
{
    list_insert(&s->held, r);
    s->n_held++;
    evtimer_del(r->timer);
    if (request_alive(r))
        arm(r->timer, s->wait);
}

/* The stream header (creation or restart), then the payloads, then the end if asked. */
static void process(bosh_session *s, bosh_request *r)
{
    if (!r->creation && !key_ok(s, r->body)) {
        bosh_session_fail(s, "item-not-found", r); /* §15: not processed */
        return;
    }
    if (r->pause)
        s->pause = pause_seconds(r->body);
    hold(s, r);
    if (r->creation) {
        s->link_ops->header(s->link, r->body);
    } else if (r->restart) {
        if (!s->restart_expected) {
            s->link_ops->error(s->link, STREAM_ERR_BAD_FORMAT,
                            "xmpp:restart is expected only after authentication");
            return;
        }
        s->restart_expected = false;
        if (!xml_attr(r->body, "to") && s->to) /* XEP-0206 §5: the client SHOULD repeat it */
            xml_set_attr(r->body, "to", s->to);
        s->link_ops->header(s->link, r->body);
    } else if (s->restart_expected && r->n_payloads) {
        /* On TCP, stanzas without a new stream header after <success/> are not a stream. */
        s->link_ops->error(s->link, STREAM_ERR_BAD_FORMAT,
                        "restart the stream (xmpp:restart) after authentication");
        return;
    }
    for (size_t i = 0; i < r->n_payloads; i++) {
        tern_xml *x = r->payloads[i];
        r->payloads[i] = NULL;
        if (s->terminal)
            xml_unref(x);
        else
            s->link_ops->element(s->link, x); /* takes x */
    }
    if (r->error_text && !s->terminal)
        s->link_ops->error(s->link, r->error, r->error_text);
    if (r->terminate && !s->terminal)
        s->link_ops->close(s->link);
    if (r->pause && !s->terminal) {
        /* §12: every open request is answered at once, the pause one without payloads. */
        while (s->held && s->held != r)
            answer(s, s->held, true);
        answer(s, r, false);
        return;
    }
    if (!request_alive(r))
        answer(s, r, false); /* its client left before its turn: see on_http_gone */
}

static void process_ready(bosh_session *s)
{
    while (!s->terminal && !s->input_paused && s->pending && s->pending->rid == s->next_rid) {
        bosh_request *r = s->pending;
        s->pending = r->next;
        r->next = NULL;
        s->n_pending--;
        s->next_rid++;
        process(s, r);
    }
}

static void work(bosh_session *s)
{
    if (s->ended)
        return;
    process_ready(s);
    if (s->overflow && !s->terminal) {
        /* What waits is dropped (as what a dead TCP socket held); the stream error says so. */
        buf_reset(&s->queue);
        s->queue_stream_ns = false;
        s->overflow = false;
        s->link_ops->error(s->link, STREAM_ERR_POLICY_VIOLATION,
                        "too much data is waiting for the client to collect it");
    }
    if (s->terminal) {
        bosh_session_deliver_terminal(s, NULL);
        return;
    }
    /* §11: no more than `hold` requests wait; the oldest goes first. */
    while (s->n_held > s->hold)
        answer(s, s->held, true);
    if (s->queue.len && s->held && request_alive(s->held))
        answer(s, s->held, true);
}

void bosh_session_accept(bosh_session *s, bosh_request *r)
{
    list_insert(&s->pending, r);
    s->n_pending++;
    if (r->rid != s->next_rid) /* §14.2: the missing rid may come, but not forever */
        arm(r->timer, BOSH_INACTIVITY);
    work(s);
}

void bosh_session_attach(bosh_request *open, bosh_request *copy)
{
    bosh_session *s = open->s;
    tern_http_request *http = copy->http[0];
    copy->http[0] = NULL;
    bosh_request_free(copy);
    int slot = !open->http[0] ? 0 : !open->http[1] ? 1 : -1;
    if (slot < 0) {
        /* A third copy while two wait: a recoverable binding error (§17.3) for it alone. */
        const char *body = "<body xmlns='" NS_HTTPBIND "' type='error'/>";
        tern_http_respond(http, 200, s->content_type, body, strlen(body));
        return;
    }
    open->http[slot] = http;
    tern_http_on_gone(http, on_http_gone, open);
    if (list_find(s->held, open->rid) == open)
        arm(open->timer, s->wait);
}

/* ---- events ---- */

static void on_request_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bosh_request *r = arg;
    bosh_session *s = r->s;
    if (list_find(s->pending, r->rid) == r) {
        /* The rid this one waits behind never came (§14.2). */
        bosh_session_fail(s, "item-not-found", NULL);
        return;
    }
    while (s->held && s->held != r) /* answers go in rid order */
        answer(s, s->held, true);
    answer(s, r, true);
}

static void on_http_gone(tern_http_request *http, void *data)
{
    bosh_request *r = data;
    bosh_session *s = r->s;
    for (int i = 0; i < 2; i++)
        if (r->http[i] == http)
            r->http[i] = NULL;
    log_debug(s->id, "bosh: the client left request %llu", (unsigned long long)r->rid);
    /* A held request nobody waits for is answered (and kept) now, so that inactivity counts
     * from here: a client that vanished is noticed `inactivity` seconds later. A pending one
     * stays: its payloads still go to the c2s in order. */
    if (!request_alive(r) && list_find(s->held, r->rid) == r)
        answer(s, r, false);
}

static void on_inactivity(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bosh_session *s = arg;
    log_info(s->id, "bosh: session %s inactive for %u s", s->sid,
             s->pause ? s->pause : BOSH_INACTIVITY);
    end_session(s, "BOSH inactivity timeout");
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    work(arg);
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bosh_session *s = arg;
    s->link_ops->ended(s->link, s->end_reason); /* frees s (bosh_session_free, via the link) */
}

static void kick(bosh_session *s)
{
    if (!s->ended)
        event_active(s->work_ev, 0, 0);
}

/* Every session not yet freed, in the sid table or not (an ended one waits for its link to be
 * told), so that unloading the module can end them all. */
static bosh_session *all;

bosh_session *bosh_session_new(void)
{
    bosh_session *s = xcalloc(1, sizeof *s);
    s->all_next = all;
    if (all)
        all->all_prev = s;
    all = s;
    buf_init(&s->queue);
    s->inactivity = evtimer_new(tern_event_base(), on_inactivity, s);
    s->work_ev = event_new(tern_event_base(), -1, 0, on_work, s);
    s->end_ev = event_new(tern_event_base(), -1, 0, on_end, s);
    return s;
}

/* ---- what the link does (bosh.h) ---- */

void bosh_set_stream_info(bosh_session *s, const char *id, const char *from)
{
    free(s->authid);
    free(s->from);
    s->authid = xstrdup(id);
    s->from = from ? xstrdup(from) : NULL;
}

/* Output waits for the client's next request; a client that stops collecting it (one that
 * paused, or vanished) must not make the server hold an unbounded amount. */
static size_t queue_limit(void)
{
    size_t four = 4 * tern_c2s_max_stanza_size();
    return four > BOSH_MIN_QUEUE ? four : BOSH_MIN_QUEUE;
}

/* Queues `element`, or the children of `children_of`, between `open` and `close`. */
static void queue_xml(bosh_session *s, const char *open, const tern_xml *children_of,
                      const tern_xml *element, const char *close)
{
    if (s->terminal || s->ended || s->overflow)
        return;
    size_t before = s->queue.len;
    buf_append_str(&s->queue, open);
    /* XEP-0206 §3: the body's default namespace is httpbind, so each stanza carries its own
     * xmlns='jabber:client', and the children of stream:features/error their namespaces. */
    if (element)
        xml_serialize(element, NS_HTTPBIND, &s->queue);
    for (const tern_xml *c = children_of ? xml_first_element(children_of) : NULL; c;
         c = xml_next_element(c))
        xml_serialize(c, NS_HTTPBIND, &s->queue);
    buf_append_str(&s->queue, close);
    if (s->queue.len > queue_limit()) {
        s->queue.len = before;
        s->overflow = true; /* a policy-violation stream error, from work() */
        log_warn(s->id, "bosh: more than %zu bytes wait for the client", queue_limit());
    } else if (*open) {
        s->queue_stream_ns = true; /* <stream:features/>, <stream:error/> */
    }
    kick(s);
}

void bosh_queue(bosh_session *s, const tern_xml *element) { queue_xml(s, "", NULL, element, ""); }

void bosh_queue_features(bosh_session *s, const tern_xml *features)
{
    queue_xml(s, "<stream:features>", features, NULL, "</stream:features>");
}

void bosh_terminate(bosh_session *s, const tern_xml *stream_error)
{
    if (s->terminal || s->ended)
        return;
    if (s->overflow) { /* the error goes out in place of what did not fit */
        buf_reset(&s->queue);
        s->queue_stream_ns = false;
        s->overflow = false;
    }
    if (stream_error)
        queue_xml(s, "<stream:error>", stream_error, NULL, "</stream:error>");
    s->terminal = stream_error ? "remote-stream-error" : "";
    kick(s);
}

void bosh_expect_restart(bosh_session *s) { s->restart_expected = true; }

void bosh_pause_input(bosh_session *s, bool paused)
{
    s->input_paused = paused;
    if (!paused)
        kick(s);
}

bool bosh_secure(const bosh_session *s) { return s->secure; }

const char *bosh_peer(const bosh_session *s) { return s->peer; }

void bosh_session_free(bosh_session *s)
{
    if (!s->ended) { /* at exit: whoever still waits hears why */
        if (!s->terminal)
            s->terminal = "system-shutdown";
        s->ended = true;
        forget(s);
    }
    while (s->held)
        answer(s, s->held, false);
    while (s->pending)
        answer(s, s->pending, false);
    for (size_t i = 0; i < BOSH_KEPT_RESPONSES; i++)
        free(s->kept[i].body);
    buf_free(&s->queue);
    event_free(s->inactivity);
    event_free(s->work_ev);
    event_free(s->end_ev);
    free(s->peer);
    free(s->to);
    free(s->content_type);
    free(s->authid);
    free(s->from);
    free(s->key);
    if (s->all_prev)
        s->all_prev->all_next = s->all_next;
    else
        all = s->all_next;
    if (s->all_next)
        s->all_next->all_prev = s->all_prev;
    free(s);
}

void bosh_session_end_all(const char *reason)
{
    while (all) {
        bosh_session *s = all;
        if (!s->terminal)
            s->terminal = "system-shutdown";
        if (s->link) /* c2s ends its session and frees the link, which frees s */
            s->link_ops->ended(s->link, reason);
        else
            bosh_session_free(s);
    }
}
