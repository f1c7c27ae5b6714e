/* test_websocket.c — unit tests for the WebSocket opening handshake (src/http/websocket_handshake.c):
 * the Sec-WebSocket-Accept value (RFC 6455 §1.3's example and §4.2.2), which keys are well
 * formed, and every answer ws_check_handshake() gives for requests parsed by the real HTTP
 * parser: accepted, 400 for each missing or broken part, 426 for another version, 403 for a
 * foreign Origin, and the subprotocol rule of RFC 7395 §3.1. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "rfc6455.h"

/* RFC 6455 §1.3 */
#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static char *const allowed[] = { "https://app.example", "http://localhost:8080" };

/* A parsed request: the handshake with `fields` replacing the default ones that share a name.
 * Every default field can be dropped by naming it with an empty value. */
static http_message *parse(const char *request_line, const char *fields)
{
    static const char *const defaults[] = {
        "Host: chat.example:5281", "Upgrade: websocket", "Connection: Upgrade",
        ("Sec-WebSocket-Key: " SAMPLE_KEY), "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: xmpp",
    };
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "%s\r\n", request_line);
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        size_t name_len = strcspn(defaults[i], ":");
        bool replaced = false;
        for (const char *f = fields; f && *f; f += strcspn(f, "\n") + (f[strcspn(f, "\n")] != 0))
            if (strncasecmp(f, defaults[i], name_len + 1) == 0)
                replaced = true;
        if (!replaced)
            n += (size_t)snprintf(text + n, sizeof text - n, "%s\r\n", defaults[i]);
    }
    /* The replacements, skipping the empty ones (which only removed a default). */
    for (const char *f = fields; f && *f;) {
        size_t len = strcspn(f, "\n");
        const char *colon = memchr(f, ':', len);
        if (colon && colon + 1 < f + len)
            n += (size_t)snprintf(text + n, sizeof text - n, "%.*s\r\n", (int)len, f);
        f += len + (f[len] != 0);
    }
    n += (size_t)snprintf(text + n, sizeof text - n, "\r\n");
    http_parser *p = http_parser_new(1024);
    size_t used = 0;
    ck_assert_int_eq(http_parser_feed(p, text, n, &used), HTTP_PARSE_DONE);
    http_message *m = http_parser_take(p);
    http_parser_free(p);
    return m;
}

static const char *message_header(const void *m, const char *name)
{
    return http_message_header(m, name);
}

static bool message_has_token(const void *m, const char *name, const char *token)
{
    return http_message_has_token(m, name, token);
}

/* The request as the module sees it through the HTTP server's accessors. */
static ws_request view(const http_message *m)
{
    return (ws_request){ m->method, m->minor, m->authority, m, message_header,
                         message_has_token };
}

static int check_view(const http_message *m, char *const *origins, size_t n, const char **why)
{
    ws_request r = view(m);
    return ws_check_handshake(&r, "xmpp", true, origins, n, why);
}

static int check(const char *request_line, const char *fields, bool tls, const char **why)
{
    http_message *m = parse(request_line, fields);
    ws_request r = view(m);
    int status = ws_check_handshake(&r, "xmpp", tls, allowed, 2, why);
    http_message_free(m);
    return status;
}

#define GET "GET /xmpp-websocket HTTP/1.1"

START_TEST(test_accept_sample)
{
    char out[WS_ACCEPT_LEN + 1];
    ws_accept_value(SAMPLE_KEY, out);
    ck_assert_str_eq(out, SAMPLE_ACCEPT);
    ck_assert_uint_eq(strlen(out), WS_ACCEPT_LEN);
}
END_TEST

/* A second vector, computed with Python hashlib: bytes 1..16 as the key. */
START_TEST(test_accept_other_key)
{
    char out[WS_ACCEPT_LEN + 1];
    ws_accept_value("AQIDBAUGBwgJCgsMDQ4PEA==", out);
    ck_assert_str_eq(out, "C/0nmHhBztSRGR1CwL6Tf4ZjwpY=");
}
END_TEST

START_TEST(test_key_valid)
{
    ck_assert(ws_key_valid(SAMPLE_KEY));
    ck_assert(ws_key_valid("AQIDBAUGBwgJCgsMDQ4PEA=="));
    ck_assert(!ws_key_valid(NULL));
    ck_assert(!ws_key_valid(""));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ"));     /* no padding */
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==="));  /* too long */
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZ==="));   /* 15 bytes and junk */
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25j!Q=="));   /* not base64 */
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZR=="));   /* non-zero padding bits */
    ck_assert(!ws_key_valid("aGVsbG8gd29ybGQgaGVsbG8="));   /* 17 bytes' worth */
}
END_TEST

