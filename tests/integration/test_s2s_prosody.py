"""Federation with a real Prosody (Debian's `prosody`): alice@tern.test and bob@prosody.test.

Prosody resolves domains with its own DNS client, which reads /etc/resolv.conf and asks port
53. So the whole scenario runs in a network namespace the test creates: its own loopback, a
test dnsmasq on 127.0.0.1:53 there, /etc/netns/<name>/resolv.conf pointing at it (bind-mounted
over /etc/resolv.conf by `ip netns exec`, which starts Prosody). The test process itself joins
the namespace (setns on its own thread) while the module's tests run, so ternd, dnsmasq and the
slixmpp clients live there too, and leaves it at the end.

  tern.test     ternd on 127.0.0.1 (s2s 5269 via an SRV record), [tls] ca_file = the test CA
  prosody.test  Prosody on 127.0.0.2 (c2s 5222, s2s 5269; no SRV record: the A fallback)

Both servers trust the test CA, so their links authenticate with SASL EXTERNAL (XEP-0178);
test_dialback_with_prosody restarts the scenario with Prosody not trusting tern's CA, so that
tern's link to Prosody falls back to Server Dialback.

Checks what users see: messages both ways, presence subscription both ways, and a message to
bob while he is offline, kept by Prosody (mod_offline) and delivered when he logs in."""
import asyncio
import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tern_harness import TernServer, connect, disconnect, make_client, make_pki, run

PROSODY = shutil.which("prosody") or "/usr/bin/prosody"
PROSODYCTL = shutil.which("prosodyctl") or "/usr/bin/prosodyctl"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
IP = shutil.which("ip") or "/usr/sbin/ip"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(PROSODY), reason="prosody is not installed"),
    pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

ALICE = ("alice@tern.test", "alice-secret")
BOB = ("bob@prosody.test", "bob-secret")
PROSODY_ADDR = "127.0.0.2"
MODULES = "disco ping roster presence offline s2s"
CLONE_NEWNET = 0x40000000


