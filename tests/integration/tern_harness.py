"""tern_harness — what the integration tests share: a test PKI, a real ternd started on free
loopback ports with its own config and data, ternctl, a raw XMPP stream client for protocol and
bad-input tests, and slixmpp clients for the user stories.

Every wait has a timeout. Nothing here talks to anything but 127.0.0.1.
"""
import asyncio
import base64
import hashlib
import hmac
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from OpenSSL import SSL

BUILD = Path(os.environ.get("TERN_BUILD", Path(__file__).resolve().parents[2]))
TERND = BUILD / "src" / "ternd"
TERNCTL = BUILD / "src" / "ternctl"
# Two event loops unless told otherwise: worker threads then carry the client connections,
# whatever the machine's core count (tests/run.py repeats some files with 1).
WORKERS = int(os.environ.get("TERN_TEST_WORKERS", "2"))
MODULES = BUILD / "modules"
DEFAULT_TIMEOUT = 10.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- PKI


def make_pki(folder: Path, hosts=("localhost",)):
    """A CA and one certificate per host signed by it (EC P-256)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "30", "-subj", "/CN=tern test CA", "-keyout", str(ca_key),
        "-out", str(ca_crt))
    for host in hosts:
        key, csr, crt = folder / f"{host}.key", folder / f"{host}.csr", folder / f"{host}.crt"
        ext = folder / f"{host}.ext"
        ext.write_text(f"subjectAltName=DNS:{host}\n")
        run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", f"/CN={host}", "-keyout", str(key), "-out", str(csr))
        run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey",
            str(ca_key), "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out",
            str(crt))
    return ca_crt


# ---------------------------------------------------------------- the server


# Every test client connects from 127.0.0.1, so the per-address limits (XEP-0205) that keep
# one address from crowding out the rest would throttle the suite itself. Tests of those
# limits (test_limits.py) set them in c2s_extra, which wins.
TEST_ADDRESS_LIMITS = {
    "max_connections_per_address": 100000,
    "max_unauthenticated_per_address": 100000,
    "max_unauthenticated": 100000,
    "logins_per_second_per_address": 100000,
}


def one_address_limits(c2s_extra):
    return "".join(f"{key} = {value}\n" for key, value in TEST_ADDRESS_LIMITS.items()
                   if key not in c2s_extra)


class TernServer:
    """A ternd process with its own folder, config and ports."""

    def __init__(self, folder: Path, pki: Path, hosts=("localhost",), extra_config="",
                 modules="disco ping version time", c2s_extra="", http=False, http_extra=""):
        self.folder = folder
        self.pki = pki
        self.hosts = hosts
        self.port = free_port()
        self.tls_port = free_port()
        # With http=True: an [http] section with a plain and a TLS listener, plus http_extra.
        self.http_port = free_port() if http else None
        self.https_port = free_port() if http else None
        http_section = (f"[http]\nlisten = 127.0.0.1:{self.http_port}\n"
                        f"tls_listen = 127.0.0.1:{self.https_port}\n{http_extra}\n"
                        if http else "")
        self.config = folder / "etc" / "tern.conf"
        self.log_path = folder / "ternd.log"
        self.proc = None
        self.config.parent.mkdir(parents=True, exist_ok=True)
        host_sections = "".join(
            f"[host {h}]\nmodules = {modules}\ncert = {pki}/{h}.crt\nkey = {pki}/{h}.key\n\n"
            for h in hosts)
        self.config.write_text(
            f"[server]\ndata_dir = ../var\nlog_level = debug\nadmins = admin@{hosts[0]}\n"
            f"workers = {WORKERS}\n"
            f"module_dir = {MODULES}\n{extra_config}\n"
            f"[c2s]\nlisten = 127.0.0.1:{self.port}\ntls_listen = 127.0.0.1:{self.tls_port}\n"
            f"{one_address_limits(c2s_extra)}{c2s_extra}\n"
            f"{http_section}"
            f"{host_sections}")

    def ternctl(self, *args, stdin=None, check=True):
        proc = subprocess.run([str(TERNCTL), "-c", str(self.config), *args], input=stdin,
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"ternctl {' '.join(args)} failed: {proc.stderr}")
        return proc

    def add_user(self, jid, password):
        self.ternctl("user", "add", jid, password)

    def start(self, timeout=DEFAULT_TIMEOUT):
        self.log = open(self.log_path, "ab")
        self._log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen([str(TERND), "-c", str(self.config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.wait_log("ready", timeout)
        return self

    def log_text(self):
        return self.log_path.read_text(errors="replace")[self._log_offset:]

    def wait_log(self, needle, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"ternd exited ({self.proc.returncode}):\n{self.log_text()}")
            time.sleep(0.02)
        raise AssertionError(f"no '{needle}' in the log within {timeout}s:\n{self.log_text()}")

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """SIGTERM and wait; returns the exit code. Sanitizer reports fail the test."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("ternd did not stop within the grace time after SIGTERM")
        self.log.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait(5)
        self.log.close()

    def check_clean_exit(self):
        rc = self.stop()
        text = self.log_text()
        assert "AddressSanitizer" not in text and "runtime error:" not in text, text
        assert rc == 0, f"ternd exited with {rc}:\n{text}"


