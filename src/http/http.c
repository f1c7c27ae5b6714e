/* http.c — HTTP/1.1 messages: the request parser, response heads, dates, media types, CORS
 * origins, static file resolution and the host-meta documents (see http.h).
 *
 * The parser collects the head (request line and header fields) in one buffer until the empty
 * line, bounded by HTTP_MAX_HEAD, and only then parses it, in place. Collecting first and
 * parsing once makes the result independent of how the bytes were split across reads, which
 * is what the unit test checks by feeding every request split at every byte. The body is read
 * by Content-Length only: a chunked request is answered 411 (RFC 9112 §6.3 lets a server
 * insist on a length), which every client we serve (browsers, BOSH libraries) can provide. */
#include "http/http.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/util.h"

/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line. */
#define MAX_LEADING_BLANKS 16

typedef enum parser_state { PS_HEAD, PS_BODY, PS_DONE, PS_ERROR } parser_state;

struct http_parser {
    size_t max_body;
    parser_state state;
    tern_buf head;          /* the head so far */
    size_t line_start;      /* where the current line starts in head */
    unsigned blanks;        /* leading CR/LF bytes skipped */
    http_message *msg;      /* while the body is read, and when done */
    size_t body_need;
    int status;             /* on error */
    const char *reason;
    bool continue_pending;
};

/* ---- characters (RFC 9110 §5.6.2) ---- */

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* A field value may hold visible characters, SP, HTAB and obs-text (RFC 9110 §5.5); CR, LF
 * and NUL never, and we refuse the other controls too. */
static bool is_field_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ---- messages ---- */

void http_message_free(http_message *m)
{
    if (!m)
        return;
    free(m->block_);
    free(m->path_);
    free(m->authority_);
    free(m->body);
    free(m);
}

const char *http_message_header(const http_message *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (strcasecmp(m->headers[i].name, name) == 0)
            return m->headers[i].value;
    return NULL;
}

/* Whether the comma-separated list `value` holds `token` (case-insensitive). */
static bool list_has(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
            return true;
    }
    return false;
}

bool http_message_has_token(const http_message *m, const char *name, const char *token)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (strcasecmp(m->headers[i].name, name) == 0 && list_has(m->headers[i].value, token))
            return true;
    return false;
}

/* ---- the parser ---- */

http_parser *http_parser_new(size_t max_body)
{
    http_parser *p = xcalloc(1, sizeof *p);
    p->max_body = max_body;
    buf_init(&p->head);
    return p;
}

void http_parser_free(http_parser *p)
{
    if (!p)
        return;
    buf_free(&p->head);
    http_message_free(p->msg);
    free(p);
}

static http_parse_result fail(http_parser *p, int status, const char *reason)
{
    p->state = PS_ERROR;
    p->status = status;
    p->reason = reason;
    http_message_free(p->msg);
    p->msg = NULL;
    return HTTP_PARSE_ERROR;
}

int http_parser_status(const http_parser *p) { return p->status; }

const char *http_parser_reason(const http_parser *p) { return p->reason ? p->reason : ""; }

bool http_parser_take_continue(http_parser *p)
{
    bool pending = p->continue_pending;
    p->continue_pending = false;
    return pending;
}

bool http_parser_started(const http_parser *p)
{
    return p->head.len > 0 || p->state == PS_BODY || p->blanks > 0;
}

http_message *http_parser_take(http_parser *p)
{
    if (p->state != PS_DONE)
        return NULL;
    http_message *m = p->msg;
    p->msg = NULL;
    p->state = PS_HEAD;
    p->line_start = 0;
    p->blanks = 0;
    p->continue_pending = false;
    buf_reset(&p->head);
    return m;
}

/* Percent-decodes a path (RFC 3986 §2.1) into a new string; NULL when an escape is malformed
 * or decodes to NUL (which no file name or route can hold). */
static char *decode_path(const char *s, size_t len)
{
    char *out = xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (i + 2 >= len) {
            free(out);
            return NULL;
        }
        int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(h * 16 + l);
        i += 2;
    }
    *o = '\0';
    return out;
}

