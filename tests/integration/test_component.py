"""External components (XEP-0114, the component module): a gateway process connects to the
component listener, proves its shared secret and serves a domain of its own.

What a gateway author sees: slixmpp's own ComponentXMPP connects and exchanges messages and
iqs with a user; the host's disco#items lists the domain; a wrong secret, an unknown domain, a
stanza from another domain or without a 'to' end the stream with the RFC's error; a second
connection for the domain replaces the first with <conflict/>. What a user sees: while the
gateway is down, a message or an iq to it bounces with <service-unavailable/>. What keeps the
listener safe: streams that do not authenticate are limited in number and in time."""
import asyncio
import hashlib
import re
import socket
import time

import pytest

from tern_harness import RawStream, TernServer, connect, disconnect, free_port, make_client, run

SECRET = "gw-secret"
TIMEOUT = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    port = free_port()
    srv = TernServer(tmp_path_factory.mktemp("component"), pki,
                     modules="disco ping roster presence component metrics", http=True,
                     extra_config=f"[module component]\nlisten = 127.0.0.1:{port}\n"
                                  "max_unauthenticated = 3\nhandshake_timeout = 2\n"
                                  f"[component gw.localhost]\nsecret = {SECRET}\n"
                                  "[component spare.localhost]\nsecret = other\n"
                                  "[component priv.localhost]\nsecret = priv\n"
                                  "roster = both\nmessage = outgoing\n")
    srv.component_port = port
    srv.add_user("alice@localhost", "alice-secret")
    srv.add_user("bob@localhost", "bob-secret")
    srv.start()
    yield srv
    srv.check_clean_exit()


class RawComponent:
    """A component's side of the protocol over a plain socket."""

    def __init__(self, server, domain):
        self.sock = socket.create_connection(("127.0.0.1", server.component_port),
                                             timeout=TIMEOUT)
        self.buffer = b""
        self.sock.sendall(f"<stream:stream xmlns='jabber:component:accept' "
                          f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
                          .encode())
        m = self.read_until(rb"<stream:stream[^>]*>")
        ident = re.search(rb"id='([^']+)'", m.group(0))
        self.id = ident.group(1).decode() if ident else None

    def read_until(self, pattern, timeout=TIMEOUT):
        regex = re.compile(pattern, re.S)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.buffer)
            if m:
                self.buffer = self.buffer[m.end():]
                return m
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {pattern!r}; got {self.buffer[-500:]!r}"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            assert data, f"closed while waiting for {pattern!r}; got {self.buffer[-500:]!r}"
            self.buffer += data

    def send(self, text):
        self.sock.sendall(text.encode())

    def handshake(self, secret=SECRET):
        digest = hashlib.sha1((self.id + secret).encode()).hexdigest()
        self.send(f"<handshake>{digest}</handshake>")

    def stream_error(self):
        m = self.read_until(rb"<stream:error>\s*<([a-z-]+)")
        return m.group(1).decode()

    def closed(self):
        """Waits until the server closed the connection."""
        self.sock.settimeout(TIMEOUT)
        while True:
            try:
                if not self.sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True

    def close(self):
        self.sock.close()


def connected(server, domain="gw.localhost"):
    c = RawComponent(server, domain)
    c.handshake()
    c.read_until(rb"<handshake/>")
    return c


def test_slixmpp_component_and_client_talk(server):
    """A gateway written with slixmpp's ComponentXMPP: a user's message reaches it and its
    answer from a JID at its domain reaches the user; an iq from the user is answered too."""
    from slixmpp.componentxmpp import ComponentXMPP

    async def body():
        comp = ComponentXMPP("gw.localhost", SECRET, "127.0.0.1", server.component_port)
        comp.register_plugin("xep_0030")
        comp["xep_0030"].add_identity(category="gateway", itype="irc", name="IRC gateway",
                                      jid="gw.localhost")
        started = asyncio.get_running_loop().create_future()
        comp.add_event_handler("session_start",
                               lambda _: started.done() or started.set_result(True))
        comp.add_event_handler(
            "message", lambda m: comp.make_message(mto=m["from"], mfrom=m["to"],
                                                  mbody=f"echo: {m['body']}",
                                                  mtype="chat").send())
        comp.connect()
        await asyncio.wait_for(started, TIMEOUT)

        alice = make_client("alice@localhost/phone", "alice-secret", server,
                            plugins=["xep_0030"])
        await connect(alice, server)
        got = asyncio.get_running_loop().create_future()
        alice.add_event_handler("message",
                                lambda m: got.done() or got.set_result(m))
        alice.send_message(mto="bot@gw.localhost", mbody="hi", mtype="chat")
        reply = await asyncio.wait_for(got, TIMEOUT)
        assert reply["type"] == "chat" and reply["body"] == "echo: hi"
        assert reply["from"].full == "bot@gw.localhost"

        info = await alice["xep_0030"].get_info(jid="gw.localhost", timeout=TIMEOUT)
        assert ("gateway", "irc", None, "IRC gateway") in info["disco_info"]["identities"]
        items = await alice["xep_0030"].get_items(jid="localhost", timeout=TIMEOUT)
        assert "gw.localhost" in [i[0] for i in items["disco_items"]["items"]]
        await disconnect(alice)
        comp.disconnect()
        await asyncio.sleep(0.1)
    run(body())
    server.wait_log("component gw.localhost connected from 127.0.0.1:")


