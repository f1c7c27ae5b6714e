"""An operator scrapes /metrics (the metrics module) with a Prometheus client's own parsers, and
sees the figures move as users log in, fail to log in, chat and leave messages for others."""
import http.client
import time

import pytest

from tern_harness import RawStream, TernServer

prometheus = pytest.importorskip("prometheus_client.parser")
openmetrics = pytest.importorskip("prometheus_client.openmetrics.parser")

TIMEOUT = 10
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    folder = tmp_path_factory.mktemp("tern-metrics")
    server = TernServer(folder, pki, hosts=("localhost", "example.test"),
                        modules="disco ping roster presence offline metrics", http=True,
                        http_extra="cors_origins = *\n")
    for user, password in USERS.items():
        server.add_user(f"{user}@localhost", password)
    server.add_user("dave@example.test", "dave-secret")
    server.start()
    yield server
    server.check_clean_exit()


def scrape(srv, accept=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=TIMEOUT)
    conn.request(method, "/metrics", headers={"Accept": accept} if accept else {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body.decode()


def values(text, parser=prometheus):
    """{(sample name, sorted labels): value} and {family: type}."""
    samples, types = {}, {}
    for family in parser.text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def figures(srv):
    status, headers, text = scrape(srv)
    assert status == 200, text
    return values(text)[0]


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_the_scrape_parses_with_every_family(srv):
    status, headers, text = scrape(srv)
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    samples, types = values(text)
    # prometheus_client names counter families without their _total suffix.
    assert types == {
        "tern_build_info": "gauge", "tern_start_time_seconds": "gauge",
        "tern_uptime_seconds": "gauge", "tern_c2s_connections": "gauge",
        "tern_sessions": "gauge", "tern_stanzas_in": "counter", "tern_stanzas_out": "counter",
        "tern_auth_failures": "counter", "tern_storage_bytes": "gauge",
        "tern_storage_writes": "counter", "tern_storage_written_bytes": "counter",
        "tern_storage_commits": "counter", "tern_storage_queued": "gauge",
        "tern_accounts": "gauge", "tern_offline_messages": "gauge",
    }
    assert value(samples, "tern_build_info", version="0.1.0") == 1
    started = value(samples, "tern_start_time_seconds")
    assert time.time() - 120 < started <= time.time()
    assert 0 <= value(samples, "tern_uptime_seconds") < 120
    assert value(samples, "tern_storage_bytes") > 0
    # Every host with the module is counted by itself.
    assert value(samples, "tern_accounts", host="localhost") == 3
    assert value(samples, "tern_accounts", host="example.test") == 1
    assert value(samples, "tern_offline_messages", host="example.test") == 0
    # No s2s yet: nothing pretends otherwise.
    assert not any("s2s" in name for name, _ in samples)


def test_openmetrics_when_the_scraper_asks(srv):
    status, headers, text = scrape(
        srv, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    assert status == 200
    assert headers["content-type"] == \
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert text.endswith("# EOF\n")
    samples, types = values(text, openmetrics)
    assert types["tern_stanzas_in"] == "counter"
    assert types["tern_sessions"] == "gauge"
    assert ("tern_stanzas_in_total", ()) in samples
    assert value(samples, "tern_accounts", host="localhost") == 3


def test_the_figures_move(srv):
    before = figures(srv)
    sessions = value(before, "tern_sessions", kind="c2s")

    alice = RawStream(srv)
    alice.login("alice", USERS["alice"], "desk")
    alice.ping_server("m1")
    during = figures(srv)
    assert value(during, "tern_sessions", kind="c2s") == sessions + 1
    assert value(during, "tern_c2s_connections") >= 1
    # The ping (binding happens before the session, and is not a routed stanza).
    assert value(during, "tern_stanzas_in_total") >= value(before, "tern_stanzas_in_total") + 1
    assert value(during, "tern_stanzas_out_total") > value(before, "tern_stanzas_out_total")

    # A message to bob, who is offline, waits in his queue.
    queued = value(during, "tern_offline_messages", host="localhost")
    alice.send("<message to='bob@localhost' type='chat' id='m2'><body>hi</body></message>")
    alice.ping_server("m3")  # the message was handled before the ping's answer
    after = figures(srv)
    assert value(after, "tern_offline_messages", host="localhost") == queued + 1
    # Storing it was one write of at least its owner, peer and body.
    writes, written = "tern_storage_writes_total", "tern_storage_written_bytes_total"
    assert value(after, writes) >= value(during, writes) + 1
    assert value(after, written) >= \
        value(during, written) + len("bob@localhost" "alice@localhost" "hi")

    # A wrong password counts as a failure.
    failures = value(during, "tern_auth_failures_total")
    mallory = RawStream(srv)
    mallory.secure()
    assert mallory.auth_plain("carol", "wrong").startswith("<failure")
    mallory.close()
    assert value(figures(srv), "tern_auth_failures_total") == failures + 1

    alice.send("</stream:stream>")
    alice.wait_closed()
    alice.close()
    deadline = time.monotonic() + TIMEOUT
    while value(figures(srv), "tern_sessions", kind="c2s") != sessions:
        assert time.monotonic() < deadline, "the session did not end"
        time.sleep(0.05)


def test_messages_arriving_together_share_commits(srv):
    """Group commit: a burst of messages for someone offline is stored in far fewer durable
    transactions than messages (each fsync takes what queued while the last one ran), and
    nothing is left queued once the sender has its pong (which waits for the commit)."""
    srv.add_user("erin@localhost", "erin-secret")
    alice = RawStream(srv)
    alice.login("alice", USERS["alice"], "burst")
    before = figures(srv)
    burst = 100  # the default offline quota
    alice.send("".join(f"<message to='erin@localhost' type='chat' id='g{i}'><body>{i}</body>"
                       "</message>" for i in range(burst)))
    alice.ping_server("g-sync")
    after = figures(srv)
    writes = value(after, "tern_storage_writes_total") - value(before, "tern_storage_writes_total")
    commits = value(after, "tern_storage_commits_total") - \
        value(before, "tern_storage_commits_total")
    assert writes >= burst
    assert commits < writes / 2, (commits, writes)
    assert value(after, "tern_offline_messages", host="localhost") >= burst
    assert value(after, "tern_storage_queued") == 0
    alice.close()


def test_only_get_and_head(srv):
    status, headers, body = scrape(srv, method="HEAD")
    assert (status, body) == (200, "")
    assert int(headers["content-length"]) > 100
    status, headers, _ = scrape(srv, method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD, OPTIONS"


def test_cors_star_lets_any_dashboard_read_it(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=TIMEOUT)
    conn.request("GET", "/metrics", headers={"Origin": "https://grafana.example"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.getheader("Access-Control-Allow-Origin") == "*"
    assert resp.getheader("Vary") is None


def test_off_unless_the_module_is_loaded(tmp_path, pki):
    server = TernServer(tmp_path, pki, http=True).start()
    try:
        assert scrape(server)[0] == 404
    finally:
        server.check_clean_exit()
