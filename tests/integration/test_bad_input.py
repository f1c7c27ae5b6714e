"""Bad input from one client: every case gets the RFC 6120 error its rule names (a stream error
and the end of that stream, or a stanza error on a stream that stays open), and nobody else
notices. In every test a witness — bob, logged in before the bad input arrives — still gets an
answer to a server ping after the bad connection is gone."""
import re
import select
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import pytest
from OpenSSL import SSL

from tern_harness import RawStream

NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
MAX_STANZA_SIZE = 262144  # the default of [c2s] max_stanza_size
HEADER_NS = ("xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
             "to='localhost' version='1.0'")


# ---------------------------------------------------------------- helpers


@pytest.fixture
def witness(server):
    """bob, logged in and bound before the test does anything bad."""
    s = RawStream(server)
    s.login("bob", "bob-secret")
    yield s
    s.close()


def assert_unaffected(witness):
    """The other user's stream still works: a ping gets its result."""
    witness.ping_server(ident=f"witness-{time.monotonic_ns()}")


def logged_in(server, user="alice", resource=None):
    s = RawStream(server)
    s.login(user, f"{user}-secret", resource)
    return s


def send_ignoring_close(stream, data):
    """Sends; returns False when the server has already closed the connection."""
    try:
        stream.send(data)
        return True
    except (OSError, SSL.Error):
        return False


def send_while_quiet(stream, chunk, total):
    """Sends `chunk` until `total` bytes are out or the server has started to answer (so that
    we never write into a connection the server closed, which could reset it before its
    stream error is read). Returns the number of bytes sent."""
    sent = 0
    while sent < total:
        readable, _, _ = select.select([stream.sock], [], [], 0)
        if readable or not send_ignoring_close(stream, chunk):
            break
        sent += len(chunk)
    return sent


def parse(data: bytes):
    """The top-level elements in `data` (stanzas as serialised on a jabber:client stream),
    parsed with a real XML parser."""
    root = ET.fromstring(b"<stream:stream xmlns='jabber:client' "
                         b"xmlns:stream='http://etherx.jabber.org/streams'>" + data +
                         b"</stream:stream>")
    return list(root)


def read_reply(stream, name, ident, timeout=None):
    """The stanza `name` with id `ident`, parsed."""
    m = stream.read_until(
        rf"<{name}\b[^>]*\bid=['\"]{re.escape(ident)}['\"][^>]*?(/>|>.*?</{name}>)".encode(),
        timeout)
    (element,) = parse(m.group(0))
    return element


def stanza_error(element):
    """(type attribute of <error/>, its defined condition) of an error stanza."""
    assert element.get("type") == "error", ET.tostring(element)
    err = element.find(f"{{{NS_CLIENT}}}error")
    assert err is not None, ET.tostring(element)
    conditions = [c.tag.split("}")[1] for c in err if c.tag.startswith(f"{{{NS_STANZAS}}}")
                  and c.tag != f"{{{NS_STANZAS}}}text"]
    assert len(conditions) == 1, ET.tostring(element)
    return err.get("type"), conditions[0]


# ---------------------------------------------------------------- not well-formed


def test_not_well_formed_xml_closes_only_that_stream(server, witness):
    s = logged_in(server)
    s.send("<message to='bob@localhost'><body>x</message>")
    assert s.stream_error() == "not-well-formed"
    s.close()
    assert_unaffected(witness)


def test_garbage_before_the_stream_header_is_not_well_formed(server, witness):
    s = RawStream(server)
    s.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = s.wait_closed()
    # RFC 6120 §4.9.1.2: the error follows a stream header of the server's own.
    assert data.startswith(b"<?xml version='1.0'?><stream:stream "), data
    assert s.stream_error() == "not-well-formed"
    s.close()
    assert_unaffected(witness)


@pytest.mark.parametrize("sequence", [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"],
                         ids=["ff-fe", "overlong-slash", "surrogate", "truncated"])
def test_invalid_utf8_in_a_body_is_not_well_formed(server, witness, sequence):
    s = logged_in(server)
    s.send(b"<message to='bob@localhost'><body>caf" + sequence + b"</body></message>")
    assert s.stream_error() == "not-well-formed"
    s.close()
    assert_unaffected(witness)


# ---------------------------------------------------------------- restricted XML (§11.1)


@pytest.mark.parametrize("after_starttls", [False, True], ids=["plain", "after-starttls"])
def test_doctype_with_an_entity_declaration_is_restricted_xml(server, witness, after_starttls):
    s = RawStream(server)
    if after_starttls:
        s.starttls()
    s.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY who 'admin'>]>"
           f"<stream:stream {HEADER_NS}>")
    assert s.stream_error() == "restricted-xml"
    s.close()
    assert_unaffected(witness)


