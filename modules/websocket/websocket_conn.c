/* websocket_conn.c — WebSocket framing (RFC 6455 §5) on an upgraded connection, server side,
 * with wslay's event API doing the frames.
 *
 * What wslay enforces for us as it reads: client frames must be masked (§5.1) and carry no RSV
 * bits (§5.2), control frames are short and unfragmented (§5.5), continuation frames continue
 * something (§5.4), a message fits in max_message bytes, and text is valid UTF-8 (§8.1); each
 * violation queues a Close with 1002, 1009 or 1007 and stops reading. It reassembles fragmented
 * messages, interleaved with control frames, answers Ping with Pong (§5.5.2) and echoes a
 * Close (§5.5.1). What is ours: binary messages (we only speak text: 1003), moving bytes
 * between wslay and the conn, holding messages back while paused, and when to close the TCP
 * connection.
 *
 * Bytes: wslay pulls input through recv_callback, which serves what the conn delivered (kept in
 * `in`); output goes through send_callback straight into the conn's output buffer, which never
 * refuses, so wslay's send queue drains at once. A message is sent as soon as it is queued, even
 * from inside wslay's receive callbacks (wslay keeps its reading and writing state apart): wslay
 * sends queued control frames before queued data, so data must not wait behind a Close it
 * queues later (the echo of a client's Close right behind its <close/>).
 *
 * Closing (§7.1): after our Close is out we wait up to WS_CLOSE_WAIT_SECONDS for the peer's,
 * then close the TCP connection (the server closes it first, §7.1.1). After a Close that ends
 * the connection for a protocol error, or once both Close frames passed, we close at once. */
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include <event2/event.h>
#include <tern/log.h>
#include <tern/util.h>
#include <tern/module.h>

#include "rfc6455.h"

#define WS_CLOSE_WAIT_SECONDS 5

typedef struct held_message {
    struct held_message *next;
    size_t len;
    char data[];
} held_message;

struct ws_conn {
    uint64_t id;
    conn *conn;
    wslay_event_context_ptr ws;
    const ws_handlers *h;
    void *ctx;
    tern_buf in;                 /* received bytes wslay has not taken yet */
    size_t in_off;
    held_message *held, **held_tail; /* messages that arrived while paused */
    struct event *resume;        /* reads `in` and the held messages on the next loop turn */
    struct event *close_timer;   /* waiting for the peer's Close */
    bool paused;
    bool close_queued;           /* our Close is queued: nothing more goes out or comes in */
    uint16_t close_pending;      /* the code of our Close, waiting until the data is out */
    bool tcp_closing;            /* conn_close() was called */
    const char *failure;         /* why we failed the connection, for the log */
};

static void pump(ws_conn *w);
static void close_tcp(ws_conn *w);

/* ---- wslay's side ---- */

static ssize_t recv_callback(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                             void *user_data)
{
    (void)flags;
    ws_conn *w = user_data;
    size_t have = w->in.len - w->in_off;
    if (w->paused || have == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = have < len ? have : len;
    memcpy(buf, w->in.data + w->in_off, n);
    w->in_off += n;
    return (ssize_t)n;
}

static ssize_t send_callback(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                             int flags, void *user_data)
{
    (void)ctx;
    (void)flags;
    ws_conn *w = user_data;
    buf_append(conn_outbuf(w->conn), data, len);
    return (ssize_t)len;
}

/* Ends the connection with a Close carrying `code`; reading stops at once. */
static void fail(ws_conn *w, uint16_t code, const char *why)
{
    if (!w->failure)
        w->failure = why;
    if (!w->close_queued) {
        w->close_queued = true;
        wslay_event_queue_close(w->ws, code, NULL, 0);
    }
    wslay_event_shutdown_read(w->ws);
}

/* A frame wslay could not even parse (a fragmented or oversized control frame, a bad length):
 * wslay has queued a Close without status code and given up. Ours says 1002 (§7.4.1), written
 * directly: a server's frames are unmasked, and wslay's output is always whole frames since
 * send_callback takes everything. Whatever else was queued is dropped with the connection. */
static void fail_malformed(ws_conn *w)
{
    static const char close_1002[] = { (char)0x88, 0x02, 0x03, (char)0xEA };
    if (w->tcp_closing)
        return;
    if (!w->failure)
        w->failure = "a malformed frame";
    w->close_queued = true;
    w->close_pending = 0;
    wslay_event_shutdown_read(w->ws);
    wslay_event_shutdown_write(w->ws);
    conn_write(w->conn, close_1002, sizeof close_1002);
    close_tcp(w);
}

static void hold(ws_conn *w, const uint8_t *data, size_t len)
{
    held_message *m = xmalloc(sizeof *m + len);
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    *w->held_tail = m;
    w->held_tail = &m->next;
}

static void on_msg_recv(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                        void *user_data)
{
    (void)ctx;
    ws_conn *w = user_data;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        /* After our Close, the peer's data is discarded (§1.4). */
        if (w->close_queued)
            return;
        if (w->paused || w->held)
            hold(w, arg->msg, arg->msg_length);
        else
            w->h->on_message(w->ctx, (const char *)arg->msg, arg->msg_length);
        return;
    case WSLAY_BINARY_FRAME:
        fail(w, WS_CLOSE_UNSUPPORTED_DATA, "a binary message (only text is accepted)");
        return;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay has queued the echo of the peer's Close. */
        log_debug(w->id, "websocket: the client closed (%u)", (unsigned)arg->status_code);
        w->close_queued = true;
        return;
    default: /* Ping (answered by wslay) and Pong */
        return;
    }
}

