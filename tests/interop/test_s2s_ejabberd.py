"""Federation with a real ejabberd (Debian's `ejabberd`): alice@tern.test and carol@ejabberd.test.
Run by `make interop`, not `make check` (ejabberd and Erlang are heavy to install).

Like test_s2s_prosody.py, the scenario runs in a network namespace with a test dnsmasq
(tests/integration/s2s_interop.py); ejabberd is started there by `ip netns exec`, so its
resolver reads the namespace's resolv.conf.

  tern.test      ternd on 127.0.0.1 (s2s 5269 via an SRV record), [tls] ca_file = the test CA
  ejabberd.test  ejabberd on 127.0.0.3 (c2s 5222, s2s 5269; no SRV record: the A fallback)

ejabberd runs as root without ejabberdctl (which would switch to the `ejabberd` user): the test
starts the Erlang node itself with ejabberd's own configuration, Mnesia spool and logs in the
temporary folder, its own epmd in the namespace, a unique short node name on localhost and a
private cookie; accounts and commands go through ejabberd_ctl from a second, hidden node.

Runs the peer scenario steps of s2s_interop.py with carol: messages, subscription and a
message kept offline by ejabberd; test_dialback_with_ejabberd makes ejabberd distrust tern's CA."""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from s2s_interop import (DNSMASQ, NetNS, PeerScenario, PeerUser, check_links_by_certificate,
                         check_outbound_link_by_dialback, messages_both_ways,
                         offline_message_kept_by_peer, subscription_both_ways)

ERL = shutil.which("erl") or "/usr/bin/erl"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
EJABBERD_LIBS = "/usr/lib/x86_64-linux-gnu"   # where Debian puts ejabberd's Erlang apps
EJABBERD_EBIN = Path(EJABBERD_LIBS).glob("ejabberd-*/ebin/ejabberd.app")

