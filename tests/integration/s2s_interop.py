"""s2s_interop — what the federation tests against real peer servers (Prosody, ejabberd) share:
a network namespace with its own loopback and resolv.conf, a test dnsmasq in it serving the
test domains, and slixmpp helpers for users of the peer server.

Peers resolve domains with their own DNS clients, which read /etc/resolv.conf and ask port 53.
So each scenario runs in a namespace: a test dnsmasq on 127.0.0.1:53 there, and
/etc/netns/<name>/resolv.conf pointing at it (bind-mounted over /etc/resolv.conf by
`ip netns exec`, which starts the peer). The test process itself joins the namespace (setns on
its own thread) while the scenario runs, so ternd, dnsmasq and the slixmpp clients live there
too, and leaves it at the end.

PeerScenario builds that world for one peer server, with alice@tern.test on ternd and one user of
the peer; the scenario steps below it are the same for every peer and check what users see:
messages both ways, presence subscription both ways, and a message to the peer user while they
are offline, kept by the peer server (mod_offline) and delivered when they log in. Both servers
trust the test CA, so their links authenticate with SASL EXTERNAL (XEP-0178); a scenario where
the peer does not trust tern's CA checks that tern's link to it falls back to Server Dialback.

Every wait has a timeout."""
import asyncio
import ctypes
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from tern_harness import TernServer, connect, disconnect, make_client, make_pki, run

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
IP = shutil.which("ip") or "/usr/sbin/ip"
CLONE_NEWNET = 0x40000000

ALICE = ("alice@tern.test", "alice-secret")   # the user of ternd in every peer scenario
ALICE_PHONE = ALICE[0] + "/phone"
MODULES = "disco ping roster presence offline s2s"
OFFLINE_BODY = "while you were out"


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
        self.home = os.open("/proc/self/task/%d/ns/net" % threading.get_native_id(),
                            os.O_RDONLY)
        self._setns(f"/var/run/netns/{self.name}")

    def leave(self):
        if self.home is not None:
            if self.libc.setns(self.home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
            os.close(self.home)
            self.home = None

    def exec_args(self, *args):
        """A command line that runs args in the namespace with its resolv.conf mounted."""
        return [IP, "netns", "exec", self.name, *args]

    def delete(self):
        self.leave()
        subprocess.run([IP, "netns", "del", self.name], capture_output=True, timeout=10)
        shutil.rmtree(self.etc, ignore_errors=True)


class Dnsmasq:
    """The test DNS server on 127.0.0.1:53 of the current namespace, authoritative for .test:
    tern.test has an SRV record (xmpp.tern.test:5269 on 127.0.0.1); each peer domain in
    `peers` ({domain: address}) has only an A record, so peers are found by the A fallback."""

    def __init__(self, log: Path, peers: dict):
        self.log = log
        self.proc = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
             "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1", "--port=53",
             "--local=/test/", "--user=root", "--log-queries", f"--log-facility={log}",
             "--srv-host=_xmpp-server._tcp.tern.test,xmpp.tern.test,5269,0,5",
             "--host-record=xmpp.tern.test,127.0.0.1",
             "--host-record=tern.test,127.0.0.1",
             *(f"--host-record={domain},{addr}" for domain, addr in peers.items())],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()

    def _wait(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dnsmasq exited: {self.proc.stderr.read()!r}")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", 53))
                except OSError:
                    return  # taken: dnsmasq listens
            time.sleep(0.05)
        self.stop()
        raise AssertionError("dnsmasq did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stderr.close()


# ---------------------------------------------------------------- clients


def next_event(client, name, timeout=15, predicate=lambda x: True):
    """A task that resolves to the next `name` event of client matching predicate."""
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


async def connect_peer_user(client, address, presence=True, timeout=15):
    """Connects a slixmpp client to a peer server's c2s port (address: (host, port)) and
    waits for session_start; raises on authentication failure or timeout."""
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def on_start(_):
        if presence:
            client.send_presence()
        if not started.done():
            started.set_result(True)

    def on_fail(_):
        if not started.done():
            started.set_exception(AssertionError(f"authentication to {address} failed"))
    client.add_event_handler("session_start", on_start)
    client.add_event_handler("failed_all_auth", on_fail)
    client.connect(address)
    await asyncio.wait_for(started, timeout)
    return client


async def eventually(condition, timeout=15, interval=0.1):
    """Polls condition() every interval seconds until it holds or timeout has passed; returns
    its last value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(interval)
    return condition()


async def chat_both_ways(local, local_jid, remote, remote_jid, to_remote, to_local):
    """local (full JID local_jid) sends a chat to remote's bare JID, and remote (full JID
    remote_jid) answers to local's full JID: each gets the other's body, from the other's full
    JID."""
    got = next_event(remote, "message", predicate=lambda m: m["type"] == "chat")
    local.send_message(mto=remote_jid.split("/")[0], mbody=to_remote, mtype="chat")
    msg = await got
    assert msg["body"] == to_remote
    assert str(msg["from"]) == local_jid
    got = next_event(local, "message", predicate=lambda m: m["type"] == "chat")
    remote.send_message(mto=local_jid, mbody=to_local, mtype="chat")
    msg = await got
    assert msg["body"] == to_local
    assert str(msg["from"]) == remote_jid


async def chats_in_a_row(sender, receiver, to, count=5):
    """sender sends count chats (n0, n1, ...) to `to` back to back over the established links;
    receiver gets every one of them."""
    got = [next_event(receiver, "message", predicate=lambda m, i=i: m["body"] == f"n{i}")
           for i in range(count)]
    for i in range(count):
        sender.send_message(mto=to, mbody=f"n{i}", mtype="chat")
    await asyncio.gather(*got)


async def subscribe_and_see_available(subscriber, contact_jid):
    """subscriber asks for a subscription to contact_jid's bare JID; the contact's client
    approves it (auto_authorize), and subscriber then sees the contact available as the full
    JID contact_jid."""
    bare = contact_jid.split("/")[0]
    subscribed = next_event(subscriber, "presence_subscribed",
                            predicate=lambda p: p["from"].bare == bare)
    available = next_event(subscriber, "presence_available",
                           predicate=lambda p: p["from"].bare == bare)
    subscriber.send_presence(pto=bare, ptype="subscribe")
    await subscribed
    p = await available
    assert str(p["from"]) == contact_jid


async def see_go_offline(watcher, leaver, leaver_bare):
    """leaver disconnects and watcher, subscribed to it, receives its unavailable presence."""
    gone = next_event(watcher, "presence_unavailable",
                      predicate=lambda p: p["from"].bare == leaver_bare)
    leaver.disconnect()
    await gone


# ---------------------------------------------------------------- a peer scenario


class PeerUser:
    """A user of the peer server: bare JID, password and the peer's c2s address (host, port)."""

    def __init__(self, jid, password, address):
        self.jid = jid
        self.password = password
        self.address = address
        self.domain = jid.split("@")[1]

    def full(self, resource="laptop"):
        return f"{self.jid}/{resource}"

    def client(self, tern: TernServer, resource="laptop"):
        """A slixmpp client for this user (tern only supplies the test CA)."""
        return make_client(self.full(resource), self.password, tern, mech="SCRAM-SHA-1")

    async def connect(self, client, presence=True, timeout=15):
        return await connect_peer_user(client, self.address, presence, timeout)


