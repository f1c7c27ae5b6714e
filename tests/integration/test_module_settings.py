"""Module settings as an operator writes them: a [module NAME] section, a per-host override
"NAME.key = value" in [host X], checked by `ternd -t` and at start, listed by `ternd -s` and
in tern.conf(5), applied by the modules and re-read on SIGHUP."""
import http.client
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tern_harness import TERND, RawStream, TernServer

ROOT = Path(__file__).resolve().parents[2]
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def ternd(*args):
    return subprocess.run([str(TERND), *args], capture_output=True, text=True, timeout=30)


def check(srv):
    return ternd("-c", str(srv.config), "-t")


def line_of(srv, text):
    return srv.config.read_text().splitlines().index(text) + 1


# ---------------------------------------------------------------- checking


def test_a_known_setting_passes_the_check(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco offline",
                     extra_config="[module offline]\nquota = 3\n")
    proc = check(srv)
    assert proc.returncode == 0, proc.stderr
    assert "configuration OK" in proc.stdout


def test_an_unknown_key_is_refused_with_the_known_ones(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco roster",
                     extra_config="[module roster]\nmax_itmes = 3\n")
    proc = check(srv)
    assert proc.returncode == 1
    line = line_of(srv, "max_itmes = 3")
    assert f"tern.conf:{line}: unknown key 'max_itmes' for module roster" in proc.stderr
    assert "max_items" in proc.stderr and "max_pending" in proc.stderr, proc.stderr
    # ternd refuses to start with it, with the same message, and starts nothing.
    start = ternd("-c", str(srv.config))
    assert start.returncode == 1 and "max_itmes" in start.stderr
    assert not (tmp_path / "var").exists()


def test_a_value_out_of_range_is_refused(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco offline",
                     extra_config="[module offline]\nquota = 0\n")
    proc = check(srv)
    assert proc.returncode == 1
    assert f"tern.conf:{line_of(srv, 'quota = 0')}:" in proc.stderr
    assert "quota" in proc.stderr and "1..100000" in proc.stderr, proc.stderr


def test_a_module_that_does_not_exist_is_refused(tmp_path, pki):
    srv = TernServer(tmp_path, pki, extra_config="[module oflfine]\nquota = 3\n")
    proc = check(srv)
    assert proc.returncode == 1
    assert "no module oflfine" in proc.stderr, proc.stderr


