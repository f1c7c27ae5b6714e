"""The web client in a real browser (issue 5): Converse.js, served by tern from [http]
static_dir with the page of etc/webclient/index.html, runs in headless Chromium (Debian's
/usr/bin/chromium, driven through Debian's chromium-driver by python3-selenium, both installed
by ./bootstrap). Alice logs in there over HTTPS with SCRAM, sees Bob in her roster as online,
and chats with Bob, who uses slixmpp over ordinary TCP (STARTTLS): his message shows in her
chat window and her answer reaches him. The test saves a screenshot of the chat.

The browser trusts the test CA the way a person's browser would trust a real one: it is added
to the NSS database of a HOME made for the test (Chromium on Linux reads user trust anchors from
~/.pki/nssdb), so the page's certificate is checked, host name included.

What went over the wire is read from Chromium's own network events (chromedriver's
performance log): the WebSocket frames, or the bodies POSTed to /http-bind and their answers.

Converse.js is pinned in tests/browser/package.json and package-lock.json (version and sha512);
on first use `npm pack` fetches its archive from the npm registry into /tmp/tern-browser-npm
(Debian 12's nodejs 18 and npm 9 are enough), the test checks it against the pinned sha512 and
unpacks its dist/ into the static_dir.

TRANSPORTS lists the ways the page can reach tern; each is one run of the same story."""
import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tern_harness import TernServer, connect, disconnect, make_client, run
from test_roster import ImClient
from test_subscriptions import befriend

BROWSER = Path(__file__).resolve().parents[1] / "browser"   # package.json, package-lock.json, .npmrc


PAGE = Path(__file__).resolve().parents[2] / "etc" / "webclient" / "index.html"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"     # Debian's chromium-driver, Chromium's own version
STEP_TIMEOUT = 20        # seconds for each step the browser reaches
NPM_TIMEOUT = 300
NPM_CACHE = Path(tempfile.gettempdir()) / "tern-browser-npm"   # the fetched archive
MODULES = "disco ping version time roster presence offline last blocking carbons vcard private"
SCREENSHOTS = Path(tempfile.gettempdir()) / "tern-browser-test"

# transport → (module, URL scheme and path of its endpoint). The page picks it with
# ?transport=; Recorder records the traffic of either.
TRANSPORTS = {
    "websocket": ("websocket", "wss", "/xmpp-websocket"),
    "bosh": ("bosh", "https", "/http-bind"),
}


# ---------------------------------------------------------------- the web client's files


