/* ws_link.h — XMPP over WebSocket (RFC 7395): the client link of the websocket module. */
#ifndef TERN_MODULE_WS_LINK_H
#define TERN_MODULE_WS_LINK_H

#include <tern/http.h>

/* Serves a client stream over WebSocket on this request (from the GET route's handler): when
 * the request is a WebSocket opening handshake (RFC 6455 §4.2.1) offering the "xmpp"
 * subprotocol, from no Origin, the server's own or one allowed by [http] cors_origins, it
 * answers "101 Switching Protocols" and the connection becomes a client stream like a TCP
 * client's (the same SASL, binding, routing and limits). Otherwise it answers 400, 403
 * (Origin), 426 (WebSocket version) or 503 (the server is full or stopping). A stream may only
 * open to a host that routes the same path. Either way the request is answered and invalid
 * afterwards. */
void ws_link_serve(tern_http_request *req);
/* Ends every client stream over WebSocket at once (their sockets close): the module's code
 * is about to be unmapped, and the core's client streams must not keep calling it. */
void ws_link_end_all(const char *reason);

#endif