/* Dot segments are how a path climbs out of a folder. Clients remove them before sending
 * (RFC 3986 §5.2.4); one that arrives anyway, raw or percent-encoded, is refused rather than
 * resolved, so no later step ever sees one. */
static bool has_dot_segment(const char *path)
{
    for (const char *seg = path; seg;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return true;
        seg = end ? end + 1 : NULL;
    }
    return false;
}

/* The Host field value: uri-host [":" port] (RFC 9110 §7.2), possibly empty. */
static bool valid_authority(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(isalnum(c) || strchr("-._~!$&'()*+,;=%:[]", c)))
            return false;
    }
    return true;
}

/* RFC 9112 §3.2: origin-form, absolute-form, or "*" for OPTIONS. Returns 0 or a status. */
static int parse_target(http_message *m, char *target)
{
    for (const char *c = target; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '#')
            return 400;
    char *path = target;
    if (strcmp(target, "*") == 0) {
        if (strcmp(m->method, "OPTIONS") != 0)
            return 400;
        m->path = m->path_ = xstrdup("*");
        m->query = "";
        return 0;
    }
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        /* Absolute form (RFC 9112 §3.2.2): its authority replaces the Host field. */
        char *auth = strstr(target, "//") + 2;
        char *end = auth + strcspn(auth, "/?");
        m->authority = m->authority_ = xstrndup(auth, (size_t)(end - auth));
        if (!*m->authority || !valid_authority(m->authority))
            return 400;
        path = end;
    } else if (target[0] != '/') {
        return strcmp(m->method, "CONNECT") == 0 ? 501 : 400;
    }
    char *q = strchr(path, '?');
    size_t path_len = q ? (size_t)(q - path) : strlen(path);
    m->query = q ? q + 1 : "";
    char *decoded = path_len ? decode_path(path, path_len) : xstrdup("/");
    if (!decoded)
        return 400;
    if (has_dot_segment(decoded)) {
        free(decoded);
        return 400;
    }
    m->path = m->path_ = decoded;
    return 0;
}

/* The request line: method SP request-target SP HTTP-version (RFC 9112 §3). */
static int parse_request_line(http_message *m, char *line)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1)
        return 400;
    char *sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || strchr(sp2 + 1, ' '))
        return 400;
    *sp1 = *sp2 = '\0';
    char *version = sp2 + 1;
    m->method = line;
    m->target = sp1 + 1;
    if (!is_token(m->method) || !*m->target)
        return 400;
    /* HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3). */
    if (strlen(version) != 8 || strncmp(version, "HTTP/", 5) != 0 ||
        !isdigit((unsigned char)version[5]) || version[6] != '.' ||
        !isdigit((unsigned char)version[7]))
        return 400;
    if (version[5] != '1')
        return 505;
    /* A later 1.x minor is answered as 1.1 (RFC 9110 §2.5). */
    m->minor = version[7] == '0' ? 0 : 1;
    return parse_target(m, (char *)m->target);
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6). 0, 413 when it overflows, or 400. */
static int parse_length(const char *s, unsigned long long *out)
{
    if (!*s)
        return 400;
    unsigned long long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return 400;
        if (v > (ULLONG_MAX - 9) / 10)
            return 413;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return 0;
}

