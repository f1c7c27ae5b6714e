"""People see each other come and go (RFC 6121 §4): presence broadcast to subscribers,
probes when a resource comes online, the last unavailable presence for an offline contact,
directed presence and its unavailable at logout, and the user's own resources.
"""
import asyncio
import xml.etree.ElementTree as ET

import pytest

from tern_harness import connect, disconnect, make_client, run
from test_roster import C, ImClient, new_users, start_server
from test_subscriptions import befriend, login, login_friends, subscription_presence

DELAY = "{urn:xmpp:delay}delay"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    server = start_server(tmp_path_factory.mktemp("presence"), pki)
    yield server
    server.check_clean_exit()


def presences_from(client, sender):
    """Presence stanzas from `sender` (bare JID) that arrived, after a sync."""
    return [e for e in client.drain()
            if e.tag == C + "presence" and e.get("from", "").split("/")[0] == sender]


def assert_silence(client, sender):
    stray = presences_from(client, sender)
    assert not stray, ET.tostring(stray[0])


async def next_event(client, name, predicate, timeout=5):
    fut = asyncio.get_running_loop().create_future()

    def handler(stanza):
        if not fut.done() and predicate(stanza):
            fut.set_result(stanza)
    client.add_event_handler(name, handler)
    try:
        return await asyncio.wait_for(fut, timeout)
    finally:
        client.del_event_handler(name, handler)


def test_alice_sees_bob_come_online_go_away_and_go_offline(srv):
    """The user story with real clients (slixmpp)."""
    a, b = new_users(srv, "alice", "bob")
    befriend(srv, a, b)
    B = f"{b}@localhost"

    async def body():
        alice = await connect(make_client(f"{a}@localhost/phone", "secret", srv), srv)
        bob = await connect(make_client(f"{B}/laptop", "secret", srv), srv, presence=False)
        from_bob = lambda p: str(p["from"]) == f"{B}/laptop"
        got = next_event(alice, "presence_available", from_bob)
        bob.send_presence(pstatus="hello")
        assert (await got)["status"] == "hello"
        got = next_event(alice, "changed_status", lambda p: from_bob(p) and p["show"] == "away")
        bob.send_presence(pshow="away", pstatus="lunch")
        assert (await got)["status"] == "lunch"
        got = next_event(alice, "presence_unavailable", from_bob)
        bob.disconnect()
        await got
        await disconnect(alice)
    run(body())


