"""Two people manage presence subscriptions (RFC 6121 §3 and the state tables of its
Appendix A): requests, approvals, refusals, cancellations and pre-approvals, with either side
online or offline, and what each side's roster says after every step.

Each test uses fresh accounts on a shared server, so tests do not see each other's state.
"""
import re
import xml.etree.ElementTree as ET

import pytest

from test_roster import (C, R, ImClient, item_state, new_users, roster_state,
                         start_server)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    server = start_server(tmp_path_factory.mktemp("subscriptions"), pki)
    yield server
    server.check_clean_exit()


def login(srv, user, resource="res", status=None):
    """An interested, available resource (roster requested, initial presence sent)."""
    status_xml = f"<status>{status}</status>" if status else ""
    return ImClient(srv, user, resource, roster=True, presence=f"<presence>{status_xml}</presence>")


def subscription_presence(client, type_, from_):
    p = client.presence(from_, type_)
    # RFC 6121 §3.1.2 and §3.1.3: subscription stanzas carry bare JIDs.
    assert p.get("from") == from_ and "/" not in from_, ET.tostring(p)
    assert p.get("to") == client.bare
    return p


def nothing_from(client, sender):
    """Nothing from `sender` (bare) is waiting for client (after a sync round trip)."""
    stray = [e for e in client.drain() if e.get("from", "").split("/")[0] == sender]
    assert not stray, ET.tostring(stray[0])


def no_pushes(client):
    stray = [e for e in client.drain() if e.find(R + "query") is not None]
    assert not stray, ET.tostring(stray[0])


def befriend(srv, a, b):
    """Both directions (subscription 'both'), through the protocol, with both online."""
    ca, cb = login(srv, a, "setup"), login(srv, b, "setup")
    ca.send(f"<presence type='subscribe' to='{b}@localhost'/>")
    subscription_presence(cb, "subscribe", f"{a}@localhost")
    cb.send(f"<presence type='subscribed' to='{a}@localhost'/>")
    cb.send(f"<presence type='subscribe' to='{a}@localhost'/>")
    subscription_presence(ca, "subscribe", f"{b}@localhost")
    ca.send(f"<presence type='subscribed' to='{b}@localhost'/>")
    ca.sync()
    cb.sync()
    assert roster_state(ca, f"{b}@localhost") == ("both", None, None)
    assert roster_state(cb, f"{a}@localhost") == ("both", None, None)
    ca.close()
    cb.close()


def login_friends(srv, a, b):
    """Logs in two friends; each has seen the other come online; queues are empty."""
    alice, bob = login(srv, a), login(srv, b)
    alice.presence(f"{b}@localhost/res", "available")
    bob.presence(f"{a}@localhost/res", "available")
    alice.drain()
    bob.drain()
    return alice, bob


# ---------------------------------------------------------------- subscribing