class NetNS:
    """A network namespace with loopback up and its own resolv.conf; enter() moves this thread
    (and so every process and thread it starts afterwards) into it."""

    def __init__(self, name):
        self.name = name
        self.etc = Path("/etc/netns") / name
        subprocess.run([IP, "netns", "add", name], check=True, capture_output=True, timeout=10)
        subprocess.run([IP, "netns", "exec", name, IP, "link", "set", "lo", "up"], check=True,
                       capture_output=True, timeout=10)
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.home = None

    def _setns(self, path):
        fd = os.open(path, os.O_RDONLY)
        try:
            if self.libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {path}")
        finally:
            os.close(fd)

    def enter(self):
        self.home = os.open("/proc/self/task/%d/ns/net" % __import__("threading").get_native_id(),
                            os.O_RDONLY)
        self._setns(f"/var/run/netns/{self.name}")

    def leave(self):
        if self.home is not None:
            if self.libc.setns(self.home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
            os.close(self.home)
            self.home = None

    def exec_args(self, *args):
        return [IP, "netns", "exec", self.name, *args]

    def delete(self):
        self.leave()
        subprocess.run([IP, "netns", "del", self.name], capture_output=True, timeout=10)
        shutil.rmtree(self.etc, ignore_errors=True)


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


class Scenario:
    """The namespace, dnsmasq, ternd for tern.test and Prosody for prosody.test."""

    def __init__(self, folder: Path, tern_config="", prosody_global="", prosody_trusts_tern=True,
                 name="a"):
        self.folder = folder
        self.netns = NetNS(f"terns2s{os.getpid()}{name}")
        self.dns = self.tern = self.prosody = None
        try:
            self.netns.enter()
            self.pki = folder / "pki"
            make_pki(self.pki, hosts=("tern.test", "prosody.test"))
            self.dns_log = folder / "dnsmasq.log"
            self.dns = subprocess.Popen(
                [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                 "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1", "--port=53",
                 "--local=/test/", "--user=root", "--log-queries",
                 f"--log-facility={self.dns_log}",
                 "--srv-host=_xmpp-server._tcp.tern.test,xmpp.tern.test,5269,0,5",
                 "--host-record=xmpp.tern.test,127.0.0.1",
                 "--host-record=tern.test,127.0.0.1",
                 f"--host-record=prosody.test,{PROSODY_ADDR}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._wait_dns()
            self.tern = TernServer(folder / "tern", self.pki, hosts=("tern.test",),
                                   modules=MODULES,
                                   extra_config="dns_servers = 127.0.0.1:53\n"
                                                f"[tls]\nca_file = {self.pki}/ca.crt\n"
                                                "[s2s]\nlisten = 127.0.0.1:5269\n"
                                                f"{tern_config}")
            self.tern.add_user(*ALICE)
            self.tern.start()
            other_ca = None
            if not prosody_trusts_tern:
                other_ca = make_pki(folder / "other-pki", hosts=())
            self.prosody = Prosody(folder / "prosody", self.netns, self.pki,
                                   extra_global=prosody_global, ca=other_ca)
            self.prosody.add_user(*BOB)
            self.prosody.start()
        except BaseException:
            self.close(check=False)
            raise

    def _wait_dns(self):
        import socket
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.dns.poll() is not None:
                raise AssertionError(f"dnsmasq exited: {self.dns.stderr.read()!r}")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", 53))
                except OSError:
                    return
            time.sleep(0.05)
        raise AssertionError("dnsmasq did not start")

    def close(self, check=True):
        try:
            if self.prosody:
                self.prosody.stop()
            if self.tern and self.tern.proc:
                if check:
                    self.tern.check_clean_exit()
                else:
                    self.tern.proc.kill()
                    self.tern.proc.wait(5)
        finally:
            if self.dns:
                self.dns.terminate()
                self.dns.wait(5)
            self.netns.delete()


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    s = Scenario(tmp_path_factory.mktemp("s2s-prosody"))
    yield s
    s.close()


def next_event(client, name, timeout=15, predicate=lambda x: True):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def handler(stanza):
        if not fut.done() and predicate(stanza):
            fut.set_result(stanza)
    client.add_event_handler(name, handler)

    async def wait():
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            client.del_event_handler(name, handler)
    return asyncio.ensure_future(wait())


def alice_client(sc):
    return make_client(ALICE[0] + "/phone", ALICE[1], sc.tern)


def bob_client(sc, resource="laptop"):
    return make_client(f"{BOB[0]}/{resource}", BOB[1], sc.tern, mech="SCRAM-SHA-1")


async def connect_bob(bob, presence=True, timeout=15):
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def on_start(_):
        if presence:
            bob.send_presence()
        if not started.done():
            started.set_result(True)

    def on_fail(_):
        if not started.done():
            started.set_exception(AssertionError("authentication to prosody failed"))
    bob.add_event_handler("session_start", on_start)
    bob.add_event_handler("failed_all_auth", on_fail)
    bob.connect((PROSODY_ADDR, 5222))
    await asyncio.wait_for(started, timeout)
    return bob


def diagnose(sc):
    return (f"--- ternd ---\n{sc.tern.log_text()[-6000:]}\n"
            f"--- prosody ---\n{sc.prosody.log_text()[-6000:]}")


def test_messages_both_ways(sc):
    async def body():
        alice, bob = alice_client(sc), bob_client(sc)
        await connect(alice, sc.tern)
        await connect_bob(bob)
        got = next_event(bob, "message", predicate=lambda m: m["type"] == "chat")
        alice.send_message(mto="bob@prosody.test", mbody="hello prosody", mtype="chat")
        msg = await got
        assert msg["body"] == "hello prosody"
        assert str(msg["from"]) == "alice@tern.test/phone"
        got = next_event(alice, "message", predicate=lambda m: m["type"] == "chat")
        bob.send_message(mto="alice@tern.test/phone", mbody="hello tern", mtype="chat")
        msg = await got
        assert msg["body"] == "hello tern"
        assert str(msg["from"]) == "bob@prosody.test/laptop"
        # Several in a row keep their order over the established links.
        got = [next_event(bob, "message", predicate=lambda m, i=i: m["body"] == f"n{i}")
               for i in range(5)]
        for i in range(5):
            alice.send_message(mto="bob@prosody.test", mbody=f"n{i}", mtype="chat")
        await asyncio.gather(*got)
        await disconnect(alice, bob)
    try:
        run(body(), timeout=45)
    except BaseException:
        print(diagnose(sc))
        raise
    # Both trust the test CA, so both links authenticate by certificate (XEP-0178).
    log = sc.tern.log_text()
    assert "link tern.test -> prosody.test is authenticated (SASL EXTERNAL)" in log, diagnose(sc)
    assert "prosody.test authenticated by certificate (SASL EXTERNAL) for tern.test" in log
    assert "Accepting SASL EXTERNAL identity from tern.test" in sc.prosody.log_text()


def test_presence_subscription_both_ways(sc):
    async def body():
        alice, bob = alice_client(sc), bob_client(sc)
        for c in (alice, bob):
            c.auto_authorize = True
            c.auto_subscribe = False
        await connect(alice, sc.tern)
        await connect_bob(bob)
        # Interested resources (RFC 6121 §2.1.6): Prosody sends subscription presence only to
        # clients that asked for the roster.
        await alice.get_roster()
        await bob.get_roster()
        # alice subscribes to bob: bob's client approves; alice sees him online.
        subscribed = next_event(alice, "presence_subscribed",
                                predicate=lambda p: p["from"].bare == "bob@prosody.test")
        available = next_event(alice, "presence_available",
                               predicate=lambda p: p["from"].bare == "bob@prosody.test")
        alice.send_presence(pto="bob@prosody.test", ptype="subscribe")
        await subscribed
        p = await available
        assert str(p["from"]) == "bob@prosody.test/laptop"
        # bob subscribes to alice the other way.
        subscribed = next_event(bob, "presence_subscribed",
                                predicate=lambda p: p["from"].bare == "alice@tern.test")
        available = next_event(bob, "presence_available",
                               predicate=lambda p: p["from"].bare == "alice@tern.test")
        bob.send_presence(pto="alice@tern.test", ptype="subscribe")
        await subscribed
        p = await available
        assert str(p["from"]) == "alice@tern.test/phone"
        # Both rosters say "both".
        await alice.get_roster()
        await bob.get_roster()
        assert alice.client_roster["bob@prosody.test"]["subscription"] == "both"
        assert bob.client_roster["alice@tern.test"]["subscription"] == "both"
        # Going offline is seen on the other side, both ways.
        gone = next_event(alice, "presence_unavailable",
                          predicate=lambda p: p["from"].bare == "bob@prosody.test")
        bob.disconnect()
        await gone
        bob = bob_client(sc, "tablet")
        back = next_event(alice, "presence_available",
                          predicate=lambda p: str(p["from"]) == "bob@prosody.test/tablet")
        await connect_bob(bob)
        await back
        gone = next_event(bob, "presence_unavailable",
                          predicate=lambda p: p["from"].bare == "alice@tern.test")
        alice.disconnect()
        await gone
        await disconnect(bob)
    try:
        run(body(), timeout=60)
    except BaseException:
        print(diagnose(sc))
        raise


def test_offline_message_waits_on_prosody(sc):
    async def body():
        alice = alice_client(sc)
        await connect(alice, sc.tern)
        alice.send_message(mto="bob@prosody.test", mbody="while you were out", mtype="chat")
        # Prosody stores it (mod_offline); nothing comes back to alice.
        deadline = time.monotonic() + 15
        while "while you were out" not in offline_store(sc) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert "while you were out" in offline_store(sc), diagnose(sc)
        bob = bob_client(sc, "desk")
        got = next_event(bob, "message", predicate=lambda m: m["body"] == "while you were out")
        await connect_bob(bob)
        msg = await got
        assert str(msg["from"]) == "alice@tern.test/phone"
        assert "urn:xmpp:delay" in str(msg), msg  # XEP-0203: marked as delayed by Prosody
        await disconnect(alice, bob)
    try:
        run(body(), timeout=45)
    except BaseException:
        print(diagnose(sc))
        raise


def offline_store(sc):
    folder = sc.prosody.folder / "data" / "prosody%2etest" / "offline"
    return "".join(p.read_text(errors="replace") for p in folder.glob("*")) \
        if folder.exists() else ""


def test_dialback_with_prosody(tmp_path):
    """Prosody does not trust tern's CA: it offers no SASL EXTERNAL to tern, whose link falls
    back to Server Dialback (Prosody asks tern's server to verify the key). Prosody's own
    link to tern still authenticates by certificate, which tern trusts."""
    sc2 = Scenario(tmp_path, prosody_trusts_tern=False, name="b")
    try:
        async def body():
            alice, bob = alice_client(sc2), bob_client(sc2)
            await connect(alice, sc2.tern)
            await connect_bob(bob)
            got = next_event(bob, "message", predicate=lambda m: m["type"] == "chat")
            alice.send_message(mto="bob@prosody.test", mbody="by dialback", mtype="chat")
            assert (await got)["body"] == "by dialback"
            got = next_event(alice, "message", predicate=lambda m: m["type"] == "chat")
            bob.send_message(mto="alice@tern.test/phone", mbody="by certificate", mtype="chat")
            assert (await got)["body"] == "by certificate"
            await disconnect(alice, bob)
        try:
            run(body(), timeout=45)
        except BaseException:
            print(diagnose(sc2))
            raise
        log = sc2.tern.log_text()
        assert "link tern.test -> prosody.test is authenticated (dialback)" in log, diagnose(sc2)
        assert "asks about our key for tern.test: valid" in log
        assert "prosody.test authenticated by certificate (SASL EXTERNAL)" in log
    finally:
        sc2.close()