def test_a_wrong_secret_is_not_authorized(server):
    c = RawComponent(server, "gw.localhost")
    c.handshake("guessed")
    assert c.stream_error() == "not-authorized"
    assert c.closed()


def test_an_unknown_domain_is_host_unknown(server):
    c = RawComponent(server, "nobody.localhost")
    assert c.stream_error() == "host-unknown"
    assert c.closed()


def test_stanzas_from_another_domain_or_without_to_end_the_stream(server):
    c = connected(server)
    c.send("<message from='mallory@localhost' to='alice@localhost'><body>x</body></message>")
    assert c.stream_error() == "invalid-from"
    c.close()
    c = connected(server)
    c.send("<message from='bot@gw.localhost'><body>x</body></message>")
    assert c.stream_error() == "improper-addressing"
    c.close()


def test_a_second_connection_replaces_the_first(server):
    first = connected(server)
    second = connected(server)
    assert first.stream_error() == "conflict"
    assert first.closed()
    # The second carries the domain now.
    alice = RawStream(server)
    alice.login("alice", "alice-secret", "desk")
    alice.send("<message to='bot@gw.localhost' id='r1'><body>which one?</body></message>")
    m = second.read_until(rb"<message[^>]*>.*?</message>")
    assert b"which one?" in m.group(0) and b"from='alice@localhost/desk'" in m.group(0)
    alice.close()
    second.close()


