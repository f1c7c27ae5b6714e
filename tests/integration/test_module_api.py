"""A third party writes a module against the installed headers (tern/module.h), as
doc/modules.md describes: it is compiled here with the system's C compiler, put in a module
folder beside the real modules, and loaded by a real ternd.

- A misspelt event name is a load error that names it, so a hook that would never fire does
  not go unnoticed.
- Stream elements (tern_hook_element) reach the module that claims their namespace, also when
  the hook was added after load (from a timer), and are answered on the stream.
- A delivery hook (tern_hook_deliver) sees every stanza before it reaches a session and may
  keep it back.
- A module may listen on an address of its own (tern_listen, conn_accept): the listener
  closes when the module unloads."""
import socket
import subprocess
import time

import pytest

from tern_harness import (BUILD, ECHO_MODULE, MODULES, RawStream, TernServer, build_module_dir,
                          free_port)

EXAMPLE = r"""
#include <string.h>
#include <tern/module.h>

static tern_event_result hello(tern_session *s, const tern_xml *el, void *data)
{
    (void)el; (void)data;
    tern_xml *hi = xml_new("hi", "urn:example:hello");
    xml_set_attr(hi, "to", tern_session_jid(s)->full);
    tern_session_send_element(s, hi);
    xml_unref(hi);
    return TERN_HANDLED;
}

/* Messages whose body is "censored" never reach a client. */
static tern_event_result censor(tern_session *s, const tern_xml *stanza, void *data)
{
    (void)s; (void)data;
    const char *body = xml_child_text(stanza, "body", NULL);
    return body && strcmp(body, "censored") == 0 ? TERN_HANDLED : TERN_PASS;
}

static void late(void *data)
{
    tern_hook_element(data, "urn:example:hello", "hello", hello, NULL);
}

static int example_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state; (void)err; (void)err_len;
    tern_timer_add(host, 10, false, late, host);
    tern_hook_deliver(host, 0, censor, NULL);
    EXTRA
    return 0;
}

TERN_MODULE("example", example_load, NULL);
"""


def build_module(tmp_path, extra="", text=None):
    """Compiles the example (or `text`) into a module folder that also holds every real
    module."""
    return build_module_dir(tmp_path / "modules", "example",
                            text if text is not None else EXAMPLE.replace("EXTRA", extra))


def server_with(tmp_path, pki, folder, modules):
    server = TernServer(tmp_path, pki, modules=modules)
    text = server.config.read_text().replace(f"module_dir = {MODULES}", f"module_dir = {folder}")
    server.config.write_text(text)
    return server


