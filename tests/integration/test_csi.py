"""Alice's phone goes quiet (XEP-0352 Client State Indication): while it says <inactive/>, the
server holds back what she would not look at now — presence updates, typing notifications,
receipts — and sends it, newest per sender and in order, as soon as something she must see
arrives (a message with a body, an iq) or the phone says <active/>. Her other devices are not
affected.

"Nothing arrived yet" is proven after Bob's own ping round trip: routing runs on one loop, so
by the time Bob's answer comes, whatever the server was going to send Alice is on her socket;
a short quiet read then shows it was held, not slow."""
import asyncio
import re

import pytest

from tern_harness import RawStream, TernServer, connect, disconnect, make_client, run

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
CSI = "urn:xmpp:csi:0"
QUIET = 0.4  # seconds to wait for something that must not come


def start(tmp_path, pki, modules="disco ping csi carbons", extra=""):
    server = TernServer(tmp_path, pki, modules=modules, extra_config=extra)
    for user, password in USERS.items():
        server.add_user(f"{user}@localhost", password)
    return server.start()


@pytest.fixture
def srv(tmp_path, pki):
    server = start(tmp_path, pki)
    yield server
    server.check_clean_exit()


def login(server, user, resource):
    s = RawStream(server)
    assert s.login(user, USERS[user], resource) == f"{user}@localhost/{resource}"
    return s


