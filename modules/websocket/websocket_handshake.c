/* websocket_handshake.c — the server's part of the WebSocket opening handshake (RFC 6455 §4.2):
 * whether a parsed HTTP request is a handshake we accept, and the Sec-WebSocket-Accept value.
 * No sockets here: the core's HTTP server sends the 101 and ws_link.c decides what to serve. */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <tern/http.h>

#include "rfc6455.h"

/* RFC 6455 §1.3: the GUID every server appends to the client's key. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_VERSION "13"

void ws_accept_value(const char *key, char out[WS_ACCEPT_LEN + 1])
{
    char joined[128];
    int n = snprintf(joined, sizeof joined, "%s%s", key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof joined)
        n = (int)sizeof joined - 1; /* a valid key is 24 characters; callers check that first */
    unsigned char digest[20];
    gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, (size_t)n, digest);
    gnutls_datum_t in = { digest, sizeof digest }, b64 = { NULL, 0 };
    out[0] = '\0';
    if (gnutls_base64_encode2(&in, &b64) == 0) {
        size_t len = b64.size < WS_ACCEPT_LEN ? b64.size : WS_ACCEPT_LEN;
        memcpy(out, b64.data, len);
        out[len] = '\0';
        gnutls_free(b64.data);
    }
}

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* 16 bytes encode to 22 base64 characters and "==" (§4.1 item 7: a random 16-byte nonce). */
bool ws_key_valid(const char *key)
{
    if (!key || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return false;
    for (int i = 0; i < 22; i++)
        if (!is_base64_char(key[i]))
            return false;
    /* The last character before the padding carries 2 bits of data and 4 zero bits. */
    return strchr("AQgw", key[21]) != NULL;
}

/* The page's own origin: a web client served by tern itself (static_dir) connects back to the
 * scheme and Host it came from, and must not need cors_origins for that. */
static bool same_origin(const ws_request *m, bool tls, const char *origin)
{
    if (!m->authority)
        return false;
    char own[300];
    int n = snprintf(own, sizeof own, "%s://%s", tls ? "https" : "http", m->authority);
    return n > 0 && (size_t)n < sizeof own && strcasecmp(own, origin) == 0;
}

int ws_check_handshake(const ws_request *m, const char *protocol, bool tls,
                       char *const *origins, size_t n_origins, const char **why)
{
    /* §4.2.1 items 1–6, in the order a client most likely gets wrong first. */
    if (strcmp(m->method, "GET") != 0) {
        *why = "a WebSocket handshake is a GET";
        return 400;
    }
    if (m->minor < 1) {
        *why = "a WebSocket handshake needs HTTP/1.1";
        return 400;
    }
    if (!m->has_token(m->req, "Upgrade", "websocket")) {
        *why = "no 'Upgrade: websocket'";
        return 400;
    }
    if (!m->has_token(m->req, "Connection", "Upgrade")) {
        *why = "no 'Connection: Upgrade'";
        return 400;
    }
    if (!ws_key_valid(m->header(m->req, "Sec-WebSocket-Key"))) {
        *why = "no valid Sec-WebSocket-Key";
        return 400;
    }
    const char *version = m->header(m->req, "Sec-WebSocket-Version");
    if (!version) {
        *why = "no Sec-WebSocket-Version";
        return 400;
    }
    if (strcmp(version, WS_VERSION) != 0) {
        *why = "unsupported Sec-WebSocket-Version";
        return 426;
    }
    /* §10.2: the Origin check protects users of browsers from pages of other sites. */
    const char *origin = m->header(m->req, "Origin");
    if (origin && !same_origin(m, tls, origin) && !tern_http_cors_allow(origins, n_origins, origin)) {
        *why = "the Origin is not allowed ([http] cors_origins)";
        return 403;
    }
    if (!m->has_token(m->req, "Sec-WebSocket-Protocol", protocol)) {
        *why = "the client did not offer the subprotocol";
        return 400;
    }
    *why = NULL;
    return 0;
}