class PeerScenario:
    """The namespace, dnsmasq, ternd for tern.test (with ALICE) and one peer server for
    user.domain, which a subclass makes (make_peer) and starts with user's account
    (start_peer). With peer_trusts_tern false, the peer trusts another CA than the test CA,
    so it cannot authenticate tern by certificate."""

    peer_name = "peer"      # heading of the peer's log in diagnose()
    peer_log_tail = 6000    # how much of the peer's log diagnose() shows

    def __init__(self, folder: Path, netns_name, user: PeerUser, peer_trusts_tern=True,
                 tern_config=""):
        self.folder = folder
        self.user = user
        self.netns = NetNS(netns_name)
        self.dns = self.tern = self.peer = None
        try:
            self.netns.enter()
            self.pki = folder / "pki"
            make_pki(self.pki, hosts=("tern.test", user.domain))
            self.dns = Dnsmasq(folder / "dnsmasq.log", {user.domain: user.address[0]})
            self.tern = TernServer(folder / "tern", self.pki, hosts=("tern.test",),
                                   modules=MODULES,
                                   extra_config="dns_servers = 127.0.0.1:53\n"
                                                f"[tls]\nca_file = {self.pki}/ca.crt\n"
                                                "[s2s]\nlisten = 127.0.0.1:5269\n"
                                                f"{tern_config}")
            self.tern.add_user(*ALICE)
            self.tern.start()
            other_ca = None
            if not peer_trusts_tern:
                other_ca = make_pki(folder / "other-pki", hosts=())
            self.peer = self.make_peer(other_ca)   # set first, so close() stops it on failure
            self.start_peer()
        except BaseException:
            self.close(check=False)
            raise

    def make_peer(self, ca):
        """The peer server object, not started; ca: the CA it trusts (None: the test CA)."""
        raise NotImplementedError

    def start_peer(self):
        """Starts self.peer with self.user's account."""
        raise NotImplementedError

    def close(self, check=True):
        try:
            if self.peer:
                self.peer.stop()
            if self.tern and self.tern.proc:
                if check:
                    self.tern.check_clean_exit()
                else:
                    self.tern.proc.kill()
                    self.tern.proc.wait(5)
        finally:
            if self.dns:
                self.dns.stop()
            self.netns.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def diagnose(self):
        return (f"--- ternd ---\n{self.tern.log_text()[-6000:]}\n"
                f"--- {self.peer_name} ---\n{self.peer.log_text()[-self.peer_log_tail:]}")

    def alice_client(self):
        return make_client(ALICE_PHONE, ALICE[1], self.tern)

    def run(self, coro, timeout):
        """Runs a test body like tern_harness.run; when it fails, prints both servers' logs."""
        try:
            return run(coro, timeout=timeout)
        except BaseException:
            print(self.diagnose())
            raise


