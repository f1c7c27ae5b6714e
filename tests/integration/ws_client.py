"""ws_client — a small hand-written WebSocket client (RFC 6455) for the tests, and an XMPP
stream over it (RFC 7395). Hand-written because tests must also send what no library would:
unmasked frames, binary messages, bad UTF-8, broken fragmentation. Every wait has a timeout."""
import base64
import hashlib
import os
import re
import socket
import struct
import time
import xml.etree.ElementTree as ET

from tern_harness import RawStream

TIMEOUT = 10
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
F = "{" + FRAMING + "}"
STREAMS = "{http://etherx.jabber.org/streams}"
STREAM_ERRORS = "{urn:ietf:params:xml:ns:xmpp-streams}"
SASL = "{urn:ietf:params:xml:ns:xmpp-sasl}"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

def frame(opcode, payload, fin=True, mask=True, rsv=0):
    """One frame (RFC 6455 §5.2), masked as a client must unless told otherwise."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


class Closed(Exception):
    def __init__(self, code):
        super().__init__(f"WebSocket closed with {code}")
        self.code = code


class WSClient(RawStream):
    """The WebSocket client side over a socket (pyOpenSSL for wss://, so the tls-exporter
    channel binding is at hand). RawStream gives the byte transport."""

    def __init__(self, server, tls=True, timeout=TIMEOUT):
        self.server = server
        self.timeout = timeout
        self.sni = "localhost"
        self.port = server.https_port if tls else server.http_port
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        self.tls = None
        self.buffer = b""
        self.fragments = None
        if tls:
            self._wrap_tls(alpn=b"http/1.1")

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out reading {n} bytes; have {self.buffer[:200]!r}")
            try:
                data = self._recv_some(left)
            except TimeoutError:
                continue
            if data == b"":
                raise AssertionError(f"connection closed; have {self.buffer[:200]!r}")
            if data:
                self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def handshake(self, protocols="xmpp", origin=None, version="13", path="/xmpp-websocket",
                  method="GET", upgrade=True, key=None):
        """Sends the opening handshake; returns (status, {lowercase name: value}, body)."""
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: localhost:{self.port}"]
        if upgrade:
            lines += ["Upgrade: websocket", "Connection: Upgrade"]
        lines += [f"Sec-WebSocket-Key: {self.key}", f"Sec-WebSocket-Version: {version}"]
        if protocols:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        if origin:
            lines.append(f"Origin: {origin}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self.read_until(rb"^(.*?)\r\n\r\n").group(1).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.read_exact(int(headers.get("content-length", "0"))) if status != 101 else b""
        return status, headers, body

    def upgrade(self, **kwargs):
        status, headers, body = self.handshake(**kwargs)
        assert status == 101, (status, headers, body)
        accept = base64.b64encode(hashlib.sha1((self.key + GUID).encode()).digest()).decode()
        assert headers["sec-websocket-accept"] == accept, headers
        assert headers["upgrade"].lower() == "websocket", headers
        assert headers["connection"].lower() == "upgrade", headers
        assert headers["sec-websocket-protocol"] == "xmpp", headers
        assert "content-length" not in headers, headers
        return self

    def send_frame(self, opcode, payload, **kwargs):
        self.send(frame(opcode, payload, **kwargs))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def read_frame(self, timeout=None):
        b0, b1 = self.read_exact(2, timeout)
        assert not b1 & 0x80, "RFC 6455 §5.1: a server must not mask its frames"
        assert not b0 & 0x70, "no RSV bits without extensions"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, timeout))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, timeout))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self.read_exact(n, timeout)

    def read_message(self, timeout=None):
        """(opcode, payload): a control frame, or a whole data message."""
        while True:
            fin, opcode, payload = self.read_frame(timeout)
            if opcode >= 8:
                return opcode, payload
            if opcode != OP_CONT:
                self.fragments = (opcode, payload)
            else:
                self.fragments = (self.fragments[0], self.fragments[1] + payload)
            if fin:
                message, self.fragments = self.fragments, None
                return message

    def read_text(self, timeout=None):
        """The next text message; a Close raises Closed(code)."""
        opcode, payload = self.read_message(timeout)
        if opcode == OP_CLOSE:
            raise Closed(struct.unpack("!H", payload[:2])[0] if payload else None)
        assert opcode == OP_TEXT, (opcode, payload)
        return payload.decode()

    def close_code(self, timeout=None):
        """Reads up to the server's Close and returns its status code (text before it is
        dropped)."""
        while True:
            opcode, payload = self.read_message(timeout)
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if payload else None

    def expect_eof(self, timeout=None):
        data = self.wait_closed(timeout)
        assert data == b"", data


class WSXmpp:
    """An XMPP stream over WSClient: each message one element, parsed with ElementTree.
    Elements a wait does not ask for stay queued."""

    def __init__(self, server, tls=True, **handshake):
        self.ws = WSClient(server, tls).upgrade(**handshake)
        self.queue = []
        self.text = b""  # for scram_login's read_until

    def send(self, xml):
        self.ws.send_text(xml)

    def element(self, timeout=None):
        if self.queue:
            return self.queue.pop(0)
        return ET.fromstring(self.ws.read_text(timeout))

    def next(self, match=lambda e: True, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.queue):
                if match(e):
                    return self.queue.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("nothing matching; queued: " +
                                     ", ".join(ET.tostring(e).decode() for e in self.queue))
            self.queue.append(ET.fromstring(self.ws.read_text(left)))

    def read_until(self, pattern, timeout=None):
        regex = re.compile(pattern, re.S)
        while True:
            m = regex.search(self.text)
            if m:
                self.text = self.text[m.end():]
                return m
            self.text += self.ws.read_text(timeout).encode()

    def channel_binding(self, kind):
        return self.ws.channel_binding(kind)

    def open(self, to="localhost"):
        """Sends <open/>; returns our <open/> and the features."""
        self.send(f"<open xmlns='{FRAMING}' to='{to}' version='1.0'/>")
        opened = self.element()
        assert opened.tag == F + "open", ET.tostring(opened)
        features = self.element()
        assert features.tag == STREAMS + "features", ET.tostring(features)
        return opened, features

    def auth_plain(self, user, password):
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}"
                  "</auth>")
        return self.element()

    def bind(self, resource):
        self.send("<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns="
                  f"'urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>")
        reply = self.next(lambda e: e.get("id") == "bind1")
        assert reply.get("type") == "result", ET.tostring(reply)
        return reply.find("{urn:ietf:params:xml:ns:xmpp-bind}bind/"
                          "{urn:ietf:params:xml:ns:xmpp-bind}jid").text

    def login(self, user, password="secret", resource="web"):
        self.open()
        result = self.auth_plain(user, password)
        assert result.tag == SASL + "success", ET.tostring(result)
        self.open()
        return self.bind(resource)

    def sync(self, ident="sync"):
        self.send(f"<iq xmlns='jabber:client' type='get' id='{ident}' to='localhost'>"
                  "<ping xmlns='urn:xmpp:ping'/></iq>")
        return self.next(lambda e: e.get("id") == ident)

    def stream_error(self):
        """A stream error ends the stream: <stream:error/>, <close/>, the WebSocket Close
        (answered by us) and the end of the connection. Returns the condition."""
        error = self.next(lambda e: e.tag == STREAMS + "error")
        assert self.element().tag == F + "close"
        assert self.ws.close_code() == 1000
        self.ws.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        self.ws.expect_eof()
        return error[0].tag.replace(STREAM_ERRORS, "")

    def close(self):
        """RFC 7395 §3.6: <close/> answered with <close/>, then the closing handshake."""
        self.send(f"<close xmlns='{FRAMING}'/>")
        closing = self.next(lambda e: e.tag == F + "close")
        assert closing.attrib == {}, ET.tostring(closing)
        assert self.ws.close_code() == 1000
        self.ws.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        self.ws.expect_eof()


def features_names(features):
    return {child.tag for child in features}


def mechanisms(features):
    m = features.find(SASL + "mechanisms")
    return [] if m is None else [x.text for x in m]
