/* test_http.c — unit tests for HTTP/1.1 messages (src/http/http.c): the request parser fed every
 * request split at every byte (and one byte at a time), every error status it answers, the
 * response head, dates (RFC 9110 §5.6.7's three forms), media types, CORS origins, static
 * file resolution (no way out of the folder) and the XEP-0156 host-meta documents. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "http/http.h"

#define MAX_BODY 1024

/* ---- feeding helpers ---- */

typedef struct outcome {
    int status;           /* 0 when a request was parsed */
    http_message *msg;
    size_t used;          /* bytes consumed in total */
    bool continued;       /* 100-continue was signalled before the body */
} outcome;

/* Feeds `len` bytes in pieces: the first `split` bytes, then the rest (step 0), or `step`
 * bytes at a time. Stops at the first complete request or error. */
static outcome feed(const char *data, size_t len, size_t split, size_t step, size_t max_body)
{
    outcome o = { 0 };
    http_parser *p = http_parser_new(max_body);
    size_t off = 0;
    while (off < len || len == 0) {
        size_t n = step ? step : (off < split ? split - off : len - off);
        if (n > len - off)
            n = len - off;
        size_t used = 0;
        http_parse_result rc = http_parser_feed(p, data + off, n, &used);
        ck_assert_uint_le(used, n);
        off += used;
        if (http_parser_take_continue(p))
            o.continued = true;
        if (rc == HTTP_PARSE_ERROR) {
            o.status = http_parser_status(p);
            ck_assert_int_ne(o.status, 0);
            break;
        }
        if (rc == HTTP_PARSE_DONE) {
            o.msg = http_parser_take(p);
            ck_assert_ptr_nonnull(o.msg);
            break;
        }
        ck_assert_uint_eq(used, n); /* MORE consumes everything */
        if (len == 0)
            break;
    }
    o.used = off;
    http_parser_free(p);
    return o;
}

typedef void (*message_check)(const http_message *m);

/* Parses `req` at every split point and one byte at a time; each time the request must be
 * complete, use every byte, and pass `check`. */
static void parses_everywhere(const char *req, size_t len, message_check check)
{
    for (size_t split = 0; split <= len + 1; split++) {
        outcome o = split <= len ? feed(req, len, split, 0, MAX_BODY)
                                 : feed(req, len, 0, 1, MAX_BODY);
        ck_assert_msg(o.status == 0, "split %zu: status %d for:\n%.300s", split, o.status, req);
        ck_assert_ptr_nonnull(o.msg);
        ck_assert_uint_eq(o.used, len);
        check(o.msg);
        http_message_free(o.msg);
    }
}

/* The request must be refused with `status` wherever it is split. */
static void fails_everywhere(const char *req, size_t len, int status, size_t max_body)
{
    for (size_t split = 0; split <= len + 1; split++) {
        outcome o = split <= len ? feed(req, len, split, 0, max_body)
                                 : feed(req, len, 0, 1, max_body);
        ck_assert_msg(o.status == status, "split %zu: status %d, expected %d for:\n%.300s",
                      split, o.status, status, req);
        ck_assert_ptr_null(o.msg);
    }
}

#define PARSES(req, check) parses_everywhere((req), sizeof(req) - 1, (check))
#define FAILS(req, status) fails_everywhere((req), sizeof(req) - 1, (status), MAX_BODY)

/* ---- requests that parse ---- */

static void check_simple_get(const http_message *m)
{
    ck_assert_str_eq(m->method, "GET");
    ck_assert_str_eq(m->target, "/index.html?x=1&y=%41");
    ck_assert_str_eq(m->path, "/index.html");
    ck_assert_str_eq(m->query, "x=1&y=%41");
    ck_assert_int_eq(m->minor, 1);
    ck_assert_uint_eq(m->n_headers, 2);
    ck_assert_str_eq(m->headers[0].name, "Host");
    ck_assert_str_eq(m->headers[0].value, "example.org:5280");
    ck_assert_str_eq(m->headers[1].name, "User-Agent");
    ck_assert_str_eq(m->headers[1].value, "test/1.0");
    ck_assert_str_eq(http_message_header(m, "user-agent"), "test/1.0");
    ck_assert_ptr_null(http_message_header(m, "Accept"));
    ck_assert_str_eq(m->authority, "example.org:5280");
    ck_assert_uint_eq(m->body_len, 0);
    ck_assert_str_eq(m->body, "");
    ck_assert(m->keep_alive);
    ck_assert(!m->expect_continue);
}

