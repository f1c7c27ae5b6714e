"""An operator administers the server from a client (XEP-0133, the admin and announce modules
over the adhoc module) and from the shell (ternctl): accounts added, disabled, re-enabled,
deleted, their sessions ended and passwords changed; users counted and listed; announcements,
the message of the day and the welcome message (announce module); configuration reload,
statistics, restart and shutdown."""
import asyncio
import copy
import datetime
import os
import re
import socket
import stat

import pytest
from slixmpp.exceptions import IqError

from conftest import PASSWORDS
from tern_harness import RawStream, TernServer, connect, disconnect, make_client, run

ADMIN = "http://jabber.org/protocol/admin#"
TERN = "urn:x-tern:admin#"
MODULES = "disco ping roster presence offline adhoc admin announce"
PLUGINS = ["xep_0030", "xep_0004", "xep_0050", "xep_0133"]


def start(folder, pki, users=(), modules=MODULES):
    srv = TernServer(folder, pki, modules=modules)
    for user, password in PASSWORDS.items():
        srv.add_user(f"{user}@localhost", password)
    for user in users:
        srv.add_user(f"{user}@localhost", f"{user}-secret")
    return srv.start()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    s = start(tmp_path_factory.mktemp("admin"), pki)
    yield s
    s.check_clean_exit()


@pytest.fixture
def own_srv(tmp_path, pki):
    """A server of the test's own, for tests that count users or stop the server."""
    holder = {}

    def make(users=(), modules=MODULES):
        holder["srv"] = start(tmp_path, pki, users, modules)
        return holder["srv"]
    yield make
    s = holder.get("srv")
    if s and s.proc and s.proc.poll() is None:
        s.check_clean_exit()


def password_of(user):
    return PASSWORDS.get(user, f"{user}-secret")


def client(srv, user, resource=None, password=None):
    jid = f"{user}@localhost" + (f"/{resource}" if resource else "")
    return make_client(jid, password or password_of(user), srv, plugins=PLUGINS)


async def login(srv, user, resource=None):
    return await connect(client(srv, user, resource), srv)


def fill(reply, **values):
    form = type(reply["command"]["form"])(xml=copy.deepcopy(reply["command"]["form"].xml))
    form.set_values(values)
    form["type"] = "submit"
    return form


async def command(c, node, **values):
    """Runs a command as a client would: execute, and when a form comes, fill it in and
    complete it. Returns the last reply."""
    xep50 = c["xep_0050"]
    reply = await xep50.send_command("localhost", node, timeout=5)
    if reply["command"]["status"] == "completed":
        return reply
    assert reply["command"]["form"]["type"] == "form"
    return await xep50.send_command("localhost", node, action="complete", timeout=5,
                                    sessionid=reply["command"]["sessionid"],
                                    payload=fill(reply, **values))


def result(reply):
    assert reply["command"]["status"] == "completed", reply
    return {var: f["value"] for var, f in reply["command"]["form"].get_fields().items()}


def notes(reply):
    return reply["command"]["notes"]


def add(srv, user):
    srv.add_user(f"{user}@localhost", password_of(user))


def can_log_in(srv, user, password=None):
    s = RawStream(srv)
    try:
        s.secure()
        return s.auth_plain(user, password or password_of(user)).startswith("<success")
    finally:
        s.close()


def raw_session(srv, user, resource):
    s = RawStream(srv)
    s.login(user, password_of(user), resource)
    return s


def inbox(c):
    queue = asyncio.Queue()
    c.add_event_handler("message", queue.put_nowait)
    return queue


async def next_message(queue, timeout=5):
    return await asyncio.wait_for(queue.get(), timeout)


async def nothing_in(queue, wait=0.5):
    await asyncio.sleep(wait)
    return queue.empty()


def accounts(srv):
    return srv.ternctl("user", "list", "localhost").stdout.split()