def test_initial_presence_probes_contacts_and_reaches_subscribers(srv):
    """§4.2.2: probes to contacts the user is subscribed to, and the new presence to the
    contacts subscribed to the user, from the full JID."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    bob = login(srv, b, status="here")
    bob.drain()
    alice = ImClient(srv, a, roster=True, presence="<presence><status>hi</status></presence>")
    p = alice.presence(f"{B}/res", "available")    # the answer to alice's probe
    assert p.findtext(C + "status") == "here"
    p = bob.presence(f"{A}/res", "available")
    assert p.get("from") == f"{A}/res" and p.findtext(C + "status") == "hi"
    assert p.get("to") == B
    alice.close()
    bob.close()


def test_presence_flows_only_where_subscriptions_allow(srv):
    """Three users: alice and bob are mutual contacts; carol is subscribed to alice but alice
    is not subscribed to carol; dave is a stranger."""
    a, b, c, d = new_users(srv, "alice", "bob", "carol", "dave")
    A, B, Cj, D = (f"{x}@localhost" for x in (a, b, c, d))
    befriend(srv, a, b)
    carol, alice = login(srv, c), login(srv, a)
    carol.send(f"<presence type='subscribe' to='{A}'/>")
    subscription_presence(alice, "subscribe", Cj)
    alice.send(f"<presence type='subscribed' to='{Cj}'/>")
    carol.presence(f"{A}/res", "available")     # §3.1.5: alice's presence once approved
    bob, dave = login(srv, b), login(srv, d)
    for client in (alice, bob, carol, dave):
        client.drain()

    alice.send("<presence><status>alice speaking</status></presence>")
    for watcher in (bob, carol):
        assert watcher.presence(f"{A}/res").findtext(C + "status") == "alice speaking"
    assert_silence(dave, A)

    carol.send("<presence><status>carol speaking</status></presence>")
    bob.send("<presence><status>bob speaking</status></presence>")
    assert alice.presence(f"{B}/res").findtext(C + "status") == "bob speaking"
    carol.sync()
    assert_silence(alice, Cj)                    # alice has no subscription to carol
    assert_silence(bob, Cj)
    assert_silence(carol, B)
    assert_silence(dave, B)
    for client in (alice, bob, carol, dave):
        client.close()


def test_a_users_resources_see_each_other(srv):
    """§4.2.2: the new resource's presence goes to all the user's available resources, itself
    included, and the new resource gets the presence of the others."""
    (a,) = new_users(srv, "alice")
    A = f"{a}@localhost"
    one = ImClient(srv, a, "one", presence="<presence><status>first</status></presence>")
    assert one.presence(f"{A}/one").get("to") == f"{A}/one"   # its own presence back
    two = ImClient(srv, a, "two", presence="<presence><status>second</status></presence>")
    assert two.presence(f"{A}/one").findtext(C + "status") == "first"
    assert two.presence(f"{A}/two").findtext(C + "status") == "second"
    assert one.presence(f"{A}/two").findtext(C + "status") == "second"
    two.send("<presence type='unavailable'/>")
    one.presence(f"{A}/two", "unavailable")
    one.close()
    two.close()


def test_priority_show_and_status_are_passed_on(srv):
    a, b = new_users(srv, "alice", "bob")
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    bob.send("<presence><show>chat</show><status>talk to me</status><priority>5</priority>"
             "</presence>")
    p = alice.presence(f"{b}@localhost/res")
    assert (p.findtext(C + "show"), p.findtext(C + "status"), p.findtext(C + "priority")) == \
        ("chat", "talk to me", "5")
    alice.close()
    bob.close()


def test_an_offline_contact_is_known_by_the_last_unavailable_presence(srv):
    """§4.3.2: with no available resource, a probe is answered with the last unavailable
    presence, stamped with its time (XEP-0203)."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    bob = login(srv, b, "boat")
    bob.send("<presence type='unavailable'><status>gone fishing</status></presence>")
    bob.close()
    alice = login(srv, a)
    p = alice.presence(B, "unavailable")
    assert p.get("from") == f"{B}/boat" and p.findtext(C + "status") == "gone fishing"
    assert p.find(DELAY) is not None and p.find(DELAY).get("stamp").endswith("Z")
    # And a probe the client itself sends gets the same answer.
    alice.send(f"<presence type='probe' to='{B}'/>")
    assert alice.presence(B, "unavailable").findtext(C + "status") == "gone fishing"
    alice.close()


def test_a_probe_from_someone_not_subscribed_reveals_nothing(srv):
    """§4.3.2: no presence for an entity without a subscription (the server's answer is
    'unsubscribed', which the prober's server drops since there is nothing to cancel), and
    probes never reach the user's clients."""
    a, d = new_users(srv, "alice", "dave")
    A = f"{a}@localhost"
    alice, dave = login(srv, a, status="secret status"), login(srv, d)
    dave.drain()
    dave.send(f"<presence type='probe' to='{A}'/>")
    dave.send(f"<presence type='probe' to='{A}/res'/>")
    alice.sync()
    assert_silence(dave, A)
    assert not [e for e in alice.drain() if e.get("type") == "probe"]
    alice.close()
    dave.close()


def test_a_probe_to_a_full_jid_is_answered_by_the_server(srv):
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    alice.send("<presence><status>now</status></presence>")
    bob.presence(f"{A}/res")
    bob.send(f"<presence type='probe' to='{A}/res'/>")
    assert bob.presence(f"{A}/res").findtext(C + "status") == "now"
    assert not [e for e in alice.drain() if e.get("type") == "probe"]
    alice.close()
    bob.close()