pytestmark = [
    pytest.mark.skipif(not any(EJABBERD_EBIN), reason="ejabberd is not installed"),
    pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

EJABBERD_ADDR = "127.0.0.3"
CAROL = PeerUser("carol@ejabberd.test", "carol-secret", (EJABBERD_ADDR, 5222))
START_TIMEOUT = 60


class Ejabberd:
    """An ejabberd node for one domain in the namespace, with everything in `folder`."""

    def __init__(self, folder: Path, netns: NetNS, pki: Path, domain="ejabberd.test", ca=None):
        self.folder = folder
        self.netns = netns
        self.domain = domain
        self.node = f"tern{os.getpid()}{netns.name[-1]}@localhost"
        self.cookie = f"tern-test-{os.getpid()}"
        self.log_path = folder / "logs" / "ejabberd.log"
        self.config = folder / "ejabberd.yml"
        ca = ca or pki / "ca.crt"   # the CA ejabberd trusts for peers
        for sub in ("spool", "logs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "inetrc").write_text('{lookup, ["file", "native"]}.\n'
                                       '{file, resolv, "/etc/resolv.conf"}.\n')
        self.config.write_text(f"""
hosts: [{domain}]
loglevel: debug
certfiles:
  - "{pki}/{domain}.crt"
  - "{pki}/{domain}.key"
ca_file: "{ca}"
s2s_use_starttls: required
s2s_cafile: "{ca}"
auth_method: internal
listen:
  - port: 5222
    ip: "{EJABBERD_ADDR}"
    module: ejabberd_c2s
    starttls_required: true
  - port: 5269
    ip: "{EJABBERD_ADDR}"
    module: ejabberd_s2s_in
modules:
  mod_roster: {{}}
  mod_offline: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
  mod_admin_extra: {{}}
  mod_s2s_dialback: {{}}
""")
        self.env = dict(os.environ, HOME=str(folder), EJABBERD_CONFIG_PATH=str(self.config),
                        EJABBERD_LOG_PATH=str(self.log_path), ERL_LIBS=EJABBERD_LIBS,
                        ERL_INETRC=str(folder / "inetrc"), ERL_EPMD_ADDRESS="127.0.0.1",
                        ERL_CRASH_DUMP_BYTES="0")
        self.proc = self.epmd = None

    def _erl(self, name, *args):
        return self.netns.exec_args(ERL, "-sname", name, "-setcookie", self.cookie, *args)

    def ctl(self, *args, timeout=60):
        """An ejabberdctl command, from a hidden node; returns its output."""
        name = f"ctl{os.getpid()}{time.monotonic_ns() % 100000}@localhost"
        proc = subprocess.run(self._erl(name, "-hidden", "-noinput", "-s", "ejabberd_ctl",
                                        "-extra", self.node, *args),
                              env=self.env, cwd=self.folder, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"ejabberdctl {args} failed ({proc.returncode}): "
                                 f"{proc.stdout}{proc.stderr}")
        return proc.stdout.strip()

    def add_user(self, jid, password):
        user, domain = jid.split("@")
        self.ctl("register", user, domain, password)

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, needle, timeout=10):
        """True once needle is in the log (ejabberd writes its log asynchronously)."""
        deadline = time.monotonic() + timeout
        while needle not in self.log_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def start(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        # Our own epmd in the namespace (its port, 4369, is the namespace's), so that it can
        # be stopped by pid at the end.
        self.epmd = subprocess.Popen(self.netns.exec_args(EPMD, "-address", "127.0.0.1"),
                                     env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        while True:
            try:
                socket.create_connection(("127.0.0.1", 4369), timeout=1).close()
                break
            except OSError:
                if self.epmd.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("epmd did not start")
                time.sleep(0.05)
        self.out = open(self.folder / "ejabberd.out", "ab")
        self.proc = subprocess.Popen(
            self._erl(self.node, "+K", "true", "-noinput", "-mnesia", "dir",
                      f'"{self.folder / "spool"}"', "-s", "ejabberd"),
            env=self.env, cwd=self.folder, stdout=self.out, stderr=subprocess.STDOUT)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ejabberd exited ({self.proc.returncode}):\n"
                                     f"{self.log_text()[-4000:]}")
            log = self.log_text()
            if "[critical]" in log:
                raise AssertionError(f"ejabberd failed to start:\n{log[-4000:]}")
            if "is started in the node" in log and \
                    "Start accepting TCP connections at" in log:
                return self
            time.sleep(0.1)
        raise AssertionError(f"ejabberd did not start within {timeout}s:\n"
                             f"{self.log_text()[-4000:]}")

    def stop(self):
        """`ejabberdctl stop`, then kill the node if it is still there, and our epmd."""
        try:
            if self.proc and self.proc.poll() is None:
                try:
                    self.ctl("stop", timeout=30)
                    self.proc.wait(30)
                except (AssertionError, subprocess.TimeoutExpired):
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            if self.proc:
                self.out.close()
            if self.epmd and self.epmd.poll() is None:
                self.epmd.send_signal(signal.SIGTERM)
                try:
                    self.epmd.wait(10)
                except subprocess.TimeoutExpired:
                    self.epmd.kill()
                    self.epmd.wait(5)


class Scenario(PeerScenario):
    """The namespace, dnsmasq, ternd for tern.test and ejabberd for ejabberd.test."""

    peer_name = "ejabberd"
    peer_log_tail = 8000

    def __init__(self, folder: Path, ejabberd_trusts_tern=True, name="a"):
        super().__init__(folder, f"ternejab{os.getpid()}{name}", CAROL, ejabberd_trusts_tern)

    def make_peer(self, ca):
        return Ejabberd(self.folder / "ejabberd", self.netns, self.pki, ca=ca)

    def start_peer(self):
        self.peer.start()
        self.peer.add_user(CAROL.jid, CAROL.password)


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    with Scenario(tmp_path_factory.mktemp("s2s-ejabberd")) as s:
        yield s


def test_messages_both_ways(sc):
    sc.run(messages_both_ways(sc, "hello ejabberd"), timeout=60)
    check_links_by_certificate(sc)
    assert sc.peer.wait_log("Accepted inbound s2s EXTERNAL authentication "
                            "tern.test -> ejabberd.test"), sc.diagnose()
    assert sc.peer.wait_log("Accepted outbound s2s EXTERNAL authentication "
                            "ejabberd.test -> tern.test"), sc.diagnose()


def test_presence_subscription_both_ways(sc):
    sc.run(subscription_both_ways(sc), timeout=90)


def test_offline_message_waits_on_ejabberd(sc):
    async def body():
        await offline_message_kept_by_peer(sc, lambda: offline_count(sc) == "1", interval=0.2)
        assert offline_count(sc) == "0"
    sc.run(body(), timeout=60)


def offline_count(sc):
    return sc.peer.ctl("get_offline_count", "carol", "ejabberd.test")


def test_dialback_with_ejabberd(tmp_path):
    """ejabberd does not trust tern's CA: it offers no SASL EXTERNAL to tern, whose link falls
    back to Server Dialback (ejabberd asks tern's server to verify the key). ejabberd's own
    link to tern still authenticates by certificate, which tern trusts."""
    with Scenario(tmp_path, ejabberd_trusts_tern=False, name="b") as sc2:
        sc2.run(messages_both_ways(sc2, "by dialback", "by certificate", in_a_row=0),
                timeout=60)
        check_outbound_link_by_dialback(sc2)
        assert sc2.peer.wait_log("Accepted inbound s2s dialback authentication "
                                 "tern.test -> ejabberd.test"), sc2.diagnose()
        assert sc2.peer.wait_log("Accepted outbound s2s EXTERNAL authentication "
                                 "ejabberd.test -> tern.test"), sc2.diagnose()
