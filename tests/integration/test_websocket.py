"""XMPP over WebSocket (RFC 7395) at /xmpp-websocket, the websocket module: a web client is the
same kind of session as a TCP client. The opening handshake and its refusals (RFC 6455 §4.2,
the "xmpp" subprotocol, Origin), <open/> and <close/>, SASL (PLAIN, SCRAM with channel binding
from the wss:// TLS session), bind, messages, presence and offline messages between a
WebSocket user and TCP users, stream errors as <stream:error/> + <close/>, the framing rules
(masking, binary, fragments, ping, sizes, UTF-8), and host-meta advertising the endpoint.

WSClient (ws_client.py) is a small hand-written WebSocket client, since it must be able to send
bad frames; one test also drives the server with an independent implementation
(python3-websockets) next to a slixmpp user on TCP."""
import asyncio
import base64
import http.client
import json
import os
import re
import signal
import ssl
import struct
import time
import xml.etree.ElementTree as ET

import pytest

from tern_harness import TernServer, connect, disconnect, make_client, run, scram_login
from test_roster import ImClient, new_users
from test_subscriptions import befriend
from ws_client import (F, FRAMING, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, SASL,
                       STREAMS, WSClient, WSXmpp, features_names, frame, mechanisms)

TIMEOUT = 10
MODULES = "disco ping roster presence offline websocket"
MAX_STANZA = 16384
ALLOWED_ORIGIN = "https://app.example"
C = "{jabber:client}"


def start(folder, pki, c2s_extra="", hosts=("localhost",)):
    srv = TernServer(folder, pki, hosts=hosts, modules=MODULES, http=True,
                     http_extra=f"cors_origins = {ALLOWED_ORIGIN}\n",
                     c2s_extra=f"max_stanza_size = {MAX_STANZA}\n{c2s_extra}")
    if len(hosts) > 1:
        # The second host leaves WebSocket off.
        text = srv.config.read_text()
        srv.config.write_text(text.replace(f"[host {hosts[1]}]\nmodules = {MODULES}\n",
                                           f"[host {hosts[1]}]\nmodules = disco ping\n"))
    for user in ("alice", "bob"):
        srv.add_user(f"{user}@localhost", "secret")
    return srv.start()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    server = start(tmp_path_factory.mktemp("websocket"), pki, hosts=("localhost", "example.test"))
    yield server
    server.check_clean_exit()


@pytest.fixture(scope="module")
def plain_srv(tmp_path_factory, pki):
    """[c2s] require_tls = no: plain ws:// may authenticate."""
    server = start(tmp_path_factory.mktemp("websocket-plain"), pki, c2s_extra="require_tls = no\n")
    yield server
    server.check_clean_exit()


# ---------------------------------------------------------------- the handshake


def test_open_and_close_over_wss(srv):
    x = WSXmpp(srv)
    opened, features = x.open()
    # RFC 7395 §3.3.2: our <open/> names us and the stream, in the framing namespace.
    assert opened.get("from") == "localhost"
    assert opened.get("version") == "1.0"
    assert re.fullmatch(r"[A-Za-z0-9]{16}", opened.get("id")), opened.attrib
    assert opened.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert list(opened) == []
    # SASL over TLS, SCRAM with channel binding (the wss TLS session); never STARTTLS (§3.4).
    names = features_names(features)
    assert "{urn:ietf:params:xml:ns:xmpp-tls}starttls" not in names, names
    mechs = mechanisms(features)
    assert "SCRAM-SHA-256-PLUS" in mechs and "PLAIN" in mechs, mechs
    x.close()


