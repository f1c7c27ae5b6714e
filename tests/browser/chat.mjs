// chat.mjs — drives the web client (etc/webclient/index.html with Converse.js) in headless
// Chromium for tests/integration/test_browser.py, as a person would: log in, wait for the
// contact to show as online, open the chat, wait for the contact's message, answer it, take a
// screenshot.
//
//   node chat.mjs '{"url": ..., "jid": ..., ...}'     (the fields are read below)
//
// It prints one line per step reached ("STEP roster {...}", "STEP chat-open", "STEP received",
// "STEP replied <screenshot>") so the test can act at the right moment (it sends its message
// after "chat-open"), writes the page's XMPP traffic (WebSocket frames, or BOSH bodies to
// /http-bind) and console to `transcript` as JSON, and exits 0, or 1 after printing
// "FAILED <reason>" (with a screenshot of that moment). Every wait has a timeout.
//
// playwright-core cannot download its own browser here: it drives Debian's /usr/bin/chromium.
import fs from "node:fs";
import { chromium } from "playwright-core";

const opt = JSON.parse(process.argv[2]);
const timeout = opt.timeout_ms ?? 15000;
const xmpp = [];
const consoleLines = [];

function step(name, detail = "") {
    console.log(`STEP ${name}${detail ? " " + detail : ""}`);
}

function isBosh(url) {
    return new URL(url).pathname === "/http-bind";
}

// Records the page's XMPP traffic, whatever the transport, and what it logs.
function record(page) {
    const add = (dir, transport, data) => xmpp.push({ dir, transport, data: String(data) });
    page.on("websocket", (ws) => {
        add("open", "websocket", ws.url());
        ws.on("framesent", (f) => add("out", "websocket", f.payload));
        ws.on("framereceived", (f) => add("in", "websocket", f.payload));
    });
    const boshUrls = new Set();
    page.on("request", (req) => {
        if (!isBosh(req.url()) || req.method() !== "POST") return;
        if (!boshUrls.has(req.url())) {
            boshUrls.add(req.url());
            add("open", "bosh", req.url());
        }
        add("out", "bosh", req.postData());
    });
    page.on("response", async (res) => {
        if (!isBosh(res.url()) || res.request().method() !== "POST") return;
        try {
            add("in", "bosh", await res.text());
        } catch {
            // the page went away before the body arrived
        }
    });
    page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
    page.on("pageerror", (err) => consoleLines.push(`pageerror: ${err.message}`));
    page.on("requestfailed", (req) =>
        consoleLines.push(`requestfailed: ${req.url()} ${req.failure()?.errorText}`));
}

const context = await chromium.launchPersistentContext(opt.profile_dir, {
    executablePath: opt.chromium ?? "/usr/bin/chromium",
    headless: true,
    // The machine reaches nothing but loopback: no background connections, no updates.
    args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ...(opt.chromium_args ?? []),
    ],
    env: { ...process.env, ...(opt.env ?? {}) },
    viewport: { width: 1280, height: 800 },
    timeout,
});
context.setDefaultTimeout(timeout);
const page = context.pages()[0] ?? (await context.newPage());
record(page);

let failed = false;
try {
    await page.goto(opt.url, { waitUntil: "load" });
    await page.locator("#converse-login-jid").fill(opt.jid);
    await page.locator("#converse-login-password").fill(opt.password);
    await page.locator("converse-login-form button[type=submit]").click();
    step("login-sent");

    // The roster: the contact, by its roster name, shown as online (its presence).
    const contact = page.locator(`a.open-chat[data-jid="${opt.contact}"]`);
    await contact.locator(".contact-name--online").waitFor({ state: "visible" });
    const name = (await contact.locator(".contact-name").innerText()).trim();
    const status = await contact.locator("converse-icon.chat-status").getAttribute("title");
    const contacts = await page.locator("a.open-chat[data-jid]")
        .evaluateAll((links) => links.map((a) => a.dataset.jid));
    step("roster", JSON.stringify({ name, status, contacts }));

    await contact.click();
    const chat = page.locator(`converse-chat[jid="${opt.contact}"]`);
    const textarea = chat.locator("textarea.chat-textarea");
    await textarea.waitFor({ state: "visible" });
    step("chat-open");

    // The contact's message, which the test sends once the chat is open.
    await chat.locator(".chat-msg__text", { hasText: opt.expect_text })
        .waitFor({ state: "visible" });
    step("received");

    await textarea.fill(opt.reply_text);
    await textarea.press("Enter");
    await chat.locator(".chat-msg__text", { hasText: opt.reply_text })
        .waitFor({ state: "visible" });
    await page.waitForTimeout(300); // the chat scrolls to the new message; then the picture
    await page.screenshot({ path: opt.screenshot });
    step("replied", opt.screenshot);
} catch (err) {
    failed = true;
    console.log(`FAILED ${String(err.message).split("\n")[0]}`);
    console.error(err);
    try {
        await page.screenshot({ path: opt.screenshot, timeout: 5000 });
        console.log(`failure screenshot: ${opt.screenshot}`);
    } catch {
        // no picture either
    }
} finally {
    fs.writeFileSync(opt.transcript, JSON.stringify({ xmpp, console: consoleLines }, null, 1));
    await context.close();
}
process.exit(failed ? 1 : 0);