@pytest.mark.parametrize("call, event", [
    ('tern_hook_stanza(host, "mesage/bare", 0, NULL, NULL);', "mesage/bare"),
    ('tern_hook_stanza(host, "iq-get/host", 0, NULL, NULL);', "iq-get/host"),
    ('tern_hook_stanza(host, "message/local", 0, NULL, NULL);', "message/local"),
    ('tern_hook_session(host, "session/bond", NULL, NULL);', "session/bond"),
    ('tern_hook_account(host, "account/removed", NULL, NULL);', "account/removed"),
])
def test_an_unknown_event_is_a_load_error_naming_it(tmp_path, pki, call, event):
    folder = build_module(tmp_path, call)
    server = server_with(tmp_path, pki, folder, "disco ping example")
    proc = subprocess.run([str(BUILD / "src" / "ternd"), "-c", str(server.config)],
                          capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert f'module example failed to load: it hooks unknown' in out, out
    assert f'"{event}"' in out, out


def test_elements_and_delivery_reach_the_module(tmp_path, pki):
    folder = build_module(tmp_path)
    server = server_with(tmp_path, pki, folder, "disco ping example")
    server.add_user("alice@localhost", "pw-a")
    server.add_user("bob@localhost", "pw-b")
    server.start()
    alice = RawStream(server)
    alice.login("alice", "pw-a", "phone")
    bob = RawStream(server)
    bob.login("bob", "pw-b", "desk")
    alice.send("<hello xmlns='urn:example:hello'/>")
    alice.read_until(rb"<hi xmlns='urn:example:hello' to='alice@localhost/phone'/>")
    for body in ("censored", "fine"):
        bob.send(f"<message to='alice@localhost/phone' id='{body}'><body>{body}</body></message>")
    got = alice.read_until(rb"^(.*?)<message[^>]*id='fine'").group(1)
    assert b"censored" not in got, got
    # An element of a namespace nobody claims is still a stream error.
    alice.send("<hello xmlns='urn:example:other'/>")
    assert alice.stream_error() == "unsupported-stanza-type"
    bob.close()
    server.check_clean_exit()


LISTENER = r"""
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tern/conn.h>
#include <tern/module.h>

/* An echo service that answers in capitals, on the address in $EXAMPLE_LISTEN. */
typedef struct echo { conn *c; struct echo *next; } echo;
static echo *echoes;

static void forget(conn *c)
{
    for (echo **at = &echoes; *at; at = &(*at)->next)
        if ((*at)->c == c) { echo *e = *at; *at = e->next; free(e); return; }
}

static void on_data(void *ctx, const char *data, size_t len)
{
    conn *c = ctx;
    char buf[4096];
    size_t n = len < sizeof buf ? len : sizeof buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)toupper((unsigned char)data[i]);
    conn_write(c, buf, n);
}

static void on_closed(void *ctx, const char *reason)
{
    (void)reason;
    forget(ctx);
    conn_free(ctx);
}

static const conn_handlers handlers = { on_data, NULL, on_closed, NULL, NULL };

static void on_accept(int fd, void *data)
{
    (void)data;
    echo *e = calloc(1, sizeof *e);
    e->c = conn_accept(fd, &handlers, NULL, 0);
    conn_set_owner(e->c, &handlers, e->c, conn_id(e->c));
    e->next = echoes;
    echoes = e;
}

static int example_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    return tern_listen(host, getenv("EXAMPLE_LISTEN"), "echo", on_accept, NULL, err, err_len);
}

static void example_unload(tern_host *host, void *state)
{
    (void)host; (void)state;
    while (echoes) { conn *c = echoes->c; forget(c); conn_free(c); }
}

TERN_MODULE("example", example_load, example_unload);
"""


def test_a_module_listens_and_its_listener_goes_with_it(tmp_path, pki, monkeypatch):
    port = free_port()
    monkeypatch.setenv("EXAMPLE_LISTEN", f"127.0.0.1:{port}")
    folder = build_module(tmp_path, text=LISTENER)
    server = server_with(tmp_path, pki, folder, "disco ping example")
    server.start()
    server.wait_log(f"listening on 127.0.0.1:{port} (echo)")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"hello")
        assert s.recv(100) == b"HELLO"
        out = server.ternctl("module", "unload", "localhost", "example").stdout
        assert out == "module example unloaded\n"
        assert s.recv(100) == b""  # the module ended its connection when it went
    with socket.socket() as s:
        s.settimeout(5)
        assert s.connect_ex(("127.0.0.1", port)) != 0  # and its listener is closed
    # Loaded again, it listens again.
    assert server.ternctl("module", "load", "localhost", "example").stdout == \
        "module example loaded\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"again")
        assert s.recv(100) == b"AGAIN"
    server.check_clean_exit()


