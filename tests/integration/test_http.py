"""The HTTP listener ([http] listen and tls_listen) as a browser, a web client and an attacker
see it: static files from static_dir, keep-alive, limits, CORS, HTTPS and the XEP-0156
host-meta documents. Requests go over python's http.client, or raw sockets where the request
must be malformed on purpose."""
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
import xml.etree.ElementTree as ET
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from tern_harness import TERND, TernServer

TIMEOUT = 10
ALLOWED = "https://app.example"
FILES = {
    "index.html": (b"<!doctype html><title>tern</title><p>hello</p>\n", "text/html; charset=utf-8"),
    "app.js": (b"console.log('tern');\n", "text/javascript; charset=utf-8"),
    "style.css": (b"body { color: #123; }\n", "text/css; charset=utf-8"),
    "data.json": (b'{"a": 1}\n', "application/json"),
    "logo.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>\n", "image/svg+xml"),
    "img.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image/png"),
    "mod.wasm": (b"\0asm\x01\0\0\0", "application/wasm"),
    "font.woff2": (b"wOF2" + b"\0" * 60, "font/woff2"),
    "sub/index.html": (b"<p>sub</p>\n", "text/html; charset=utf-8"),
}
SECRET = b"TOP-SECRET-OUTSIDE-THE-WEB-ROOT"


@pytest.fixture(scope="module")
def web(tmp_path_factory, pki):
    folder = tmp_path_factory.mktemp("tern-http")
    www = folder / "www"
    (www / "sub").mkdir(parents=True)
    (www / "empty").mkdir()
    for name, (data, _) in FILES.items():
        (www / name).write_bytes(data)
    (www / ".htpasswd").write_bytes(SECRET)
    (folder / "secret.txt").write_bytes(SECRET)
    (www / "escape").symlink_to(folder / "secret.txt")
    (www / "updir").symlink_to(folder)
    srv = TernServer(folder, pki, http=True,
                     http_extra=f"static_dir = {www}\ncors_origins = {ALLOWED} http://localhost:9\n")
    srv.start()
    srv.www = www
    yield srv
    srv.check_clean_exit()


def request(srv, method, path, headers=None, body=None, tls=False):
    """One request on a new connection: (status, {lowercase name: value}, body)."""
    conn = connect(srv, tls)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def connect(srv, tls=False):
    if not tls:
        return http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=TIMEOUT)
    ctx = ssl.create_default_context(cafile=str(srv.pki / "ca.crt"))
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.create_connection(("127.0.0.1", srv.https_port), timeout=TIMEOUT)
    conn = http.client.HTTPSConnection("localhost", srv.https_port, timeout=TIMEOUT, context=ctx)
    conn.sock = ctx.wrap_socket(sock, server_hostname="localhost")
    return conn


def raw(srv, data, timeout=TIMEOUT):
    """Sends raw bytes, then reads until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", srv.http_port), timeout=timeout) as s:
        s.sendall(data)
        return read_to_eof(s, timeout)


def read_to_eof(s, timeout=TIMEOUT):
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"the server did not close the connection; got {got[:500]!r}")


def split_responses(data, head_only=()):
    """Splits a byte stream into (status, headers, body) by Content-Length; the responses
    numbered in head_only answer HEAD requests and have no body."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if len(out) in head_only else int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


def status_of(data):
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12])


# ---------------------------------------------------------------- static files


@pytest.mark.parametrize("name", sorted(FILES))
def test_static_files_have_their_type_and_length(web, name):
    data, media_type = FILES[name]
    status, headers, body = request(web, "GET", "/" + name)
    assert status == 200
    assert body == data
    assert headers["content-type"] == media_type
    assert headers["content-length"] == str(len(data))
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["server"] == "tern"
    mtime = int((web.www / name).stat().st_mtime)
    assert parsedate_to_datetime(headers["last-modified"]).timestamp() == mtime
    assert abs(parsedate_to_datetime(headers["date"]).timestamp() - time.time()) < 60


def test_folders_serve_their_index(web):
    status, headers, body = request(web, "GET", "/")
    assert (status, body) == (200, FILES["index.html"][0])
    status, headers, body = request(web, "GET", "/sub/")
    assert (status, body) == (200, FILES["sub/index.html"][0])
    # Without the slash, relative links would break: redirect, keeping the query.
    status, headers, _ = request(web, "GET", "/sub?x=1")
    assert status == 301
    assert headers["location"] == "/sub/?x=1"
    # A folder without an index is not listed.
    assert request(web, "GET", "/empty/")[0] == 404