def test_request_and_approval_with_both_online(srv):
    """§3.1: alice asks, bob approves; then bob asks back and alice approves: 'both'."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice, bob = login(srv, a), login(srv, b, status="at my desk")

    alice.send(f"<presence type='subscribe' to='{B}'><status>it is me</status></presence>")
    # A.2.1: None -> None + Pending Out, pushed to alice.
    _, item = alice.push(B)
    assert item_state(item) == ("none", "subscribe", None)
    request = subscription_presence(bob, "subscribe", A)
    assert request.findtext(C + "status") == "it is me"  # extended content is kept (§3.1.3)
    no_pushes(bob)  # A.3.1: pending in is not a roster item

    bob.send(f"<presence type='subscribed' to='{A}'/>")
    _, item = bob.push(A)
    assert item_state(item) == ("from", None, None)     # A.2.2: None + Pending In -> From
    subscription_presence(alice, "subscribed", B)
    _, item = alice.push(B)
    assert item_state(item) == ("to", None, None)       # A.3.2: None + Pending Out -> To
    # §3.1.5: bob's server sends bob's current presence to alice.
    p = alice.presence(f"{B}/res", "available")
    assert p.get("from") == f"{B}/res" and p.findtext(C + "status") == "at my desk"

    bob.send(f"<presence type='subscribe' to='{A}'/>")
    assert item_state(bob.push(A)[1]) == ("from", "subscribe", None)    # From + Pending Out
    subscription_presence(alice, "subscribe", B)
    alice.send(f"<presence type='subscribed' to='{B}'/>")
    assert item_state(alice.push(B)[1]) == ("both", None, None)
    assert item_state(bob.push(A)[1]) == ("both", None, None)
    bob.presence(f"{A}/res", "available")
    assert roster_state(alice, B) == ("both", None, None)
    assert roster_state(bob, A) == ("both", None, None)
    alice.close()
    bob.close()


def test_request_to_an_offline_contact_waits_and_is_delivered_again_until_answered(srv):
    """§3.1.3 rule 4: kept whole, delivered at the next initial presence, and at every one
    after it until the contact answers; the roster does not list the requester."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice = login(srv, a)
    alice.send(f"<presence type='subscribe' to='{B}'><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>")
    alice.push(B)

    bob = ImClient(srv, b, "one", roster=True)
    assert roster_state(bob, A) is None
    nothing_from(bob, A)                       # not before initial presence
    bob.send("<presence/>")
    request = subscription_presence(bob, "subscribe", A)
    assert request.findtext("{http://jabber.org/protocol/nick}nick") == "Al"
    bob.close()

    bob = login(srv, b, "two")
    subscription_presence(bob, "subscribe", A)  # again: still unanswered
    bob.send(f"<presence type='subscribed' to='{A}'/>")
    subscription_presence(alice, "subscribed", B)
    assert item_state(alice.push(B)[1]) == ("to", None, None)
    bob.close()

    bob = login(srv, b, "three")
    nothing_from(bob, A)                       # answered: no more deliveries
    bob.close()
    alice.close()


def test_a_second_request_while_one_is_pending_is_not_delivered_twice(srv):
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice, bob = login(srv, a), login(srv, b)
    alice.send(f"<presence type='subscribe' to='{B}'/>")
    subscription_presence(bob, "subscribe", A)
    alice.send(f"<presence type='subscribe' to='{B}'/>")   # A.3.1: None + Pending In: no change
    alice.sync()
    nothing_from(bob, A)
    alice.close()
    bob.close()


def test_approval_while_the_requester_is_offline(srv):
    """The requester's roster says 'to' at the next login, and the probe sent with initial
    presence brings the contact's presence."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice = login(srv, a)
    alice.send(f"<presence type='subscribe' to='{B}'/>")
    alice.push(B)
    alice.close()

    bob = login(srv, b, status="working")
    subscription_presence(bob, "subscribe", A)
    bob.send(f"<presence type='subscribed' to='{A}'/>")
    assert item_state(bob.push(A)[1]) == ("from", None, None)

    alice = ImClient(srv, a, roster=True)
    assert roster_state(alice, B) == ("to", None, None)
    alice.send("<presence/>")
    p = alice.presence(f"{B}/res", "available")
    assert p.findtext(C + "status") == "working"
    alice.close()
    bob.close()


def test_refusing_a_request(srv):
    """A.2.4 / A.3.4: unsubscribed answers a pending request: both sides end with nothing."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice = login(srv, a)
    alice.send(f"<presence type='subscribe' to='{B}'/>")
    alice.push(B)
    bob = login(srv, b)
    subscription_presence(bob, "subscribe", A)
    bob.send(f"<presence type='unsubscribed' to='{A}'/>")
    subscription_presence(alice, "unsubscribed", B)
    assert item_state(alice.push(B)[1]) == ("none", None, None)
    assert roster_state(bob, A) is None
    no_pushes(bob)
    bob.close()
    bob = login(srv, b, "again")
    nothing_from(bob, A)                        # the request is gone
    bob.close()
    alice.close()


