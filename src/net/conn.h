/* conn.h — one client or server connection's bytes: a non-blocking socket, optionally wrapped
 * in GnuTLS (direct TLS or STARTTLS), with an output buffer flushed when the socket is writable.
 *
 * The upper layer (c2s, later s2s) owns the conn. Callbacks run on the conn's worker. The owner
 * may call conn_free() from inside a callback; the conn defers the free until the callback
 * returns. on_closed is called once, when the peer closed, the socket failed, or a
 * conn_close() finished flushing. */
#ifndef TERN_CONN_H
#define TERN_CONN_H

#include <event2/event.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/tls.h"
#include "tern/conn.h"
#include "tern/xml.h"

/* Back-pressure on what a peer does not read (doc/architecture.md, "Back-pressure"). While
 * the bytes waiting for the socket (conn_pending_output) are at or over high_water, the conn
 * stops reading the peer's input, so a peer that sends requests without reading the answers
 * stalls; once they drain to half the mark, reading resumes. A peer whose queue passes `max`,
 * or stays congested for `timeout` seconds, overflows. 0 turns each part off. */
typedef struct conn_send_limits {
    size_t high_water;
    size_t max;
    unsigned timeout;
} conn_send_limits;

conn *conn_new(struct event_base *base, int fd, const conn_handlers *h, void *ctx, uint64_t id);

/* Starts a server-side TLS handshake (direct TLS, or after <proceed/> for STARTTLS: pending
 * output is flushed in plaintext first). */
int conn_start_tls(conn *c, tls_ctx *t, const char *alpn);
/* The same for an incoming server-to-server stream: asks for the peer's certificate. */
int conn_start_tls_s2s(conn *c, tls_ctx *t);
/* The same as the client of the handshake, for outgoing server-to-server streams (SNI
 * server_name). */
int conn_start_tls_client(conn *c, tls_ctx *t, const char *server_name, const char *alpn);

size_t conn_pending_output(const conn *c);
void conn_set_send_limits(conn *c, const conn_send_limits *limits);
/* The send queue is at or over its high-water mark (until it drained to half of it). */
bool conn_send_congested(const conn *c);




/* The same "ip:port" (or "[ip6]:port") for a socket. */
void socket_peer_name(int fd, char *out, size_t out_len);

/* At exit, on each event loop's thread: closes the sockets of finished connections of that
 * loop that are still draining their peer's last bytes (see conn.c, "Why linger"). */
void conn_close_lingering(void);

#endif