START_TEST(simple_get)
{
    PARSES("GET /index.html?x=1&y=%41 HTTP/1.1\r\nHost: example.org:5280\r\n"
           "User-Agent: test/1.0\r\n\r\n", check_simple_get);
    /* Bare LF line ends (RFC 9112 §2.2 MAY) and empty lines before the request line. */
    PARSES("\r\n\r\nGET /index.html?x=1&y=%41 HTTP/1.1\nHost: example.org:5280\n"
           "User-Agent: test/1.0\n\n", check_simple_get);
    /* Optional white space around values is not part of them. */
    PARSES("GET /index.html?x=1&y=%41 HTTP/1.1\r\nHost:example.org:5280 \t\r\n"
           "User-Agent: \t test/1.0  \r\n\r\n", check_simple_get);
}
END_TEST

static void check_post(const http_message *m)
{
    ck_assert_str_eq(m->method, "POST");
    ck_assert_str_eq(m->path, "/http-bind");
    ck_assert_str_eq(m->query, "");
    ck_assert_uint_eq(m->body_len, 26);
    ck_assert_mem_eq(m->body, "<body rid='1' xmlns='x'/>\n", 26);
    ck_assert_int_eq(m->body[26], '\0');
    ck_assert_str_eq(http_message_header(m, "content-type"), "text/xml; charset=utf-8");
}

START_TEST(post_with_body)
{
    PARSES("POST /http-bind HTTP/1.1\r\nHost: h\r\nContent-Type: text/xml; charset=utf-8\r\n"
           "Content-Length: 26\r\n\r\n<body rid='1' xmlns='x'/>\n", check_post);
    /* Repeated identical lengths are one length (RFC 9110 §8.6). */
    PARSES("POST /http-bind HTTP/1.1\r\nHost: h\r\nContent-Length: 26\r\n"
           "Content-Type: text/xml; charset=utf-8\r\nContent-Length: 26\r\n\r\n"
           "<body rid='1' xmlns='x'/>\n", check_post);
}
END_TEST

static void check_http10_close(const http_message *m)
{
    ck_assert_int_eq(m->minor, 0);
    ck_assert(!m->keep_alive);
    ck_assert_ptr_null(m->authority);
}

static void check_http10_keep(const http_message *m)
{
    ck_assert_int_eq(m->minor, 0);
    ck_assert(m->keep_alive);
}

static void check_close(const http_message *m)
{
    ck_assert_int_eq(m->minor, 1);
    ck_assert(!m->keep_alive);
}

static void check_minor_1(const http_message *m)
{
    ck_assert_int_eq(m->minor, 1);
    ck_assert(m->keep_alive);
}

START_TEST(connection_persistence)
{
    /* RFC 9112 §9.3: 1.0 closes unless it asks to keep; 1.1 keeps unless it asks to close. */
    PARSES("GET / HTTP/1.0\r\n\r\n", check_http10_close);
    PARSES("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", check_http10_keep);
    PARSES("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", check_http10_close);
    PARSES("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade,  CLOSE \r\n\r\n", check_close);
    PARSES("GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\nConnection: close\r\n\r\n",
           check_close);
    /* A later 1.x is served as 1.1 (RFC 9110 §2.5). */
    PARSES("GET / HTTP/1.7\r\nHost: h\r\n\r\n", check_minor_1);
}
END_TEST

static void check_decoded(const http_message *m)
{
    ck_assert_str_eq(m->path, "/a b/\xc3\xa9/c%d");
    ck_assert_str_eq(m->query, "q=%20");
}

static void check_absolute(const http_message *m)
{
    ck_assert_str_eq(m->path, "/x/y");
    ck_assert_str_eq(m->query, "q");
    ck_assert_str_eq(m->authority, "Example.org:80"); /* the target's, not Host's */
}

static void check_absolute_root(const http_message *m)
{
    ck_assert_str_eq(m->path, "/");
    ck_assert_str_eq(m->authority, "example.org");
}

static void check_asterisk(const http_message *m)
{
    ck_assert_str_eq(m->method, "OPTIONS");
    ck_assert_str_eq(m->path, "*");
}