def test_withdrawing_a_pending_request(srv):
    """A.2.3: None + Pending Out -> None; A.3.3: the contact's pending request goes."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice = login(srv, a)
    alice.send(f"<presence type='subscribe' to='{B}'/>")
    alice.push(B)
    alice.send(f"<presence type='unsubscribe' to='{B}'/>")
    assert item_state(alice.push(B)[1]) == ("none", None, None)
    bob = login(srv, b)
    nothing_from(bob, A)
    bob.close()
    alice.close()


def test_subscribing_to_a_nonexistent_user(srv):
    """Nothing comes back (RFC 6121 §8.5.1: presence to no such user is dropped); the
    requester's roster keeps the pending request, as for any contact that does not answer."""
    (a,) = new_users(srv, "alice")
    alice = login(srv, a)
    alice.send("<presence type='subscribe' to='nobody@localhost'/>")
    assert item_state(alice.push("nobody@localhost")[1]) == ("none", "subscribe", None)
    stray = [e for e in alice.drain() if e.tag == C + "presence" and e.get("from") != alice.jid]
    assert not stray, ET.tostring(stray[0])
    assert roster_state(alice, "nobody@localhost") == ("none", "subscribe", None)
    alice.close()


def test_a_request_to_a_full_jid_is_handled_as_to_the_bare_jid(srv):
    """§3.1.3: the contact's server treats it as addressed to the bare JID: every available
    resource sees it, from the requester's bare JID."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice, bob1, bob2 = login(srv, a), login(srv, b, "one"), login(srv, b, "two")
    alice.send(f"<presence type='subscribe' to='{B}/one'/>")
    assert item_state(alice.push(B)[1]) == ("none", "subscribe", None)
    subscription_presence(bob1, "subscribe", A)
    subscription_presence(bob2, "subscribe", A)
    for c in (alice, bob1, bob2):
        c.close()


# ---------------------------------------------------------------- pre-approval (§3.4)


def test_pre_approval(srv):
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice = login(srv, a, status="pre-approved you")
    alice.send(f"<presence type='subscribed' to='{B}'/>")
    assert item_state(alice.push(B)[1]) == ("none", None, "true")
    bob = login(srv, b)
    nothing_from(bob, A)                        # a pre-approval is not routed
    bob.send(f"<presence type='subscribe' to='{A}'/>")
    assert item_state(bob.push(A)[1]) == ("none", "subscribe", None)
    # Approved at once on alice's behalf; alice never sees the request.
    subscription_presence(bob, "subscribed", A)
    assert item_state(bob.push(A)[1]) == ("to", None, None)
    assert bob.presence(f"{A}/res", "available").findtext(C + "status") == "pre-approved you"
    assert item_state(alice.push(B)[1]) == ("from", None, None)
    nothing_from(alice, B)
    alice.close()
    bob.close()


def test_cancelling_a_pre_approval(srv):
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice = login(srv, a)
    alice.send(f"<presence type='subscribed' to='{B}'/>")
    assert item_state(alice.push(B)[1]) == ("none", None, "true")
    alice.send(f"<presence type='unsubscribed' to='{B}'/>")
    assert item_state(alice.push(B)[1]) == ("none", None, None)
    bob = login(srv, b)
    bob.send(f"<presence type='subscribe' to='{A}'/>")
    subscription_presence(alice, "subscribe", B)   # an ordinary request again
    bob.sync()
    assert roster_state(bob, A) == ("none", "subscribe", None)
    alice.close()
    bob.close()


def test_an_already_approved_contact_is_answered_automatically(srv):
    """§3.1.3 rule 2: a request from a contact that already has a subscription is answered
    by the server; the user is not asked again."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    bob.send(f"<presence type='subscribe' to='{A}'/>")
    bob.sync()
    nothing_from(alice, B)
    assert roster_state(bob, A) == ("both", None, None)
    assert roster_state(alice, B) == ("both", None, None)
    alice.close()
    bob.close()


