"""Last activity (XEP-0012, the last module): how long the server has been up, and when an
account last logged out and with which status — told only to the account itself and to those
allowed to see its presence."""
import itertools
import re
import time
import xml.etree.ElementTree as ET

import pytest

from tern_harness import RawStream, TernServer

NS_LAST = "jabber:iq:last"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

_ids = itertools.count(1)
_names = itertools.count(1)


def _server(folder, pki, modules):
    srv = TernServer(folder, pki, modules=modules)
    srv.add_user("alice@localhost", "alice-secret")
    srv.add_user("bob@localhost", "bob-secret")
    srv.started_at = time.time()
    return srv.start()


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    # No roster module: nobody has a subscription to anybody.
    srv = _server(tmp_path_factory.mktemp("last"), pki, "disco ping last")
    yield srv
    srv.check_clean_exit()


@pytest.fixture
def user(server):
    """An account of our own for each test, so records never leak between tests."""
    name = f"carol{next(_names)}"
    server.add_user(f"{name}@localhost", "carol-secret")
    return name


def login(server, user, password, resource="r", presence="<presence/>"):
    s = RawStream(server)
    s.login(user, password, resource)
    if presence:
        s.send(presence)
    return s


def iq(s, to, payload=f"<query xmlns='{NS_LAST}'/>", kind="get"):
    """Sends an iq and returns the reply, parsed."""
    ident = f"q{next(_ids)}"
    s.send(f"<iq type='{kind}' id='{ident}' to='{to}'>{payload}</iq>")
    m = s.read_until(rf"<iq[^>]*id=['\"]{ident}['\"][^>]*(/>|>.*?</iq>)".encode())
    return ET.fromstring(b"<r xmlns='jabber:client'>" + m.group(0) + b"</r>")[0]


def last(s, to):
    """(seconds, text) from a result; raises on an error reply."""
    reply = iq(s, to)
    assert reply.get("type") == "result", ET.tostring(reply)
    assert reply.get("from") == to
    query = reply.find(f"{{{NS_LAST}}}query")
    assert query is not None and len(query) == 0, ET.tostring(reply)
    return int(query.get("seconds")), query.text or ""


def error_of(reply):
    assert reply.get("type") == "error", ET.tostring(reply)
    err = reply.find("{jabber:client}error")
    conditions = [c.tag.split("}")[1] for c in err
                  if c.tag.startswith("{" + NS_STANZAS + "}") and not c.tag.endswith("}text")]
    return conditions[0], err.get("type")


def log_out(server, name, password, status=None):
    """A session that becomes available and then logs out, with a status or by just closing
    its stream."""
    s = login(server, name, password, "gone")
    s.ping_server("before")
    if status is None:
        s.send("</stream:stream>")
        s.wait_closed()
    else:
        s.send(f"<presence type='unavailable'><status>{status}</status></presence>")
        s.ping_server("after")
    s.close()


def test_server_uptime(server):
    alice = login(server, "alice", "alice-secret")
    seconds, text = last(alice, "localhost")
    # XEP-0012 §5: the uptime, and no character data.
    assert text == ""
    assert 0 <= seconds <= time.time() - server.started_at + 1
    time.sleep(2.1)
    later, _ = last(alice, "localhost")
    assert later >= seconds + 2
    alice.close()


def test_last_logout_and_status_are_told_to_the_account_only(server, user):
    log_out(server, user, "carol-secret", status="gone fishing")
    logged_out_at = time.time()

    # XEP-0012 §3: someone without a presence subscription is refused...
    alice = login(server, "alice", "alice-secret")
    reply = iq(alice, f"{user}@localhost")
    assert error_of(reply) == ("forbidden", "auth")
    assert reply.get("from") == f"{user}@localhost"
    assert b"gone fishing" not in alice.buffer

    # ...but the account itself (bound, not available) is told.
    me = login(server, user, "carol-secret", "me", presence=None)
    seconds, text = last(me, f"{user}@localhost")
    assert text == "gone fishing"
    assert 0 <= seconds <= 2
    time.sleep(2.1)
    seconds, text = last(me, f"{user}@localhost")
    assert text == "gone fishing"
    assert int(time.time() - logged_out_at) - 1 <= seconds <= time.time() - logged_out_at + 2
    me.close()
    alice.close()


def test_an_available_account_is_zero_seconds_away(server, user):
    log_out(server, user, "carol-secret", status="earlier")
    online = login(server, user, "carol-secret", "online")
    online.ping_server()
    # XEP-0012 §3: an empty query with seconds='0' while a resource is available.
    assert last(online, f"{user}@localhost") == (0, "")
    # And a stranger still learns nothing, online or not.
    alice = login(server, "alice", "alice-secret")
    assert error_of(iq(alice, f"{user}@localhost")) == ("forbidden", "auth")
    online.close()
    alice.close()


