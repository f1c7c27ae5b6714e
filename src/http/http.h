/* http.h — HTTP/1.1 messages (RFC 9110, RFC 9112) for the HTTP listener: an incremental request
 * parser, the response head writer, dates, media types, CORS origin checks, static file
 * resolution and the XEP-0156 host-meta documents. Nothing here touches a socket, so all of it
 * is unit-tested on its own (tests/unit/test_http.c); http_server.c runs it over connections. */
#ifndef TERN_HTTP_INTERNAL_H
#define TERN_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "tern/http.h"
#include "tern/xml.h"

/* Limits that hold whatever the configuration says. */
#define HTTP_MAX_REQUEST_LINE 8192   /* longer: 414 URI Too Long */
#define HTTP_MAX_HEAD 16384          /* request line and headers; longer: 431 */
#define HTTP_MAX_HEADERS 100         /* more fields: 431 */
#define HTTP_DEFAULT_MAX_BODY 1048576

typedef struct http_header {
    const char *name;  /* as sent; compare case-insensitively */
    const char *value; /* leading and trailing white space removed */
} http_header;

/* One parsed request. Every string lives as long as the message. */
typedef struct http_message {
    const char *method;      /* case-sensitive token (RFC 9110 §9.1) */
    const char *target;      /* the request-target as sent */
    const char *path;        /* percent-decoded path ("*" for OPTIONS *) */
    const char *query;       /* raw query after '?', "" when none */
    const char *authority;   /* host[:port] from an absolute-form target or Host; NULL if none */
    int minor;               /* HTTP/1.<minor>: 0 or 1 */
    http_header headers[HTTP_MAX_HEADERS];
    size_t n_headers;
    char *body;              /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    bool keep_alive;         /* the client wants the connection kept after this response */
    bool expect_continue;    /* Expect: 100-continue */
    char *block_;            /* private: the head the strings point into */
    char *path_;             /* private: the decoded path */
    char *authority_;        /* private: the authority of an absolute-form target */
} http_message;

void http_message_free(http_message *m);
/* The first field with this name (case-insensitive), or NULL. */
const char *http_message_header(const http_message *m, const char *name);
/* Whether any field `name` lists `token` in its comma-separated value (case-insensitive),
 * e.g. Connection: close. */
bool http_message_has_token(const http_message *m, const char *name, const char *token);

typedef enum http_parse_result {
    HTTP_PARSE_MORE = 0,   /* every byte was used; feed more */
    HTTP_PARSE_DONE = 1,   /* a whole request is ready: http_parser_take(); bytes after it are
                              not used (pipelining) */
    HTTP_PARSE_ERROR = -1, /* http_parser_status() says which response to send, then close */
} http_parse_result;

typedef struct http_parser http_parser;

http_parser *http_parser_new(size_t max_body);
void http_parser_free(http_parser *p);
/* Feeds bytes; *used tells how many were consumed (all of them unless DONE or ERROR). */
http_parse_result http_parser_feed(http_parser *p, const char *data, size_t len, size_t *used);
/* After DONE: the request (the caller frees it); the parser is ready for the next one. */
http_message *http_parser_take(http_parser *p);
/* After ERROR: the status to answer with (400, 411, 413, 414, 417, 431, 501 or 505) and a
 * short reason for the log. */
int http_parser_status(const http_parser *p);
const char *http_parser_reason(const http_parser *p);
/* True once, when the head of a request with Expect: 100-continue and an acceptable body has
 * been read, so the caller sends "100 Continue" (RFC 9110 §10.1.1). */
bool http_parser_take_continue(http_parser *p);
/* Whether part of a request has arrived (for telling an idle connection from a slow one). */
bool http_parser_started(const http_parser *p);

/* ---- responses ---- */

const char *http_reason_phrase(int status);
/* Whether a response with this status carries no body (1xx, 204, 304: RFC 9110 §6.4.1). */
bool http_status_has_no_body(int status);
/* Writes the status line and the standard fields: Date, Server, Content-Type (when given),
 * Content-Length (not for 1xx/204), Connection: close (when closing; keep-alive for an
 * HTTP/1.0 client that asked for it), then `extra` (complete "Name: value\r\n" lines, may be
 * NULL) and the empty line. */
void http_write_head(tern_buf *out, int status, int minor, bool close, time_t now,
                     const char *content_type, size_t content_length, const char *extra);
/* A short text/plain body for an error status ("404 Not Found\n"). */
void http_error_body(tern_buf *out, int status);

/* RFC 9110 §5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (out: 30 bytes). */
void http_format_date(time_t t, char out[30]);
/* Parses the three date forms a recipient must accept (IMF-fixdate, RFC 850, asctime);
 * 0 and *out, or -1. */
int http_parse_date(const char *text, time_t *out);

/* Media type of a file name by its extension; "application/octet-stream" when unknown. */
const char *http_media_type(const char *file_name);

/* Whether a header name and value may be sent (a token, no CR/LF/NUL): module input. */
bool http_valid_header(const char *name, const char *value);

/* ---- CORS (Fetch standard "CORS protocol") ---- */


/* ---- static files ---- */

/* Maps a decoded request path to a file under `root` (an absolute, resolved folder): a folder
 * gives its index.html; symbolic links are followed only while they stay inside root; a path
 * segment starting with '.' (other than .well-known) is refused. Returns 0 and a malloc'd path
 * of a regular file in *file, 1 when the path names a folder but lacks its trailing '/'
 * (redirect), or -1 when there is nothing to serve (404). */
int http_static_resolve(const char *root, const char *path, char **file);

/* ---- XEP-0156 host-meta ---- */

typedef struct http_link {
    const char *rel;   /* e.g. "urn:xmpp:alt-connections:xbosh" */
    const char *href;  /* absolute URL */
} http_link;

#define HTTP_NS_XRD "http://docs.oasis-open.org/ns/xri/xrd-1.0"
/* The host-meta document (RFC 6415 XRD) and its JSON form (JRD) with these links. */
void http_render_host_meta_xrd(tern_buf *out, const http_link *links, size_t n);
void http_render_host_meta_json(tern_buf *out, const http_link *links, size_t n);
/* Appends s as a JSON string, quotes included (RFC 8259 §7). */
void http_json_string(tern_buf *out, const char *s);

/* ---- the server (http_server.c) ---- */

/* Checks [http] (static_dir must be a readable folder). 0, or -1 with a reason. */
int http_check_config(char *err, size_t err_len);
/* A new socket from an HTTP listener; tls for the tls_listen ports. */
void http_accept(int fd, bool tls);
/* Closes every HTTP connection, telling modules about requests they still hold. Called at
 * exit, before the modules unload. */
void http_free_all(void);

#endif