# ---------------------------------------------------------------- ending subscriptions


def test_unsubscribe(srv):
    """§3.3: alice stops receiving bob's presence. Both -> From for alice (A.2.3), Both -> To
    for bob (A.3.3); bob's server sends alice bob's unavailable presence."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    alice.send(f"<presence type='unsubscribe' to='{B}'/>")
    assert item_state(alice.push(B)[1]) == ("from", None, None)
    subscription_presence(bob, "unsubscribe", A)
    assert item_state(bob.push(A)[1]) == ("to", None, None)
    alice.presence(f"{B}/res", "unavailable")
    # Now one-way: bob still sees alice, alice no longer sees bob.
    bob.send("<presence><show>away</show></presence>")
    alice.sync()
    stray = [e for e in alice.drain() if e.get("from") == f"{B}/res"]
    assert not stray, ET.tostring(stray[0])
    alice.send("<presence><show>dnd</show></presence>")
    assert bob.presence(f"{A}/res", "available").findtext(C + "show") == "dnd"
    # And the rest of the way: To -> None (alice: From -> None).
    bob.send(f"<presence type='unsubscribe' to='{A}'/>")
    assert item_state(bob.push(A)[1]) == ("none", None, None)
    subscription_presence(alice, "unsubscribe", B)
    assert item_state(alice.push(B)[1]) == ("none", None, None)
    bob.presence(f"{A}/res", "unavailable")
    alice.close()
    bob.close()


def test_cancelling_a_subscription_with_unsubscribed(srv):
    """§3.2: bob stops sharing his presence. Both -> To for bob (A.2.4), Both -> From for
    alice (A.3.4), and alice gets bob's unavailable presence (§3.2.2)."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    bob.send(f"<presence type='unsubscribed' to='{A}'/>")
    assert item_state(bob.push(A)[1]) == ("to", None, None)
    subscription_presence(alice, "unsubscribed", B)
    assert item_state(alice.push(B)[1]) == ("from", None, None)
    alice.presence(f"{B}/res", "unavailable")
    # A second unsubscribed changes nothing and is not routed (A.2.4, To).
    bob.send(f"<presence type='unsubscribed' to='{A}'/>")
    bob.sync()
    nothing_from(alice, B)
    no_pushes(bob)
    alice.close()
    bob.close()


