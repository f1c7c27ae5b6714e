"""An operator runs tern: checks a config, manages accounts with ternctl while ternd runs,
stops it (SIGTERM), loses it (kill -9), reloads it (SIGHUP), and starts it twice by mistake.
Everything is checked as the operator or a user would see it: exit codes, the exact lines
ternctl prints, the log, and logins."""
import re
import signal
import socket
import subprocess
import time

from tern_harness import TERND, RawStream, TernServer, free_port


# ---------------------------------------------------------------- helpers


def login_ok(server, user, password):
    s = RawStream(server)
    try:
        assert s.login(user, password).startswith(f"{user}@localhost/")
        s.ping_server(f"{user}-in")
    finally:
        s.close()


def login_refused(server, user, password):
    """The SASL failure condition of a PLAIN login ("success" if it worked)."""
    s = RawStream(server)
    try:
        s.secure()
        answer = s.auth_plain(user, password)
    finally:
        s.close()
    if answer.startswith("<success"):
        return "success"
    m = re.match(r"<failure xmlns=['\"]urn:ietf:params:xml:ns:xmpp-sasl['\"]><([a-z-]+)/>",
                 answer)
    assert m, answer
    return m.group(1)


NOT_AUTHORIZED = "not-authorized"


def ternd(*args, timeout=20):
    return subprocess.run([str(TERND), *args], capture_output=True, text=True, timeout=timeout)


def config_lines(server):
    return server.config.read_text().splitlines()


def write_config(server, lines):
    server.config.write_text("\n".join(lines) + "\n")


def insert_after(lines, header, new_line):
    """Inserts `new_line` right after the section header `header`; returns its 1-based line."""
    at = lines.index(header) + 1
    lines.insert(at, new_line)
    return at + 1


def assert_clean_log(server):
    text = server.log_text()
    assert "AddressSanitizer" not in text and "runtime error:" not in text, text


def status_line(server):
    return server.ternctl("status").stdout.splitlines()[0]


# ---------------------------------------------------------------- ternd -t


def test_config_check_accepts_a_good_config(tmp_path, pki):
    srv = TernServer(tmp_path, pki)
    proc = ternd("-c", str(srv.config), "-t")
    assert proc.returncode == 0, proc.stderr
    assert "configuration OK" in proc.stdout
    assert not (tmp_path / "var").exists()  # a check starts nothing and creates nothing


def test_config_check_names_the_line_of_an_unknown_key(tmp_path, pki):
    srv = TernServer(tmp_path, pki)
    lines = config_lines(srv)
    line = insert_after(lines, "[c2s]", "max_stanzas = 10")
    write_config(srv, lines)
    proc = ternd("-c", str(srv.config), "-t")
    assert proc.returncode != 0
    assert f"tern.conf:{line}:" in proc.stderr, proc.stderr
    assert "max_stanzas" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_config_check_names_the_line_of_a_bad_log_level(tmp_path, pki):
    srv = TernServer(tmp_path, pki)
    lines = config_lines(srv)
    line = lines.index("log_level = debug") + 1
    lines[line - 1] = "log_level = chatty"
    write_config(srv, lines)
    proc = ternd("-c", str(srv.config), "-t")
    assert proc.returncode != 0
    assert f"tern.conf:{line}:" in proc.stderr, proc.stderr
    assert "log_level" in proc.stderr and "chatty" in proc.stderr


def test_a_missing_config_file_is_a_clear_error(tmp_path):
    proc = ternd("-c", "/nonexistent")
    assert proc.returncode != 0
    assert "/nonexistent" in proc.stderr
    assert "No such file or directory" in proc.stderr, proc.stderr


# ---------------------------------------------------------------- ternctl while ternd runs


def test_a_user_added_while_ternd_runs_can_log_in_at_once(fresh_server):
    fresh_server.ternctl("user", "add", "carol@localhost", "carol-secret")
    login_ok(fresh_server, "carol", "carol-secret")
    listed = fresh_server.ternctl("user", "list", "localhost").stdout
    assert listed.splitlines() == ["admin@localhost", "alice@localhost", "bob@localhost",
                                   "carol@localhost"]


def test_a_changed_password_applies_at_once(fresh_server):
    fresh_server.ternctl("user", "passwd", "alice@localhost", "new-alice-secret")
    assert login_refused(fresh_server, "alice", "alice-secret") == NOT_AUTHORIZED
    login_ok(fresh_server, "alice", "new-alice-secret")


def test_a_deleted_user_cannot_log_in(fresh_server):
    login_ok(fresh_server, "bob", "bob-secret")
    fresh_server.ternctl("user", "del", "bob@localhost")
    assert login_refused(fresh_server, "bob", "bob-secret") == NOT_AUTHORIZED
    listed = fresh_server.ternctl("user", "list", "localhost").stdout
    assert listed.splitlines() == ["admin@localhost", "alice@localhost"]


def test_adding_an_existing_user_fails_with_one_line(fresh_server):
    proc = fresh_server.ternctl("user", "add", "alice@localhost", "other", check=False)
    assert proc.returncode == 1
    assert proc.stderr == "ternctl: user alice@localhost already exists\n"
    login_ok(fresh_server, "alice", "alice-secret")  # and her password did not change


