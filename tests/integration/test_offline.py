"""Messages to someone who is offline (the offline module): they are kept, survive a crash, and
reach the recipient at the next available presence, oldest first, with a XEP-0203 delay stamp
(RFC 6121 §8.5.2.1.1, XEP-0160); what is not kept bounces or vanishes as the XEPs say."""
import calendar
import itertools
import re
import time
import xml.etree.ElementTree as ET

import pytest

from tern_harness import RawStream, TernServer

MODULES = "disco ping offline"
QUOTA = 100  # the default of [module offline] quota
NS_DELAY = "{urn:xmpp:delay}delay"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
C = "{jabber:client}"

_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    srv = TernServer(tmp_path_factory.mktemp("offline"), pki, modules=MODULES)
    srv.add_user("alice@localhost", "alice-secret")
    srv.start()
    yield srv
    srv.check_clean_exit()


@pytest.fixture
def bob(server):
    """A recipient of our own for each test, so queues never leak between tests."""
    name = f"bob{next(_names)}"
    server.add_user(f"{name}@localhost", "bob-secret")
    return name


# ---------------------------------------------------------------- raw stanza helpers


def login(server, user, password, resource="r", presence="<presence/>"):
    s = RawStream(server)
    s.login(user, password, resource)
    if presence:
        s.send(presence)
    return s


