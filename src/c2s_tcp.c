/* c2s_tcp.c — the RFC 6120 client link: an XMPP stream over a TCP connection (plain with
 * STARTTLS, or direct TLS per XEP-0368). It owns the conn (bytes and TLS) and the incremental
 * stream parser, writes the stream syntax around what c2s.c sends, and reports what the parser
 * finds to c2s.c (see c2s_link.h for the contract). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c2s_link.h"
#include "conn.h"
#include "server.h"
#include "stream.h"
#include "tern/log.h"
#include "tern/ns.h"
#include "util.h"

/* Far deeper than any real stanza nests; the parser refuses more before spending memory. */
#define MAX_DEPTH 64

typedef struct tcp_link {
    c2s *c2s;
    conn *conn;
    stream_parser *parser;
    bool handshaking;    /* a TLS handshake is pending: plaintext input is not the stream */
    bool closed;         /* our side ended: no more output, no more input */
    int feeding;         /* inside stream_parser_feed */
    bool ended_pending;  /* the conn ended while feeding; report it afterwards */
    const char *ended_reason;
} tcp_link;

/* ---- output (the link operations) ---- */

static void write_str(tcp_link *t, const char *text) { conn_write(t->conn, text, strlen(text)); }

/* Elements go out with jabber:client as the default namespace in force: the one our header
 * declared. */
static void write_element(tcp_link *t, const tern_xml *x)
{
    xml_serialize(x, NS_CLIENT, conn_outbuf(t->conn));
    conn_flush(t->conn);
}

static void write_children(tcp_link *t, const tern_xml *x)
{
    for (const tern_xml *child = xml_first_element(x); child; child = xml_next_element(child))
        write_element(t, child);
}

/* Our side is over: queued output is flushed, then the conn reports on_closed. */
static void end_transport(tcp_link *t)
{
    t->closed = true;
    conn_close(t->conn);
}

static void tcp_open(void *ctx, const c2s_stream_header *h)
{
    tcp_link *t = ctx;
    if (t->closed)
        return;
    tern_buf *out = conn_outbuf(t->conn);
    buf_append_str(out, "<?xml version='1.0'?><stream:stream xmlns='" NS_CLIENT
                        "' xmlns:stream='" NS_STREAMS "' id='");
    buf_append_str(out, h->id);
    if (h->from) {
        buf_append_str(out, "' from='");
        buf_append_escaped(out, h->from, strlen(h->from));
    }
    if (h->to) {
        buf_append_str(out, "' to='");
        buf_append_escaped(out, h->to, strlen(h->to));
    }
    buf_append_str(out, "' version='");
    buf_append_escaped(out, h->version, strlen(h->version));
    buf_append_str(out, "' xml:lang='");
    buf_append_escaped(out, h->lang, strlen(h->lang));
    buf_append_str(out, "'>");
    conn_flush(t->conn);
}

static void tcp_send_features(void *ctx, const tern_xml *features)
{
    tcp_link *t = ctx;
    if (t->closed)
        return;
    write_str(t, "<stream:features>");
    write_children(t, features);
    write_str(t, "</stream:features>");
}

static void tcp_send(void *ctx, const tern_xml *element)
{
    tcp_link *t = ctx;
    if (!t->closed)
        write_element(t, element);
}

static void tcp_stream_error(void *ctx, const tern_xml *error)
{
    tcp_link *t = ctx;
    if (t->closed)
        return;
    write_str(t, "<stream:error>");
    write_children(t, error);
    write_str(t, "</stream:error></stream:stream>");
    end_transport(t);
}

static void tcp_close(void *ctx)
{
    tcp_link *t = ctx;
    if (t->closed)
        return;
    write_str(t, "</stream:stream>");
    end_transport(t);
}

static void tcp_restart(void *ctx)
{
    tcp_link *t = ctx;
    /* Drops the rest of the chunk being parsed too: nothing may follow <success/> or
     * <starttls/> before the new header (RFC 6120 §5.4.3.3, §6.4.6). */
    stream_parser_reset(t->parser);
}

