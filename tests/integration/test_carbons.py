"""Alice reads her conversations on several devices (XEP-0280 Message Carbons): each of her
clients that enabled carbons gets a copy of the messages she receives on another device and of
the messages she sends from another device, and nothing else.

Every test starts its own ternd and reads the raw stanzas each client sees. "Nothing arrived"
is proven with a barrier: a later stanza on the same path that does arrive, so anything sent
before it would have arrived first."""
import re
import xml.etree.ElementTree as ET

import pytest

from tern_harness import RawStream, TernServer

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
CARBONS = "urn:xmpp:carbons:2"
FORWARD = "urn:xmpp:forward:0"
CLIENT = "jabber:client"


@pytest.fixture
def srv(tmp_path, pki):
    server = TernServer(tmp_path, pki, modules="disco ping carbons")
    for user, password in USERS.items():
        server.add_user(f"{user}@localhost", password)
    server.start()
    yield server
    server.check_clean_exit()


def read_upto(stream, pattern):
    """Reads until `pattern` (bytes regex) matches; returns (what came before it, the match)."""
    m = stream.read_until(b"^(.*?)(" + pattern + b")")
    return m.group(1), m.group(2)


def iq(stream, ident, payload, type_="get", to=None):
    to_attr = f" to='{to}'" if to else ""
    stream.send(f"<iq type='{type_}' id='{ident}'{to_attr}>{payload}</iq>")
    return read_upto(stream, rf"<iq[^>]*\bid='{ident}'[^>]*?(?:/>|>.*?</iq>)".encode())[1]


def login(server, user, resource, priority=0, carbons=True):
    s = RawStream(server)
    assert s.login(user, USERS[user], resource) == f"{user}@localhost/{resource}"
    if carbons:
        reply = iq(s, "enable", f"<enable xmlns='{CARBONS}'/>", "set")
        assert reply == (f"<iq type='result' id='enable' from='{user}@localhost' "
                         f"to='{user}@localhost/{resource}'/>").encode(), reply
    if priority is not None:
        s.send(f"<presence><priority>{priority}</priority></presence>")
        sync(s, "login-sync")  # the presence is in force before anyone sends anything
    return s


