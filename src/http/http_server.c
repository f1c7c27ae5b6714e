/* http_server.c — the HTTP/1.1 listener: connections, routing to modules (tern/http.h), CORS,
 * static files from [http] static_dir and the XEP-0156 host-meta documents.
 *
 * One request at a time per connection (RFC 9112 §9.3.2: responses go out in the order of the
 * requests). Bytes of pipelined requests wait in the connection's input buffer until the
 * current request is answered; a module may take as long as it likes to answer (a BOSH long
 * poll), and the connection keeps reading meanwhile, so a client that goes away is noticed
 * and the module told (tern_http_on_gone). A connection waiting for a request is closed after
 * HTTP_IDLE_SECONDS; one that has sent part of a request by then gets 408.
 *
 * What answers a request, in order: OPTIONS is the core's (CORS preflight); then
 * /.well-known/host-meta(.json); then the best module route; then a static file; else 404. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "host/host.h"
#include "http/http.h"
#include "net/conn.h"
#include "process/server.h"
#include "tern/http.h"

#define HTTP_IDLE_SECONDS 60
#define HTTP_MAX_CONNECTIONS 10000
#define HTTP_MAX_QUEUED_INPUT 65536        /* pipelined bytes held while a request is open */
#define HTTP_FILE_CHUNK 65536              /* a static file goes out in reads of this size */
#define CORS_MAX_AGE "86400"
#define DEFAULT_METHODS "GET, HEAD, POST"

typedef struct http_conn http_conn;

struct tern_http_request {
    http_conn *hc;
    http_message *msg;
    tern_host *host;          /* whose route answers (or whose host-meta) */
    const char *methods;      /* what the target allows, for Allow and preflight */
    bool head;                /* HEAD: no body goes out */
    const char *allow_origin; /* Access-Control-Allow-Origin, or NULL */
    tern_buf fields;          /* response fields added by the module */
    void (*gone)(tern_http_request *req, void *data);
    void *gone_data;
    bool answered;
    bool in_handler;
};

struct http_conn {
    uint64_t id;
    conn *conn;
    bool tls;
    http_parser *parser;
    tern_buf in;              /* received, not yet parsed */
    size_t in_off;
    tern_http_request *current;
    struct event *timer;      /* idle / incomplete request */
    struct event *resume;     /* parse queued input after an answer given from outside */
    /* A static file's body being sent: read in chunks while the send queue is under its
     * high-water mark, so a large file costs that much memory, not its size. */
    int body_fd;              /* -1 when none */
    off_t body_left;
    bool body_close_after;
    bool closing;
    bool paused;
    int busy;                 /* inside our own processing: destruction waits */
    bool destroy_pending;
    http_conn *prev, *next;
};

static http_conn *connections;
static size_t n_connections;

static void process_input(http_conn *hc);
static void destroy(http_conn *hc);

/* ---- answering ---- */

static void request_free(tern_http_request *req)
{
    http_message_free(req->msg);
    buf_free(&req->fields);
    free(req);
}

static void arm_idle_timer(http_conn *hc)
{
    struct timeval tv = { HTTP_IDLE_SECONDS, 0 };
    evtimer_add(hc->timer, &tv);
}

/* The current request is answered: free it (unless its handler is still running), then close
 * or go on with the next request. */
static void request_done(http_conn *hc, tern_http_request *req, bool close_after)
{
    hc->current = NULL;
    if (!req->in_handler)
        request_free(req);
    if (close_after) {
        hc->closing = true;
        conn_close(hc->conn);
        return;
    }
    arm_idle_timer(hc);
    if (hc->paused) {
        hc->paused = false;
        conn_pause_reading(hc->conn, false);
    }
    if (!hc->busy && hc->in.len > hc->in_off)
        event_active(hc->resume, 0, 0);
}

/* CORS fields for a normal response (Fetch standard, "CORS protocol"). */
static void add_cors_fields(tern_buf *out, const char *allow_origin)
{
    if (!allow_origin)
        return;
    buf_printf(out, "Access-Control-Allow-Origin: %s\r\n", allow_origin);
    if (strcmp(allow_origin, "*") != 0)
        buf_append_str(out, "Vary: Origin\r\n"); /* the answer depends on who asks */
}

