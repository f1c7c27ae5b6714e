"""The web transports are modules (modules/websocket, modules/bosh): an operator unloads one
from the running server with ternctl while people use it. Their connections end at once (the
module's code is about to go), everyone else's stay, and loading the module again brings the
endpoint back. Sanitizers would catch a stream left calling code that was unmapped."""
import pytest

from tern_harness import RawStream, TernServer
from test_bosh import Bosh
from ws_client import WSXmpp

MODULES = "disco ping roster presence websocket bosh"


@pytest.fixture
def srv(tmp_path, pki):
    server = TernServer(tmp_path, pki, modules=MODULES, http=True)
    for user in ("alice", "bob", "carol"):
        server.add_user(f"{user}@localhost", "secret")
    server.start()
    yield server
    server.check_clean_exit()


def ws_stream(srv):
    x = WSXmpp(srv)
    x.open()
    return x


def test_unloading_websocket_ends_its_streams_only(srv):
    tcp = RawStream(srv)
    tcp.login("alice", "secret", "desk")
    ws = ws_stream(srv)
    assert srv.ternctl("module", "unload", "localhost", "websocket").stdout == \
        "module websocket unloaded\n"
    ws.ws.wait_closed(5)  # the connection is gone at once, without a word
    tcp.ping_server("still-here")
    with pytest.raises((AssertionError, ConnectionError, OSError)):
        ws_stream(srv)  # no route any more: 404
    assert srv.ternctl("module", "load", "localhost", "websocket").stdout == \
        "module websocket loaded\n"
    ws_stream(srv).close()
    tcp.close()


def test_unloading_bosh_answers_held_requests_and_ends_sessions(srv):
    tcp = RawStream(srv)
    tcp.login("alice", "secret", "desk")
    b = Bosh(srv)
    b.login("carol", "secret", resource="web")
    b.start()  # an empty request, held by the server
    assert srv.ternctl("module", "unload", "localhost", "bosh").stdout == \
        "module bosh unloaded\n"
    r = b.finish()
    assert r.terminal[0] == "terminate", r
    assert b.post().status == 404  # neither the session nor the route is there
    tcp.ping_server("still-here")
    assert srv.ternctl("module", "load", "localhost", "bosh").stdout == "module bosh loaded\n"
    again = Bosh(srv)
    assert again.login("carol", "secret", resource="web2") == "carol@localhost/web2"
    again.terminate()
    b.close()
    tcp.close()
