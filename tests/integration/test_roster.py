"""A user manages a contact list (RFC 6121 §2): getting the roster, adding, updating and
removing contacts, pushes to every interested resource, roster versioning (RFC 6121 §2.6,
XEP-0237), the RFC's error cases, and a roster that survives a restart and kill -9.

Also home of ImClient, the small stanza-level client the roster, subscription and presence
tests share: RawStream underneath, with incoming stanzas parsed into ElementTree elements.
"""
import itertools
import re
import time
import xml.etree.ElementTree as ET

import pytest

from tern_harness import RawStream
from tern_harness import start_server as start_with_users

MODULES = "disco ping roster presence"
C = "{jabber:client}"
R = "{jabber:iq:roster}"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
_names = itertools.count(1)


# ---------------------------------------------------------------- shared helpers


def new_users(server, *prefixes):
    """Fresh accounts (unique per call, so tests can share a server). Returns the names."""
    n = next(_names)
    names = [f"{p}{n}" for p in prefixes]
    for name in names:
        server.add_user(f"{name}@localhost", "secret")
    return names


class ImClient:
    """A logged-in client stream that parses what arrives into stanzas. Stanzas that a wait
    does not ask for stay queued for later waits."""

    def __init__(self, server, user, resource="res", roster=False, presence=None,
                 password="secret"):
        self.raw = RawStream(server)
        self.jid = self.raw.login(user, password, resource)
        self.bare = self.jid.split("/")[0]
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.parser.feed(b"<s xmlns='jabber:client'>")
        self.depth = 0
        self.root = None
        self.queue = []
        self.ids = itertools.count(1)
        self._feed(self.raw.buffer)
        self.raw.buffer = b""
        if roster:
            self.roster()
        if presence is not None:
            self.send(presence or "<presence/>")

    # -- transport
    def _feed(self, data):
        self.parser.feed(data)
        for event, elem in self.parser.read_events():
            if event == "start":
                if self.root is None:
                    self.root = elem
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.queue.append(elem)
                    self.root.remove(elem)

    def send(self, data):
        self.raw.send(data)

    def next(self, match=lambda e: True, timeout=5.0):
        """The first queued or arriving stanza for which match() is true."""
        deadline = time.monotonic() + timeout
        while True:
            for i, elem in enumerate(self.queue):
                if match(elem):
                    return self.queue.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.jid}: nothing matching within {timeout}s; queued: "
                                     + ", ".join(ET.tostring(e).decode() for e in self.queue))
            try:
                data = self.raw._recv_some(left)
            except TimeoutError:
                continue
            if data == b"":
                raise AssertionError(f"{self.jid}: stream closed")
            if data:
                self._feed(data)

    def sync(self):
        """A ping round trip: whatever the server sent this client before it has arrived."""
        ident = f"sync{next(self.ids)}"
        self.send(f"<iq type='get' id='{ident}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        self.next(lambda e: e.get("id") == ident)

    def drain(self):
        self.sync()
        queued, self.queue = self.queue, []
        return queued

    def close(self, gracefully=True):
        if gracefully:
            try:
                self.send("</stream:stream>")
            except OSError:
                pass
        self.raw.close()

    # -- requests
    def iq(self, type_, payload, to=None):
        ident = f"iq{next(self.ids)}"
        to_attr = f" to='{to}'" if to else ""
        self.send(f"<iq type='{type_}' id='{ident}'{to_attr}>{payload}</iq>")
        return self.next(lambda e: e.tag == C + "iq" and e.get("id") == ident and
                         e.get("type") in ("result", "error"))

    def roster(self, ver=None, to=None):
        """Roster get: (ver, {jid: item}) or None for an empty result (version is current)."""
        ver_attr = "" if ver is None else f" ver='{ver}'"
        reply = self.iq("get", f"<query xmlns='jabber:iq:roster'{ver_attr}/>", to)
        assert reply.get("type") == "result", ET.tostring(reply)
        query = reply.find(R + "query")
        if query is None:
            return None
        return query.get("ver"), {i.get("jid"): i for i in query.findall(R + "item")}

    def roster_set(self, item_xml, to=None):
        return self.iq("set", f"<query xmlns='jabber:iq:roster'>{item_xml}</query>", to)

    def push(self, jid=None, timeout=5.0):
        """The next roster push (for `jid` when given): (ver, item)."""
        def is_push(e):
            q = e.find(R + "query")
            return (e.tag == C + "iq" and e.get("type") == "set" and q is not None and
                    (jid is None or q.find(R + "item").get("jid") == jid))
        iq = self.next(is_push, timeout)
        assert iq.get("from") in (None, self.bare), ET.tostring(iq)
        query = iq.find(R + "query")
        return query.get("ver"), query.find(R + "item")

    def presence(self, from_=None, type_=None, timeout=5.0):
        """The next presence stanza from `from_` (a bare or full JID) of type `type_`
        ("available" for none)."""
        def wanted(e):
            if e.tag != C + "presence":
                return False
            if from_ and e.get("from") != from_ and e.get("from", "").split("/")[0] != from_:
                return False
            return type_ is None or (e.get("type") or "available") == type_
        return self.next(wanted, timeout)


def vnum(ver):
    """The change counter in a roster version ("EPOCH-N", or "0" for a new roster)."""
    assert re.fullmatch(r"0|[0-9a-f]+-[1-9][0-9]*", ver), ver
    return int(ver.rsplit("-", 1)[-1])


def error_condition(stanza):
    err = stanza.find(C + "error")
    assert err is not None, ET.tostring(stanza)
    conds = [c.tag[len(STANZAS):] for c in err if c.tag.startswith(STANZAS)]
    return conds[0]


def error_text(stanza):
    text = stanza.find(f"{C}error/{STANZAS}text")
    return text.text if text is not None else None


def item_state(item):
    """(subscription, ask, approved) of a roster item, or None."""
    if item is None:
        return None
    return item.get("subscription"), item.get("ask"), item.get("approved")


def roster_state(client, contact):
    _, items = client.roster()
    return item_state(items.get(contact))


def start_server(folder, pki, users=("alice", "bob")):
    return start_with_users(folder, pki, {u: "secret" for u in users}, modules=MODULES)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    server = start_server(tmp_path_factory.mktemp("roster"), pki)
    yield server
    server.check_clean_exit()


@pytest.fixture
def own_server(tmp_path, pki):
    server = start_server(tmp_path, pki)
    yield server
    if server.proc and server.proc.poll() is None:
        server.check_clean_exit()


# ---------------------------------------------------------------- the roster


def test_stream_features_advertise_versioning_and_preapproval(srv):
    (user,) = new_users(srv, "feat")
    s = RawStream(srv)
    s.secure()
    assert s.auth_plain(user, "secret").startswith("<success")
    s.open()
    features = s.read_features()
    assert re.search(rb"<ver xmlns=['\"]urn:xmpp:features:rosterver['\"]/>", features), features
    assert re.search(rb"<sub xmlns=['\"]urn:xmpp:features:pre-approval['\"]/>", features), features
    s.close()


def test_disco_lists_the_roster_feature(srv):
    (user,) = new_users(srv, "disco")
    c = ImClient(srv, user)
    for to in ("localhost", f"{user}@localhost"):
        reply = c.iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to)
        features = {f.get("var") for f in reply.iter("{http://jabber.org/protocol/disco#info}feature")}
        assert "jabber:iq:roster" in features, (to, features)
    c.close()