/* Writes the status line and fields of the answer to req; returns whether the connection
 * closes after it. The caller writes the body, if any (none for HEAD and bodiless statuses:
 * response_has_body). */
static bool write_response_head(tern_http_request *req, int status, const char *content_type,
                                size_t len)
{
    http_conn *hc = req->hc;
    tern_buf fields;
    buf_init(&fields);
    add_cors_fields(&fields, req->allow_origin);
    if (req->fields.len)
        buf_append(&fields, req->fields.data, req->fields.len);
    bool close_after = !req->msg->keep_alive || server.stopping;
    http_write_head(conn_outbuf(hc->conn), status, req->msg->minor, close_after, time(NULL),
                    content_type, len, buf_cstr(&fields));
    buf_free(&fields);
    log_debug(hc->id, "http %s %s -> %d (%zu bytes)", req->msg->method, req->msg->target,
              status, len);
    req->answered = true;
    return close_after;
}

static bool response_has_body(const tern_http_request *req, int status)
{
    return !req->head && !http_status_has_no_body(status);
}

static void send_response(tern_http_request *req, int status, const char *content_type,
                          const void *body, size_t len)
{
    http_conn *hc = req->hc;
    tern_buf error_body;
    buf_init(&error_body);
    if (!content_type && len == 0 && status >= 400) {
        http_error_body(&error_body, status);
        content_type = "text/plain; charset=utf-8";
        body = error_body.data;
        len = error_body.len;
    }
    bool close_after = write_response_head(req, status, content_type, len);
    if (response_has_body(req, status) && len)
        buf_append(conn_outbuf(hc->conn), body, len);
    conn_flush(hc->conn);
    buf_free(&error_body);
    request_done(hc, req, close_after);
}

/* Queues the next chunks of the static file being sent, until the send queue is congested
 * (on_send_drained calls again) or the file is out (the request is then done). */
static void send_file_chunks(http_conn *hc)
{
    tern_buf *out = conn_outbuf(hc->conn);
    while (hc->body_left > 0 && !hc->closing && !conn_send_congested(hc->conn)) {
        size_t want = hc->body_left < HTTP_FILE_CHUNK ? (size_t)hc->body_left : HTTP_FILE_CHUNK;
        ssize_t n = read(hc->body_fd, buf_space(out, want), want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* The file shrank or broke under us: the promised length cannot be kept, and
             * closing is the only way to tell the client (RFC 9112 §6.3). */
            log_warn(hc->id, "http: a static file ended early: %s",
                     n < 0 ? strerror(errno) : "it is shorter than it was");
            hc->body_left = 0;
            hc->body_close_after = true;
            break;
        }
        out->len += (size_t)n;
        hc->body_left -= n;
        conn_flush(hc->conn);
    }
    if (hc->body_left > 0 && !hc->closing)
        return;
    close(hc->body_fd);
    hc->body_fd = -1;
    if (hc->current)
        request_done(hc, hc->current, hc->body_close_after);
}

/* A 200 answer whose body is the open file fd (its size from st); fd is ours to close. */
static void send_file_response(tern_http_request *req, const char *content_type, int fd,
                               const struct stat *st)
{
    http_conn *hc = req->hc;
    bool close_after = write_response_head(req, 200, content_type, (size_t)st->st_size);
    conn_flush(hc->conn);
    if (!response_has_body(req, 200) || st->st_size == 0) {
        close(fd);
        request_done(hc, req, close_after);
        return;
    }
    hc->body_fd = fd;
    hc->body_left = st->st_size;
    hc->body_close_after = close_after;
    send_file_chunks(hc);
}

/* A request we cannot parse: answer and close (RFC 9112 §9.6: the framing is lost). */
static void refuse(http_conn *hc, int status, const char *reason)
{
    log_info(hc->id, "http: refusing a request from %s: %d %s", conn_peer(hc->conn), status,
             reason);
    tern_buf body;
    buf_init(&body);
    http_error_body(&body, status);
    tern_buf *out = conn_outbuf(hc->conn);
    http_write_head(out, status, 1, true, time(NULL), "text/plain; charset=utf-8", body.len,
                    NULL);
    buf_append(out, body.data, body.len);
    buf_free(&body);
    hc->closing = true;
    conn_close(hc->conn);
}

