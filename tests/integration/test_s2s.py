"""Federation between two ternd servers: alice@a.test and bob@b.test, each server on its own
port of 127.0.0.1, finding the other through SRV records served by a test dnsmasq that both
reach via [server] dns_servers. Links use STARTTLS and Server Dialback (XEP-0220).

Checks what users see: messages both ways, presence subscription across domains, and the
errors for a domain that does not exist, one whose server refuses connections and one whose
server never answers; and what a peer sees: STARTTLS required, a forged dialback key refused,
and a 'from' it has not authenticated refused with <invalid-from/>."""
import re
import shutil
import socket
import subprocess
import time

import pytest

from s2s_interop import (chat_both_ways, chats_in_a_row, next_event, see_go_offline,
                         subscribe_and_see_available)
from tern_harness import (ECHO_MODULE, MODULES as MODULE_DIR, RawStream, TernServer,
                          build_module_dir, connect, disconnect, free_port, make_client,
                          make_pki, run)

pytestmark = pytest.mark.skipif(shutil.which("dnsmasq") is None and
                                not __import__("os").path.exists("/usr/sbin/dnsmasq"),
                                reason="dnsmasq is not installed")

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
ALICE = ("alice@a.test", "alice-secret")
BOB = ("bob@b.test", "bob-secret")
CAROL = ("carol@c.test", "carol-secret")
MODULES = "disco ping roster presence s2s"

