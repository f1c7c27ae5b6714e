"""Alice blocks people (XEP-0191 Blocking Command): she keeps a list of blocked JIDs on the
server, every client of hers that asked for the list hears of changes, and the server keeps
what blocked people send from reaching her and what she sends from reaching them.

Every test starts its own ternd with two hosts (localhost and example.test) and reads the raw
stanzas a client sees. "Nothing arrived" is proven with a barrier: a later stanza on the same
path that does arrive, so anything sent before it would have arrived first."""
import re

import pytest

from tern_harness import RawStream, TernServer

USERS = {"alice@localhost": "alice-pw", "bob@localhost": "bob-pw",
         "carol@localhost": "carol-pw", "dave@example.test": "dave-pw"}
NS = "urn:xmpp:blocking"


@pytest.fixture
def srv(tmp_path, pki):
    server = TernServer(tmp_path, pki, hosts=("localhost", "example.test"),
                        modules="disco ping blocking")
    for jid, password in USERS.items():
        server.add_user(jid, password)
    server.start()
    yield server
    server.check_clean_exit()


def login(server, jid, resource, presence=True):
    node, host = jid.split("@")
    s = RawStream(server, sni=host)
    if host == "localhost":
        assert s.login(node, USERS[jid], resource) == f"{jid}/{resource}"
    else:  # RawStream.login speaks to localhost; the same steps for another host
        s.open(to=host)
        s.read_features()
        s.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        s.read_until(rb"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        s._wrap_tls()
        s.open(to=host)
        s.read_features()
        assert s.auth_plain(node, USERS[jid]).startswith("<success")
        s.open(to=host)
        s.read_features()
        assert s.bind(resource) == f"{jid}/{resource}"
    if presence:
        s.send("<presence/>")
        sync(s, "login-sync")  # the presence is in force before anyone sends anything
    return s


def read_upto(stream, pattern):
    """Reads until `pattern` (bytes regex) matches; returns (what came before it, the match)."""
    m = stream.read_until(b"^(.*?)(" + pattern + b")")
    return m.group(1), m.group(2)


def iq(stream, ident, payload, type_="get", to=None):
    """Sends an iq and returns the reply to it (bytes)."""
    to_attr = f" to='{to}'" if to else ""
    stream.send(f"<iq type='{type_}' id='{ident}'{to_attr}>{payload}</iq>")
    return read_upto(stream, rf"<iq[^>]*\bid='{ident}'[^>]*?(?:/>|>.*?</iq>)".encode())[1]


def blocklist(stream, ident="list"):
    reply = iq(stream, ident, f"<blocklist xmlns='{NS}'/>")
    assert b"type='result'" in reply, reply
    return sorted(j.decode() for j in re.findall(rb"<item jid='([^']*)'/>", reply))


def block(stream, *jids, ident="block"):
    items = "".join(f"<item jid='{j}'/>" for j in jids)
    return iq(stream, ident, f"<block xmlns='{NS}'>{items}</block>", "set")


def unblock(stream, *jids, ident="unblock"):
    items = "".join(f"<item jid='{j}'/>" for j in jids)
    return iq(stream, ident, f"<unblock xmlns='{NS}'>{items}</unblock>", "set")


def is_result(reply):
    return b"type='result'" in reply


def error_of(reply):
    m = re.search(rb"<error type='([a-z]+)'><([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>",
                  reply)
    assert m, reply
    return m.group(2).decode(), m.group(1).decode()


def barrier(sender, receiver, to, tag):
    """`sender` sends a chat to `to` (a resource of `receiver`); returns everything `receiver`
    got before it."""
    sender.send(f"<message to='{to}' id='{tag}' type='chat'><body>{tag}</body></message>")
    before, _ = read_upto(receiver, rf"<message[^>]*id='{tag}'.*?</message>".encode())
    return before


def sync(stream, tag):
    """A ping round trip: returns everything that was routed to this stream before it."""
    stream.send(f"<iq type='get' id='{tag}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    before, reply = read_upto(stream, rf"<iq[^>]*\bid='{tag}'[^>]*?(?:/>|>.*?</iq>)".encode())
    assert is_result(reply), reply
    return before


def test_server_advertises_blocking(srv):
    alice = login(srv, "alice@localhost", "one")
    reply = iq(alice, "d1", "<query xmlns='http://jabber.org/protocol/disco#info'/>",
               to="localhost")
    assert f"<feature var='{NS}'/>".encode() in reply
    alice.close()


def test_block_and_unblock_round_trip_with_pushes(srv):
    one = login(srv, "alice@localhost", "one")
    two = login(srv, "alice@localhost", "two")
    quiet = login(srv, "alice@localhost", "quiet")  # never asks for the list: no pushes
    assert blocklist(one) == [] and blocklist(two) == []
    reply = iq(one, "empty", f"<blocklist xmlns='{NS}'/>")
    assert f"<blocklist xmlns='{NS}'/>".encode() in reply  # §3.2: an empty list

    # JIDs are stored prepared (RFC 7622): case folded in the localpart and domain.
    assert is_result(block(one, "Bob@LocalHost", "carol@localhost"))
    for client, name in ((one, "one"), (two, "two")):
        _, push = read_upto(client, rb"<iq[^>]*type='set'[^>]*>.*?</iq>")
        assert f"to='alice@localhost/{name}'".encode() in push
        assert (f"<block xmlns='{NS}'><item jid='bob@localhost'/>"
                "<item jid='carol@localhost'/></block>").encode() in push
        push_id = re.search(rb"id='([^']+)'", push).group(1).decode()
        # The client acknowledges the push; the server drops the result silently.
        client.send(f"<iq type='result' id='{push_id}' to='alice@localhost'/>")
    assert blocklist(two) == ["bob@localhost", "carol@localhost"]

    assert is_result(unblock(two, "bob@localhost"))
    for client in (one, two):
        _, push = read_upto(client, rb"<iq[^>]*type='set'[^>]*>.*?</iq>")
        assert f"<unblock xmlns='{NS}'><item jid='bob@localhost'/></unblock>".encode() in push
    assert blocklist(one) == ["carol@localhost"]

    # The acknowledgements were dropped without an answer, and 'quiet' got no push.
    for s, tag in ((one, "s1"), (two, "s2"), (quiet, "s3")):
        before = sync(s, tag)
        assert b"type='error'" not in before and b"urn:xmpp:blocking" not in before, before
        s.close()


def test_quiet_resource_gets_no_push(srv):
    one = login(srv, "alice@localhost", "one")
    quiet = login(srv, "alice@localhost", "quiet")
    assert blocklist(one) == []
    assert is_result(block(one, "bob@localhost"))
    bob = login(srv, "bob@localhost", "b")
    carol = login(srv, "carol@localhost", "c")
    # carol's message is routed after the push would have been sent.
    before = barrier(carol, quiet, "alice@localhost/quiet", "after-block")
    assert b"urn:xmpp:blocking" not in before
    for s in (one, quiet, bob, carol):
        s.close()


def test_blocklist_survives_a_restart(srv):
    alice = login(srv, "alice@localhost", "one")
    assert is_result(block(alice, "bob@localhost", "example.test"))
    alice.close()
    srv.check_clean_exit()
    srv.start()
    alice = login(srv, "alice@localhost", "one")
    assert blocklist(alice) == ["bob@localhost", "example.test"]
    bob = login(srv, "bob@localhost", "b")
    bob.send("<message to='alice@localhost' id='m1' type='chat'><body>still there?</body></message>")
    _, err = read_upto(bob, rb"<message[^>]*id='m1'.*?</message>")
    assert error_of(err) == ("service-unavailable", "cancel")
    alice.close()
    bob.close()


def test_blocked_sender_never_reaches_the_user(srv):
    """XEP-0191 §3.3: nothing from a blocked JID is delivered. Presence gets no answer; a
    message gets service-unavailable, as if the user were offline."""
    alice = login(srv, "alice@localhost", "one")
    assert is_result(block(alice, "bob@localhost"))
    bob = login(srv, "bob@localhost", "b")
    carol = login(srv, "carol@localhost", "c")

    bob.send("<message to='alice@localhost' id='m1' type='chat'><body>bare</body></message>")
    bob.send("<message to='alice@localhost/one' id='m2' type='chat'><body>full</body></message>")
    bob.send("<message to='alice@localhost/one' id='m3' type='headline'><body>news</body></message>")
    bob.send("<presence to='alice@localhost'/>")
    bob.send("<presence to='alice@localhost' type='subscribe'/>")
    for ident in ("m1", "m2"):
        _, err = read_upto(bob, rf"<message[^>]*id='{ident}'.*?</message>".encode())
        assert b"type='error'" in err and b"from='alice@localhost" in err
        assert error_of(err) == ("service-unavailable", "cancel")
    # The headline and the presence were dropped without an answer.
    before = sync(bob, "bob-sync")
    assert b"<message" not in before and b"<presence" not in before, before

    before = barrier(carol, alice, "alice@localhost/one", "from-carol")
    assert b"bob@localhost" not in before, before
    for s in (alice, bob, carol):
        s.close()


def test_blocked_sender_iq_gets_service_unavailable(srv):
    alice = login(srv, "alice@localhost", "one")
    assert is_result(block(alice, "bob@localhost"))
    bob = login(srv, "bob@localhost", "b")
    reply = iq(bob, "v1", "<query xmlns='jabber:iq:version'/>", to="alice@localhost/one")
    assert b"type='error'" in reply and b"from='alice@localhost/one'" in reply
    assert error_of(reply) == ("service-unavailable", "cancel")
    # A result or error from bob is dropped silently.
    bob.send("<iq type='result' id='stray' to='alice@localhost/one'/>")
    sync(bob, "bob-sync")
    carol = login(srv, "carol@localhost", "c")
    before = barrier(carol, alice, "alice@localhost/one", "from-carol")
    assert b"jabber:iq:version" not in before and b"stray" not in before, before
    for s in (alice, bob, carol):
        s.close()


def test_blocked_sender_ping_to_the_bare_jid_gets_service_unavailable(srv):
    """The server answers pings to a bare JID for the account, but not to someone the account
    blocked (XEP-0191 §3.3: an iq from a blocked JID gets service-unavailable)."""
    alice = login(srv, "alice@localhost", "one")
    assert is_result(block(alice, "bob@localhost"))
    bob = login(srv, "bob@localhost", "b")
    reply = iq(bob, "p1", "<ping xmlns='urn:xmpp:ping'/>", to="alice@localhost")
    assert error_of(reply) == ("service-unavailable", "cancel")
    carol = login(srv, "carol@localhost", "c")
    assert is_result(iq(carol, "p2", "<ping xmlns='urn:xmpp:ping'/>", to="alice@localhost"))
    for s in (alice, bob, carol):
        s.close()


def test_sending_to_a_blocked_jid_is_refused(srv):
    """XEP-0191 §3.3: the user's own stanzas to a blocked JID are not routed; messages and
    requests come back with not-acceptable and <blocked xmlns='urn:xmpp:blocking:errors'/>."""
    alice = login(srv, "alice@localhost", "one")
    assert is_result(block(alice, "bob@localhost"))
    bob = login(srv, "bob@localhost", "b")
    alice.send("<message to='bob@localhost' id='m1' type='chat'><body>can you hear me?</body>"
               "</message>")
    _, err = read_upto(alice, rb"<message[^>]*id='m1'.*?</message>")
    assert b"type='error'" in err and b"from='bob@localhost'" in err
    assert b"to='alice@localhost/one'" in err
    assert b"<body>can you hear me?</body>" in err
    assert (b"<error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            b"<blocked xmlns='urn:xmpp:blocking:errors'/></error>") in err

    reply = iq(alice, "v1", "<query xmlns='jabber:iq:version'/>", to="bob@localhost/b")
    assert error_of(reply) == ("not-acceptable", "cancel")
    assert b"<blocked xmlns='urn:xmpp:blocking:errors'/>" in reply

    # Directed presence is dropped silently.
    alice.send("<presence to='bob@localhost'/>")
    before = sync(alice, "a-sync")
    assert b"<presence" not in before and b"<message" not in before, before
    carol = login(srv, "carol@localhost", "c")
    before = barrier(carol, bob, "bob@localhost/b", "from-carol")
    assert b"alice@localhost" not in before, before
    for s in (alice, bob, carol):
        s.close()


def test_domain_and_resource_items(srv):
    """XEP-0191 §6: a domain item blocks everyone at the domain; a full JID only that resource."""
    alice = login(srv, "alice@localhost", "one")
    assert is_result(block(alice, "example.test", "bob@localhost/evil"))
    dave = login(srv, "dave@example.test", "d")
    evil = login(srv, "bob@localhost", "evil")
    good = login(srv, "bob@localhost", "good")

    dave.send("<message to='alice@localhost' id='d1' type='chat'><body>hi</body></message>")
    _, err = read_upto(dave, rb"<message[^>]*id='d1'.*?</message>")
    assert error_of(err) == ("service-unavailable", "cancel")
    evil.send("<message to='alice@localhost' id='e1' type='chat'><body>hi</body></message>")
    _, err = read_upto(evil, rb"<message[^>]*id='e1'.*?</message>")
    assert error_of(err) == ("service-unavailable", "cancel")
    before = barrier(good, alice, "alice@localhost/one", "from-good")
    assert b"dave@" not in before and b"bob@localhost/evil" not in before, before

    # Outbound: to anyone at the domain, and to the blocked resource only.
    alice.send("<message to='dave@example.test/d' id='a1' type='chat'><body>x</body></message>")
    _, err = read_upto(alice, rb"<message[^>]*id='a1'.*?</message>")
    assert b"<blocked xmlns='urn:xmpp:blocking:errors'/>" in err
    alice.send("<message to='bob@localhost/evil' id='a2' type='chat'><body>x</body></message>")
    _, err = read_upto(alice, rb"<message[^>]*id='a2'.*?</message>")
    assert b"<blocked xmlns='urn:xmpp:blocking:errors'/>" in err
    alice.send("<message to='bob@localhost/good' id='a3' type='chat'><body>to good</body>"
               "</message>")
    _, msg = read_upto(good, rb"<message[^>]*id='a3'.*?</message>")
    assert b"<body>to good</body>" in msg
    # A domain also covers its subdomains, at a label boundary only.
    assert is_result(unblock(alice, "example.test"))
    assert is_result(block(alice, "ample.test", ident="b-near-miss"))
    before = barrier(dave, alice, "alice@localhost/one", "from-dave")
    assert b"dave@" not in before
    assert is_result(block(alice, "test", ident="b-parent"))
    dave.send("<message to='alice@localhost' id='d2' type='chat'><body>hi</body></message>")
    _, err = read_upto(dave, rb"<message[^>]*id='d2'.*?</message>")
    assert error_of(err) == ("service-unavailable", "cancel")

    # The user's own server stays reachable whatever the list says.
    assert is_result(block(alice, "localhost", ident="block-own-domain"))
    assert is_result(iq(alice, "p1", "<ping xmlns='urn:xmpp:ping'/>", to="localhost"))
    for s in (alice, dave, evil, good):
        s.close()


def test_unblock_all(srv):
    one = login(srv, "alice@localhost", "one")
    two = login(srv, "alice@localhost", "two")
    assert blocklist(one) == [] and blocklist(two) == []
    assert is_result(block(one, "bob@localhost", "carol@localhost", "example.test"))
    for client in (one, two):
        read_upto(client, rb"<iq[^>]*type='set'[^>]*>.*?</iq>")
    assert is_result(unblock(one))
    for client in (one, two):
        _, push = read_upto(client, rb"<iq[^>]*type='set'[^>]*?(?:/>|>.*?</iq>)")
        assert f"<unblock xmlns='{NS}'/>".encode() in push, push
    assert blocklist(two) == []
    bob = login(srv, "bob@localhost", "b")
    bob.send("<message to='alice@localhost/one' id='m1' type='chat'><body>back</body></message>")
    _, msg = read_upto(one, rb"<message[^>]*id='m1'.*?</message>")
    assert b"<body>back</body>" in msg and b"type='chat'" in msg
    for s in (one, two, bob):
        s.close()


def test_bad_commands(srv):
    alice = login(srv, "alice@localhost", "one")
    assert blocklist(alice) == []
    # §3.3: a block without items is bad-request.
    reply = iq(alice, "b1", f"<block xmlns='{NS}'/>", "set")
    assert error_of(reply) == ("bad-request", "modify")
    # A JID that cannot be prepared is jid-malformed, and nothing of the command is applied.
    reply = block(alice, "carol@localhost", "bad@@example", ident="b2")
    assert error_of(reply) == ("jid-malformed", "modify")
    reply = iq(alice, "b3", f"<block xmlns='{NS}'><item/></block>", "set")
    assert error_of(reply) == ("bad-request", "modify")
    reply = unblock(alice, "@nodomain", ident="u1")
    assert error_of(reply) == ("jid-malformed", "modify")
    assert blocklist(alice) == []
    # Unblocking a JID that is not blocked is not an error.
    assert is_result(unblock(alice, "nobody@localhost", ident="u2"))
    # Only the account itself reads its list.
    bob = login(srv, "bob@localhost", "b")
    reply = iq(bob, "peek", f"<blocklist xmlns='{NS}'/>", to="alice@localhost")
    assert error_of(reply) == ("service-unavailable", "cancel")
    for s in (alice, bob):
        s.close()


def test_deleted_account_loses_its_blocklist(tmp_path, pki):
    """An account removed in-band (XEP-0077 §3.2) takes its list along (the core deletes all
    of an account's data): a new account of the same name starts with nobody blocked."""
    server = TernServer(tmp_path, pki, modules="disco ping register blocking")
    for jid in ("alice@localhost", "bob@localhost"):
        server.add_user(jid, USERS[jid])
    server.start()
    alice = login(server, "alice@localhost", "one")
    assert is_result(block(alice, "bob@localhost"))
    reply = iq(alice, "bye", "<query xmlns='jabber:iq:register'><remove/></query>", "set")
    assert is_result(reply), reply
    alice.close()
    server.add_user("alice@localhost", USERS["alice@localhost"])
    alice = login(server, "alice@localhost", "one")
    assert blocklist(alice) == []
    alice.close()
    server.check_clean_exit()


# ---- presence (needs the roster and presence modules) ----


@pytest.fixture
def im_srv(tmp_path, pki):
    server = TernServer(tmp_path, pki, modules="disco ping roster presence blocking")
    for jid, password in USERS.items():
        if jid.endswith("@localhost"):
            server.add_user(jid, password)
    server.start()
    yield server
    server.check_clean_exit()


def test_blocked_contact_sees_the_user_go_offline(im_srv):
    """XEP-0191 §3.3: blocking a contact who may see the user's presence sends them unavailable
    presence, and later presence does not reach them; §3.4: unblocking sends the current
    presence again."""
    srv = im_srv
    alice = login(srv, "alice@localhost", "one")
    bob = login(srv, "bob@localhost", "b")
    # bob subscribes to alice and alice approves: alice's roster has bob with 'from'.
    bob.send("<presence to='alice@localhost' type='subscribe'/>")
    read_upto(alice, rb"<presence[^>]*type='subscribe'[^>]*/?>")
    alice.send("<presence to='bob@localhost' type='subscribed'/>")
    read_upto(bob, rb"<presence[^>]*type='subscribed'[^>]*/?>")
    alice.send("<presence><status>here</status></presence>")
    read_upto(bob, rb"<presence[^>]*from='alice@localhost/one'[^>]*><status>here</status>")

    assert is_result(block(alice, "bob@localhost"))
    _, p = read_upto(bob, rb"<presence[^>]*from='alice@localhost/one'[^>]*?(?:/>|>.*?</presence>)")
    assert b"type='unavailable'" in p, p

    alice.send("<presence><status>busy now</status></presence>")
    sync(alice, "a1")
    assert b"busy now" not in sync(bob, "b1")

    assert is_result(unblock(alice, "bob@localhost"))
    _, p = read_upto(bob, rb"<presence[^>]*from='alice@localhost/one'[^>]*?(?:/>|>.*?</presence>)")
    assert b"<status>busy now</status>" in p and b"type=" not in p, p
    alice.close()
    bob.close()