def sync(stream, tag):
    """A ping round trip: returns everything that was routed to this stream before it."""
    stream.send(f"<iq type='get' id='{tag}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    before, reply = read_upto(stream, rf"<iq[^>]*\bid='{tag}'[^>]*?(?:/>|>.*?</iq>)".encode())
    assert b"type='result'" in reply, reply
    return before


def barrier(sender, receiver, to, tag):
    """`sender` sends a headline (never copied) to `to`, a resource of `receiver`; returns
    everything `receiver` got before it."""
    sender.send(f"<message to='{to}' id='{tag}' type='headline'><body>{tag}</body></message>")
    before, _ = read_upto(receiver, rf"<message[^>]*id='{tag}'.*?</message>".encode())
    return before


def read_message(stream, pattern=rb"<message[^>]*>.*?</message>"):
    """The next message matching pattern, parsed."""
    return ET.fromstring(read_upto(stream, pattern)[1])


def read_carbon(stream):
    """The next carbon copy, parsed."""
    return read_message(stream, rb"<message[^>]*><(?:received|sent) xmlns='urn:xmpp:carbons:2'>"
                                rb".*?</message></forwarded></(?:received|sent)></message>")


def forwarded_of(carbon, kind, owner, resource):
    """Checks the wrapper of a carbon (XEP-0280 §7, §8) and returns the forwarded message."""
    assert carbon.tag == "message"
    assert carbon.get("from") == owner and carbon.get("to") == f"{owner}/{resource}"
    children = list(carbon)
    assert [c.tag for c in children] == [f"{{{CARBONS}}}{kind}"]
    forwarded = list(children[0])
    assert [c.tag for c in forwarded] == [f"{{{FORWARD}}}forwarded"]
    inner = list(forwarded[0])
    assert [c.tag for c in inner] == [f"{{{CLIENT}}}message"]
    return inner[0]


def carbon_ids(data):
    """The ids of the messages forwarded in the carbons within `data` (raw bytes)."""
    return re.findall(rb"<forwarded xmlns='urn:xmpp:forward:0'><message [^>]*?id='([^']*)'", data)


def body_of(message):
    return message.findtext(f"{{{CLIENT}}}body") or message.findtext("body")


def test_server_advertises_carbons(srv):
    s = login(srv, "alice", "one", carbons=False)
    reply = iq(s, "d1", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to="localhost")
    assert f"<feature var='{CARBONS}'/>".encode() in reply
    s.close()


def test_message_to_one_resource_is_copied_to_the_other(srv):
    one = login(srv, "alice", "one")
    two = login(srv, "alice", "two")
    bob = login(srv, "bob", "b", carbons=False)
    bob.send("<message to='alice@localhost/one' id='m1' type='chat'><body>hello one</body>"
             "<thread>t1</thread></message>")
    original = read_message(one)
    assert original.get("id") == "m1" and body_of(original) == "hello one"

    carbon = read_carbon(two)
    assert carbon.get("type") == "chat"
    inner = forwarded_of(carbon, "received", "alice@localhost", "two")
    assert inner.get("from") == "bob@localhost/b" and inner.get("to") == "alice@localhost/one"
    assert inner.get("id") == "m1" and inner.get("type") == "chat"
    assert body_of(inner) == "hello one" and inner.findtext(f"{{{CLIENT}}}thread") == "t1"

    # §7: the resource the message was addressed to gets no copy.
    before = barrier(bob, one, "alice@localhost/one", "bar1")
    assert b"urn:xmpp:carbons:2" not in before, before
    for s in (one, two, bob):
        s.close()


def test_bare_jid_message_copies_only_to_resources_that_missed_it(srv):
    """RFC 6121 §8.5.2.1.1: a chat to the bare JID goes to every available resource with the
    highest priority; only the others get carbons."""
    one = login(srv, "alice", "one", priority=5)
    two = login(srv, "alice", "two", priority=5)
    low = login(srv, "alice", "low", priority=1)
    bob = login(srv, "bob", "b", carbons=False)
    bob.send("<message to='alice@localhost' id='m1' type='chat'><body>to alice</body></message>")
    for s in (one, two):
        original = read_message(s)
        assert original.get("id") == "m1" and original.get("from") == "bob@localhost/b"
        assert body_of(original) == "to alice"
    inner = forwarded_of(read_carbon(low), "received", "alice@localhost", "low")
    assert inner.get("id") == "m1" and inner.get("to") == "alice@localhost"

    for s, name in ((one, "one"), (two, "two")):
        before = barrier(bob, s, f"alice@localhost/{name}", f"bar-{name}")
        assert b"urn:xmpp:carbons:2" not in before, before
    for s in (one, two, low, bob):
        s.close()


def test_message_to_a_gone_resource_is_copied_once(srv):
    """A chat to a resource that is not online is delivered as to the bare JID (RFC 6121
    §8.5.3.2.1); the lower resource gets exactly one carbon."""
    high = login(srv, "alice", "high", priority=5)
    low = login(srv, "alice", "low", priority=0)
    bob = login(srv, "bob", "b", carbons=False)
    bob.send("<message to='alice@localhost/gone' id='m1' type='chat'><body>hi</body></message>")
    assert read_message(high).get("id") == "m1"
    before = barrier(bob, low, "alice@localhost/low", "bar")
    assert carbon_ids(before) == [b"m1"], before
    for s in (high, low, bob):
        s.close()


def test_sent_message_is_copied_to_the_other_resources(srv):
    """§8: copies go to the sender's other carbons-enabled resources, whether or not the
    sending client enabled carbons itself."""
    one = login(srv, "alice", "one", carbons=False)
    two = login(srv, "alice", "two")
    bob = login(srv, "bob", "b", carbons=False)
    one.send("<message to='bob@localhost/b' id='s1' type='chat'><body>hi bob</body></message>")
    original = read_message(bob)
    assert original.get("id") == "s1" and original.get("from") == "alice@localhost/one"
    carbon = read_carbon(two)
    assert carbon.get("type") == "chat"
    inner = forwarded_of(carbon, "sent", "alice@localhost", "two")
    assert inner.get("from") == "alice@localhost/one" and inner.get("to") == "bob@localhost/b"
    assert inner.get("id") == "s1" and body_of(inner) == "hi bob"
    # §8: never to the sender itself.
    assert b"urn:xmpp:carbons:2" not in sync(one, "p1")
    for s in (one, two, bob):
        s.close()


def test_private_and_no_copy_messages_are_not_copied(srv):
    one = login(srv, "alice", "one")
    two = login(srv, "alice", "two")
    bob = login(srv, "bob", "b", carbons=False)
    bob.send("<message to='alice@localhost/one' id='p1' type='chat'><body>secret</body>"
             f"<private xmlns='{CARBONS}'/></message>")
    bob.send("<message to='alice@localhost/one' id='p2' type='chat'><body>also secret</body>"
             "<no-copy xmlns='urn:xmpp:hints'/></message>")
    _, p1 = read_upto(one, rb"<message[^>]*id='p1'.*?</message>")
    # §9: the receiving server removes <private/> before delivery.
    assert b"<body>secret</body>" in p1 and b"<private" not in p1, p1
    _, p2 = read_upto(one, rb"<message[^>]*id='p2'.*?</message>")
    assert b"<no-copy xmlns='urn:xmpp:hints'/>" in p2
    before = barrier(bob, two, "alice@localhost/two", "bar1")
    assert b"secret" not in before and b"carbons" not in before, before

    # Sent the same way, no sent carbons either.
    one.send("<message to='bob@localhost/b' id='p3' type='chat'><body>private out</body>"
             f"<private xmlns='{CARBONS}'/></message>")
    one.send("<message to='bob@localhost/b' id='p4' type='chat'><body>no-copy out</body>"
             "<no-copy xmlns='urn:xmpp:hints'/></message>")
    _, p3 = read_upto(bob, rb"<message[^>]*id='p3'.*?</message>")
    assert b"<private" not in p3, p3
    read_upto(bob, rb"<message[^>]*id='p4'.*?</message>")
    before = barrier(one, two, "alice@localhost/two", "bar2")
    assert b" out</body>" not in before and b"carbons" not in before, before
    for s in (one, two, bob):
        s.close()


def test_only_available_carbons_enabled_resources_get_copies(srv):
    one = login(srv, "alice", "one", carbons=False)
    two = login(srv, "alice", "two")
    plain = login(srv, "alice", "plain", carbons=False)
    silent = login(srv, "alice", "silent", priority=None)  # enabled, but never available
    bob = login(srv, "bob", "b", carbons=False)
    bob.send("<message to='alice@localhost/one' id='m1' type='chat'><body>x</body></message>")
    assert carbon_ids(barrier(bob, two, "alice@localhost/two", "bar-two")) == [b"m1"]
    for s, name in ((plain, "plain"), (silent, "silent")):
        before = barrier(bob, s, f"alice@localhost/{name}", f"bar-{name}")
        assert b"carbons" not in before, before
    for s in (one, two, plain, silent, bob):
        s.close()


def test_disable_stops_copies(srv):
    one = login(srv, "alice", "one")
    two = login(srv, "alice", "two")
    bob = login(srv, "bob", "b", carbons=False)
    # §10.1: enabling or disabling twice is not an error.
    assert b"type='result'" in iq(two, "e2", f"<enable xmlns='{CARBONS}'/>", "set")
    bob.send("<message to='alice@localhost/one' id='m1' type='chat'><body>x</body></message>")
    assert carbon_ids(barrier(bob, two, "alice@localhost/two", "bar1")) == [b"m1"]
    for ident in ("d1", "d2"):
        reply = iq(two, ident, f"<disable xmlns='{CARBONS}'/>", "set")
        assert reply == (f"<iq type='result' id='{ident}' from='alice@localhost' "
                         "to='alice@localhost/two'/>").encode(), reply
    bob.send("<message to='alice@localhost/one' id='m2' type='chat'><body>x</body></message>")
    one.send("<message to='bob@localhost/b' id='m3' type='chat'><body>y</body></message>")
    assert carbon_ids(barrier(bob, two, "alice@localhost/two", "bar2")) == []
    assert carbon_ids(barrier(one, two, "alice@localhost/two", "bar3")) == []
    for s in (one, two, bob):
        s.close()


def test_which_messages_are_copied(srv):
    """§6.1: chat messages, normal messages with a body, and IM payloads such as chat states
    are copied; headlines, bodiless normal messages, private messages from MUC occupants and
    anything that already is a carbon are not."""
    one = login(srv, "alice", "one")
    two = login(srv, "alice", "two")
    bob = login(srv, "bob", "b", carbons=False)
    to = "to='alice@localhost/one'"
    bob.send(f"<message {to} id='normal-body'><body>note</body></message>")
    bob.send(f"<message {to} id='state' type='normal'>"
             "<active xmlns='http://jabber.org/protocol/chatstates'/></message>")
    bob.send(f"<message {to} id='receipt'><received xmlns='urn:xmpp:receipts' id='x'/></message>")
    bob.send(f"<message {to} id='headline' type='headline'><body>news</body></message>")
    bob.send(f"<message {to} id='bodiless'><x xmlns='urn:example:other'/></message>")
    bob.send(f"<message {to} id='muc-pm' type='chat'><body>pm</body>"
             "<x xmlns='http://jabber.org/protocol/muc#user'/></message>")
    bob.send(f"<message {to} id='forged' type='chat'><sent xmlns='{CARBONS}'>"
             f"<forwarded xmlns='{FORWARD}'><message xmlns='{CLIENT}' id='inner' "
             "from='alice@localhost/one' to='bob@localhost'><body>fake</body></message>"
             "</forwarded></sent></message>")
    before = barrier(bob, two, "alice@localhost/two", "bar")
    assert carbon_ids(before) == [b"normal-body", b"state", b"receipt"], before
    for s in (one, two, bob):
        s.close()


def test_messages_between_own_resources_are_not_copied(srv):
    one = login(srv, "alice", "one")
    two = login(srv, "alice", "two")
    three = login(srv, "alice", "three")
    one.send("<message to='alice@localhost/two' id='self' type='chat'><body>note to self"
             "</body></message>")
    assert read_message(two).get("id") == "self"
    assert carbon_ids(barrier(one, three, "alice@localhost/three", "bar")) == []
    for s in (one, two, three):
        s.close()


def test_only_the_account_switches_its_carbons(srv):
    alice = login(srv, "alice", "one")
    bob = login(srv, "bob", "b", carbons=False)
    reply = iq(bob, "x1", f"<enable xmlns='{CARBONS}'/>", "set", to="alice@localhost")
    assert (b"<error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            in reply), reply
    alice.close()
    bob.close()


def test_messages_refused_by_blocking_are_not_copied(tmp_path, pki):
    """With XEP-0191 loaded too: what a block stops is neither delivered nor copied."""
    server = TernServer(tmp_path, pki, modules="disco ping blocking carbons")
    for user, password in USERS.items():
        server.add_user(f"{user}@localhost", password)
    server.start()
    one = login(server, "alice", "one")
    two = login(server, "alice", "two")
    bob = login(server, "bob", "b", carbons=False)
    reply = iq(one, "b1", "<block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block>",
               "set")
    assert b"type='result'" in reply, reply
    bob.send("<message to='alice@localhost/one' id='in' type='chat'><body>x</body></message>")
    _, err = read_upto(bob, rb"<message[^>]*id='in'.*?</message>")  # bob's message was handled
    assert b"<service-unavailable" in err
    one.send("<message to='bob@localhost' id='out' type='chat'><body>y</body></message>")
    _, err = read_upto(one, rb"<message[^>]*id='out'.*?</message>")
    assert b"<blocked xmlns='urn:xmpp:blocking:errors'/>" in err
    assert carbon_ids(barrier(one, two, "alice@localhost/two", "bar")) == []
    for s in (one, two, bob):
        s.close()
    server.check_clean_exit()
