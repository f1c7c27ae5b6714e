/* bosh_route.c — the front door of the BOSH connection manager (XEP-0124) at /http-bind, for XMPP
 * over BOSH (XEP-0206). The bosh module routes POST /http-bind here. What this file decides
 * about each request, in order:
 *   1. Its <body/> is parsed with the stream parser, so the restricted XML and the [c2s]
 *      max_stanza_size of a client stream apply (the body is the root instead of
 *      <stream:stream/>).
 *   2. Without 'sid' it asks for a new session (§7); with an unknown sid it gets 404 and
 *      item-not-found.
 *   3. A session created over HTTPS takes no request over plain HTTP (§16.1).
 *   4. Its rid: a repeat of an open request joins it, a repeat of an answered one gets the
 *      kept answer again (§14.3), one beyond the window ends the session (§14.2).
 *   5. Too many open requests, or empty ones too often, are a policy violation (§11, §13).
 * What passes goes to its session (bosh_session.c), which processes requests in rid order.
 *
 * Not implemented: multiple streams per session (§20; no 'stream' attribute is offered),
 * content encodings ('accept'), character sets other than UTF-8 ('charsets'), the 'report'
 * and 'time' attributes of §9.2, and 'route' (tern serves its own hosts only). */
#include "bosh_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tern/c2s.h>
#include <tern/http.h>
#include <tern/ns.h>
#include <tern/stream.h>
#include <tern/util.h>

#include "bosh_link.h"
#include "bosh_session.h"

#define BOSH_MAX_DEPTH 64
#define BOSH_MAX_RID 9007199254740991ULL /* 2^53 - 1 (§14.1) */

