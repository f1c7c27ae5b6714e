/* c2s_tcp.c — the RFC 6120 client link on the main loop: an XMPP stream over a TCP connection
 * (plain with STARTTLS, or direct TLS per XEP-0368) whose bytes the main loop carries itself.
 * The stream's bytes are a tcp_stream (socket, TLS, parser) whose sink is c2s; what c2s sends
 * is framed by c2s_frame.c. With worker threads, connections go to c2s_relay.c instead (see
 * c2s_accept() below). */
#include <stdlib.h>
#include <unistd.h>

#include "core/util.h"
#include "event/worker.h"
#include "net/conn.h"
#include "net/tcp_stream.h"
#include "process/server.h"
#include "tern/c2s.h"
#include "tern/log.h"
#include "xmpp/c2s.h"
#include "xmpp/c2s_frame.h"
#include "xmpp/c2s_relay.h"

typedef struct tcp_link {
    c2s *c2s;
    tcp_stream *stream;
} tcp_link;

/* ---- output (the link operations) ---- */

/* Where framed output goes, or NULL once our side is over (nothing more is written). */
static tern_buf *output(tcp_link *t)
{
    return tcp_stream_is_over(t->stream) ? NULL : tcp_stream_outbuf(t->stream);
}

static void tcp_open(void *ctx, const c2s_stream_header *h)
{
    tcp_link *t = ctx;
    tern_buf *out = output(t);
    if (out) {
        c2s_frame_open(out, h);
        tcp_stream_flush(t->stream);
    }
}

static void tcp_send_features(void *ctx, const tern_xml *features)
{
    tcp_link *t = ctx;
    tern_buf *out = output(t);
    if (out) {
        c2s_frame_features(out, features);
        tcp_stream_flush(t->stream);
    }
}

static void tcp_send(void *ctx, const tern_xml *element)
{
    tcp_link *t = ctx;
    tern_buf *out = output(t);
    if (out) {
        c2s_frame_element(out, element);
        tcp_stream_flush(t->stream);
    }
}

/* tcp_stream_end() flushes what is queued, then ends the transport. */
static void tcp_stream_error(void *ctx, const tern_xml *error)
{
    tcp_link *t = ctx;
    tern_buf *out = output(t);
    if (out) {
        c2s_frame_stream_error(out, error);
        tcp_stream_end(t->stream);
    }
}

static void tcp_close(void *ctx)
{
    tcp_link *t = ctx;
    tern_buf *out = output(t);
    if (out) {
        c2s_frame_close(out);
        tcp_stream_end(t->stream);
    }
}

static void tcp_restart(void *ctx)
{
    tcp_link *t = ctx;
    tcp_stream_restart(t->stream);
}

static int tcp_start_tls(void *ctx)
{
    tcp_link *t = ctx;
    return tcp_stream_start_tls(t->stream, server.tls);
}

static void tcp_pause_reading(void *ctx, bool paused)
{
    tcp_link *t = ctx;
    tcp_stream_pause_reading(t->stream, paused);
}

static bool tcp_encrypted(void *ctx)
{
    tcp_link *t = ctx;
    return tcp_stream_encrypted(t->stream);
}

static int tcp_channel_binding(void *ctx, const char *type, gnutls_datum_t *out)
{
    tcp_link *t = ctx;
    gnutls_session_t tls = tcp_stream_tls_session(t->stream);
    return tls ? tls_channel_binding(tls, type, out) : -1;
}

static const char *tcp_peer(void *ctx)
{
    tcp_link *t = ctx;
    return tcp_stream_peer(t->stream);
}

static void tcp_free(void *ctx)
{
    tcp_link *t = ctx;
    tcp_stream_free(t->stream);
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
    .channel_binding = tcp_channel_binding,
    .peer = tcp_peer,
    .free = tcp_free,
};

/* ---- input: the stream's sink is c2s ---- */

static void on_header(void *ctx, const tern_xml *header, const char *default_ns)
{
    tcp_link *t = ctx;
    c2s_received_header(t->c2s, header, default_ns);
}

static void on_element(void *ctx, tern_xml *x)
{
    tcp_link *t = ctx;
    c2s_received_element(t->c2s, x);
}

static void on_closed_by_client(void *ctx)
{
    tcp_link *t = ctx;
    c2s_received_close(t->c2s);
}

static void on_parse_error(void *ctx, tern_stream_error cond, const char *text)
{
    tcp_link *t = ctx;
    c2s_stream_error(t->c2s, cond, text);
}

static void on_tls_ready(void *ctx, gnutls_session_t tls)
{
    (void)ctx;
    (void)tls;
}

static void on_ended(void *ctx, const char *reason)
{
    tcp_link *t = ctx;
    c2s_link_ended(t->c2s, reason);
}

static void on_send_overflow(void *ctx, const char *why)
{
    tcp_link *t = ctx;
    c2s_stream_error(t->c2s, STREAM_ERR_POLICY_VIOLATION, why);
}

static const tcp_stream_sink c2s_sink = {
    on_header, on_element, on_closed_by_client, on_parse_error, on_tls_ready, on_ended,
    on_send_overflow,
};

void c2s_accept(int fd, bool direct_tls)
{
    const char *why;
    char peer[64];
    socket_peer_name(fd, peer, sizeof peer);
    if (!c2s_accepting(peer, &why)) {
        close(fd);
        return;
    }
    if (direct_tls && !server.tls) {
        close(fd);
        return;
    }
    worker *w = worker_next();
    if (w) {
        c2s_relay_accept(w, fd, direct_tls);
        return;
    }
    tcp_link *t = xcalloc(1, sizeof *t);
    t->c2s = c2s_new(&tcp_link_ops, t, peer);
    uint64_t id = c2s_id(t->c2s);
    const config_send_queue *q = &server.cfg->c2s_send_queue;
    tcp_stream_limits limits = { server.cfg->c2s_max_stanza_size,
                                 { q->high_water, q->max, q->timeout } };
    t->stream = tcp_stream_new(server.base, fd, &c2s_sink, t, id, &limits,
                               direct_tls ? server.tls : NULL);
    log_info(id, "client connection from %s%s", tcp_stream_peer(t->stream),
             direct_tls ? " (direct TLS)" : "");
}