static void check_empty_value(const http_message *m)
{
    ck_assert_str_eq(http_message_header(m, "X-Empty"), "");
    ck_assert_str_eq(http_message_header(m, "X-Utf8"), "\xc3\xa9t\xc3\xa9");
}

START_TEST(targets_and_values)
{
    PARSES("GET /a%20b/%C3%a9/c%25d?q=%20 HTTP/1.1\r\nHost: h\r\n\r\n", check_decoded);
    PARSES("GET http://Example.org:80/x/y?q HTTP/1.1\r\nHost: other\r\n\r\n", check_absolute);
    PARSES("GET HTTP://example.org HTTP/1.1\r\nHost: example.org\r\n\r\n", check_absolute_root);
    PARSES("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", check_asterisk);
    PARSES("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Utf8: \xc3\xa9t\xc3\xa9\r\n\r\n",
           check_empty_value);
}
END_TEST

START_TEST(pipelined_requests)
{
    static const char two[] = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
                              "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /three HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *expected[] = { "/one", "/two", "/three" };
    size_t len = sizeof two - 1;
    /* Fed in pieces of every size: each request ends exactly where it ends, and the bytes
     * after it are left for the next one. */
    for (size_t step = 1; step <= len; step++) {
        http_parser *p = http_parser_new(MAX_BODY);
        size_t off = 0, got = 0;
        while (off < len) {
            size_t n = step < len - off ? step : len - off;
            size_t used;
            http_parse_result rc = http_parser_feed(p, two + off, n, &used);
            ck_assert_int_ne(rc, HTTP_PARSE_ERROR);
            off += used;
            if (rc == HTTP_PARSE_DONE) {
                http_message *m = http_parser_take(p);
                ck_assert_uint_lt(got, 3);
                ck_assert_str_eq(m->path, expected[got]);
                if (got == 1)
                    ck_assert_str_eq(m->body, "abc");
                got++;
                http_message_free(m);
            }
        }
        ck_assert_uint_eq(got, 3);
        http_parser_free(p);
    }
}
END_TEST

START_TEST(expect_continue)
{
    static const char req[] = "PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
                              "Content-Length: 5\r\n\r\nhello";
    size_t head_len = sizeof req - 1 - 5;
    http_parser *p = http_parser_new(MAX_BODY);
    size_t used;
    ck_assert_int_eq(http_parser_feed(p, req, head_len, &used), HTTP_PARSE_MORE);
    ck_assert(http_parser_take_continue(p));
    ck_assert(!http_parser_take_continue(p)); /* once */
    ck_assert_int_eq(http_parser_feed(p, req + head_len, 5, &used), HTTP_PARSE_DONE);
    http_message *m = http_parser_take(p);
    ck_assert(m->expect_continue);
    ck_assert_str_eq(m->body, "hello");
    http_message_free(m);

    /* Sent with the body already there: no 100 needed. */
    ck_assert_int_eq(http_parser_feed(p, req, sizeof req - 1, &used), HTTP_PARSE_DONE);
    ck_assert(!http_parser_take_continue(p));
    http_message_free(http_parser_take(p));

    /* HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1). */
    static const char old[] = "GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n";
    ck_assert_int_eq(http_parser_feed(p, old, sizeof old - 1, &used), HTTP_PARSE_DONE);
    m = http_parser_take(p);
    ck_assert(!m->expect_continue);
    http_message_free(m);
    http_parser_free(p);
}
END_TEST

/* A request line or head of exactly the limit is fine; one byte more is not. */
static char *request_with_target(size_t line_len)
{
    const char *pre = "GET /", *post = " HTTP/1.1";
    size_t fill = line_len - strlen(pre) - strlen(post);
    char *req = xmalloc(line_len + 64);
    strcpy(req, pre);
    memset(req + strlen(pre), 'a', fill);
    strcpy(req + strlen(pre) + fill, post);
    strcat(req, "\r\nHost: h\r\n\r\n");
    return req;
}

static char *request_with_head(size_t head_len)
{
    const char *start = "GET / HTTP/1.1\r\nHost: h\r\nX-Fill: ";
    size_t fill = head_len - strlen(start) - 4;
    char *req = xmalloc(head_len + 1);
    strcpy(req, start);
    memset(req + strlen(start), 'b', fill);
    strcpy(req + strlen(start) + fill, "\r\n\r\n");
    ck_assert_uint_eq(strlen(req), head_len);
    return req;
}