/* A decimal number (digits only) no greater than max. */
static bool parse_number(const char *text, uint64_t max, uint64_t *out)
{
    if (!text || !*text || strlen(text) > 20)
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || v > (max - (uint64_t)(*p - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

static unsigned number_or(const char *text, unsigned fallback, unsigned max)
{
    uint64_t v;
    if (!parse_number(text, 1000000, &v))
        return fallback;
    return v > max ? max : (unsigned)v;
}

/* A terminal binding condition for a request that belongs to no session. */
static void refuse(tern_http_request *http, int status, const char *condition)
{
    log_info(tern_http_id(http), "bosh: refusing a request from %s: %s", tern_http_peer(http),
             condition);
    char *body = xasprintf("<body xmlns='" NS_HTTPBIND "' type='terminate' condition='%s'/>",
                           condition);
    tern_http_respond(http, status, BOSH_CONTENT_TYPE, body, strlen(body));
    free(body);
}

/* ---- parsing a request body ---- */

typedef struct parsed_body {
    tern_xml *body;
    tern_xml **payloads;
    size_t n, cap;
    bool closed, failed;
    tern_stream_error error;
    const char *error_text;
} parsed_body;

static void on_body_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    (void)default_ns;
    parsed_body *pb = ctx;
    pb->body = xml_copy(header);
}

static void on_payload(void *ctx, tern_xml *x)
{
    parsed_body *pb = ctx;
    if (pb->n == pb->cap) {
        pb->cap = pb->cap ? pb->cap * 2 : 4;
        pb->payloads = xrealloc(pb->payloads, pb->cap * sizeof *pb->payloads);
    }
    pb->payloads[pb->n++] = x;
}

static void on_body_close(void *ctx)
{
    parsed_body *pb = ctx;
    pb->closed = true;
}

static void on_body_error(void *ctx, tern_stream_error cond, const char *text)
{
    parsed_body *pb = ctx;
    pb->failed = true;
    pb->error = cond;
    pb->error_text = text; /* static strings of the parser and expat */
}

static const stream_parser_callbacks body_callbacks = {
    on_body_open, on_payload, on_body_close, on_body_error,
};

/* The same rules as a client stream (§4 of XEP-0124 forbids the same things): payloads are
 * limited to [c2s] max_stanza_size each; the whole body to [http] max_body_size. */
static void parse_body(const char *text, size_t len, parsed_body *pb)
{
    stream_parser *p = stream_parser_new(&body_callbacks, pb, tern_c2s_max_stanza_size(),
                                         BOSH_MAX_DEPTH);
    stream_parser_set_root(p, NS_HTTPBIND, "body", NS_CLIENT);
    stream_parser_feed(p, text, len);
    stream_parser_free(p);
    if (!pb->closed && !pb->failed) {
        pb->failed = true;
        pb->error = STREAM_ERR_NOT_WELL_FORMED;
        pb->error_text = "the body is not complete";
    }
}

static void parsed_body_free(parsed_body *pb)
{
    for (size_t i = 0; i < pb->n; i++)
        xml_unref(pb->payloads[i]);
    free(pb->payloads);
    if (pb->body)
        xml_unref(pb->body);
}

/* ---- a request for an existing session ---- */

/* §11 and §13: too many requests at once, or empty ones too often. */
static bool overactive(const bosh_session *s, const bosh_request *r)
{
    size_t after = bosh_outstanding(s) + 1;
    if (after > s->requests + ((r->pause || r->terminate) ? 1u : 0u))
        return true;
    bool soon = now_ms() - s->last_arrival_ms < BOSH_POLLING * 1000;
    if (!r->empty || !soon)
        return false;
    if (s->hold == 0 || s->wait == 0) /* a polling session (§13) */
        return s->last_empty && s->last_answer_empty;
    return after == s->requests;
}

static void session_request(bosh_session *s, tern_http_request *http, parsed_body *pb)
{
    if (s->secure && !tern_http_secure(http)) {
        /* §16.1: refused, and the session is not ended (that would hand anyone who saw its
         * sid a way to end it). */
        log_info(s->id, "bosh: a request for secure session %s came over plain HTTP", s->sid);
        tern_http_respond(http, 403, NULL, NULL, 0);
        parsed_body_free(pb);
        return;
    }
    uint64_t rid = 0;
    bool rid_ok = parse_number(xml_attr(pb->body, "rid"), BOSH_MAX_RID, &rid);
    /* A payload over a size or depth limit is the stream error a TCP client gets (in rid
     * order); any other XML fault is binding syntax that XEP-0124 §4 forbids. */
    bool unusable = pb->failed && pb->error != STREAM_ERR_POLICY_VIOLATION;
    const char *error_text = pb->failed ? pb->error_text : NULL;
    tern_stream_error error = pb->error;
    bosh_request *r = bosh_request_new(s, http, rid, pb->body, pb->payloads, pb->n);
    *pb = (parsed_body){ 0 };
    evtimer_del(s->inactivity);
    if (s->terminal) {
        bosh_session_deliver_terminal(s, r); /* a terminal <body/> is owed: this one gets it */
        return;
    }
    if (!rid_ok || unusable) {
        log_info(s->id, "bosh: bad request: %s", rid_ok ? error_text : "no valid rid");
        bosh_session_fail(s, "bad-request", r);
        return;
    }
    if (error_text) {
        r->error = error;
        r->error_text = xstrdup(error_text);
    }
    s->pause = 0; /* §12: back to normal with the next request */
    bosh_request *open = bosh_session_find_open(s, rid);
    if (open) {
        bosh_session_attach(open, r);
        return;
    }
    if (rid < s->next_rid) {
        const kept_response *k = bosh_session_find_kept(s, rid);
        if (!k) {
            bosh_session_fail(s, "item-not-found", r);
            return;
        }
        log_debug(s->id, "bosh: resending the answer to %llu", (unsigned long long)rid);
        tern_http_respond(http, 200, s->content_type, k->body, k->len);
        r->http[0] = NULL;
        bosh_request_free(r);
        bosh_session_idle(s);
        return;
    }
    if (rid - s->next_rid >= s->requests) { /* §14.2: beyond the window */
        bosh_session_fail(s, "item-not-found", r);
        return;
    }
    if (overactive(s, r)) {
        bosh_session_fail(s, "policy-violation", r);
        return;
    }
    s->last_arrival_ms = now_ms();
    s->last_empty = r->empty;
    bosh_session_accept(s, r);
}

/* ---- session creation (§7) ---- */

/* Whether the host loads the bosh module (its /http-bind route leads here). */
typedef struct route_check {
    bool found;
} route_check;

static void check_route(void *ctx, const char *item, const void *data)
{
    (void)item;
    const tern_http_route *route = data;
    if (route->handler == bosh_route_handle)
        ((route_check *)ctx)->found = true;
}

static tern_host *bosh_host(const char *to)
{
    char *domain = NULL;
    tern_host *host = NULL;
    if (to && jid_prep_domain(to, &domain) == 0)
        host = tern_server_host(domain);
    free(domain);
    route_check check = { false };
    if (host)
        tern_registry_each(host, TERN_REG_HTTP_ROUTE, check_route, &check);
    return check.found ? host : NULL;
}

/* 'ver': the lower of the client's and ours (§7.2); the major must be 1. */
static unsigned negotiate_minor(const char *ver)
{
    unsigned major = 0, minor = 0;
    if (!ver || sscanf(ver, "%u.%u", &major, &minor) != 2 || major > BOSH_VERSION_MAJOR)
        return BOSH_VERSION_MINOR;
    return major < BOSH_VERSION_MAJOR || minor > BOSH_VERSION_MINOR ? BOSH_VERSION_MINOR : minor;
}

static void create_session(tern_http_request *http, parsed_body *pb)
{
    const tern_xml *body = pb->body;
    bool legacy = !xml_attr(body, "ver");
    uint64_t rid;
    const char *to = xml_attr(body, "to");
    const char *why;
    const char *refusal = NULL;
    if (pb->failed || !parse_number(xml_attr(body, "rid"), BOSH_MAX_RID, &rid))
        refusal = "bad-request";
    else if (!to || !*to)
        refusal = "improper-addressing";
    else if (!bosh_host(to))
        refusal = "host-unknown";
    else if (!c2s_accepting(tern_http_peer(http), &why))
        refusal = tern_server_stopping() ? "system-shutdown" : "remote-connection-failed";
    if (refusal) {
        /* §17.1: a legacy client (no 'ver') hears of its bad request as HTTP 400. */
        refuse(http, legacy && !strcmp(refusal, "bad-request") ? 400 : 200, refusal);
        parsed_body_free(pb);
        return;
    }
    bosh_session *s = bosh_session_new();
    random_token(s->sid, BOSH_SID_LEN);
    s->peer = xstrdup(tern_http_peer(http));
    s->to = xstrdup(to);
    s->legacy = legacy;
    s->secure = tern_http_secure(http);
    s->wait = number_or(xml_attr(body, "wait"), BOSH_MAX_WAIT, BOSH_MAX_WAIT);
    s->hold = number_or(xml_attr(body, "hold"), BOSH_MAX_HOLD, BOSH_MAX_HOLD);
    s->requests = s->hold + 1;
    s->ver_minor = negotiate_minor(xml_attr(body, "ver"));
    const char *content = xml_attr(body, "content"); /* §7.1: our Content-Type throughout */
    s->content_type = xstrdup(content && tern_http_valid_header("Content-Type", content)
                                  ? content : BOSH_CONTENT_TYPE);
    const char *ack = xml_attr(body, "ack");
    s->acks = ack && strcmp(ack, "1") == 0; /* §9.1 */
    if (xml_attr(body, "newkey")) /* §15 */
        s->key = xstrdup(xml_attr(body, "newkey"));
    s->next_rid = rid;
    s->last_arrival_ms = now_ms();
    bosh_session_register(s);
    s->link_ops = &bosh_c2s_link;
    s->link = bosh_link_new(s);
    s->id = bosh_link_id(s->link);
    log_info(s->id, "bosh: session %s from %s%s (wait %u, hold %u)", s->sid, s->peer,
             s->secure ? " over HTTPS" : "", s->wait, s->hold);
    bosh_request *r = bosh_request_new(s, http, rid, pb->body, pb->payloads, pb->n);
    *pb = (parsed_body){ 0 };
    r->creation = true;
    bosh_session_accept(s, r);
}

/* ---- the route ---- */

void bosh_route_handle(tern_http_request *http, void *data)
{
    (void)data;
    size_t len;
    const char *text = tern_http_body(http, &len);
    parsed_body pb = { 0 };
    parse_body(text, len, &pb);
    if (!pb.body) {
        /* No <body/> to speak of: nothing tells which session or which client version. */
        refuse(http, 400, "bad-request");
        parsed_body_free(&pb);
        return;
    }
    const char *sid = xml_attr(pb.body, "sid");
    if (!sid) {
        create_session(http, &pb);
        return;
    }
    bosh_session *s = bosh_session_by_sid(sid);
    if (!s) {
        /* §17.2 item-not-found, with the 404 of §17.1 as well: whether the client is a
         * legacy one is unknown without its session, and the body tells a newer one. */
        refuse(http, 404, "item-not-found");
        parsed_body_free(&pb);
        return;
    }
    session_request(s, http, &pb);
}
