/* tcp_stream.c — see tcp_stream.h. */
#include "net/tcp_stream.h"

#include <stdlib.h>

#include "core/stream.h"
#include "core/util.h"
#include "net/conn.h"

/* Far deeper than any real stanza nests; the parser refuses more before spending memory. */
#define MAX_DEPTH 64

struct tcp_stream {
    const tcp_stream_sink *sink;
    void *ctx;
    conn *conn;
    stream_parser *parser;
    struct event *ev_ended; /* reports an end that happened inside tcp_stream_new */
    bool handshaking;      /* a TLS handshake is pending: plaintext input is not the stream */
    bool over;             /* our side ended: no more output, no more input */
    bool paused;           /* by the owner */
    bool held;             /* see tcp_stream_hold_input */
    int feeding;           /* inside stream_parser_feed or tcp_stream_new */
    bool ended_pending;    /* the conn ended while feeding; report it afterwards */
    const char *ended_reason;
};

/* ---- parser callbacks ---- */

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    tcp_stream *s = ctx;
    s->sink->header(s->ctx, header, default_ns);
}

static void on_stanza(void *ctx, tern_xml *x)
{
    tcp_stream *s = ctx;
    s->sink->element(s->ctx, x);
}

static void on_close(void *ctx)
{
    tcp_stream *s = ctx;
    s->sink->closed_by_client(s->ctx);
}

static void on_parse_error(void *ctx, tern_stream_error cond, const char *text)
{
    tcp_stream *s = ctx;
    s->sink->parse_error(s->ctx, cond, text);
}

static const stream_parser_callbacks parser_callbacks = {
    on_open, on_stanza, on_close, on_parse_error,
};

/* ---- connection events ---- */

static void on_data(void *ctx, const char *data, size_t len)
{
    tcp_stream *s = ctx;
    if (s->over || s->handshaking)
        return;
    s->feeding++;
    stream_parser_feed(s->parser, data, len);
    s->feeding--;
    /* The parser may not be freed from its own callbacks: the end waited until now. */
    if (s->ended_pending && s->feeding == 0)
        s->sink->ended(s->ctx, s->ended_reason);
}

static void on_tls_ready(void *ctx)
{
    tcp_stream *s = ctx;
    s->handshaking = false;
    s->sink->tls_ready(s->ctx, conn_tls_session(s->conn));
}

static void on_closed(void *ctx, const char *reason)
{
    tcp_stream *s = ctx;
    if (s->feeding) {
        s->ended_pending = true;
        s->ended_reason = reason;
        return;
    }
    s->sink->ended(s->ctx, reason);
}

static void on_send_overflow(void *ctx, const char *why)
{
    tcp_stream *s = ctx;
    if (s->sink->send_overflow)
        s->sink->send_overflow(s->ctx, why);
    else
        tcp_stream_end(s);
}

static const conn_handlers conn_callbacks = {
    .on_data = on_data,
    .on_tls_ready = on_tls_ready,
    .on_closed = on_closed,
    .on_send_overflow = on_send_overflow,
};

static void on_deferred_end(evutil_socket_t fd, short what, void *arg)
{
    tcp_stream *s = arg;
    (void)fd;
    (void)what;
    s->sink->ended(s->ctx, s->ended_reason);
}

tcp_stream *tcp_stream_new(struct event_base *base, int fd, const tcp_stream_sink *sink,
                           void *ctx, uint64_t id, const tcp_stream_limits *limits,
                           tls_ctx *direct_tls)
{
    tcp_stream *s = xcalloc(1, sizeof *s);
    s->sink = sink;
    s->ctx = ctx;
    s->parser = stream_parser_new(&parser_callbacks, s, limits->max_stanza_size, MAX_DEPTH);
    s->conn = conn_new(base, fd, &conn_callbacks, s, id);
    conn_set_send_limits(s->conn, &limits->send);
    if (!direct_tls)
        return s;
    /* XEP-0368: the handshake comes first. It may fail at once, and the owner must not hear
     * of that before it has the stream: the end is reported from the next loop turn. */
    s->handshaking = true;
    s->feeding++;
    if (conn_start_tls(s->conn, direct_tls, "xmpp-client") != 0)
        tcp_stream_end(s);
    s->feeding--;
    if (s->ended_pending) {
        s->ev_ended = evtimer_new(base, on_deferred_end, s);
        event_active(s->ev_ended, EV_TIMEOUT, 0);
    }
    return s;
}

void tcp_stream_free(tcp_stream *s)
{
    if (!s)
        return;
    if (s->ev_ended)
        event_free(s->ev_ended);
    stream_parser_free(s->parser);
    conn_free(s->conn); /* deferred by conn when called from one of its callbacks */
    free(s);
}

tern_buf *tcp_stream_outbuf(tcp_stream *s) { return conn_outbuf(s->conn); }

void tcp_stream_flush(tcp_stream *s) { conn_flush(s->conn); }

void tcp_stream_end(tcp_stream *s)
{
    if (s->over)
        return;
    s->over = true;
    conn_close(s->conn);
}

bool tcp_stream_is_over(const tcp_stream *s) { return s->over; }

void tcp_stream_restart(tcp_stream *s) { stream_parser_reset(s->parser); }

int tcp_stream_start_tls(tcp_stream *s, tls_ctx *tls)
{
    if (s->over)
        return -1;
    s->handshaking = true;
    if (!tls || conn_start_tls(s->conn, tls, NULL) != 0) {
        tcp_stream_end(s);
        return -1;
    }
    return 0;
}

void tcp_stream_pause_reading(tcp_stream *s, bool paused)
{
    s->paused = paused;
    conn_pause_reading(s->conn, s->paused || s->held);
}

void tcp_stream_hold_input(tcp_stream *s, bool held)
{
    s->held = held;
    conn_pause_reading(s->conn, s->paused || s->held);
}

bool tcp_stream_encrypted(const tcp_stream *s) { return conn_is_tls(s->conn); }

gnutls_session_t tcp_stream_tls_session(const tcp_stream *s) { return conn_tls_session(s->conn); }

const char *tcp_stream_peer(const tcp_stream *s) { return conn_peer(s->conn); }