def test_billion_laughs_is_refused_at_once_and_the_server_stays_responsive(server, witness):
    entities = "<!ENTITY lol0 'lol'>" + "".join(
        f"<!ENTITY lol{i} '{f'&lol{i - 1};' * 10}'>" for i in range(1, 10))
    s = RawStream(server)
    started = time.monotonic()
    s.send(f"<?xml version='1.0'?><!DOCTYPE stream:stream [{entities}]>"
           f"<stream:stream {HEADER_NS}><message to='bob@localhost'><body>&lol9;</body>"
           "</message>")
    assert s.stream_error(timeout=5) == "restricted-xml"
    assert time.monotonic() - started < 2.0
    s.close()
    started = time.monotonic()
    assert_unaffected(witness)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("construct", ["<!-- a comment -->", "<?tern do-something?>"],
                         ids=["comment", "processing-instruction"])
@pytest.mark.parametrize("where", ["between-stanzas", "inside-a-stanza"])
def test_comments_and_processing_instructions_in_the_stream_are_restricted_xml(
        server, witness, construct, where):
    s = logged_in(server)
    if where == "between-stanzas":
        s.send(construct)
    else:
        s.send(f"<message to='bob@localhost'><body>hi</body>{construct}</message>")
    assert s.stream_error() == "restricted-xml"
    s.close()
    assert_unaffected(witness)


# ---------------------------------------------------------------- size and depth limits


def test_an_oversized_stanza_is_a_policy_violation(server, witness):
    s = logged_in(server)
    s.send("<message to='bob@localhost'><body>")
    sent = send_while_quiet(s, b"a" * 16384, 300 * 1024)
    if sent == 300 * 1024:
        send_ignoring_close(s, "</body></message>")
    assert s.stream_error() == "policy-violation"
    assert sent >= MAX_STANZA_SIZE - 16384  # not closed early for some other reason
    s.close()
    assert_unaffected(witness)


def test_a_never_closing_huge_attribute_is_cut_off_at_the_size_limit(server, witness):
    """The value's closing quote never comes, so a parser that waited for the end of the token
    would buffer all of it; the error must come once max_stanza_size bytes are in."""
    s = logged_in(server)
    s.send("<message to='bob@localhost' id='")
    chunk = b"x" * 16384
    sent = 0
    while sent < MAX_STANZA_SIZE + 64 * 1024:
        s.send(chunk)
        sent += len(chunk)
    # No more bytes: the limit alone must end the stream.
    m = s.read_until(rb"<stream:error>.*?</stream:stream>", timeout=5)
    assert b"<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in m.group(0) \
        or b'<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>' in m.group(0), \
        m.group(0)
    # The rest of the 1 MiB value goes nowhere: the connection is closed.
    while sent < 1024 * 1024 and send_ignoring_close(s, chunk):
        sent += len(chunk)
    s.wait_closed()
    s.close()
    assert_unaffected(witness)


def test_deeply_nested_elements_are_a_policy_violation(server, witness):
    s = logged_in(server)
    s.send("<message to='bob@localhost'>" + "<a>" * 10000)
    # The closing tags never need to come: the depth alone ends the stream.
    assert s.stream_error() == "policy-violation"
    s.close()
    assert_unaffected(witness)


# ---------------------------------------------------------------- the stream header


@pytest.mark.parametrize("header,condition", [
    ("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
     "to='localhost' version='1.0'>", "invalid-namespace"),
    ("<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' "
     "version='1.0'>", "invalid-namespace"),
    ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
     "to='nowhere.example' version='1.0'>", "host-unknown"),
    ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
     "version='1.0'>", "host-unknown"),
    ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
     "to='localhost' version='0.9'>", "unsupported-version"),
    ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
     "to='localhost'>", "unsupported-version"),
], ids=["server-namespace-on-client-port", "wrong-stream-namespace", "unknown-host", "no-to",
        "version-0.9", "no-version"])
def test_a_bad_stream_header_gets_its_stream_error(server, witness, header, condition):
    s = RawStream(server)
    s.send("<?xml version='1.0'?>" + header)
    assert s.stream_error() == condition
    s.close()
    assert_unaffected(witness)


# ---------------------------------------------------------------- stanzas out of order


@pytest.mark.parametrize("stanza", [
    "<message to='bob@localhost'><body>hi</body></message>",
    "<presence/>",
    "<iq type='get' id='early' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
], ids=["message", "presence", "iq"])
def test_a_stanza_before_authentication_is_not_authorized(server, witness, stanza):
    s = RawStream(server)
    s.secure()  # after STARTTLS, before SASL
    s.send(stanza)
    assert s.stream_error() == "not-authorized"
    s.close()
    assert_unaffected(witness)


@pytest.mark.parametrize("stanza", [
    "<message to='bob@localhost'><body>hi</body></message>",
    "<presence/>",
    "<iq type='get' id='early' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
], ids=["message", "presence", "iq"])
def test_a_stanza_after_authentication_but_before_bind_is_not_authorized(server, witness,
                                                                          stanza):
    s = RawStream(server)
    s.secure()
    assert s.auth_plain("alice", "alice-secret").startswith("<success")
    s.open()
    assert b"urn:ietf:params:xml:ns:xmpp-bind" in s.read_features()
    s.send(stanza)
    assert s.stream_error() == "not-authorized"
    s.close()
    assert_unaffected(witness)