def test_a_new_account_has_an_empty_roster(srv):
    (user,) = new_users(srv, "empty")
    c = ImClient(srv, user)
    ver, items = c.roster()
    assert items == {} and ver == "0"
    c.close()


def test_add_update_remove_with_pushes_to_interested_resources(srv):
    """RFC 6121 §2.3-§2.5: every change is acknowledged to the sender and pushed to each
    resource that asked for the roster, and only to those (§2.2)."""
    user, contact = new_users(srv, "owner", "contact")
    first = ImClient(srv, user, "first", roster=True)
    second = ImClient(srv, user, "second", roster=True, presence="")
    bystander = ImClient(srv, user, "bystander", presence="")  # never asked for the roster

    reply = first.roster_set(f"<item jid='{contact}@localhost' name='Contact'>"
                             "<group>Friends</group><group>Work</group></item>")
    assert reply.get("type") == "result" and len(reply) == 0
    for c in (first, second):
        ver, item = c.push(f"{contact}@localhost")
        assert vnum(ver) == 1
        assert item.get("name") == "Contact" and item.get("subscription") == "none"
        assert item.get("ask") is None
        assert [g.text for g in item.findall(R + "group")] == ["Friends", "Work"]
    assert not [e for e in bystander.drain() if e.find(R + "query") is not None]

    # Update: a new name, one group less (an item's groups are replaced as a whole).
    assert second.roster_set(f"<item jid='{contact}@localhost' name='Renamed'>"
                             "<group>Work</group></item>").get("type") == "result"
    for c in (first, second):
        ver, item = c.push(f"{contact}@localhost")
        assert vnum(ver) == 2 and item.get("name") == "Renamed"
        assert [g.text for g in item.findall(R + "group")] == ["Work"]
    ver, items = first.roster()
    assert vnum(ver) == 2 and list(items) == [f"{contact}@localhost"]
    assert items[f"{contact}@localhost"].get("name") == "Renamed"

    # Remove.
    reply = first.roster_set(f"<item jid='{contact}@localhost' subscription='remove'/>")
    assert reply.get("type") == "result"
    for c in (first, second):
        ver, item = c.push(f"{contact}@localhost")
        assert vnum(ver) == 3 and item.get("subscription") == "remove"
    assert first.roster() == (ver, {})
    assert not [e for e in bystander.drain() if e.find(R + "query") is not None]
    for c in (first, second, bystander):
        c.close()