def start_server(folder: Path, pki: Path, users, **kwargs):
    """A started TernServer whose accounts are `users`: {localpart: password} on the first
    host. kwargs go to TernServer (modules=..., hosts=..., http=...)."""
    srv = TernServer(folder, pki, **kwargs)
    for user, password in users.items():
        srv.add_user(f"{user}@{srv.hosts[0]}", password)
    return srv.start()


# ---------------------------------------------------------------- raw streams


STREAM_ERROR_RE = re.compile(
    rb"<stream:error><([a-z-]+) xmlns=['\"]urn:ietf:params:xml:ns:xmpp-streams['\"]")


class RawStream:
    """A byte-level XMPP client stream: plain TCP, STARTTLS or direct TLS (pyOpenSSL, so that
    the tls-exporter, tls-server-end-point and tls-unique channel bindings are available).
    max_tls: an OpenSSL version constant (SSL.TLS1_2_VERSION) to cap the handshake at.
    source: the loopback address to connect from (127.x.y.z), for per-address limits."""

    max_tls = None  # subclasses with their own __init__ (ws_client.py) keep the default

    def __init__(self, server: TernServer, direct_tls=False, timeout=DEFAULT_TIMEOUT,
                 sni="localhost", max_tls=None, source="127.0.0.1"):
        self.server = server
        self.timeout = timeout
        self.sni = sni
        self.max_tls = max_tls
        self.sock = socket.create_connection(("127.0.0.1", server.tls_port if direct_tls
                                              else server.port), timeout=timeout,
                                             source_address=(source, 0))
        self.tls = None
        self.buffer = b""
        if direct_tls:
            self._wrap_tls(alpn=b"xmpp-client")

    # -- transport
    def _wrap_tls(self, alpn=None):
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.load_verify_locations(str(self.server.pki / "ca.crt"))
        ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: bool(ok))
        if alpn:
            ctx.set_alpn_protos([alpn])
        if self.max_tls:
            ctx.set_max_proto_version(self.max_tls)
        self.sock.settimeout(None)
        conn = SSL.Connection(ctx, self.sock)
        conn.set_tlsext_host_name(self.sni.encode())
        conn.set_connect_state()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                if time.monotonic() > deadline:
                    raise TimeoutError("TLS handshake timed out")
                select.select([self.sock], [], [], 0.1)
        self.tls = conn

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.tls:
            self.tls.sendall(data)
        else:
            self.sock.sendall(data)

    def _recv_some(self, timeout):
        """Bytes, or b'' at EOF; raises TimeoutError."""
        if self.tls and self.tls.pending():
            return self.tls.recv(65536)
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise TimeoutError
        try:
            return self.tls.recv(65536) if self.tls else self.sock.recv(65536)
        except SSL.WantReadError:
            return None
        except (SSL.ZeroReturnError, SSL.SysCallError, ConnectionResetError):
            return b""

    def read_until(self, pattern, timeout=None):
        """Reads until the regex (bytes) matches the unread input; returns the match and
        consumes the input up to its end."""
        timeout = self.timeout if timeout is None else timeout
        regex = re.compile(pattern, re.S) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.buffer)
            if m:
                self.buffer = self.buffer[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {regex.pattern!r}; got "
                                     f"{self.buffer[-2000:]!r}")
            try:
                data = self._recv_some(left)
            except TimeoutError:
                continue
            if data is None:
                continue
            if data == b"":
                raise AssertionError(f"connection closed while waiting for {regex.pattern!r};"
                                     f" got {self.buffer[-2000:]!r}")
            self.buffer += data

    def wait_closed(self, timeout=None):
        """Reads until EOF; returns everything that arrived meanwhile."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self._recv_some(deadline - time.monotonic())
            except TimeoutError:
                break
            if data == b"":
                return self.buffer
            if data:
                self.buffer += data
        raise AssertionError(f"connection still open after {timeout}s; got {self.buffer!r}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- stream level
    def peer_certificate_names(self):
        cert = self.tls.get_peer_certificate().to_cryptography()
        from cryptography import x509
        return cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)

    def open(self, to="localhost", ns="jabber:client", version="1.0", extra=""):
        ver = f" version='{version}'" if version else ""
        to_attr = f" to='{to}'" if to else ""
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='{ns}' "
                  f"xmlns:stream='http://etherx.jabber.org/streams'{to_attr}{ver}{extra}>")

    def read_features(self):
        return self.read_until(rb"<stream:features>(.*?)</stream:features>").group(1)

    def stream_error(self, timeout=None):
        """Waits for a stream error and the end of the connection; returns the condition."""
        data = self.wait_closed(timeout)
        m = STREAM_ERROR_RE.search(data)
        assert m, f"no stream error in {data!r}"
        assert data.rstrip().endswith(b"</stream:stream>"), data
        return m.group(1).decode()

    def starttls(self):
        self.open()
        features = self.read_features()
        assert b"<starttls" in features, features
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.read_until(rb"<proceed xmlns=['\"]urn:ietf:params:xml:ns:xmpp-tls['\"]/>")
        assert self.buffer == b""
        self._wrap_tls()

    def secure(self, direct_tls=False):
        """Up to the SASL features of a TLS stream; returns the features."""
        if not direct_tls:
            self.starttls()
        self.open()
        return self.read_features()

    def auth_plain(self, user, password):
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}"
                  "</auth>")
        m = self.read_until(rb"<success[^>]*?(/>|>.*?</success>)|<failure[^>]*>.*?</failure>")
        return m.group(0).decode()

    def bind(self, resource=None):
        res = f"<resource>{resource}</resource>" if resource else ""
        self.send(f"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  f"{res}</bind></iq>")
        m = self.read_until(rb"<iq[^>]*id=['\"]bind1['\"][^>]*>.*?</iq>")
        jid = re.search(rb"<jid>(.*?)</jid>", m.group(0))
        assert jid, m.group(0)
        return jid.group(1).decode()

    def login(self, user, password, resource=None, direct_tls=False):
        """STARTTLS (or direct TLS), PLAIN, restart, bind. Returns the bound full JID."""
        self.secure(direct_tls)
        result = self.auth_plain(user, password)
        assert result.startswith("<success"), result
        self.open()
        features = self.read_features()
        assert b"urn:ietf:params:xml:ns:xmpp-bind" in features, features
        return self.bind(resource)

    def ping_server(self, ident="p1"):
        self.send(f"<iq type='get' id='{ident}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        m = self.read_until(rf"<iq[^>]*id=['\"]{ident}['\"][^>]*/?>".encode())
        assert b"type='result'" in m.group(0) or b'type="result"' in m.group(0), m.group(0)

    # -- channel bindings
    def channel_binding(self, kind):
        if kind == "tls-exporter":
            return self.tls.export_keying_material(b"EXPORTER-Channel-Binding", 32)
        if kind == "tls-server-end-point":
            cert = self.tls.get_peer_certificate().to_cryptography()
            from cryptography.hazmat.primitives.serialization import Encoding
            return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
        if kind == "tls-unique":
            # RFC 5929 §3.1: the first Finished of the handshake, ours on a full one. On TLS 1.3
            # this is what CPython's ssl module (so slixmpp 1.8) wrongly calls tls-unique.
            return self.tls.get_finished()
        raise ValueError(kind)


def scram_login(stream: RawStream, user, password, hash_name="sha256", cb_type=None,
                gs2_flag=None, mechanism=None):
    """A SCRAM exchange (RFC 5802) on `stream`. Returns ("success", verified) or
    ("failure", condition)."""
    h = getattr(hashlib, hash_name)
    mech = mechanism or ("SCRAM-SHA-256" if hash_name == "sha256" else "SCRAM-SHA-1")
    if cb_type and not mechanism:
        mech += "-PLUS"
    flag = gs2_flag or (f"p={cb_type}" if cb_type else "n")
    gs2 = f"{flag},,"
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={cnonce}"
    stream.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mech}'>"
                f"{base64.b64encode((gs2 + first_bare).encode()).decode()}</auth>")
    m = stream.read_until(rb"<(challenge|failure)[^>]*>(.*?)</(challenge|failure)>")
    if m.group(1) == b"failure":
        return ("failure", re.search(rb"<([a-z-]+)", m.group(2)).group(1).decode())
    server_first = base64.b64decode(m.group(2)).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    assert fields["r"].startswith(cnonce)
    salt = base64.b64decode(fields["s"])
    iterations = int(fields["i"])
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored_key = h(client_key).digest()
    cb_data = stream.channel_binding(cb_type) if cb_type else b""
    final_wo_proof = f"c={base64.b64encode(gs2.encode() + cb_data).decode()},r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{final_wo_proof}".encode()
    signature = hmac.new(stored_key, auth_message, h).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    stream.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.b64encode(
        f"{final_wo_proof},p={base64.b64encode(proof).decode()}".encode()).decode() +
        "</response>")
    m = stream.read_until(rb"<(success|failure)[^>]*?(/>|>(.*?)</(success|failure)>)",
                          timeout=5)
    if m.group(1) == b"failure":
        return ("failure", re.search(rb"<([a-z-]+)", m.group(3) or b"<unknown").group(1).decode())
    server_key = hmac.new(salted, b"Server Key", h).digest()
    expected = base64.b64encode(hmac.new(server_key, auth_message, h).digest()).decode()
    final = base64.b64decode(m.group(3) or b"").decode()
    return ("success", final == f"v={expected}")


# ---------------------------------------------------------------- third-party modules


# A service at a domain of its own (tern_serve_domain()): every message to a JID at DOMAIN
# comes back from it; NAME is the module's name.
ECHO_MODULE = r"""
#include <string.h>
#include <tern/module.h>

