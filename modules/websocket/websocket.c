/* websocket — XMPP over WebSocket (RFC 7395) at /xmpp-websocket on the HTTP listener
 * ([http] listen for ws://, tls_listen for wss://), advertised through XEP-0156 host-meta.
 * Off unless a host's `modules =` line names websocket.
 *
 * The whole protocol is here, on the module API's transport parts (tern/conn.h, tern/c2s.h,
 * tern/stream.h, the upgrade in tern/http.h): the handshake and framing (websocket_*.c, with
 * wslay) and the XMPP link (ws_link.c), which hands the stream to the core's client-stream
 * negotiation, so a WebSocket client is the same kind of session as a TCP one. Per host: the
 * route, and the link in host-meta. A stream opened over WebSocket may only name a host that
 * loads this module. */
#include <tern/http.h>
#include <tern/module.h>

#include "ws_link.h"

#define WEBSOCKET_PATH "/xmpp-websocket"

static void serve(tern_http_request *req, void *data)
{
    (void)data;
    ws_link_serve(req);
}

/* Shared by every host that loads the module: it holds nothing of a host's. */
static const tern_http_route route = {
    .path = WEBSOCKET_PATH,
    .prefix = false,
    .methods = "GET",
    .handler = serve,
    .data = NULL,
};

/* Hosts that have the module loaded: the shared object stays mapped while any does. */
static unsigned instances;

static int websocket_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    *state = NULL;
    instances++;
    tern_http_add_route(host, &route);
    /* XEP-0156 §3: made absolute (ws:// or wss://) from the discovery request. */
    tern_http_add_link(host, TERN_HTTP_REL_WEBSOCKET, WEBSOCKET_PATH);
    return 0;
}

static void websocket_unload(tern_host *host, void *state)
{
    (void)host;
    (void)state;
    if (--instances == 0)
        ws_link_end_all("the websocket module was unloaded");
}

TERN_MODULE("websocket", websocket_load, websocket_unload);
