"""A third party writes a module against the installed headers (tern/module.h), as
doc/modules.md describes: it is compiled here with the system's C compiler, put in a module
folder beside the real modules, and loaded by a real ternd.

- A misspelt event name is a load error that names it, so a hook that would never fire does
  not go unnoticed.
- Stream elements (tern_hook_element) reach the module that claims their namespace, also when
  the hook was added after load (from a timer), and are answered on the stream.
- A delivery hook (tern_hook_deliver) sees every stanza before it reaches a session and may
  keep it back."""
import subprocess

import pytest

from tern_harness import BUILD, MODULES, RawStream, TernServer

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


def build_module(tmp_path, extra=""):
    """Compiles the example into a module folder that also holds every real module."""
    folder = tmp_path / "modules"
    folder.mkdir(exist_ok=True)
    for so in MODULES.glob("*.so"):
        if not (folder / so.name).exists():
            (folder / so.name).symlink_to(so)
    source = tmp_path / "example.c"
    source.write_text(EXAMPLE.replace("EXTRA", extra))
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    f"-I{BUILD / 'src'}", "-o", str(folder / "example.so"), str(source)],
                   check=True, timeout=60)
    return folder


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
