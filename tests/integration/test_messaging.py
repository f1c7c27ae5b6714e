"""Two people chat: messages and iq between online sessions, directed presence, the RFC 6121 §8
delivery rules, and the errors a sender sees when a message cannot be delivered."""
import asyncio

import pytest

from tern_harness import RawStream, connect, disconnect, make_client, run

ALICE = ("alice@localhost", "alice-secret")
BOB = ("bob@localhost", "bob-secret")


async def next_event(client, name, timeout=5, predicate=lambda x: True):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def handler(stanza):
        if not fut.done() and predicate(stanza):
            fut.set_result(stanza)
    client.add_event_handler(name, handler)
    try:
        return await asyncio.wait_for(fut, timeout)
    finally:
        client.del_event_handler(name, handler)


def test_message_to_full_and_bare_jid(server):
    async def body():
        alice = await connect(make_client(ALICE[0] + "/phone", ALICE[1], server), server)
        bob = await connect(make_client(BOB[0] + "/laptop", BOB[1], server), server)
        got = next_event(bob, "message")
        alice.send_message(mto="bob@localhost/laptop", mbody="hello full", mtype="chat")
        msg = await got
        assert msg["body"] == "hello full"
        assert str(msg["from"]) == "alice@localhost/phone"
        got = next_event(alice, "message")
        bob.send_message(mto="alice@localhost", mbody="hello bare", mtype="chat")
        msg = await got
        assert msg["body"] == "hello bare" and str(msg["from"]) == "bob@localhost/laptop"
        await disconnect(alice, bob)
    run(body())


def test_iq_between_two_sessions(server):
    async def body():
        alice = await connect(make_client(ALICE[0] + "/a", ALICE[1], server,
                                          plugins=["xep_0092"]), server)
        bob = await connect(make_client(BOB[0] + "/b", BOB[1], server,
                                        plugins=["xep_0092"]), server)
        bob["xep_0092"].software_name = "bob-client"
        bob["xep_0092"].version = "4.2"
        reply = await alice["xep_0092"].get_version("bob@localhost/b", timeout=5)
        assert reply["software_version"]["name"] == "bob-client"
        assert reply["software_version"]["version"] == "4.2"
        assert str(reply["from"]) == "bob@localhost/b"
        await disconnect(alice, bob)
    run(body())


def test_bare_jid_message_goes_to_highest_priority_resources(server):
    async def body():
        high = await connect(make_client(BOB[0] + "/high", BOB[1], server), server,
                             presence=False)
        low = await connect(make_client(BOB[0] + "/low", BOB[1], server), server,
                            presence=False)
        negative = await connect(make_client(BOB[0] + "/neg", BOB[1], server), server,
                                 presence=False)
        high.send_presence(ppriority=10)
        low.send_presence(ppriority=1)
        negative.send_presence(ppriority=-1)
        alice = await connect(make_client(ALICE[0], ALICE[1], server), server)
        await asyncio.sleep(0.2)
        received = {"high": [], "low": [], "neg": []}
        for name, c in (("high", high), ("low", low), ("neg", negative)):
            c.add_event_handler("message", lambda m, n=name: received[n].append(m["body"]))
        alice.send_message(mto="bob@localhost", mbody="to the best", mtype="chat")
        alice.send_message(mto="bob@localhost/low", mbody="to low only", mtype="chat")
        await asyncio.sleep(0.5)
        assert received == {"high": ["to the best"], "low": ["to low only"], "neg": []}
        await disconnect(alice, high, low, negative)
    run(body())


def test_message_to_offline_resource_falls_back_to_bare(server):
    """RFC 6121 §8.5.3.2.1: a chat to a resource that is gone goes to the account's other
    resources."""
    async def body():
        bob = await connect(make_client(BOB[0] + "/here", BOB[1], server), server)
        alice = await connect(make_client(ALICE[0], ALICE[1], server), server)
        got = next_event(bob, "message")
        alice.send_message(mto="bob@localhost/gone", mbody="anyone there?", mtype="chat")
        assert (await got)["body"] == "anyone there?"
        await disconnect(alice, bob)
    run(body())


def error_condition(stanza):
    return stanza["error"]["condition"], stanza["error"]["type"]