/* The semantics of the fields the server itself acts on. 0 or a status. */
static int check_fields(http_parser *p, http_message *m, unsigned long long *length)
{
    size_t hosts = 0;
    bool have_length = false;
    *length = 0;
    const char *host = NULL;
    for (size_t i = 0; i < m->n_headers; i++) {
        const http_header *h = &m->headers[i];
        if (strcasecmp(h->name, "Host") == 0) {
            hosts++;
            host = h->value;
        } else if (strcasecmp(h->name, "Content-Length") == 0) {
            unsigned long long v;
            int rc = parse_length(h->value, &v);
            if (rc)
                return rc;
            /* Repeated lengths must agree, or the body cannot be framed (RFC 9112 §6.3). */
            if (have_length && v != *length)
                return 400;
            have_length = true;
            *length = v;
        }
    }
    /* RFC 9112 §3.2: an HTTP/1.1 request needs exactly one Host; no request may have two. */
    if (hosts > 1 || (hosts == 0 && m->minor >= 1) || (host && !valid_authority(host)))
        return 400;
    if (!m->authority && host)
        m->authority = host;
    const char *te = http_message_header(m, "Transfer-Encoding");
    if (te) {
        /* RFC 9112 §6.1: when chunked is not the final coding the length is unknowable (400);
         * chunked alone we do not read, and ask for a length instead (411); any other coding
         * we do not know (501). */
        size_t n = strlen(te);
        while (n > 0 && (te[n - 1] == ' ' || te[n - 1] == '\t'))
            n--;
        bool chunked_last = n >= 7 && strncasecmp(te + n - 7, "chunked", 7) == 0 &&
                            (n == 7 || te[n - 8] == ',' || te[n - 8] == ' ' || te[n - 8] == '\t');
        if (!chunked_last)
            return 400;
        return strcasecmp(te, "chunked") == 0 ? 411 : 501;
    }
    const char *expect = http_message_header(m, "Expect");
    if (expect && m->minor >= 1) { /* HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1) */
        if (strcasecmp(expect, "100-continue") != 0)
            return 417;
        m->expect_continue = true;
    }
    if (*length > p->max_body)
        return 413;
    bool close = http_message_has_token(m, "Connection", "close");
    m->keep_alive = m->minor >= 1 ? !close
                                  : !close && http_message_has_token(m, "Connection", "keep-alive");
    return 0;
}

/* What an error status means, for the log line of a refused request. */
static const char *status_reason(int status)
{
    switch (status) {
    case 411: return "chunked request body (send Content-Length)";
    case 413: return "body larger than max_body_size";
    case 414: return "request line too long";
    case 417: return "unsupported expectation";
    case 431: return "request head too large";
    case 501: return "not implemented (transfer coding or CONNECT)";
    case 505: return "HTTP version not supported";
    default: return "malformed request";
    }
}

/* The head is complete (p->head, ending with the empty line): parse it in place. */
static http_parse_result parse_head(http_parser *p)
{
    http_message *m = xcalloc(1, sizeof *m);
    p->msg = m;
    m->query = "";
    size_t len = p->head.len;
    if (memchr(p->head.data, '\0', len))
        return fail(p, 400, "NUL byte in the request head");
    buf_append(&p->head, "", 1); /* NUL-terminate; the buffer moves to the message */
    m->block_ = p->head.data;
    buf_init(&p->head);

    char *line = m->block_;
    bool first = true;
    int status = 0;
    while (*line && !status) {
        char *nl = strchr(line, '\n');
        char *next = nl + 1; /* the head ends with a newline, so there always is one */
        *nl = '\0';
        if (nl > line && nl[-1] == '\r')
            nl[-1] = '\0';
        if (strchr(line, '\r')) {
            status = 400; /* a bare CR (RFC 9112 §2.2) */
        } else if (first) {
            status = parse_request_line(m, line);
            first = false;
        } else if (*line == '\0') {
            break; /* the empty line */
        } else if (*line == ' ' || *line == '\t') {
            status = 400; /* obs-fold is refused (RFC 9112 §5.2) */
        } else {
            char *colon = strchr(line, ':');
            if (!colon) {
                status = 400;
                break;
            }
            *colon = '\0';
            /* No white space between name and colon (RFC 9112 §5.1). */
            if (!is_token(line)) {
                status = 400;
                break;
            }
            char *value = colon + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            char *end = value + strlen(value);
            while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = '\0';
            if (!is_field_value(value)) {
                status = 400;
                break;
            }
            if (m->n_headers == HTTP_MAX_HEADERS) {
                status = 431;
                break;
            }
            m->headers[m->n_headers++] = (http_header){ line, value };
        }
        line = next;
    }
    if (status)
        return fail(p, status, status_reason(status));
    unsigned long long length;
    status = check_fields(p, m, &length);
    if (status)
        return fail(p, status, status_reason(status));
    if (length == 0) {
        m->body = xstrdup("");
        p->state = PS_DONE;
        return HTTP_PARSE_DONE;
    }
    m->body = xmalloc((size_t)length + 1);
    m->body[length] = '\0';
    p->body_need = (size_t)length;
    p->state = PS_BODY;
    p->continue_pending = m->expect_continue;
    return HTTP_PARSE_MORE;
}