def test_a_top_level_element_in_an_unknown_namespace_is_an_unsupported_stanza_type(server,
                                                                                   witness):
    s = logged_in(server)
    s.send("<thing xmlns='urn:example:unknown'><stuff/></thing>")
    assert s.stream_error() == "unsupported-stanza-type"
    s.close()
    assert_unaffected(witness)


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize("to", ["a@b@c", "@localhost", "x" * 1024 + "@localhost"],
                         ids=["two-at-signs", "empty-localpart", "1024-byte-localpart"])
def test_an_invalid_jid_in_to_gets_jid_malformed_and_the_stream_stays_open(server, witness, to):
    s = logged_in(server, resource="desk")
    s.send(f"<message to={quoteattr(to)} id='bad-to' type='chat'><body>hi</body></message>")
    reply = read_reply(s, "message", "bad-to", timeout=3)
    assert reply.tag == f"{{{NS_CLIENT}}}message"
    assert reply.get("to") == "alice@localhost/desk"
    # RFC 6120 §8.3.3.8: jid-malformed is a "modify" error.
    assert stanza_error(reply) == ("modify", "jid-malformed")
    s.ping_server("after-bad-to")  # the sender's stream is still open
    s.close()
    assert_unaffected(witness)


def test_a_spoofed_from_is_an_invalid_from_stream_error(server, witness):
    s = logged_in(server)
    s.send("<message from='bob@localhost/x' to='bob@localhost'><body>it is me</body></message>")
    assert s.stream_error() == "invalid-from"
    s.close()
    assert_unaffected(witness)


# ---------------------------------------------------------------- iq rules (§8.2.3)


def test_an_iq_in_an_unknown_namespace_gets_service_unavailable(server, witness):
    s = logged_in(server)
    s.send("<iq type='get' id='unknown-ns' to='localhost'><query xmlns='urn:example:nothing'/>"
           "</iq>")
    reply = read_reply(s, "iq", "unknown-ns")
    assert reply.get("from") == "localhost"
    assert stanza_error(reply) == ("cancel", "service-unavailable")
    s.ping_server("after-unknown-ns")
    s.close()
    assert_unaffected(witness)


def test_an_iq_with_two_children_gets_bad_request(server, witness):
    s = logged_in(server)
    s.send("<iq type='get' id='two-kids' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
           "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    reply = read_reply(s, "iq", "two-kids")
    assert stanza_error(reply) == ("modify", "bad-request")
    s.ping_server("after-two-kids")
    s.close()
    assert_unaffected(witness)


def test_an_iq_without_a_type_gets_bad_request(server, witness):
    s = logged_in(server)
    s.send("<iq id='no-type' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = read_reply(s, "iq", "no-type")
    assert stanza_error(reply) == ("modify", "bad-request")
    s.ping_server("after-no-type")
    s.close()
    assert_unaffected(witness)


# ---------------------------------------------------------------- smuggling and keepalives


def test_markup_in_text_and_attributes_cannot_smuggle_a_stanza(server, witness):
    body = "</body></message><message to='bob@localhost'><body>evil</body></message>"
    thread = "it's \"quoted\" </message><message to='bob@localhost'>&amp; more"
    bob = logged_in(server, "bob", "smuggle")
    alice = logged_in(server, "alice", "smuggler")
    alice.send(f"<message to='bob@localhost/smuggle' type='chat' id={quoteattr(thread)}>"
               f"<body>{escape(body)}</body><thread>{escape(thread)}</thread></message>")
    alice.ping_server("alice-sent")  # the server has routed alice's message by now
    bob.send("<iq type='get' id='bob-done' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    m = bob.read_until(rb"(.*?)<iq[^>]*\bid=['\"]bob-done['\"][^>]*?(/>|>.*?</iq>)")
    received = parse(m.group(1))
    messages = [e for e in received if e.tag == f"{{{NS_CLIENT}}}message"]
    assert len(messages) == 1, m.group(1)
    (msg,) = messages
    assert msg.get("from") == "alice@localhost/smuggler"
    assert msg.get("id") == thread
    assert msg.findtext(f"{{{NS_CLIENT}}}body") == body
    assert msg.findtext(f"{{{NS_CLIENT}}}thread") == thread
    alice.close()
    bob.close()
    assert_unaffected(witness)


def test_whitespace_keepalives_between_stanzas_are_ignored(server, witness):
    s = logged_in(server)
    for i in range(20):
        s.send("\n \n")
        s.ping_server(f"keepalive-{i}")
    # Keepalives add up to more than a stanza may be: each one starts the count afresh.
    chunk = b"\n \n" * 4096
    for _ in range((MAX_STANZA_SIZE * 2) // len(chunk)):
        s.send(chunk)
    s.ping_server("after-many-keepalives")
    s.close()
    assert_unaffected(witness)