# A service at echo.a.test, served by a module of a.test (tern_serve_domain()).
ECHO_SOURCE = ECHO_MODULE.replace("NAME", "echo").replace("DOMAIN", "echo.a.test").replace(
    "EXTRA", "")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Federation:
    """A test DNS server, two federated ternd and two unhelpful 'servers'."""

    def __init__(self, folder):
        self.pki = folder / "pki"
        make_pki(self.pki, hosts=("a.test", "b.test", "c.test"))
        # c.test has no DNS record: a.test reaches it by a static route ([s2s] routes).
        self.s2s_port = {"a.test": free_port(), "b.test": free_port(), "c.test": free_port()}
        self.closed_port = free_port()            # nothing listens here: refused
        self.silent = socket.socket()             # accepts TCP, never says a word
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(8)
        self.dns_port = free_udp_port()
        records = []
        for name, port in [("a.test", self.s2s_port["a.test"]),
                           ("echo.a.test", self.s2s_port["a.test"]),
                           ("b.test", self.s2s_port["b.test"]),
                           ("closed.test", self.closed_port),
                           ("silent.test", self.silent.getsockname()[1])]:
            records += [f"--srv-host=_xmpp-server._tcp.{name},xmpp.{name},{port},0,5",
                        f"--host-record=xmpp.{name},127.0.0.1"]
        self.dns_log = folder / "dnsmasq.log"
        self.dns = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
             "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
             f"--port={self.dns_port}", "--local=/test/", "--user=root", "--log-queries",
             f"--log-facility={self.dns_log}", *records],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_dns()
        self.servers = {}
        echo_modules = build_module_dir(folder / "modules-a", "echo", ECHO_SOURCE)
        for domain, user in [("a.test", ALICE), ("b.test", BOB), ("c.test", CAROL)]:
            modules = MODULES + (" echo" if domain == "a.test" else "")
            route = (f"routes = c.test=127.0.0.1:{self.s2s_port['c.test']}\n"
                     if domain == "a.test" else "")
            srv = TernServer(folder / domain, self.pki, hosts=(domain,), modules=modules,
                             extra_config=f"dns_servers = 127.0.0.1:{self.dns_port}\n"
                                          f"[s2s]\nlisten = 127.0.0.1:{self.s2s_port[domain]}\n"
                                          + route)
            if domain == "a.test":
                srv.config.write_text(srv.config.read_text().replace(
                    f"module_dir = {MODULE_DIR}", f"module_dir = {echo_modules}"))
            srv.add_user(user[0], user[1])
            self.servers[domain] = srv.start()

    def _wait_dns(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.dns.poll() is not None:
                raise AssertionError(f"dnsmasq exited: {self.dns.stderr.read()!r}")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", self.dns_port))
                except OSError:
                    return  # bound by dnsmasq
            time.sleep(0.05)
        raise AssertionError("dnsmasq did not start")

    def close(self):
        try:
            for srv in self.servers.values():
                srv.check_clean_exit()
        finally:
            self.dns.terminate()
            self.dns.wait(5)
            self.silent.close()


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    f = Federation(tmp_path_factory.mktemp("s2s"))
    yield f
    f.close()


def clients(fed, **kw):
    a, b = fed.servers["a.test"], fed.servers["b.test"]
    return (make_client(ALICE[0] + "/phone", ALICE[1], a, **kw),
            make_client(BOB[0] + "/laptop", BOB[1], b, **kw), a, b)


def test_messages_both_ways(fed):
    async def body():
        alice, bob, a, b = clients(fed)
        await connect(alice, a)
        await connect(bob, b)
        await chat_both_ways(alice, "alice@a.test/phone", bob, "bob@b.test/laptop",
                             "hello from a", "hello from b")
        # Several stanzas in a row arrive over the established link.
        await chats_in_a_row(alice, bob, "bob@b.test")
        # An iq across the link: ping bob's client, answered by slixmpp.
        bob.register_plugin("xep_0199")
        alice.register_plugin("xep_0199")
        reply = await alice["xep_0199"].send_ping("bob@b.test/laptop", timeout=10)
        assert reply["type"] == "result"
        await disconnect(alice, bob)
    run(body())
    # One link each way, dialback-authenticated; A's key was checked by B over B's link.
    assert "link a.test -> b.test is authenticated (dialback)" in fed.servers["a.test"].log_text()
    assert "link b.test -> a.test is authenticated (dialback)" in fed.servers["b.test"].log_text()
    assert fed.servers["a.test"].log_text().count("new link a.test -> b.test") == 1


def test_a_domain_a_module_serves_is_reached_from_another_server(fed):
    """bob@b.test writes to bot@echo.a.test, a domain a module of a.test serves: b.test finds
    a.test through echo.a.test's SRV record, a.test accepts the stream and the dialback for
    it, and the answer comes back from bot@echo.a.test on a link of its own, which b.test
    verifies by dialback against echo.a.test."""
    async def body():
        _, bob, _, b = clients(fed)
        await connect(bob, b)
        got = next_event(bob, "message", predicate=lambda m: m["from"].bare == "bot@echo.a.test")
        bob.send_message(mto="bot@echo.a.test/x", mbody="ping the echo", mtype="chat")
        reply = await got
        assert reply["type"] == "chat", reply  # an error would carry the body back too
        assert reply["body"] == "ping the echo" and reply["from"] == "bot@echo.a.test/x"
        await disconnect(bob)
    run(body())
    a_log = fed.servers["a.test"].log_text()
    assert "new link echo.a.test -> b.test" in a_log, a_log[-3000:]
    assert "link b.test -> echo.a.test is authenticated (dialback)" in \
        fed.servers["b.test"].log_text()


def test_a_static_route_reaches_a_domain_without_dns(fed):
    """[s2s] routes sends c.test, which has no SRV or address record, to a fixed host:port:
    alice@a.test and carol@c.test talk both ways (c.test finds a.test through DNS)."""
    async def body():
        alice, _, a, _ = clients(fed)
        c = fed.servers["c.test"]
        carol = make_client(CAROL[0] + "/tablet", CAROL[1], c)
        await connect(alice, a)
        await connect(carol, c)
        await chat_both_ways(alice, "alice@a.test/phone", carol, "carol@c.test/tablet",
                             "over the static route", "and back")
        await disconnect(alice, carol)
    run(body())
    port = fed.s2s_port["c.test"]
    assert f"dns: c.test has a static route to 127.0.0.1 port {port}" in \
        fed.servers["a.test"].log_text()


def test_message_to_unknown_user_on_remote_server(fed):
    async def body():
        alice, _, a, _ = clients(fed)
        await connect(alice, a)
        got = next_event(alice, "message", predicate=lambda m: m["type"] == "error")
        alice.send_message(mto="nobody@b.test", mbody="anyone?", mtype="chat")
        err = await got
        assert err["error"]["condition"] == "service-unavailable"
        assert str(err["from"]) == "nobody@b.test"
        await disconnect(alice)
    run(body())


def test_presence_subscription_across_domains(fed):
    async def body():
        alice, bob, a, b = clients(fed)
        bob.auto_authorize = True
        bob.auto_subscribe = False
        await connect(alice, a)
        await connect(bob, b)
        await subscribe_and_see_available(alice, "bob@b.test/laptop")
        # Bob goes away and alice sees it.
        await see_go_offline(alice, bob, "bob@b.test")
        await disconnect(alice)
    run(body(), timeout=40)


async def expect_error(alice, to, condition, within):
    got = next_event(alice, "message", timeout=within,
                     predicate=lambda m: m["type"] == "error")
    start = time.monotonic()
    alice.send_message(mto=to, mbody="are you there?", mtype="chat")
    err = await got
    assert err["error"]["condition"] == condition, err
    assert str(err["from"]) == to
    return time.monotonic() - start


def test_unknown_domain_gives_remote_server_not_found(fed):
    async def body():
        alice, _, a, _ = clients(fed)
        await connect(alice, a)
        took = await expect_error(alice, "someone@nowhere.test", "remote-server-not-found", 8)
        assert took < 8
        await disconnect(alice)
    run(body())


def test_refused_connection_gives_remote_server_not_found(fed):
    async def body():
        alice, _, a, _ = clients(fed)
        await connect(alice, a)
        await expect_error(alice, "someone@closed.test", "remote-server-not-found", 8)
        await disconnect(alice)
    run(body())


def test_silent_server_gives_remote_server_timeout(fed):
    async def body():
        alice, _, a, _ = clients(fed)
        await connect(alice, a)
        took = await expect_error(alice, "someone@silent.test", "remote-server-timeout", 25)
        assert took >= 10  # the handshake limit, not an early failure
        await disconnect(alice)
    run(body(), timeout=40)


# ---------------------------------------------------------------- a raw peer


class RawPeer(RawStream):
    """A raw server-to-server stream to one ternd's s2s port."""

    def __init__(self, server, port, sni):
        self.server = server
        self.timeout = 10
        self.sni = sni
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.tls = None
        self.buffer = b""

    def open_s2s(self, frm, to):
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                  "xmlns:stream='http://etherx.jabber.org/streams' "
                  f"xmlns:db='jabber:server:dialback' from='{frm}' to='{to}' version='1.0'>")
        header = self.read_until(rb"<stream:stream [^>]*>").group(0)
        return re.search(rb"id=['\"]([^'\"]+)['\"]", header).group(1).decode()

    def secure_s2s(self, frm, to):
        self.open_s2s(frm, to)
        features = self.read_features()
        assert b"<starttls" in features and b"<required" in features, features
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.read_until(rb"<proceed xmlns=['\"]urn:ietf:params:xml:ns:xmpp-tls['\"]/>")
        self._wrap_tls()
        stream_id = self.open_s2s(frm, to)
        features = self.read_features()
        assert b"urn:xmpp:features:dialback" in features, features
        return stream_id