/* ---- the module API ---- */

const char *tern_http_method(const tern_http_request *req) { return req->msg->method; }
const char *tern_http_path(const tern_http_request *req) { return req->msg->path; }
const char *tern_http_query(const tern_http_request *req) { return req->msg->query; }
const char *tern_http_peer(const tern_http_request *req) { return conn_peer(req->hc->conn); }
bool tern_http_secure(const tern_http_request *req) { return req->hc->tls; }
tern_host *tern_http_host(const tern_http_request *req) { return req->host; }
uint64_t tern_http_id(const tern_http_request *req) { return req->hc->id; }

const char *tern_http_header(const tern_http_request *req, const char *name)
{
    return http_message_header(req->msg, name);
}

const char *tern_http_body(const tern_http_request *req, size_t *len)
{
    if (len)
        *len = req->msg->body_len;
    return req->msg->body;
}

void tern_http_add_header(tern_http_request *req, const char *name, const char *value)
{
    if (!http_valid_header(name, value)) {
        log_error(req->hc->id, "http: a module tried to send an invalid field '%s'",
                  name ? name : "(null)");
        return;
    }
    buf_printf(&req->fields, "%s: %s\r\n", name, value);
}

void tern_http_respond(tern_http_request *req, int status, const char *content_type,
                       const void *body, size_t len)
{
    if (!req || req->answered)
        return;
    if (status < 200 || status > 599 ||
        (content_type && !http_valid_header("Content-Type", content_type))) {
        log_error(req->hc->id, "http: a module answered with status %d / an invalid type",
                  status);
        status = 500;
        content_type = NULL;
        body = NULL;
        len = 0;
    }
    send_response(req, status, content_type, body, len);
}

void tern_http_on_gone(tern_http_request *req,
                       void (*fn)(tern_http_request *req, void *data), void *data)
{
    req->gone = fn;
    req->gone_data = data;
}

/* ---- protocol upgrade (WebSocket) ---- */

bool tern_http_has_token(const tern_http_request *req, const char *name, const char *token)
{
    return http_message_has_token(req->msg, name, token);
}

int tern_http_minor_version(const tern_http_request *req) { return req->msg->minor; }

bool tern_http_valid_header(const char *name, const char *value)
{
    return http_valid_header(name, value);
}

const char *tern_http_authority(const tern_http_request *req) { return req->msg->authority; }

char *const *tern_http_cors_origins(size_t *n)
{
    *n = server.cfg->http_cors_origins.n;
    return server.cfg->http_cors_origins.items;
}

conn *tern_http_upgrade(tern_http_request *req, const char *fields, tern_buf *rest)
{
    http_conn *hc = req->hc;
    if (!req->in_handler || req->answered || hc->closing || !hc->conn)
        return NULL;
    http_write_head(conn_outbuf(hc->conn), 101, req->msg->minor, false, time(NULL), NULL, 0,
                    fields);
    conn_flush(hc->conn);
    log_debug(hc->id, "http %s %s -> 101 (switching protocols)", req->msg->method,
              req->msg->target);
    /* A client may send its first frames right behind the request, before our 101. */
    if (hc->in.len > hc->in_off)
        buf_append(rest, hc->in.data + hc->in_off, hc->in.len - hc->in_off);
    hc->in_off = hc->in.len;
    conn *c = hc->conn;
    hc->conn = NULL;
    if (hc->paused)
        conn_pause_reading(c, false);
    /* The request is over and the connection no longer ours: once the handler and
     * process_input() have returned, the http_conn goes (destroy() skips a NULL conn). */
    req->answered = true;
    hc->current = NULL;
    hc->closing = true;
    hc->destroy_pending = true;
    evtimer_del(hc->timer);
    return c;
}

/* ---- routing ---- */

/* The host part of an authority ("Example.org:5280" → "example.org"), lowercased. */
static void authority_host(const char *authority, char *out, size_t len)
{
    size_t n = 0;
    if (authority) {
        const char *end = authority[0] == '[' ? strchr(authority, ']')
                                              : authority + strcspn(authority, ":");
        if (end && authority[0] == '[')
            end++;
        if (!end)
            end = authority + strlen(authority);
        for (const char *p = authority; p < end && n + 1 < len; p++)
            out[n++] = (char)tolower((unsigned char)*p);
    }
    out[n] = '\0';
}

