/* conn.c — a connection's bytes: non-blocking socket I/O, GnuTLS, output batching, and a
 * lingering close (see conn.h).
 *
 * Why linger: when we close a socket whose receive queue still holds unread bytes (say the rest
 * of an oversized stanza we just refused), Linux answers with a RST, and the peer may then lose
 * the stream error we wrote just before. So after the last byte is written we shut down our
 * sending side and keep reading and discarding for a short while, until the peer closes too. */
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "tern/log.h"

#define READ_CHUNK 16384
#define TLS_RECORD 16384
#define CLOSE_FLUSH_SECONDS 5
#define LINGER_SECONDS 2

typedef enum conn_state { CONN_PLAIN, CONN_HANDSHAKE, CONN_TLS } conn_state;

struct conn {
    uint64_t id;
    int fd;
    struct event_base *base;
    struct event *ev_read;
    struct event *ev_write;
    struct event *ev_close_timer;
    conn_state state;
    gnutls_session_t tls;
    tls_ctx *tls_ctx;
    bool tls_pending;     /* start TLS once the plaintext output is flushed */
    tern_buf out;
    size_t out_sent;      /* bytes of `out` already written */
    const conn_handlers *h;
    void *ctx;
    bool paused;          /* by the owner */
    conn_send_limits limits;
    bool congested;       /* send queue over high_water: not reading (see conn.h) */
    bool overflowed;      /* on_send_overflow is due or done: no more checks */
    bool drained_due;     /* on_send_drained is due */
    struct event *ev_congested_timer;
    struct event *ev_notify; /* runs the overflow / drained handlers on their own turn */
    const char *overflow_why;
    bool closing;
    bool finished;        /* on_closed was called */
    int depth;            /* nesting of callbacks into the owner */
    bool free_requested;
    char peer[64];
};

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void try_write(conn *c);

/* ---- lingering close ---- */

typedef struct lingerer {
    int fd;
    struct event *ev;
    struct lingerer *prev, *next;
} lingerer;

/* Every socket still lingering, so that an exit can close them: one list per thread, since
 * each event loop (worker.h) lingers on the sockets of its own conns. */
static _Thread_local lingerer *lingering;

static void linger_done(lingerer *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    event_free(l->ev);
    close(l->fd);
    free(l);
}

void conn_close_lingering(void)
{
    while (lingering)
        linger_done(lingering);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    lingerer *l = arg;
    if (what & EV_TIMEOUT) {
        linger_done(l);
        return;
    }
    char sink[4096];
    for (;;) {
        ssize_t n = read(fd, sink, sizeof sink);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        linger_done(l); /* EOF or error: the peer is gone */
        return;
    }
}

static void linger_close(struct event_base *base, int fd)
{
    shutdown(fd, SHUT_WR);
    lingerer *l = xcalloc(1, sizeof *l);
    l->fd = fd;
    l->next = lingering;
    if (l->next)
        l->next->prev = l;
    lingering = l;
    l->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_linger, l);
    struct timeval tv = { LINGER_SECONDS, 0 };
    event_add(l->ev, &tv);
}

/* ---- life cycle ---- */

