"""The web client in a real browser (issue 5): Converse.js, served by tern from [http]
static_dir with the page of etc/webclient/index.html, runs in headless Chromium (Debian's
/usr/bin/chromium, driven by npm's playwright-core through tests/browser/chat.mjs). Alice logs
in there over HTTPS with SCRAM, sees Bob in her roster as online, and chats with Bob, who uses
slixmpp over ordinary TCP (STARTTLS): his message shows in her chat window and her answer
reaches him. The test saves a screenshot of the chat.

The browser trusts the test CA the way a person's browser would trust a real one: it is added
to the NSS database of a HOME made for the test (Chromium on Linux reads user trust anchors from
~/.pki/nssdb), so the page's certificate is checked, host name included.

The npm packages (pinned in tests/browser/package.json and package-lock.json) are installed
by `npm ci` on first use; node_modules is never committed.

TRANSPORTS lists the ways the page can reach tern; each is one run of the same story."""
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tern_harness import TernServer, connect, disconnect, make_client, run
from test_roster import ImClient
from test_subscriptions import befriend

SOURCE = Path(__file__).resolve().parents[1] / "browser"    # package.json, chat.mjs


def browser_folder():
    """tests/browser, or a writable copy of it when the source tree is read-only (as under
    `make distcheck`): npm ci writes node_modules next to package.json."""
    if os.access(SOURCE, os.W_OK):
        return SOURCE
    copy = Path(tempfile.gettempdir()) / "tern-browser-npm"
    copy.mkdir(exist_ok=True)
    for name in ("package.json", "package-lock.json", ".npmrc", "chat.mjs"):
        if (SOURCE / name).exists():
            shutil.copy2(SOURCE / name, copy / name)
    return copy


BROWSER = browser_folder()
PAGE = Path(__file__).resolve().parents[2] / "etc" / "webclient" / "index.html"
CHROMIUM = "/usr/bin/chromium"
STEP_TIMEOUT = 20        # seconds for each step the browser reaches (the driver's waits)
LINE_TIMEOUT = STEP_TIMEOUT + 10   # ours: longer, so the driver reports its own timeouts
NPM_TIMEOUT = 300
MODULES = "disco ping version time roster presence offline last blocking carbons vcard private"
SCREENSHOTS = Path(tempfile.gettempdir()) / "tern-browser-test"

# transport → (module, URL scheme and path of its endpoint). The page picks it with
# ?transport=; tests/browser/chat.mjs records the traffic of either.
TRANSPORTS = {
    "websocket": ("websocket", "wss", "/xmpp-websocket"),
    "bosh": ("bosh", "https", "/http-bind"),
}


# ---------------------------------------------------------------- the web client's files


def npm_packages():
    """tests/browser/node_modules, installed with `npm ci` unless it matches package-lock.json."""
    modules = BROWSER / "node_modules"
    installed = modules / ".package-lock.json"   # npm's record of what it installed
    lock = BROWSER / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        if not shutil.which("npm") or not shutil.which("node"):
            pytest.fail("the browser test needs Node.js and npm (node --version)")
        # --ignore-scripts: only files are needed (Converse's dist/ is prebuilt).
        proc = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                              cwd=BROWSER, capture_output=True, text=True, timeout=NPM_TIMEOUT)
        if proc.returncode != 0:
            pytest.fail(f"npm ci failed in {BROWSER}:\n{proc.stdout}\n{proc.stderr}")
    return modules


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    """A static_dir as doc/web-client.md sets it up: the page and Converse's dist/."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (./bootstrap does)")
    modules = npm_packages()
    folder = tmp_path_factory.mktemp("www")
    shutil.copy(PAGE, folder / "index.html")
    shutil.copytree(modules / "converse.js" / "dist", folder / "dist",
                    ignore=shutil.ignore_patterns("*.map"))
    return folder


def browser_home(folder: Path, ca: Path):
    """A HOME whose NSS database trusts the test CA for web sites (-t C,,)."""
    if not shutil.which("certutil"):
        pytest.fail("certutil is missing: apt-get install libnss3-tools (./bootstrap does)")
    nssdb = folder / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    for args in (["-N", "--empty-password"],
                 ["-A", "-t", "C,,", "-n", "tern test CA", "-i", str(ca)]):
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", *args], check=True,
                       capture_output=True, timeout=30)
    return folder


# ---------------------------------------------------------------- the story


async def lines_of(proc, log):
    """Yields the driver's stdout lines as they come, each within LINE_TIMEOUT."""
    while True:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(f"the browser driver said nothing for {LINE_TIMEOUT}s; "
                                 f"so far: {log}") from None
        if not line:
            return
        text = line.decode().rstrip("\n")
        log.append(text)
        yield text


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_a_browser_user_chats_with_a_tcp_user(tmp_path, pki, www, transport, capsys):
    module, scheme, endpoint = TRANSPORTS[transport]
    srv = TernServer(tmp_path / "tern", pki, modules=f"{MODULES} {module}", http=True,
                     http_extra=f"static_dir = {www}\n")
    for user in ("alice", "bob"):
        srv.add_user(f"{user}@localhost", "secret")
    srv.start()
    try:
        # Friends through the protocol (subscription both), and the names in their rosters.
        befriend(srv, "alice", "bob")
        for user, friend, name in (("alice", "bob", "Bob"), ("bob", "alice", "Alice")):
            c = ImClient(srv, user, "setup")
            reply = c.roster_set(f"<item jid='{friend}@localhost' name='{name}'/>")
            assert reply.get("type") == "result"
            c.close()
        result = run(story(srv, tmp_path, transport), timeout=90)
    finally:
        srv.check_clean_exit()

    steps, transcript, bob_saw = result
    # The roster showed Bob, its only contact, by his roster name, online.
    roster = json.loads(steps["roster"])
    assert roster == {"name": "Bob", "status": "This contact is online",
                      "contacts": ["bob@localhost"]}, roster

    # What went over the wire: one connection of the chosen transport to tern's endpoint,
    # SCRAM (Converse's Strophe.js has no -PLUS), success, a bound resource.
    xmpp = transcript["xmpp"]
    used = {t["transport"] for t in xmpp}
    assert used == {transport}, used
    opened = [t["data"] for t in xmpp if t["dir"] == "open"]
    assert opened == [f"{scheme}://localhost:{srv.https_port}{endpoint}"], opened
    sent = "".join(t["data"] for t in xmpp if t["dir"] == "out")
    received = "".join(t["data"] for t in xmpp if t["dir"] == "in")
    mechanisms = re.findall(r"<auth [^>]*mechanism=[\"']([^\"']+)", sent)
    assert mechanisms == ["SCRAM-SHA-256"], sent[:3000]
    assert "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'" in received, received[:3000]
    browser_jid = bob_saw["message_from"]
    assert browser_jid.startswith("alice@localhost/") and f"<jid>{browser_jid}</jid>" in received

    # Bob saw Alice come online from the browser, and got her answer there.
    assert bob_saw["presence_from"] == browser_jid
    assert bob_saw["body"] == "Hello Bob, this is Alice in a browser!"
    assert bob_saw["type"] == "chat"

    # The screenshot: a PNG, also copied to a stable place, named in the output.
    shot = Path(steps["replied"])
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    SCREENSHOTS.mkdir(exist_ok=True)
    stable = SCREENSHOTS / f"chat-{transport}.png"
    shutil.copy(shot, stable)
    with capsys.disabled():
        print(f"\nbrowser test ({transport}): screenshot {stable}")


