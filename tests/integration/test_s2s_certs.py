"""Federation and certificates: four ternd, each trusting the test CA ([tls] ca_file), found
through a test dnsmasq like in test_s2s.py.

  a.test  valid certificate; require_valid_certificates = no (the default)
  b.test  valid certificate; require_valid_certificates = yes, insecure_domains = d.test
  c.test  a self-signed certificate
  d.test  a certificate from the test CA for another name (other.test)

Checks: peers with valid certificates authenticate by SASL EXTERNAL (XEP-0178) both ways; a
peer with a bad certificate is refused by a server that requires valid ones (its stanzas, and
the stanzas sent to it, bounce with remote-server-not-found) and falls back to dialback with a
server that does not; insecure_domains lets a domain use dialback anyway."""
import asyncio
import subprocess
import time

import pytest

from tern_harness import TernServer, connect, disconnect, free_port, make_client, make_pki, run
from s2s_interop import next_event
from test_s2s import DNSMASQ, free_udp_port, pytestmark  # noqa: F401

USERS = {"a.test": ("alice@a.test", "alice-secret"), "b.test": ("bob@b.test", "bob-secret"),
         "c.test": ("carol@c.test", "carol-secret"), "d.test": ("dave@d.test", "dave-secret")}
POLICY = {"a.test": "", "b.test": "require_valid_certificates = yes\ninsecure_domains = d.test\n",
          "c.test": "", "d.test": ""}
MODULES = "disco ping roster presence s2s"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def bad_certificates(pki):
    """c.test: self-signed; d.test: signed by the test CA, but for other.test."""
    (pki / "c.test.ext").write_text("subjectAltName=DNS:c.test\n")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "30", "-subj", "/CN=c.test", "-addext", "subjectAltName=DNS:c.test",
            "-keyout", str(pki / "c.test.key"), "-out", str(pki / "c.test.crt"))
    for ext in ("crt", "key"):
        (pki / f"d.test.{ext}").write_bytes((pki / f"other.test.{ext}").read_bytes())


class CertFederation:
    def __init__(self, folder):
        self.pki = folder / "pki"
        make_pki(self.pki, hosts=("a.test", "b.test", "other.test"))
        bad_certificates(self.pki)
        (self.pki / "client-bundle.crt").write_bytes((self.pki / "ca.crt").read_bytes() +
                                                     (self.pki / "c.test.crt").read_bytes())
        self.s2s_port = {d: free_port() for d in USERS}
        self.dns_port = free_udp_port()
        records = []
        for name, port in self.s2s_port.items():
            records += [f"--srv-host=_xmpp-server._tcp.{name},xmpp.{name},{port},0,5",
                        f"--host-record=xmpp.{name},127.0.0.1"]
        self.dns = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
             "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
             f"--port={self.dns_port}", "--local=/test/", "--user=root", *records],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        self.servers = {}
        try:
            for domain, (jid, password) in USERS.items():
                srv = TernServer(folder / domain, self.pki, hosts=(domain,), modules=MODULES,
                                 extra_config=f"dns_servers = 127.0.0.1:{self.dns_port}\n"
                                              f"[tls]\nca_file = {self.pki}/ca.crt\n"
                                              f"[s2s]\nlisten = 127.0.0.1:{self.s2s_port[domain]}\n"
                                              f"{POLICY[domain]}")
                srv.add_user(jid, password)
                self.servers[domain] = srv.start()
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            for srv in self.servers.values():
                srv.check_clean_exit()
        finally:
            self.dns.terminate()
            self.dns.wait(5)


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    f = CertFederation(tmp_path_factory.mktemp("s2s-certs"))
    yield f
    f.close()


def client(fed, domain):
    jid, password = USERS[domain]
    c = make_client(jid + "/r", password, fed.servers[domain])
    if domain in ("c.test", "d.test"):
        # Their certificates are bad on purpose; the clients accept them (c2s is not tested).
        c.ca_certs = fed.pki / "client-bundle.crt"
        c.ssl_context.check_hostname = False
    return c