static const struct wslay_event_callbacks wslay_callbacks = {
    .recv_callback = recv_callback,
    .send_callback = send_callback,
    .on_msg_recv_callback = on_msg_recv,
};

/* ---- output and closing ---- */

static void close_tcp(ws_conn *w)
{
    if (w->tcp_closing)
        return;
    w->tcp_closing = true;
    if (w->close_timer)
        evtimer_del(w->close_timer);
    conn_close(w->conn); /* flushes what is queued, then on_closed */
}

static void on_close_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    close_tcp(arg);
}

/* Moves wslay's queue into the conn, then decides whether the TCP connection ends. */
static void flush(ws_conn *w)
{
    if (w->tcp_closing)
        return;
    int rc = wslay_event_send(w->ws);
    if (rc == 0 && w->close_pending) {
        /* wslay sends control frames before queued data: our Close is queued only now, so
         * the messages before it (RFC 7395's <close/>) go out first. */
        wslay_event_queue_close(w->ws, w->close_pending, NULL, 0);
        w->close_pending = 0;
        rc = wslay_event_send(w->ws);
    }
    if (rc != 0) {
        close_tcp(w);
        return;
    }
    conn_flush(w->conn);
    if (!wslay_event_get_close_sent(w->ws))
        return;
    if (wslay_event_get_close_received(w->ws) || !wslay_event_get_read_enabled(w->ws)) {
        close_tcp(w);
    } else if (!w->close_timer) {
        w->close_timer = evtimer_new(tern_event_base(), on_close_timeout, w);
        struct timeval tv = { WS_CLOSE_WAIT_SECONDS, 0 };
        evtimer_add(w->close_timer, &tv);
    }
}

void ws_send_text(ws_conn *w, const char *data, size_t len)
{
    if (w->close_queued || w->tcp_closing)
        return;
    struct wslay_event_msg msg = { WSLAY_TEXT_FRAME, (const uint8_t *)data, len };
    if (wslay_event_queue_msg(w->ws, &msg) != 0)
        return;
    flush(w);
}

void ws_close(ws_conn *w, uint16_t code)
{
    if (w->close_queued || w->tcp_closing)
        return;
    w->close_queued = true;
    w->close_pending = code;
    flush(w);
}

/* ---- input ---- */

static void deliver_held(ws_conn *w)
{
    while (w->held && !w->paused && !w->close_queued) {
        held_message *m = w->held;
        w->held = m->next;
        if (!w->held)
            w->held_tail = &w->held;
        w->h->on_message(w->ctx, m->data, m->len);
        free(m);
    }
}