def test_directed_presence_is_ended_at_logout(srv):
    """§4.6: directed presence reaches an entity without a subscription; when the session
    ends without unavailable presence, that entity gets unavailable presence."""
    a, d = new_users(srv, "alice", "dave")
    A, D = f"{a}@localhost", f"{d}@localhost"
    alice, dave = login(srv, a), login(srv, d)
    alice.send(f"<presence to='{D}/res'><status>psst</status></presence>")
    p = dave.presence(f"{A}/res", "available")
    assert p.findtext(C + "status") == "psst" and p.get("to") == f"{D}/res"
    alice.send("<presence><status>everyone</status></presence>")  # a broadcast: not for dave
    alice.sync()
    assert_silence(dave, A)
    alice.close()
    p = dave.presence(f"{A}/res", "unavailable")
    assert p.get("to") == f"{D}/res"
    assert_silence(dave, A)
    dave.close()


def test_directed_presence_is_ended_by_unavailable_broadcast(srv):
    a, d = new_users(srv, "alice", "dave")
    A, D = f"{a}@localhost", f"{d}@localhost"
    alice, dave = login(srv, a), login(srv, d)
    alice.send(f"<presence to='{D}'/>")
    dave.presence(f"{A}/res", "available")
    alice.send("<presence type='unavailable'><status>bye</status></presence>")
    p = dave.presence(f"{A}/res", "unavailable")
    assert p.get("to") == D
    alice.close()
    alice.raw.close()
    dave.sync()
    assert_silence(dave, A)
    dave.close()


def test_directed_unavailable_is_not_repeated_at_logout(srv):
    a, d = new_users(srv, "alice", "dave")
    A, D = f"{a}@localhost", f"{d}@localhost"
    alice, dave = login(srv, a), login(srv, d)
    alice.send(f"<presence to='{D}'/>")
    dave.presence(f"{A}/res", "available")
    alice.send(f"<presence type='unavailable' to='{D}'/>")
    dave.presence(f"{A}/res", "unavailable")
    alice.close()
    ImClient(srv, a, "probe-sync").close()       # alice's logout is processed by now
    dave.sync()
    assert_silence(dave, A)
    dave.close()


def test_a_session_that_ends_while_available_goes_unavailable(srv):
    """A connection that drops (no unavailable presence, no stream close) is broadcast as
    unavailable to contacts and to the user's other resources."""
    a, b = new_users(srv, "alice", "bob")
    A = f"{a}@localhost"
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    other = login(srv, a, "other")
    other.presence(f"{A}/res")
    bob.presence(f"{A}/other")
    alice.close(gracefully=False)
    for watcher in (bob, other):
        p = watcher.presence(f"{A}/res", "unavailable")
        assert p.get("from") == f"{A}/res"
    bob.close()
    other.close()


def test_unavailable_before_initial_presence_is_not_broadcast(srv):
    a, b = new_users(srv, "alice", "bob")
    befriend(srv, a, b)
    bob = login(srv, b)
    bob.drain()
    alice = ImClient(srv, a, roster=True)
    alice.send("<presence type='unavailable'/>")
    alice.sync()
    assert_silence(bob, f"{a}@localhost")
    alice.close()
    bob.close()


def test_presence_errors_are_delivered_once_and_nothing_loops(srv):
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    alice.send(f"<presence type='error' to='{B}'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
               "</presence>")
    assert bob.presence(A, "error").get("from") == f"{A}/res"
    alice.sync()
    assert_silence(bob, A)
    assert_silence(alice, B)
    # A subscription request to a domain the server cannot reach comes back as an error, once.
    alice.send("<presence type='subscribe' to='someone@elsewhere.example'/>")
    err = alice.presence("someone@elsewhere.example", "error")
    assert err.find(f"{C}error/{{urn:ietf:params:xml:ns:xmpp-stanzas}}remote-server-not-found") \
        is not None
    assert not presences_from(alice, "someone@elsewhere.example")
    alice.close()
    bob.close()
