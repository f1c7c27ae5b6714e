/* tern/http.h — HTTP routes for modules: serve a path on the server's HTTP listeners
 * ([http] listen and tls_listen; see doc/http.md).
 *
 * A module describes a route in a tern_http_route that it keeps (in its state, or static)
 * until it unloads, and adds it to the host's "http-route" registry, so the route disappears
 * with the module. Every host's routes are visible on every HTTP listener: when two hosts
 * register the same path, the one named by the request's Host field answers, else the one
 * registered first. An exact path beats a prefix, a longer prefix a shorter one.
 *
 * The core answers OPTIONS (CORS preflight from [http] cors_origins), adds the CORS fields to
 * every response, answers 405 for a method the route does not list, and sends no body for
 * HEAD (the handler sees method "HEAD" and may answer it as GET).
 *
 * A handler answers at once with tern_http_respond(), or later (a BOSH long poll keeps the
 * request and answers from a timer or when a stanza arrives). A handler that keeps a request
 * must first call tern_http_on_gone(): if the client goes away (or the server stops) before
 * the answer, that callback runs and the request is freed right after it returns. A handler
 * that returns without answering and without registering on_gone gets a 500 sent for it, so
 * no request outlives its connection unnoticed. After tern_http_respond() or the on_gone
 * callback, the request pointer is invalid.
 *
 * Threads: a request belongs to the worker of its connection, like a session. */
#ifndef TERN_HTTP_H
#define TERN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/module.h"

typedef struct tern_http_request tern_http_request;
typedef void (*tern_http_handler)(tern_http_request *req, void *data);

typedef struct tern_http_route {
    const char *path;          /* "/metrics", "/http-bind" (percent-decoded form) */
    bool prefix;               /* also every path below it: "/upload" serves "/upload/a/b" */
    const char *methods;       /* e.g. "GET, POST"; NULL lets every method through. HEAD goes
                                  with GET; OPTIONS is always the core's. */
    tern_http_handler handler;
    void *data;
} tern_http_route;

#define TERN_REG_HTTP_ROUTE "http-route" /* item: path, data: const tern_http_route * */
#define TERN_REG_HTTP_LINK "http-link"   /* item: rel, data: const char *href */

/* `route` must stay valid until the module unloads. */
static inline void tern_http_add_route(tern_host *host, const tern_http_route *route)
{
    tern_registry_add(host, TERN_REG_HTTP_ROUTE, route->path, route);
}

/* XEP-0156: advertises a connection method in /.well-known/host-meta(.json) for this host,
 * e.g. rel TERN_HTTP_REL_BOSH with href "/http-bind". A href starting with '/' is made
 * absolute with the scheme and Host of the discovery request (ws:// or wss:// for the
 * WebSocket rel). `href` must stay valid until the module unloads. Only register a link for
 * an endpoint that exists. */
#define TERN_HTTP_REL_BOSH "urn:xmpp:alt-connections:xbosh"
#define TERN_HTTP_REL_WEBSOCKET "urn:xmpp:alt-connections:websocket"
static inline void tern_http_add_link(tern_host *host, const char *rel, const char *href)
{
    tern_registry_add(host, TERN_REG_HTTP_LINK, rel, href);
}

/* ---- the request ---- */

const char *tern_http_method(const tern_http_request *req); /* "GET", "POST", "HEAD", ... */
const char *tern_http_path(const tern_http_request *req);   /* percent-decoded, e.g. "/a b" */
const char *tern_http_query(const tern_http_request *req);  /* raw, without '?'; "" if none */
/* The first header field of that name (case-insensitive), or NULL. */
const char *tern_http_header(const tern_http_request *req, const char *name);
/* The body (NUL-terminated for convenience; *len excludes it). */
const char *tern_http_body(const tern_http_request *req, size_t *len);
const char *tern_http_peer(const tern_http_request *req);   /* client "ip:port" */
bool tern_http_secure(const tern_http_request *req);        /* came over TLS */
tern_host *tern_http_host(const tern_http_request *req);    /* host whose route answers */
uint64_t tern_http_id(const tern_http_request *req);        /* connection id, for logs */

/* ---- the answer ---- */

/* Adds a response field (before tern_http_respond). A name that is not a token or a value
 * with CR, LF or other controls is refused (logged) so no module can split a response. */
void tern_http_add_header(tern_http_request *req, const char *name, const char *value);
/* Sends the response and frees the request. With content_type NULL and no body, an error
 * status gets a short text/plain body ("404 Not Found"). */
void tern_http_respond(tern_http_request *req, int status, const char *content_type,
                       const void *body, size_t len);
/* Registers the callback for a request the module keeps (see above). */
void tern_http_on_gone(tern_http_request *req,
                       void (*fn)(tern_http_request *req, void *data), void *data);

/* ---- switching protocols ---- */

typedef struct conn conn; /* tern/conn.h */

/* Whether any field `name` lists `token` in its comma-separated value (case-insensitive),
 * e.g. "Connection: keep-alive, Upgrade". */
bool tern_http_has_token(const tern_http_request *req, const char *name, const char *token);
int tern_http_minor_version(const tern_http_request *req);   /* HTTP/1.<minor> */
/* host[:port] from an absolute-form target or Host, or NULL. */
const char *tern_http_authority(const tern_http_request *req);
/* The Access-Control-Allow-Origin value for a request from `origin` given the configured
 * origins ("*" allows any): "*", the origin itself, or NULL when it is not allowed (or there
 * is no Origin). */
const char *tern_http_cors_allow(char *const *origins, size_t n_origins, const char *origin);
/* [http] cors_origins: the Origins allowed besides the server's own ("*": any). */
char *const *tern_http_cors_origins(size_t *n);
/* Switches the request's connection to another protocol (RFC 9110 §7.8, §15.2.2): answers
 * "101 Switching Protocols" with `fields` (complete "Name: value\r\n" lines), then gives the
 * connection away and forgets it. Returns the conn, whose callbacks the caller must take over
 * at once with conn_set_owner() (tern/conn.h), and appends to `rest` the bytes the client
 * already sent after the request (the first frames of the new protocol). The request is
 * answered and freed. Only from inside the route's handler; NULL (and nothing done)
 * otherwise. */
conn *tern_http_upgrade(tern_http_request *req, const char *fields, tern_buf *rest);
/* Whether a header field name and value may be sent (a token, no CR, LF or NUL): for values
 * a client chose (a BOSH session's Content-Type). */
bool tern_http_valid_header(const char *name, const char *value);

#endif