def converse_archive():
    """Converse.js's npm archive (converse.js-VERSION.tgz), fetched with `npm pack` and checked
    against the version and sha512 that tests/browser/package-lock.json pins. `npm pack` only
    downloads the package's own archive, which is all the page needs (its dependencies are
    bundled into dist/), and works with Debian 12's npm 9; `npm ci` does not there: npm 9
    cannot install converse.js 14 (its package.json names a file: dependency, src/log, that
    npm 9 looks for before unpacking)."""
    lock = json.loads((BROWSER / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/converse.js"]
    algorithm, _, digest = pinned["integrity"].partition("-")
    archive = NPM_CACHE / f"converse.js-{pinned['version']}.tgz"

    def matches():
        if not archive.exists():
            return False
        data = hashlib.new(algorithm, archive.read_bytes()).digest()
        return base64.b64encode(data).decode() == digest
    if not matches():
        if not shutil.which("npm") or not shutil.which("node"):
            pytest.fail("the browser test needs Node.js and npm for Converse.js: "
                        "apt-get install nodejs npm (./bootstrap does)")
        NPM_CACHE.mkdir(exist_ok=True)
        archive.unlink(missing_ok=True)
        # BROWSER's .npmrc: no audit, no funding messages, no update check.
        proc = subprocess.run(["npm", "pack", f"converse.js@{pinned['version']}",
                               "--pack-destination", str(NPM_CACHE)],
                              cwd=BROWSER, capture_output=True, text=True, timeout=NPM_TIMEOUT)
        if proc.returncode != 0:
            pytest.fail(f"npm pack converse.js failed:\n{proc.stdout}\n{proc.stderr}")
        if not matches():
            pytest.fail(f"{archive} does not match the {algorithm} that package-lock.json pins")
    return archive


def unpack_dist(archive: Path, folder: Path):
    """package/dist/ of the archive into folder/dist, without the *.map files (debugging
    only). Only regular files, only below dist/: the archive's names are not trusted."""
    with tarfile.open(archive) as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if not member.isfile() or name.parts[:2] != ("package", "dist") \
                    or ".." in name.parts or name.suffix == ".map":
                continue
            target = folder.joinpath(*name.parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    """A static_dir as doc/web-client.md sets it up: the page and Converse's dist/."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: apt-get install {package} (./bootstrap does)")
    archive = converse_archive()
    folder = tmp_path_factory.mktemp("www")
    shutil.copy(PAGE, folder / "index.html")
    unpack_dist(archive, folder)
    assert (folder / "dist" / "converse.min.js").is_file(), f"no dist/converse.min.js in {archive}"
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


# ---------------------------------------------------------------- the browser


def start_browser(tmp_path: Path, home: Path):
    """Headless Chromium with a fresh profile, its network events logged (performance log)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The machine reaches nothing but loopback: no background connections, no updates.
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # chromedriver starts Chromium with its own environment: HOME is where the NSS db is.
    service = Service(CHROMEDRIVER, log_path=str(tmp_path / "chromedriver.log"),
                      env={**os.environ, "HOME": str(home)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(STEP_TIMEOUT)
    return driver


class Recorder:
    """The page's XMPP traffic from Chromium's network events, whatever the transport:
    WebSocket frames, or the BOSH bodies POSTed to /http-bind and the answers (read back
    from the browser with Network.getResponseBody). Call take() now and then: chromedriver
    hands each event out once."""

    def __init__(self, driver):
        self.driver = driver
        self.xmpp = []            # {"dir": open|out|in, "transport", "data"}
        self.console = []
        self.bosh_requests = set()
        self.bosh_urls = set()

    def add(self, direction, transport, data):
        self.xmpp.append({"dir": direction, "transport": transport, "data": str(data)})

    def take(self):
        for entry in self.driver.get_log("performance"):
            event = json.loads(entry["message"])["message"]
            method, params = event["method"], event.get("params", {})
            if method == "Network.webSocketCreated":
                self.add("open", "websocket", params["url"])
            elif method == "Network.webSocketFrameSent":
                self.add("out", "websocket", params["response"]["payloadData"])
            elif method == "Network.webSocketFrameReceived":
                self.add("in", "websocket", params["response"]["payloadData"])
            elif method == "Network.requestWillBeSent":
                request = params["request"]
                if request["method"] != "POST" or not request["url"].endswith("/http-bind"):
                    continue
                if request["url"] not in self.bosh_urls:
                    self.bosh_urls.add(request["url"])
                    self.add("open", "bosh", request["url"])
                body = request.get("postData")
                if body is None and request.get("hasPostData"):
                    body = self.cdp("Network.getRequestPostData",
                                    requestId=params["requestId"]).get("postData", "")
                self.add("out", "bosh", body or "")
                self.bosh_requests.add(params["requestId"])
            elif method == "Network.loadingFinished" and params["requestId"] in self.bosh_requests:
                self.add("in", "bosh", self.cdp("Network.getResponseBody",
                                                requestId=params["requestId"]).get("body", ""))
            elif method == "Network.loadingFailed":
                self.console.append(f"requestfailed: {params.get('errorText')}")
        self.console += [f"{e['level']}: {e['message']}" for e in self.driver.get_log("browser")]

    def cdp(self, command, **args):
        try:
            return self.driver.execute_cdp_cmd(command, args)
        except WebDriverException as e:       # the request or page went away meanwhile
            self.console.append(f"{command}: {e.msg}")
            return {}


def wait_for(driver, what, css, within=None, text=None):
    """The visible element for css (inside within, holding text), within STEP_TIMEOUT."""
    def found(_):
        for element in (within or driver).find_elements(By.CSS_SELECTOR, css):
            if element.is_displayed() and (text is None or text in element.text):
                return element
        return False
    try:
        return WebDriverWait(driver, STEP_TIMEOUT, poll_frequency=0.2).until(found)
    except TimeoutException:
        raise AssertionError(f"the browser did not show {what} ({css}) "
                             f"within {STEP_TIMEOUT}s") from None


class Alice:
    """Alice's side of the story in the browser, one method per step (each blocks until the
    page shows it; the story runs them in a thread so Bob's client goes on meanwhile)."""

    def __init__(self, driver, contact):
        self.driver = driver
        self.contact = contact
        self.chat = None

    def log_in(self, url, jid, password):
        self.driver.get(url)
        wait_for(self.driver, "the login form", "#converse-login-jid").send_keys(jid)
        self.driver.find_element(By.CSS_SELECTOR, "#converse-login-password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR,
                                 "converse-login-form button[type=submit]").click()

    def roster(self):
        """The contact, by its roster name, shown as online (its presence)."""
        link = f'a.open-chat[data-jid="{self.contact}"]'
        wait_for(self.driver, "the contact online", f"{link} .contact-name--online")
        contact = self.driver.find_element(By.CSS_SELECTOR, link)
        return {
            "name": contact.find_element(By.CSS_SELECTOR, ".contact-name").text.strip(),
            "status": contact.find_element(By.CSS_SELECTOR, "converse-icon.chat-status")
                             .get_attribute("title"),
            "contacts": [a.get_attribute("data-jid") for a in
                         self.driver.find_elements(By.CSS_SELECTOR, "a.open-chat[data-jid]")],
            "element": contact,
        }

    def open_chat(self, contact_link):
        contact_link.click()
        self.chat = wait_for(self.driver, "the chat", f'converse-chat[jid="{self.contact}"]')
        return wait_for(self.driver, "the chat's text field", "textarea.chat-textarea",
                        within=self.chat)

    def message_shown(self, text):
        return wait_for(self.driver, f"the message {text!r}", ".chat-msg__text",
                        within=self.chat, text=text)

    def answer(self, textarea, text, screenshot):
        textarea.send_keys(text)
        textarea.send_keys(Keys.ENTER)
        self.message_shown(text)
        time.sleep(0.3)         # the chat scrolls to the new message; then the picture
        assert self.driver.save_screenshot(screenshot)


# ---------------------------------------------------------------- the story


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
        result = run(story(srv, tmp_path, transport), timeout=120)
    finally:
        srv.check_clean_exit()

    roster, screenshot, transcript, bob_saw = result
    # The roster showed Bob, its only contact, by his roster name, online.
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
    shot = Path(screenshot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    SCREENSHOTS.mkdir(exist_ok=True)
    stable = SCREENSHOTS / f"chat-{transport}.png"
    shutil.copy(shot, stable)
    with capsys.disabled():
        print(f"\nbrowser test ({transport}): screenshot {stable}")


async def story(srv, tmp_path, transport):
    """Bob on TCP and Alice in the browser; returns (roster, screenshot, transcript, what Bob
    saw). A failing step leaves a screenshot of that moment and the transcript in tmp_path."""
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

    home = browser_home(tmp_path / "home", srv.pki / "ca.crt")
    bob_says = "Hi Alice, Bob here on TCP."
    alice_says = "Hello Bob, this is Alice in a browser!"
    screenshot = str(tmp_path / f"chat-{transport}.png")
    transcript = tmp_path / "transcript.json"
    driver = await asyncio.to_thread(start_browser, tmp_path, home)
    recorder = Recorder(driver)
    alice = Alice(driver, "bob@localhost")
    step = asyncio.to_thread
    try:
        await step(alice.log_in, f"https://localhost:{srv.https_port}/?transport={transport}",
                   "alice@localhost", "secret")
        roster = await step(alice.roster)
        textarea = await step(alice.open_chat, roster.pop("element"))
        await step(recorder.take)
        bob.send_message(mto="alice@localhost", mbody=bob_says, mtype="chat")
        await step(alice.message_shown, bob_says)
        await step(alice.answer, textarea, alice_says, screenshot)
        m = await asyncio.wait_for(reply, STEP_TIMEOUT)
        presence_from = await asyncio.wait_for(alice_online, STEP_TIMEOUT)
        await step(recorder.take)
    except BaseException:
        try:
            await step(driver.save_screenshot, screenshot)
            await step(recorder.take)
        except WebDriverException:
            pass
        print(f"failure screenshot: {screenshot}\ntranscript: {transcript}\n"
              f"console: {recorder.console[-20:]}\nlog: {srv.log_path}")
        raise
    finally:
        transcript.write_text(json.dumps({"xmpp": recorder.xmpp, "console": recorder.console},
                                         indent=1))
        await step(driver.quit)
        await disconnect(bob)
    return roster, screenshot, {"xmpp": recorder.xmpp}, {
        "message_from": str(m["from"]), "body": m["body"], "type": m["type"],
        "presence_from": presence_from}
