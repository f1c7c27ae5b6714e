"""Someone behind a firewall that lets only HTTP(S) through chats over BOSH (XEP-0124 with
XEP-0206, the bosh module at /http-bind): the same SASL, binding, routing, presence and offline
delivery as a TCP client, and the connection manager's rules as a web client (and an attacker)
meets them: the rid window, in-order processing, resent responses, holding, polling, pause,
inactivity, terminate and the terminal binding conditions.

The BOSH client here is python's http.client over one or two keep-alive connections (a held
request occupies its connection, so a second request needs the other one). The contacts on
TCP are slixmpp clients or ImClient (a raw stream)."""
import asyncio
import base64
import hashlib
import http.client
import json
import random
import ssl
import time
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from tern_harness import TernServer, connect, disconnect, make_client, run
from test_roster import C, ImClient, new_users
from test_subscriptions import befriend

MODULES = "disco ping roster presence offline bosh"
NS_HB = "http://jabber.org/protocol/httpbind"
HB = "{" + NS_HB + "}"
NS_XBOSH = "urn:xmpp:xbosh"
STREAMS = "{http://etherx.jabber.org/streams}"
STREAM_ERRORS = "{urn:ietf:params:xml:ns:xmpp-streams}"
SASL = "{urn:ietf:params:xml:ns:xmpp-sasl}"
ORIGIN = "https://chat.example"
HTTP_TIMEOUT = 20  # longer than any `wait` a test asks for


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    server = TernServer(tmp_path_factory.mktemp("bosh"), pki, modules=MODULES, http=True,
                        http_extra=f"cors_origins = {ORIGIN}\n")
    server.start()
    yield server
    server.check_clean_exit()


# ---------------------------------------------------------------- a BOSH client


class Response:
    def __init__(self, resp):
        self.status = resp.status
        self.content_type = resp.getheader("Content-Type")
        self.raw = resp.read()
        self.root = ET.fromstring(self.raw) if self.raw.startswith(b"<body") else None

    def attr(self, name):
        return self.root.get(name)

    @property
    def children(self):
        return list(self.root)

    @property
    def terminal(self):
        """(type, condition) of the <body/>."""
        return self.root.get("type"), self.root.get("condition")

    def __repr__(self):
        return f"<{self.status} {self.raw!r}>"