def test_a_host_override_needs_the_module_on_that_host(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping")
    srv.config.write_text(srv.config.read_text() + "offline.quota = 3\n")
    proc = check(srv)
    assert proc.returncode == 1
    assert "[host localhost] offline.quota: the host does not load module offline" in \
        proc.stderr, proc.stderr


def test_a_section_may_appear_only_once(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco offline",
                     extra_config="[module offline]\nquota = 3\n[module offline]\nquota = 4\n")
    proc = check(srv)
    assert proc.returncode == 1
    assert "duplicate section [module offline]" in proc.stderr, proc.stderr


def test_a_bad_string_setting_is_refused_by_its_module(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco metrics", http=True,
                     extra_config="[module metrics]\nallow = 127.0.0.1 not-an-address\n")
    proc = check(srv)
    assert proc.returncode == 1
    assert "'not-an-address' is not an address" in proc.stderr, proc.stderr


# ---------------------------------------------------------------- listing


def declared_settings():
    """{(module, key)} as `ternd -s` prints them."""
    proc = ternd("-s")
    assert proc.returncode == 0, proc.stderr
    found, module = set(), None
    for line in proc.stdout.splitlines():
        m = re.match(r"\[module (\w+)\]$", line)
        if m:
            module = m.group(1)
        elif line.strip():
            key, rest = line.split(" = ", 1)
            assert " ; " in rest, line  # default ; range: doc
            found.add((module, key))
    return found


def test_ternd_lists_every_setting_and_the_manual_documents_each():
    found = declared_settings()
    assert ("offline", "quota") in found and ("roster", "max_items") in found
    assert ("adhoc", "timeout") in found and ("metrics", "allow") in found
    manual = (ROOT / "doc" / "tern.conf.5").read_text()
    sections = {m.group(1): m.group(2) for m in
                re.finditer(r'^\.SS "\[module (\w+)\]"\n(.*?)(?=^\.S[SH] )', manual, re.S | re.M)}
    missing = [f"{m}.{k}" for m, k in sorted(found)
               if not re.search(rf"^\.B {k}$", sections.get(m, ""), re.M)]
    assert not missing, f"not in doc/tern.conf.5: {missing}"


def test_the_listing_is_itself_a_valid_configuration(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco offline roster presence vcard private adhoc")
    srv.config.write_text(srv.config.read_text() + "\n" + ternd("-s").stdout)
    proc = check(srv)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- applied


def error_of(data):
    m = re.search(rf"<error[^>]*type=['\"](\w+)['\"][^>]*>\s*<([a-z-]+) xmlns=['\"]{NS_STANZAS}"
                  .encode(), data)
    assert m, data
    return m.group(1).decode(), m.group(2).decode()


def send_messages(sender, to, bodies):
    for i, text in enumerate(bodies):
        sender.send(f"<message to='{to}' type='chat' id='m{i}'><body>{text}</body></message>")
    sender.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    return sender.read_until(rb"(.*?)<iq[^>]*id=['\"]sync['\"]").group(1)


def offline_bodies(srv, user, password):
    s = RawStream(srv)
    s.login(user, password, "r")
    s.send("<presence/>")
    s.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    data = s.read_until(rb"(.*?)<iq[^>]*id=['\"]sync['\"]").group(1)
    s.close()
    return re.findall(rb"<body>([^<]*)</body>", data)


def test_an_offline_quota_of_three_keeps_three_and_bounces_the_fourth(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping presence offline",
                     extra_config="[module offline]\nquota = 3\n")
    srv.add_user("alice@localhost", "a-secret")
    srv.add_user("bob@localhost", "b-secret")
    srv.start()
    try:
        alice = RawStream(srv)
        alice.login("alice", "a-secret", "r")
        before = send_messages(alice, "bob@localhost", ["one", "two", "three", "four"])
        # Only the fourth comes back, as an error the sender's client can show.
        assert before.count(b"type=\"error\"") + before.count(b"type='error'") == 1, before
        assert b"id=\"m3\"" in before or b"id='m3'" in before, before
        assert error_of(before) == ("cancel", "service-unavailable")
        alice.close()
        assert offline_bodies(srv, "bob", "b-secret") == [b"one", b"two", b"three"]
    finally:
        srv.check_clean_exit()


def test_a_host_overrides_the_module_section(tmp_path, pki):
    srv = TernServer(tmp_path, pki, hosts=("localhost", "example.test"),
                     modules="disco ping presence offline",
                     extra_config="[module offline]\nquota = 5\n")
    text = srv.config.read_text().replace(
        "[host example.test]\n", "[host example.test]\noffline.quota = 1\n")
    srv.config.write_text(text)
    srv.add_user("alice@localhost", "a-secret")
    srv.add_user("bob@localhost", "b-secret")
    srv.add_user("dave@example.test", "d-secret")
    srv.start()
    try:
        alice = RawStream(srv)
        alice.login("alice", "a-secret", "r")
        to_dave = send_messages(alice, "dave@example.test", ["d1", "d2"])
        assert error_of(to_dave) == ("cancel", "service-unavailable")
        to_bob = send_messages(alice, "bob@localhost", ["b1", "b2", "b3"])
        assert b"error" not in to_bob, to_bob
        alice.close()
    finally:
        srv.check_clean_exit()


def test_sighup_applies_a_new_value_and_refuses_a_bad_one(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping presence offline",
                     extra_config="[module offline]\nquota = 1\n")
    srv.add_user("alice@localhost", "a-secret")
    srv.add_user("bob@localhost", "b-secret")
    srv.start()
    try:
        alice = RawStream(srv)
        alice.login("alice", "a-secret", "r")
        assert b"error" not in send_messages(alice, "bob@localhost", ["first"])
        assert error_of(send_messages(alice, "bob@localhost", ["second"]))[1] == \
            "service-unavailable"

        good = srv.config.read_text().replace("quota = 1", "quota = 2")
        srv.config.write_text(good.replace("[module offline]", "[module offline]\nquotta = 9"))
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log("reload failed")
        assert "quotta" in srv.log_text()
        assert error_of(send_messages(alice, "bob@localhost", ["still full"]))[1] == \
            "service-unavailable"

        srv.config.write_text(good)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log("configuration and certificates reloaded")
        assert b"error" not in send_messages(alice, "bob@localhost", ["third"])
        alice.close()
        assert offline_bodies(srv, "bob", "b-secret") == [b"first", b"third"]
    finally:
        srv.check_clean_exit()


def roster_items(s):
    s.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
    data = s.read_until(rb"<iq[^>]*id=['\"]roster['\"].*?</iq>").group(0)
    return re.findall(rb"<item [^>]*jid=['\"]([^'\"]+)['\"]", data)


def test_outbound_subscriptions_respect_the_roster_limit(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping roster presence",
                     extra_config="[module roster]\nmax_items = 3\n")
    srv.add_user("alice@localhost", "a-secret")
    srv.start()
    try:
        alice = RawStream(srv)
        alice.login("alice", "a-secret", "r")
        alice.send("<presence/>")
        for i in range(5):
            alice.send(f"<presence type='subscribe' to='c{i}@localhost' id='s{i}'/>")
        alice.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        data = alice.read_until(rb"(.*?)<iq[^>]*id=['\"]sync['\"]").group(1)
        errors = re.findall(rb"<presence[^>]*id=['\"](s\d)['\"][^>]*type=['\"]error['\"]|"
                            rb"<presence[^>]*type=['\"]error['\"][^>]*id=['\"](s\d)['\"]", data)
        assert sorted(a or b for a, b in errors) == [b"s3", b"s4"], data
        assert error_of(data) == ("cancel", "not-allowed")
        assert len(roster_items(alice)) == 3
        alice.close()
    finally:
        srv.check_clean_exit()


# ---------------------------------------------------------------- /metrics allow-list


def metrics_status(srv, source):
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10,
                                      source_address=(source, 0))
    conn.request("GET", "/metrics")
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.parametrize("allow, from_1, from_2", [
    (None, 200, 200),                      # default: loopback, 127.0.0.0/8
    ("127.0.0.1", 200, 403),
    ("127.0.0.2/32 ::1", 403, 200),
    ("", 403, 403),                        # nobody
])
def test_metrics_answers_only_allowed_addresses(tmp_path, pki, allow, from_1, from_2):
    extra = f"[module metrics]\nallow = {allow}\n" if allow is not None else ""
    srv = TernServer(tmp_path, pki, modules="disco metrics", http=True, extra_config=extra)
    srv.start()
    try:
        assert metrics_status(srv, "127.0.0.1") == from_1
        assert metrics_status(srv, "127.0.0.2") == from_2
        if from_2 == 403:
            srv.wait_log("refusing /metrics to 127.0.0.2")
    finally:
        srv.check_clean_exit()