def test_the_raw_frames_declare_their_namespaces(srv):
    """Every message stands alone (§3.3.3): the stream prefix is declared on features and
    errors, stanzas carry xmlns='jabber:client'."""
    ws = WSClient(srv).upgrade()
    ws.send_text(f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>")
    opened = ws.read_text()
    assert opened.startswith(f"<open xmlns='{FRAMING}' id='"), opened
    features = ws.read_text()
    assert features.startswith("<stream:features xmlns:stream='http://etherx.jabber.org/"
                               "streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                               ), features
    token = base64.b64encode(b"\0alice\0secret").decode()
    ws.send_text(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}"
                 "</auth>")
    assert ws.read_text() == "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    ws.send_text(f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>")
    ws.read_text()
    ws.read_text()
    ws.send_text("<iq type='set' id='b' xmlns='jabber:client'><bind xmlns='urn:ietf:params:"
                 "xml:ns:xmpp-bind'><resource>raw</resource></bind></iq>")
    assert ws.read_text() == ("<iq xmlns='jabber:client' type='result' id='b'><bind xmlns="
                              "'urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/raw</jid>"
                              "</bind></iq>")
    ws.send_text(f"<close xmlns='{FRAMING}'/>")
    assert ws.read_text() == f"<close xmlns='{FRAMING}'/>"
    assert ws.close_code() == 1000


@pytest.mark.parametrize("protocols", [None, "chat", "xmpp2, xmp"])
def test_without_the_xmpp_subprotocol_there_is_no_upgrade(srv, protocols):
    status, headers, _ = WSClient(srv).handshake(protocols=protocols)
    assert status == 400
    assert "sec-websocket-accept" not in headers and "upgrade" not in headers


def test_the_subprotocol_may_be_one_of_several(srv):
    x = WSXmpp(srv, protocols="chat, xmpp")
    x.open()
    x.close()


def test_another_websocket_version_gets_426_naming_13(srv):
    status, headers, _ = WSClient(srv).handshake(version="8")
    assert status == 426
    assert headers["sec-websocket-version"] == "13"


@pytest.mark.parametrize("change", [{"upgrade": False}, {"key": "too-short"},
                                    {"method": "POST"}])
def test_malformed_handshakes_are_refused(srv, change):
    status, headers, _ = WSClient(srv).handshake(**change)
    # POST is not a method of the route (405); the others are bad requests.
    assert status == (405 if change.get("method") else 400), (status, headers)
    assert "sec-websocket-accept" not in headers


def test_a_foreign_origin_is_refused_an_allowed_or_own_one_is_not(srv):
    status, headers, _ = WSClient(srv).handshake(origin="https://evil.example")
    assert status == 403 and "sec-websocket-accept" not in headers
    for origin in (ALLOWED_ORIGIN, f"https://localhost:{srv.https_port}"):
        x = WSXmpp(srv, origin=origin)
        x.open()
        x.close()
    # The right host over the wrong scheme is another origin.
    status, _, _ = WSClient(srv).handshake(origin=f"http://localhost:{srv.https_port}")
    assert status == 403


