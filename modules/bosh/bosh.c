/* bosh — XMPP over BOSH (XEP-0124, XEP-0206) at /http-bind on the HTTP listener ([http]
 * listen / tls_listen), for web clients behind firewalls that let only HTTP(S) through.
 *
 * The connection manager itself is in the core (src/http/bosh.c and src/http/c2s_bosh.c), because a
 * BOSH session is an ordinary client stream: SASL, binding, routing, presence and offline
 * delivery are exactly those of a TCP client. This module is the switch: a host that loads it
 * accepts BOSH sessions (a session creation request whose 'to' names a host without it gets
 * host-unknown), serves POST /http-bind (OPTIONS, the CORS preflight, is the core's) and
 * advertises the endpoint in its XEP-0156 host-meta documents. */
#include <tern/http.h>
#include <tern/module.h>

/* The route never changes, so one static serves every host (the registry keeps a pointer). */
static const tern_http_route bosh_route = {
    .path = "/http-bind",
    .prefix = false,
    .methods = "POST",
    .handler = tern_bosh_handle,
    .data = NULL,
};

static int bosh_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    *state = NULL;
    tern_http_add_route(host, &bosh_route);
    tern_http_add_link(host, TERN_HTTP_REL_BOSH, bosh_route.path);
    return 0;
}

TERN_MODULE("bosh", bosh_load, NULL);
