"""bench/servers.py — the servers bench/run measures: how each is configured, given accounts,
started and stopped, each on its own loopback address and in its own folder.

tern 127.0.7.1, Prosody 127.0.7.2, ejabberd 127.0.7.3 (BENCH_NET=127.0.7 sets the first three
parts, for a second bench beside a running one), all on port 15222; doc/performance.md lists what
differs from each package's defaults and why.
"""
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORT = 15222
HTTP_PORT = 15280  # tern's /metrics
PASSWORD = "bench"
DOMAIN = "localhost"
NET = os.environ.get("BENCH_NET", "127.0.7")
if len(NET.split(".")) != 3 or NET.split(".")[0] != "127" or \
        not all(p.isdigit() and int(p) < 256 for p in NET.split(".")):
    raise SystemExit(f"bench: BENCH_NET={NET}: want the first three parts of a 127.x.y.z address")


def log(msg):
    print(f"bench: {msg}", flush=True)


def raise_nofile():
    """Servers inherit this: one descriptor per session, up to the hard limit (20000 here)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_port(host, port, timeout, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def ensure_free(host, *ports):
    """Refuse to start when something already listens there: the generator would measure that
    other process (another bench, a server left running) while /proc is read for ours."""
    for port in ports:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                raise RuntimeError(f"{host}:{port} is already in use by another process (another "
                                   f"bench? BENCH_NET picks other addresses)")


def wait_port_closed(host, port, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) != 0:
                return True
        time.sleep(0.1)
    return False


def pids_matching(fragment):
    """Processes whose command line contains `fragment` (for servers started through wrappers)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if fragment in cmd:
                found.append(int(d.name))
    return found


def deb_version(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                       text=True)
    return r.stdout.strip() if r.returncode == 0 else None


