/* tcp_stream.h — the bytes of one client XMPP stream over TCP (RFC 6120): the socket and its TLS
 * (conn.c) and the incremental parser (stream.c), reporting what the client sent to a sink.
 *
 * Two users: the client link on the main loop (c2s_tcp.c), whose sink is c2s itself, and the
 * worker side of a relayed connection (c2s_relay.c), whose sink posts to the main loop. The
 * stream syntax we write is not this file's business: callers append finished bytes to
 * tcp_stream_outbuf() (c2s_frame.h makes them).
 *
 * Ownership: the owner frees the stream (tcp_stream_free) at any time except from inside a sink
 * call; after `ended` it must free it and use nothing else. */
#ifndef TERN_TCP_STREAM_H
#define TERN_TCP_STREAM_H

#include <event2/event.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/tls.h"
#include "tern/error.h"
#include "tern/xml.h"

typedef struct tcp_stream tcp_stream;

/* What the client's stream says, as stream.c reports it (see stream.h): the header (borrowed),
 * each top-level element (ownership passes), the client's close, a parse error. tls_ready: a
 * handshake finished. ended: the transport is gone (peer closed, error, or our close done);
 * called once, never from inside another sink call, and nothing follows it. */
typedef struct tcp_stream_sink {
    void (*header)(void *ctx, const tern_xml *header, const char *default_ns);
    void (*element)(void *ctx, tern_xml *element);
    void (*closed_by_client)(void *ctx);
    void (*parse_error)(void *ctx, tern_stream_error cond, const char *text);
    void (*tls_ready)(void *ctx, gnutls_session_t tls);
    void (*ended)(void *ctx, const char *reason);
    /* The client does not read what we send (conn.h, on_send_overflow): answer with a
     * policy-violation stream error and end. Optional: without it the stream just ends. */
    void (*send_overflow)(void *ctx, const char *why);
} tcp_stream_sink;

typedef struct tcp_stream_limits {
    size_t max_stanza_size;
    conn_send_limits send;
} tcp_stream_limits;

/* A stream over the accepted socket `fd` on `base`. With direct_tls (XEP-0368), the TLS
 * handshake with `tls` (ALPN "xmpp-client") starts at once; if it cannot, the stream ends
 * (`ended` runs from the next loop turn, never from inside this call). */
tcp_stream *tcp_stream_new(struct event_base *base, int fd, const tcp_stream_sink *sink,
                           void *ctx, uint64_t id, const tcp_stream_limits *limits,
                           tls_ctx *direct_tls);
void tcp_stream_free(tcp_stream *s);

/* Output: append, then flush (the write happens once per loop turn). */
tern_buf *tcp_stream_outbuf(tcp_stream *s);
void tcp_stream_flush(tcp_stream *s);
/* Our side is over: what is queued goes out, then the transport ends. Further output is
 * dropped and input ignored. */
void tcp_stream_end(tcp_stream *s);
bool tcp_stream_is_over(const tcp_stream *s);
/* Expect a new stream header; the rest of the chunk being parsed is dropped (RFC 6120
 * §5.4.3.3, §6.4.6). */
void tcp_stream_restart(tcp_stream *s);
/* STARTTLS: once the queued <proceed/> is out, the handshake; input until it finished is not
 * the stream. -1 when TLS cannot start: the stream then ends. */
int tcp_stream_start_tls(tcp_stream *s, tls_ctx *tls);
/* Two independent reasons not to read: the owner's pause (a failed-login delay) and a hold
 * (the relayed link's main loop is behind); input flows when neither is set. */
void tcp_stream_pause_reading(tcp_stream *s, bool paused);
void tcp_stream_hold_input(tcp_stream *s, bool held);
bool tcp_stream_encrypted(const tcp_stream *s);
gnutls_session_t tcp_stream_tls_session(const tcp_stream *s);
const char *tcp_stream_peer(const tcp_stream *s);

#endif
