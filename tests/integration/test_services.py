"""A user looks at the server: service discovery, ping, version and time (the disco, ping,
version and time modules), and what happens with requests nobody serves."""
import datetime

from tern_harness import RawStream, connect, disconnect, make_client, run

ALICE = ("alice@localhost", "alice-secret")


def test_disco_ping_version_time(server):
    async def body():
        c = await connect(make_client(ALICE[0], ALICE[1], server,
                                      plugins=["xep_0030", "xep_0199", "xep_0092", "xep_0202"]),
                          server)
        info = await c["xep_0030"].get_info(jid="localhost", timeout=5)
        features = set(info["disco_info"]["features"])
        assert {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
                "urn:xmpp:ping", "jabber:iq:version", "urn:xmpp:time"} <= features
        identities = info["disco_info"]["identities"]
        assert ("server", "im", None, "tern") in identities
        items = await c["xep_0030"].get_items(jid="localhost", timeout=5)
        assert items["disco_items"]["items"] == set()
        rtt = await c["xep_0199"].ping(jid="localhost", timeout=5)
        assert rtt < 5
        version = await c["xep_0092"].get_version("localhost", timeout=5)
        assert version["software_version"]["name"] == "tern"
        assert version["software_version"]["version"]
        t = await c["xep_0202"].get_entity_time("localhost", timeout=5)
        # slixmpp appends a second 'Z' when it parses <utc/>, so read the text itself.
        utc_text = t["entity_time"]._get_sub_text("utc")
        assert utc_text.endswith("Z")
        server_time = datetime.datetime.strptime(utc_text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        assert t["entity_time"]._get_sub_text("tzo")[0] in "+-"
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs((now - server_time).total_seconds()) < 5
        await disconnect(c)
    run(body())


def test_account_disco_is_answered_for_the_account_itself(server):
    async def body():
        c = await connect(make_client(ALICE[0], ALICE[1], server, plugins=["xep_0030"]), server)
        info = await c["xep_0030"].get_info(jid="alice@localhost", timeout=5)
        assert ("account", "registered", None, None) in info["disco_info"]["identities"]
        await disconnect(c)
    run(body())


def test_disco_of_an_unknown_node_is_item_not_found(server):
    s = RawStream(server)
    s.login("alice", "alice-secret")
    s.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>")
    m = s.read_until(rb"<iq[^>]*id=['\"]d1['\"].*?</iq>")
    assert b"<item-not-found" in m.group(0)
    s.close()


def test_iq_in_an_unknown_namespace_gets_service_unavailable(server):
    s = RawStream(server)
    s.login("alice", "alice-secret")
    s.send("<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:unknown'/></iq>")
    m = s.read_until(rb"<iq[^>]*id=['\"]u1['\"].*?</iq>")
    reply = m.group(0)
    assert b"type='error'" in reply
    assert b"<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in reply
    assert b"urn:example:unknown" not in reply  # RFC 6120 §8.3.1: iq errors carry no payload
    s.ping_server()
    s.close()


def test_ping_over_direct_tls(server):
    s = RawStream(server, direct_tls=True)
    s.login("bob", "bob-secret", direct_tls=True)
    s.ping_server()
    s.close()


def _ping(stream, ident, to=None):
    to_attr = f" to='{to}'" if to else ""
    stream.send(f"<iq type='get' id='{ident}'{to_attr}><ping xmlns='urn:xmpp:ping'/></iq>")
    return stream.read_until(rf"<iq[^>]*id=['\"]{ident}['\"][^>]*?(/>|>.*?</iq>)".encode()).group(0)


def test_ping_without_to_is_answered_for_the_account(server):
    """RFC 6120 §10.3: an iq without 'to' is addressed to the sender's own account, which the
    server answers for. Profanity sends its keepalive ping so and disables autoping on an
    error."""
    s = RawStream(server)
    s.login("alice", "alice-secret", resource="prof")
    reply = _ping(s, "self1")
    assert b"type='result'" in reply, reply
    assert b"<error" not in reply and b"<ping" not in reply, reply
    reply = _ping(s, "self2", to="alice@localhost")
    assert b"type='result'" in reply and b"from='alice@localhost'" in reply, reply
    s.close()


def test_ping_to_another_account_is_answered_by_the_server(server):
    """RFC 6121 §8.5.2.1.3 / §8.5.2.2.3: an iq to a bare JID is answered by the server on the
    account's behalf, online or not; the account's own clients never see it."""
    bob = RawStream(server)
    bob.login("bob", "bob-secret", resource="b")
    bob.send("<presence/>")
    alice = RawStream(server)
    alice.login("alice", "alice-secret", resource="a")
    reply = _ping(alice, "other1", to="bob@localhost")
    assert b"type='result'" in reply and b"from='bob@localhost'" in reply, reply
    reply = _ping(alice, "other2", to="admin@localhost")  # exists, not online
    assert b"type='result'" in reply and b"from='admin@localhost'" in reply, reply
    # Bob's client got none of them: the next thing it sees is its own ping's answer.
    bob.send("<iq type='get' id='bob-sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    m = bob.read_until(rb"(.*?)(<iq[^>]*id='bob-sync'[^>]*>)")
    assert b"type='result'" in m.group(2), m.group(2)
    assert b"other" not in m.group(1) and b"<ping" not in m.group(1), m.group(1)
    alice.close()
    bob.close()


def test_ping_to_an_account_that_does_not_exist_is_service_unavailable(server):
    """RFC 6121 §8.5.1: no such account, so the server answers service-unavailable."""
    s = RawStream(server)
    s.login("alice", "alice-secret")
    reply = _ping(s, "nobody1", to="nobody@localhost")
    assert b"type='error'" in reply, reply
    assert b"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in reply, reply
    s.close()