/* Collects head bytes up to the empty line that ends the head. */
static http_parse_result feed_head(http_parser *p, const char *data, size_t len, size_t *i)
{
    while (*i < len) {
        if (p->head.len == 0) {
            if (data[*i] == '\r' || data[*i] == '\n') {
                if (++p->blanks > MAX_LEADING_BLANKS)
                    return fail(p, 400, "empty lines instead of a request");
                (*i)++;
                continue;
            }
        }
        const char *nl = memchr(data + *i, '\n', len - *i);
        size_t take = nl ? (size_t)(nl - (data + *i)) + 1 : len - *i;
        buf_append(&p->head, data + *i, take);
        *i += take;
        if (p->line_start == 0) {
            /* Still on the request line: a line not yet ended may still lose a final CR. */
            size_t line_len = p->head.len;
            if (nl)
                line_len -= p->head.len >= 2 && p->head.data[p->head.len - 2] == '\r' ? 2 : 1;
            else if (line_len > 0 && p->head.data[line_len - 1] == '\r')
                line_len--;
            if (line_len > HTTP_MAX_REQUEST_LINE)
                return fail(p, 414, status_reason(414));
        }
        if (p->head.len > HTTP_MAX_HEAD)
            return fail(p, 431, status_reason(431));
        if (!nl)
            return HTTP_PARSE_MORE;
        size_t line_len = p->head.len - 1 - p->line_start;
        if (line_len > 0 && p->head.data[p->head.len - 2] == '\r')
            line_len--;
        if (line_len == 0 && p->line_start > 0)
            return parse_head(p);
        p->line_start = p->head.len;
    }
    return HTTP_PARSE_MORE;
}

http_parse_result http_parser_feed(http_parser *p, const char *data, size_t len, size_t *used)
{
    size_t i = 0;
    http_parse_result rc = HTTP_PARSE_MORE;
    if (p->state == PS_HEAD)
        rc = feed_head(p, data, len, &i);
    if (rc == HTTP_PARSE_MORE && p->state == PS_BODY) {
        http_message *m = p->msg;
        size_t n = len - i < p->body_need - m->body_len ? len - i : p->body_need - m->body_len;
        memcpy(m->body + m->body_len, data + i, n);
        m->body_len += n;
        i += n;
        if (m->body_len == p->body_need) {
            p->state = PS_DONE;
            p->continue_pending = false; /* the body came anyway */
        }
    }
    *used = i;
    if (p->state == PS_DONE)
        return HTTP_PARSE_DONE;
    if (p->state == PS_ERROR)
        return HTTP_PARSE_ERROR;
    return HTTP_PARSE_MORE;
}

/* ---- responses ---- */

const char *http_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 200 ? "Informational" : status < 300 ? "Success"
                  : status < 400 ? "Redirection" : status < 500 ? "Client Error" : "Server Error";
    }
}

bool http_status_has_no_body(int status)
{
    return status < 200 || status == 204 || status == 304;
}

void http_write_head(tern_buf *out, int status, int minor, bool close, time_t now,
                     const char *content_type, size_t content_length, const char *extra)
{
    char date[30];
    http_format_date(now, date);
    /* RFC 9110 §6.2: we answer with the highest version we conform to, 1.1. */
    buf_printf(out, "HTTP/1.1 %03d %s\r\nDate: %s\r\nServer: tern\r\n", status,
               http_reason_phrase(status), date);
    if (content_type)
        buf_printf(out, "Content-Type: %s\r\n", content_type);
    /* RFC 9110 §8.6: no Content-Length in 1xx and 204; a 304 has no body of its own. */
    if (status >= 200 && status != 204 && status != 304)
        buf_printf(out, "Content-Length: %zu\r\n", content_length);
    if (close)
        buf_append_str(out, "Connection: close\r\n");
    else if (minor == 0 && status >= 200)
        buf_append_str(out, "Connection: keep-alive\r\n");
    if (extra)
        buf_append_str(out, extra);
    buf_append_str(out, "\r\n");
}

