"""Limits an operator relies on so that one user or one address cannot take the server from
everyone else: sessions per account (RFC 6120 §7.6.2.1), and what happens at each limit."""
import http.client
import re
import socket
import ssl
import time

from tern_harness import RawStream, TernServer, free_port

NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def start(tmp_path, pki, c2s_extra="", modules="disco ping", **kwargs):
    srv = TernServer(tmp_path, pki, modules=modules, c2s_extra=c2s_extra, **kwargs)
    srv.add_user("alice@localhost", "a-secret")
    srv.add_user("bob@localhost", "b-secret")
    return srv.start()


def authenticated(srv, user, password):
    """A stream that authenticated and restarted, ready to bind."""
    s = RawStream(srv)
    s.secure()
    assert s.auth_plain(user, password).startswith("<success")
    s.open()
    s.read_features()
    return s


def bind_reply(s, resource):
    s.send(f"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           f"<resource>{resource}</resource></bind></iq>")
    return s.read_until(rb"<iq[^>]*id=['\"]b['\"][^>]*>.*?</iq>").group(0)


def test_sessions_per_account_are_limited(tmp_path, pki):
    srv = start(tmp_path, pki, c2s_extra="max_sessions_per_account = 3\n")
    try:
        streams = []
        for i in range(3):
            s = RawStream(srv)
            assert s.login("alice", "a-secret", f"r{i}") == f"alice@localhost/r{i}"
            streams.append(s)

        # A fourth resource is refused with the RFC's condition, and the stream stays usable.
        extra = authenticated(srv, "alice", "a-secret")
        reply = bind_reply(extra, "r3")
        assert re.search(rb"type=['\"]error['\"]", reply), reply
        m = re.search(rf"<error[^>]*type=['\"](\w+)['\"][^>]*>\s*<([a-z-]+) xmlns=['\"]"
                      rf"{NS_STANZAS}".encode(), reply)
        assert m and m.groups() == (b"wait", b"resource-constraint"), reply
        # Taking over one of its own resources adds no session: allowed, the old one is told.
        assert b"<jid>alice@localhost/r0</jid>" in bind_reply(extra, "r0")
        assert streams[0].stream_error() == "conflict"
        extra.ping_server()

        # Other accounts are not affected, and a freed slot can be used again.
        bob = RawStream(srv)
        assert bob.login("bob", "b-secret", "phone") == "bob@localhost/phone"
        streams[1].close()
        again = authenticated(srv, "alice", "a-secret")
        for _ in range(50):  # the server sees the close on its own loop
            reply = bind_reply(again, "r4")
            if b"<jid>" in reply:
                break
            again.close()
            again = authenticated(srv, "alice", "a-secret")
        assert b"<jid>alice@localhost/r4</jid>" in reply, reply
        assert "refusing a session for alice@localhost: 3 sessions already" in srv.log_text()
    finally:
        srv.check_clean_exit()


# ---------------------------------------------------------------- a full disk


def test_a_full_storage_refuses_new_accounts_with_a_reason(tmp_path, pki):
    """Creating an account when nothing fits any more: in-band registration answers
    <resource-constraint/> (try later), ternctl says the storage is full."""
    modules = "disco ping private register"
    srv = TernServer(tmp_path, pki, modules=modules,
                     extra_config="max_storage_size = 1048576\n"
                                  "[module private]\nmax_namespaces = 100000\n")
    srv.config.write_text(srv.config.read_text().replace(
        f"modules = {modules}\n", f"modules = {modules}\nregistration = yes\n"))
    srv.add_user("alice@localhost", "a-secret")
    srv.start()
    try:
        alice = RawStream(srv)
        alice.login("alice", "a-secret", "r")
        n = 0
        for size in (60000, 6000, 600, 60, 6):  # private XML until not even a little fits
            while True:
                n += 1
                alice.send(f"<iq type='set' id='p{n}'><query xmlns='jabber:iq:private'>"
                           f"<x xmlns='urn:fill:{n}'>{'x' * size}</x></query></iq>")
                reply = alice.read_until(rf"<iq[^>]*id='p{n}'[^>]*?(?:/>|>.*?</iq>)".encode())
                if b"type='error'" in reply.group(0):
                    break
                assert n < 5000, "1 MiB never filled up"
        # What is left is freed pages of other stores: accounts take it until it is gone
        # too (one new address each, for the rate limit).
        for host in range(2, 250):
            s = RawStream(srv, source=f"127.0.0.{host}")
            s.secure()
            s.send("<iq type='set' id='r1'><query xmlns='jabber:iq:register'>"
                   f"<username>newbie{host}</username><password>pw</password></query></iq>")
            reply = s.read_until(rb"<iq[^>]*id='r1'(?:[^>]*/>|.*?</iq>)").group(0)
            s.close()
            if b"type='error'" in reply:
                break
        m = re.search(rf"<error[^>]*type=['\"](\w+)['\"][^>]*>\s*<([a-z-]+) xmlns=['\"]"
                      rf"{NS_STANZAS}".encode(), reply)
        assert m and m.groups() == (b"wait", b"resource-constraint"), reply
        assert b"storage is full" in reply, reply
        proc = srv.ternctl("user", "add", "carol@localhost", "c-secret", check=False)
        assert proc.returncode == 1 and "storage is full" in proc.stderr, proc.stderr
        alice.close()
    finally:
        srv.check_clean_exit()


def test_full_storage_is_resource_constraint_and_loses_nothing_acknowledged(tmp_path, pki):
    """[server] max_storage_size plays the full disk: what no longer fits bounces with
    <resource-constraint/> type wait (RFC 6120 §8.3.3.18), what was kept survives kill -9."""
    srv = TernServer(tmp_path, pki, modules="disco ping presence roster offline",
                     extra_config="max_storage_size = 1048576\n"
                                  "[module offline]\nquota = 100000\n")
    srv.add_user("alice@localhost", "a-secret")
    srv.add_user("bob@localhost", "b-secret")
    srv.start()
    alice = RawStream(srv)
    alice.login("alice", "a-secret", "r")
    filler = "x" * 30000
    kept, bounced = [], None
    for i in range(100):
        alice.send(f"<message to='bob@localhost' type='chat' id='m{i}'>"
                   f"<body>{i} {filler}</body></message>")
        alice.send(f"<iq type='get' id='s{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        data = alice.read_until(rf"(.*?)<iq[^>]*id=['\"]s{i}['\"]".encode()).group(1)
        if b"<error" in data:
            bounced = data
            break
        kept.append(str(i))
    assert bounced is not None, "1 MiB never filled up"
    assert 5 < len(kept) < 40, kept
    m = re.search(rf"<error[^>]*type=['\"](\w+)['\"][^>]*>\s*<([a-z-]+) xmlns=['\"]"
                  rf"{NS_STANZAS}".encode(), bounced)
    assert m and m.groups() == (b"wait", b"resource-constraint"), bounced[:400]
    # It stays so while there is no room, and the stream and the server carry on.
    alice.send(f"<message to='bob@localhost' type='chat' id='again'><body>{filler}</body>"
               "</message>")
    again = alice.read_until(rb"<message[^>]*id=['\"]again['\"].*?</message>").group(0)
    assert b"resource-constraint" in again, again[:400]
    alice.ping_server("after")
    assert "storage: full" in srv.log_text()
    srv.kill9()

    # Room again (the cap lifted) and a restart: every message acknowledged is there, in order.
    srv.config.write_text(srv.config.read_text().replace("max_storage_size = 1048576\n", ""))
    srv.start()
    try:
        bob = RawStream(srv)
        bob.login("bob", "b-secret", "r")
        bob.send("<presence/>")
        got = []
        for _ in range(len(kept)):
            got.append(bob.read_until(rb"<body>(\d+) x+</body>").group(1).decode())
        assert got == kept
    finally:
        srv.check_clean_exit()


# ---------------------------------------------------------------- one address


def tcp_from(port, source, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    s.settimeout(timeout)
    return s


def refused(s, wait=0.5):
    """Whether the server closed the connection at once, without a word."""
    s.settimeout(wait)
    try:
        gone = s.recv(1) == b""
    except ConnectionResetError:
        gone = True
    except socket.timeout:
        gone = False
    s.close()
    return gone


def open_stream(s):
    s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
    data = b""
    while b"</stream:features>" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    return data


def until_admitted(port, source):
    """Connects from `source` until the server admits it (it sees closes on its own loop)."""
    for _ in range(40):
        s = tcp_from(port, source)
        s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' "
                  b"version='1.0'>")
        s.settimeout(2)
        try:
            if s.recv(1):
                return s
        except ConnectionResetError:
            pass
        s.close()
        time.sleep(0.05)
    raise AssertionError(f"{source} was never admitted")


C2S_LIMITS = ("max_connections_per_address = 4\nmax_unauthenticated_per_address = 2\n"
              "max_unauthenticated = 3\n")


def test_one_address_cannot_hold_every_unauthenticated_slot(tmp_path, pki):
    srv = start(tmp_path, pki, c2s_extra=C2S_LIMITS)
    try:
        idle = [tcp_from(srv.port, "127.0.0.1") for _ in range(2)]
        for s in idle:
            open_stream(s)
        assert refused(tcp_from(srv.port, "127.0.0.1"))
        srv.wait_log("refusing a client connection from 127.0.0.1")
        # Another address still gets in, until the server-wide cap on unauthenticated
        # connections (3) is reached.
        other = tcp_from(srv.port, "127.0.0.2")
        assert b"<starttls" in open_stream(other)
        assert refused(tcp_from(srv.port, "127.0.0.3"))
        other.close()
        idle[0].close()
        until_admitted(srv.port, "127.0.0.3").close()

        # Logged-in connections count only against max_connections_per_address (4): with
        # one idle connection left, 127.0.0.1 may log in three times, then no more.
        logged_in = []
        for i in range(3):
            c = RawStream(srv)
            c.login("alice", "a-secret", f"r{i}")
            logged_in.append(c)
        assert refused(tcp_from(srv.port, "127.0.0.1"))
        logged_in[0].ping_server()
        assert b"<starttls" in open_stream(tcp_from(srv.port, "127.0.0.2"))
    finally:
        srv.check_clean_exit()


def test_logins_per_second_per_address(tmp_path, pki):
    srv = start(tmp_path, pki, c2s_extra="logins_per_second_per_address = 2\n")
    try:
        results = []
        for _ in range(6):  # a burst of twice the rate passes
            s = RawStream(srv)
            s.secure()
            results.append(s.auth_plain("alice", "a-secret"))
            s.close()
        assert all(r.startswith("<success") for r in results[:4]), results
        assert any("<temporary-auth-failure/>" in r for r in results[4:]), results
        srv.wait_log("too many logins from 127.0.0.1")
        # Other addresses are not slowed, and the allowance comes back.
        assert RawStream(srv, source="127.0.0.2").login("bob", "b-secret", "x") == \
            "bob@localhost/x"
        time.sleep(1.2)
        assert RawStream(srv).login("alice", "a-secret", "y") == "alice@localhost/y"
    finally:
        srv.check_clean_exit()


def test_incoming_s2s_streams_per_address(tmp_path, pki):
    port = free_port()
    srv = start(tmp_path, pki, extra_config="", modules="disco ping s2s",
                c2s_extra=f"[s2s]\nlisten = 127.0.0.1:{port}\n"
                          "max_unauthenticated_per_address = 2\n")
    try:
        held = []
        for _ in range(2):
            s = tcp_from(port, "127.0.0.1")
            s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                      b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' "
                      b"from='evil.example' version='1.0'>")
            assert s.recv(100)
            held.append(s)
        assert refused(tcp_from(port, "127.0.0.1"))
        srv.wait_log("refusing a s2s connection from 127.0.0.1")
        s = tcp_from(port, "127.0.0.2")
        s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                  b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' "
                  b"from='good.example' version='1.0'>")
        assert s.recv(100)
    finally:
        srv.check_clean_exit()


def bosh_create(srv, source):
    ctx = ssl.create_default_context(cafile=str(srv.pki / "ca.crt"))
    conn = http.client.HTTPSConnection("localhost", srv.https_port, timeout=10, context=ctx,
                                       source_address=(source, 0))
    conn.request("POST", "/http-bind",
                 body=b"<body rid='1000' to='localhost' wait='5' hold='1' ver='1.11' "
                      b"xmlns='http://jabber.org/protocol/httpbind' "
                      b"xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>",
                 headers={"Content-Type": "text/xml; charset=utf-8"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200, (resp.status, body)
    return body


def test_unauthenticated_bosh_sessions_count_per_address(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping bosh", http=True,
                     c2s_extra="max_unauthenticated_per_address = 2\n")
    srv.start()
    try:
        for _ in range(2):
            assert b"sid=" in bosh_create(srv, "127.0.0.1")
        third = bosh_create(srv, "127.0.0.1")
        assert b"type='terminate'" in third or b'type="terminate"' in third, third
        assert b"remote-connection-failed" in third, third
        assert b"sid=" in bosh_create(srv, "127.0.0.2")
    finally:
        srv.check_clean_exit()
