"""s2s_interop — what the federation tests against real peer servers (Prosody, ejabberd) share:
a network namespace with its own loopback and resolv.conf, a test dnsmasq in it serving the
test domains, and slixmpp helpers for users of the peer server.

Peers resolve domains with their own DNS clients, which read /etc/resolv.conf and ask port 53.
So each scenario runs in a namespace: a test dnsmasq on 127.0.0.1:53 there, and
/etc/netns/<name>/resolv.conf pointing at it (bind-mounted over /etc/resolv.conf by
`ip netns exec`, which starts the peer). The test process itself joins the namespace (setns on
its own thread) while the scenario runs, so ternd, dnsmasq and the slixmpp clients live there
too, and leaves it at the end.

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

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
IP = shutil.which("ip") or "/usr/sbin/ip"
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