void http_error_body(tern_buf *out, int status)
{
    buf_printf(out, "%d %s\n", status, http_reason_phrase(status));
}

/* ---- dates (RFC 9110 §5.6.7) ---- */

static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const long_days[7] = { "Sunday", "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Names are written from our own tables: strftime's would follow the locale. */
void http_format_date(time_t t, char out[30])
{
    struct tm tm;
    char text[80]; /* room for any int the compiler imagines; real dates take 29 */
    gmtime_r(&t, &tm);
    snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(out, 30, "%.29s", text);
}

static int month_index(const char *name)
{
    for (int i = 0; i < 12; i++)
        if (strcmp(months[i], name) == 0)
            return i;
    return -1;
}

static bool day_name(const char *name, bool long_form)
{
    for (int i = 0; i < 7; i++)
        if (strcmp(long_form ? long_days[i] : days[i], name) == 0)
            return true;
    return false;
}

int http_parse_date(const char *text, time_t *out)
{
    char wday[10], mon[4];
    int mday, year, hour, min, sec, end = -1;
    struct tm tm = { 0 };
    if (sscanf(text, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wday, &mday, mon,
               &year, &hour, &min, &sec, &end) == 7 && end > 0 && text[end] == '\0' &&
        day_name(wday, false)) {
        /* IMF-fixdate */
    } else if (end = -1, sscanf(text, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", wday,
                                &mday, mon, &year, &hour, &min, &sec, &end) == 7 &&
               end > 0 && text[end] == '\0' && day_name(wday, true)) {
        /* RFC 850: a two-digit year more than 50 years ahead is in the past century. */
        struct tm now;
        time_t t = time(NULL);
        gmtime_r(&t, &now);
        int century = (now.tm_year + 1900) / 100 * 100;
        year += century;
        if (year > now.tm_year + 1900 + 50)
            year -= 100;
    } else if (end = -1, sscanf(text, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wday, mon,
                                &mday, &hour, &min, &sec, &year, &end) == 7 &&
               end > 0 && text[end] == '\0' && day_name(wday, false)) {
        /* asctime */
    } else {
        return -1;
    }
    int m = month_index(mon);
    if (m < 0 || mday < 1 || mday > 31 || hour > 23 || min > 59 || sec > 60 || year < 1900)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = m;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return 0;
}

/* ---- media types ---- */

/* What a browser needs to use each kind of file a web client ships (module scripts and wasm
 * are refused by browsers under any other type). */
static const struct {
    const char *ext;
    const char *type;
} media_types[] = {
    { "html", "text/html; charset=utf-8" },
    { "htm", "text/html; charset=utf-8" },
    { "js", "text/javascript; charset=utf-8" },  /* RFC 9239 */
    { "mjs", "text/javascript; charset=utf-8" },
    { "css", "text/css; charset=utf-8" },
    { "json", "application/json" },
    { "map", "application/json" },
    { "webmanifest", "application/manifest+json" },
    { "xml", "application/xml" },
    { "txt", "text/plain; charset=utf-8" },
    { "svg", "image/svg+xml" },
    { "png", "image/png" },
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "gif", "image/gif" },
    { "webp", "image/webp" },
    { "avif", "image/avif" },
    { "ico", "image/vnd.microsoft.icon" },
    { "wasm", "application/wasm" },
    { "woff", "font/woff" },
    { "woff2", "font/woff2" },
    { "ttf", "font/ttf" },
    { "otf", "font/otf" },
    { "mp3", "audio/mpeg" },
    { "ogg", "audio/ogg" },
    { "opus", "audio/ogg" },
    { "mp4", "video/mp4" },
    { "webm", "video/webm" },
    { "pdf", "application/pdf" },
};

const char *http_media_type(const char *file_name)
{
    const char *slash = strrchr(file_name, '/');
    const char *dot = strrchr(slash ? slash : file_name, '.');
    if (dot)
        for (size_t i = 0; i < ARRAY_LEN(media_types); i++)
            if (strcasecmp(dot + 1, media_types[i].ext) == 0)
                return media_types[i].type;
    return "application/octet-stream";
}