static void check_nothing(const http_message *m) { (void)m; }

START_TEST(limits)
{
    char *ok = request_with_target(HTTP_MAX_REQUEST_LINE);
    parses_everywhere(ok, strlen(ok), check_nothing);
    free(ok);
    char *long_line = request_with_target(HTTP_MAX_REQUEST_LINE + 1);
    fails_everywhere(long_line, strlen(long_line), 414, MAX_BODY);
    free(long_line);

    char *head = request_with_head(HTTP_MAX_HEAD);
    parses_everywhere(head, strlen(head), check_nothing);
    free(head);
    char *big_head = request_with_head(HTTP_MAX_HEAD + 1);
    fails_everywhere(big_head, strlen(big_head), 431, MAX_BODY);
    free(big_head);

    /* Too many fields, each small. */
    tern_buf many;
    buf_init(&many);
    buf_append_str(&many, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        buf_printf(&many, "X-%d: v\r\n", i);
    buf_append_str(&many, "\r\n");
    fails_everywhere(many.data, many.len, 431, MAX_BODY);
    buf_free(&many);

    /* The body limit is max_body exactly. */
    static const char body[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
    outcome o = feed(body, sizeof body - 1, 0, 1, 10);
    ck_assert_int_eq(o.status, 0);
    http_message_free(o.msg);
    fails_everywhere(body, sizeof body - 1, 413, 9);
}
END_TEST

/* ---- requests that are refused ---- */

START_TEST(bad_requests)
{
    /* RFC 9112 §3.2: Host is required in 1.1, and never twice. */
    FAILS("GET / HTTP/1.1\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
    /* The request line. */
    FAILS("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
    FAILS("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /\r\nHost: h\r\n\r\n", 400);
    FAILS("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400);
    FAILS("GET / HTTP/1\r\nHost: h\r\n\r\n", 400);
    FAILS("hello\r\n\r\n", 400);
    /* Targets. */
    FAILS("GET index.html HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /%4 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* Dot segments, raw or encoded, anywhere in the path. */
    FAILS("GET /../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /a/..%2fetc%2Fpasswd HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /a/%2E%2E HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /./x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    FAILS("GET /x/.?q HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* Fields (RFC 9112 §5). */
    FAILS("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: h\r\nNo colon here\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: h\r\n: empty name\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n folded\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400);
    FAILS("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", 400);
    /* Framing. */
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n", 400);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", 400);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
    /* Too many empty lines instead of a request. */
    FAILS("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}
END_TEST

START_TEST(other_error_statuses)
{
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked \r\n\r\n", 411);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
    FAILS("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 501);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\n\r\n", 413);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413);
    FAILS("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2048\r\n\r\n",
          413);
    FAILS("GET / HTTP/1.1\r\nHost: h\r\nExpect: the-unexpected\r\n\r\n", 417);
    FAILS("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    FAILS("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
}
END_TEST

START_TEST(error_reported_once)
{
    /* After an error the parser uses no more bytes: the caller answers and closes. */
    http_parser *p = http_parser_new(MAX_BODY);
    size_t used;
    static const char bad[] = "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    ck_assert_int_eq(http_parser_feed(p, bad, sizeof bad - 1, &used), HTTP_PARSE_ERROR);
    ck_assert_int_eq(http_parser_status(p), 400);
    ck_assert_str_ne(http_parser_reason(p), "");
    ck_assert_int_eq(http_parser_feed(p, "x", 1, &used), HTTP_PARSE_ERROR);
    ck_assert_uint_eq(used, 0);
    ck_assert_ptr_null(http_parser_take(p));
    http_parser_free(p);

    /* Started: a partial request is told apart from an idle connection. */
    p = http_parser_new(MAX_BODY);
    ck_assert(!http_parser_started(p));
    ck_assert_int_eq(http_parser_feed(p, "GE", 2, &used), HTTP_PARSE_MORE);
    ck_assert(http_parser_started(p));
    http_parser_free(p);
}
END_TEST

/* ---- responses ---- */

#define RFC_DATE 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110 §5.6.7's example */

START_TEST(response_heads)
{
    tern_buf b;
    buf_init(&b);
    http_write_head(&b, 200, 1, false, RFC_DATE, "text/plain", 5, NULL);
    ck_assert_str_eq(buf_cstr(&b), "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                   "Server: tern\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: 5\r\n\r\n");
    buf_reset(&b);
    http_write_head(&b, 204, 1, true, RFC_DATE, NULL, 0, "Allow: GET\r\n");
    ck_assert_str_eq(buf_cstr(&b), "HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 "
                                   "08:49:37 GMT\r\nServer: tern\r\nConnection: close\r\n"
                                   "Allow: GET\r\n\r\n");
    buf_reset(&b);
    http_write_head(&b, 404, 0, false, RFC_DATE, "text/html", 0, NULL);
    ck_assert_str_eq(buf_cstr(&b), "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 "
                                   "08:49:37 GMT\r\nServer: tern\r\nContent-Type: text/html\r\n"
                                   "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n");
    buf_reset(&b);
    http_write_head(&b, 304, 1, false, RFC_DATE, NULL, 0, NULL);
    ck_assert_str_eq(buf_cstr(&b), "HTTP/1.1 304 Not Modified\r\nDate: Sun, 06 Nov 1994 "
                                   "08:49:37 GMT\r\nServer: tern\r\n\r\n");
    buf_reset(&b);
    http_error_body(&b, 413);
    ck_assert_str_eq(buf_cstr(&b), "413 Content Too Large\n");
    buf_free(&b);

    ck_assert_str_eq(http_reason_phrase(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_reason_phrase(299), "Success");
    ck_assert(http_status_has_no_body(204));
    ck_assert(http_status_has_no_body(304));
    ck_assert(http_status_has_no_body(101));
    ck_assert(!http_status_has_no_body(200));
    ck_assert(!http_status_has_no_body(404));
}
END_TEST

START_TEST(dates)
{
    char text[30];
    http_format_date(RFC_DATE, text);
    ck_assert_str_eq(text, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_format_date(0, text);
    ck_assert_str_eq(text, "Thu, 01 Jan 1970 00:00:00 GMT");
    time_t t = 0;
    ck_assert_int_eq(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, RFC_DATE);
    t = 0;
    ck_assert_int_eq(http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, RFC_DATE);
    t = 0;
    ck_assert_int_eq(http_parse_date("Sun Nov  6 08:49:37 1994", &t), 0);
    ck_assert_int_eq(t, RFC_DATE);
    ck_assert_int_eq(http_parse_date("Tue, 29 Feb 2028 23:59:59 GMT", &t), 0);
    ck_assert_int_eq(t, 1835481599);
    ck_assert_int_eq(http_parse_date("Sun, 06 Nov 1994 08:49:37 UTC", &t), -1);
    ck_assert_int_eq(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT junk", &t), -1);
    ck_assert_int_eq(http_parse_date("Sun, 06 Foo 1994 08:49:37 GMT", &t), -1);
    ck_assert_int_eq(http_parse_date("Xyz, 06 Nov 1994 08:49:37 GMT", &t), -1);
    ck_assert_int_eq(http_parse_date("Sun, 36 Nov 1994 08:49:37 GMT", &t), -1);
    ck_assert_int_eq(http_parse_date("Sun, 06 Nov 1994 25:49:37 GMT", &t), -1);
    ck_assert_int_eq(http_parse_date("", &t), -1);
    ck_assert_int_eq(http_parse_date("yesterday", &t), -1);
}
END_TEST

START_TEST(media_types)
{
    ck_assert_str_eq(http_media_type("/www/index.html"), "text/html; charset=utf-8");
    ck_assert_str_eq(http_media_type("/www/APP.JS"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(http_media_type("a.mjs"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(http_media_type("style.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(http_media_type("x.json"), "application/json");
    ck_assert_str_eq(http_media_type("logo.svg"), "image/svg+xml");
    ck_assert_str_eq(http_media_type("logo.png"), "image/png");
    ck_assert_str_eq(http_media_type("libsignal.wasm"), "application/wasm");
    ck_assert_str_eq(http_media_type("font.woff2"), "font/woff2");
    ck_assert_str_eq(http_media_type("font.woff"), "font/woff");
    ck_assert_str_eq(http_media_type("favicon.ico"), "image/vnd.microsoft.icon");
    ck_assert_str_eq(http_media_type("README"), "application/octet-stream");
    ck_assert_str_eq(http_media_type("a.tar.gz"), "application/octet-stream");
    ck_assert_str_eq(http_media_type("/www/v1.2/LICENSE"), "application/octet-stream");
    ck_assert_str_eq(http_media_type("trailing."), "application/octet-stream");
}
END_TEST

START_TEST(header_validation)
{
    ck_assert(http_valid_header("X-Thing", "a value\twith tab"));
    ck_assert(http_valid_header("Location", ""));
    ck_assert(!http_valid_header("X Thing", "v"));
    ck_assert(!http_valid_header("", "v"));
    ck_assert(!http_valid_header("X:", "v"));
    ck_assert(!http_valid_header("X", "a\r\nSet-Cookie: evil=1"));
    ck_assert(!http_valid_header("X", "a\nb"));
    ck_assert(!http_valid_header(NULL, "v"));
    ck_assert(!http_valid_header("X", NULL));
}
END_TEST

START_TEST(cors_origins)
{
    char *list[] = { "https://app.example", "http://localhost:8080" };
    ck_assert_str_eq(tern_http_cors_allow(list, 2, "https://app.example"), "https://app.example");
    ck_assert_str_eq(tern_http_cors_allow(list, 2, "https://APP.example"), "https://APP.example");
    ck_assert_str_eq(tern_http_cors_allow(list, 2, "http://localhost:8080"),
                     "http://localhost:8080");
    ck_assert_ptr_null(tern_http_cors_allow(list, 2, "http://localhost:8081"));
    ck_assert_ptr_null(tern_http_cors_allow(list, 2, "https://app.example.evil"));
    ck_assert_ptr_null(tern_http_cors_allow(list, 2, "null"));
    ck_assert_ptr_null(tern_http_cors_allow(list, 2, NULL));
    ck_assert_ptr_null(tern_http_cors_allow(NULL, 0, "https://app.example"));
    char *any[] = { "*" };
    ck_assert_str_eq(tern_http_cors_allow(any, 1, "https://whoever.example"), "*");
    ck_assert_ptr_null(tern_http_cors_allow(any, 1, NULL));
}
END_TEST

/* ---- static files ---- */

static char root[PATH_MAX], outside[PATH_MAX + 32];

static void make_file(const char *rel, const char *text)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void static_setup(void)
{
    char tmpl[] = "/tmp/tern-test-http-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(outside, sizeof outside, "%s", tmpl);
    char www[PATH_MAX];
    snprintf(www, sizeof www, "%s/www", tmpl);
    ck_assert_int_eq(mkdir(www, 0700), 0);
    ck_assert_ptr_nonnull(realpath(www, root));
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/secret.txt", outside);
    FILE *f = fopen(path, "w");
    fputs("secret", f);
    fclose(f);
    make_file("index.html", "<h1>hi</h1>");
    make_file("app.js", "1");
    make_file(".htpasswd", "x");
    snprintf(path, sizeof path, "%s/sub", root);
    mkdir(path, 0700);
    make_file("sub/index.html", "sub");
    snprintf(path, sizeof path, "%s/empty", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.well-known", root);
    mkdir(path, 0700);
    make_file(".well-known/security.txt", "x");
    snprintf(path, sizeof path, "%s/link-out", root);
    ck_assert_int_eq(symlink("../secret.txt", path), 0);
    snprintf(path, sizeof path, "%s/dir-out", root);
    ck_assert_int_eq(symlink("..", path), 0);
    snprintf(path, sizeof path, "%s/link-in", root);
    ck_assert_int_eq(symlink("app.js", path), 0);
    snprintf(path, sizeof path, "%s/empty/index.html", root);
    ck_assert_int_eq(symlink("../../secret.txt", path), 0);
}

static void static_teardown(void)
{
    char cmd[sizeof outside + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", outside);
    ck_assert_int_eq(system(cmd), 0);
}

/* Resolves `path` and compares with root + expected (NULL: nothing to serve). */
static void resolves(const char *path, int rc, const char *expected)
{
    char *file = (char *)"unset";
    ck_assert_int_eq(http_static_resolve(root, path, &file), rc);
    if (!expected) {
        ck_assert_ptr_null(file);
        return;
    }
    char want[PATH_MAX * 2];
    snprintf(want, sizeof want, "%s%s", root, expected);
    ck_assert_str_eq(file, want);
    free(file);
}

START_TEST(static_resolution)
{
    resolves("/", 0, "/index.html");
    resolves("/index.html", 0, "/index.html");
    resolves("/app.js", 0, "/app.js");
    resolves("//app.js", 0, "/app.js");
    resolves("/sub", 1, NULL);      /* redirect to /sub/ */
    resolves("/sub/", 0, "/sub/index.html");
    resolves("/missing.html", -1, NULL);
    resolves("/empty/", -1, NULL);  /* its index.html points outside */
    resolves("/.htpasswd", -1, NULL);
    resolves("/.well-known/security.txt", 0, "/.well-known/security.txt");
    resolves("/link-in", 0, "/app.js");
    /* Every way out is closed. */
    resolves("/link-out", -1, NULL);
    resolves("/dir-out/secret.txt", -1, NULL);
    resolves("/dir-out/", -1, NULL);
    resolves("/../secret.txt", -1, NULL);
    resolves("/sub/../../secret.txt", -1, NULL);
    resolves("/sub/./index.html", -1, NULL);
    resolves("relative", -1, NULL);
    resolves("/app.js/", -1, NULL);
}
END_TEST

/* ---- host-meta ---- */

START_TEST(host_meta_documents)
{
    tern_buf b;
    buf_init(&b);
    http_render_host_meta_xrd(&b, NULL, 0);
    ck_assert_str_eq(buf_cstr(&b), "<?xml version='1.0' encoding='utf-8'?>\n"
                                   "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'/>\n");
    buf_reset(&b);
    http_render_host_meta_json(&b, NULL, 0);
    ck_assert_str_eq(buf_cstr(&b), "{\"links\":[]}\n");

    const http_link links[] = {
        { "urn:xmpp:alt-connections:xbosh", "https://example.org:5281/http-bind?a=1&b=2" },
        { "urn:xmpp:alt-connections:websocket", "wss://example.org/xmpp-\"websocket\"" },
    };
    buf_reset(&b);
    http_render_host_meta_xrd(&b, links, 2);
    ck_assert_str_eq(buf_cstr(&b),
                     "<?xml version='1.0' encoding='utf-8'?>\n"
                     "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>"
                     "<Link rel='urn:xmpp:alt-connections:xbosh' "
                     "href='https://example.org:5281/http-bind?a=1&amp;b=2'/>"
                     "<Link rel='urn:xmpp:alt-connections:websocket' "
                     "href='wss://example.org/xmpp-&quot;websocket&quot;'/></XRD>\n");
    buf_reset(&b);
    http_render_host_meta_json(&b, links, 2);
    ck_assert_str_eq(buf_cstr(&b),
                     "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:xbosh\","
                     "\"href\":\"https://example.org:5281/http-bind?a=1&b=2\"},"
                     "{\"rel\":\"urn:xmpp:alt-connections:websocket\","
                     "\"href\":\"wss://example.org/xmpp-\\\"websocket\\\"\"}]}\n");
    buf_reset(&b);
    http_json_string(&b, "a\\b\n\x01\xc3\xa9");
    ck_assert_str_eq(buf_cstr(&b), "\"a\\\\b\\n\\u0001\xc3\xa9\"");
    buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *parse = tcase_create("parser");
    tcase_set_timeout(parse, 60);
    tcase_add_test(parse, simple_get);
    tcase_add_test(parse, post_with_body);
    tcase_add_test(parse, connection_persistence);
    tcase_add_test(parse, targets_and_values);
    tcase_add_test(parse, pipelined_requests);
    tcase_add_test(parse, expect_continue);
    tcase_add_test(parse, limits);
    tcase_add_test(parse, bad_requests);
    tcase_add_test(parse, other_error_statuses);
    tcase_add_test(parse, error_reported_once);
    suite_add_tcase(s, parse);

    TCase *resp = tcase_create("responses");
    tcase_add_test(resp, response_heads);
    tcase_add_test(resp, dates);
    tcase_add_test(resp, media_types);
    tcase_add_test(resp, header_validation);
    tcase_add_test(resp, cors_origins);
    tcase_add_test(resp, host_meta_documents);
    suite_add_tcase(s, resp);

    TCase *files = tcase_create("static");
    tcase_add_checked_fixture(files, static_setup, static_teardown);
    tcase_add_test(files, static_resolution);
    suite_add_tcase(s, files);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