async def story(srv, tmp_path, transport):
    """Bob on TCP and Alice in the browser; returns (steps, transcript, what Bob saw)."""
    loop = asyncio.get_running_loop()
    bob = await connect(make_client("bob@localhost/laptop", "secret", srv), srv, presence=False)
    alice_online = loop.create_future()
    reply = loop.create_future()

    def on_presence(p):
        if p["from"].bare == "alice@localhost" and p["type"] != "unavailable" \
                and not alice_online.done():
            alice_online.set_result(str(p["from"]))

    def on_message(m):
        if m["from"].bare == "alice@localhost" and m["body"] and not reply.done():
            reply.set_result(m)
    bob.add_event_handler("presence_available", on_presence)
    bob.add_event_handler("message", on_message)
    bob.send_presence(pstatus="At my desk (TCP)")

    profile = tmp_path / "chromium-profile"
    home = browser_home(tmp_path / "home", srv.pki / "ca.crt")
    options = {
        "url": f"https://localhost:{srv.https_port}/?transport={transport}",
        "jid": "alice@localhost", "password": "secret",
        "contact": "bob@localhost",
        "expect_text": "Hi Alice, Bob here on TCP.",
        "reply_text": "Hello Bob, this is Alice in a browser!",
        "screenshot": str(tmp_path / f"chat-{transport}.png"),
        "transcript": str(tmp_path / "transcript.json"),
        "profile_dir": str(profile),
        "chromium": CHROMIUM,
        "env": {"HOME": str(home)},
        "timeout_ms": STEP_TIMEOUT * 1000,
    }
    errors = tmp_path / "chat.stderr"
    with open(errors, "wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            "node", str(BROWSER / "chat.mjs"), json.dumps(options), cwd=BROWSER,
            stdout=asyncio.subprocess.PIPE, stderr=stderr)
    log, steps = [], {}
    try:
        async for line in lines_of(proc, log):
            if line.startswith("STEP "):
                name, _, detail = line[5:].partition(" ")
                steps[name] = detail
                if name == "chat-open":
                    bob.send_message(mto="alice@localhost", mbody=options["expect_text"],
                                     mtype="chat")
            elif line.startswith("FAILED"):
                break
        rc = await asyncio.wait_for(proc.wait(), STEP_TIMEOUT)
        assert rc == 0 and "replied" in steps, (
            f"the browser did not finish (exit {rc}); steps: {log}\n"
            f"{errors.read_text(errors='replace')[-4000:]}\n"
            f"screenshot: {options['screenshot']}\nlog: {srv.log_path}")
        m = await asyncio.wait_for(reply, STEP_TIMEOUT)
        presence_from = await asyncio.wait_for(alice_online, STEP_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await disconnect(bob)
    transcript = json.loads(Path(options["transcript"]).read_text())
    return steps, transcript, {"message_from": str(m["from"]), "body": m["body"],
                               "type": m["type"], "presence_from": presence_from}
