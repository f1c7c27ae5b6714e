/* ws_link.c — the RFC 7395 client link: an XMPP stream over WebSocket, so that a web
 * client is the same kind of session as a TCP client (c2s.c does the negotiation; see
 * tern/c2s.h for the contract), and ws_link_serve(), which turns an HTTP request
 * into such a stream.
 *
 * Framing (RFC 7395 §3.3): every WebSocket message is one complete XML element, a document of
 * its own. Each is parsed with the stream parser TCP uses (stream_parse_element: the same size
 * and depth limits, the same refusal of DTDs, comments and processing instructions), as if in a
 * stream whose header declared jabber:client the default namespace, so a stanza that forgot its
 * xmlns (§3.3.3 asks for it on every element) still reads as what it can only mean. Anything
 * but exactly one complete element is a stream error.
 *
 *   <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to=... version='1.0'/>
 *       the stream header (§3.3.1), passed on with the content namespace jabber:client;
 *       expected first and after every restart (SASL success: §3.5);
 *   <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>   the client's end of stream (§3.6);
 *   anything else                                          an element of the stream.
 *
 * Our side: <open/> with id, from, to, version and xml:lang; <stream:features/> and
 * <stream:error/> with the stream prefix declared on them; stanzas serialized with their own
 * xmlns='jabber:client'; our close is <close/> followed by the WebSocket closing handshake,
 * after a stream error too (§3.6.1). There is no STARTTLS (§3.4: TLS is wss://); the stream
 * counts as encrypted when the HTTP connection is TLS, and SASL channel binding uses that TLS
 * session. */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <tern/c2s.h>
#include <tern/http.h>
#include <tern/log.h>
#include <tern/util.h>
#include <tern/module.h>
#include <tern/ns.h>
#include <tern/stream.h>

#include "rfc6455.h"
#include "ws_link.h"

#define SUBPROTOCOL "xmpp" /* RFC 7395 §3.1 */
/* As on TCP: far deeper than any real stanza nests. */
#define MAX_DEPTH 64

typedef struct ws_link {
    c2s *c2s;
    ws_conn *ws;
    char *path;          /* the route the handshake came on: a stream's host must serve it */
    bool expect_open;    /* the next element must be <open/>: at first and after a restart */
    bool closed;         /* our side ended: no more output, no more input */
    int feeding;         /* inside c2s with a message */
    bool ended_pending;  /* the connection ended meanwhile; report it afterwards */
    const char *ended_reason;
    struct ws_link *prev, *next; /* every live link, so that unloading can end them */
} ws_link;

static ws_link *links;

/* ---- output (the link operations) ---- */

static void send_buf(ws_link *l, tern_buf *b) { ws_send_text(l->ws, b->data, b->len); }

static void append_attr(tern_buf *b, const char *name, const char *value)
{
    if (!value)
        return;
    buf_printf(b, " %s='", name);
    buf_append_escaped(b, value, strlen(value));
    buf_append_str(b, "'");
}

static void ws_open(void *ctx, const c2s_stream_header *h)
{
    ws_link *l = ctx;
    if (l->closed)
        return;
    tern_buf b;
    buf_init(&b);
    buf_append_str(&b, "<open xmlns='" NS_FRAMING "'");
    append_attr(&b, "id", h->id);
    append_attr(&b, "from", h->from);
    append_attr(&b, "to", h->to);
    append_attr(&b, "version", h->version);
    append_attr(&b, "xml:lang", h->lang);
    buf_append_str(&b, "/>");
    send_buf(l, &b);
    buf_free(&b);
}

/* <stream:NAME xmlns:stream=...> children </stream:NAME>, each child with its own xmlns. */
static void append_stream_element(tern_buf *b, const char *name, const tern_xml *x)
{
    buf_printf(b, "<stream:%s xmlns:stream='" NS_STREAMS "'>", name);
    for (const tern_xml *child = xml_first_element(x); child; child = xml_next_element(child))
        xml_serialize(child, "", b);
    buf_printf(b, "</stream:%s>", name);
}

static void ws_send_features(void *ctx, const tern_xml *features)
{
    ws_link *l = ctx;
    if (l->closed)
        return;
    tern_buf b;
    buf_init(&b);
    append_stream_element(&b, "features", features);
    send_buf(l, &b);
    buf_free(&b);
}