static int tcp_start_tls(void *ctx)
{
    tcp_link *t = ctx;
    if (t->closed)
        return -1;
    t->handshaking = true;
    if (conn_start_tls(t->conn, server.tls, NULL) != 0) {
        end_transport(t);
        return -1;
    }
    return 0;
}

static void tcp_pause_reading(void *ctx, bool paused)
{
    tcp_link *t = ctx;
    conn_pause_reading(t->conn, paused);
}

static bool tcp_encrypted(void *ctx)
{
    tcp_link *t = ctx;
    return conn_is_tls(t->conn);
}

static gnutls_session_t tcp_tls_session(void *ctx)
{
    tcp_link *t = ctx;
    return conn_tls_session(t->conn);
}

static const char *tcp_peer(void *ctx)
{
    tcp_link *t = ctx;
    return conn_peer(t->conn);
}

static void tcp_free(void *ctx)
{
    tcp_link *t = ctx;
    stream_parser_free(t->parser);
    conn_free(t->conn); /* deferred by conn when called from one of its callbacks */
    free(t);
}

static const c2s_link tcp_link_ops = {
    .open = tcp_open,
    .send_features = tcp_send_features,
    .send = tcp_send,
    .stream_error = tcp_stream_error,
    .close = tcp_close,
    .restart = tcp_restart,
    .start_tls = tcp_start_tls,
    .pause_reading = tcp_pause_reading,
    .encrypted = tcp_encrypted,
    .tls_session = tcp_tls_session,
    .peer = tcp_peer,
    .free = tcp_free,
};

/* ---- input (parser callbacks) ---- */

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    tcp_link *t = ctx;
    c2s_received_header(t->c2s, header, default_ns);
}

static void on_stanza(void *ctx, tern_xml *x)
{
    tcp_link *t = ctx;
    c2s_received_element(t->c2s, x);
}

static void on_close(void *ctx)
{
    tcp_link *t = ctx;
    c2s_received_close(t->c2s);
}

static void on_parse_error(void *ctx, tern_stream_error cond, const char *text)
{
    tcp_link *t = ctx;
    c2s_stream_error(t->c2s, cond, text);
}

static const stream_parser_callbacks parser_callbacks = {
    on_open, on_stanza, on_close, on_parse_error,
};

/* ---- connection events ---- */

static void on_data(void *ctx, const char *data, size_t len)
{
    tcp_link *t = ctx;
    if (t->closed || t->handshaking)
        return;
    t->feeding++;
    stream_parser_feed(t->parser, data, len);
    t->feeding--;
    /* The parser may not be freed from its own callbacks: the end waited until now. */
    if (t->ended_pending && t->feeding == 0)
        c2s_link_ended(t->c2s, t->ended_reason);
}

static void on_tls_ready(void *ctx)
{
    tcp_link *t = ctx;
    t->handshaking = false;
}

static void on_closed(void *ctx, const char *reason)
{
    tcp_link *t = ctx;
    if (t->feeding) {
        t->ended_pending = true;
        t->ended_reason = reason;
        return;
    }
    c2s_link_ended(t->c2s, reason);
}

static const conn_handlers conn_callbacks = { on_data, on_tls_ready, on_closed };

void c2s_accept(int fd, bool direct_tls)
{
    const char *why;
    if (!c2s_accepting(&why)) {
        log_warn(0, "refusing a client connection: %s", why);
        close(fd);
        return;
    }
    tcp_link *t = xcalloc(1, sizeof *t);
    t->c2s = c2s_new(&tcp_link_ops, t);
    uint64_t id = c2s_id(t->c2s);
    t->parser = stream_parser_new(&parser_callbacks, t, server.cfg->c2s_max_stanza_size,
                                  MAX_DEPTH);
    t->conn = conn_new(server.base, fd, &conn_callbacks, t, id);
    log_info(id, "client connection from %s%s", conn_peer(t->conn),
             direct_tls ? " (direct TLS)" : "");
    if (!direct_tls)
        return;
    /* XEP-0368: the handshake comes first. Set before starting: a handshake that fails at
     * once ends the conn (and frees t) from inside conn_start_tls. */
    t->handshaking = true;
    if (!server.tls || conn_start_tls(t->conn, server.tls, "xmpp-client") != 0)
        end_transport(t);
}