def test_while_it_is_down_messages_and_iqs_bounce(server):
    alice = RawStream(server)
    alice.login("alice", "alice-secret", "desk")
    alice.send("<message to='bot@spare.localhost' id='m1'><body>anyone?</body></message>")
    err = alice.read_until(rb"<message[^>]*id='m1'.*?</message>").group(0)
    assert b"type='error'" in err and b"<service-unavailable" in err, err
    alice.send("<iq type='get' id='q1' to='spare.localhost'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    err = alice.read_until(rb"<iq[^>]*id='q1'.*?</iq>").group(0)
    assert b"type='error'" in err and b"<service-unavailable" in err, err
    alice.close()


def test_unauthenticated_streams_are_bounded_in_number_and_time(server):
    waiting = [RawComponent(server, "gw.localhost") for _ in range(3)]
    extra = RawComponent(server, "gw.localhost")
    assert extra.stream_error() == "policy-violation"
    t0 = time.monotonic()
    for c in waiting:
        assert c.stream_error() == "connection-timeout"
        c.close()
    assert time.monotonic() - t0 < 5  # handshake_timeout = 2
    extra.close()
    server.wait_log("too many streams are authenticating")


def test_component_sections_without_the_module_are_reported(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping",
                     extra_config="[component gw.localhost]\nsecret = s\n")
    srv.start()
    srv.wait_log("[component gw.localhost] is unused: no host loads the component module")
    srv.check_clean_exit()


def test_a_privileged_gateway_keeps_rosters_and_sends_for_users(server):
    """XEP-0356 with slixmpp's own plugin: priv.localhost, granted roster = both and
    message = outgoing, is told so when it connects, adds a contact to alice's roster (alice's
    client gets the push and sees it), reads the roster back, and sends a message as alice."""
    from slixmpp.componentxmpp import ComponentXMPP

    async def body():
        loop = asyncio.get_running_loop()
        alice = make_client("alice@localhost/phone", "alice-secret", server)
        await connect(alice, server)
        await alice.get_roster()
        pushed = loop.create_future()
        alice.add_event_handler("roster_update",
                                lambda iq: pushed.done() or pushed.set_result(iq))
        bob = make_client("bob@localhost/desk", "bob-secret", server)
        await connect(bob, server)
        got = loop.create_future()
        bob.add_event_handler("message", lambda m: got.done() or got.set_result(m))

        comp = ComponentXMPP("priv.localhost", "priv", "127.0.0.1", server.component_port)
        # slixmpp addresses privileged messages to server_host, which it takes from the
        # address it connects to: here the address is not the domain.
        comp.server_host = "localhost"
        comp.register_plugin("xep_0356")
        advertised = loop.create_future()
        comp.add_event_handler("privileges_advertised",
                               lambda *_: advertised.done() or advertised.set_result(True))
        comp.connect()
        await asyncio.wait_for(advertised, TIMEOUT)
        assert comp["xep_0356"].granted_privileges["roster"] == "both"
        assert comp["xep_0356"].granted_privileges["message"] == "outgoing"

        await comp["xep_0356"].set_roster("alice@localhost", {
            "friend@irc.example": {"name": "Friend", "subscription": "none",
                                   "groups": ["IRC"]}}, timeout=TIMEOUT)
        await asyncio.wait_for(pushed, TIMEOUT)
        assert "friend@irc.example" in alice.client_roster
        reply = await comp["xep_0356"].get_roster("alice@localhost", timeout=TIMEOUT)
        items = reply["roster"]["items"]
        assert items["friend@irc.example"]["name"] == "Friend"
        assert items["friend@irc.example"]["groups"] == ["IRC"]

        inner = comp.make_message(mto="bob@localhost/desk", mfrom="alice@localhost",
                                  mbody="sent by the gateway", mtype="chat")
        comp["xep_0356"].send_privileged_message(inner)
        msg = await asyncio.wait_for(got, TIMEOUT)
        assert msg["from"] == "alice@localhost" and msg["body"] == "sent by the gateway"
        await disconnect(alice, bob)
        comp.disconnect()
        await asyncio.sleep(0.1)
    run(body())


def test_the_privileges_are_advertised_and_roster_pushes_reach_the_reader(server):
    """XEP-0356 §3: the message that tells the component its privileges; §4.3: a change to
    an account's roster is pushed to the component that reads rosters, as to the account."""
    c = RawComponent(server, "priv.localhost")
    c.handshake("priv")
    c.read_until(rb"<handshake/>")
    m = c.read_until(rb"<message[^>]*>.*?</message>").group(0)
    assert b"from='localhost'" in m and b"to='priv.localhost'" in m, m
    assert b"<privilege xmlns='urn:xmpp:privilege:2'>" in m, m
    assert b"<perm access='roster' type='both'/>" in m, m
    assert b"<perm access='message' type='outgoing'/>" in m, m
    alice = RawStream(server)
    alice.login("alice", "alice-secret", "desk")
    alice.send("<iq type='set' id='rs1'><query xmlns='jabber:iq:roster'>"
               "<item jid='pushed@irc.example' name='Pushed'/></query></iq>")
    alice.read_until(rb"<iq[^>]*id='rs1'")
    push = c.read_until(rb"<iq[^>]*type='set'[^>]*>.*?</iq>").group(0)
    assert b"from='alice@localhost'" in push and b"to='priv.localhost'" in push, push
    assert b"jid='pushed@irc.example'" in push and b"name='Pushed'" in push, push
    alice.close()
    c.close()


def test_without_privileges_rosters_and_messages_are_forbidden(server):
    c = RawComponent(server, "spare.localhost")
    c.handshake("other")
    c.read_until(rb"<handshake/>")
    c.send("<iq type='get' id='r1' from='spare.localhost' to='alice@localhost'>"
           "<query xmlns='jabber:iq:roster'/></iq>")
    err = c.read_until(rb"<iq[^>]*id='r1'.*?</iq>").group(0)
    assert b"type='error'" in err and b"<forbidden" in err, err
    c.send("<message id='p1' from='spare.localhost' to='localhost'>"
           "<privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>"
           "<message xmlns='jabber:client' from='alice@localhost' to='bob@localhost'>"
           "<body>forged</body></message></forwarded></privilege></message>")
    err = c.read_until(rb"<message[^>]*id='p1'.*?</error>").group(0)
    assert b"type='error'" in err and b"<forbidden" in err, err
    c.close()


def test_a_privileged_message_for_another_host_or_a_full_jid_is_forbidden(server):
    c = RawComponent(server, "priv.localhost")
    c.handshake("priv")
    c.read_until(rb"<handshake/>")
    for n, sender in enumerate(["alice@elsewhere.example", "alice@localhost/phone"]):
        c.send(f"<message id='q{n}' from='priv.localhost' to='localhost'>"
               "<privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>"
               f"<message xmlns='jabber:client' from='{sender}' to='bob@localhost'>"
               "<body>x</body></message></forwarded></privilege></message>")
        err = c.read_until(rf"<message[^>]*id='q{n}'.*?</error>".encode()).group(0)
        assert b"<forbidden" in err, err
    c.close()


def figures(server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=TIMEOUT)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {}
    for line in text.splitlines():
        m = re.match(r'(tern_component\w*)\{host="localhost"\} (\d+)$', line)
        if m:
            values[m.group(1)] = int(m.group(2))
    return values


def test_the_components_figures_are_in_metrics(server):
    before = figures(server)
    c = connected(server)
    alice = RawStream(server)
    alice.login("alice", "alice-secret", "desk")
    alice.send("<message to='bot@gw.localhost' id='f1'><body>count me</body></message>")
    c.read_until(rb"count me")
    c.send("<message from='bot@gw.localhost' to='alice@localhost/desk' id='f2'>"
           "<body>and me</body></message>")
    alice.read_until(rb"and me")
    alice.send("<message to='bot@spare.localhost' id='f3'><body>down</body></message>")
    alice.read_until(rb"<message[^>]*id='f3'")
    wrong = RawComponent(server, "gw.localhost")
    wrong.handshake("nope")
    wrong.stream_error()
    after = figures(server)
    assert after["tern_components_connected"] == 1
    for name, grew in [("tern_component_stanzas_out_total", 1),
                       ("tern_component_stanzas_in_total", 1),
                       ("tern_component_bounced_total", 1),
                       ("tern_component_handshake_failures_total", 1)]:
        assert after[name] - before.get(name, 0) == grew, (name, before, after)
    wrong.close()
    alice.close()
    c.close()