def sync(s, ident):
    """Pings the server and returns every byte that arrived before the pong: the server
    handles one stream's stanzas in order, so this is everything the earlier ones caused."""
    s.send(f"<iq type='get' id='{ident}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    m = s.read_until(rf"(.*?)<iq[^>]*id=['\"]{ident}['\"][^>]*>".encode())
    return m.group(1)


MESSAGE_RE = re.compile(rb"<message(?:\s[^>]*)?/>|<message[\s>].*?</message>", re.S)


def messages(data):
    return [ET.fromstring(b"<r xmlns='jabber:client'>" + raw + b"</r>")[0]
            for raw in MESSAGE_RE.findall(data)]


def body(msg):
    return msg.findtext(C + "body")


def error_condition(msg):
    err = msg.find(C + "error")
    assert err is not None, ET.tostring(msg)
    conditions = [c for c in err if c.tag.startswith("{" + NS_STANZAS + "}") and
                  not c.tag.endswith("}text")]
    return conditions[0].tag.split("}")[1], err.get("type"), err.findtext(f"{{{NS_STANZAS}}}text")


def stamp_of(msg):
    delays = msg.findall(NS_DELAY)
    assert len(delays) == 1, ET.tostring(msg)
    return delays[0].get("from"), calendar.timegm(
        time.strptime(delays[0].get("stamp"), "%Y-%m-%dT%H:%M:%SZ"))


def send_chat(s, to, text, ident, mtype="chat", extra=""):
    type_attr = f" type='{mtype}'" if mtype else ""
    s.send(f"<message to='{to}' id='{ident}'{type_attr}><body>{text}</body>{extra}</message>")


# ---------------------------------------------------------------- stories


def test_messages_wait_and_arrive_in_order_with_a_delay_stamp(server, bob):
    alice = login(server, "alice", "alice-secret", "phone")
    bodies = [f"message {i}: fish &amp; chips &lt;b&gt; caf\u00e9 \u2603" for i in range(1, 6)]
    sent_at = time.time()
    for i, text in enumerate(bodies, 1):
        send_chat(alice, f"{bob}@localhost", text, f"m{i}")
    # Nothing comes back to the sender: the messages were accepted, not bounced.
    assert messages(sync(alice, "a1")) == []
    time.sleep(2.1)  # so that a stamp of the delivery time would be told apart
    login_at = time.time()

    b = login(server, bob, "bob-secret", "laptop")
    got = messages(sync(b, "b1"))
    assert [body(m) for m in got] == [f"message {i}: fish & chips <b> caf\u00e9 \u2603"
                                      for i in range(1, 6)]
    assert [m.get("id") for m in got] == ["m1", "m2", "m3", "m4", "m5"]
    for m in got:
        assert m.get("from") == "alice@localhost/phone"
        assert m.get("to") == f"{bob}@localhost"
        assert m.get("type") == "chat"
        origin, stamp = stamp_of(m)
        assert origin == "localhost"
        assert int(sent_at) - 1 <= stamp <= int(sent_at) + 2, (stamp, sent_at)
        assert stamp < login_at - 1
    b.close()

    # Delivered once only: the next login finds an empty queue.
    again = login(server, bob, "bob-secret", "laptop")
    assert messages(sync(again, "b2")) == []
    again.close()
    alice.close()


def test_a_second_resource_does_not_get_them_again(server, bob):
    alice = login(server, "alice", "alice-secret")
    send_chat(alice, f"{bob}@localhost", "only once", "once")
    sync(alice, "a1")
    first = login(server, bob, "bob-secret", "one")
    assert [body(m) for m in messages(sync(first, "f1"))] == ["only once"]
    second = login(server, bob, "bob-secret", "two")
    assert messages(sync(second, "s1")) == []
    first.close()
    second.close()
    alice.close()


def test_online_recipient_gets_messages_directly_and_nothing_is_stored(server, bob):
    b = login(server, bob, "bob-secret", "desk")
    sync(b, "b0")
    alice = login(server, "alice", "alice-secret")
    send_chat(alice, f"{bob}@localhost", "live", "live1")
    sync(alice, "a1")
    got = messages(sync(b, "b1"))
    assert [body(m) for m in got] == ["live"]
    assert got[0].find(NS_DELAY) is None
    b.close()
    again = login(server, bob, "bob-secret", "desk")
    assert messages(sync(again, "b2")) == []
    again.close()
    alice.close()


def test_a_message_to_an_unavailable_resource_is_stored(server, bob):
    """RFC 6121 §8.5.3.2.1: a chat or normal message to a resource that is not online is
    handled as if sent to the bare JID, so it is stored."""
    alice = login(server, "alice", "alice-secret")
    send_chat(alice, f"{bob}@localhost/gone", "to the old phone", "full1")
    send_chat(alice, f"{bob}@localhost/gone", "a normal one", "full2", mtype=None)
    assert messages(sync(alice, "a1")) == []
    b = login(server, bob, "bob-secret", "new")
    got = messages(sync(b, "b1"))
    assert [body(m) for m in got] == ["to the old phone", "a normal one"]
    assert got[0].get("to") == f"{bob}@localhost/gone"
    assert stamp_of(got[1])[0] == "localhost"
    b.close()
    alice.close()


def test_headline_groupchat_error_and_chat_states_are_not_stored(server, bob):
    alice = login(server, "alice", "alice-secret")
    to = f"{bob}@localhost"
    send_chat(alice, to, "breaking news", "h1", mtype="headline")
    send_chat(alice, to, "room talk", "g1", mtype="groupchat")
    send_chat(alice, to, "an error", "e1", mtype="error",
              extra="<error type='cancel'><item-not-found "
                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")
    # XEP-0160 §3: a chat message with only XEP-0085 content is not kept either.
    alice.send(f"<message to='{to}' id='cs1' type='chat'>"
               "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
    send_chat(alice, to, "the real one", "c1")
    back = messages(sync(alice, "a1"))
    # Only the groupchat message bounces (RFC 6121 §8.5.2.1.1); a headline, an error and a
    # typing notice vanish silently.
    assert [m.get("id") for m in back] == ["g1"]
    assert back[0].get("type") == "error" and back[0].get("from") == to
    assert error_condition(back[0])[:2] == ("service-unavailable", "cancel")

    b = login(server, bob, "bob-secret")
    got = messages(sync(b, "b1"))
    assert [(m.get("id"), body(m)) for m in got] == [("c1", "the real one")]
    b.close()
    alice.close()


def test_negative_priority_gets_nothing_until_non_negative_presence(server, bob):
    alice = login(server, "alice", "alice-secret")
    send_chat(alice, f"{bob}@localhost", "first", "n1")
    sync(alice, "a1")
    # RFC 6121 §8.5.2.1.1 / XEP-0160 §2: a negative priority never receives them.
    shy = login(server, bob, "bob-secret", "shy", "<presence><priority>-1</priority></presence>")
    assert messages(sync(shy, "s1")) == []
    # While the only resource has a negative priority, messages are still stored.
    send_chat(alice, f"{bob}@localhost", "second", "n2")
    assert messages(sync(alice, "a2")) == []
    assert messages(sync(shy, "s2")) == []
    # A later session with a non-negative priority gets everything, oldest first.
    bold = login(server, bob, "bob-secret", "bold", "<presence><priority>0</priority></presence>")
    got = messages(sync(bold, "b1"))
    assert [body(m) for m in got] == ["first", "second"]
    assert all(stamp_of(m)[0] == "localhost" for m in got)
    assert messages(sync(shy, "s3")) == []
    shy.close()
    bold.close()
    alice.close()


def test_raising_a_negative_priority_delivers_what_was_stored(server, bob):
    alice = login(server, "alice", "alice-secret")
    shy = login(server, bob, "bob-secret", "shy", "<presence><priority>-5</priority></presence>")
    sync(shy, "s0")
    send_chat(alice, f"{bob}@localhost", "waiting for you", "w1")
    assert messages(sync(alice, "a1")) == []
    assert messages(sync(shy, "s1")) == []
    shy.send("<presence><priority>3</priority></presence>")
    got = messages(sync(shy, "s2"))
    assert [body(m) for m in got] == ["waiting for you"]
    assert stamp_of(got[0])[0] == "localhost"
    shy.close()
    alice.close()


def test_a_full_mailbox_bounces_with_service_unavailable(server, bob):
    alice = login(server, "alice", "alice-secret")
    to = f"{bob}@localhost"
    for i in range(1, QUOTA + 1):
        send_chat(alice, to, f"number {i}", f"q{i}")
    assert messages(sync(alice, "a1")) == []  # all accepted
    send_chat(alice, to, "one too many", "over")
    back = messages(sync(alice, "a2"))
    assert [m.get("id") for m in back] == ["over"]
    assert back[0].get("type") == "error" and back[0].get("from") == to
    assert body(back[0]) == "one too many"  # RFC 6120 §8.3.1: the payload comes back
    condition, etype, text = error_condition(back[0])
    assert (condition, etype) == ("service-unavailable", "cancel")
    assert "full" in text.lower()

    b = login(server, bob, "bob-secret")
    got = messages(sync(b, "b1"))
    assert [body(m) for m in got] == [f"number {i}" for i in range(1, QUOTA + 1)]
    b.close()
    # The queue is empty again, so the mailbox takes messages again.
    send_chat(alice, to, "room again", "again")
    assert messages(sync(alice, "a3")) == []
    alice.close()


def test_a_burst_past_the_quota_keeps_exactly_the_quota(server, bob):
    """Messages arriving together are stored together (one commit for many), and the quota is
    checked inside that commit: of QUOTA + 10 sent in one burst, exactly the first QUOTA are
    kept and the last 10 bounce, and every bounce reaches the sender before the answer to
    its next stanza."""
    alice = login(server, "alice", "alice-secret")
    to = f"{bob}@localhost"
    alice.send("".join(f"<message to='{to}' id='b{i}' type='chat'><body>burst {i}</body>"
                       "</message>" for i in range(1, QUOTA + 11)))
    back = messages(sync(alice, "a1"))
    assert [m.get("id") for m in back] == [f"b{i}" for i in range(QUOTA + 1, QUOTA + 11)]
    assert {error_condition(m)[0] for m in back} == {"service-unavailable"}
    alice.close()

    b = login(server, bob, "bob-secret")
    got = messages(sync(b, "b1"))
    assert [body(m) for m in got] == [f"burst {i}" for i in range(1, QUOTA + 1)]
    b.close()


def test_live_messages_wait_behind_the_stored_ones(server, bob):
    """Stored messages are read while the recipient's session is already available: what
    others send it meanwhile arrives after them, in the order it was sent."""
    alice = login(server, "alice", "alice-secret")
    to = f"{bob}@localhost"
    for i in range(1, 51):
        send_chat(alice, to, f"stored {i}", f"s{i}")
    assert messages(sync(alice, "a1")) == []
    b = RawStream(server)
    b.login(bob, "bob-secret", "r")
    # Presence and the first live messages in one go: the delivery is under way when they
    # are routed.
    b.send("<presence/>")
    for i in range(1, 6):
        send_chat(alice, f"{to}/r", f"live {i}", f"l{i}")
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 55:
        assert time.monotonic() < deadline, [body(m) for m in got]
        got += messages(sync(b, f"b{len(got)}"))
    assert [body(m) for m in got] == [f"stored {i}" for i in range(1, 51)] + \
        [f"live {i}" for i in range(1, 6)]
    alice.close()
    b.close()


def test_a_message_to_a_nonexistent_user_still_bounces(server):
    alice = login(server, "alice", "alice-secret")
    send_chat(alice, "nobody@localhost", "hello?", "x1")
    back = messages(sync(alice, "a1"))
    assert [m.get("id") for m in back] == ["x1"]
    assert back[0].get("from") == "nobody@localhost"
    assert error_condition(back[0])[:2] == ("service-unavailable", "cancel")
    alice.close()


def test_disco_announces_msgoffline(server):
    alice = login(server, "alice", "alice-secret")
    alice.send("<iq type='get' id='d1' to='localhost'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    m = alice.read_until(rb"<iq[^>]*id=['\"]d1['\"].*?</iq>")
    assert b"<feature var='msgoffline'/>" in m.group(0)
    alice.close()


def test_a_stored_message_survives_kill_9(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules=MODULES)
    srv.add_user("alice@localhost", "alice-secret")
    srv.add_user("bob@localhost", "bob-secret")
    srv.start()
    alice = login(srv, "alice", "alice-secret", "phone")
    sent_at = time.time()
    send_chat(alice, "bob@localhost", "do not lose me", "k1")
    # The pong proves the server processed the message before it: it was accepted.
    assert messages(sync(alice, "a1")) == []
    srv.kill9()
    alice.close()

    srv.start()
    b = login(srv, "bob", "bob-secret")
    got = messages(sync(b, "b1"))
    assert [(m.get("id"), body(m), m.get("from")) for m in got] == [
        ("k1", "do not lose me", "alice@localhost/phone")]
    origin, stamp = stamp_of(got[0])
    assert origin == "localhost" and abs(stamp - sent_at) <= 2
    b.close()
    srv.check_clean_exit()


# ---------------------------------------------------------------- what poezio does

POEZIO_MODULES = "disco ping roster presence offline carbons vcard private"
CAPS = ("<c xmlns='http://jabber.org/protocol/caps' node='https://poez.io' hash='sha-1' "
        "ver='wsjrgkuLwDR+T2eZwi00edvqhjQ='/><x xmlns='vcard-temp:x:update'><photo/></x>")


def poezio_login(s):
    """poezio 0.14's login on the wire, in its order (taken from its debug log): vCard and
    roster requests, initial presence, a PEP nick publish, server disco, the same presence
    again straight away, account disco, carbons, bookmarks. No answer is awaited in
    between, as poezio does not await them either."""
    s.send("<iq id='vc' type='get' to='carol@localhost'><vCard xmlns='vcard-temp'/></iq>"
           "<iq id='ro' type='get'><query xmlns='jabber:iq:roster' ver=''/></iq>"
           f"<presence id='pr1' xml:lang='en'>{CAPS}</presence>"
           "<iq type='set' id='nick'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
           "<publish node='http://jabber.org/protocol/nick'><item id='current'>"
           "<nick xmlns='http://jabber.org/protocol/nick'>carol</nick></item></publish>"
           "</pubsub></iq>"
           "<iq id='di' to='localhost' type='get'>"
           "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
           f"<presence id='pr2' xml:lang='en'>{CAPS}</presence>"
           "<iq id='da' to='carol@localhost' type='get'>"
           "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
           "<iq id='cb' type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>"
           "<iq id='bm' type='get'><query xmlns='jabber:iq:private'>"
           "<storage xmlns='storage:bookmarks'/></query></iq>")


@pytest.fixture
def poezio_srv(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules=POEZIO_MODULES)
    srv.add_user("alice@localhost", "alice-secret")
    srv.add_user("carol@localhost", "carol-secret")
    srv.start()
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.check_clean_exit()


def test_poezio_gets_an_offline_message_once(poezio_srv):
    """poezio showed one offline message twice. On the wire the server sends it once, to the
    session that went available, however poezio logs in (initial presence twice, carbons
    enabled right after), and never again: not to a second poezio logging in later, and
    not at login to a resource with carbons enabled and a negative priority that was online
    while the message waited (that one had its XEP-0280 §7 received carbon when the message
    came, as Prosody sends it too). The duplicate is poezio's own: poezio 0.14 with
    mam_sync, its default, shows a message that opens a conversation, then again from its
    local log, when the account has no XEP-0313 archive (doc/modules.md, `offline`)."""
    srv = poezio_srv
    # Takes no bare-JID messages (RFC 6121 §8.5.2.1.1), so the message is stored meanwhile.
    shy = login(srv, "carol", "carol-secret", "shy", "<presence><priority>-1</priority></presence>")
    shy.send("<iq id='cb0' type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
    sync(shy, "s0")
    alice = login(srv, "alice", "alice-secret", "a")
    send_chat(alice, "carol@localhost", "just once", "once1")
    assert messages(sync(alice, "a1")) == []
    seen = sync(shy, "s1")
    assert seen.count(b"just once") == 1 and b"<received xmlns='urn:xmpp:carbons:2'>" in seen

    poezio = RawStream(srv)
    poezio.login("carol", "carol-secret", "poezio-enOX")
    poezio_login(poezio)
    data = sync(poezio, "p1")
    assert data.count(b"just once") == 1, data
    got = [m for m in messages(data) if body(m) is not None]
    assert [(body(m), m.get("id")) for m in got] == [("just once", "once1")]
    assert stamp_of(got[0])[0] == "localhost"
    assert b"just once" not in sync(poezio, "p2") + sync(shy, "s2")

    later = RawStream(srv)
    later.login("carol", "carol-secret", "poezio-2nd")
    poezio_login(later)
    assert b"just once" not in sync(later, "l1")
    assert b"just once" not in sync(poezio, "p3") + sync(shy, "s3")
    for s in (shy, alice, poezio, later):
        s.close()


def test_a_queue_stored_before_item_counts_keeps_its_quota(tmp_path, pki):
    """An older ternd kept no per-account item count: the first append counts the queue once
    and keeps the count from then on, so the quota holds exactly for such a queue too."""
    lmdb = pytest.importorskip("lmdb")  # Debian's python3-lmdb (bootstrap installs it)
    srv = TernServer(tmp_path, pki, modules=MODULES,
                     extra_config="[module offline]\nquota = 5\n")
    srv.add_user("alice@localhost", "alice-secret")
    srv.add_user("bob@localhost", "bob-secret")
    env = lmdb.open(str(tmp_path / "var"), max_dbs=128, map_size=1 << 30)
    with env.begin(write=True) as txn:
        arc = env.open_db(b"arc:offline", txn=txn)
        meta = env.open_db(b"meta", txn=txn)
        for i in range(1, 4):  # layout of lmdb_archive.c: owner \0 id; when, peer, payload
            payload = (f"<message from='alice@localhost/old' to='bob@localhost' type='chat' "
                       f"id='old{i}'><body>old {i}</body></message>").encode()
            peer = b"alice@localhost"
            value = int(time.time()).to_bytes(8, "big") + len(peer).to_bytes(2, "big") + peer
            txn.put(b"bob@localhost\0" + i.to_bytes(8, "big"), value + payload, db=arc)
        txn.put(b"\0seq:offline", (3).to_bytes(8, "big"), db=meta)
    env.close()
    srv.start()
    alice = login(srv, "alice", "alice-secret")
    for i in range(1, 4):
        send_chat(alice, "bob@localhost", f"new {i}", f"n{i}")
    back = messages(sync(alice, "a1"))
    assert [m.get("id") for m in back] == ["n3"]  # 3 old + 2 new fill the quota of 5
    alice.close()
    b = login(srv, "bob", "bob-secret")
    got = messages(sync(b, "b1"))
    assert [body(m) for m in got] == ["old 1", "old 2", "old 3", "new 1", "new 2"]
    b.close()
    srv.check_clean_exit()