START_TEST(test_accepted)
{
    const char *why = "unset";
    ck_assert_int_eq(check(GET, NULL, true, &why), 0);
    ck_assert_ptr_null(why);
    /* Tokens are case-insensitive and may come in lists (RFC 9110 §5.6.1). */
    ck_assert_int_eq(check(GET, "Upgrade: WebSocket\nConnection: keep-alive, Upgrade\n"
                                "Sec-WebSocket-Protocol: chat, xmpp", false, &why), 0);
    /* The subprotocol may come in a second field of the same name. */
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Protocol: chat\nSec-WebSocket-Protocol: xmpp",
                           true, &why), 0);
}
END_TEST

START_TEST(test_bad_requests)
{
    const char *why;
    ck_assert_int_eq(check("POST /xmpp-websocket HTTP/1.1", "Content-Length: 0", true, &why),
                     400);
    ck_assert_int_eq(check("HEAD /xmpp-websocket HTTP/1.1", NULL, true, &why), 400);
    ck_assert_int_eq(check("GET /xmpp-websocket HTTP/1.0", NULL, true, &why), 400);
    ck_assert_int_eq(check(GET, "Upgrade:", true, &why), 400);
    ck_assert_str_eq(why, "no 'Upgrade: websocket'");
    ck_assert_int_eq(check(GET, "Upgrade: h2c", true, &why), 400);
    ck_assert_int_eq(check(GET, "Connection:", true, &why), 400);
    ck_assert_str_eq(why, "no 'Connection: Upgrade'");
    ck_assert_int_eq(check(GET, "Connection: keep-alive", true, &why), 400);
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Key:", true, &why), 400);
    ck_assert_str_eq(why, "no valid Sec-WebSocket-Key");
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Key: short", true, &why), 400);
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Version:", true, &why), 400);
    ck_assert_str_eq(why, "no Sec-WebSocket-Version");
}
END_TEST

START_TEST(test_version)
{
    const char *why;
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Version: 8", true, &why), 426);
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Version: 14", true, &why), 426);
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Version: 13, 8", true, &why), 426);
}
END_TEST

/* RFC 7395 §3.1: without "xmpp" among the offered subprotocols there is no XMPP stream. */
START_TEST(test_subprotocol)
{
    const char *why;
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Protocol:", true, &why), 400);
    ck_assert_str_eq(why, "the client did not offer the subprotocol");
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Protocol: chat", true, &why), 400);
    ck_assert_int_eq(check(GET, "Sec-WebSocket-Protocol: xmpp2, xmp", true, &why), 400);
}
END_TEST

START_TEST(test_origin)
{
    const char *why;
    /* Allowed by the list (scheme and host case-insensitive). */
    ck_assert_int_eq(check(GET, "Origin: https://app.example", true, &why), 0);
    ck_assert_int_eq(check(GET, "Origin: HTTPS://APP.EXAMPLE", true, &why), 0);
    ck_assert_int_eq(check(GET, "Origin: http://localhost:8080", false, &why), 0);
    /* The server's own origin: scheme of the connection and the Host field. */
    ck_assert_int_eq(check(GET, "Origin: https://chat.example:5281", true, &why), 0);
    ck_assert_int_eq(check(GET, "Origin: http://chat.example:5281", false, &why), 0);
    /* Others, including the right host over the other scheme or another port. */
    ck_assert_int_eq(check(GET, "Origin: https://evil.example", true, &why), 403);
    ck_assert_str_eq(why, "the Origin is not allowed ([http] cors_origins)");
    ck_assert_int_eq(check(GET, "Origin: http://chat.example:5281", true, &why), 403);
    ck_assert_int_eq(check(GET, "Origin: https://chat.example", true, &why), 403);
    ck_assert_int_eq(check(GET, "Origin: null", true, &why), 403);
    /* A refused Origin wins over a missing subprotocol: the page gets no further either way,
     * and the log says why. */
    ck_assert_int_eq(check(GET, "Origin: https://evil.example\nSec-WebSocket-Protocol:", true,
                           &why), 403);
    /* "*" lets any origin in. */
    char *const any[] = { "*" };
    http_message *m = parse(GET, "Origin: https://evil.example");
    ck_assert_int_eq(check_view(m, any, 1, &why), 0);
    /* No configured origins: only the server's own. */
    ck_assert_int_eq(check_view(m, NULL, 0, &why), 403);
    http_message_free(m);
    m = parse(GET, "Origin: https://chat.example:5281");
    ck_assert_int_eq(check_view(m, NULL, 0, &why), 0);
    http_message_free(m);
}
END_TEST

static Suite *websocket_suite(void)
{
    Suite *s = suite_create("websocket");
    TCase *tc = tcase_create("handshake");
    tcase_add_test(tc, test_accept_sample);
    tcase_add_test(tc, test_accept_other_key);
    tcase_add_test(tc, test_key_valid);
    tcase_add_test(tc, test_accepted);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_subprotocol);
    tcase_add_test(tc, test_origin);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(websocket_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