void socket_peer_name(int fd, char *out, size_t out_len)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(out, out_len, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

conn *conn_new(struct event_base *base, int fd, const conn_handlers *h, void *ctx, uint64_t id)
{
    conn *c = xcalloc(1, sizeof *c);
    c->id = id;
    c->fd = fd;
    c->base = base;
    c->h = h;
    c->ctx = ctx;
    buf_init(&c->out);
    evutil_make_socket_nonblocking(fd);
    /* Output is already batched per loop turn (conn_flush); Nagle's algorithm would only add
     * its delay on top, milliseconds per stanza at light load. Fails harmlessly on non-TCP. */
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    socket_peer_name(fd, c->peer, sizeof c->peer);
    c->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->ev_write = event_new(base, fd, EV_WRITE, on_writable, c);
    event_add(c->ev_read, NULL);
    return c;
}

void conn_set_owner(conn *c, const conn_handlers *h, void *ctx, uint64_t id)
{
    c->h = h;
    c->ctx = ctx;
    c->id = id;
}

static void release(conn *c)
{
    event_free(c->ev_read);
    event_free(c->ev_write);
    if (c->ev_close_timer)
        event_free(c->ev_close_timer);
    if (c->ev_congested_timer)
        event_free(c->ev_congested_timer);
    if (c->ev_notify)
        event_free(c->ev_notify);
    if (c->tls)
        gnutls_deinit(c->tls);
    if (c->tls_ctx)
        tls_ctx_unref(c->tls_ctx);
    if (c->fd >= 0)
        close(c->fd);
    buf_free(&c->out);
    free(c);
}

void conn_free(conn *c)
{
    if (!c)
        return;
    if (c->depth > 0) {
        c->free_requested = true;
        event_del(c->ev_read);
        event_del(c->ev_write);
        return;
    }
    release(c);
}

/* Calls into the owner; returns false when the owner freed the conn meanwhile (the conn is
 * then released here and must not be touched). */
#define CALL_OWNER(c, call)                       \
    do {                                          \
        (c)->depth++;                             \
        call;                                     \
        (c)->depth--;                             \
    } while (0)

static bool still_alive(conn *c)
{
    if (c->free_requested) {
        if (c->depth == 0)
            release(c);
        return false;
    }
    return true;
}

/* The connection is over: hand the socket to the linger logic and tell the owner once. */
static void finish(conn *c, const char *reason)
{
    if (c->finished)
        return;
    c->finished = true;
    event_del(c->ev_read);
    event_del(c->ev_write);
    if (c->ev_congested_timer)
        evtimer_del(c->ev_congested_timer);
    if (c->ev_notify)
        event_del(c->ev_notify);
    if (c->tls && c->state == CONN_TLS)
        gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* best effort close_notify; never blocks */
    if (c->fd >= 0) {
        linger_close(c->base, c->fd);
        c->fd = -1;
    }
    CALL_OWNER(c, c->h->on_closed(c->ctx, reason));
    still_alive(c);
}

/* ---- TLS ---- */

static void wait_for(conn *c, bool write)
{
    if (write)
        event_add(c->ev_write, NULL);
}

static void do_handshake(conn *c)
{
    int rc = gnutls_handshake(c->tls);
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
        wait_for(c, gnutls_record_get_direction(c->tls) == 1);
        return;
    }
    if (rc < 0) {
        log_info(c->id, "TLS handshake with %s failed: %s", c->peer, gnutls_strerror(rc));
        finish(c, "TLS handshake failed");
        return;
    }
    c->state = CONN_TLS;
    char *desc = gnutls_session_get_desc(c->tls);
    log_debug(c->id, "TLS established: %s", desc ? desc : "?");
    gnutls_free(desc);
    CALL_OWNER(c, c->h->on_tls_ready(c->ctx));
    if (!still_alive(c))
        return;
    /* Application data may have arrived together with the client's Finished. */
    if (gnutls_record_check_pending(c->tls) > 0)
        event_active(c->ev_read, EV_READ, 0);
}

static void begin_tls(conn *c)
{
    c->tls_pending = false;
    c->state = CONN_HANDSHAKE;
    do_handshake(c);
}

static int start_tls(conn *c, tls_ctx *t, gnutls_session_t session)
{
    c->tls = session;
    if (!c->tls)
        return -1;
    tls_ctx_ref(t);
    c->tls_ctx = t;
    if (c->out.len > c->out_sent)
        c->tls_pending = true; /* after the plaintext <proceed/> is out */
    else
        begin_tls(c);
    return 0;
}

int conn_start_tls(conn *c, tls_ctx *t, const char *alpn)
{
    if (c->tls)
        return -1;
    return start_tls(c, t, tls_session_new(t, c->fd, alpn));
}

int conn_start_tls_s2s(conn *c, tls_ctx *t)
{
    if (c->tls)
        return -1;
    return start_tls(c, t, tls_s2s_session_new(t, c->fd));
}

int conn_start_tls_client(conn *c, tls_ctx *t, const char *server_name, const char *alpn)
{
    if (c->tls)
        return -1;
    return start_tls(c, t, tls_client_session_new(t, c->fd, server_name, alpn));
}

