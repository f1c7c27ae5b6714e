/* rfc6455.h — the server side of WebSocket (RFC 6455), inside the websocket module: the
 * opening handshake (websocket_handshake.c, pure functions over a request, unit-tested) and
 * the framing of an upgraded connection (websocket_conn.c, over a conn, with wslay doing the
 * frames).
 *
 * What carries what: the core's HTTP server hands over the conn after a 101
 * (tern_http_upgrade); a ws_conn then turns its bytes into whole text messages and back; the
 * XMPP link (ws_link.c, RFC 7395) reads each message as one XML element. */
#ifndef TERN_MODULE_WEBSOCKET_RFC6455_H
#define TERN_MODULE_WEBSOCKET_RFC6455_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/conn.h>

/* What the handshake check reads of a request: the HTTP server's request through the module
 * API (ws_link.c), or a parsed message in the unit test. */
typedef struct ws_request {
    const char *method;
    int minor;             /* HTTP/1.<minor> */
    const char *authority; /* host[:port], or NULL */
    const void *req;
    const char *(*header)(const void *req, const char *name);
    bool (*has_token)(const void *req, const char *name, const char *token);
} ws_request;

/* ---- the opening handshake ---- */

/* RFC 6455 §7.4.1 status codes of the Close frames we send. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_UNSUPPORTED_DATA 1003
#define WS_CLOSE_INVALID_PAYLOAD 1007
#define WS_CLOSE_POLICY_VIOLATION 1008
#define WS_CLOSE_TOO_BIG 1009

#define WS_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */

/* The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2 item 5.4):
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). */
void ws_accept_value(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* Whether a Sec-WebSocket-Key is well formed: base64 of exactly 16 bytes (§4.1 item 7). */
bool ws_key_valid(const char *key);

/* Checks a request as a WebSocket opening handshake for the subprotocol `protocol`
 * (RFC 6455 §4.2.1). Returns 0 when the upgrade may go ahead, else the status to answer:
 *   400  not GET, not HTTP/1.1, no "Upgrade: websocket" or "Connection: Upgrade", no valid
 *        Sec-WebSocket-Key or Sec-WebSocket-Version, or `protocol` not among the
 *        Sec-WebSocket-Protocol values (RFC 7395 §3.1: no XMPP without "xmpp");
 *   426  a Sec-WebSocket-Version other than 13 (answer with "Sec-WebSocket-Version: 13",
 *        §4.2.2);
 *   403  an Origin that is neither the server's own (scheme from `tls`, and the request's
 *        Host) nor allowed by `origins` (the [http] cors_origins list; "*" allows any). A
 *        request without Origin (not a browser) passes: §10.2 makes the check a defence
 *        for browsers only.
 * *why gets a short reason for the log. */
int ws_check_handshake(const ws_request *m, const char *protocol, bool tls,
                       char *const *origins, size_t n_origins, const char **why);

/* ---- framing over an upgraded connection ---- */

typedef struct ws_conn ws_conn;

typedef struct ws_handlers {
    /* One whole text message, reassembled from its fragments, valid UTF-8 and at most
     * max_message bytes (borrowed for the call). The handler may send, close or pause, but
     * not free the ws_conn. */
    void (*on_message)(void *ctx, const char *data, size_t len);
    /* The connection is over (closing handshake done, peer gone, or failed). Called once;
     * the owner then frees the ws_conn, from inside this call if it likes. */
    void (*on_closed)(void *ctx, const char *reason);
    /* Optional: the peer does not read what we send (conn.h, on_send_overflow). The owner
     * ends its protocol and closes; without it the connection closes with 1008. */
    void (*on_send_overflow)(void *ctx, const char *why);
} ws_handlers;

/* Takes over `c` (an upgraded HTTP connection; see conn_set_owner). `rest` holds bytes that
 * arrived with the handshake; they are read on the next loop turn, never from inside this call.
 * Messages over max_message bytes end the connection with 1009. */
ws_conn *ws_conn_new(conn *c, const ws_handlers *h, void *ctx, size_t max_message, uint64_t id,
                     const char *rest, size_t rest_len);
/* Frees the ws_conn and closes the socket at once (no callback follows). */
void ws_conn_free(ws_conn *w);

/* Queues one text message (unfragmented). Ignored once a Close frame was queued. */
void ws_send_text(ws_conn *w, const char *data, size_t len);
/* Starts the closing handshake (RFC 6455 §7.1.2) after what is queued: our Close frame with
 * `code`, then we wait a few seconds for the peer's Close and end the connection. */
void ws_close(ws_conn *w, uint16_t code);
/* Holds back incoming messages (they are kept, in order, and delivered on resume). */
void ws_pause(ws_conn *w, bool paused);
/* The connection underneath: TLS state, channel binding, peer address. */
conn *ws_conn_transport(ws_conn *w);

#endif
