"""Back-pressure: a peer that does not read what the server sends costs a bounded amount of
memory. A client that sends requests without reading the answers is no longer read until it
does (and then gets every answer); a recipient that reads nothing while others write to it
is closed with <policy-violation/> (RFC 6120 §4.9.3.18) once its queue passes
[c2s] max_send_queue, and what is sent to it later waits offline. Other users never wait."""
import os
import re
import socket
import time

from OpenSSL import SSL

from tern_harness import RawStream, TernServer

DISCO = "<iq type='get' id='d{}' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"


def rss_kib(srv):
    status = open(f"/proc/{srv.proc.pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def start(tmp_path, pki, monkeypatch, c2s_extra=""):
    # Under AddressSanitizer freed memory waits in a quarantine of up to 256 MiB, which would
    # hide what the process really holds; without it RSS follows the live heap.
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") +
                       ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    srv = TernServer(tmp_path, pki, modules="disco ping presence roster offline",
                     c2s_extra=c2s_extra)
    for user in ("alice", "bob", "carol"):
        srv.add_user(f"{user}@localhost", f"{user}-secret")
    return srv.start()


def small_receive_window(stream):
    """Fixes the client's receive buffer (no autotuning to megabytes), so the server's output
    backs up sooner. It stays above loopback's 64 KiB segments: a buffer smaller than one
    segment makes TCP drop and back off, which stalls for reasons of its own."""
    stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)


def send_until_stalled(stream, make_request, limit_bytes, stall_seconds=3.0):
    """Sends requests without reading until the server stops taking them for stall_seconds
    (the socket stays unwritable). Returns (requests begun, bytes sent, the last request if
    the stall cut it: it must be sent again, while reading); fails if the server takes
    limit_bytes without stalling."""
    sock = stream.sock
    sock.setblocking(False)
    sent = total = 0
    pending = b""
    stalled_since = None
    while total < limit_bytes:
        if not pending:
            pending = make_request(sent).encode()
        try:
            n = stream.tls.send(pending)
        except SSL.WantWriteError:
            n = 0
        except SSL.WantReadError:
            n = 0
        if n:
            total += n
            pending = pending[n:]
            if not pending:
                sent += 1
            stalled_since = None
            continue
        now = time.monotonic()
        stalled_since = stalled_since or now
        if now - stalled_since >= stall_seconds:
            return sent + (1 if pending else 0), total, pending
        time.sleep(0.05)
    raise AssertionError(f"the server read {total} bytes of requests without stalling")


def read_answers_in_order(stream, count, timeout, unsent=b""):
    """Reads the answers to requests d0 .. d<count-1> and checks that they come in order.
    Scans each piece once (RawStream.read_until searches its whole buffer per read, which is
    quadratic in the megabytes waiting here)."""
    answer = re.compile(rb"<iq type='result' id='d(\d+)'")
    deadline = time.monotonic() + timeout
    expected, tail = 0, stream.buffer
    stream.buffer = b""
    while expected < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {expected} of {count} answers arrived"
        if unsent:  # the server reads it once we have read enough (OpenSSL wants a retry)
            try:
                unsent = unsent[stream.tls.send(unsent):]
            except (SSL.WantWriteError, SSL.WantReadError):
                pass
        try:
            data = stream._recv_some(min(left, 0.1))
        except TimeoutError:
            continue
        if data is None:
            continue
        assert data, f"the stream closed after {expected} of {count} answers: {tail[-300:]!r}"
        tail += data
        end = 0
        for m in answer.finditer(tail):
            assert int(m.group(1)) == expected, (m.group(1), expected)
            expected += 1
            end = m.end()
        tail = tail[max(end, len(tail) - 200):]


def test_a_client_that_does_not_read_its_answers_stalls_and_then_gets_them_all(tmp_path, pki,
                                                                              monkeypatch):
    srv = start(tmp_path, pki, monkeypatch)
    try:
        alice = RawStream(srv)
        # Alice's receive buffer is left to autotune: with a small fixed one, the answers
        # that fill it make loopback TCP drop and back off (RTO up to seconds, cwnd 1) in
        # both directions, so her requests stop reaching the server before its own queue
        # reaches the high-water mark — a stall of TCP's, not the back-pressure under test.
        alice.login("alice", "alice-secret", "r")
        before = rss_kib(srv)

        sent, total, unsent = send_until_stalled(alice, DISCO.format, limit_bytes=64 << 20)
        grown = rss_kib(srv) - before
        # Without back-pressure every request would be answered into memory: the answers
        # are ~5x the requests. With it, what waits is the queue's high-water mark (512 KiB)
        # and what the kernel buffers hold, and the process stays small.
        assert total < 40 << 20, total
        assert grown < 24 * 1024, f"ternd grew by {grown} KiB while {total} bytes came in"
        assert "not reading until they drain" in srv.log_text()

        # Meanwhile everyone else is served at once.
        bob = RawStream(srv)
        bob.login("bob", "bob-secret", "r")
        bob.ping_server("while-alice-stalls")

        # Alice reads: every request she sent is answered, in order, and her stream works.
        read_answers_in_order(alice, sent, timeout=60, unsent=unsent)
        alice.sock.setblocking(True)
        alice.sock.settimeout(alice.timeout)
        alice.ping_server("after")
        assert "does not read what we send" not in srv.log_text()
    finally:
        srv.check_clean_exit()


def test_a_recipient_that_reads_nothing_is_closed_and_later_messages_wait_offline(tmp_path,
                                                                                pki,
                                                                                monkeypatch):
    srv = start(tmp_path, pki, monkeypatch, c2s_extra="send_queue_high_water = 65536\n"
                                         "max_send_queue = 1048576\n")
    try:
        bob = RawStream(srv)
        small_receive_window(bob)
        bob.login("bob", "bob-secret", "phone")
        bob.send("<presence/>")
        alice = RawStream(srv)
        alice.login("alice", "alice-secret", "r")

        # Alice writes to Bob, who reads nothing; she is never held up (her pings answer).
        body = "x" * 8000
        for i in range(1500):
            alice.send(f"<message to='bob@localhost/phone' type='chat' id='m{i}'>"
                       f"<body>{i} {body}</body></message>")
            if i % 100 == 0:
                alice.ping_server(f"p{i}")
            if "does not read what we send" in srv.log_text():
                break
        else:
            raise AssertionError("12 MB to a client that reads nothing and no overflow")
        srv.wait_log("the send queue is over its maximum")
        alice.ping_server("after-overflow")

        # Bob's stream ends with the RFC's error once he reads what was queued.
        tail = bob.wait_closed(timeout=30)[-400:]
        assert b"<policy-violation" in tail, tail
        assert b"urn:ietf:params:xml:ns:xmpp-streams" in tail, tail

        # He is gone for the router: what Alice sends now is kept for him.
        alice.send("<message to='bob@localhost' type='chat' id='later'>"
                   "<body>are you there?</body></message>")
        alice.ping_server("stored")
        again = RawStream(srv)
        again.login("bob", "bob-secret", "laptop")
        again.send("<presence/>")
        msg = again.read_until(rb"<message[^>]*id=['\"]later['\"].*?</message>").group(0)
        assert b"are you there?" in msg

        # And the others never noticed.
        carol = RawStream(srv)
        carol.login("carol", "carol-secret", "r")
        carol.ping_server()
    finally:
        srv.check_clean_exit()