bool conn_is_tls(const conn *c) { return c->state == CONN_TLS; }

gnutls_session_t conn_tls_session(const conn *c) { return c->state == CONN_TLS ? c->tls : NULL; }

int conn_channel_binding(const conn *c, const char *type, gnutls_datum_t *out)
{
    gnutls_session_t tls = conn_tls_session(c);
    return tls ? tls_channel_binding(tls, type, out) : -1;
}

/* ---- reading ---- */

static ssize_t read_some(conn *c, char *buf, size_t len, const char **error)
{
    if (c->state == CONN_TLS) {
        ssize_t n = gnutls_record_recv(c->tls, buf, len);
        if (n >= 0)
            return n;
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return -1;
        if (n == GNUTLS_E_PREMATURE_TERMINATION) {
            *error = NULL; /* treat as a plain EOF */
            return 0;
        }
        *error = gnutls_strerror((int)n);
        return -2;
    }
    ssize_t n = read(c->fd, buf, len);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EINTR)
        return -1;
    *error = strerror(errno);
    return -2;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CONN_HANDSHAKE) {
        do_handshake(c);
        return;
    }
    if (c->paused || c->congested || c->closing) {
        /* Level-triggered: left registered, a socket with unread data would wake us on every
         * loop turn. resume_reading() registers it again. */
        event_del(c->ev_read);
        return;
    }
    char buf[READ_CHUNK];
    /* A few reads per wake-up, so one busy peer cannot starve the others. */
    for (int round = 0; round < 4; round++) {
        const char *error = NULL;
        ssize_t n = read_some(c, buf, sizeof buf, &error);
        if (n == -1)
            return;
        if (n == -2 || n == 0) {
            finish(c, n == 0 ? "peer closed the connection" : error);
            return;
        }
        CALL_OWNER(c, c->h->on_data(c->ctx, buf, (size_t)n));
        if (!still_alive(c) || c->paused || c->congested || c->closing ||
            (c->tls && c->state != CONN_TLS))
            return;
        bool more = c->state == CONN_TLS ? gnutls_record_check_pending(c->tls) > 0
                                         : (size_t)n == sizeof buf;
        if (!more)
            return;
    }
    event_active(c->ev_read, EV_READ, 0); /* still more: continue on the next loop turn */
}

static void resume_reading(conn *c)
{
    if (c->paused || c->congested || c->closing || c->finished || c->free_requested)
        return;
    event_add(c->ev_read, NULL);
    event_active(c->ev_read, EV_READ, 0); /* data may have been left in the buffers */
}

void conn_pause_reading(conn *c, bool paused)
{
    c->paused = paused;
    resume_reading(c);
}

/* ---- back-pressure ---- */

void conn_set_send_limits(conn *c, const conn_send_limits *limits) { c->limits = *limits; }

bool conn_send_congested(const conn *c) { return c->congested; }

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->finished || c->free_requested)
        return;
    if (c->overflow_why && !c->closing) {
        const char *why = c->overflow_why;
        if (!c->h->on_send_overflow) {
            finish(c, why);
            return;
        }
        CALL_OWNER(c, c->h->on_send_overflow(c->ctx, why));
        still_alive(c);
        return;
    }
    if (c->drained_due) {
        c->drained_due = false;
        if (c->h->on_send_drained) {
            CALL_OWNER(c, c->h->on_send_drained(c->ctx));
            still_alive(c);
        }
    }
}

static void notify_later(conn *c)
{
    if (!c->ev_notify)
        c->ev_notify = event_new(c->base, -1, 0, on_notify, c);
    event_active(c->ev_notify, 0, 0);
}

static void overflow(conn *c, const char *why)
{
    c->overflowed = true;
    c->overflow_why = why;
    log_warn(c->id, "%s does not read what we send (%zu bytes waiting): %s", c->peer,
             conn_pending_output(c), why);
    notify_later(c);
}

static void on_congested_too_long(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->congested && !c->overflowed && !c->closing && !c->finished)
        overflow(c, "the send queue stayed over its high-water mark too long");
}

