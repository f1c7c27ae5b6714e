"""People publish a vCard (XEP-0054) and an avatar in it, and everyone can read it; the server
tells the user's other resources and contacts the avatar's hash in presence (XEP-0153, as
XEP-0398 §4 asks the server to do)."""
import base64
import hashlib
import re
import xml.etree.ElementTree as ET

import pytest

from tern_harness import RawStream, start_server

NS_VCARD = "vcard-temp"
NS_UPDATE = "vcard-temp:x:update"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}

# A 1x1 PNG, and its SHA-1 (XEP-0153 §3.1: the hash of the image bytes, not of the Base64).
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP438DwHwAGgAJ/"
                       "EEwb4QAAAABJRU5ErkJggg==")
PNG_SHA1 = "ccbb41619484789382b645dff3706fda0766cfa2"
# RFC 3174 §7.3 test 1: SHA1("abc").
ABC_SHA1 = "a9993e364706816aba3e25717850c26c9cd0d89d"


def make_server(folder, pki, modules="disco ping vcard"):
    return start_server(folder, pki, USERS, modules=modules)


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    srv = make_server(tmp_path_factory.mktemp("tern-vcard"), pki)
    yield srv
    srv.check_clean_exit()


@pytest.fixture
def fresh_server(tmp_path, pki):
    srv = make_server(tmp_path, pki)
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.check_clean_exit()


def login(server, user, resource=None, presence=False):
    s = RawStream(server)
    s.login(user, USERS[user], resource)
    if presence:
        s.send("<presence/>")
    return s


def iq(stream, ident, payload, type_="get", to=None):
    """Sends an iq and returns the answer with that id as an element."""
    to_attr = f" to='{to}'" if to else ""
    stream.send(f"<iq type='{type_}' id='{ident}'{to_attr}>{payload}</iq>")
    m = stream.read_until(rf"<iq[^>]*?id=['\"]{ident}['\"][^>]*?(?:/>|>.*?</iq>)".encode())
    return ET.fromstring(m.group(0))


def error_of(reply):
    assert reply.get("type") == "error", ET.tostring(reply)
    err = reply.find("error")
    conditions = [c.tag.split("}")[1] for c in err if c.tag.startswith("{" + NS_STANZAS)
                  and not c.tag.endswith("}text")]
    text = err.find(f"{{{NS_STANZAS}}}text")
    return err.get("type"), conditions[0], (text.text if text is not None else None)


def vcard_of(reply):
    assert reply.get("type") == "result", ET.tostring(reply)
    children = list(reply)
    assert len(children) == 1 and children[0].tag == f"{{{NS_VCARD}}}vCard", ET.tostring(reply)
    return children[0]


def get_vcard(stream, ident, to=None):
    return iq(stream, ident, "<vCard xmlns='vcard-temp'/>", to=to)


def set_vcard(stream, ident, inner, to=None):
    return iq(stream, ident, f"<vCard xmlns='vcard-temp'>{inner}</vCard>", type_="set", to=to)


def photo_vcard(image, wrap=76):
    """A vCard with the image as BINVAL, Base64 split into indented lines as clients do."""
    b64 = base64.b64encode(image).decode()
    lines = "\n".join("\t  " + b64[i:i + wrap] for i in range(0, len(b64), wrap))
    return (f"<FN>With a face</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>\n{lines}\n</BINVAL>"
            "</PHOTO>")


def next_presence(stream, sender):
    m = stream.read_until(
        rf"<presence[^>]*?from=['\"]{re.escape(sender)}['\"][^>]*?(?:/>|>.*?</presence>)"
        .encode())
    return ET.fromstring(m.group(0))


def advertised(presence):
    """The x:update elements of a presence, as (photo text or None when no <photo/>)."""
    found = []
    for x in presence.findall(f"{{{NS_UPDATE}}}x"):
        photo = x.find(f"{{{NS_UPDATE}}}photo")
        found.append(None if photo is None else (photo.text or ""))
    return found