async def exchange(fed, d1, d2):
    """A message from d1's user to d2's user and an answer back."""
    c1, c2 = client(fed, d1), client(fed, d2)
    await connect(c1, fed.servers[d1])
    await connect(c2, fed.servers[d2])
    got = next_event(c2, "message", predicate=lambda m: m["type"] == "chat")
    c1.send_message(mto=USERS[d2][0], mbody=f"from {d1}", mtype="chat")
    msg = await got
    assert msg["body"] == f"from {d1}" and str(msg["from"]) == USERS[d1][0] + "/r"
    got = next_event(c1, "message", predicate=lambda m: m["type"] == "chat")
    c2.send_message(mto=USERS[d1][0] + "/r", mbody=f"from {d2}", mtype="chat")
    msg = await got
    assert msg["body"] == f"from {d2}"
    await disconnect(c1, c2)


async def bounce(fed, d1, to):
    c1 = client(fed, d1)
    await connect(c1, fed.servers[d1])
    got = next_event(c1, "message", timeout=20, predicate=lambda m: m["type"] == "error")
    c1.send_message(mto=to, mbody="anyone?", mtype="chat")
    err = await got
    assert err["error"]["condition"] == "remote-server-not-found", err
    assert str(err["from"]) == to
    await disconnect(c1)


def test_valid_certificates_authenticate_by_sasl_external(fed):
    run(exchange(fed, "a.test", "b.test"))
    a, b = fed.servers["a.test"].log_text(), fed.servers["b.test"].log_text()
    assert "link a.test -> b.test is authenticated (SASL EXTERNAL)" in a
    assert "link b.test -> a.test is authenticated (SASL EXTERNAL)" in b
    assert "a.test authenticated by certificate (SASL EXTERNAL) for b.test" in b
    assert "b.test authenticated by certificate (SASL EXTERNAL) for a.test" in a
    assert "(dialback)" not in a + b


def test_self_signed_peer_is_refused_when_certificates_are_required(fed):
    # carol -> bob: b.test offers c.test no EXTERNAL and refuses its dialback.
    run(bounce(fed, "c.test", "bob@b.test"))
    b = fed.servers["b.test"].log_text()
    assert "c.test needs a valid certificate for dialback" in b
    assert "link c.test -> b.test failed: stream error from the peer: policy-violation" in \
        fed.servers["c.test"].log_text()
    # bob -> carol: b.test does not accept c.test's certificate on its own link either.
    run(bounce(fed, "b.test", "carol@c.test"))
    assert "the certificate of c.test is not valid" in fed.servers["b.test"].log_text()


def test_bad_certificates_fall_back_to_dialback_when_not_required(fed):
    run(exchange(fed, "c.test", "a.test"))
    a, c = fed.servers["a.test"].log_text(), fed.servers["c.test"].log_text()
    # a.test cannot trust c.test's certificate: c.test is offered no EXTERNAL and uses dialback.
    assert "certificate of c.test: The certificate is NOT trusted. The certificate issuer is " \
        "unknown" in a, a
    assert "dialback for c.test -> a.test: valid" in a
    assert "link c.test -> a.test is authenticated (dialback)" in c
    # a.test's link to c.test goes on despite c.test's certificate, and c.test (which trusts
    # a.test's CA) lets a.test authenticate by its certificate.
    assert "the certificate of c.test is not valid" in a
    assert "link a.test -> c.test is authenticated (SASL EXTERNAL)" in a
    # d.test's certificate is from the trusted CA but names another domain.
    run(exchange(fed, "d.test", "a.test"))
    a = fed.servers["a.test"].log_text()
    assert "certificate of d.test: The certificate is NOT trusted. The name in the " \
        "certificate does not match the expected" in a, a
    assert "dialback for d.test -> a.test: valid" in a
    assert "link d.test -> a.test is authenticated (dialback)" in \
        fed.servers["d.test"].log_text()


def test_insecure_domains_may_use_dialback(fed):
    """b.test requires valid certificates but lists d.test in insecure_domains."""
    run(exchange(fed, "d.test", "b.test"))
    b = fed.servers["b.test"].log_text()
    assert "dialback for d.test -> b.test: valid" in b
    assert "link b.test -> d.test is authenticated" in b
    assert "link d.test -> b.test is authenticated (dialback)" in fed.servers["d.test"].log_text()
