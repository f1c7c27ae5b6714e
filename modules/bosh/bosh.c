/* bosh — XMPP over BOSH (XEP-0124, XEP-0206) at /http-bind on the HTTP listener ([http]
 * listen / tls_listen), for web clients behind firewalls that let only HTTP(S) through.
 *
 * The whole connection manager is here, on the module API's transport parts: the route and
 * its request rules (bosh_route.c), sessions (bosh_session.c) and the client link
 * (bosh_link.c, tern/c2s.h), so a BOSH session is an ordinary client stream: SASL, binding,
 * routing, presence and offline delivery are exactly those of a TCP client. A host that loads it
 * accepts BOSH sessions (a session creation request whose 'to' names a host without it gets
 * host-unknown), serves POST /http-bind (OPTIONS, the CORS preflight, is the core's) and
 * advertises the endpoint in its XEP-0156 host-meta documents. */
#include <tern/http.h>
#include <tern/module.h>

#include "bosh_route.h"
#include "bosh_session.h"

/* The route never changes, so one static serves every host (the registry keeps a pointer). */
static const tern_http_route bosh_route = {
    .path = "/http-bind",
    .prefix = false,
    .methods = "POST",
    .handler = bosh_route_handle,
    .data = NULL,
};

/* Hosts that have the module loaded: the shared object stays mapped while any does. */
static unsigned instances;

static int bosh_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    *state = NULL;
    instances++;
    tern_http_add_route(host, &bosh_route);
    tern_http_add_link(host, TERN_HTTP_REL_BOSH, bosh_route.path);
    return 0;
}

static void bosh_unload(tern_host *host, void *state)
{
    (void)host;
    (void)state;
    if (--instances == 0)
        bosh_session_end_all("the bosh module was unloaded");
}

TERN_MODULE("bosh", bosh_load, bosh_unload);