def test_removing_a_contact_cancels_both_directions(srv):
    """§2.5.2: the removal sends unsubscribe and unsubscribed; both rosters change."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    befriend(srv, a, b)
    alice, bob = login_friends(srv, a, b)
    reply = alice.roster_set(f"<item jid='{B}' subscription='remove'/>")
    assert reply.get("type") == "result"
    assert alice.push(B)[1].get("subscription") == "remove"
    subscription_presence(bob, "unsubscribe", A)
    subscription_presence(bob, "unsubscribed", A)
    bob.presence(f"{A}/res", "unavailable")
    # Bob keeps alice in his roster, with no subscription left.
    assert item_state(bob.push(A)[1]) == ("to", None, None)     # A.3.3: Both -> To
    assert item_state(bob.push(A)[1]) == ("none", None, None)   # A.3.4: To -> None
    assert roster_state(bob, A) == ("none", None, None)
    assert roster_state(alice, B) is None
    alice.close()
    bob.close()


def test_removing_a_contact_with_a_pending_request_refuses_it(srv):
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice = login(srv, a)
    alice.send(f"<presence type='subscribe' to='{B}'/>")
    alice.push(B)
    bob = login(srv, b)
    subscription_presence(bob, "subscribe", A)
    bob.roster_set(f"<item jid='{A}' name='Alice?'/>")
    bob.push(A)
    bob.roster_set(f"<item jid='{A}' subscription='remove'/>")
    subscription_presence(alice, "unsubscribed", B)
    assert item_state(alice.push(B)[1]) == ("none", None, None)
    bob.close()
    bob = login(srv, b, "later")
    nothing_from(bob, A)
    bob.close()
    alice.close()


# ---------------------------------------------------------------- stanzas that change nothing


@pytest.mark.parametrize("type_", ["subscribed", "unsubscribe", "unsubscribed"])
def test_unsolicited_answers_are_dropped(srv, type_):
    """A.3: a subscribed, unsubscribe or unsubscribed that matches no state is neither
    delivered nor recorded."""
    a, b = new_users(srv, "alice", "bob")
    A, B = f"{a}@localhost", f"{b}@localhost"
    alice, bob = login(srv, a), login(srv, b)
    bob.send(f"<presence type='{type_}' to='{A}'/>")
    bob.sync()
    nothing_from(alice, B)
    no_pushes(alice)
    assert roster_state(alice, B) is None
    # (bob's own state: an unsolicited unsubscribed pre-approval cancel, etc. changes nothing
    # visible either, except that 'subscribed' pre-approves alice)
    expected = ("none", None, "true") if type_ == "subscribed" else None
    assert roster_state(bob, A) == expected
    alice.close()
    bob.close()


def test_subscribing_to_oneself_is_ignored(srv):
    (a,) = new_users(srv, "alice")
    alice = login(srv, a)
    alice.send(f"<presence type='subscribe' to='{a}@localhost'/>")
    alice.send("<presence type='subscribe'/>")
    stray = alice.drain()
    assert not [e for e in stray if e.tag == C + "presence" and e.get("type") == "subscribe"]
    assert not [e for e in stray if e.find(R + "query") is not None]
    assert alice.roster() == ("0", {})
    alice.close()


def test_subscription_state_survives_a_restart(tmp_path, pki):
    server = start_server(tmp_path, pki)
    try:
        alice = login(server, "alice")
        alice.send("<presence type='subscribe' to='bob@localhost'/>")
        alice.push("bob@localhost")
        alice.close()
        assert server.stop() == 0
        server.start()
        bob = login(server, "bob")
        subscription_presence(bob, "subscribe", "alice@localhost")  # kept across the restart
        bob.send("<presence type='subscribed' to='alice@localhost'/>")
        bob.push("alice@localhost")
        bob.close()
        server.kill9()
        server.start()
        alice = ImClient(server, "alice")
        assert roster_state(alice, "bob@localhost") == ("to", None, None)
        alice.close()
        server.check_clean_exit()
    finally:
        if server.proc and server.proc.poll() is None:
            server.kill9()


def test_a_deleted_account_cancels_its_subscriptions(tmp_path, pki):
    """An account removed while contacts subscribe to it: they see it go offline, then get
    unsubscribe and unsubscribed, so their rosters keep no subscription to nobody."""
    from tern_harness import TernServer
    server = TernServer(tmp_path, pki, modules="disco ping roster presence register")
    for user in ("alice", "bob"):
        server.add_user(f"{user}@localhost", "secret")
    server.start()
    try:
        befriend(server, "alice", "bob")
        alice, bob = login_friends(server, "alice", "bob")
        # Bob's stream ends right after the answer, so read it as raw bytes.
        bob.send("<iq type='set' id='rm1'><query xmlns='jabber:iq:register'><remove/></query></iq>")
        assert bob.raw.stream_error() == "not-authorized"
        assert re.search(rb"<iq[^>]*id='rm1'[^>]*type='result'|<iq[^>]*type='result'[^>]*id='rm1'",
                         bob.raw.buffer)
        alice.presence("bob@localhost/res", "unavailable")
        subscription_presence(alice, "unsubscribe", "bob@localhost")
        subscription_presence(alice, "unsubscribed", "bob@localhost")
        assert roster_state(alice, "bob@localhost") == ("none", None, None)
        alice.close()
    finally:
        server.check_clean_exit()
