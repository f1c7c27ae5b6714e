"""A roster is stored one record per contact: with 1,000 contacts, one change writes that
contact's record (and the roster's small meta record), not the whole roster — measured through
/metrics' tern_storage_written_bytes_total. An acknowledged change survives kill -9, and a
roster stored by an older ternd (one XML blob in the keyval store "roster") is converted on
first use without losing a contact, a pending request or the version clients cached."""
import http.client
import re
import time
import xml.etree.ElementTree as ET

import pytest

from tern_harness import TernServer
from test_roster import R, ImClient, item_state, vnum

MODULES = "disco ping roster presence metrics"
CONTACTS = 1000


def make_server(folder, pki, users=("alice", "bob", "carol")):
    # Room for the 1,000 contacts and a few more (max_items is 1,000 by default).
    server = TernServer(folder, pki, modules=MODULES, http=True,
                        extra_config="[module roster]\nmax_items = 2000\n")
    for user in users:
        server.add_user(f"{user}@localhost", "secret")
    return server


def written(server):
    """(writes, bytes) committed to storage since ternd started, from /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    def counter(name):
        return int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))
    return (counter("tern_storage_writes_total"),
            counter("tern_storage_written_bytes_total"))


def add_contacts(client, n):
    """n roster sets, pipelined in batches; each must succeed."""
    batch = 100
    for start in range(0, n, batch):
        ids = []
        for i in range(start, min(start + batch, n)):
            ident = f"add{i}"
            ids.append(ident)
            client.send(f"<iq type='set' id='{ident}'><query xmlns='jabber:iq:roster'>"
                        f"<item jid='contact{i:04d}@example.org' name='Contact number {i}'>"
                        f"<group>Friends</group></item></query></iq>")
        for ident in ids:
            reply = client.next(lambda e, ident=ident: e.get("id") == ident, timeout=30)
            assert reply.get("type") == "result", ET.tostring(reply)


@pytest.fixture
def server(tmp_path, pki):
    srv = make_server(tmp_path, pki).start()
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.check_clean_exit()


def test_one_change_to_a_large_roster_writes_one_record(server):
    alice = ImClient(server, "alice")
    started = time.monotonic()
    add_contacts(alice, CONTACTS)
    ver, items = alice.roster()
    assert len(items) == CONTACTS and vnum(ver) == CONTACTS
    roster_bytes = sum(len(ET.tostring(i)) for i in items.values())
    assert roster_bytes > 80_000

    # A roster set that renames one contact, and a push to the interested resource.
    writes0, bytes0 = written(server)
    reply = alice.roster_set("<item jid='contact0500@example.org' name='Renamed'>"
                             "<group>Friends</group></item>")
    assert reply.get("type") == "result"
    pver, pushed = alice.push("contact0500@example.org")
    assert pushed.get("name") == "Renamed" and vnum(pver) == CONTACTS + 1
    writes1, bytes1 = written(server)
    assert writes1 - writes0 == 1
    assert bytes1 - bytes0 < 1024, (bytes1 - bytes0, roster_bytes)

    # A subscription request to a local user: alice's item gains ask='subscribe', bob's
    # account keeps the pending request; each is one small write.
    bob = ImClient(server, "bob", presence="")
    alice.send("<presence to='bob@localhost' type='subscribe'/>")
    bob.presence("alice@localhost", "subscribe")
    alice.push("bob@localhost")
    writes2, bytes2 = written(server)
    assert writes2 - writes1 == 2
    assert bytes2 - bytes1 < 1024, bytes2 - bytes1
    print(f"\n{CONTACTS} contacts ({roster_bytes} bytes of items) added in "
          f"{time.monotonic() - started:.1f}s; a roster set wrote {bytes1 - bytes0} bytes, "
          f"a subscription request {bytes2 - bytes1} bytes in {writes2 - writes1} writes")

    # Removing one contact also writes little, and the roster is whole afterwards.
    reply = alice.roster_set("<item jid='contact0007@example.org' subscription='remove'/>")
    assert reply.get("type") == "result"
    writes3, bytes3 = written(server)
    assert writes3 - writes2 == 1 and bytes3 - bytes2 < 1024
    print(f"a removal wrote {bytes3 - bytes2} bytes")
    ver, items = alice.roster()
    assert len(items) == CONTACTS and "contact0007@example.org" not in items
    assert item_state(items["bob@localhost"]) == ("none", "subscribe", None)
    alice.close()
    bob.close()


def test_an_acknowledged_change_survives_kill_9(server):
    alice = ImClient(server, "alice", roster=True)
    alice.roster_set("<item jid='bob@localhost' name='First'/>")
    reply = alice.roster_set("<item jid='carol@localhost' name='Kept'><group>G</group></item>")
    assert reply.get("type") == "result"
    server.kill9()                                   # right after the result
    alice.close(gracefully=False)
    server.start()
    alice = ImClient(server, "alice")
    ver, items = alice.roster()
    assert vnum(ver) == 2 and set(items) == {"bob@localhost", "carol@localhost"}
    carol = items["carol@localhost"]
    assert carol.get("name") == "Kept" and [g.text for g in carol.findall(R + "group")] == ["G"]
    alice.close()


# What an older ternd stored for alice: one XML element in the keyval store "roster" (LMDB
# database "kv:roster", key = the bare JID), exactly as its roster module serialized it.
OLD_EPOCH = "65f0a1b2"
OLD_BLOB = (
    f"<roster xmlns='urn:tern:roster:1' epoch='{OLD_EPOCH}' ver='4'>"
    "<item xmlns='jabber:iq:roster' jid='bob@localhost' subscription='both' name='Bob'>"
    "<group>Friends</group><group>Work</group></item>"
    "<item xmlns='jabber:iq:roster' jid='dave@example.org' subscription='none' "
    "ask='subscribe'/>"
    "<item xmlns='jabber:iq:roster' jid='erin@example.org' subscription='none' "
    "approved='true'/>"
    "<pending jid='carol@localhost'><presence xmlns='jabber:client' type='subscribe' "
    "from='carol@localhost' to='alice@localhost'><status>let me in</status></presence>"
    "</pending></roster>")


def test_a_roster_stored_by_an_older_ternd_is_converted(tmp_path, pki):
    lmdb = pytest.importorskip("lmdb")  # Debian's python3-lmdb (bootstrap installs it)
    server = make_server(tmp_path, pki)     # accounts created, ternd not started yet
    env = lmdb.open(str(tmp_path / "var"), max_dbs=128, map_size=1 << 30)
    with env.begin(write=True) as txn:
        txn.put(b"alice@localhost", OLD_BLOB.encode(), db=env.open_db(b"kv:roster", txn=txn))
    env.close()
    server.start()
    try:
        alice = ImClient(server, "alice")
        # The version is the one clients of the old server cached: nothing to send again.
        assert alice.roster(ver=f"{OLD_EPOCH}-4") is None
        ver, items = alice.roster()
        assert ver == f"{OLD_EPOCH}-4"
        assert set(items) == {"bob@localhost", "dave@example.org", "erin@example.org"}
        bob = items["bob@localhost"]
        assert item_state(bob) == ("both", None, None) and bob.get("name") == "Bob"
        assert [g.text for g in bob.findall(R + "group")] == ["Friends", "Work"]
        assert item_state(items["dave@example.org"]) == ("none", "subscribe", None)
        assert item_state(items["erin@example.org"]) == ("none", None, "true")
        server.wait_log("roster: converted the stored roster of alice@localhost to "
                        "per-contact records")
        # A change bumps the old version.
        reply = alice.roster_set("<item jid='frank@example.org'/>")
        assert reply.get("type") == "result"
        assert alice.roster()[0] == f"{OLD_EPOCH}-5"
        # The pending request is delivered again at initial presence (RFC 6121 §3.1.3).
        alice.send("<presence/>")
        request = alice.presence("carol@localhost", "subscribe")
        assert request.findtext("{jabber:client}status") == "let me in"
        alice.close()
        assert server.log_text().count("roster: converted the stored roster") == 1
    finally:
        server.check_clean_exit()
    env = lmdb.open(str(tmp_path / "var"), max_dbs=128, map_size=1 << 30)
    with env.begin() as txn:
        old = env.open_db(b"kv:roster", txn=txn, create=False)
        assert txn.get(b"alice@localhost", db=old) is None
    env.close()


def test_a_contact_too_long_for_a_storage_key_is_kept_all_the_same(server):
    # 1,023 bytes of localpart and a 300-byte domain: far past LMDB's 511-byte keys, so the
    # record is keyed by a hash of the JID; it reads, updates and goes like any other.
    long_jid = "l" * 1023 + "@" + ".".join(["d" * 59] * 5)
    alice = ImClient(server, "alice", roster=True)
    assert alice.roster_set(f"<item jid='{long_jid}' name='Long'/>").get("type") == "result"
    assert alice.roster_set("<item jid='bob@localhost'/>").get("type") == "result"
    assert alice.roster_set(f"<item jid='{long_jid}' name='Longer'/>").get("type") == "result"
    ver, items = alice.roster()
    assert vnum(ver) == 3 and set(items) == {long_jid, "bob@localhost"}
    assert items[long_jid].get("name") == "Longer"
    alice.send(f"<presence to='{long_jid}' type='subscribed'/>")   # pre-approves
    alice.sync()
    assert item_state(alice.roster()[1][long_jid]) == ("none", None, "true")
    reply = alice.roster_set(f"<item jid='{long_jid}' subscription='remove'/>")
    assert reply.get("type") == "result"
    assert set(alice.roster()[1]) == {"bob@localhost"}
    alice.close()