SPECIAL_FN = "\"Quoted\" <not a tag> & 'apos' — Zoë 日本語 🐦"
SPECIAL_VCARD = (
    "<FN>&quot;Quoted&quot; &lt;not a tag&gt; &amp; 'apos' — Zoë 日本語 🐦</FN>"
    "<N><FAMILY>O'Brien &amp; Söhne</FAMILY><GIVEN>Zoë</GIVEN><MIDDLE/></N>"
    "<DESC xml:lang='fr'>ligne 1\n  ligne 2 &lt;&amp;&gt;</DESC>"
    "<URL>https://example.org/?a=1&amp;b=&quot;2&quot;</URL>")


def check_special_vcard(vcard):
    assert vcard.findtext(f"{{{NS_VCARD}}}FN") == SPECIAL_FN
    assert vcard.findtext(f"{{{NS_VCARD}}}N/{{{NS_VCARD}}}FAMILY") == "O'Brien & Söhne"
    assert vcard.findtext(f"{{{NS_VCARD}}}N/{{{NS_VCARD}}}GIVEN") == "Zoë"
    assert vcard.find(f"{{{NS_VCARD}}}N/{{{NS_VCARD}}}MIDDLE") is not None
    desc = vcard.find(f"{{{NS_VCARD}}}DESC")
    assert desc.text == "ligne 1\n  ligne 2 <&>"
    assert desc.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    assert vcard.findtext(f"{{{NS_VCARD}}}URL") == 'https://example.org/?a=1&b="2"'


# ---------------------------------------------------------------- XEP-0054


def test_own_vcard_is_empty_before_anything_is_stored(server):
    carol = login(server, "carol")
    for ident, to in (("v1", None), ("v2", "carol@localhost")):
        reply = get_vcard(carol, ident, to)
        vcard = vcard_of(reply)
        assert list(vcard) == [] and not (vcard.text or "").strip()
        assert reply.get("from") in (None, "carol@localhost")
    carol.close()


def test_vcard_round_trip_keeps_special_characters(server):
    alice = login(server, "alice")
    reply = set_vcard(alice, "s1", SPECIAL_VCARD)
    assert reply.get("type") == "result" and list(reply) == []
    check_special_vcard(vcard_of(get_vcard(alice, "g1")))
    alice.close()


def test_a_get_sent_right_after_a_set_sees_it_and_is_answered_after_it(server):
    """The set is committed on the storage thread; the client, which sends the get without
    waiting, still gets the set's result first and the new vCard in the get's."""
    alice = login(server, "alice", "pipelined")
    for n in range(3):
        alice.send(f"<iq type='set' id='ps{n}'><vCard xmlns='vcard-temp'><FN>Take {n}</FN>"
                   f"</vCard></iq><iq type='get' id='pg{n}'><vCard xmlns='vcard-temp'/></iq>")
        m = alice.read_until(rf"<iq[^>]*?id='pg{n}'[^>]*?>.*?</iq>".encode())
        text = m.string[:m.end()]
        set_at, get_at = text.find(f"id='ps{n}'".encode()), text.find(f"id='pg{n}'".encode())
        assert 0 <= set_at < get_at, text
        assert vcard_of(ET.fromstring(m.group(0))).findtext(f"{{{NS_VCARD}}}FN") == f"Take {n}"
    alice.close()


def test_another_user_reads_the_vcard_but_cannot_change_it(server):
    alice = login(server, "alice")
    assert set_vcard(alice, "s1", SPECIAL_VCARD).get("type") == "result"
    bob = login(server, "bob")
    # XEP-0054 §3.3: asked of the bare JID, answered by the server for the account.
    reply = get_vcard(bob, "g1", to="alice@localhost")
    assert reply.get("from") == "alice@localhost"
    check_special_vcard(vcard_of(reply))
    # §3.2: changing someone else's vCard is forbidden, and changes nothing.
    err = error_of(set_vcard(bob, "s2", "<FN>Mallory</FN>", to="alice@localhost"))
    assert err[:2] == ("auth", "forbidden")
    check_special_vcard(vcard_of(get_vcard(alice, "g2")))
    alice.close()
    bob.close()