def test_frames_sent_with_the_handshake_are_read(srv):
    """A client may pipeline its first message behind the request, before our 101."""
    ws = WSClient(srv)
    key = base64.b64encode(os.urandom(16)).decode()
    ws.send((f"GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Protocol: xmpp\r\n\r\n").encode() +
            frame(OP_TEXT, f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>".encode()))
    assert ws.read_until(rb"^HTTP/1.1 101 [^\r]*\r\n.*?\r\n\r\n")
    assert ws.read_text().startswith("<open ")
    assert ws.read_text().startswith("<stream:features ")


# ---------------------------------------------------------------- authentication and sessions


def test_scram_plus_binds_to_the_wss_tls_session(srv):
    x = WSXmpp(srv)
    x.open()
    assert scram_login(x, "alice", "secret", cb_type="tls-exporter") == ("success", True)
    _, features = x.open()  # §3.5: the restart is the client's next <open/>
    assert "{urn:ietf:params:xml:ns:xmpp-bind}bind" in features_names(features)
    assert x.bind("plus") == "alice@localhost/plus"
    assert x.sync().get("type") == "result"
    x.close()


def test_a_wrong_password_fails_like_on_tcp(srv):
    x = WSXmpp(srv)
    x.open()
    result = x.auth_plain("alice", "wrong")
    assert result.tag == SASL + "failure"
    assert result[0].tag == SASL + "not-authorized"
    x.close()


def test_messages_after_a_failed_attempt_wait_for_its_answer(srv):
    """The delay after a failed authentication (RFC 6120 §6.4.5) holds later messages back,
    even when they arrived in the same read: the second attempt is answered after the first."""
    x = WSXmpp(srv)
    x.open()
    wrong = base64.b64encode(b"\0alice\0wrong").decode()
    right = base64.b64encode(b"\0alice\0secret").decode()
    auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>"
    t0 = time.monotonic()
    x.ws.send(frame(OP_TEXT, auth.format(wrong).encode()) +
              frame(OP_TEXT, auth.format(right).encode()))
    assert x.element().tag == SASL + "failure"
    assert time.monotonic() - t0 >= 0.9
    assert x.element().tag == SASL + "success"
    x.close()


def test_plain_ws_is_not_encrypted_so_authentication_is_refused(srv):
    """[c2s] require_tls = yes (the default) holds for ws:// exactly as for plain TCP."""
    x = WSXmpp(srv, tls=False)
    _, features = x.open()
    assert mechanisms(features) == []
    assert "{urn:ietf:params:xml:ns:xmpp-tls}starttls" not in features_names(features)
    result = x.auth_plain("alice", "secret")
    assert result.tag == SASL + "failure"
    assert result[0].tag == SASL + "encryption-required"
    x.close()


def test_plain_ws_with_require_tls_off(plain_srv):
    x = WSXmpp(plain_srv, tls=False)
    _, features = x.open()
    # As on plain TCP: SCRAM without channel binding, no PLAIN without TLS.
    assert mechanisms(features) == ["SCRAM-SHA-256", "SCRAM-SHA-1"]
    assert scram_login(x, "alice", "secret") == ("success", True)
    x.open()
    assert x.bind("web") == "alice@localhost/web"
    assert x.sync().get("type") == "result"
    x.close()


def test_a_host_without_the_module_is_unknown_over_websocket(srv):
    x = WSXmpp(srv)
    x.send(f"<open xmlns='{FRAMING}' to='example.test' version='1.0'/>")
    opened = x.element()
    assert opened.tag == F + "open" and opened.get("from") is None
    assert x.stream_error() == "host-unknown"


def test_messages_and_presence_with_a_tcp_user(srv):
    """The user story: alice in a web client, bob on TCP (slixmpp), friends."""
    a, b = new_users(srv, "alice", "bob")
    befriend(srv, a, b)
    A, B = f"{a}@localhost", f"{b}@localhost"

    async def body():
        bob = await connect(make_client(f"{B}/laptop", "secret", srv), srv)
        loop = asyncio.get_running_loop()
        seen = {"available": loop.create_future(), "unavailable": loop.create_future(),
                "message": loop.create_future()}

        def on_presence(p):
            kind = "unavailable" if p["type"] == "unavailable" else "available"
            if str(p["from"]) == f"{A}/web" and not seen[kind].done():
                seen[kind].set_result(p)

        def on_message(m):
            if str(m["from"]) == f"{A}/web" and not seen["message"].done():
                seen["message"].set_result(m)
        bob.add_event_handler("presence_available", on_presence)
        bob.add_event_handler("presence_unavailable", on_presence)
        bob.add_event_handler("message", on_message)

        x = await loop.run_in_executor(None, lambda: WSXmpp(srv))
        assert await loop.run_in_executor(None, x.login, a) == f"{A}/web"
        # alice's initial presence reaches bob; bob's current presence reaches alice.
        x.send("<presence xmlns='jabber:client'><status>on the web</status></presence>")
        p = await asyncio.wait_for(seen["available"], TIMEOUT)
        assert p["status"] == "on the web"
        from_bob = await loop.run_in_executor(None, lambda: x.next(
            lambda e: e.tag == C + "presence" and e.get("from") == f"{B}/laptop"))
        assert from_bob.get("type") is None
        # alice → bob
        x.send(f"<message xmlns='jabber:client' to='{B}' type='chat'><body>hi from the web"
               "</body></message>")
        m = await asyncio.wait_for(seen["message"], TIMEOUT)
        assert m["body"] == "hi from the web" and m["type"] == "chat"
        # bob → alice
        bob.send_message(mto=f"{A}/web", mbody="hi from tcp", mtype="chat")
        got = await loop.run_in_executor(None, lambda: x.next(
            lambda e: e.tag == C + "message" and e.get("from") == f"{B}/laptop"))
        assert got.get("to") == f"{A}/web" and got.findtext(C + "body") == "hi from tcp"
        # alice leaves: bob sees her go.
        await loop.run_in_executor(None, x.close)
        await asyncio.wait_for(seen["unavailable"], TIMEOUT)
        await disconnect(bob)
    run(body())


def test_a_message_waiting_offline_arrives_over_websocket(srv):
    a, b = new_users(srv, "alice", "bob")
    bob = ImClient(srv, b)
    bob.send(f"<message to='{a}@localhost' type='chat' id='m1'><body>while you were out</body>"
             "</message>")
    bob.sync()
    x = WSXmpp(srv)
    x.login(a)
    x.send("<presence xmlns='jabber:client'/>")
    m = x.next(lambda e: e.tag == C + "message")
    assert m.get("from") == f"{b}@localhost/res"
    assert m.findtext(C + "body") == "while you were out"
    assert m.find("{urn:xmpp:delay}delay") is not None
    x.close()
    bob.close()


def test_the_python_websockets_library_and_a_tcp_user(srv):
    """Interoperability with an independent WebSocket implementation (python3-websockets)."""
    import websockets

    async def body():
        ctx = ssl.create_default_context(cafile=str(srv.pki / "ca.crt"))
        bob = await connect(make_client("bob@localhost/tcp", "secret", srv), srv)
        got = asyncio.get_running_loop().create_future()
        bob.add_event_handler("message", lambda m: got.done() or got.set_result(m))
        async with websockets.connect(f"wss://localhost:{srv.https_port}/xmpp-websocket",
                                      subprotocols=["xmpp"], ssl=ctx) as ws:
            assert ws.subprotocol == "xmpp"

            async def element():
                return ET.fromstring(await asyncio.wait_for(ws.recv(), TIMEOUT))
            for step in range(2):
                await ws.send(f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>")
                assert (await element()).tag == F + "open"
                assert (await element()).tag == STREAMS + "features"
                if step == 0:
                    token = base64.b64encode(b"\0alice\0secret").decode()
                    await ws.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                  f"mechanism='PLAIN'>{token}</auth>")
                    assert (await element()).tag == SASL + "success"
            await ws.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:"
                          "params:xml:ns:xmpp-bind'/></iq>")
            assert (await element()).get("type") == "result"
            await ws.send("<message xmlns='jabber:client' to='bob@localhost/tcp'><body>via "
                          "websockets</body></message>")
            assert (await asyncio.wait_for(got, TIMEOUT))["body"] == "via websockets"
            # The library answers pings for us; ours get a pong.
            await asyncio.wait_for(await ws.ping(b"are you there"), TIMEOUT)
            await ws.send(f"<close xmlns='{FRAMING}'/>")
            assert (await element()).tag == F + "close"
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
            assert ws.close_code == 1000
        await disconnect(bob)
    run(body())


# ---------------------------------------------------------------- stream errors


@pytest.mark.parametrize("message,condition", [
    ("<message xmlns='jabber:client'><body>unclosed</message>", "not-well-formed"),
    ("<message xmlns='jabber:client'><body>unfinished", "not-well-formed"),
    ("<a xmlns='jabber:client'/><b xmlns='jabber:client'/>", "not-well-formed"),
    ("</stream:stream>", "not-well-formed"),
    ("<iq xmlns='jabber:client'/>trailing text", "bad-format"),
    ("<!-- a comment --><iq xmlns='jabber:client' type='get' id='c'/>", "restricted-xml"),
    ("<?pi data?>", "restricted-xml"),
])
def test_bad_xml_in_a_message_is_a_stream_error(srv, message, condition):
    x = WSXmpp(srv)
    x.open()
    x.send(message)
    assert x.stream_error() == condition


def test_the_stream_must_begin_with_open(srv):
    x = WSXmpp(srv)
    x.send("<iq xmlns='jabber:client' type='get' id='early'/>")
    # Our <open/> comes first, so the error has a stream to go in (RFC 6120 §4.9.1.2).
    assert x.element().tag == F + "open"
    assert x.stream_error() == "invalid-namespace"


def test_an_open_in_the_wrong_namespace_is_refused(srv):
    x = WSXmpp(srv)
    x.send("<open xmlns='jabber:client' to='localhost' version='1.0'/>")
    assert x.element().tag == F + "open"
    assert x.stream_error() == "invalid-namespace"


def test_stanzas_before_authentication_are_refused(srv):
    x = WSXmpp(srv)
    x.open()
    x.send("<message xmlns='jabber:client' to='bob@localhost'><body>x</body></message>")
    assert x.stream_error() == "not-authorized"


def test_white_space_messages_are_ignored(srv):
    x = WSXmpp(srv)
    x.login("alice", resource="ws-keepalive")
    x.send(" \n ")
    assert x.sync().get("type") == "result"
    x.close()


# ---------------------------------------------------------------- framing


def opened_client(srv):
    ws = WSClient(srv).upgrade()
    ws.send_text(f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>")
    ws.read_text()
    ws.read_text()
    return ws


def assert_failed_with(ws, code):
    assert ws.close_code() == code
    ws.expect_eof()


def test_an_unmasked_frame_is_a_protocol_error(srv):
    ws = opened_client(srv)
    ws.send_frame(OP_TEXT, b"<iq xmlns='jabber:client'/>", mask=False)
    assert_failed_with(ws, 1002)


def test_a_binary_message_is_refused_with_1003(srv):
    ws = opened_client(srv)
    ws.send_frame(OP_BINARY, b"<iq xmlns='jabber:client'/>")
    assert_failed_with(ws, 1003)


def test_invalid_utf8_is_refused_with_1007(srv):
    ws = opened_client(srv)
    ws.send_frame(OP_TEXT, b"<message xmlns='jabber:client'><body>\xc3\x28</body></message>")
    assert_failed_with(ws, 1007)


def test_invalid_utf8_split_across_fragments_is_refused_with_1007(srv):
    ws = opened_client(srv)
    ws.send_frame(OP_TEXT, b"<message xmlns='jabber:client'><body>\xe2\x82", fin=False)
    ws.send_frame(OP_CONT, b"</body></message>")
    assert_failed_with(ws, 1007)


def test_a_message_over_max_stanza_size_is_refused_with_1009(srv):
    ws = opened_client(srv)
    body = "x" * MAX_STANZA
    ws.send_text(f"<message xmlns='jabber:client'><body>{body}</body></message>")
    assert_failed_with(ws, 1009)


def test_fragments_adding_up_to_too_much_are_refused_with_1009(srv):
    ws = opened_client(srv)
    chunk = b"x" * (MAX_STANZA // 3 + 1)
    ws.send_frame(OP_TEXT, b"<message xmlns='jabber:client'><body>", fin=False)
    for _ in range(3):
        ws.send_frame(OP_CONT, chunk, fin=False)
    ws.send_frame(OP_CONT, b"</body></message>")
    assert_failed_with(ws, 1009)


def test_a_message_just_under_the_limit_is_fine(srv):
    x = WSXmpp(srv)
    x.login("alice", resource="big")
    stanza = ("<iq xmlns='jabber:client' type='get' id='big' to='localhost'><ping xmlns='urn:"
              "xmpp:ping'/></iq>")
    padding = " " * (MAX_STANZA - len(stanza))  # white space after the element counts too
    x.send(stanza + padding)
    assert x.next(lambda e: e.get("id") == "big").get("type") == "result"
    x.close()


@pytest.mark.parametrize("name,frames", [
    ("RSV bit without an extension", [frame(OP_TEXT, b"<a/>", rsv=4)]),
    ("continuation with nothing to continue", [frame(OP_CONT, b"<a/>")]),
    ("a new message inside a fragmented one",
     [frame(OP_TEXT, b"<a", fin=False), frame(OP_TEXT, b"<b/>")]),
    ("an unknown opcode", [frame(3, b"")]),
    ("a fragmented ping", [frame(OP_PING, b"x", fin=False)]),
    ("a ping over 125 bytes", [frame(OP_PING, b"x" * 126)]),
])
def test_protocol_errors_close_with_1002(srv, name, frames):
    ws = opened_client(srv)
    ws.send(b"".join(frames))
    assert ws.close_code() == 1002, name
    ws.expect_eof()


def test_fragmented_messages_with_a_ping_between_are_reassembled(srv):
    x = WSXmpp(srv)
    x.login("alice", resource="frag")
    stanza = ("<iq xmlns='jabber:client' type='get' id='frag' to='localhost'><ping xmlns='urn:"
              "xmpp:ping'/></iq>").encode()
    x.ws.send_frame(OP_TEXT, stanza[:10], fin=False)
    x.ws.send_frame(OP_PING, b"between")
    x.ws.send_frame(OP_CONT, stanza[10:30], fin=False)
    x.ws.send_frame(OP_CONT, b"", fin=False)
    x.ws.send_frame(OP_CONT, stanza[30:])
    assert x.ws.read_message() == (OP_PONG, b"between")
    assert x.next(lambda e: e.get("id") == "frag").get("type") == "result"
    x.close()


def test_one_byte_at_a_time(srv):
    """Frames cut at every byte still make whole messages."""
    ws = WSClient(srv).upgrade()
    data = frame(OP_TEXT, f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>".encode())
    for i in range(len(data)):
        ws.send(data[i:i + 1])
        time.sleep(0.002)
    assert ws.read_text().startswith("<open ")


def test_a_websocket_close_without_close_element_ends_the_session(srv):
    x = WSXmpp(srv)
    x.login("alice", resource="abrupt")
    x.ws.send_frame(OP_CLOSE, struct.pack("!H", 1001))
    assert x.ws.close_code() == 1001  # the echo (RFC 6455 §5.5.1)
    x.ws.expect_eof()
    # The resource is gone: a new login with it does not conflict.
    y = WSXmpp(srv)
    assert y.login("alice", resource="abrupt") == "alice@localhost/abrupt"
    y.close()


def test_close_element_and_close_frame_together(srv):
    """A client that sends <close/> and its Close at once still gets our <close/> first."""
    x = WSXmpp(srv)
    x.login("alice", resource="hasty")
    x.ws.send(frame(OP_TEXT, f"<close xmlns='{FRAMING}'/>".encode()) +
              frame(OP_CLOSE, struct.pack("!H", 1000)))
    assert x.ws.read_text() == f"<close xmlns='{FRAMING}'/>"
    assert x.ws.close_code() == 1000
    x.ws.expect_eof()


def test_the_server_closes_if_the_client_never_answers_our_close(srv):
    x = WSXmpp(srv)
    x.open()
    x.send(f"<close xmlns='{FRAMING}'/>")
    assert x.element().tag == F + "close"
    assert x.ws.close_code() == 1000
    t0 = time.monotonic()
    x.ws.expect_eof(timeout=10)  # we never send our Close
    assert time.monotonic() - t0 > 3


def test_a_stopping_server_ends_websocket_streams_with_system_shutdown(tmp_path, pki):
    server = start(tmp_path, pki)
    x = WSXmpp(server)
    x.login("alice")
    server.proc.send_signal(signal.SIGTERM)
    assert x.stream_error() == "system-shutdown"
    server.check_clean_exit()


# ---------------------------------------------------------------- discovery


def get(srv, path, tls):
    if tls:
        ctx = ssl.create_default_context(cafile=str(srv.pki / "ca.crt"))
        conn = http.client.HTTPSConnection("localhost", srv.https_port, timeout=TIMEOUT,
                                           context=ctx)
    else:
        conn = http.client.HTTPConnection("localhost", srv.http_port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("tls", [True, False])
def test_host_meta_lists_the_websocket_endpoint(srv, tls):
    url = (f"wss://localhost:{srv.https_port}/xmpp-websocket" if tls
           else f"ws://localhost:{srv.http_port}/xmpp-websocket")
    status, body = get(srv, "/.well-known/host-meta.json", tls)
    assert status == 200
    assert json.loads(body)["links"] == [
        {"rel": "urn:xmpp:alt-connections:websocket", "href": url}]
    status, body = get(srv, "/.well-known/host-meta", tls)
    assert status == 200
    links = ET.fromstring(body).findall("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")
    assert [(link.get("rel"), link.get("href")) for link in links] == [
        ("urn:xmpp:alt-connections:websocket", url)]