/* No namespace in force: a stanza carries xmlns='jabber:client' itself (§3.3.3). */
static void ws_send(void *ctx, const tern_xml *element)
{
    ws_link *l = ctx;
    if (l->closed)
        return;
    tern_buf b;
    buf_init(&b);
    xml_serialize(element, "", &b);
    send_buf(l, &b);
    buf_free(&b);
}

static void send_close(ws_link *l)
{
    static const char close_element[] = "<close xmlns='" NS_FRAMING "'/>";
    ws_send_text(l->ws, close_element, sizeof close_element - 1);
    ws_close(l->ws, WS_CLOSE_NORMAL);
    l->closed = true;
}

static void ws_stream_error(void *ctx, const tern_xml *error)
{
    ws_link *l = ctx;
    if (l->closed)
        return;
    tern_buf b;
    buf_init(&b);
    append_stream_element(&b, "error", error);
    send_buf(l, &b);
    buf_free(&b);
    send_close(l);
}

static void ws_link_close(void *ctx)
{
    ws_link *l = ctx;
    if (!l->closed)
        send_close(l);
}

/* §3.5: a restart is the client's next <open/>; nothing of the old stream is carried over,
 * since every message is parsed on its own. */
static void ws_restart(void *ctx)
{
    ws_link *l = ctx;
    l->expect_open = true;
}

static void ws_pause_reading(void *ctx, bool paused)
{
    ws_link *l = ctx;
    ws_pause(l->ws, paused);
}

static bool ws_encrypted(void *ctx)
{
    ws_link *l = ctx;
    return conn_is_tls(ws_conn_transport(l->ws));
}

static int ws_channel_binding(void *ctx, const char *type, gnutls_datum_t *out)
{
    ws_link *l = ctx;
    return conn_channel_binding(ws_conn_transport(l->ws), type, out);
}

static const char *ws_peer(void *ctx)
{
    ws_link *l = ctx;
    return conn_peer(ws_conn_transport(l->ws));
}

static void ws_link_free(void *ctx)
{
    ws_link *l = ctx;
    if (l->prev)
        l->prev->next = l->next;
    else
        links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    ws_conn_free(l->ws);
    free(l->path);
    free(l);
}

static const c2s_link ws_link_ops = {
    .open = ws_open,
    .send_features = ws_send_features,
    .send = ws_send,
    .stream_error = ws_stream_error,
    .close = ws_link_close,
    .restart = ws_restart,
    .start_tls = NULL, /* §3.4: TLS is the wss:// layer's */
    .pause_reading = ws_pause_reading,
    .encrypted = ws_encrypted,
    .channel_binding = ws_channel_binding,
    .peer = ws_peer,
    .free = ws_link_free,
};

/* ---- input ---- */

typedef struct route_match {
    const char *path;
    bool found;
} route_match;

static void match_route(void *ctx, const char *item, const void *data)
{
    route_match *m = ctx;
    (void)data;
    if (strcmp(item, m->path) == 0)
        m->found = true;
}

/* A host serves XMPP over WebSocket when it loaded the module that routes this path: a
 * stream may not reach a host whose operator left WebSocket off, whichever host answered
 * the HTTP request. A 'to' naming no host of ours is left for c2s to refuse. */
static bool host_refused(ws_link *l, const tern_xml *open)
{
    const char *to = xml_attr(open, "to");
    char *domain = NULL;
    tern_host *host = NULL;
    if (to && jid_prep_domain(to, &domain) == 0)
        host = tern_server_host(domain);
    free(domain);
    if (!host)
        return false;
    route_match m = { l->path, false };
    tern_registry_each(host, TERN_REG_HTTP_ROUTE, match_route, &m);
    return !m.found;
}

static void handle_element(ws_link *l, tern_xml *x)
{
    if (xml_is(x, "close", NS_FRAMING)) {
        xml_unref(x);
        c2s_received_close(l->c2s);
        return;
    }
    if (!l->expect_open) {
        c2s_received_element(l->c2s, x); /* takes x; a stray <open/> is refused there */
        return;
    }
    if (!xml_is(x, "open", NS_FRAMING)) {
        /* As on TCP when the root is not <stream:stream/> (RFC 6120 §4.8.1). */
        xml_unref(x);
        c2s_stream_error(l->c2s, STREAM_ERR_INVALID_NAMESPACE,
                         "the stream must begin with <open/> (RFC 7395 §3.3.1)");
        return;
    }
    l->expect_open = false;
    if (host_refused(l, x))
        c2s_stream_error(l->c2s, STREAM_ERR_HOST_UNKNOWN,
                         "this host does not serve XMPP over WebSocket");
    else
        c2s_received_header(l->c2s, x, NS_CLIENT);
    xml_unref(x);
}