async def messages_both_ways(sc: PeerScenario, hello, to_tern="hello tern", in_a_row=5):
    """alice and the peer user chat both ways, then alice sends in_a_row chats back to back."""
    alice, other = sc.alice_client(), sc.user.client(sc.tern)
    await connect(alice, sc.tern)
    await sc.user.connect(other)
    await chat_both_ways(alice, ALICE_PHONE, other, sc.user.full(), hello, to_tern)
    await chats_in_a_row(alice, other, sc.user.jid, in_a_row)
    await disconnect(alice, other)


async def subscription_both_ways(sc: PeerScenario):
    """alice and the peer user subscribe to each other (each client approves), both rosters
    say "both", and each sees the other go offline (the peer user coming back as another
    resource in between)."""
    alice, other = sc.alice_client(), sc.user.client(sc.tern)
    for c in (alice, other):
        c.auto_authorize = True
        c.auto_subscribe = False
    await connect(alice, sc.tern)
    await sc.user.connect(other)
    # Interested resources (RFC 6121 §2.1.6): Prosody sends subscription presence only to
    # clients that asked for the roster.
    await alice.get_roster()
    await other.get_roster()
    await subscribe_and_see_available(alice, sc.user.full())
    await subscribe_and_see_available(other, ALICE_PHONE)
    await alice.get_roster()
    await other.get_roster()
    assert alice.client_roster[sc.user.jid]["subscription"] == "both"
    assert other.client_roster[ALICE[0]]["subscription"] == "both"
    await see_go_offline(alice, other, sc.user.jid)
    other = sc.user.client(sc.tern, "tablet")
    back = next_event(alice, "presence_available",
                      predicate=lambda p: str(p["from"]) == sc.user.full("tablet"))
    await sc.user.connect(other)
    await back
    await see_go_offline(other, alice, ALICE[0])
    await disconnect(other)


async def offline_message_kept_by_peer(sc: PeerScenario, stored, interval=0.1):
    """alice sends OFFLINE_BODY to the peer user while no client of theirs is online: the peer
    server keeps it (mod_offline; stored() says so within 15 s, polled every interval
    seconds), nothing comes back to alice, and it is delivered, marked as delayed
    (XEP-0203), when the peer user logs in."""
    alice = sc.alice_client()
    await connect(alice, sc.tern)
    alice.send_message(mto=sc.user.jid, mbody=OFFLINE_BODY, mtype="chat")
    assert await eventually(stored, 15, interval), sc.diagnose()
    other = sc.user.client(sc.tern, "desk")
    got = next_event(other, "message", predicate=lambda m: m["body"] == OFFLINE_BODY)
    await sc.user.connect(other)
    msg = await got
    assert str(msg["from"]) == ALICE_PHONE
    assert "urn:xmpp:delay" in str(msg), msg
    await disconnect(alice, other)


def check_links_by_certificate(sc: PeerScenario):
    """Both servers trust the test CA, so ternd's log shows both links authenticated by
    certificate (SASL EXTERNAL, XEP-0178)."""
    log = sc.tern.log_text()
    assert f"link tern.test -> {sc.user.domain} is authenticated (SASL EXTERNAL)" in log, \
        sc.diagnose()
    assert f"{sc.user.domain} authenticated by certificate (SASL EXTERNAL) for tern.test" in log


def check_outbound_link_by_dialback(sc: PeerScenario):
    """The peer does not trust tern's CA: ternd's log shows its link to the peer authenticated
    by Server Dialback (the peer asked ternd to verify the key: valid), and the peer's link to
    ternd still by certificate, which ternd trusts."""
    log = sc.tern.log_text()
    assert f"link tern.test -> {sc.user.domain} is authenticated (dialback)" in log, \
        sc.diagnose()
    assert "asks about our key for tern.test: valid" in log
    assert f"{sc.user.domain} authenticated by certificate (SASL EXTERNAL)" in log