def test_removing_an_unknown_item_is_item_not_found(srv):
    (user,) = new_users(srv, "rm")
    c = ImClient(srv, user, roster=True)
    reply = c.roster_set("<item jid='stranger@localhost' subscription='remove'/>")
    assert reply.get("type") == "error" and error_condition(reply) == "item-not-found"  # §2.5.3
    c.close()


def test_roster_versioning(srv):
    """RFC 6121 §2.6: an empty result when the client's version is current, the full roster
    otherwise, and pushes that carry the new version."""
    user, a, b = new_users(srv, "ver", "va", "vb")
    c = ImClient(srv, user)
    assert c.roster(ver="") == ("0", {})           # bootstrapping: the full (empty) roster
    assert c.roster(ver="0") is None                # current: nothing to send
    c.roster_set(f"<item jid='{a}@localhost'/>")
    v1, _ = c.push()
    assert vnum(v1) == 1
    assert c.roster(ver=v1) is None
    ver, items = c.roster(ver="0")                  # stale cache: the whole roster again
    assert ver == v1 and list(items) == [f"{a}@localhost"]
    c.roster_set(f"<item jid='{b}@localhost'/>")
    v2, _ = c.push()
    assert vnum(v2) == 2 and v2.split("-")[0] == v1.split("-")[0]
    ver, items = c.roster(ver=v1)
    assert ver == v2 and set(items) == {f"{a}@localhost", f"{b}@localhost"}
    assert c.roster(ver=v2) is None
    ver, items = c.roster(ver="no-such-version")
    assert ver == v2 and len(items) == 2
    ver, items = c.roster()                         # no 'ver' asked: the full roster
    assert ver == v2 and len(items) == 2
    c.close()


@pytest.mark.parametrize("item,condition", [
    # RFC 6121 §2.1.5 rule 1 / §2.3.3: exactly one item
    ("<item jid='a@localhost'/><item jid='b@localhost'/>", "bad-request"),
    ("", "bad-request"),
    # §2.3.3: duplicate groups
    ("<item jid='a@localhost'><group>X</group><group>X</group></item>", "bad-request"),
    # §2.3.3: an empty group, an oversized group name, an oversized name
    ("<item jid='a@localhost'><group></group></item>", "not-acceptable"),
    ("<item jid='a@localhost'><group>" + "g" * 1024 + "</group></item>", "not-acceptable"),
    ("<item jid='a@localhost' name='" + "n" * 1024 + "'/>", "not-acceptable"),
    # §2.1.2.3: the jid is required; RFC 6120 §8.3.3.8: an invalid one is jid-malformed
    ("<item name='no jid'/>", "bad-request"),
    ("<item jid='a@b@localhost'/>", "jid-malformed"),
    ("<item jid='@localhost'/>", "jid-malformed"),
    ("<item jid='user@localhost/" + "r" * 1100 + "'/>", "jid-malformed"),
    # a roster item for the account itself is refused
    ("<item jid='{self}'/>", "not-allowed"),
])
def test_roster_set_errors(srv, item, condition):
    (user,) = new_users(srv, "err")
    c = ImClient(srv, user, roster=True)
    reply = c.roster_set(item.replace("{self}", f"{user}@localhost"))
    assert reply.get("type") == "error", ET.tostring(reply)
    assert error_condition(reply) == condition
    assert c.roster() == ("0", {})                  # nothing changed, nothing pushed
    assert not [e for e in c.drain() if e.get("type") == "set"]
    c.close()