static void echo(const tern_stanza_event *ev, void *data)
{
    (void)data;
    const char *type = xml_attr(ev->stanza, "type");
    if (strcmp(xml_name(ev->stanza), "message") != 0 || (type && strcmp(type, "error") == 0))
        return;
    tern_xml *m = xml_new("message", "jabber:client");
    xml_set_attr(m, "from", ev->to->full);
    xml_set_attr(m, "to", ev->from->full);
    xml_set_attr(m, "type", "chat");
    const char *body = xml_child_text(ev->stanza, "body", NULL);
    tern_xml_add_text_child(m, "body", NULL, body ? body : "");
    tern_route(ev->host, m);
}

static int echo_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state; (void)err; (void)err_len;
    int rc = tern_serve_domain(host, "DOMAIN", "Echo", echo, NULL);
    EXTRA
    return rc;
}

TERN_MODULE("NAME", echo_load, NULL);
"""


def build_module_dir(folder, name, source):
    """A module folder holding every real module and `name`.so compiled from `source` with
    the installed headers, as a third party builds one (doc/modules.md)."""
    import subprocess
    folder.mkdir(parents=True, exist_ok=True)
    for so in MODULES.glob("*.so"):
        if not (folder / so.name).exists():
            (folder / so.name).symlink_to(so)
    c_file = folder / f"{name}.c"
    c_file.write_text(source)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    f"-I{BUILD / 'src'}", "-o", str(folder / f"{name}.so"), str(c_file)],
                   check=True, timeout=60)
    return folder


# ---------------------------------------------------------------- slixmpp


def make_client(jid, password, server: TernServer, mech="SCRAM-SHA-256", plugins=()):
    """A slixmpp client. With an explicit SCRAM mechanism, slixmpp's channel-binding support
    is switched off (gs2 flag "n"), so that the test runs one plain SCRAM exchange: slixmpp
    only knows tls-unique, which TLS 1.3 does not have. mech=None leaves slixmpp to choose
    and bind as it does for users (test_login.py); the other -PLUS cases use RawStream."""
    import slixmpp
    client = slixmpp.ClientXMPP(jid, password, sasl_mech=mech)
    client.ca_certs = server.pki / "ca.crt"
    if mech:
        mechanisms = client["feature_mechanisms"]
        default_credentials = mechanisms.sasl_callback

        def credentials_without_binding(required, optional):
            values = default_credentials(required, optional)
            if "channel_binding" in values:
                values["channel_binding"] = None
            return values
        mechanisms.sasl_callback = credentials_without_binding
    for p in plugins:
        client.register_plugin(p)
    return client


async def connect(client, server: TernServer, direct_tls=False, timeout=DEFAULT_TIMEOUT,
                  presence=True):
    """Connects and waits for session_start; raises on auth failure or timeout."""
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def on_start(_):
        if presence:
            client.send_presence()
        if not started.done():
            started.set_result(True)

    def on_fail(_):
        if not started.done():
            started.set_exception(AssertionError("authentication failed"))

    client.add_event_handler("session_start", on_start)
    client.add_event_handler("failed_all_auth", on_fail)
    if direct_tls:
        client.connect(("127.0.0.1", server.tls_port), use_ssl=True)
    else:
        client.connect(("127.0.0.1", server.port))
    await asyncio.wait_for(started, timeout)
    return client


async def disconnect(*clients):
    for c in clients:
        c.disconnect()
    await asyncio.sleep(0.05)


def run(coro, timeout=30):
    """Runs an async test body with an overall timeout."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())