class Server:
    """One server under test: configure once, then start/stop as often as the plan needs."""
    name = "?"
    host = "127.0.0.1"

    def __init__(self, root: Path, cert: Path, key: Path, build: Path):
        self.build = build
        self.dir = root / self.name
        self.dir.mkdir()
        self.cert, self.key = cert, key
        self.proc = None
        self.pid = None
        self.logfile = self.dir / "server.log"

    def version(self):
        return "?"

    def counters(self):
        """(stanzas in, stanzas out) counted by the server itself, where it tells; else None."""
        return None

    def configure(self):
        raise NotImplementedError

    def create_accounts(self, n):
        raise NotImplementedError

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def _popen(self, argv, **kw):
        out = open(self.logfile, "ab")
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kw)

    def _stop_proc(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        self.pid = None


class Tern(Server):
    name = "tern"
    host = f"{NET}.1"

    def version(self):
        r = subprocess.run([self.build / "src" / "ternd", "-V"], capture_output=True, text=True)
        v = (r.stdout or r.stderr).strip().split()
        g = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                           capture_output=True, text=True)
        return (v[-1] if v else "?") + ("-" + g.stdout.strip() if g.returncode == 0 else "")

    workers = "auto"  # tern's `workers`; bench/run sets it before each start (set_workers)

    def set_workers(self, workers):
        """Takes effect at the next start: the configuration file is written again."""
        self.workers = workers
        self.configure()

    def configure(self):
        self.conf = self.dir / "tern.conf"
        self.conf.write_text(f"""\
; tern for bench/run: plain TCP allowed (require_tls = no) so both transports can be measured
[server]
data_dir = data
log_level = warn
workers = {self.workers}

[tls]
cert = {self.cert}
key = {self.key}

[c2s]
listen = {self.host}:{PORT}
require_tls = no
; the default (10,000) is below a full-size run; the open-files limit (20,000) bounds it anyway
max_connections = 30000
; every session comes from the generator's one address: lift the per-address limits
; (XEP-0205), which would refuse or slow all but a few of them
max_connections_per_address = 30000
max_unauthenticated = 30000
max_unauthenticated_per_address = 30000
logins_per_second_per_address = 100000
; no direct-TLS listener: its default address (127.0.0.1:5223) is shared with any other ternd
; on the machine, and the bench measures STARTTLS only
tls_listen =

[http]
listen = {self.host}:{HTTP_PORT}

[host {DOMAIN}]
; metrics: only read before and after a run, to check the generator's message counts
modules = roster presence offline disco ping version time last blocking carbons vcard private
          metrics
registration = no

[module offline]
; the offline run stores tens of thousands of messages per account (the default keeps 100)
quota = 100000
""")

    def counters(self):
        """(stanzas in, stanzas out) as ternd counted them, from /metrics; None if unreadable
        (the run then fails on its own, and says why)."""
        import urllib.request
        url = f"http://{self.host}:{HTTP_PORT}/metrics"
        try:
            text = urllib.request.urlopen(url, timeout=10).read().decode()
        except OSError as e:
            log(f"tern: cannot read {url}: {e}")
            return None
        values = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                values[parts[0]] = float(parts[1])
        return values.get("tern_stanzas_in_total"), values.get("tern_stanzas_out_total")

    def create_accounts(self, n):
        """ternctl user add, one process per account (the issue asks for ternctl, no back door),
        two at a time for the two cores."""
        ctl = self.build / "src" / "ternctl"
        running = []
        for i in range(1, n + 1):
            p = subprocess.Popen([ctl, "-c", self.conf, "user", "add", f"u{i}@{DOMAIN}", "-"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            p.stdin.write(PASSWORD.encode() + b"\n")
            p.stdin.close()
            running.append(p)
            if len(running) >= 2:
                if running.pop(0).wait(60) != 0:
                    raise RuntimeError("ternctl user add failed")
        for p in running:
            if p.wait(60) != 0:
                raise RuntimeError("ternctl user add failed")

    def start(self):
        ensure_free(self.host, PORT, HTTP_PORT)
        self.proc = self._popen([self.build / "src" / "ternd", "-c", self.conf], preexec_fn=raise_nofile)
        if not wait_port(self.host, PORT, 30, self.proc):
            raise RuntimeError(f"ternd did not start; see {self.logfile}")
        self.pid = self.proc.pid

    def stop(self):
        self._stop_proc()


class Prosody(Server):
    name = "prosody"
    host = f"{NET}.2"
    iterations = 10000  # Prosody's default_iteration_count, the same as tern's

    def version(self):
        return deb_version("prosody") or "?"

    def configure(self):
        self.conf = self.dir / "prosody.cfg.lua"
        d = self.dir
        self.conf.write_text(f"""\
-- Prosody for bench/run: run in the foreground by the script, as root (run_as_root), with
-- hashed SCRAM-SHA-256 credentials like tern's, and the same kind of module set.
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
log = {{ warn = "{d}/prosody-warn.log" }}
interfaces = {{ "{self.host}" }}
c2s_ports = {{ {PORT} }}
c2s_interfaces = {{ "{self.host}" }}
network_backend = "epoll"
network_settings = {{ tcp_backlog = 1024 }}
authentication = "internal_hashed"
password_hash = "SHA-256"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "version"; "time";
                     "lastactivity"; "blocklist"; "carbons"; "vcard_legacy"; "private"; "posix";
                     "offline" }}
modules_disabled = {{ "s2s" }}
ssl = {{ certificate = "{self.cert}"; key = "{self.key}" }}

VirtualHost "{DOMAIN}"
""")

    def create_accounts(self, n):
        """Prosody's internal storage holds one Lua file per account; prosodyctl would start a Lua
        interpreter per account, which takes hours at 19,000. The fields are those
        mod_auth_internal_hashed writes (salt, iteration_count, stored_key, server_key)."""
        import hashlib
        import hmac
        import uuid
        folder = self.dir / "data" / DOMAIN / "accounts"
        folder.mkdir(parents=True)
        for i in range(1, n + 1):
            salt = str(uuid.uuid4())
            salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt.encode(), self.iterations)
            client_key = hmac.new(salted, b"Client Key", "sha256").digest()
            stored_key = hashlib.sha256(client_key).hexdigest()
            server_key = hmac.new(salted, b"Server Key", "sha256").hexdigest()
            (folder / f"u{i}.dat").write_text(
                f'return {{\n\t["iteration_count"] = {self.iterations};\n\t["salt"] = "{salt}";\n'
                f'\t["stored_key"] = "{stored_key}";\n\t["server_key"] = "{server_key}";\n}};\n')

    def start(self):
        ensure_free(self.host, PORT)
        self.proc = self._popen(["prosody", "-F", "--config", str(self.conf)],
                                preexec_fn=raise_nofile)
        if not wait_port(self.host, PORT, 30, self.proc):
            raise RuntimeError(f"prosody did not start; see {self.logfile}")
        self.pid = self.proc.pid

    def stop(self):
        self._stop_proc()


class Ejabberd(Server):
    name = "ejabberd"
    host = f"{NET}.3"
    node = f"ternbench_{NET.replace('.', '_')}@localhost"  # one per BENCH_NET, like the address

    def version(self):
        return deb_version("ejabberd") or "?"

    def _ctl_argv(self, *args):
        d = self.dir
        return ["ejabberdctl", "--config-dir", str(d), "--config", str(d / "ejabberd.yml"),
                "--ctl-config", str(d / "ejabberdctl.cfg"), "--logs", str(d / "logs"),
                "--spool", str(d / "db"), *args]

    def _as_ejabberd(self):
        """subprocess arguments that run ejabberdctl as the ejabberd user itself. Started by root,
        ejabberdctl switches user with `su`, whose pam_limits resets the soft open-files limit
        to 1024: the node then refuses connections beyond about a thousand sessions. Run as
        ejabberd, it execs erl directly and the node inherits our limit (raise_nofile). HOME and
        the folder are what `su` would have given: the Erlang cookie is in HOME."""
        user = pwd.getpwnam("ejabberd")
        env = dict(os.environ, HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "env": env,
                "cwd": str(self.dir / "db")}

    def ctl(self, *args, timeout=600, check=True):
        r = subprocess.run(self._ctl_argv(*args), capture_output=True, text=True, timeout=timeout,
                           **self._as_ejabberd())
        if check and r.returncode != 0:
            raise RuntimeError(f"ejabberdctl {' '.join(args)}: {r.stdout}{r.stderr}")
        return r

    def configure(self):
        d = self.dir
        pem = d / "localhost.pem"
        pem.write_text(self.key.read_text() + self.cert.read_text())
        (d / "logs").mkdir()
        (d / "db").mkdir()
        shutil.copy("/etc/ejabberd/inetrc", d / "inetrc")
        (d / "ejabberdctl.cfg").write_text(f"""\
ERLANG_NODE={self.node}
INET_DIST_INTERFACE=127.0.0.1
ERL_EPMD_ADDRESS=127.0.0.1
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 +sbwt none +sbwtdcpu none +sbwtdio none"
ERL_MAX_PORTS=32000
""")
        # ERL_MAX_PORTS (erl's +Q): one port per socket; 32000 is ejabberdctl's own default, set
        # here so that the limit does not silently depend on the packaged script. The open-files
        # limit the node inherits (see _as_ejabberd) is the other bound.
        # +sbwt none (and its dirty-scheduler variants): Erlang schedulers otherwise spin for a
        # while before sleeping, and that spinning would be counted as server CPU time on a
        # machine whose two cores the generator shares.
        # No shaper on the listener (the default config's c2s_shaper would cap the traffic) and a
        # listen backlog like the others' (ejabberd's default of 5 drops connections in a burst).
        (d / "ejabberd.yml").write_text(f"""\
hosts: ["{DOMAIN}"]
loglevel: warning
certfiles: ["{pem}"]
listen:
  -
    port: {PORT}
    ip: "{self.host}"
    module: ejabberd_c2s
    starttls: true
    max_stanza_size: 262144
    backlog: 1024
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
default_db: mnesia
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_roster: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
  mod_offline: {{}}
  mod_carboncopy: {{}}
  mod_privacy: {{}}
  mod_blocking: {{}}
  mod_vcard: {{}}
  mod_private: {{}}
  mod_version: {{}}
  mod_time: {{}}
  mod_last: {{}}
""")
        # ejabberdctl runs the node as the ejabberd user.
        user = pwd.getpwnam("ejabberd")
        for p in [d, *d.rglob("*")]:
            os.chown(p, user.pw_uid, user.pw_gid)
        pem.chmod(0o600)
        self.epmd_before = bool(pids_matching("epmd -daemon"))

    IMPORT_CHUNK = 2000  # accounts per import: ejabberdctl's RPC gives up after about a minute

    def create_accounts(self, n):
        """`ejabberdctl import_piefxis` (XEP-0227) of the accounts, a chunk at a time:
        `ejabberdctl register` starts an Erlang VM per account (half a second each). ejabberd
        hashes the passwords on import (auth_password_format: scram), about 10 ms each, so one
        file of 19,000 outlasts ejabberdctl's RPC timeout."""
        self.start()
        try:
            for first in range(1, n + 1, self.IMPORT_CHUNK):
                last = min(n, first + self.IMPORT_CHUNK - 1)
                users = "".join(f"<user name='u{i}' password='{PASSWORD}'/>\n"
                                for i in range(first, last + 1))
                f = self.dir / f"users-{first}.xml"
                f.write_text(f"<?xml version='1.0' encoding='UTF-8'?>\n"
                             f"<server-data xmlns='urn:xmpp:pie:0'>"
                             f"<host jid='{DOMAIN}'>\n{users}</host></server-data>\n")
                os.chown(f, pwd.getpwnam("ejabberd").pw_uid, -1)
                self.ctl("import_piefxis", str(f), timeout=600)
            got = self.ctl("registered_users", DOMAIN).stdout.split()
            if len(got) < n:
                raise RuntimeError(f"ejabberd has {len(got)} accounts, expected {n}")
        finally:
            self.stop()

    def start(self):
        ensure_free(self.host, PORT)
        self.proc = self._popen(self._ctl_argv("foreground"), preexec_fn=raise_nofile,
                                **self._as_ejabberd())
        if not wait_port(self.host, PORT, 60, self.proc):
            raise RuntimeError(f"ejabberd did not start; see {self.logfile}")
        self.ctl("started", timeout=60)  # modules loaded, not just the listener
        beams = [p for p in pids_matching(self.node) if "beam" in Path(f"/proc/{p}/comm").read_text()]
        if len(beams) != 1:
            raise RuntimeError(f"cannot find ejabberd's beam.smp process ({beams})")
        self.pid = beams[0]

    def stop(self):
        if self.proc is None:
            return
        self.ctl("stop", timeout=60, check=False)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            if self.pid:
                os.kill(self.pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(10)
        wait_port_closed(self.host, PORT, 30)
        self.proc = None
        self.pid = None

    def cleanup(self):
        """Stop the epmd that the node started, if none ran before (the one at 127.0.0.1)."""
        if not self.epmd_before:
            for p in pids_matching("epmd -daemon"):
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