/* Called whenever output was queued or written. */
static void check_send_queue(conn *c)
{
    if (!c->limits.high_water || c->overflowed || c->closing || c->finished)
        return;
    size_t pending = conn_pending_output(c);
    if (c->limits.max && pending > c->limits.max) {
        overflow(c, "the send queue is over its maximum");
        return;
    }
    if (!c->congested && pending >= c->limits.high_water) {
        c->congested = true;
        log_debug(c->id, "%s: %zu bytes wait to be sent; not reading until they drain", c->peer,
                  pending);
        if (c->limits.timeout) {
            if (!c->ev_congested_timer)
                c->ev_congested_timer = evtimer_new(c->base, on_congested_too_long, c);
            struct timeval tv = { (time_t)c->limits.timeout, 0 };
            evtimer_add(c->ev_congested_timer, &tv);
        }
    } else if (c->congested && pending <= c->limits.high_water / 2) {
        c->congested = false;
        if (c->ev_congested_timer)
            evtimer_del(c->ev_congested_timer);
        resume_reading(c);
        c->drained_due = true;
        notify_later(c);
    }
}

/* ---- writing ---- */

tern_buf *conn_outbuf(conn *c) { return &c->out; }

size_t conn_pending_output(const conn *c) { return c->out.len - c->out_sent; }

void conn_flush(conn *c)
{
    if (c->finished || c->free_requested)
        return;
    event_add(c->ev_write, NULL);
    check_send_queue(c);
}

void conn_write(conn *c, const char *data, size_t len)
{
    buf_append(&c->out, data, len);
    conn_flush(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CONN_HANDSHAKE) {
        do_handshake(c);
        return;
    }
    try_write(c);
}

/* The socket took part of the output and waits to take more. Sent bytes at the front are
 * dropped once they are most of the buffer, so a peer that reads slowly but steadily keeps a
 * buffer the size of what waits, not of everything ever sent to it. */
static void output_waits(conn *c)
{
    if (c->out_sent >= 64 * 1024 && c->out_sent >= c->out.len / 2) {
        memmove(c->out.data, c->out.data + c->out_sent, c->out.len - c->out_sent);
        c->out.len -= c->out_sent;
        c->out_sent = 0;
    }
    event_add(c->ev_write, NULL);
    check_send_queue(c);
}

static void try_write(conn *c)
{
    while (c->out_sent < c->out.len) {
        size_t left = c->out.len - c->out_sent;
        const char *data = c->out.data + c->out_sent;
        ssize_t n;
        if (c->state == CONN_TLS) {
            /* After GNUTLS_E_AGAIN the record is already encrypted inside GnuTLS; the retry
             * passes the same bytes (possibly moved by output_waits), as GnuTLS requires. */
            n = gnutls_record_send(c->tls, data, left < TLS_RECORD ? left : TLS_RECORD);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                output_waits(c);
                return;
            }
            if (n < 0) {
                finish(c, gnutls_strerror((int)n));
                return;
            }
        } else {
            n = send(c->fd, data, left, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                output_waits(c);
                return;
            }
            if (n < 0) {
                finish(c, strerror(errno));
                return;
            }
        }
        c->out_sent += (size_t)n;
    }
    /* Everything is out: give the memory back. Most connections are idle most of the time,
     * and a kept buffer (as large as the largest burst, 0.5-1 KiB after a login) would be a
     * fifth of what an idle session costs; growing it again costs a malloc or two per batch
     * of output, next to a send() per batch. */
    buf_free(&c->out);
    buf_init(&c->out);
    c->out_sent = 0;
    check_send_queue(c);
    if (c->tls_pending)
        begin_tls(c);
    else if (c->closing)
        finish(c, "closed");
}

/* ---- closing ---- */

static void on_close_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish(arg, "peer did not read our last data in time");
}

void conn_close(conn *c)
{
    if (c->closing || c->finished)
        return;
    c->closing = true;
    event_del(c->ev_read);
    c->ev_close_timer = evtimer_new(c->base, on_close_timeout, c);
    struct timeval tv = { CLOSE_FLUSH_SECONDS, 0 };
    evtimer_add(c->ev_close_timer, &tv);
    conn_flush(c);
}

const char *conn_peer(const conn *c) { return c->peer; }

uint64_t conn_id(const conn *c) { return c->id; }