static bool under_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0)
        return false;
    return n > 0 && (prefix[n - 1] == '/' || path[n] == '/' || path[n] == '\0');
}

typedef struct route_search {
    const char *path;
    const char *host_name;
    tern_host *visiting;
    const tern_http_route *best;
    tern_host *best_host;
    bool best_exact, best_host_match;
    size_t best_len;
} route_search;

static void consider_route(void *ctx, const char *item, const void *data)
{
    route_search *s = ctx;
    const tern_http_route *r = data;
    (void)item;
    bool exact = strcmp(s->path, r->path) == 0;
    if (!exact && !(r->prefix && under_prefix(s->path, r->path)))
        return;
    size_t len = strlen(r->path);
    bool host_match = strcmp(tern_host_name(s->visiting), s->host_name) == 0;
    bool better = !s->best || (exact != s->best_exact ? exact
                               : len != s->best_len ? len > s->best_len
                               : host_match && !s->best_host_match);
    if (!better)
        return;
    s->best = r;
    s->best_host = s->visiting;
    s->best_exact = exact;
    s->best_len = len;
    s->best_host_match = host_match;
}

static const tern_http_route *find_route(const char *path, const char *host_name,
                                         tern_host **host)
{
    route_search s = { .path = path, .host_name = host_name };
    for (size_t i = 0; i < server.n_hosts; i++) {
        s.visiting = server.hosts[i];
        tern_registry_each(server.hosts[i], TERN_REG_HTTP_ROUTE, consider_route, &s);
    }
    *host = s.best_host;
    return s.best;
}

/* The host the request names, else the first one (whose host-meta a bare IP address gets). */
static tern_host *host_of_request(const char *host_name)
{
    tern_host *h = server_find_host(host_name);
    return h ? h : server.n_hosts ? server.hosts[0] : NULL;
}

/* Whether a "GET, POST" list names `method` (methods are case-sensitive: RFC 9110 §9.1). */
static bool list_has_method(const char *methods, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = methods; (p = strstr(p, method)); p += n)
        if ((p == methods || p[-1] == ' ' || p[-1] == ',') &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
    return false;
}

/* NULL lets everything through; GET brings HEAD along (RFC 9110 §9.3.2). */
static bool method_allowed(const char *methods, const char *method)
{
    if (!methods || list_has_method(methods, method))
        return true;
    return strcmp(method, "HEAD") == 0 && list_has_method(methods, "GET");
}

/* The methods of the target as a list for Allow and preflight answers: the route's, HEAD
 * wherever GET is, and OPTIONS, which is always ours. */
static void allowed_methods(const tern_http_request *req, tern_buf *out)
{
    const char *methods = req->methods ? req->methods : DEFAULT_METHODS;
    buf_append_str(out, methods);
    if (list_has_method(methods, "GET") && !list_has_method(methods, "HEAD"))
        buf_append_str(out, ", HEAD");
    buf_append_str(out, ", OPTIONS");
}

static void send_allow(tern_http_request *req, int status)
{
    tern_buf allow;
    buf_init(&allow);
    allowed_methods(req, &allow);
    tern_http_add_header(req, "Allow", buf_cstr(&allow));
    buf_free(&allow);
    send_response(req, status, NULL, NULL, 0);
}

/* ---- OPTIONS and CORS preflight ---- */

/* Access-Control-Request-Headers is echoed when it is a plain list of field names. */
static bool token_list(const char *s)
{
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~, \t", *s)))
            return false;
    return true;
}

static void answer_options(tern_http_request *req)
{
    const char *origin = tern_http_header(req, "Origin");
    const char *want_method = tern_http_header(req, "Access-Control-Request-Method");
    if (!origin || !want_method) {
        send_allow(req, 204); /* a plain OPTIONS (RFC 9110 §9.3.7) */
        return;
    }
    if (!req->allow_origin) {
        log_debug(req->hc->id, "http: CORS preflight from origin %s refused", origin);
        send_response(req, 403, NULL, NULL, 0);
        return;
    }
    tern_buf v;
    buf_init(&v);
    allowed_methods(req, &v);
    tern_http_add_header(req, "Access-Control-Allow-Methods", buf_cstr(&v));
    const char *want_headers = tern_http_header(req, "Access-Control-Request-Headers");
    tern_http_add_header(req, "Access-Control-Allow-Headers",
                         want_headers && *want_headers && token_list(want_headers)
                             ? want_headers : "Content-Type");
    tern_http_add_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
    buf_free(&v);
    send_response(req, 204, NULL, NULL, 0);
}

