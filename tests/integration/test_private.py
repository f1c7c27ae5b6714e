"""A client keeps its bookmarks and preferences on the server with XEP-0049 Private XML
Storage: only the account itself reads and writes them, one namespace at a time, and they
survive a restart."""
import xml.etree.ElementTree as ET

import pytest

from tern_harness import RawStream, TernServer, start_server

NS_PRIVATE = "jabber:iq:private"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}

BOOKMARKS = (
    "<storage xmlns='storage:bookmarks'>"
    "<conference name='&quot;Council&quot; &lt;&amp;&gt; — Zoë 日本語 🐦' autojoin='true' "
    "jid='council@conference.example.org'><nick>O'Brien &amp; co</nick>"
    "<password>p&lt;a&gt;ss</password></conference>"
    "<url name='Site' url='https://example.org/?a=1&amp;b=2'/>"
    "</storage>")


def make_server(folder, pki):
    return start_server(folder, pki, USERS, modules="disco ping private")


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    srv = make_server(tmp_path_factory.mktemp("tern-private"), pki)
    yield srv
    srv.check_clean_exit()


@pytest.fixture
def fresh_server(tmp_path, pki):
    srv = make_server(tmp_path, pki)
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.check_clean_exit()


def login(server, user):
    s = RawStream(server)
    s.login(user, USERS[user])
    return s


def iq(stream, ident, payload, type_="get", to=None):
    to_attr = f" to='{to}'" if to else ""
    stream.send(f"<iq type='{type_}' id='{ident}'{to_attr}>{payload}</iq>")
    m = stream.read_until(rf"<iq[^>]*?id=['\"]{ident}['\"][^>]*?(?:/>|>.*?</iq>)".encode())
    return ET.fromstring(m.group(0))


def private(stream, ident, inner, type_="get", to=None):
    return iq(stream, ident, f"<query xmlns='jabber:iq:private'>{inner}</query>", type_, to)


def stored(reply):
    """The elements inside the result's <query/>."""
    assert reply.get("type") == "result", ET.tostring(reply)
    (query,) = list(reply)
    assert query.tag == f"{{{NS_PRIVATE}}}query"
    return list(query)


def error_of(reply):
    assert reply.get("type") == "error", ET.tostring(reply)
    err = reply.find("error")
    conditions = [c.tag.split("}")[1] for c in err
                  if c.tag.startswith("{" + NS_STANZAS) and not c.tag.endswith("}text")]
    text = err.find(f"{{{NS_STANZAS}}}text")
    return err.get("type"), conditions[0], (text.text if text is not None else None)


def check_bookmarks(elements):
    (storage,) = elements
    assert storage.tag == "{storage:bookmarks}storage"
    conference, url = list(storage)
    assert conference.get("name") == "\"Council\" <&> — Zoë 日本語 🐦"
    assert conference.get("autojoin") == "true"
    assert conference.findtext("{storage:bookmarks}nick") == "O'Brien & co"
    assert conference.findtext("{storage:bookmarks}password") == "p<a>ss"
    assert url.get("url") == "https://example.org/?a=1&b=2"


def test_nothing_stored_returns_the_empty_element(server):
    bob = login(server, "bob")
    (element,) = stored(private(bob, "g1", "<prefs xmlns='urn:example:nothing-yet'/>"))
    assert element.tag == "{urn:example:nothing-yet}prefs"
    assert list(element) == [] and element.text is None
    bob.close()


def test_bookmarks_round_trip(server):
    alice = login(server, "alice")
    reply = private(alice, "s1", BOOKMARKS, "set")
    assert reply.get("type") == "result" and list(reply) == []
    check_bookmarks(stored(private(alice, "g1", "<storage xmlns='storage:bookmarks'/>")))
    # Addressed to the own bare JID explicitly: the same.
    check_bookmarks(stored(private(alice, "g2", "<storage xmlns='storage:bookmarks'/>",
                                   to="alice@localhost")))
    alice.close()