def test_a_bad_listen_address_is_a_load_error(tmp_path, pki, monkeypatch):
    monkeypatch.setenv("EXAMPLE_LISTEN", "not-an-address")
    folder = build_module(tmp_path, text=LISTENER)
    server = server_with(tmp_path, pki, folder, "disco ping example")
    proc = subprocess.run([str(BUILD / "src" / "ternd"), "-c", str(server.config)],
                          capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "module example failed to load: not-an-address" in out, out


SLOTS = r"""
#include <stdlib.h>
#include <tern/module.h>
#include <tern/util.h>

/* <slow/> is answered 1 s later through a slot of the sender's output; <stuck/> reserves a
 * slot that is never released (a module bug the core cleans up when the module unloads). */
typedef struct pending { tern_output_slot *slot; char *id, *from; } pending;

static void answer(void *data)
{
    pending *p = data;
    tern_session *s = tern_slot_session(p->slot);
    if (s) {
        tern_xml *iq = xml_new("iq", "jabber:client");
        xml_set_attr(iq, "type", "result");
        xml_set_attr(iq, "id", p->id);
        xml_set_attr(iq, "to", p->from);
        tern_slot_send(p->slot, iq);
        xml_unref(iq);
    }
    tern_slot_release(p->slot);
    free(p->id); free(p->from); free(p);
}

static tern_event_result slow(const tern_stanza_event *ev, void *data)
{
    pending *p = calloc(1, sizeof *p);
    p->slot = tern_session_reserve(ev->origin);
    p->id = xstrdup(xml_attr(ev->stanza, "id"));
    p->from = xstrdup(ev->from->full);
    tern_timer_add(data, 1000, false, answer, p);
    return TERN_HANDLED;
}

static tern_event_result stuck(const tern_stanza_event *ev, void *data)
{
    (void)data;
    tern_session_reserve(ev->origin);
    return TERN_HANDLED;
}

static int example_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state; (void)err; (void)err_len;
    tern_hook_iq(host, "set", "host", "urn:example:slots", "slow", slow, host);
    tern_hook_iq(host, "set", "host", "urn:example:slots", "stuck", stuck, host);
    return 0;
}

TERN_MODULE("example", example_load, NULL);
"""


def test_output_waits_behind_a_slot_and_a_stuck_one_goes_with_its_module(tmp_path, pki):
    """tern_session_reserve(): the answer to a later stanza (a ping) and a message from
    someone else wait behind a slow answer, and come out after it in the order they were
    produced; a slot its module never releases is released when the module unloads, and the
    held output flows again."""
    folder = build_module(tmp_path, text=SLOTS)
    server = server_with(tmp_path, pki, folder, "disco ping example")
    server.add_user("alice@localhost", "pw-a")
    server.add_user("bob@localhost", "pw-b")
    server.start()
    alice = RawStream(server)
    alice.login("alice", "pw-a", "phone")
    bob = RawStream(server)
    bob.login("bob", "pw-b", "desk")
    alice.send("<iq type='set' id='s1' to='localhost'><slow xmlns='urn:example:slots'/></iq>"
               "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    time.sleep(0.3)  # alice's stanzas are handled; the slow answer is due in a second
    bob.send("<message to='alice@localhost/phone' id='m1'><body>hi</body></message>")
    # Without the slot, the pong and bob's message would come before the slow answer; with it,
    # everything comes in the order it was produced.
    got = alice.read_until(rb"id='m1'")
    order = [got.string.find(x) for x in (b"id='s1'", b"id='p1'", b"id='m1'")]
    assert -1 not in order and order == sorted(order), got.string

    alice.send("<iq type='set' id='s2' to='localhost'><stuck xmlns='urn:example:slots'/></iq>")
    alice.send("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    with pytest.raises(AssertionError, match="timed out"):
        alice.read_until(rb"id='p2'", timeout=1)  # held behind the stuck slot
    server.ternctl("module", "unload", "localhost", "example")
    alice.read_until(rb"id='p2'")
    bob.close()
    alice.close()
    server.check_clean_exit()


# Also tries to serve a host and its own domain again: both refused, and logged.
DOMAIN = ECHO_MODULE.replace("NAME", "example").replace("DOMAIN", "ECHO.localhost").replace(
    "EXTRA", 'tern_serve_domain(host, "localhost", "not mine", echo, NULL);\n'
             '    tern_serve_domain(host, "echo.localhost", "twice", echo, NULL);')


def test_a_module_serves_a_domain_of_its_own(tmp_path, pki):
    """tern_serve_domain(): messages to JIDs at the domain reach the module, its answers from
    that domain reach the user, disco#items of the host lists it; a host or a domain served
    already is refused; unloaded, the domain is gone."""
    folder = build_module(tmp_path, text=DOMAIN)
    server = server_with(tmp_path, pki, folder, "disco ping example")
    server.add_user("alice@localhost", "pw-a")
    server.start()
    server.wait_log("cannot serve localhost: it is a host")
    server.wait_log("cannot serve echo.localhost: it is served already")
    alice = RawStream(server)
    alice.login("alice", "pw-a", "phone")
    alice.send("<message to='bot@echo.localhost/x' id='e1'><body>hello</body></message>")
    m = alice.read_until(rb"<message[^>]*from='bot@echo.localhost/x'[^>]*>.*?</message>")
    assert b"<body>hello</body>" in m.group(0) and b"to='alice@localhost/phone'" in m.group(0)
    alice.send("<iq type='get' id='d1' to='localhost'>"
               "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
    items = alice.read_until(rb"<iq[^>]*id='d1'.*?</iq>").group(0)
    assert b"<item jid='echo.localhost' name='Echo'/>" in items, items

    server.ternctl("module", "unload", "localhost", "example")
    server.wait_log("no longer serving echo.localhost")
    alice.send("<message to='bot@echo.localhost' id='e2'><body>anyone?</body></message>")
    err = alice.read_until(rb"<message[^>]*id='e2'.*?</message>").group(0)
    assert b"type='error'" in err and b"remote-server-not-found" in err, err
    alice.send("<iq type='get' id='d2' to='localhost'>"
               "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
    items = alice.read_until(rb"<iq[^>]*id='d2'.*?(?:</iq>|/>)").group(0)
    assert b"echo.localhost" not in items, items
    alice.close()
    server.check_clean_exit()