/* ---- host-meta (XEP-0156 §3) ---- */

typedef struct link_list {
    http_link items[16];
    char *owned[16];
    size_t n;
    const char *authority;
    bool tls;
} link_list;

static void collect_link(void *ctx, const char *rel, const void *data)
{
    link_list *l = ctx;
    const char *href = data;
    if (l->n == ARRAY_LEN(l->items) || !href)
        return;
    char *absolute = NULL;
    if (href[0] == '/') {
        if (!l->authority)
            return; /* no name to make it absolute with */
        bool ws = strcmp(rel, TERN_HTTP_REL_WEBSOCKET) == 0;
        absolute = xasprintf("%s://%s%s", ws ? (l->tls ? "wss" : "ws")
                                              : (l->tls ? "https" : "http"), l->authority, href);
    }
    l->owned[l->n] = absolute;
    l->items[l->n++] = (http_link){ rel, absolute ? absolute : href };
}

static void answer_host_meta(tern_http_request *req, bool json)
{
    link_list links = { .authority = req->msg->authority, .tls = req->hc->tls };
    if (req->host)
        tern_registry_each(req->host, TERN_REG_HTTP_LINK, collect_link, &links);
    tern_buf body;
    buf_init(&body);
    if (json)
        http_render_host_meta_json(&body, links.items, links.n);
    else
        http_render_host_meta_xrd(&body, links.items, links.n);
    /* Public and read-only: any web page may read it, whatever cors_origins says. */
    req->allow_origin = "*";
    send_response(req, 200, json ? "application/json" : "application/xrd+xml; charset=utf-8",
                  body.data, body.len);
    buf_free(&body);
    for (size_t i = 0; i < links.n; i++)
        free(links.owned[i]);
}

/* ---- static files ---- */