def parse_stamp(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------- accounts


def test_add_user_and_the_mistakes_it_names(srv):
    async def body():
        admin = await login(srv, "admin")
        reply = await command(admin, ADMIN + "add-user", accountjid="Frank@LocalHost",
                              password="f-pw", **{"password-verify": "f-pw"})
        assert reply["command"]["status"] == "completed"
        assert notes(reply) == [("info", "frank@localhost created")]
        assert "frank@localhost" in accounts(srv)
        assert can_log_in(srv, "frank", "f-pw")

        for jid, password, verify, note in (
                ("gina@localhost", "one", "two", "The two passwords do not match"),
                ("alice@localhost", "x", "x", "alice@localhost: account already exists"),
                ("gina@example.test", "x", "x",
                 "'gina@example.test' is not on this server (localhost)"),
                ("gina@localhost/phone", "x", "x",
                 "'gina@localhost/phone' has a resource: give the bare JID gina@localhost"),
                ("localhost", "x", "x",
                 "'localhost' is not a user's JID (expected user@localhost)"),
        ):
            reply = await command(admin, ADMIN + "add-user", accountjid=jid, password=password,
                                  **{"password-verify": verify})
            assert reply["command"]["status"] == "executing", jid
            assert notes(reply) == [("error", note)]
            await admin["xep_0050"].send_command("localhost", ADMIN + "add-user",
                                                 action="cancel", timeout=5,
                                                 sessionid=reply["command"]["sessionid"])
        assert "gina@localhost" not in accounts(srv)
        await disconnect(admin)
    run(body())


def test_change_user_password(srv):
    add(srv, "hal")

    async def body():
        admin = await login(srv, "admin")
        reply = await command(admin, ADMIN + "change-user-password", accountjid="hal@localhost",
                              password="new-hal")
        assert notes(reply) == [("info", "hal@localhost has a new password")]
        assert not can_log_in(srv, "hal")
        assert can_log_in(srv, "hal", "new-hal")
        reply = await command(admin, ADMIN + "change-user-password",
                              accountjid="nobody@localhost", password="x")
        assert notes(reply) == [("error", "'nobody@localhost' is not an account of this server")]
        await disconnect(admin)
    run(body())


def test_a_disabled_user_is_ended_and_cannot_log_in_until_re_enabled(srv):
    add(srv, "greg")
    s = raw_session(srv, "greg", "desk")

    async def body():
        admin = await login(srv, "admin")
        reply = await command(admin, ADMIN + "disable-user", accountjids=["greg@localhost"])
        assert notes(reply) == [("info", "greg@localhost disabled")]
        assert s.stream_error() == "not-authorized"
        assert not can_log_in(srv, "greg")
        assert result(await command(admin, ADMIN + "get-disabled-users-num"))[
            "disabledusersnum"] == "1"
        listed = result(await command(admin, ADMIN + "get-disabled-users-list",
                                      max_items="none"))
        assert listed["disableduserjids"] == ["greg@localhost"]
        reply = await command(admin, ADMIN + "reenable-user", accountjids=["greg@localhost"])
        assert notes(reply) == [("info", "greg@localhost re-enabled")]
        assert can_log_in(srv, "greg")
        assert result(await command(admin, ADMIN + "get-disabled-users-num"))[
            "disabledusersnum"] == "0"
        await disconnect(admin)
    run(body())
    s.close()


def test_deleting_a_user_ends_their_session(srv):
    add(srv, "hank")
    s = raw_session(srv, "hank", "desk")

    async def body():
        admin = await login(srv, "admin")
        reply = await command(admin, ADMIN + "delete-user", accountjids=["hank@localhost"])
        assert notes(reply) == [("info", "hank@localhost deleted")]
        assert s.stream_error() == "not-authorized"
        assert not can_log_in(srv, "hank")
        assert "hank@localhost" not in accounts(srv)
        await disconnect(admin)
    run(body())
    s.close()


def test_every_listed_account_is_checked_before_any_is_touched(srv):
    add(srv, "ida")

    async def body():
        admin = await login(srv, "admin")
        for jid, note in (("nobody@localhost", "'nobody@localhost' is not an account of this "
                                               "server"),
                          ("ida@example.test", "'ida@example.test' is not on this server "
                                               "(localhost)"),
                          ("ida@localhost/r", "'ida@localhost/r' has a resource: give the bare "
                                              "JID ida@localhost")):
            reply = await command(admin, ADMIN + "delete-user",
                                  accountjids=["ida@localhost", jid])
            assert reply["command"]["status"] == "executing"
            assert notes(reply) == [("error", note)]
            # The form comes back with what was typed.
            assert reply["command"]["form"].get_fields()["accountjids"]["value"] == [
                "ida@localhost", jid]
        assert "ida@localhost" in accounts(srv)
        await disconnect(admin)
    run(body())


def test_end_user_session_by_full_and_by_bare_jid(srv):
    add(srv, "ivy")
    one, two = raw_session(srv, "ivy", "one"), raw_session(srv, "ivy", "two")

    async def body():
        admin = await login(srv, "admin")
        reply = await command(admin, ADMIN + "end-user-session", accountjids=["ivy@localhost/one"])
        assert notes(reply) == [("info", "ivy@localhost/one: 1 session ended")]
        assert one.stream_error() == "policy-violation"
        two.ping_server()  # XEP-0133 §4.5: only that resource
        reply = await command(admin, ADMIN + "end-user-session", accountjids=["ivy@localhost"])
        assert notes(reply) == [("info", "ivy@localhost: 1 session ended")]
        assert two.stream_error() == "policy-violation"
        assert can_log_in(srv, "ivy")  # ended, not banned
        await disconnect(admin)
    run(body())
    one.close()
    two.close()


def test_an_admin_may_end_their_own_session(srv):
    s = raw_session(srv, "admin", "self")
    node = ADMIN + "end-user-session"
    s.send(f"<iq type='set' id='e1' to='localhost'><command "
           f"xmlns='http://jabber.org/protocol/commands' node='{node}'/></iq>")
    sid = s.read_until(rb"sessionid='([0-9a-f]+)'").group(1).decode()
    s.send(f"<iq type='set' id='e2' to='localhost'><command "
           f"xmlns='http://jabber.org/protocol/commands' node='{node}' sessionid='{sid}' "
           f"action='complete'><x xmlns='jabber:x:data' type='submit'><field var='accountjids'>"
           f"<value>admin@localhost/self</value></field></x></command></iq>")
    assert s.stream_error() == "policy-violation"
    s.close()
    assert can_log_in(srv, "admin")


def test_user_statistics_and_last_login(srv):
    add(srv, "leo")

    async def body():
        admin = await login(srv, "admin")
        alice = await login(srv, "alice", "phone")
        reply = await command(admin, ADMIN + "get-user-lastlogin",
                              accountjids=["alice@localhost", "leo@localhost"])
        values = result(reply)
        assert values["accountjids"] == ["alice@localhost", "leo@localhost"]
        stamp, never = values["lastlogin"].split("\n")
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs((now - parse_stamp(stamp)).total_seconds()) < 10
        assert never == "never"
        values = result(await command(admin, ADMIN + "user-stats", accountjid="alice@localhost"))
        assert values["accountjid"] == "alice@localhost"
        assert "phone" in values["onlineresources"].split("\n")
        assert values["disabled"] is False
        assert abs((now - parse_stamp(values["lastlogin"])).total_seconds()) < 10
        assert int(values["rostersize"]) >= 0
        await disconnect(admin, alice)
    run(body())


def test_get_user_roster(srv):
    add(srv, "max")
    add(srv, "nina")

    async def body():
        admin = await login(srv, "admin")
        max_, nina = await login(srv, "max"), await login(srv, "nina")
        # slixmpp accepts subscription requests by default, both ways.
        max_.send_presence(pto="nina@localhost", ptype="subscribe")
        for _ in range(100):
            reply = await command(admin, ADMIN + "get-user-roster", accountjids=["max@localhost"])
            values = result(reply)
            items = {i.get("jid"): i.get("subscription") for i in reply["command"]["form"].xml
                     .findall("{jabber:iq:roster}query/{jabber:iq:roster}item")}
            if items.get("nina@localhost") == "both":
                break
            await asyncio.sleep(0.05)
        assert items == {"nina@localhost": "both"}
        assert values["accountjids"] == ["max@localhost"]
        stats = result(await command(admin, ADMIN + "user-stats", accountjid="max@localhost"))
        assert stats["rostersize"] == "1"
        await disconnect(admin, max_, nina)
    run(body())


# ---------------------------------------------------------------- counting and listing


def test_counts_and_lists_of_users(own_srv):
    srv = own_srv(users=["olga", "paul", "quinn"])

    async def body():
        admin = await login(srv, "admin")
        alice1, alice2, bob = (await login(srv, "alice", "a1"), await login(srv, "alice", "a2"),
                               await login(srv, "bob"))
        registered = sorted(["admin@localhost", "alice@localhost", "bob@localhost",
                             "olga@localhost", "paul@localhost", "quinn@localhost"])
        online = ["admin@localhost", "alice@localhost", "bob@localhost"]
        assert result(await command(admin, ADMIN + "get-registered-users-num"))[
            "registeredusersnum"] == "6"
        assert result(await command(admin, ADMIN + "get-online-users-num"))[
            "onlineusersnum"] == "3"  # accounts, not sessions
        assert result(await command(admin, ADMIN + "get-active-users-num"))[
            "activeusersnum"] == "3"
        assert result(await command(admin, ADMIN + "get-registered-users-list",
                                    max_items="none"))["registereduserjids"] == registered
        reply = await command(admin, ADMIN + "get-registered-users-list", max_items="25")
        assert result(reply)["registereduserjids"] == registered and notes(reply) == []
        assert result(await command(admin, ADMIN + "get-online-users-list", max_items="100"))[
            "onlineuserjids"] == online
        assert result(await command(admin, ADMIN + "get-active-users", max_items="none"))[
            "activeuserjids"] == online
        # The XEP's max_items options start at 25; a longer list is cut and says so.
        for i in range(30):
            await command(admin, ADMIN + "add-user", accountjid=f"u{i:02}@localhost",
                          password="p", **{"password-verify": "p"})
        reply = await command(admin, ADMIN + "get-registered-users-list", max_items="25")
        assert len(result(reply)["registereduserjids"]) == 25
        assert notes(reply) == [("info", "25 of 36 shown")]
        stats = result(await command(admin, TERN + "stats"))
        assert stats["sessions"] == "4" and stats["onlineusers"] == "3"
        assert stats["registeredusers"] == "36"
        assert stats["version"].startswith("tern ")
        started = parse_stamp(stats["started"])
        assert abs((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()) \
            < 120
        assert int(stats["uptime"]) >= 0
        await disconnect(admin, alice1, alice2, bob)
    run(body())


# ---------------------------------------------------------------- messages to users


def test_announcement_reaches_every_online_session(srv):
    async def body():
        admin = await login(srv, "admin")
        receivers = [client(srv, "alice", "a1"), client(srv, "alice", "a2"), client(srv, "bob")]
        queues = [inbox(c) for c in receivers]
        for c in receivers:
            await connect(c, srv)
        reply = await command(admin, ADMIN + "announce",
                              announcement="Maintenance at five.\nBack at six.")
        assert reply["command"]["status"] == "completed"
        for q in queues:
            m = await next_message(q)
            assert m["type"] == "headline" and m["from"] == "localhost"
            assert m["subject"] == "Announcement"
            assert m["body"] == "Maintenance at five.\nBack at six."
        await disconnect(admin, *receivers)
    run(body())


def test_message_of_the_day(srv):
    async def body():
        admin = await login(srv, "admin")
        bob = client(srv, "bob")
        bob_inbox = inbox(bob)
        await connect(bob, srv)
        reply = await command(admin, ADMIN + "set-motd", motd="Tea at four.\nAll welcome.")
        assert notes(reply) == [("info", "Message of the day set")]
        m = await next_message(bob_inbox)  # online users get it at once
        assert (m["type"], m["subject"], m["body"]) == (
            "headline", "Message of the day", "Tea at four.\nAll welcome.")
        # ... the others at their initial presence, every time they log in.
        for _ in range(2):
            carol = client(srv, "alice", "motd")
            carol_inbox = inbox(carol)
            await connect(carol, srv)
            m = await next_message(carol_inbox)
            assert m["body"] == "Tea at four.\nAll welcome."
            await disconnect(carol)
        # edit-motd shows the current text.
        first = await admin["xep_0050"].send_command("localhost", ADMIN + "edit-motd", timeout=5)
        assert first["command"]["form"].get_fields()["motd"]["value"] == \
            "Tea at four.\nAll welcome."
        await command(admin, ADMIN + "edit-motd", motd="Tea at five.")
        assert (await next_message(bob_inbox))["body"] == "Tea at five."
        reply = await command(admin, ADMIN + "delete-motd")
        assert notes(reply) == [("info", "Message of the day deleted")]
        late = client(srv, "alice", "late")
        late_inbox = inbox(late)
        await connect(late, srv)
        assert await nothing_in(late_inbox)
        await disconnect(admin, bob, late)
    run(body())


def test_welcome_message_for_new_accounts(srv):
    async def body():
        admin = await login(srv, "admin")
        reply = await command(admin, ADMIN + "set-welcome", welcome="Welcome to tern!\nHave fun.")
        assert notes(reply) == [("info", "Welcome message set")]
        first = await admin["xep_0050"].send_command("localhost", ADMIN + "set-welcome",
                                                     timeout=5)
        assert first["command"]["form"].get_fields()["welcome"]["value"] == \
            "Welcome to tern!\nHave fun."
        await command(admin, ADMIN + "add-user", accountjid="rosa@localhost", password="r",
                      **{"password-verify": "r"})
        rosa = make_client("rosa@localhost", "r", srv, plugins=PLUGINS)
        rosa_inbox = inbox(rosa)
        await connect(rosa, srv)  # kept offline by the offline module until now
        m = await next_message(rosa_inbox)
        assert (m["from"], m["subject"], m["body"]) == (
            "localhost", "Welcome", "Welcome to tern!\nHave fun.")
        reply = await command(admin, ADMIN + "delete-welcome")
        assert notes(reply) == [("info", "Welcome message deleted")]
        await command(admin, ADMIN + "add-user", accountjid="sam@localhost", password="s",
                      **{"password-verify": "s"})
        sam = make_client("sam@localhost", "s", srv, plugins=PLUGINS)
        sam_inbox = inbox(sam)
        await connect(sam, srv)
        assert await nothing_in(sam_inbox)
        await disconnect(admin, rosa, sam)
    run(body())


def test_without_the_announce_module_its_commands_are_absent(own_srv):
    srv = own_srv(modules=MODULES.replace(" announce", ""))
    message_nodes = {ADMIN + name for name in ("announce", "set-motd", "edit-motd",
                                               "delete-motd", "set-welcome", "delete-welcome")}

    async def body():
        admin = await login(srv, "admin")
        items = await admin["xep_0030"].get_items(jid="localhost",
                                                  node="http://jabber.org/protocol/commands",
                                                  timeout=5)
        listed = {node for _, node, _ in items["disco_items"]["items"]}
        assert ADMIN + "add-user" in listed  # the admin module's commands are there
        assert not listed & message_nodes
        # Run by its node anyway, it is a command nobody offers (XEP-0050 §4.6).
        with pytest.raises(IqError) as caught:
            await admin["xep_0050"].send_command("localhost", ADMIN + "announce", timeout=5)
        assert caught.value.iq["error"]["condition"] == "item-not-found"
        await disconnect(admin)
    run(body())


# ---------------------------------------------------------------- the server


def test_reload_configuration(srv):
    async def body():
        admin = await login(srv, "admin")
        reply = await command(admin, TERN + "reload")
        assert reply["command"]["status"] == "completed"
        assert notes(reply) == [("info", "Configuration and certificates reloaded (listeners, "
                                         "hosts and modules change on restart)")]
        good = srv.config.read_text()
        srv.config.write_text(good + "\n[server]\nno_such_key = 1\n")
        try:
            reply = await command(admin, TERN + "reload")
        finally:
            srv.config.write_text(good)
        (kind, text), = notes(reply)
        assert kind == "error"
        assert text.startswith("Reload failed, the running configuration stays: ")
        assert "no_such_key" in text and "tern.conf:" in text
        assert (await command(admin, TERN + "reload"))["command"]["status"] == "completed"
        await disconnect(admin)
    run(body())


@pytest.mark.parametrize("node", ["shutdown", "restart"])
def test_shutdown_and_restart_stop_the_server(own_srv, node):
    srv = own_srv()

    async def body():
        admin = await login(srv, "admin")
        s = raw_session(srv, "alice", "desk")
        first = await admin["xep_0050"].send_command("localhost", ADMIN + node, timeout=5)
        options = [o["value"] for o in first["command"]["form"].get_fields()["delay"]["options"]]
        assert options == ["0", "30", "60", "90", "120", "180", "240", "300"]
        reply = await command(admin, ADMIN + node, delay="0", announcement="Going down now.")
        (kind, text), = notes(reply)
        assert kind == "info" and text.startswith("ternd stops in 0 s.")
        if node == "restart":  # tern does not exec itself; the service manager restarts it
            assert "service manager" in text
        m = s.read_until(rb"<message[^>]*type='headline'.*?</message>")
        assert b"<body>Going down now.</body>" in m.group(0)
        assert s.stream_error() == "system-shutdown"
        s.close()
        await disconnect(admin)
    run(body())
    assert srv.proc.wait(10) == 0
    srv.check_clean_exit()


# ---------------------------------------------------------------- modules at run time


def version_answer(s, ident):
    """Asks the server's software version (XEP-0092) on a raw session: result or error."""
    s.send(f"<iq type='get' id='{ident}' to='localhost'><query xmlns='jabber:iq:version'/></iq>")
    m = s.read_until(rf"<iq[^>]*id='{ident}'[^>]*(?:/>|>.*?</iq>)".encode())
    if b"type='result'" in m.group(0):
        return "result"
    return re.search(rb"<([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'",
                     m.group(0)).group(1).decode()


def test_modules_are_unloaded_loaded_and_reloaded_while_sessions_stay(own_srv):
    srv = own_srv(modules=MODULES + " version carbons")

    async def body():
        admin = await login(srv, "admin")
        said = inbox(admin)
        alice = raw_session(srv, "alice", "desk")
        # Alice's carbons are module state on her session: a reload drops it safely.
        alice.send("<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
        alice.read_until(rb"<iq[^>]*id='cb'[^>]*type='result'|<iq[^>]*type='result'[^>]*id='cb'")
        assert version_answer(alice, "v1") == "result"
        listed = result(await command(admin, TERN + "modules"))["modules"]
        assert listed.split("\n")[-2:] == ["version", "carbons"], listed

        first = await admin["xep_0050"].send_command("localhost", TERN + "unload-module",
                                                     timeout=5)
        options = [o["value"] for o in first["command"]["form"].get_fields()["module"]["options"]]
        assert options == MODULES.split() + ["version", "carbons"]
        reply = await command(admin, TERN + "unload-module", module="version")
        (kind, text), = notes(reply)
        assert kind == "info" and text.startswith("Module version will be unloaded on localhost")
        assert (await next_message(said))["body"] == "module version unloaded"
        assert version_answer(alice, "v2") == "service-unavailable"

        await command(admin, TERN + "load-module", module="version")
        assert (await next_message(said))["body"] == "module version loaded"
        assert version_answer(alice, "v3") == "result"

        for name in ("carbons", "admin", "adhoc"):  # the command's own modules too
            await command(admin, TERN + "reload-module", module=name)
            assert (await next_message(said))["body"] == f"module {name} reloaded"
        assert version_answer(alice, "v4") == "result"  # Alice's stream never ended

        reply = await command(admin, TERN + "load-module", module="nosuch")
        assert reply["command"]["status"] != "completed"
        assert notes(reply)[0][1].startswith("there is no module nosuch"), notes(reply)
        alice.close()
        await disconnect(admin)
    run(body())
    assert "module version unloaded" in srv.log_text()


# ---------------------------------------------------------------- the shell door


def test_ternctl_disable_and_enable(srv):
    add(srv, "tom")
    out = srv.ternctl("user", "disable", "Tom@LocalHost")
    assert out.stdout == "" and out.stderr == ""
    assert not can_log_in(srv, "tom")  # the running server sees it at once

    async def body():
        admin = await login(srv, "admin")
        listed = result(await command(admin, ADMIN + "get-disabled-users-list",
                                      max_items="none"))
        assert "tom@localhost" in listed["disableduserjids"]
        await disconnect(admin)
    run(body())
    srv.ternctl("user", "enable", "tom@localhost")
    assert can_log_in(srv, "tom")
    for args, message in (
            (("user", "disable", "nobody@localhost"), "ternctl: user nobody@localhost does not "
                                                      "exist\n"),
            (("user", "enable", "tom@example.org"), "ternctl: example.org is not a host of "
                                                    "this server"),
            (("user", "disable"), "ternctl: 'user disable' takes 1 argument (see ternctl "
                                  "--help)\n")):
        proc = srv.ternctl(*args, check=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith(message), proc.stderr
    assert re.search(r"user disable JID", srv.ternctl("--help").stdout)


def test_ternctl_changes_the_modules_of_the_running_server(own_srv):
    srv = own_srv(modules=MODULES + " version")
    sock = srv.folder / "var" / "ternd.ctl"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600  # only ternd's own account
    alice = raw_session(srv, "alice", "desk")
    listed = srv.ternctl("module", "list", "localhost").stdout.split()
    assert listed == MODULES.split() + ["version"]
    out = srv.ternctl("module", "unload", "localhost", "version").stdout
    assert out == "module version unloaded\n"
    assert version_answer(alice, "v1") == "service-unavailable"
    assert srv.ternctl("module", "load", "localhost", "version").stdout == \
        "module version loaded\n"
    assert version_answer(alice, "v2") == "result"
    assert srv.ternctl("module", "reload", "localhost", "roster").stdout == \
        "module roster reloaded\n"
    for args, said in [(("load", "localhost", "version"), "it is already loaded"),
                       (("unload", "localhost", "nosuch"), "it is not loaded"),
                       (("load", "localhost", "../../etc/x"), "not a module name"),
                       (("load", "localhost", "nosuch"), "cannot load module nosuch"),
                       (("list", "elsewhere.example", None), "no host elsewhere.example")]:
        proc = srv.ternctl("module", *[a for a in args if a], check=False)
        assert proc.returncode == 1 and said in proc.stderr, proc.stderr
    assert version_answer(alice, "v3") == "result"  # her session never ended
    # The socket itself: a request too long is refused, the server goes on.
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(sock))
        s.sendall(b"module list " + b"x" * 5000)
        assert s.recv(200).startswith(b"error request longer than 1024 bytes")
    alice.close()
    srv.stop()
    proc = srv.ternctl("module", "list", "localhost", check=False)
    assert proc.returncode == 1 and "ternd is not running" in proc.stderr, proc.stderr
    assert not sock.exists()