def test_closing_the_stream_without_unavailable_presence_is_a_logout(server, user):
    log_out(server, user, "carol-secret", status="this status is replaced")
    time.sleep(1.1)
    log_out(server, user, "carol-secret", status=None)
    me = login(server, user, "carol-secret", "me", presence=None)
    seconds, text = last(me, f"{user}@localhost")
    assert text == "" and 0 <= seconds <= 2
    me.close()


def test_a_session_that_never_sent_presence_is_no_logout(server, user):
    log_out(server, user, "carol-secret", status="the real logout")
    quiet = login(server, user, "carol-secret", "quiet", presence=None)
    quiet.ping_server()
    quiet.close()
    me = login(server, user, "carol-secret", "me", presence=None)
    me.ping_server()
    assert last(me, f"{user}@localhost")[1] == "the real logout"
    me.close()


def test_an_account_that_never_logged_out_has_no_record(server, user):
    me = login(server, user, "carol-secret", "me", presence=None)
    reply = iq(me, f"{user}@localhost")
    assert error_of(reply) == ("item-not-found", "cancel")
    me.close()


def test_a_query_to_a_resource_goes_to_the_client(server, user):
    """XEP-0012 §4: a full JID answers for itself (idle time); the server only delivers."""
    target = login(server, user, "carol-secret", "desk")
    target.ping_server()
    alice = login(server, "alice", "alice-secret", "a")
    alice.send(f"<iq type='get' id='idle1' to='{user}@localhost/desk'>"
               f"<query xmlns='{NS_LAST}'/></iq>")
    m = target.read_until(rb"<iq[^>]*id=['\"]idle1['\"][^>]*>.*?</iq>")
    assert b"type='get'" in m.group(0) and b"from='alice@localhost/a'" in m.group(0)
    target.send(f"<iq type='result' id='idle1' to='alice@localhost/a'>"
                f"<query xmlns='{NS_LAST}' seconds='123'/></iq>")
    m = alice.read_until(rb"<iq[^>]*id=['\"]idle1['\"][^>]*>.*?</iq>")
    assert b"seconds='123'" in m.group(0) and f"from='{user}@localhost/desk'".encode() in m.group(0)
    # A resource that is not there: the core's RFC 6121 §8.5.3.2.2 error.
    reply = iq(alice, f"{user}@localhost/nowhere")
    assert error_of(reply) == ("service-unavailable", "cancel")
    target.close()
    alice.close()


def test_a_query_about_a_nonexistent_account_is_service_unavailable(server):
    alice = login(server, "alice", "alice-secret")
    assert error_of(iq(alice, "nobody@localhost")) == ("service-unavailable", "cancel")
    alice.close()


def test_disco_lists_last_activity_for_server_and_account(server):
    alice = login(server, "alice", "alice-secret")
    for to in ("localhost", "alice@localhost"):
        reply = iq(alice, to, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        features = [f.get("var") for f in
                    reply.iter("{http://jabber.org/protocol/disco#info}feature")]
        assert NS_LAST in features, (to, features)
    alice.close()


def test_the_record_survives_a_restart(tmp_path, pki):
    srv = _server(tmp_path, pki, "disco ping last")
    log_out(srv, "bob", "bob-secret", status="see you after the restart")
    srv.stop()
    srv.start()
    me = login(srv, "bob", "bob-secret", "me", presence=None)
    seconds, text = last(me, "bob@localhost")
    assert text == "see you after the restart" and seconds >= 0
    # The uptime starts again with the new process.
    assert last(me, "localhost")[0] <= 2
    me.close()
    srv.check_clean_exit()


def test_a_contact_with_a_presence_subscription_is_told(tmp_path, pki):
    """XEP-0012 §3: an entity allowed to see the presence (a 'from' subscription in the
    account's roster) gets the answer. Needs the roster and presence modules."""
    srv = _server(tmp_path, pki, "disco ping roster presence last")
    try:
        bob = login(srv, "bob", "bob-secret", "b")
        probe = iq(bob, "bob@localhost", "<query xmlns='jabber:iq:roster'/>")
        assert probe.get("type") == "result", "the roster module must serve the roster"
        alice = login(srv, "alice", "alice-secret", "a")
        bob.ping_server()
        alice.ping_server()
        # alice subscribes to bob's presence and bob approves (RFC 6121 §3.1).
        alice.send("<presence to='bob@localhost' type='subscribe'/>")
        bob.read_until(rb"<presence[^>]*type=['\"]subscribe['\"]")
        bob.send("<presence to='alice@localhost' type='subscribed'/>")
        alice.read_until(rb"<presence[^>]*type=['\"]subscribed['\"]")
        bob.ping_server("p2")
        bob.send("<presence type='unavailable'><status>back soon</status></presence>")
        bob.ping_server("p3")
        bob.close()
        seconds, text = last(alice, "bob@localhost")
        assert text == "back soon" and 0 <= seconds <= 2
        alice.close()
    finally:
        srv.check_clean_exit()
