"""Someone creates an account from their client (XEP-0077), where the operator allows it; and a
logged-in user changes their password or removes their account."""
import re
import time

import pytest

from tern_harness import RawStream, TernServer

REG = "jabber:iq:register"


@pytest.fixture
def open_server(tmp_path, pki):
    """A host with `registration = yes` and the register module."""
    srv = TernServer(tmp_path, pki, modules="disco ping register")
    text = srv.config.read_text().replace("modules = disco ping register\n",
                                          "modules = disco ping register\nregistration = yes\n")
    srv.config.write_text(text)
    srv.add_user("alice@localhost", "alice-secret")
    srv.start()
    yield srv
    srv.check_clean_exit()


@pytest.fixture
def closed_server(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping register")
    srv.add_user("alice@localhost", "alice-secret")
    srv.start()
    yield srv
    srv.check_clean_exit()


def iq(s, ident, body, kind="set"):
    s.send(f"<iq type='{kind}' id='{ident}'>{body}</iq>")
    return s.read_until(rf"<iq[^>]*id=['\"]{ident}['\"][^>]*?(/>|>.*?</iq>)".encode()).group(0)


def register(s, username, password, ident="r1"):
    return iq(s, ident, f"<query xmlns='{REG}'><username>{username}</username>"
                        f"<password>{password}</password></query>")


def test_a_new_user_registers_and_logs_in(open_server):
    s = RawStream(open_server)
    features = s.secure()
    assert b"http://jabber.org/features/iq-register" in features
    form = iq(s, "f1", f"<query xmlns='{REG}'/>", kind="get")
    assert b"<username/>" in form and b"<password/>" in form and b"<instructions>" in form
    assert b"type='result'" in register(s, "newbie", "fresh-secret")
    assert "<success" in s.auth_plain("newbie", "fresh-secret")
    s.close()
    assert "newbie@localhost" in open_server.ternctl("user", "list", "localhost").stdout.split()


def test_registration_errors(open_server):
    s = RawStream(open_server)
    s.secure()
    assert b"<conflict" in register(s, "alice", "whatever", "r1")
    assert b"<not-acceptable" in iq(s, "r2", f"<query xmlns='{REG}'><username>x</username></query>")
    assert b"<not-acceptable" in register(s, "bad user", "pw", "r3")
    s.close()


def test_registration_is_rate_limited_per_address(open_server):
    s = RawStream(open_server)
    s.secure()
    assert b"type='result'" in register(s, "first", "pw-1", "r1")
    second = register(s, "second", "pw-2", "r2")
    assert b"<resource-constraint" in second and b"type='wait'" in second
    s.close()
    users = open_server.ternctl("user", "list", "localhost").stdout.split()
    assert "first@localhost" in users and "second@localhost" not in users


def open_server_with(tmp_path, pki, modules="disco ping register", extra=""):
    srv = TernServer(tmp_path, pki, modules=modules, extra_config=extra)
    text = srv.config.read_text().replace(f"modules = {modules}\n",
                                          f"modules = {modules}\nregistration = yes\n")
    srv.config.write_text(text)
    return srv.start()


def test_the_rate_limit_is_a_setting(tmp_path, pki):
    srv = open_server_with(tmp_path, pki, extra="[module register]\ninterval = 1\n")
    try:
        s = RawStream(srv)
        s.secure()
        assert b"type='result'" in register(s, "first", "pw-1", "r1")
        assert b"<resource-constraint" in register(s, "second", "pw-2", "r2")
        time.sleep(1.2)  # the interval is over: the address may register again
        assert b"type='result'" in register(s, "second", "pw-2", "r3")
        s.close()
    finally:
        srv.check_clean_exit()


def test_many_addresses_at_once_wait_too(tmp_path, pki):
    srv = open_server_with(tmp_path, pki, extra="[module register]\nmax_recent = 1\n")
    try:
        first = RawStream(srv)
        first.secure()
        assert b"type='result'" in register(first, "first", "pw-1", "r1")
        other = RawStream(srv, source="127.0.0.2")
        other.secure()
        assert b"<resource-constraint" in register(other, "second", "pw-2", "r2")
        first.close()
        other.close()
    finally:
        srv.check_clean_exit()


def test_registration_needs_the_register_module(tmp_path, pki):
    srv = open_server_with(tmp_path, pki, modules="disco ping")
    try:
        srv.wait_log("registration = yes, but in-band registration is the register module's")
        s = RawStream(srv)
        features = s.secure()
        assert b"iq-register" not in features
        assert b"<service-unavailable" in register(s, "newbie", "pw")
        # Any other iq before authentication still ends the stream (RFC 6120 §4.9.3.12).
        s.send("<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
        assert s.stream_error() == "not-authorized"
    finally:
        srv.check_clean_exit()


def test_registration_is_off_by_default(closed_server):
    s = RawStream(closed_server)
    features = s.secure()
    assert b"iq-register" not in features
    reply = register(s, "newbie", "pw")
    assert b"<service-unavailable" in reply
    s.close()
    assert "newbie@localhost" not in closed_server.ternctl("user", "list", "localhost").stdout


def test_no_registration_before_tls(open_server):
    s = RawStream(open_server)
    s.open()
    features = s.read_features()
    assert b"iq-register" not in features
    assert b"<service-unavailable" in register(s, "newbie", "pw")
    s.close()


def test_a_user_changes_their_password(closed_server):
    s = RawStream(closed_server)
    s.login("alice", "alice-secret")
    info = iq(s, "g1", f"<query xmlns='{REG}'/>", kind="get")
    assert b"<registered/>" in info and b"<username>alice</username>" in info
    reply = iq(s, "c1", f"<query xmlns='{REG}'><username>alice</username>"
                        "<password>new-secret</password></query>")
    assert b"type='result'" in reply
    s.close()
    t = RawStream(closed_server)
    t.secure()
    assert "<not-authorized/>" in t.auth_plain("alice", "alice-secret")
    assert "<success" in t.auth_plain("alice", "new-secret")
    t.close()


def test_a_user_cannot_change_someone_elses_password(closed_server):
    s = RawStream(closed_server)
    s.login("alice", "alice-secret")
    reply = iq(s, "c1", f"<query xmlns='{REG}'><username>bob</username>"
                        "<password>x</password></query>")
    assert b"<bad-request" in reply
    s.close()


def test_a_user_removes_their_account(closed_server):
    s = RawStream(closed_server)
    s.login("alice", "alice-secret")
    reply = iq(s, "rm", f"<query xmlns='{REG}'><remove/></query>")
    assert b"type='result'" in reply
    # The session ends with the account.
    assert s.stream_error() == "not-authorized"
    assert "alice@localhost" not in closed_server.ternctl("user", "list", "localhost").stdout