def test_namespaces_are_independent(server):
    alice = login(server, "alice")
    assert private(alice, "s1", "<prefs xmlns='urn:example:a'><colour>blue</colour></prefs>",
                   "set").get("type") == "result"
    assert private(alice, "s2", "<prefs xmlns='urn:example:b'><colour>red</colour></prefs>",
                   "set").get("type") == "result"
    (a,) = stored(private(alice, "g1", "<prefs xmlns='urn:example:a'/>"))
    (b,) = stored(private(alice, "g2", "<prefs xmlns='urn:example:b'/>"))
    assert a.findtext("{urn:example:a}colour") == "blue"
    assert b.findtext("{urn:example:b}colour") == "red"
    # Replacing one leaves the other alone.
    assert private(alice, "s3", "<prefs xmlns='urn:example:a'><colour>green</colour></prefs>",
                   "set").get("type") == "result"
    (a,) = stored(private(alice, "g3", "<prefs xmlns='urn:example:a'/>"))
    (b,) = stored(private(alice, "g4", "<prefs xmlns='urn:example:b'/>"))
    assert a.findtext("{urn:example:a}colour") == "green"
    assert b.findtext("{urn:example:b}colour") == "red"
    # Users are independent too.
    bob = login(server, "bob")
    (mine,) = stored(private(bob, "g5", "<prefs xmlns='urn:example:a'/>"))
    assert list(mine) == []
    alice.close()
    bob.close()


def test_several_elements_of_one_namespace(server):
    """XEP-0049 §2.3: "an IQ set or result MAY contain multiple elements qualified by the same
    namespace"."""
    alice = login(server, "alice")
    assert private(alice, "s1", "<one xmlns='urn:example:multi'>1</one>"
                   "<two xmlns='urn:example:multi'>2</two>", "set").get("type") == "result"
    elements = stored(private(alice, "g1", "<one xmlns='urn:example:multi'/>"))
    assert [(e.tag, e.text) for e in elements] == [("{urn:example:multi}one", "1"),
                                                  ("{urn:example:multi}two", "2")]
    alice.close()


def test_an_empty_element_clears_the_namespace(server):
    alice = login(server, "alice")
    assert private(alice, "s1", "<notes xmlns='urn:example:notes'><n>x</n></notes>",
                   "set").get("type") == "result"
    assert private(alice, "s2", "<notes xmlns='urn:example:notes'/>", "set").get(
        "type") == "result"
    (notes,) = stored(private(alice, "g1", "<notes xmlns='urn:example:notes'/>"))
    assert list(notes) == []
    alice.close()


def test_other_users_data_is_forbidden(server):
    alice = login(server, "alice")
    assert private(alice, "s1", "<secret xmlns='urn:example:secret'>mine</secret>",
                   "set").get("type") == "result"
    bob = login(server, "bob")
    for ident, type_, inner in (("g1", "get", "<secret xmlns='urn:example:secret'/>"),
                                ("s1", "set",
                                 "<secret xmlns='urn:example:secret'>yours</secret>")):
        reply = private(bob, ident, inner, type_, to="alice@localhost")
        assert error_of(reply)[:2] == ("auth", "forbidden")
        assert reply.get("from") == "alice@localhost"
    (secret,) = stored(private(alice, "g2", "<secret xmlns='urn:example:secret'/>"))
    assert secret.text == "mine"
    alice.close()
    bob.close()


@pytest.mark.parametrize("element", [
    "<query xmlns='jabber:iq:roster'/>",
    "<x xmlns='jabber:x:data'/>",
    "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    "<vCard xmlns='vcard-temp'><FN>Hamlet</FN></vCard>",
    "<inherits-private-namespace/>",
    "<none xmlns=''/>",
])
def test_reserved_namespaces_are_not_acceptable(server, element):
    """XEP-0049 §2.3: namespaces beginning with 'jabber:' or 'http://jabber.org/', and
    'vcard-temp', are reserved."""
    bob = login(server, "bob")
    for ident, type_ in (("s1", "set"), ("g1", "get")):
        kind, condition, text = error_of(private(bob, ident, element, type_))
        assert (kind, condition, text) == ("modify", "not-acceptable",
                                           "that namespace is reserved")
    bob.close()