/* Reads what is buffered, as far as the pause allows, and sends what that produced. */
static void pump(ws_conn *w)
{
    if (w->tcp_closing)
        return;
    deliver_held(w);
    if (!w->paused && !w->held && wslay_event_get_read_enabled(w->ws) &&
        w->in.len > w->in_off) {
        int rc = wslay_event_recv(w->ws);
        if (rc != 0)
            fail_malformed(w);
    }
    /* Drop what wslay took; keep what waits behind a pause. */
    if (w->in_off == w->in.len) {
        buf_reset(&w->in);
        w->in_off = 0;
    } else if (w->in_off > 0) {
        memmove(w->in.data, w->in.data + w->in_off, w->in.len - w->in_off);
        w->in.len -= w->in_off;
        w->in_off = 0;
    }
    /* wslay stops reading when it failed the connection (its Close is queued) or after the
     * peer's Close: either way nothing more goes out but that Close. */
    if (!wslay_event_get_read_enabled(w->ws))
        w->close_queued = true;
    flush(w);
}

static void on_data(void *ctx, const char *data, size_t len)
{
    ws_conn *w = ctx;
    if (w->tcp_closing)
        return;
    buf_append(&w->in, data, len);
    pump(w);
}

static void on_tls_ready(void *ctx) { (void)ctx; }

/* Why the connection ended, for the owner's log. */
static const char *end_reason(ws_conn *w, const char *transport_reason)
{
    if (w->failure)
        return w->failure;
    switch (wslay_event_get_status_code_sent(w->ws)) {
    case WS_CLOSE_PROTOCOL_ERROR:
        return "WebSocket protocol error (1002)";
    case WS_CLOSE_INVALID_PAYLOAD:
        return "a text message that is not UTF-8 (1007)";
    case WS_CLOSE_TOO_BIG:
        return "a message over [c2s] max_stanza_size (1009)";
    default:
        break;
    }
    if (wslay_event_get_close_received(w->ws))
        return "WebSocket closed by the client";
    if (wslay_event_get_close_sent(w->ws))
        return "WebSocket closed";
    return transport_reason;
}

static void on_closed(void *ctx, const char *reason)
{
    ws_conn *w = ctx;
    log_debug(w->id, "websocket: Close sent %u, received %u",
              (unsigned)wslay_event_get_status_code_sent(w->ws),
              (unsigned)wslay_event_get_status_code_received(w->ws));
    w->h->on_closed(w->ctx, end_reason(w, reason)); /* may free w */
}

static void on_send_overflow(void *ctx, const char *why)
{
    ws_conn *w = ctx;
    if (w->h->on_send_overflow)
        w->h->on_send_overflow(w->ctx, why);
    else {
        fail(w, WS_CLOSE_POLICY_VIOLATION, why);
        event_active(w->resume, 0, 0); /* pump() writes the Close */
    }
}

static const conn_handlers ws_conn_handlers = {
    .on_data = on_data,
    .on_tls_ready = on_tls_ready,
    .on_closed = on_closed,
    .on_send_overflow = on_send_overflow,
};

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

/* ---- life cycle ---- */

ws_conn *ws_conn_new(conn *c, const ws_handlers *h, void *ctx, size_t max_message, uint64_t id,
                     const char *rest, size_t rest_len)
{
    ws_conn *w = xcalloc(1, sizeof *w);
    w->id = id;
    w->conn = c;
    w->h = h;
    w->ctx = ctx;
    w->held_tail = &w->held;
    buf_init(&w->in);
    if (wslay_event_context_server_init(&w->ws, &wslay_callbacks, w) != 0)
        abort(); /* out of memory, as everywhere */
    wslay_event_config_set_max_recv_msg_length(w->ws, max_message);
    w->resume = event_new(tern_event_base(), -1, 0, on_resume, w);
    conn_set_owner(c, &ws_conn_handlers, w, id);
    if (rest_len) {
        buf_append(&w->in, rest, rest_len);
        event_active(w->resume, 0, 0);
    }
    return w;
}

void ws_conn_free(ws_conn *w)
{
    if (!w)
        return;
    while (w->held) {
        held_message *m = w->held;
        w->held = m->next;
        free(m);
    }
    if (w->close_timer)
        event_free(w->close_timer);
    event_free(w->resume);
    wslay_event_context_free(w->ws);
    buf_free(&w->in);
    conn_free(w->conn); /* deferred by conn when called from one of its callbacks */
    free(w);
}

void ws_pause(ws_conn *w, bool paused)
{
    if (w->paused == paused)
        return;
    w->paused = paused;
    conn_pause_reading(w->conn, paused);
    if (!paused)
        event_active(w->resume, 0, 0); /* held messages and buffered bytes, not from here */
}

conn *ws_conn_transport(ws_conn *w) { return w->conn; }