def test_subscription_ask_and_approved_in_a_roster_set_are_ignored(srv):
    """RFC 6121 §2.1.2.5: in a roster set the server ignores every 'subscription' value but
    "remove" (and 'ask' and 'approved', §2.1.2.1-2): presence stanzas change those."""
    user, contact = new_users(srv, "ign", "ignc")
    c = ImClient(srv, user, roster=True)
    reply = c.roster_set(f"<item jid='{contact}@localhost' subscription='both' ask='subscribe'"
                         " approved='true' name='N'/>")
    assert reply.get("type") == "result"
    _, item = c.push()
    assert item_state(item) == ("none", None, None) and item.get("name") == "N"
    assert roster_state(c, f"{contact}@localhost") == ("none", None, None)
    c.close()


def test_nobody_else_may_read_or_change_a_roster(srv):
    """RFC 6121 §2.1.5 (security warning) and §2.3.3: forbidden."""
    user, other = new_users(srv, "mine", "theirs")
    c = ImClient(srv, user)
    reply = c.iq("get", "<query xmlns='jabber:iq:roster'/>", to=f"{other}@localhost")
    assert reply.get("type") == "error" and error_condition(reply) == "forbidden"
    reply = c.roster_set("<item jid='x@localhost'/>", to=f"{other}@localhost")
    assert reply.get("type") == "error" and error_condition(reply) == "forbidden"
    # Addressed to the account itself it works.
    assert c.roster(to=f"{user}@localhost") == ("0", {})
    owner = ImClient(srv, other)
    assert owner.roster() == ("0", {})
    c.close()
    owner.close()


def test_roster_size_is_limited(srv):
    (user,) = new_users(srv, "big")
    c = ImClient(srv, user)
    for i in range(1000):
        c.send(f"<iq type='set' id='fill{i}'><query xmlns='jabber:iq:roster'>"
               f"<item jid='c{i}@example.test'/></query></iq>")
    c.next(lambda e: e.get("id") == "fill999", timeout=60)
    failed = [e for e in c.drain() if e.get("type") == "error"]
    assert not failed, ET.tostring(failed[0])
    reply = c.roster_set("<item jid='one-too-many@example.test'/>")
    assert reply.get("type") == "error" and error_condition(reply) == "not-allowed"
    assert "full" in error_text(reply)
    # Updating an existing item still works at the limit.
    assert c.roster_set("<item jid='c7@example.test' name='Seven'/>").get("type") == "result"
    ver, items = c.roster()
    assert len(items) == 1000 and vnum(ver) == 1001
    c.close()


# ---------------------------------------------------------------- durability


def test_roster_survives_a_restart(own_server):
    c = ImClient(own_server, "alice", roster=True)
    c.roster_set("<item jid='bob@localhost' name='Bob'><group>Friends</group></item>")
    c.roster_set("<item jid='carol@example.test'/>")
    before = c.roster()
    c.close()
    assert own_server.stop() == 0
    own_server.start()
    c = ImClient(own_server, "alice")
    after = c.roster()
    assert after[0] == before[0] and vnum(after[0]) == 2
    assert set(after[1]) == {"bob@localhost", "carol@example.test"}
    bob = after[1]["bob@localhost"]
    assert bob.get("name") == "Bob" and [g.text for g in bob.findall(R + "group")] == ["Friends"]
    assert c.roster(ver=before[0]) is None          # the version survives too
    c.close()


def test_an_acknowledged_roster_set_survives_kill_9(own_server):
    c = ImClient(own_server, "alice", roster=True)
    reply = c.roster_set("<item jid='bob@localhost' name='Kept'/>")
    assert reply.get("type") == "result"
    own_server.kill9()                              # right after the result
    c.close(gracefully=False)
    own_server.start()
    c = ImClient(own_server, "alice")
    ver, items = c.roster()
    assert vnum(ver) == 1 and items["bob@localhost"].get("name") == "Kept"
    c.close()