def test_missing_vcard_of_another_account_is_empty(server):
    """An account that never stored a vCard has an empty one, as Prosody answers: poezio
    (a traceback) and mcabber (an error) take an error for a failure. XEP-0054 §3.3 would
    have an error; see modules/vcard/vcard.c."""
    bob = login(server, "bob")
    reply = get_vcard(bob, "g1", to="carol@localhost")
    assert reply.get("type") == "result" and reply.get("from") == "carol@localhost"
    vcard = vcard_of(reply)
    assert list(vcard) == [] and not (vcard.text or "").strip()
    bob.close()


def test_vcard_of_an_account_that_does_not_exist_is_an_error(server):
    bob = login(server, "bob")
    # No such account: the server answers service-unavailable (RFC 6121 §8.5.1).
    assert error_of(get_vcard(bob, "g2", to="nobody@localhost"))[:2] == ("cancel",
                                                                         "service-unavailable")
    # The server itself has no vCard, and nobody can write one.
    assert error_of(get_vcard(bob, "g3", to="localhost"))[1] == "item-not-found"
    assert error_of(set_vcard(bob, "s1", "<FN>x</FN>", to="localhost"))[1] == "forbidden"
    bob.close()


def test_an_empty_vcard_removes_it(server):
    carol = login(server, "carol")
    bob = login(server, "bob")
    assert set_vcard(carol, "s1", "<FN>Carol</FN>").get("type") == "result"
    assert vcard_of(get_vcard(bob, "g1", to="carol@localhost")).findtext(
        f"{{{NS_VCARD}}}FN") == "Carol"
    assert set_vcard(carol, "s2", "").get("type") == "result"
    assert list(vcard_of(get_vcard(bob, "g2", to="carol@localhost"))) == []
    assert list(vcard_of(get_vcard(carol, "g3"))) == []
    carol.close()
    bob.close()


def test_too_large_vcard_is_refused_and_the_old_one_kept(server):
    bob = login(server, "bob")
    assert set_vcard(bob, "s1", "<FN>Bob</FN>").get("type") == "result"
    big = "<DESC>" + "x" * 70000 + "</DESC>"
    kind, condition, text = error_of(set_vcard(bob, "s2", big))
    assert (kind, condition) == ("modify", "not-acceptable")
    assert text == "the vCard is larger than 65536 bytes"
    assert vcard_of(get_vcard(bob, "g1")).findtext(f"{{{NS_VCARD}}}FN") == "Bob"
    # Just under the limit is fine.
    fits = "<DESC>" + "y" * 60000 + "</DESC>"
    assert set_vcard(bob, "s3", fits).get("type") == "result"
    assert vcard_of(get_vcard(bob, "g2")).findtext(f"{{{NS_VCARD}}}DESC") == "y" * 60000
    bob.close()


def test_vcard_survives_a_restart(fresh_server):
    alice = login(fresh_server, "alice")
    assert set_vcard(alice, "s1", SPECIAL_VCARD + photo_vcard(PNG)).get("type") == "result"
    alice.close()
    fresh_server.check_clean_exit()
    fresh_server.start()
    bob = login(fresh_server, "bob")
    vcard = vcard_of(get_vcard(bob, "g1", to="alice@localhost"))
    check_special_vcard(vcard)
    binval = vcard.findtext(f"{{{NS_VCARD}}}PHOTO/{{{NS_VCARD}}}BINVAL")
    assert base64.b64decode("".join(binval.split())) == PNG
    bob.close()
    # The hash is computed again from storage after the restart.
    one = login(fresh_server, "alice", "one", presence=True)
    two = login(fresh_server, "alice", "two", presence=True)
    assert advertised(next_presence(one, "alice@localhost/two")) == [PNG_SHA1]
    one.close()
    two.close()