static void on_message(void *ctx, const char *data, size_t len)
{
    ws_link *l = ctx;
    if (l->closed)
        return;
    tern_xml *x;
    tern_stream_error cond;
    const char *text;
    l->feeding++;
    if (stream_parse_element(data, len, NS_CLIENT, tern_c2s_max_stanza_size(), MAX_DEPTH,
                             &x, &cond, &text) != 0)
        c2s_stream_error(l->c2s, cond, text);
    else if (x)
        handle_element(l, x);
    l->feeding--;
    /* c2s may not be freed while it is on the stack: the end waited until now. */
    if (l->ended_pending && l->feeding == 0)
        c2s_link_ended(l->c2s, l->ended_reason);
}

static void on_closed(void *ctx, const char *reason)
{
    ws_link *l = ctx;
    if (l->feeding) {
        l->ended_pending = true;
        l->ended_reason = reason;
        return;
    }
    c2s_link_ended(l->c2s, reason);
}

static void on_send_overflow(void *ctx, const char *why)
{
    ws_link *l = ctx;
    c2s_stream_error(l->c2s, STREAM_ERR_POLICY_VIOLATION, why);
}

static const ws_handlers ws_callbacks = { on_message, on_closed, on_send_overflow };

/* ---- the HTTP side ---- */

static const char *request_header(const void *req, const char *name)
{
    return tern_http_header(req, name);
}

static bool request_has_token(const void *req, const char *name, const char *token)
{
    return tern_http_has_token(req, name, token);
}

void ws_link_serve(tern_http_request *req)
{
    const char *why;
    if (!c2s_accepting(tern_http_peer(req), &why)) {
        tern_http_respond(req, 503, NULL, NULL, 0);
        return;
    }
    ws_request m = { tern_http_method(req), tern_http_minor_version(req),
                     tern_http_authority(req), req, request_header, request_has_token };
    size_t n_origins;
    char *const *origins = tern_http_cors_origins(&n_origins);
    int status = ws_check_handshake(&m, SUBPROTOCOL, tern_http_secure(req), origins, n_origins,
                                    &why);
    if (status != 0) {
        log_info(tern_http_id(req), "websocket: refusing the handshake from %s: %d, %s",
                 tern_http_peer(req), status, why);
        if (status == 426)
            tern_http_add_header(req, "Sec-WebSocket-Version", "13");
        tern_http_respond(req, status, NULL, NULL, 0);
        return;
    }
    char accept[WS_ACCEPT_LEN + 1];
    ws_accept_value(tern_http_header(req, "Sec-WebSocket-Key"), accept);
    char fields[256];
    snprintf(fields, sizeof fields, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: " SUBPROTOCOL "\r\n",
             accept);
    char *path = xstrdup(tern_http_path(req));
    char peer[64]; /* the request is gone after the upgrade */
    snprintf(peer, sizeof peer, "%s", tern_http_peer(req));
    tern_buf rest;
    buf_init(&rest);
    conn *c = tern_http_upgrade(req, fields, &rest);
    if (!c) { /* not from a route handler: a bug */
        log_error(0, "websocket: the upgrade of %s was not made from its route handler", path);
        free(path);
        buf_free(&rest);
        return;
    }
    ws_link *l = xcalloc(1, sizeof *l);
    l->path = path;
    l->expect_open = true;
    l->next = links;
    if (links)
        links->prev = l;
    links = l;
    l->c2s = c2s_new(&ws_link_ops, l, peer);
    uint64_t id = c2s_id(l->c2s);
    l->ws = ws_conn_new(c, &ws_callbacks, l, tern_c2s_max_stanza_size(), id, rest.data,
                        rest.len);
    buf_free(&rest);
    log_info(id, "client connection from %s over WebSocket%s", conn_peer(c),
             conn_is_tls(c) ? " (TLS)" : "");
}

void ws_link_end_all(const char *reason)
{
    while (links) {
        ws_link *l = links;
        /* c2s ends its session and frees itself, and with it the link (off the list). */
        c2s_link_ended(l->c2s, reason);
    }
}