/* The regular file at path, open for reading, or -1. */
static int open_file(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Where a static target lives: 0 with the file, 1 for a folder without '/', -1 for none. */
static int locate_static(const char *path, char **file)
{
    *file = NULL;
    const char *dir = server.cfg->http_static_dir;
    if (!dir)
        return -1;
    char *root = realpath(dir, NULL);
    if (!root) {
        log_warn(0, "http: static_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = http_static_resolve(root, path, file);
    free(root);
    return rc;
}

static void answer_static(tern_http_request *req, char *file, int located)
{
    const http_message *m = req->msg;
    if (located == 1) {
        /* A folder: its index's relative links need the trailing slash (like every web
         * server). The raw target is reused so the Location stays percent-encoded. */
        const char *raw = m->target[0] == '/' ? m->target : NULL;
        if (!raw) {
            send_response(req, 404, NULL, NULL, 0);
            return;
        }
        size_t path_len = strcspn(raw, "?");
        char *location = xasprintf("%.*s/%s%s", (int)path_len, raw, *m->query ? "?" : "",
                                   m->query);
        tern_http_add_header(req, "Location", location);
        free(location);
        send_response(req, 301, NULL, NULL, 0);
        return;
    }
    struct stat st;
    int fd = open_file(file, &st);
    if (fd < 0) {
        send_response(req, 404, NULL, NULL, 0);
        return;
    }
    char modified[30];
    http_format_date(st.st_mtime, modified);
    tern_http_add_header(req, "Last-Modified", modified);
    tern_http_add_header(req, "X-Content-Type-Options", "nosniff");
    /* RFC 9110 §13.1.3: not modified since the client's copy (second precision). */
    const char *since = tern_http_header(req, "If-Modified-Since");
    time_t since_t;
    if (since && !tern_http_header(req, "If-None-Match") && http_parse_date(since, &since_t) == 0 &&
        st.st_mtime <= since_t) {
        close(fd);
        send_response(req, 304, NULL, NULL, 0);
    } else {
        send_file_response(req, http_media_type(file), fd, &st);
    }
}

/* ---- dispatch ---- */

static void run_handler(http_conn *hc, tern_http_request *req, const tern_http_route *route)
{
    req->in_handler = true;
    hc->busy++;
    route->handler(req, route->data);
    hc->busy--;
    req->in_handler = false;
    if (req->answered) {
        request_free(req);
        return;
    }
    if (!req->gone) {
        log_error(hc->id, "http: the handler of %s neither answered nor kept the request",
                  route->path);
        send_response(req, 500, NULL, NULL, 0);
        return;
    }
    log_debug(hc->id, "http %s %s: the module answers later", req->msg->method,
              req->msg->target);
}

static void dispatch(http_conn *hc, http_message *msg)
{
    evtimer_del(hc->timer);
    tern_http_request *req = xcalloc(1, sizeof *req);
    req->hc = hc;
    req->msg = msg;
    buf_init(&req->fields);
    hc->current = req;
    req->head = strcmp(msg->method, "HEAD") == 0;
    req->allow_origin = tern_http_cors_allow(server.cfg->http_cors_origins.items,
                                        server.cfg->http_cors_origins.n,
                                        http_message_header(msg, "Origin"));
    char host_name[256];
    authority_host(msg->authority, host_name, sizeof host_name);
    bool options = strcmp(msg->method, "OPTIONS") == 0;
    if (strcmp(msg->path, "*") == 0) {
        send_allow(req, 204);
        return;
    }

    bool xrd = strcmp(msg->path, "/.well-known/host-meta") == 0;
    if (xrd || strcmp(msg->path, "/.well-known/host-meta.json") == 0) {
        req->host = host_of_request(host_name);
        req->methods = "GET, HEAD";
        if (options)
            answer_options(req);
        else if (!method_allowed(req->methods, msg->method))
            send_allow(req, 405);
        else
            answer_host_meta(req, !xrd);
        return;
    }

    tern_host *route_host;
    const tern_http_route *route = find_route(msg->path, host_name, &route_host);
    if (route) {
        req->host = route_host;
        req->methods = route->methods;
        if (options)
            answer_options(req);
        else if (!method_allowed(route->methods, msg->method))
            send_allow(req, 405);
        else
            run_handler(hc, req, route);
        return;
    }

    char *file = NULL;
    int located = locate_static(msg->path, &file);
    req->host = host_of_request(host_name);
    req->methods = "GET, HEAD";
    if (located < 0)
        send_response(req, 404, NULL, NULL, 0);
    else if (options)
        answer_options(req);
    else if (!method_allowed(req->methods, msg->method))
        send_allow(req, 405);
    else
        answer_static(req, file, located);
    free(file);
}

/* ---- connections ---- */

static void process_input(http_conn *hc)
{
    hc->busy++;
    /* A client that sends requests without reading the answers waits until it reads. */
    while (!hc->current && !hc->closing && hc->in.len > hc->in_off &&
           !conn_send_congested(hc->conn)) {
        size_t used = 0;
        http_parse_result rc = http_parser_feed(hc->parser, hc->in.data + hc->in_off,
                                                hc->in.len - hc->in_off, &used);
        hc->in_off += used;
        if (http_parser_take_continue(hc->parser))
            conn_write(hc->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        if (rc == HTTP_PARSE_MORE)
            break;
        if (rc == HTTP_PARSE_ERROR) {
            refuse(hc, http_parser_status(hc->parser), http_parser_reason(hc->parser));
            break;
        }
        dispatch(hc, http_parser_take(hc->parser));
    }
    /* Drop what was parsed; keep what waits behind an open request. */
    if (hc->in_off == hc->in.len) {
        buf_reset(&hc->in);
        hc->in_off = 0;
    } else if (hc->in_off > 0) {
        memmove(hc->in.data, hc->in.data + hc->in_off, hc->in.len - hc->in_off);
        hc->in.len -= hc->in_off;
        hc->in_off = 0;
    }
    if (hc->current && !hc->paused && hc->in.len > HTTP_MAX_QUEUED_INPUT) {
        hc->paused = true;
        conn_pause_reading(hc->conn, true);
    }
    hc->busy--;
    if (hc->destroy_pending && !hc->busy)
        destroy(hc);
}

static void on_data(void *ctx, const char *data, size_t len)
{
    http_conn *hc = ctx;
    if (hc->closing)
        return;
    buf_append(&hc->in, data, len);
    process_input(hc);
}

static void on_tls_ready(void *ctx) { (void)ctx; }

static void on_closed(void *ctx, const char *reason)
{
    http_conn *hc = ctx;
    log_debug(hc->id, "http connection closed: %s", reason ? reason : "done");
    if (hc->busy) {
        hc->destroy_pending = true;
        return;
    }
    destroy(hc);
}

static void on_send_drained(void *ctx)
{
    http_conn *hc = ctx;
    if (hc->body_fd >= 0)
        send_file_chunks(hc);
    else if (!hc->busy && !hc->current && hc->in.len > hc->in_off)
        event_active(hc->resume, 0, 0);
}

/* No on_send_overflow: HTTP has no way to say it, the connection just closes. */
static const conn_handlers http_conn_handlers = {
    .on_data = on_data,
    .on_tls_ready = on_tls_ready,
    .on_closed = on_closed,
    .on_send_drained = on_send_drained,
};

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    http_conn *hc = arg;
    (void)fd;
    (void)what;
    if (hc->current || hc->closing)
        return;
    if (http_parser_started(hc->parser) || hc->in.len > 0) {
        refuse(hc, 408, "the request did not arrive in time");
    } else {
        hc->closing = true;
        conn_close(hc->conn); /* idle keep-alive connection */
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_input(arg);
}

/* The client is gone: a module holding its request hears it now, then the request goes. */
static void drop_current(http_conn *hc)
{
    tern_http_request *req = hc->current;
    if (!req)
        return;
    hc->current = NULL;
    req->answered = true; /* an answer from inside the callback goes nowhere */
    if (req->gone)
        req->gone(req, req->gone_data);
    if (!req->in_handler)
        request_free(req);
}

static void destroy(http_conn *hc)
{
    drop_current(hc);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        connections = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    n_connections--;
    event_free(hc->timer);
    event_free(hc->resume);
    if (hc->body_fd >= 0)
        close(hc->body_fd);
    http_parser_free(hc->parser);
    buf_free(&hc->in);
    conn_free(hc->conn);
    free(hc);
}

void http_accept(int fd, bool tls)
{
    if (server.stopping || n_connections >= HTTP_MAX_CONNECTIONS) {
        log_warn(0, "refusing an HTTP connection: %s",
                 server.stopping ? "shutting down" : "too many HTTP connections");
        close(fd);
        return;
    }
    http_conn *hc = xcalloc(1, sizeof *hc);
    hc->id = server_next_id();
    hc->tls = tls;
    hc->body_fd = -1;
    hc->parser = http_parser_new(server.cfg->http_max_body_size);
    buf_init(&hc->in);
    hc->timer = evtimer_new(server.base, on_timeout, hc);
    hc->resume = event_new(server.base, -1, 0, on_resume, hc);
    hc->next = connections;
    if (hc->next)
        hc->next->prev = hc;
    connections = hc;
    n_connections++;
    hc->conn = conn_new(server.base, fd, &http_conn_handlers, hc, hc->id);
    const config_send_queue *q = &server.cfg->http_send_queue;
    conn_set_send_limits(hc->conn, &(conn_send_limits){ q->high_water, q->max, q->timeout });
    log_debug(hc->id, "http connection from %s%s", conn_peer(hc->conn), tls ? " (TLS)" : "");
    arm_idle_timer(hc);
    /* The handshake may start, and fail, right here: on_closed then waits for us. */
    hc->busy++;
    bool failed = tls && (!server.tls || conn_start_tls(hc->conn, server.tls, "http/1.1") != 0);
    hc->busy--;
    if (failed || hc->destroy_pending)
        destroy(hc);
}

void http_free_all(void)
{
    while (connections)
        destroy(connections);
}

int http_check_config(char *err, size_t err_len)
{
    const char *dir = server.cfg->http_static_dir;
    struct stat st;
    if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, R_OK | X_OK) != 0)) {
        snprintf(err, err_len, "%s: [http] static_dir %s is not a readable folder",
                 server.cfg->path, dir);
        return -1;
    }
    return 0;
}
