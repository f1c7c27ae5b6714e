"""Limits an operator relies on so that one user or one address cannot take the server from
everyone else: sessions per account (RFC 6120 §7.6.2.1), and what happens at each limit."""
import re

from tern_harness import RawStream, TernServer

NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def start(tmp_path, pki, c2s_extra="", **kwargs):
    srv = TernServer(tmp_path, pki, modules="disco ping", c2s_extra=c2s_extra, **kwargs)
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