def test_a_user_of_an_unknown_host_is_refused(fresh_server):
    proc = fresh_server.ternctl("user", "add", "eve@elsewhere.example", "secret", check=False)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "elsewhere.example is not a host of this server" in proc.stderr
    listed = fresh_server.ternctl("user", "list", "localhost").stdout
    assert "eve" not in listed


def test_status_says_running_and_then_stopped(fresh_server):
    assert status_line(fresh_server) == f"ternd: running (pid {fresh_server.proc.pid})"
    fresh_server.check_clean_exit()
    assert status_line(fresh_server) == "ternd: stopped"


def test_a_password_can_come_from_stdin(fresh_server):
    fresh_server.ternctl("user", "add", "dave@localhost", "-", stdin="dave secret\n")
    login_ok(fresh_server, "dave", "dave secret")
    # The argument "-" is not the password.
    assert login_refused(fresh_server, "dave", "-") == NOT_AUTHORIZED


# ---------------------------------------------------------------- signals and restarts


def test_sigterm_tells_every_client_and_exits_cleanly(fresh_server):
    alice, bob = RawStream(fresh_server), RawStream(fresh_server)
    alice.login("alice", "alice-secret")
    bob.login("bob", "bob-secret")
    started = time.monotonic()
    rc = fresh_server.stop()
    assert time.monotonic() - started < 5
    assert rc == 0
    assert_clean_log(fresh_server)
    for s in (alice, bob):
        assert s.stream_error(timeout=1) == "system-shutdown"
        s.close()


def test_an_account_added_before_kill_9_survives_it(fresh_server):
    fresh_server.ternctl("user", "add", "erin@localhost", "erin-secret")
    old_pid = fresh_server.proc.pid
    fresh_server.kill9()
    # The pid file is left behind, still naming the dead process ...
    pid_file = fresh_server.folder / "var" / "ternd.pid"
    assert pid_file.read_text().strip() == str(old_pid)
    assert status_line(fresh_server) == "ternd: stopped"
    # ... yet ternd starts again: the lock, not the file, says whether one is running.
    fresh_server.start()
    assert status_line(fresh_server) == f"ternd: running (pid {fresh_server.proc.pid})"
    login_ok(fresh_server, "erin", "erin-secret")
    login_ok(fresh_server, "alice", "alice-secret")


def test_a_second_ternd_with_the_same_config_refuses_to_start(fresh_server):
    proc = ternd("-c", str(fresh_server.config))
    assert proc.returncode != 0
    assert f"already running (pid {fresh_server.proc.pid})" in proc.stderr, proc.stderr
    # The first one is untouched: still running, still serving, still owning the pid file.
    assert fresh_server.proc.poll() is None
    login_ok(fresh_server, "alice", "alice-secret")
    assert status_line(fresh_server) == f"ternd: running (pid {fresh_server.proc.pid})"


def test_sighup_reloads_the_config(fresh_server):
    s = RawStream(fresh_server)
    s.login("alice", "alice-secret")
    lines = config_lines(fresh_server)
    lines[lines.index("log_level = debug")] = "log_level = info"
    write_config(fresh_server, lines)
    fresh_server.proc.send_signal(signal.SIGHUP)
    fresh_server.wait_log("reloaded", timeout=5)
    s.ping_server("after-reload")  # a stream opened before the reload goes on
    # The new log level applies: a new client's debug lines (TLS details) are gone.
    mark = len(fresh_server.log_text())
    login_ok(fresh_server, "bob", "bob-secret")
    fresh_server.wait_log("bound bob@localhost/", timeout=5)
    after = fresh_server.log_text()[mark:]
    assert "client connection from" in after
    assert " debug " not in after, after
    s.close()


def test_sighup_with_a_broken_config_keeps_the_server_running(fresh_server):
    s = RawStream(fresh_server)
    s.login("alice", "alice-secret")
    lines = config_lines(fresh_server)
    line = insert_after(lines, "[server]", "no_such_key = 1")
    write_config(fresh_server, lines)
    fresh_server.proc.send_signal(signal.SIGHUP)
    fresh_server.wait_log("reload failed", timeout=5)
    error_line = next(l for l in fresh_server.log_text().splitlines() if "reload failed" in l)
    assert " error " in error_line, error_line
    assert f"tern.conf:{line}:" in error_line and "no_such_key" in error_line, error_line
    assert fresh_server.proc.poll() is None
    s.ping_server("after-failed-reload")
    login_ok(fresh_server, "bob", "bob-secret")
    s.close()


# ---------------------------------------------------------------- federation is a module


def test_an_s2s_section_without_the_s2s_module_opens_nothing(tmp_path, pki):
    """Federation is the s2s module's: a config that keeps its [s2s] section but loads the
    module on no host starts, says the section is unused, and listens on no s2s port."""
    port = free_port()
    srv = TernServer(tmp_path, pki, modules="disco ping",
                     c2s_extra=f"[s2s]\nlisten = 127.0.0.1:{port}\n")
    srv.start()
    try:
        srv.wait_log("the [s2s] section is unused: no host loads the s2s module")
        with socket.socket() as s:
            s.settimeout(5)
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        srv.check_clean_exit()