bool http_valid_header(const char *name, const char *value)
{
    return name && value && is_token(name) && is_field_value(value);
}

/* ---- CORS ---- */

const char *tern_http_cors_allow(char *const *origins, size_t n_origins, const char *origin)
{
    if (!origin)
        return NULL;
    for (size_t i = 0; i < n_origins; i++) {
        if (strcmp(origins[i], "*") == 0)
            return "*";
        /* Origins are compared as serialized (RFC 6454 §6.2); scheme and host are
         * case-insensitive. */
        if (strcasecmp(origins[i], origin) == 0)
            return origin;
    }
    return NULL;
}

/* ---- static files ---- */

static bool inside(const char *root, const char *real)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return real[0] == '/';
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* Hidden files (".git", ".htpasswd", editor backups like ".index.html.swp") stay hidden. */
static bool has_hidden_segment(const char *path)
{
    for (const char *seg = path; seg;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n > 0 && seg[0] == '.' && !(n == 11 && strncmp(seg, ".well-known", 11) == 0))
            return true;
        seg = end ? end + 1 : NULL;
    }
    return false;
}

/* realpath() of `path`, if it is a regular file or folder inside root. */
static char *resolve_inside(const char *root, const char *path, struct stat *st)
{
    char *real = realpath(path, NULL);
    if (!real)
        return NULL;
    if (!inside(root, real) || stat(real, st) != 0 ||
        !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
        free(real);
        return NULL;
    }
    return real;
}

int http_static_resolve(const char *root, const char *path, char **file)
{
    *file = NULL;
    if (path[0] != '/' || has_dot_segment(path) || has_hidden_segment(path))
        return -1;
    char *joined = xasprintf("%s%s", root, path);
    struct stat st;
    char *real = resolve_inside(root, joined, &st);
    free(joined);
    if (!real)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        if (path[strlen(path) - 1] != '/') {
            free(real);
            return 1; /* relative links in its index need the trailing slash */
        }
        char *index = xasprintf("%s/index.html", real);
        free(real);
        real = resolve_inside(root, index, &st);
        free(index);
        if (!real)
            return -1;
        if (!S_ISREG(st.st_mode)) {
            free(real);
            return -1;
        }
    }
    *file = real;
    return 0;
}

/* ---- XEP-0156 host-meta ---- */

void http_render_host_meta_xrd(tern_buf *out, const http_link *links, size_t n)
{
    tern_xml *xrd = xml_new("XRD", HTTP_NS_XRD);
    for (size_t i = 0; i < n; i++) {
        tern_xml *link = xml_add_child(xrd, "Link", NULL);
        xml_set_attr(link, "rel", links[i].rel);
        xml_set_attr(link, "href", links[i].href);
    }
    buf_append_str(out, "<?xml version='1.0' encoding='utf-8'?>\n");
    xml_serialize(xrd, NULL, out);
    buf_append_str(out, "\n");
    xml_unref(xrd);
}

void http_json_string(tern_buf *out, const char *s)
{
    buf_append_str(out, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': buf_append_str(out, "\\\""); break;
        case '\\': buf_append_str(out, "\\\\"); break;
        case '\n': buf_append_str(out, "\\n"); break;
        case '\r': buf_append_str(out, "\\r"); break;
        case '\t': buf_append_str(out, "\\t"); break;
        default:
            if (c < 0x20)
                buf_printf(out, "\\u%04x", c);
            else
                buf_append(out, s, 1);
        }
    }
    buf_append_str(out, "\"");
}

void http_render_host_meta_json(tern_buf *out, const http_link *links, size_t n)
{
    buf_append_str(out, "{\"links\":[");
    for (size_t i = 0; i < n; i++) {
        buf_append_str(out, i ? ",{\"rel\":" : "{\"rel\":");
        http_json_string(out, links[i].rel);
        buf_append_str(out, ",\"href\":");
        http_json_string(out, links[i].href);
        buf_append_str(out, "}");
    }
    buf_append_str(out, "]}\n");
}