def test_malformed_queries(server):
    bob = login(server, "bob")
    # §2.3: a get without a child: "Bad Format" (bad-request); a set without one:
    # not-acceptable.
    assert error_of(private(bob, "g1", ""))[:2] == ("modify", "bad-request")
    assert error_of(private(bob, "s1", "", "set"))[:2] == ("modify", "not-acceptable")
    # One namespace per get.
    assert error_of(private(bob, "g2", "<a xmlns='urn:example:a'/><b xmlns='urn:example:b'/>"))[
        1] == "bad-request"
    # One namespace per set.
    assert error_of(private(bob, "s2", "<a xmlns='urn:example:a'/><b xmlns='urn:example:b'/>",
                            "set"))[1] == "bad-request"
    bob.close()


def test_size_limit_per_namespace(server):
    bob = login(server, "bob")
    assert private(bob, "s1", "<big xmlns='urn:example:big'>small</big>", "set").get(
        "type") == "result"
    kind, condition, text = error_of(private(
        bob, "s2", "<big xmlns='urn:example:big'>" + "x" * 70000 + "</big>", "set"))
    assert (kind, condition) == ("modify", "not-acceptable")
    assert text == "private XML is limited to 65536 bytes per namespace"
    (big,) = stored(private(bob, "g1", "<big xmlns='urn:example:big'/>"))
    assert big.text == "small"
    bob.close()


def test_namespace_count_limit(fresh_server):
    alice = login(fresh_server, "alice")
    for i in range(128):
        assert private(alice, f"s{i}", f"<p xmlns='urn:example:n{i}'>{i}</p>", "set").get(
            "type") == "result"
    kind, condition, text = error_of(private(alice, "over",
                                             "<p xmlns='urn:example:n128'>x</p>", "set"))
    assert (kind, condition, text) == ("modify", "not-acceptable",
                                       "private XML is limited to 128 namespaces")
    # Replacing an existing namespace still works, and clearing one makes room.
    assert private(alice, "r1", "<p xmlns='urn:example:n5'>five</p>", "set").get(
        "type") == "result"
    assert private(alice, "c1", "<p xmlns='urn:example:n6'/>", "set").get("type") == "result"
    assert private(alice, "n1", "<p xmlns='urn:example:n128'>x</p>", "set").get(
        "type") == "result"
    alice.close()


def test_private_data_survives_a_restart(fresh_server):
    alice = login(fresh_server, "alice")
    assert private(alice, "s1", BOOKMARKS, "set").get("type") == "result"
    assert private(alice, "s2", "<prefs xmlns='urn:example:a'>kept</prefs>", "set").get(
        "type") == "result"
    alice.close()
    fresh_server.check_clean_exit()
    fresh_server.start()
    alice = login(fresh_server, "alice")
    check_bookmarks(stored(private(alice, "g1", "<storage xmlns='storage:bookmarks'/>")))
    (prefs,) = stored(private(alice, "g2", "<prefs xmlns='urn:example:a'/>"))
    assert prefs.text == "kept"
    alice.close()


def test_disco_advertises_private_storage(server):
    alice = login(server, "alice")
    for ident, to in (("d1", "localhost"), ("d2", "alice@localhost")):
        reply = iq(alice, ident, "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=to)
        features = {f.get("var") for f in reply.iter(
            "{http://jabber.org/protocol/disco#info}feature")}
        assert NS_PRIVATE in features, (to, features)
    alice.close()


def test_removing_the_account_removes_its_private_data(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping register private")
    for user, password in USERS.items():
        srv.add_user(f"{user}@localhost", password)
    srv.start()
    alice = login(srv, "alice")
    assert private(alice, "s1", BOOKMARKS, "set").get("type") == "result"
    reply = iq(alice, "rm", "<query xmlns='jabber:iq:register'><remove/></query>", "set")
    assert reply.get("type") == "result"
    alice.close()
    srv.wait_log("account alice@localhost deleted")
    srv.add_user("alice@localhost", USERS["alice"])
    alice = login(srv, "alice")
    (storage,) = stored(private(alice, "g1", "<storage xmlns='storage:bookmarks'/>"))
    assert list(storage) == []
    alice.close()
    srv.check_clean_exit()