def test_head_sends_the_headers_without_the_body(web):
    conn = connect(web)
    conn.request("HEAD", "/app.js")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Length") == str(len(FILES["app.js"][0]))
    assert resp.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert resp.read() == b""
    # Had a body been sent, it would now be read as the next response's start.
    conn.request("GET", "/style.css")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, FILES["style.css"][0])
    conn.close()


def test_missing_and_hidden_files_are_404(web):
    status, headers, body = request(web, "GET", "/missing.html")
    assert status == 404
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body == b"404 Not Found\n"
    status, _, body = request(web, "GET", "/.htpasswd")
    assert status == 404 and SECRET not in body
    # Only GET and HEAD for files.
    status, headers, _ = request(web, "POST", "/app.js", body=b"x=1")
    assert status == 405
    assert headers["allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("target,expected", [
    ("/../etc/passwd", 400),
    ("/../secret.txt", 400),
    ("/%2e%2e/%2e%2e/etc/passwd", 400),
    ("/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", 400),
    ("/sub/..%2f..%2fsecret.txt", 400),
    ("/./index.html", 400),
    ("/a%00.html", 400),
    ("/%zz", 400),
    ("/escape", 404),             # a symbolic link out of the folder
    ("/updir/secret.txt", 404),   # a linked folder out of it
])
def test_no_way_out_of_the_static_folder(web, target, expected):
    data = raw(web, f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
               .encode())
    assert status_of(data) == expected, data[:300]
    assert SECRET not in data
    assert b"root:" not in data


def test_if_modified_since_gives_304(web):
    status, headers, _ = request(web, "GET", "/app.js")
    modified = headers["last-modified"]
    status, headers, body = request(web, "GET", "/app.js", {"If-Modified-Since": modified})
    assert (status, body) == (304, b"")
    assert headers["last-modified"] == modified
    assert "content-length" not in headers
    # Older copy, or a date we cannot read: the file itself.
    older = format_datetime(parsedate_to_datetime(modified).replace(year=2000), usegmt=True)
    assert request(web, "GET", "/app.js", {"If-Modified-Since": older})[0] == 200
    assert request(web, "GET", "/app.js", {"If-Modified-Since": "yesterday"})[0] == 200


# ---------------------------------------------------------------- connections


def test_keep_alive_serves_two_requests_on_one_connection(web):
    conn = connect(web)
    conn.request("GET", "/app.js")
    first = conn.getresponse()
    assert (first.status, first.read()) == (200, FILES["app.js"][0])
    sock = conn.sock
    assert sock is not None  # not closed after the first response
    conn.request("GET", "/data.json")
    second = conn.getresponse()
    assert (second.status, second.read()) == (200, FILES["data.json"][0])
    assert conn.sock is sock
    conn.close()