class Bosh:
    """One BOSH session: its sid, the rid counter and up to a few keep-alive connections.
    start() sends a request without waiting for its answer, finish() reads it, post() does
    both. Every stanza of every response also lands in `inbox` for collect()."""

    def __init__(self, srv, tls=True):
        self.srv = srv
        self.tls = tls
        self.rid = random.randint(10**6, 10**12)
        self.sid = None
        self.conns = {}
        self.inbox = []

    def conn(self, name):
        if name not in self.conns:
            if self.tls:
                ctx = ssl.create_default_context(cafile=str(self.srv.pki / "ca.crt"))
                self.conns[name] = http.client.HTTPSConnection(
                    "localhost", self.srv.https_port, timeout=HTTP_TIMEOUT, context=ctx)
            else:
                self.conns[name] = http.client.HTTPConnection(
                    "127.0.0.1", self.srv.http_port, timeout=HTTP_TIMEOUT)
        return self.conns[name]

    def drop(self, name):
        """Closes a connection (a client losing it)."""
        self.conns.pop(name).close()

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}

    def body(self, payload="", attrs="", rid=None):
        """A request <body/> with the next rid (or `rid`); returns (rid, text)."""
        if rid is None:
            rid = self.rid
            self.rid += 1
        sid = f" sid='{self.sid}'" if self.sid else ""
        text = (f"<body rid='{rid}'{sid}{attrs} xmlns='{NS_HB}' xmlns:xmpp='{NS_XBOSH}'>"
                f"{payload}</body>")
        return rid, text

    def start_raw(self, text, conn=0):
        if isinstance(text, str):
            text = text.encode()
        self.conn(conn).request("POST", "/http-bind", body=text,
                                headers={"Content-Type": "text/xml; charset=utf-8"})

    def start(self, payload="", attrs="", conn=0, rid=None):
        rid, text = self.body(payload, attrs, rid)
        self.start_raw(text, conn)
        return rid

    def finish(self, conn=0):
        r = Response(self.conn(conn).getresponse())
        if r.root is not None:
            self.inbox.extend(r.children)
        return r

    def post(self, payload="", attrs="", conn=0, rid=None):
        self.start(payload, attrs, conn, rid)
        return self.finish(conn)

    def post_raw(self, text, conn=0):
        self.start_raw(text, conn)
        return self.finish(conn)

    def create(self, to="localhost", wait=10, hold=1, ver="1.11", extra=""):
        ver_attr = f" ver='{ver}'" if ver else ""
        r = self.post(attrs=f" to='{to}' xml:lang='en' wait='{wait}' hold='{hold}'{ver_attr}"
                            f" xmpp:version='1.0'{extra}")
        assert r.status == 200, r
        self.sid = r.attr("sid")
        assert self.sid, r
        return r

    def login(self, user, password, resource="web", **create_args):
        """Session creation, SASL PLAIN, restart, bind; returns the bound JID."""
        self.create(**create_args)
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        r = self.post(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                      f"{token}</auth>")
        assert r.children and r.children[0].tag == SASL + "success", r
        r = self.post(attrs=" to='localhost' xml:lang='en' xmpp:restart='true'")
        features = r.root.find(STREAMS + "features")
        assert features is not None and features.find(
            "{urn:ietf:params:xml:ns:xmpp-bind}bind") is not None, r
        r = self.post("<iq type='set' id='bind1' xmlns='jabber:client'>"
                      "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      f"<resource>{resource}</resource></bind></iq>")
        jid = r.root.find(f"{C}iq/{{urn:ietf:params:xml:ns:xmpp-bind}}bind/"
                          "{urn:ietf:params:xml:ns:xmpp-bind}jid")
        assert jid is not None, r
        self.inbox.clear()
        self.jid = jid.text
        return jid.text

    def collect(self, match, timeout=10):
        """The first stanza (already received or still to come) for which match() holds;
        empty requests are held by the server until something arrives."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.inbox):
                if match(e):
                    return self.inbox.pop(i)
            assert time.monotonic() < deadline, [ET.tostring(e) for e in self.inbox]
            r = self.post()
            assert r.status == 200 and r.terminal == (None, None), r

    def terminate(self, payload=""):
        r = self.post(payload, attrs=" type='terminate'")
        self.close()
        return r


def bosh_request(srv, text, tls=False):
    """One request on a new connection."""
    b = Bosh(srv, tls)
    try:
        return b.post_raw(text)
    finally:
        b.close()


def from_(jid):
    return lambda e: e.get("from") == jid


# ---------------------------------------------------------------- session creation


def test_session_creation_response_has_the_session_rules_and_the_features(srv):
    b = Bosh(srv)
    r = b.create(wait=300, hold=5, ver="1.6", extra=" ack='1'")
    assert r.status == 200 and r.content_type == "text/xml; charset=utf-8"
    # The raw text: the stanza namespace prefix XEP-0206 §3 asks for, declared on the body.
    assert r.raw.startswith(b"<body xmlns='" + NS_HB.encode() + b"'"), r.raw
    assert b"xmlns:stream='http://etherx.jabber.org/streams'" in r.raw
    assert b"<stream:features>" in r.raw
    a = r.root.attrib
    assert len(a["sid"]) >= 16
    assert a["wait"] == "60"          # capped: the client asked 300
    assert a["hold"] == "1"           # capped: the client asked 5
    assert a["requests"] == "2"       # hold + 1
    assert a["polling"] == "2" and a["inactivity"] == "60" and a["maxpause"] == "120"
    assert a["ver"] == "1.6"          # the lower of ours (1.11) and the client's
    assert a["from"] == "localhost" and a["secure"] == "true"
    assert a["ack"] == str(b.rid - 1)  # §9.1: the client asked for acknowledgements
    assert a[f"{{{NS_XBOSH}}}version"] == "1.0"
    assert a[f"{{{NS_XBOSH}}}restartlogic"] == "true"
    assert len(a["authid"]) >= 8      # the stream id (XEP-0206 §4)
    features = r.root.find(STREAMS + "features")
    mechs = [m.text for m in features.find(SASL + "mechanisms")]
    # Over HTTPS: PLAIN and SCRAM, but no -PLUS (no one TLS channel to bind a BOSH session to)
    # and no STARTTLS (HTTPS is the TLS layer).
    assert mechs == ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    assert features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is None
    b.terminate()


def test_the_content_attribute_sets_the_content_type_of_every_response(srv):
    b = Bosh(srv)
    r = b.create(extra=" content='text/html; charset=utf-8'")
    assert r.content_type == "text/html; charset=utf-8"
    r = b.post("<iq type='get' id='p' to='localhost' xmlns='jabber:client'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>")
    assert r.content_type == "text/html; charset=utf-8"
    b.terminate()


@pytest.mark.parametrize("attrs, condition", [
    (" wait='10' hold='1' ver='1.11'", "improper-addressing"),               # no 'to'
    (" to='nowhere.example' wait='10' hold='1' ver='1.11'", "host-unknown"),
])
def test_session_creation_refusals(srv, attrs, condition):
    r = bosh_request(srv, f"<body rid='1234'{attrs} xmlns='{NS_HB}'/>")
    assert r.status == 200 and r.terminal == ("terminate", condition), r


def test_a_body_that_is_not_bosh_is_a_bad_request(srv):
    for text in (b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
                 b"not xml at all", b""):
        r = bosh_request(srv, text)
        assert r.status == 400 and r.terminal == ("terminate", "bad-request"), (text, r)
    # A creation request without a rid.
    r = bosh_request(srv, f"<body to='localhost' ver='1.11' xmlns='{NS_HB}'/>")
    assert r.status == 200 and r.terminal == ("terminate", "bad-request"), r


def test_cors_preflight_for_a_web_page(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=HTTP_TIMEOUT)
    c.request("OPTIONS", "/http-bind", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    resp = c.getresponse()
    resp.read()
    assert resp.status == 204
    assert resp.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert resp.getheader("Access-Control-Allow-Methods") == "POST, OPTIONS"
    c.request("GET", "/http-bind")
    resp = c.getresponse()
    resp.read()
    assert resp.status == 405 and resp.getheader("Allow") == "POST, OPTIONS"
    # The page's requests themselves: answers (held ones too) carry the CORS field.
    c.request("POST", "/http-bind", headers={"Origin": ORIGIN, "Content-Type": "text/xml"},
              body=f"<body rid='77' to='localhost' wait='1' hold='1' ver='1.11' xmlns='{NS_HB}'/>")
    resp = c.getresponse()
    sid = ET.fromstring(resp.read()).get("sid")
    assert resp.getheader("Access-Control-Allow-Origin") == ORIGIN and sid
    c.request("POST", "/http-bind", headers={"Origin": ORIGIN},
              body=f"<body rid='78' sid='{sid}' xmlns='{NS_HB}'/>")
    resp = c.getresponse()
    assert resp.read() == f"<body xmlns='{NS_HB}'/>".encode()  # after `wait`
    assert resp.getheader("Access-Control-Allow-Origin") == ORIGIN
    c.request("POST", "/http-bind", headers={"Origin": ORIGIN},
              body=f"<body rid='79' sid='{sid}' type='terminate' xmlns='{NS_HB}'/>")
    resp = c.getresponse()
    resp.read()
    assert resp.getheader("Access-Control-Allow-Origin") == ORIGIN
    c.close()


def test_host_meta_lists_the_bosh_endpoint(srv):
    for tls, scheme, port in ((False, "http", srv.http_port), (True, "https", srv.https_port)):
        b = Bosh(srv, tls)
        c = b.conn(0)
        c.request("GET", "/.well-known/host-meta.json")
        resp = c.getresponse()
        host = "localhost" if tls else "127.0.0.1"
        assert json.loads(resp.read()) == {"links": [{
            "rel": "urn:xmpp:alt-connections:xbosh", "href": f"{scheme}://{host}:{port}/http-bind"}]}
        c.request("GET", "/.well-known/host-meta")
        root = ET.fromstring(c.getresponse().read())
        link = root.find("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")
        assert link.get("rel") == "urn:xmpp:alt-connections:xbosh"
        assert link.get("href") == f"{scheme}://{host}:{port}/http-bind"
        b.close()


# ---------------------------------------------------------------- authentication


def test_over_plain_http_there_is_no_authentication(srv):
    """[c2s] require_tls (the default): over http:// no mechanism is offered and PLAIN is
    refused, as on a TCP stream without TLS."""
    b = Bosh(srv, tls=False)
    r = b.create()
    assert r.root.attrib["secure"] == "true"  # CM to server: tern is its own server
    assert r.root.find(f"{STREAMS}features/{SASL}mechanisms") is None, r
    token = base64.b64encode(b"\0alice\0alice-secret").decode()
    r = b.post(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    failure = r.root.find(SASL + "failure")
    assert failure is not None and failure.find(SASL + "encryption-required") is not None, r
    b.terminate()


def test_a_session_created_over_https_refuses_plain_http(srv):
    """XEP-0124 §16.1: every request of a secure session must be encrypted; a plain one is
    refused without ending the session."""
    user, = new_users(srv, "carol")
    b = Bosh(srv)
    b.login(user, "secret")
    plain = Bosh(srv, tls=False)
    plain.sid = b.sid
    r = plain.post(rid=b.rid)
    assert r.status == 403 and r.root is None, r
    plain.close()
    r = b.post("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert r.children[0].get("id") == "p" and r.children[0].get("type") == "result", r
    b.terminate()


def test_wrong_password_is_a_sasl_failure_after_the_delay(srv):
    user, = new_users(srv, "dave")
    b = Bosh(srv)
    b.create()
    token = base64.b64encode(f"\0{user}\0wrong".encode()).decode()
    started = time.monotonic()
    r = b.post(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    assert time.monotonic() - started >= 0.9  # the c2s delay after a failed attempt
    assert r.root.find(f"{SASL}failure/{SASL}not-authorized") is not None, r
    token = base64.b64encode(f"\0{user}\0secret".encode()).decode()
    r = b.post(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    assert r.children[0].tag == SASL + "success", r
    b.terminate()


# ---------------------------------------------------------------- the user story


def test_a_web_user_chats_with_a_tcp_user(srv):
    """alice on BOSH (HTTPS), bob on TCP (slixmpp), friends: each sees the other's presence,
    messages go both ways, and alice's goodbye reaches bob."""
    a, b = new_users(srv, "alice", "bob")
    befriend(srv, a, b)
    A, B = f"{a}@localhost", f"{b}@localhost"

    async def body():
        bob = await connect(make_client(f"{B}/tcp", "secret", srv), srv)
        alice = Bosh(srv)
        jid = await asyncio.to_thread(alice.login, a, "secret", "web")
        assert jid == f"{A}/web"
        r = await asyncio.to_thread(alice.post, "<iq type='get' id='roster1'>"
                                                "<query xmlns='jabber:iq:roster'/></iq>")
        roster = await asyncio.to_thread(alice.collect, lambda e: e.get("id") == "roster1")
        items = roster.findall("{jabber:iq:roster}query/{jabber:iq:roster}item")
        assert [(i.get("jid"), i.get("subscription")) for i in items] == [(B, "both")]

        online = next_event(bob, "presence_available", lambda p: str(p["from"]) == f"{A}/web")
        await asyncio.to_thread(alice.post, "<presence><status>on the web</status></presence>")
        assert (await online)["status"] == "on the web"
        # bob's presence reaches alice (the answer to her probe).
        p = await asyncio.to_thread(alice.collect, lambda e: e.tag == C + "presence"
                                    and e.get("from") == f"{B}/tcp")
        assert p.get("type") is None

        # alice's message goes out on a request that the server then holds (nothing comes
        # back at once); bob's answer arrives in its response.
        got = next_event(bob, "message", lambda m: m["body"] == "hello from the browser")
        await asyncio.to_thread(alice.start, f"<message to='{B}' type='chat'>"
                                             "<body>hello from the browser</body></message>")
        m = await got
        assert str(m["from"]) == f"{A}/web" and m["type"] == "chat"
        bob.send_message(mto=f"{A}/web", mbody="hello from TCP", mtype="chat")
        r = await asyncio.to_thread(alice.finish)
        reply, = [e for e in r.children if e.tag == C + "message"]
        assert reply.get("from") == f"{B}/tcp" and reply.get("to") == f"{A}/web"
        assert reply.findtext(C + "body") == "hello from TCP"

        gone = next_event(bob, "presence_unavailable", lambda p: str(p["from"]) == f"{A}/web")
        r = await asyncio.to_thread(alice.terminate, "<presence type='unavailable'/>")
        assert r.terminal == ("terminate", None), r
        await gone
        await disconnect(bob)
    run(body())


def next_event(client, name, predicate, timeout=10):
    """A future for the next slixmpp event `name` matching predicate (listening from now on,
    since the BOSH side runs in a thread meanwhile)."""
    fut = asyncio.get_running_loop().create_future()

    def handler(stanza):
        if not fut.done() and predicate(stanza):
            fut.set_result(stanza)
    client.add_event_handler(name, handler)

    async def wait():
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            client.del_event_handler(name, handler)
    return asyncio.ensure_future(wait())


def test_offline_messages_reach_a_bosh_session(srv):
    a, b = new_users(srv, "alice", "bob")
    bob = ImClient(srv, b)
    bob.send(f"<message to='{a}@localhost' type='chat' id='m1'><body>while you were out</body>"
             "</message>")
    bob.sync()
    alice = Bosh(srv)
    alice.login(a, "secret")
    alice.post("<presence/>")
    m = alice.collect(lambda e: e.tag == C + "message")
    assert m.findtext(C + "body") == "while you were out"
    assert m.get("from") == f"{b}@localhost/res"
    assert m.find("{urn:xmpp:delay}delay") is not None
    alice.terminate()
    bob.close()


def test_stanzas_in_the_body_namespace_are_jabber_client(srv):
    """XEP-0206 §3: clients may leave <iq/> in the body's default namespace."""
    user, = new_users(srv, "erin")
    b = Bosh(srv)
    b.login(user, "secret")
    r = b.post("<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>")
    assert r.raw.count(b"xmlns='jabber:client'") == 1, r.raw  # ours are always qualified
    iq = r.children[0]
    assert iq.tag == C + "iq" and iq.get("id") == "v1", r
    b.terminate()


# ---------------------------------------------------------------- rids


def test_requests_out_of_order_are_processed_in_rid_order(srv):
    a, b = new_users(srv, "alice", "bob")
    bob = ImClient(srv, b)
    alice = Bosh(srv)
    alice.login(a, "secret", wait=3)
    first, second = alice.rid, alice.rid + 1
    to = f"{b}@localhost/res"
    # rid+1 arrives first: it waits for rid, which then goes first.
    alice.start(f"<message to='{to}'><body>second</body></message>", conn=1, rid=second)
    time.sleep(0.3)
    bob.sync()
    assert not [e for e in bob.queue if e.tag == C + "message"], "processed out of order"
    alice.start(f"<message to='{to}'><body>first</body></message>", conn=0, rid=first)
    alice.rid += 2
    m1 = bob.next(lambda e: e.tag == C + "message")
    m2 = bob.next(lambda e: e.tag == C + "message")
    assert [m1.findtext(C + "body"), m2.findtext(C + "body")] == ["first", "second"]
    # rid is pushed out at once (only one request is held), rid+1 after `wait`.
    r1 = alice.finish(conn=0)
    assert r1.status == 200 and r1.children == [] and r1.terminal == (None, None), r1
    started = time.monotonic()
    r2 = alice.finish(conn=1)
    assert r2.status == 200 and r2.children == [], r2
    assert 1.5 < time.monotonic() - started < 6
    alice.terminate()
    bob.close()


def test_a_repeated_rid_gets_the_same_response(srv):
    user, = new_users(srv, "frank")
    b = Bosh(srv)
    b.login(user, "secret")
    rid, text = b.body("<iq type='get' id='again' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
                       "</iq>")
    first = b.post_raw(text)
    assert first.children[0].get("id") == "again"
    second = b.post_raw(text, conn=1)  # the client lost the first answer and resends
    assert (second.status, second.raw) == (200, first.raw)
    # Still the same session: the next rid goes on.
    r = b.post("<iq type='get' id='next' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert r.children[0].get("id") == "next"
    b.terminate()


def test_a_request_whose_connection_broke_can_be_resent(srv):
    """The held request's connection goes away; the resent request gets its (empty) answer,
    and what arrived meanwhile waits for the next request."""
    a, c = new_users(srv, "alice", "carl")
    carl = ImClient(srv, c)
    alice = Bosh(srv)
    alice.login(a, "secret")
    rid, text = alice.body()
    alice.start_raw(text, conn=0)
    time.sleep(0.3)
    alice.drop(0)  # the client loses its connection with the request held
    time.sleep(0.3)
    carl.send(f"<message to='{alice.jid}'><body>meanwhile</body></message>")
    carl.sync()
    r = alice.post_raw(text, conn=1)
    assert r.status == 200 and r.children == [] and r.terminal == (None, None), r
    m = alice.collect(lambda e: e.tag == C + "message")
    assert m.findtext(C + "body") == "meanwhile"
    alice.terminate()
    carl.close()


def test_a_rid_no_longer_kept_is_item_not_found(srv):
    user, = new_users(srv, "gina")
    b = Bosh(srv)
    b.login(user, "secret")
    old = b.rid - 4  # the auth request: answered long ago, no longer kept
    r = b.post(rid=old)
    assert r.status == 200 and r.terminal == ("terminate", "item-not-found"), r
    r = b.post()
    assert r.status == 404 and r.terminal == ("terminate", "item-not-found"), r
    b.close()


def test_a_rid_beyond_the_window_ends_the_session(srv):
    user, = new_users(srv, "hank")
    b = Bosh(srv)
    b.login(user, "secret")
    r = b.post(rid=b.rid + 2)  # the window is 'requests' (2) wide: rid and rid+1
    assert r.status == 200 and r.terminal == ("terminate", "item-not-found"), r
    r = b.post()
    assert r.status == 404 and r.terminal == ("terminate", "item-not-found"), r
    b.close()


def test_an_unknown_sid_is_404_item_not_found(srv):
    r = bosh_request(srv, f"<body rid='42' sid='no-such-session' xmlns='{NS_HB}'/>")
    assert r.status == 404 and r.content_type == "text/xml; charset=utf-8"
    assert r.raw == (f"<body xmlns='{NS_HB}' type='terminate' condition='item-not-found'/>"
                     .encode())


def test_a_legacy_client_gets_http_error_codes(srv):
    """XEP-0124 §17.1: without 'ver' in the creation request, the starred conditions come as
    HTTP errors."""
    user, = new_users(srv, "ivan")
    b = Bosh(srv)
    r = b.create(ver=None)
    assert "ver" in r.root.attrib
    r = b.post(rid=b.rid + 5)
    assert r.status == 404 and r.terminal == ("terminate", "item-not-found"), r
    b.close()


def test_keys_protect_an_insecure_session(srv):
    """XEP-0124 §15: each request's key hashes to the previous one; a wrong key ends the
    session, and its payloads are not processed."""
    keys = ["seed"]
    for _ in range(5):
        keys.append(hashlib.sha1(keys[-1].encode()).hexdigest())
    b = Bosh(srv, tls=False)
    b.create(wait=1, extra=f" newkey='{keys[5]}'")
    r = b.post(attrs=f" key='{keys[4]}'")
    assert r.terminal == (None, None), r
    r = b.post(attrs=f" key='{keys[3]}'")
    assert r.terminal == (None, None), r
    # Skips one. Its payload would be a stream error (before authentication) if processed.
    r = b.post("<message to='x@localhost'/>", attrs=f" key='{keys[1]}'")
    assert r.terminal == ("terminate", "item-not-found") and r.children == [], r
    assert b.post(attrs=f" key='{keys[2]}'").status == 404
    b.close()


# ---------------------------------------------------------------- holding and polling


def test_a_second_request_pushes_the_held_one_out(srv):
    """hold='1': when a second request arrives, the held one is answered at once (empty when
    nothing waits for the client; otherwise with it, since answers go in rid order)."""
    a, c = new_users(srv, "jack", "cleo")
    cleo = ImClient(srv, c)
    b = Bosh(srv)
    b.login(a, "secret", wait=2)
    b.start(conn=0)
    time.sleep(0.3)
    started = time.monotonic()
    b.start(f"<message to='{c}@localhost/res'><body>one</body></message>", conn=1)
    held = b.finish(conn=0)
    assert time.monotonic() - started < 1.5
    assert held.status == 200 and held.raw == f"<body xmlns='{NS_HB}'/>".encode(), held
    r = b.finish(conn=1)  # now the held one: answered after `wait`
    assert r.raw == f"<body xmlns='{NS_HB}'/>".encode() and time.monotonic() - started > 1.5
    assert cleo.next(lambda e: e.tag == C + "message").findtext(C + "body") == "one"
    # With something for the client, the pushed-out request carries it.
    b.start(conn=0)
    time.sleep(0.3)
    b.start("<iq type='get' id='h' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", conn=1)
    held = b.finish(conn=0)
    assert [e.get("id") for e in held.children] == ["h"], held
    assert b.finish(conn=1).children == []
    b.terminate()
    cleo.close()


def test_a_held_request_is_answered_empty_after_wait(srv):
    user, = new_users(srv, "kate")
    b = Bosh(srv)
    b.login(user, "secret", wait=1)
    started = time.monotonic()
    r = b.post()
    assert 0.8 < time.monotonic() - started < 4
    assert r.status == 200 and r.raw == f"<body xmlns='{NS_HB}'/>".encode()
    b.terminate()


def test_empty_requests_too_often_are_a_policy_violation(srv):
    user, = new_users(srv, "liam")
    b = Bosh(srv)
    b.login(user, "secret")
    b.start(conn=0)  # held
    r = b.post(conn=1)  # a second empty one right away: nothing to carry, too soon
    assert r.terminal == ("terminate", "policy-violation"), r
    held = b.finish(conn=0)
    assert held.terminal == ("terminate", "policy-violation"), held
    r = b.post()
    assert r.status == 404, r
    b.close()


def test_too_many_simultaneous_requests_are_a_policy_violation(srv):
    """§11: 'requests' (2) open at once; a third is a violation, unless it terminates."""
    for last, expected in (("", "policy-violation"), (" type='terminate'", None)):
        user, = new_users(srv, "mia")
        b = Bosh(srv)
        b.login(user, "secret", wait=10)
        rid = b.rid
        b.start(conn=0, rid=rid)          # held
        time.sleep(0.2)
        # rid + 2 waits for rid + 1: open as well. (Not empty: two empty requests in a row
        # would be polling too often, a violation of their own.)
        b.start("<iq type='get' id='x' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
                conn=1, rid=rid + 2)
        time.sleep(0.2)
        r = b.post(attrs=last, conn=2, rid=rid + 1)
        assert r.terminal == ("terminate", expected), (last, r)
        for conn in (0, 1):
            other = b.finish(conn=conn)
            assert other.terminal == ("terminate", expected), (last, conn, other)
        b.close()


def test_polling_sessions(srv):
    """hold='0': every request is answered at once; two empty ones within 'polling' seconds
    whose first answer was empty are a policy violation (§13)."""
    user, = new_users(srv, "nina")
    b = Bosh(srv)
    b.login(user, "secret", hold=0)
    started = time.monotonic()
    r = b.post()
    assert r.terminal == (None, None) and r.children == [], r
    assert time.monotonic() - started < 1
    time.sleep(2.2)
    r = b.post()  # after 'polling' seconds: fine
    assert r.terminal == (None, None), r
    r = b.post()  # at once, and the last answer was empty
    assert r.terminal == ("terminate", "policy-violation"), r
    b.close()


# ---------------------------------------------------------------- pause, inactivity, the end


def test_pause_answers_at_once_and_a_short_pause_ends_an_idle_session(srv):
    """§12: pause answers every held request; the client may also ask for less than the
    inactivity period, after which a session without requests is over (and its c2s session
    with it: its contact sees it go)."""
    a, b = new_users(srv, "alice", "bob")
    befriend(srv, a, b)
    bob = ImClient(srv, b, roster=True, presence="<presence/>")
    alice = Bosh(srv)
    alice.login(a, "secret")
    alice.post("<presence/>")
    bob.presence(f"{a}@localhost/web", "available")
    alice.start(conn=0)  # held
    time.sleep(0.2)
    started = time.monotonic()
    r = alice.post(attrs=" pause='2'", conn=1)
    assert r.status == 200 and r.children == [] and r.terminal == (None, None), r
    held = alice.finish(conn=0)
    assert held.status == 200 and held.terminal == (None, None), held
    assert time.monotonic() - started < 1.5
    # Nothing more from alice: 2 s later her session ends and bob hears it.
    gone = bob.presence(f"{a}@localhost/web", "unavailable", timeout=8)
    assert gone is not None
    assert time.monotonic() - started >= 1.8
    r = alice.post()
    assert r.status == 404 and r.terminal == ("terminate", "item-not-found"), r
    alice.close()
    bob.close()


def test_terminate_processes_its_payloads_then_ends_the_session(srv):
    a, c = new_users(srv, "alice", "cleo")
    cleo = ImClient(srv, c)
    alice = Bosh(srv)
    alice.login(a, "secret")
    alice.start(conn=0)  # a held request gets the end too
    time.sleep(0.2)
    r = alice.post(f"<message to='{c}@localhost/res'><body>bye</body></message>",
                   attrs=" type='terminate'", conn=1)
    assert r.status == 200 and r.raw == (f"<body xmlns='{NS_HB}' type='terminate'/>").encode()
    held = alice.finish(conn=0)
    assert held.terminal == ("terminate", None), held
    m = cleo.next(lambda e: e.tag == C + "message")
    assert m.findtext(C + "body") == "bye" and m.get("from") == f"{a}@localhost/web"
    r = alice.post()
    assert r.status == 404
    alice.close()
    cleo.close()


def test_a_stream_error_is_a_remote_stream_error(srv):
    """XEP-0206 §6: a stream error ends the session; the held request carries it, after the
    stanzas queued before it. Here: the same resource logs in over TCP (conflict)."""
    user, = new_users(srv, "olga")
    b = Bosh(srv)
    b.login(user, "secret")
    b.start()
    time.sleep(0.2)
    tcp = ImClient(srv, user, resource="web")
    r = b.finish()
    assert r.terminal == ("terminate", "remote-stream-error"), r
    assert b"xmlns:stream='http://etherx.jabber.org/streams'" in r.raw
    err = r.root.find(STREAMS + "error")
    assert err is not None and err.find(STREAM_ERRORS + "conflict") is not None, r
    r = b.post()
    assert r.status == 404
    b.close()
    tcp.close()


def test_the_stream_restarts_only_after_authentication(srv):
    """XEP-0206 §5: xmpp:restart comes after <success/>, and nothing else does."""
    b = Bosh(srv)
    b.create()
    r = b.post(attrs=" to='localhost' xmpp:restart='true'")
    assert r.terminal == ("terminate", "remote-stream-error"), r
    assert r.root.find(f"{STREAMS}error/{STREAM_ERRORS}bad-format") is not None, r
    b.close()
    user, = new_users(srv, "ruth")
    b = Bosh(srv)
    b.create()
    token = base64.b64encode(f"\0{user}\0secret".encode()).decode()
    r = b.post(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    assert r.children[0].tag == SASL + "success", r
    r = b.post("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert r.terminal == ("terminate", "remote-stream-error"), r
    assert r.root.find(f"{STREAMS}error/{STREAM_ERRORS}bad-format") is not None, r
    b.close()


def test_output_the_client_does_not_collect_is_bounded(srv):
    """Stanzas wait for the client's next request, but not without limit: past 1 MiB the
    session ends with a policy-violation stream error."""
    a, c = new_users(srv, "alice", "cora")
    alice = Bosh(srv)
    alice.login(a, "secret")   # and then no request: nothing collects what arrives
    cora = ImClient(srv, c)
    big = "x" * 250000
    for i in range(5):
        cora.send(f"<message to='{alice.jid}' id='big{i}'><body>{big}</body></message>")
    cora.sync()
    r = alice.post()
    assert r.terminal == ("terminate", "remote-stream-error"), r.raw[:300]
    assert r.root.find(f"{STREAMS}error/{STREAM_ERRORS}policy-violation") is not None
    assert r.root.find(C + "message") is None
    assert alice.post().status == 404
    alice.close()
    cora.close()


def test_a_resent_request_that_is_still_open_gets_the_same_answer(srv):
    a, c = new_users(srv, "alice", "cy")
    cy = ImClient(srv, c)
    alice = Bosh(srv)
    alice.login(a, "secret")
    rid, text = alice.body()
    alice.start_raw(text, conn=0)
    time.sleep(0.2)
    alice.start_raw(text, conn=1)  # the same request again, the first one still open
    time.sleep(0.2)
    cy.send(f"<message to='{alice.jid}'><body>to both</body></message>")
    first, second = alice.finish(conn=0), alice.finish(conn=1)
    assert first.raw == second.raw and first.status == second.status == 200
    assert first.root.find(C + "message").findtext(C + "body") == "to both"
    alice.terminate()
    cy.close()


def test_a_payload_before_authentication_is_a_stream_error(srv):
    b = Bosh(srv)
    b.create()
    r = b.post("<message to='alice@localhost'><body>hi</body></message>")
    assert r.terminal == ("terminate", "remote-stream-error"), r
    assert r.root.find(f"{STREAMS}error/{STREAM_ERRORS}not-authorized") is not None, r
    b.close()


@pytest.mark.parametrize("payload", [
    "<!-- a comment -->",
    "<?pi data?>",
    "<message><body>not closed</message>",
    "text in the body",
])
def test_restricted_or_broken_xml_is_a_bad_request(srv, payload):
    """XEP-0124 §4 forbids in a body what RFC 6120 forbids on a stream."""
    b = Bosh(srv)
    b.create()
    r = b.post(payload)
    assert r.status == 200 and r.terminal == ("terminate", "bad-request"), r
    assert b.post().status == 404
    b.close()


def test_a_dtd_is_refused(srv):
    b = Bosh(srv)
    b.create()
    r = b.post_raw(f"<!DOCTYPE body [<!ENTITY x 'boom'>]><body rid='{b.rid}' sid='{b.sid}' "
                   f"xmlns='{NS_HB}'>&x;</body>")
    assert r.status == 400 and r.terminal == ("terminate", "bad-request"), r
    b.close()


def test_a_stanza_over_max_stanza_size_is_a_policy_violation(srv):
    user, = new_users(srv, "pete")
    b = Bosh(srv)
    b.login(user, "secret")
    big = "x" * 300000  # [c2s] max_stanza_size is 262144 by default
    r = b.post(f"<message to='{user}@localhost'><body>{big}</body></message>")
    assert r.terminal == ("terminate", "remote-stream-error"), r
    assert r.root.find(f"{STREAMS}error/{STREAM_ERRORS}policy-violation") is not None, r
    b.close()


def test_acks_report_the_highest_rid_received_in_order(srv):
    user, = new_users(srv, "quin")
    b = Bosh(srv)
    b.login(user, "secret", wait=2, extra=" ack='1'")
    b.start(conn=0)
    time.sleep(0.2)
    newer = b.start("<iq type='get' id='a' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
                    conn=1)
    held = b.finish(conn=0)
    # §9.1: the held request's answer acknowledges the newer one (it carries the pong, since
    # answers go in rid order); the newer one's own answer has no ack: it would be its own rid.
    assert held.attr("ack") == str(newer) and held.children[0].get("id") == "a", held
    r = b.finish(conn=1)
    assert r.attr("ack") is None and r.children == [], r
    b.terminate()


# ---------------------------------------------------------------- shutdown


def test_a_stopping_server_ends_bosh_sessions(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules=MODULES, http=True)
    srv.add_user("rose@localhost", "secret")
    srv.start()
    held = Bosh(srv)
    held.login("rose", "secret", resource="one")
    held.start()
    idle = Bosh(srv)
    idle.login("rose", "secret", resource="two")
    time.sleep(0.2)
    srv.check_clean_exit()
    # An idle session (no request to answer) does not hold the stop up for the grace time
    # (3 s): the log's own clock, so a slow exit under a sanitizer does not count.
    stamps = {}
    for line in srv.log_text().splitlines():
        word = line.split(" ")[-1]
        if word in ("stopping", "stopped"):
            stamps[word] = datetime.strptime(line.split(" ")[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert (stamps["stopped"] - stamps["stopping"]).total_seconds() < 2, stamps
    r = held.finish()
    assert r.terminal == ("terminate", "remote-stream-error"), r
    assert r.root.find(f"{STREAMS}error/{STREAM_ERRORS}system-shutdown") is not None, r
    held.close()
    idle.close()
