/* tern/conn.h — a connection's bytes, for transport modules that take one over (an HTTP
 * connection upgraded to WebSocket): a non-blocking socket, optionally TLS, with an output
 * buffer flushed when the socket is writable and the back-pressure of doc/architecture.md.
 *
 * The owner may call conn_free() from inside a callback; the conn defers the free until the
 * callback returns. on_closed is called once, when the peer closed, the socket failed, or a
 * conn_close() finished flushing. Everything runs on the main loop. */
#ifndef TERN_PUBLIC_CONN_H
#define TERN_PUBLIC_CONN_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/xml.h"

typedef struct conn conn;

typedef struct conn_handlers {
    void (*on_data)(void *ctx, const char *data, size_t len); /* decrypted bytes */
    void (*on_tls_ready)(void *ctx);                          /* handshake finished */
    void (*on_closed)(void *ctx, const char *reason);
    /* Optional; the core sets send limits on every connection. send_overflow: the peer does
     * not read what we send; the owner ends its protocol with a policy-violation error (RFC 6120
     * §4.9.3.18) and closes; without this handler the conn simply closes. send_drained: the
     * send queue went back under half its high-water mark (HTTP then answers the requests
     * that wait). Both run from their own loop turn, never from inside a conn call. */
    void (*on_send_overflow)(void *ctx, const char *why);
    void (*on_send_drained)(void *ctx);
} conn_handlers;

/* A connection for a socket a module accepted (tern_listen, tern/module.h), read from now on
 * with [c2s]'s send-queue limits; `id` names it in the log (0: a fresh one). */
conn *conn_accept(int fd, const conn_handlers *h, void *ctx, uint64_t id);
uint64_t conn_id(const conn *c);
void conn_free(conn *c); /* closes the socket at once; no callback follows */
/* Hands the conn to a new owner (an HTTP connection upgraded to WebSocket): later callbacks go
 * to `h` and `ctx`, and logs carry `id`. */
void conn_set_owner(conn *c, const conn_handlers *h, void *ctx, uint64_t id);
bool conn_is_tls(const conn *c);
gnutls_session_t conn_tls_session(const conn *c); /* NULL without TLS */
/* SASL channel binding data (RFC 9266 tls-exporter, RFC 5929 tls-server-end-point, tls-unique
 * on TLS 1.2) of the connection's TLS session: 0 and *out filled (free out->data with
 * gnutls_free), or -1 (no TLS, or a type the session cannot give). */
int conn_channel_binding(const conn *c, const char *type, gnutls_datum_t *out);
/* The output buffer: append to it, then call conn_flush() (cheap; the write happens once per
 * loop turn, batching everything queued meanwhile). */
tern_buf *conn_outbuf(conn *c);
void conn_flush(conn *c);
void conn_write(conn *c, const char *data, size_t len);
/* Stop/resume delivering input (e.g. during the delay after a failed authentication). */
void conn_pause_reading(conn *c, bool paused);
/* Stops reading, flushes what is queued (for at most a few seconds), closes, then calls
 * on_closed. */
void conn_close(conn *c);
const char *conn_peer(const conn *c); /* "ip:port" */

#endif