def test_disco_advertises_vcard_temp(server):
    alice = login(server, "alice")
    for ident, to in (("d1", "localhost"), ("d2", "alice@localhost")):
        reply = iq(alice, ident, "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=to)
        features = {f.get("var") for f in reply.iter(
            "{http://jabber.org/protocol/disco#info}feature")}
        assert "vcard-temp" in features, (to, features)
    alice.close()


# ---------------------------------------------------------------- XEP-0153 hashes


@pytest.mark.parametrize("image,expected", [(PNG, PNG_SHA1), (b"abc", ABC_SHA1)])
def test_avatar_hash_in_presence_seen_by_another_resource(fresh_server, image, expected):
    assert hashlib.sha1(image).hexdigest() == expected
    one = login(fresh_server, "alice", "one", presence=True)
    two = login(fresh_server, "alice", "two")
    assert set_vcard(two, "s1", photo_vcard(image)).get("type") == "result"
    two.send("<presence><status>with avatar</status></presence>")
    presence = next_presence(one, "alice@localhost/two")
    assert presence.findtext("status") == "with avatar"
    assert advertised(presence) == [expected]
    one.close()
    two.close()


def test_no_photo_is_advertised_as_an_empty_photo(fresh_server):
    one = login(fresh_server, "bob", "one", presence=True)
    two = login(fresh_server, "bob", "two", presence=True)
    assert advertised(next_presence(one, "bob@localhost/two")) == [""]  # no vCard at all
    assert set_vcard(two, "s1", "<FN>No face</FN>").get("type") == "result"
    two.send("<presence><show>away</show></presence>")
    presence = next_presence(one, "bob@localhost/two")
    assert presence.findtext("show") == "away" and advertised(presence) == [""]
    # Unavailable presence carries no hash.
    two.send("<presence type='unavailable'/>")
    assert advertised(next_presence(one, "bob@localhost/two")) == []
    one.close()
    two.close()


def test_what_the_client_put_in_presence(fresh_server):
    """XEP-0398 §4: an empty <photo/> from the client stays; an <x/> without <photo/> and a
    stale hash are replaced by the server's."""
    one = login(fresh_server, "alice", "one", presence=True)
    two = login(fresh_server, "alice", "two")
    assert set_vcard(two, "s1", photo_vcard(PNG)).get("type") == "result"
    cases = [
        ("<x xmlns='vcard-temp:x:update'/>", [PNG_SHA1]),
        ("<x xmlns='vcard-temp:x:update'><photo/></x>", [""]),
        ("<x xmlns='vcard-temp:x:update'><photo>0123456789abcdef0123456789abcdef01234567"
         "</photo></x>", [PNG_SHA1]),
        (f"<x xmlns='vcard-temp:x:update'><photo>{PNG_SHA1}</photo></x>", [PNG_SHA1]),
    ]
    for i, (x, expected) in enumerate(cases):
        two.send(f"<presence><status>case {i}</status>{x}</presence>")
        presence = next_presence(one, "alice@localhost/two")
        assert presence.findtext("status") == f"case {i}"
        assert advertised(presence) == expected, x
    one.close()
    two.close()


def test_a_new_photo_reaches_every_session_of_the_account(fresh_server):
    """The hash cached by one session is refreshed when another session changes the vCard."""
    one = login(fresh_server, "alice", "one", presence=True)
    two = login(fresh_server, "alice", "two", presence=True)
    assert advertised(next_presence(one, "alice@localhost/two")) == [""]
    assert set_vcard(one, "s1", photo_vcard(b"abc")).get("type") == "result"
    two.send("<presence/>")
    assert advertised(next_presence(one, "alice@localhost/two")) == [ABC_SHA1]
    one.send("<presence/>")
    assert advertised(next_presence(two, "alice@localhost/one")) == [ABC_SHA1]
    assert set_vcard(one, "s2", photo_vcard(PNG)).get("type") == "result"
    two.send("<presence/>")
    assert advertised(next_presence(one, "alice@localhost/two")) == [PNG_SHA1]
    # Removing the photo: back to <photo/>.
    assert set_vcard(two, "s3", "<FN>faceless</FN>").get("type") == "result"
    two.send("<presence/>")
    assert advertised(next_presence(one, "alice@localhost/two")) == [""]
    one.close()
    two.close()


def test_directed_presence_carries_the_hash(fresh_server):
    """XEP-0398 §4: "The hash MUST also be injected into directed presences"."""
    bob = login(fresh_server, "bob", "desk", presence=True)
    alice = login(fresh_server, "alice", "phone")
    assert set_vcard(alice, "s1", photo_vcard(PNG)).get("type") == "result"
    alice.send("<presence to='bob@localhost/desk'><status>hi bob</status></presence>")
    presence = next_presence(bob, "alice@localhost/phone")
    assert presence.findtext("status") == "hi bob"
    assert advertised(presence) == [PNG_SHA1]
    alice.close()
    bob.close()


def test_undecodable_photo_advertises_no_image(fresh_server):
    one = login(fresh_server, "carol", "one", presence=True)
    two = login(fresh_server, "carol", "two")
    assert set_vcard(two, "s1", "<PHOTO><BINVAL>!!not base64!!</BINVAL></PHOTO>").get(
        "type") == "result"
    two.send("<presence/>")
    assert advertised(next_presence(one, "carol@localhost/two")) == [""]
    one.close()
    two.close()


# ---------------------------------------------------------------- with roster and presence


def test_contacts_see_the_hash_with_the_presence_module(tmp_path, pki):
    """With the roster and presence modules, a subscribed contact gets the hash in the user's
    broadcast presence and in the server's answer to its probe (RFC 6121 §4.3), and the
    user's other resources still get it."""
    srv = make_server(tmp_path, pki, modules="disco ping roster presence vcard")
    try:
        bob = login(srv, "bob", "desk")
        roster = iq(bob, "r1", "<query xmlns='jabber:iq:roster'/>")
        assert roster.get("type") == "result", "the roster module must serve the roster"
        bob.send("<presence/>")
        alice = login(srv, "alice", "phone", presence=True)
        other = login(srv, "alice", "tablet", presence=True)
        # RFC 6121 §4.2.2: the new resource learns of the other one, hash included.
        assert advertised(next_presence(other, "alice@localhost/phone")) == [""]
        # bob subscribes to alice's presence; alice approves.
        bob.send("<presence to='alice@localhost' type='subscribe'/>")
        alice.read_until(rb"<presence[^>]*type=['\"]subscribe['\"]")
        alice.send("<presence to='bob@localhost' type='subscribed'/>")
        # RFC 6121 §3.1.5: bob then gets alice's current presence, sent by the server.
        assert advertised(next_presence(bob, "alice@localhost/phone")) == [""]
        assert set_vcard(alice, "s1", photo_vcard(PNG)).get("type") == "result"
        alice.send("<presence><status>new face</status></presence>")
        presence = next_presence(bob, "alice@localhost/phone")
        assert presence.findtext("status") == "new face"
        assert advertised(presence) == [PNG_SHA1]
        assert advertised(next_presence(other, "alice@localhost/phone")) == [PNG_SHA1]
        bob.close()
        # alice changes her avatar but sends no new presence. A new session of bob probes
        # alice: the server's answer is her last presence with the hash of the avatar now.
        assert set_vcard(alice, "s2", photo_vcard(b"abc")).get("type") == "result"
        bob = login(srv, "bob", "laptop", presence=True)
        presence = next_presence(bob, "alice@localhost/phone")
        assert presence.findtext("status") == "new face"
        assert advertised(presence) == [ABC_SHA1]
        for s in (alice, other, bob):
            s.close()
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.check_clean_exit()


def test_removing_the_account_removes_its_vcard(tmp_path, pki):
    """After XEP-0077 account removal, a new account of the same name starts without the old
    vCard."""
    srv = make_server(tmp_path, pki, modules="disco ping register vcard")
    alice = login(srv, "alice")
    assert set_vcard(alice, "s1", "<FN>Old Alice</FN>").get("type") == "result"
    reply = iq(alice, "rm", "<query xmlns='jabber:iq:register'><remove/></query>", "set")
    assert reply.get("type") == "result"
    alice.close()
    srv.wait_log("account alice@localhost deleted")
    srv.add_user("alice@localhost", USERS["alice"])
    bob = login(srv, "bob")
    assert list(vcard_of(get_vcard(bob, "g1", to="alice@localhost"))) == []
    bob.close()
    srv.check_clean_exit()