def test_pipelined_requests_are_answered_in_order(web):
    data = raw(web, b"GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    b"GET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    b"HEAD /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    b"GET /data.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    responses = split_responses(data, head_only={2})
    assert [(status, body) for status, _, body in responses] == [
        (200, FILES["app.js"][0]), (404, b"404 Not Found\n"), (200, b""),
        (200, FILES["data.json"][0])]
    assert responses[2][1]["content-length"] == str(len(FILES["style.css"][0]))
    assert responses[3][1]["connection"] == "close"


def test_http_1_0_closes_after_the_response(web):
    data = raw(web, b"GET /app.js HTTP/1.0\r\n\r\n")
    (status, headers, body), = split_responses(data)
    assert (status, body) == (200, FILES["app.js"][0])
    assert headers["connection"] == "close"
    # ...unless it asks to keep the connection.
    with socket.create_connection(("127.0.0.1", web.http_port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        conn_resp = http.client.HTTPResponse(s)
        conn_resp.begin()
        assert conn_resp.getheader("Connection") == "keep-alive"
        assert conn_resp.read() == FILES["app.js"][0]
        s.sendall(b"GET /style.css HTTP/1.0\r\n\r\n")
        (status, _, body), = split_responses(read_to_eof(s))
        assert (status, body) == (200, FILES["style.css"][0])


def test_body_over_max_body_size_is_413(web):
    body = b"x" * (2 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", web.http_port), timeout=TIMEOUT) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        # The answer comes after the head; the rest of the body is drained, not read.
        sender = threading.Thread(target=lambda: _send_quietly(s, body))
        sender.start()
        data = read_to_eof(s)
        sender.join(TIMEOUT)
    assert status_of(data) == 413
    assert b"Connection: close" in data
    assert data.endswith(b"413 Content Too Large\n")


def _send_quietly(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass


def test_expect_100_continue(web):
    # Too large: refused before the client sends its body.
    data = raw(web, b"POST /upload HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 2097152\r\n\r\n")
    assert status_of(data) == 413
    assert b"100 Continue" not in data
    # Acceptable: 100 Continue first, then the final answer once the body is in.
    with socket.create_connection(("127.0.0.1", web.http_port), timeout=TIMEOUT) as s:
        s.sendall(b"POST /app.js HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5\r\nConnection: close\r\n\r\n")
        assert s.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        (status, headers, _), = split_responses(read_to_eof(s))
        assert status == 405
        assert headers["allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("request_bytes,expected", [
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                             # no Host
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n folded\r\n\r\n", 400),  # obs-fold
    (b"GET  /  HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nExpect: 200-ok\r\n\r\n", 417),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n", 431),
])
def test_bad_requests_are_refused_and_closed(web, request_bytes, expected):
    data = raw(web, request_bytes)
    assert status_of(data) == expected, data[:300]
    assert b"Connection: close" in data
    # The server still serves others.
    assert request(web, "GET", "/app.js")[0] == 200


def test_a_bad_request_after_a_good_one(web):
    data = raw(web, b"GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\nBROKEN\r\n\r\n"
                    b"GET /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n")
    responses = split_responses(data)
    assert [r[0] for r in responses] == [200, 400]
    assert b"body { color" not in data  # nothing after the error is served


# ---------------------------------------------------------------- CORS


def preflight(srv, origin, path="/app.js", method="GET"):
    return request(srv, "OPTIONS", path, {
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, x-requested-with"})


def test_cors_preflight_from_an_allowed_origin(web):
    status, headers, body = preflight(web, ALLOWED)
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == ALLOWED
    assert headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert headers["access-control-allow-headers"] == "content-type, x-requested-with"
    assert headers["access-control-max-age"] == "86400"
    assert headers["vary"] == "Origin"
    # The second configured origin too.
    assert preflight(web, "http://localhost:9")[1]["access-control-allow-origin"] == \
        "http://localhost:9"


def test_cors_preflight_from_another_origin_is_refused(web):
    status, headers, _ = preflight(web, "https://evil.example")
    assert status == 403
    assert not any(h.startswith("access-control-") for h in headers)
    # Nor does a near miss pass.
    status, headers, _ = preflight(web, ALLOWED + ".evil.example")
    assert status == 403 and "access-control-allow-origin" not in headers


def test_cors_fields_on_normal_responses(web):
    _, headers, _ = request(web, "GET", "/app.js", {"Origin": ALLOWED})
    assert headers["access-control-allow-origin"] == ALLOWED
    assert headers["vary"] == "Origin"
    _, headers, _ = request(web, "GET", "/app.js", {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers
    _, headers, _ = request(web, "GET", "/missing", {"Origin": ALLOWED})
    assert headers["access-control-allow-origin"] == ALLOWED


def test_plain_options(web):
    status, headers, _ = request(web, "OPTIONS", "/app.js")
    assert status == 204
    assert headers["allow"] == "GET, HEAD, OPTIONS"
    data = raw(web, b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status_of(data) == 204
    assert request(web, "OPTIONS", "/missing")[0] == 404


# ---------------------------------------------------------------- HTTPS


def test_https_on_the_tls_listener(web):
    conn = connect(web, tls=True)
    assert conn.sock.selected_alpn_protocol() == "http/1.1"
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, FILES["index.html"][0])
    conn.request("GET", "/sub/")  # keep-alive over TLS too
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, FILES["sub/index.html"][0])
    conn.close()
    # Plain HTTP on the TLS port does not get a page.
    with socket.create_connection(("127.0.0.1", web.https_port), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert FILES["index.html"][0] not in read_to_eof(s)


# ---------------------------------------------------------------- XEP-0156


XRD_NS = "http://docs.oasis-open.org/ns/xri/xrd-1.0"


def test_host_meta_lists_no_endpoints_yet(web):
    # No module registers BOSH or WebSocket yet, so no link is advertised.
    status, headers, body = request(web, "GET", "/.well-known/host-meta")
    assert status == 200
    assert headers["content-type"] == "application/xrd+xml; charset=utf-8"
    assert headers["access-control-allow-origin"] == "*"
    assert body == (b"<?xml version='1.0' encoding='utf-8'?>\n"
                    b"<XRD xmlns='" + XRD_NS.encode() + b"'/>\n")
    root = ET.fromstring(body)
    assert root.tag == f"{{{XRD_NS}}}XRD" and list(root) == []

    status, headers, body = request(web, "GET", "/.well-known/host-meta.json",
                                    {"Origin": "https://anyone.example"})
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["access-control-allow-origin"] == "*"
    assert json.loads(body) == {"links": []}

    status, headers, body = request(web, "HEAD", "/.well-known/host-meta.json")
    assert (status, body) == (200, b"")
    status, headers, _ = request(web, "POST", "/.well-known/host-meta", body=b"")
    assert status == 405 and headers["allow"] == "GET, HEAD, OPTIONS"


def test_without_static_dir_only_the_core_documents(tmp_path, pki):
    srv = TernServer(tmp_path, pki, http=True).start()
    try:
        assert request(srv, "GET", "/")[0] == 404
        assert request(srv, "GET", "/index.html")[0] == 404
        assert request(srv, "GET", "/.well-known/host-meta.json")[0] == 200
        assert request(srv, "GET", "/.well-known/host-meta", tls=True)[0] == 200
        # Without the bosh and websocket modules, their endpoints do not exist.
        assert request(srv, "POST", "/http-bind", body=b"<body/>")[0] == 404
        assert request(srv, "GET", "/xmpp-websocket")[0] == 404
        # No CORS origins configured: no CORS fields.
        _, headers, _ = request(srv, "GET", "/missing", {"Origin": ALLOWED})
        assert "access-control-allow-origin" not in headers
    finally:
        srv.check_clean_exit()


def test_a_static_dir_that_is_not_there_stops_the_start(tmp_path, pki):
    srv = TernServer(tmp_path, pki, http=True, http_extra=f"static_dir = {tmp_path}/nowhere")
    proc = subprocess.run([str(TERND), "-c", str(srv.config)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1
    assert f"[http] static_dir {tmp_path}/nowhere is not a readable folder" in proc.stderr
    # ternd -t says so too.
    proc = subprocess.run([str(TERND), "-c", str(srv.config), "-t"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1
    assert f"[http] static_dir {tmp_path}/nowhere is not a readable folder" in proc.stderr


# ---------------------------------------------------------------- module routes
#
# No module of tern answers late yet (BOSH will), so a small probe module, compiled here
# against the public headers, exercises the route API: a route on two hosts, a prefix route,
# answering now, answering later from a timer, a client that leaves first, a handler that
# forgets to answer, a field a module may not send, and host-meta links.

PROBE_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tern/http.h>
#include <tern/module.h>

typedef struct probe {
    tern_host *host;
    tern_http_route echo, tree, later, forgetful, bad_field;
    tern_timer *timer;
    tern_http_request *held;
} probe;

static void echo(tern_http_request *req, void *data)
{
    probe *p = data;
    size_t len;
    const char *body = tern_http_body(req, &len);
    const char *x = tern_http_header(req, "x-probe");
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    fprintf(f, "host=%s\nmethod=%s\npath=%s\nquery=%s\nx-probe=%s\nsecure=%d\npeer=%s\n"
            "body=%.*s\n", tern_host_name(tern_http_host(req)), tern_http_method(req),
            tern_http_path(req), tern_http_query(req), x ? x : "(none)",
            tern_http_secure(req), tern_http_peer(req), (int)len, body);
    fclose(f);
    if (tern_http_host(req) != p->host)
        abort();
    tern_http_add_header(req, "X-Probe-Reply", "yes");
    tern_http_respond(req, 200, "text/plain", text, n);
    free(text);
}

static void answer_late(void *data)
{
    probe *p = data;
    tern_http_request *req = p->held;
    p->timer = NULL;
    p->held = NULL;
    tern_http_respond(req, 200, "text/plain", "late\n", 5);
}

static void gone(tern_http_request *req, void *data)
{
    probe *p = data;
    log_info(tern_http_id(req), "probe: the client of %s went away", tern_http_path(req));
    tern_http_respond(req, 200, "text/plain", "nobody hears this", 17);
    tern_timer_cancel(p->timer);
    p->timer = NULL;
    p->held = NULL;
}

static void later(tern_http_request *req, void *data)
{
    probe *p = data;
    const char *ms = strstr(tern_http_query(req), "ms=");
    if (p->held || !ms) {
        tern_http_respond(req, 409, NULL, NULL, 0);
        return;
    }
    p->held = req;
    tern_http_on_gone(req, gone, p);
    p->timer = tern_timer_add(p->host, (unsigned)atoi(ms + 3), false, answer_late, p);
}

static void forgetful(tern_http_request *req, void *data)
{
    (void)req;
    (void)data;
}

static void bad_field(tern_http_request *req, void *data)
{
    (void)data;
    tern_http_add_header(req, "X-Split", "a\r\nX-Injected: 1");
    tern_http_add_header(req, "Bad Name", "b");
    tern_http_respond(req, 200, "text/plain", "ok", 2);
}

static int probe_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    probe *p = calloc(1, sizeof *p);
    p->host = host;
    p->echo = (tern_http_route){ "/probe/echo", false, NULL, echo, p };
    p->tree = (tern_http_route){ "/probe/tree", true, "GET", echo, p };
    p->later = (tern_http_route){ "/probe/later", false, "GET", later, p };
    p->forgetful = (tern_http_route){ "/probe/forgetful", false, NULL, forgetful, p };
    p->bad_field = (tern_http_route){ "/probe/bad-field", false, NULL, bad_field, p };
    tern_http_add_route(host, &p->echo);
    tern_http_add_route(host, &p->tree);
    tern_http_add_route(host, &p->later);
    tern_http_add_route(host, &p->forgetful);
    tern_http_add_route(host, &p->bad_field);
    tern_http_add_link(host, TERN_HTTP_REL_BOSH, "/probe/bosh");
    tern_http_add_link(host, TERN_HTTP_REL_WEBSOCKET, "/probe/ws");
    tern_http_add_link(host, "urn:example:absolute", "https://elsewhere.example/x");
    *state = p;
    return 0;
}

static void probe_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE("http_probe", probe_load, probe_unload);
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory, pki):
    from tern_harness import BUILD, MODULES
    folder = tmp_path_factory.mktemp("tern-probe")
    modules = folder / "modules"
    modules.mkdir()
    for so in MODULES.glob("*.so"):
        (modules / so.name).symlink_to(so)
    source = folder / "http_probe.c"
    source.write_text(PROBE_SOURCE)
    src = BUILD / "src"
    include = [f"-I{src}"] + ([f"-I{Path(__file__).resolve().parents[2] / 'src'}"])
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    "-fvisibility=hidden", *include, str(source), "-o",
                    str(modules / "http_probe.so")], check=True, timeout=120)
    srv = TernServer(folder, pki, hosts=("localhost", "example.test"), modules="http_probe",
                     http=True)
    srv.config.write_text(srv.config.read_text().replace(f"module_dir = {MODULES}",
                                                         f"module_dir = {modules}"))
    srv.start()
    yield srv
    srv.check_clean_exit()


def echo_fields(body):
    return dict(line.split("=", 1) for line in body.decode().splitlines())


def test_a_module_route_answers_with_the_request_it_saw(probe):
    status, headers, body = request(probe, "POST", "/probe/echo?a=1&b=%20",
                                    {"X-Probe": "hello", "Content-Type": "text/plain"},
                                    body=b"the body")
    assert status == 200
    assert headers["x-probe-reply"] == "yes"
    assert headers["content-type"] == "text/plain"
    fields = echo_fields(body)
    assert fields["method"] == "POST"
    assert fields["path"] == "/probe/echo"
    assert fields["query"] == "a=1&b=%20"
    assert fields["x-probe"] == "hello"
    assert fields["body"] == "the body"
    assert fields["secure"] == "0"
    assert fields["peer"].startswith("127.0.0.1:")
    assert echo_fields(request(probe, "GET", "/probe/echo", tls=True)[2])["secure"] == "1"
    # HEAD reaches the handler, whose body is dropped.
    status, headers, body = request(probe, "HEAD", "/probe/echo")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) > 0


def test_the_host_field_chooses_between_hosts(probe):
    def host_for(host_field):
        conn = http.client.HTTPConnection("127.0.0.1", probe.http_port, timeout=TIMEOUT)
        conn.putrequest("GET", "/probe/echo", skip_host=True)
        conn.putheader("Host", host_field)
        conn.endheaders()
        fields = echo_fields(conn.getresponse().read())
        conn.close()
        return fields["host"]
    assert host_for("example.test") == "example.test"
    assert host_for("EXAMPLE.test:5280") == "example.test"
    assert host_for("localhost") == "localhost"
    assert host_for("unknown.example") == "localhost"  # the first host's route
    assert host_for("127.0.0.1") == "localhost"


def test_prefix_routes_and_methods(probe):
    status, _, body = request(probe, "GET", "/probe/tree/a%20b/c")
    assert status == 200 and echo_fields(body)["path"] == "/probe/tree/a b/c"
    assert echo_fields(request(probe, "GET", "/probe/tree")[2])["path"] == "/probe/tree"
    assert request(probe, "GET", "/probe/treehouse")[0] == 404
    status, headers, _ = request(probe, "DELETE", "/probe/tree/x")
    assert status == 405 and headers["allow"] == "GET, HEAD, OPTIONS"
    status, headers, _ = request(probe, "OPTIONS", "/probe/tree/x")
    assert status == 204 and headers["allow"] == "GET, HEAD, OPTIONS"


def test_an_answer_given_later_from_a_timer(probe):
    started = time.monotonic()
    status, _, body = request(probe, "GET", "/probe/later?ms=300")
    assert (status, body) == (200, b"late\n")
    assert time.monotonic() - started >= 0.29


def test_requests_behind_a_late_answer_wait_their_turn(probe):
    data = raw(probe, b"GET /probe/later?ms=200 HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      b"GET /probe/echo?second HTTP/1.1\r\nHost: localhost\r\n"
                      b"Connection: close\r\n\r\n")
    responses = split_responses(data)
    assert [r[2] for r in responses][0] == b"late\n"
    assert echo_fields(responses[1][2])["query"] == "second"


def test_the_module_hears_when_the_client_leaves_first(probe):
    with socket.create_connection(("127.0.0.1", probe.http_port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /probe/later?ms=30000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        time.sleep(0.2)
    probe.wait_log("probe: the client of /probe/later went away")
    # The module's slot is free again, and nothing was answered into the void.
    status, _, body = request(probe, "GET", "/probe/later?ms=10")
    assert (status, body) == (200, b"late\n")


def test_a_handler_that_neither_answers_nor_keeps_gets_500(probe):
    status, _, body = request(probe, "GET", "/probe/forgetful")
    assert (status, body) == (500, b"500 Internal Server Error\n")
    probe.wait_log("neither answered nor kept the request")


def test_a_module_cannot_split_the_response(probe):
    data = raw(probe, b"GET /probe/bad-field HTTP/1.1\r\nHost: localhost\r\n"
                      b"Connection: close\r\n\r\n")
    (status, headers, body), = split_responses(data)
    assert (status, body) == (200, b"ok")
    assert "x-injected" not in headers and "x-split" not in headers
    assert "bad name" not in headers


def test_host_meta_lists_the_links_modules_registered(probe):
    port = probe.http_port
    body = request(probe, "GET", "/.well-known/host-meta.json")[2]
    assert json.loads(body) == {"links": [
        {"rel": "urn:xmpp:alt-connections:xbosh",
         "href": f"http://127.0.0.1:{port}/probe/bosh"},
        {"rel": "urn:xmpp:alt-connections:websocket",
         "href": f"ws://127.0.0.1:{port}/probe/ws"},
        {"rel": "urn:example:absolute", "href": "https://elsewhere.example/x"},
    ]}
    conn = connect(probe, tls=True)
    conn.request("GET", "/.well-known/host-meta")
    root = ET.fromstring(conn.getresponse().read())
    conn.close()
    links = [(link.get("rel"), link.get("href")) for link in root]
    assert links == [
        ("urn:xmpp:alt-connections:xbosh", f"https://localhost:{probe.https_port}/probe/bosh"),
        ("urn:xmpp:alt-connections:websocket", f"wss://localhost:{probe.https_port}/probe/ws"),
        ("urn:example:absolute", "https://elsewhere.example/x")]
    assert all(link.tag == f"{{{XRD_NS}}}Link" for link in root)


def test_a_request_held_at_shutdown_is_released(probe):
    # The module server stops cleanly (check_clean_exit in the fixture) even with a request
    # held: it is started here and left pending for the fixture's stop.
    s = socket.create_connection(("127.0.0.1", probe.http_port), timeout=TIMEOUT)
    s.sendall(b"GET /probe/later?ms=60000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.2)
    probe.held_socket = s  # closed by the garbage collector after the server stopped