def sync(stream, tag):
    """A ping round trip; returns what arrived before its answer."""
    stream.send(f"<iq type='get' id='{tag}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    m = stream.read_until(rf"^(.*?)<iq[^>]*\bid='{tag}'[^>]*?(?:/>|>.*?</iq>)".encode())
    return m.group(1)


def quiet(stream):
    """Whatever arrives within QUIET seconds (b'' when nothing does)."""
    data = stream.buffer
    stream.buffer = b""
    try:
        return data + stream._recv_some(QUIET)
    except TimeoutError:
        return data


def presence(sender, to, status):
    sender.send(f"<presence to='{to}'><status>{status}</status></presence>")


def chat_state(sender, to, state, ident):
    sender.send(f"<message to='{to}' type='chat' id='{ident}'>"
                f"<{state} xmlns='http://jabber.org/protocol/chatstates'/></message>")


def test_feature_is_offered_after_authentication_only(tmp_path, pki):
    server = start(tmp_path, pki)
    s = RawStream(server)
    before = s.secure()
    assert CSI.encode() not in before
    assert s.auth_plain("alice", "alice-pw").startswith("<success")
    s.open()
    assert f"<csi xmlns='{CSI}'/>".encode() in s.read_features()
    s.close()
    server.check_clean_exit()


def test_inactive_holds_presence_and_chat_states_until_a_message(srv):
    alice = login(srv, "alice", "phone")
    bob = login(srv, "bob", "desk")
    alice.send(f"<inactive xmlns='{CSI}'/>")
    sync(alice, "a1")  # the element is taken (no stream error) before Bob starts
    to = "alice@localhost/phone"
    for status in ("one", "two", "three"):
        presence(bob, to, status)
    chat_state(bob, to, "composing", "c1")
    chat_state(bob, to, "paused", "c2")
    sync(bob, "b1")
    assert quiet(alice) == b""
    bob.send(f"<message to='{to}' type='chat' id='m1'><body>hi</body></message>")
    got = alice.read_until(rb"^(.*?)<message[^>]*id='m1'").group(1)
    # Only the newest presence and chat state of Bob's resource, in the order they were held,
    # and both before the message.
    assert re.findall(rb"<status>(\w+)</status>", got) == [b"three"], got
    assert re.findall(rb"<(composing|paused) ", got) == [b"paused"], got
    assert got.index(b"<status>") < got.index(b"<paused "), got


def test_active_flushes_in_order(srv):
    alice = login(srv, "alice", "phone")
    bob = login(srv, "bob", "desk")
    alice.send(f"<inactive xmlns='{CSI}'/>")
    sync(alice, "a1")
    to = "alice@localhost/phone"
    presence(bob, to, "away")
    bob.send(f"<message to='{to}' id='r1'><received xmlns='urn:xmpp:receipts' id='x'/></message>")
    sync(bob, "b1")
    assert quiet(alice) == b""
    alice.send(f"<active xmlns='{CSI}'/>")
    got = alice.read_until(rb"^(.*?<message[^>]*id='r1'.*?</message>)").group(1)
    assert got.index(b"<status>away</status>") < got.index(b"id='r1'"), got
    # Active again: the next presence comes at once.
    presence(bob, to, "back")
    alice.read_until(rb"<status>back</status>")


def test_what_matters_is_not_held(srv):
    alice = login(srv, "alice", "phone")
    bob = login(srv, "bob", "desk")
    alice.send(f"<inactive xmlns='{CSI}'/>")
    sync(alice, "a1")
    to = "alice@localhost/phone"
    presence(bob, to, "busy")
    # A subscription request is for the user now: it flushes what is held and goes out.
    bob.send(f"<presence to='{to}' type='subscribe'/>")
    got = alice.read_until(rb"^(.*?)<presence[^>]*type='subscribe'").group(1)
    assert b"<status>busy</status>" in got
    # An iq (here Alice's own ping answer) is never held.
    presence(bob, to, "later")
    sync(bob, "b1")
    assert b"<status>later</status>" in sync(alice, "a2")


def test_other_sessions_are_not_affected(srv):
    phone = login(srv, "alice", "phone")
    laptop = login(srv, "alice", "laptop")
    bob = login(srv, "bob", "desk")
    phone.send(f"<inactive xmlns='{CSI}'/>")
    sync(phone, "a1")
    presence(bob, "alice@localhost/laptop", "for-laptop")
    presence(bob, "alice@localhost/phone", "for-phone")
    laptop.read_until(rb"<status>for-laptop</status>")
    sync(bob, "b1")
    assert quiet(phone) == b""


def test_carbon_copies_of_chat_states_wait(srv):
    phone = login(srv, "alice", "phone")
    laptop = login(srv, "alice", "laptop")
    bob = login(srv, "bob", "desk")
    for s in (phone, laptop):
        s.send("<presence/>")  # carbons go to available resources
        sync(s, "avail")
    phone.send("<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
    phone.read_until(rb"<iq[^>]*id='cb'")
    phone.send(f"<inactive xmlns='{CSI}'/>")
    sync(phone, "a1")
    chat_state(bob, "alice@localhost/laptop", "composing", "c1")
    laptop.read_until(rb"<composing ")
    sync(bob, "b1")
    assert quiet(phone) == b""
    bob.send("<message to='alice@localhost/laptop' type='chat' id='m1'><body>x</body></message>")
    got = phone.read_until(rb"^(.*?)<message[^>]*>\s*<received xmlns='urn:xmpp:carbons:2'>"
                           rb"(?:(?!</message></forwarded>).)*?<body>x</body>").group(1)
    assert b"<composing " in got, got


def test_held_stanzas_go_out_at_the_limit(tmp_path, pki):
    server = start(tmp_path, pki, extra="[module csi]\nmax_held = 3\n")
    alice = login(server, "alice", "phone")
    bob = login(server, "bob", "desk")
    alice.send(f"<inactive xmlns='{CSI}'/>")
    sync(alice, "a1")
    to = "alice@localhost/phone"
    for n in (1, 2):
        bob.send(f"<message to='{to}' id='r{n}'><received xmlns='urn:xmpp:receipts' id='{n}'/>"
                 "</message>")
    sync(bob, "b1")
    assert quiet(alice) == b""
    bob.send(f"<message to='{to}' id='r3'><received xmlns='urn:xmpp:receipts' id='3'/></message>")
    got = alice.read_until(rb"^(.*?<message[^>]*id='r3'.*?</message>)").group(1)
    assert re.findall(rb"id='(r\d)'", got) == [b"r1", b"r2", b"r3"], got
    alice.close()
    bob.close()
    server.check_clean_exit()


def test_unknown_csi_element_is_a_stream_error(srv):
    alice = login(srv, "alice", "phone")
    alice.send(f"<sleepy xmlns='{CSI}'/>")
    assert alice.stream_error() == "unsupported-stanza-type"


def test_without_the_module_inactive_is_a_stream_error(tmp_path, pki):
    server = start(tmp_path, pki, modules="disco ping")
    s = RawStream(server)
    s.secure()
    assert s.auth_plain("alice", "alice-pw").startswith("<success")
    s.open()
    assert CSI.encode() not in s.read_features()
    s.bind("phone")
    s.send(f"<inactive xmlns='{CSI}'/>")
    assert s.stream_error() == "unsupported-stanza-type"
    server.check_clean_exit()


def test_a_slixmpp_client_indicates_its_state(srv):
    """slixmpp's own XEP-0352 plugin, as a phone app built on it would use it: it sees the
    feature after binding, goes inactive, and gets Bob's held presence (the newest only)
    just before his next message."""
    async def body():
        phone = make_client("alice@localhost/phone", USERS["alice"], srv,
                            plugins=["xep_0352", "xep_0199"])
        seen = []
        got_message = asyncio.get_running_loop().create_future()
        phone.add_event_handler("presence_available",
                                lambda p: seen.append(("presence", p["status"])))

        def on_message(m):
            seen.append(("message", m["body"]))
            if not got_message.done():
                got_message.set_result(True)
        phone.add_event_handler("message", on_message)
        await connect(phone, srv)
        assert phone["xep_0352"].enabled  # the feature was offered after binding
        phone["xep_0352"].send_inactive()
        # A ping after it: once answered, the server has taken <inactive/> (and an iq is
        # never held).
        await phone["xep_0199"].ping(jid="localhost", timeout=10)
        bob = login(srv, "bob", "desk")
        for status in ("away", "busy"):
            presence(bob, "alice@localhost/phone", status)
        sync(bob, "b1")
        await asyncio.sleep(QUIET)
        assert seen == [], seen  # held while inactive
        bob.send("<message to='alice@localhost/phone' type='chat' id='m1'><body>hi</body>"
                 "</message>")
        await asyncio.wait_for(got_message, 10)
        assert seen == [("presence", "busy"), ("message", "hi")], seen
        bob.close()
        await disconnect(phone)
    run(body())