def test_peer_must_use_starttls(fed):
    b = fed.servers["b.test"]
    peer = RawPeer(b, fed.s2s_port["b.test"], "b.test")
    peer.open_s2s("a.test", "b.test")
    peer.read_features()
    peer.send("<db:result from='a.test' to='b.test'>00</db:result>")
    assert peer.stream_error() == "policy-violation"


def test_forged_dialback_key_is_refused(fed):
    b = fed.servers["b.test"]
    peer = RawPeer(b, fed.s2s_port["b.test"], "b.test")
    peer.secure_s2s("a.test", "b.test")
    # Pretends to be a.test; b.test asks a.test's real server, which denies the key.
    peer.send("<db:result from='a.test' to='b.test'>" + "ab" * 32 + "</db:result>")
    m = peer.read_until(rb"<db:result [^>]*/>|<result [^>]*/>", timeout=10)
    assert b"type='invalid'" in m.group(0) or b'type="invalid"' in m.group(0), m.group(0)
    # Nothing was authenticated, so a stanza 'from' a.test is refused.
    peer.send("<message from='alice@a.test/x' to='bob@b.test' type='chat'>"
              "<body>spoofed</body></message>")
    assert peer.stream_error() == "invalid-from"


def test_spoofed_from_on_unauthenticated_stream(fed):
    b = fed.servers["b.test"]
    peer = RawPeer(b, fed.s2s_port["b.test"], "b.test")
    peer.secure_s2s("evil.test", "b.test")
    peer.send("<message from='alice@a.test' to='bob@b.test'><body>hi</body></message>")
    assert peer.stream_error() == "invalid-from"


def test_unknown_host_in_stream_header(fed):
    b = fed.servers["b.test"]
    peer = RawPeer(b, fed.s2s_port["b.test"], "b.test")
    peer.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
              "xmlns:stream='http://etherx.jabber.org/streams' from='a.test' to='c.test' "
              "version='1.0'>")
    assert peer.stream_error() == "host-unknown"


def test_dialback_verify_answers(fed):
    """The authoritative side of dialback: a.test answers db:verify for keys it did not
    make with 'invalid'."""
    a = fed.servers["a.test"]
    peer = RawPeer(a, fed.s2s_port["a.test"], "a.test")
    peer.secure_s2s("b.test", "a.test")
    peer.send("<db:verify from='b.test' to='a.test' id='someid'>" + "00" * 32 + "</db:verify>")
    m = peer.read_until(rb"<(db:)?verify [^>]*/>", timeout=10)
    assert b"id='someid'" in m.group(0) and b"type='invalid'" in m.group(0), m.group(0)