@pytest.mark.parametrize("to,condition", [
    ("bob@localhost", "service-unavailable"),        # exists, but offline (no offline module)
    ("nobody@localhost", "service-unavailable"),     # no such account
    ("someone@elsewhere.example", "remote-server-not-found"),  # no s2s module yet
])
def test_undeliverable_message_bounces_with_an_error(server, to, condition):
    async def body():
        alice = await connect(make_client(ALICE[0], ALICE[1], server), server)
        got = next_event(alice, "message", predicate=lambda m: m["type"] == "error")
        alice.send_message(mto=to, mbody="hello?", mtype="chat")
        err = await got
        assert error_condition(err)[0] == condition
        assert str(err["from"]) == to
        assert err["body"] == "hello?"  # RFC 6120 §8.3.1: the original payload comes back
        await disconnect(alice)
    run(body())


def test_iq_to_unavailable_resource_gets_service_unavailable(server):
    s = RawStream(server)
    s.login(*("alice", "alice-secret"))
    s.send("<iq type='get' id='q1' to='bob@localhost/nowhere'><query xmlns='jabber:iq:version'/></iq>")
    m = s.read_until(rb"<iq[^>]*id=['\"]q1['\"].*?</iq>")
    assert b"type='error'" in m.group(0)
    assert b"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in m.group(0)
    s.close()


def test_iq_to_account_bare_jid_is_answered_by_the_server(server):
    """An iq to user@host in a namespace no module serves: the server answers for the account
    (RFC 6121 §8.5.2.1.3), the user's clients never see it."""
    bob = RawStream(server)
    bob.login("bob", "bob-secret", "desk")
    bob.send("<presence/>")
    alice = RawStream(server)
    alice.login("alice", "alice-secret")
    alice.send("<iq type='get' id='q2' to='bob@localhost'><query xmlns='urn:example:nothing'/></iq>")
    m = alice.read_until(rb"<iq[^>]*id=['\"]q2['\"].*?</iq>")
    assert b"<service-unavailable" in m.group(0)
    assert b"from='bob@localhost'" in m.group(0)
    bob.ping_server()  # and bob got nothing but his pong
    assert b"urn:example:nothing" not in bob.buffer
    alice.close()
    bob.close()


def test_directed_presence_between_online_users(server):
    async def body():
        alice = await connect(make_client(ALICE[0] + "/a", ALICE[1], server), server)
        bob = await connect(make_client(BOB[0] + "/b", BOB[1], server), server)
        got = next_event(bob, "presence", predicate=lambda p: p["from"].bare == "alice@localhost")
        alice.send_presence(pto="bob@localhost", pstatus="just for you", pshow="away")
        presence = await got
        assert presence["status"] == "just for you" and presence["show"] == "away"
        assert str(presence["from"]) == "alice@localhost/a"
        await disconnect(alice, bob)
    run(body())


def test_own_resources_see_each_others_presence(server):
    async def body():
        first = await connect(make_client(ALICE[0] + "/one", ALICE[1], server), server)
        got = next_event(first, "presence", predicate=lambda p: p["from"].resource == "two")
        second = await connect(make_client(ALICE[0] + "/two", ALICE[1], server), server,
                               presence=False)
        second.send_presence(pstatus="second device")
        assert (await got)["status"] == "second device"
        await disconnect(first, second)
    run(body())


def test_bind_conflict_new_session_takes_over(server):
    old = RawStream(server)
    assert old.login("alice", "alice-secret", "same") == "alice@localhost/same"
    new = RawStream(server)
    assert new.login("alice", "alice-secret", "same") == "alice@localhost/same"
    assert old.stream_error() == "conflict"
    new.ping_server()
    new.close()


def test_server_generated_resource_and_legacy_session_iq(server):
    s = RawStream(server)
    jid = s.login("bob", "bob-secret")
    assert jid.startswith("bob@localhost/") and len(jid) > len("bob@localhost/")
    s.send("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
    m = s.read_until(rb"<iq[^>]*id=['\"]sess['\"][^>]*/?>")
    assert b"type='result'" in m.group(0)
    s.close()


def test_message_to_the_server_itself_is_refused(server):
    s = RawStream(server)
    s.login("alice", "alice-secret")
    s.send("<message to='localhost' id='m1' type='chat'><body>hi server</body></message>")
    m = s.read_until(rb"<message[^>]*id=['\"]m1['\"].*?</message>")
    assert b"type='error'" in m.group(0) and b"<service-unavailable" in m.group(0)
    s.close()
