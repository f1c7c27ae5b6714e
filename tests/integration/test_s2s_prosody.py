"""Federation with a real Prosody (Debian's `prosody`): alice@tern.test and bob@prosody.test.

Prosody resolves domains with its own DNS client, which reads /etc/resolv.conf and asks port
53. So the whole scenario runs in a network namespace with a test dnsmasq (s2s_interop.py):
Prosody is started there by `ip netns exec`, ternd and the slixmpp clients by the test process,
which joins the namespace while the module's tests run.

  tern.test     ternd on 127.0.0.1 (s2s 5269 via an SRV record), [tls] ca_file = the test CA
  prosody.test  Prosody on 127.0.0.2 (c2s 5222, s2s 5269; no SRV record: the A fallback)

Runs the peer scenario steps of s2s_interop.py with bob: messages, subscription and a
message kept offline by Prosody; test_dialback_with_prosody makes Prosody distrust tern's CA."""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from s2s_interop import (DNSMASQ, NetNS, OFFLINE_BODY, PeerScenario, PeerUser,
                         check_links_by_certificate, check_outbound_link_by_dialback,
                         messages_both_ways, offline_message_kept_by_peer,
                         subscription_both_ways)

PROSODY = shutil.which("prosody") or "/usr/bin/prosody"
PROSODYCTL = shutil.which("prosodyctl") or "/usr/bin/prosodyctl"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(PROSODY), reason="prosody is not installed"),
    pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

PROSODY_ADDR = "127.0.0.2"
BOB = PeerUser("bob@prosody.test", "bob-secret", (PROSODY_ADDR, 5222))


class Prosody:
    def __init__(self, folder: Path, netns: NetNS, pki: Path, domain="prosody.test",
                 extra_global="", ca=None):
        self.folder = folder
        self.netns = netns
        self.pki = pki
        self.domain = domain
        self.log_path = folder / "prosody.log"
        self.config = folder / "prosody.cfg.lua"
        ca = ca or pki / "ca.crt"   # the CA Prosody trusts for peers
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "certs").mkdir(exist_ok=True)
        self.config.write_text(f"""
run_as_root = true
pidfile = "{folder}/prosody.pid"
data_path = "{folder}/data"
certificates = "{folder}/certs"
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = "{self.log_path}" }} }}
interfaces = {{ "{PROSODY_ADDR}" }}
c2s_ports = {{ 5222 }}
s2s_ports = {{ 5269 }}
modules_enabled = {{ "roster", "saslauth", "tls", "dialback", "disco", "ping" }}
s2s_secure_auth = false
ssl = {{ cafile = "{ca}" }}
{extra_global}
VirtualHost "{domain}"
  ssl = {{ certificate = "{pki}/{domain}.crt", key = "{pki}/{domain}.key",
           cafile = "{ca}" }}
""")
        self.proc = None

    def prosodyctl(self, *args):
        proc = subprocess.run(self.netns.exec_args(PROSODYCTL, "--config", str(self.config),
                                                   *args),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"prosodyctl {args} failed: {proc.stdout}{proc.stderr}")

    def add_user(self, jid, password):
        user, domain = jid.split("@")
        self.prosodyctl("register", user, domain, password)

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout=20):
        self.out = open(self.folder / "prosody.out", "ab")
        self.proc = subprocess.Popen(self.netns.exec_args(PROSODY, "-F", "--config",
                                                          str(self.config)),
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prosody exited ({self.proc.returncode}):\n"
                                     f"{(self.folder / 'prosody.out').read_text()}\n"
                                     f"{self.log_text()[-4000:]}")
            if "Activated service 's2s' on" in self.log_text() or \
                    "Activated service 's2s'" in self.log_text():
                return self
            time.sleep(0.05)
        raise AssertionError(f"prosody did not start:\n{self.log_text()[-4000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self.out.close()


class Scenario(PeerScenario):
    """The namespace, dnsmasq, ternd for tern.test and Prosody for prosody.test."""

    peer_name = "prosody"

    def __init__(self, folder: Path, tern_config="", prosody_global="", prosody_trusts_tern=True,
                 name="a"):
        self.prosody_global = prosody_global
        super().__init__(folder, f"terns2s{os.getpid()}{name}", BOB, prosody_trusts_tern,
                         tern_config)

    def make_peer(self, ca):
        return Prosody(self.folder / "prosody", self.netns, self.pki,
                       extra_global=self.prosody_global, ca=ca)

    def start_peer(self):
        self.peer.add_user(BOB.jid, BOB.password)
        self.peer.start()


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    with Scenario(tmp_path_factory.mktemp("s2s-prosody")) as s:
        yield s


def test_messages_both_ways(sc):
    sc.run(messages_both_ways(sc, "hello prosody"), timeout=45)
    check_links_by_certificate(sc)
    assert "Accepting SASL EXTERNAL identity from tern.test" in sc.peer.log_text()


def test_presence_subscription_both_ways(sc):
    sc.run(subscription_both_ways(sc), timeout=60)


def test_offline_message_waits_on_prosody(sc):
    sc.run(offline_message_kept_by_peer(sc, lambda: OFFLINE_BODY in offline_store(sc)),
           timeout=45)


def offline_store(sc):
    folder = sc.peer.folder / "data" / "prosody%2etest" / "offline"
    return "".join(p.read_text(errors="replace") for p in folder.glob("*")) \
        if folder.exists() else ""


def test_dialback_with_prosody(tmp_path):
    """Prosody does not trust tern's CA: it offers no SASL EXTERNAL to tern, whose link falls
    back to Server Dialback (Prosody asks tern's server to verify the key). Prosody's own
    link to tern still authenticates by certificate, which tern trusts."""
    with Scenario(tmp_path, prosody_trusts_tern=False, name="b") as sc2:
        sc2.run(messages_both_ways(sc2, "by dialback", "by certificate", in_a_row=0),
                timeout=45)
        check_outbound_link_by_dialback(sc2)
