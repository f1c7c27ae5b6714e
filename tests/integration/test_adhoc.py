"""An operator and a user run the server's ad-hoc commands (XEP-0050, the adhoc module, with
the commands of the admin module): what each sees in disco, multi-stage forms with next, prev,
complete and cancel, the checks on submitted forms, and every error the XEP names."""
import asyncio
import copy
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORDS
from tern_harness import RawStream, TernServer, connect, disconnect, make_client, run

CMDS = "http://jabber.org/protocol/commands"
XDATA = "jabber:x:data"
ADMIN = "http://jabber.org/protocol/admin#"
MODULES = "disco ping adhoc admin announce"
PLUGINS = ["xep_0030", "xep_0004", "xep_0050", "xep_0133"]

ADMIN_NODES = {ADMIN + name for name in (
    "add-user", "delete-user", "disable-user", "reenable-user", "end-user-session",
    "change-user-password", "get-user-roster", "get-user-lastlogin", "user-stats",
    "get-registered-users-num", "get-disabled-users-num", "get-online-users-num",
    "get-active-users-num", "get-registered-users-list", "get-disabled-users-list",
    "get-online-users-list", "get-active-users", "announce", "set-motd", "edit-motd",
    "delete-motd", "set-welcome", "delete-welcome", "restart", "shutdown")} | {
    "urn:x-tern:admin#reload", "urn:x-tern:admin#stats", "urn:x-tern:admin#manage-user",
    "urn:x-tern:admin#modules", "urn:x-tern:admin#load-module", "urn:x-tern:admin#unload-module",
    "urn:x-tern:admin#reload-module"}
USER_NODES = {"urn:x-tern:user#server-info"}
WIZARD = "urn:x-tern:admin#manage-user"


def start(folder, pki, **kwargs):
    srv = TernServer(folder, pki, modules=MODULES, **kwargs)
    for user, password in PASSWORDS.items():
        srv.add_user(f"{user}@localhost", password)
    srv.add_user("carol@localhost", "carol-secret")
    return srv.start()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    s = start(tmp_path_factory.mktemp("adhoc"), pki)
    yield s
    s.check_clean_exit()


async def login(srv, user, resource=None):
    jid = f"{user}@localhost" + (f"/{resource}" if resource else "")
    return await connect(make_client(jid, PASSWORDS[user], srv, plugins=PLUGINS), srv)


async def execute(c, node, **kwargs):
    return await c["xep_0050"].send_command("localhost", node, timeout=5, **kwargs)


def fill(reply, **values):
    """What a client does with a form: fill it in and send it back as a submission."""
    form = type(reply["command"]["form"])(xml=copy.deepcopy(reply["command"]["form"].xml))
    form.set_values(values)
    form["type"] = "submit"
    return form


def notes(reply):
    return reply["command"]["notes"]


def error_of(excinfo):
    """(type, condition, XEP-0050 application condition or None) of an IqError."""
    err = excinfo.value.iq.xml.find("{jabber:client}error")
    app = [child.tag.split("}")[1] for child in err if child.tag.startswith("{%s}" % CMDS)]
    return err.get("type"), excinfo.value.iq["error"]["condition"], app[0] if app else None


def fields(reply):
    return {var: f["value"] for var, f in reply["command"]["form"].get_fields().items()}


# ---------------------------------------------------------------- discovery


def test_server_advertises_ad_hoc_commands(srv):
    async def body():
        c = await login(srv, "alice")
        info = await c["xep_0030"].get_info(jid="localhost", timeout=5)
        assert CMDS in info["disco_info"]["features"]
        await disconnect(c)
    run(body())


def test_admin_sees_every_command_a_user_only_the_user_commands(srv):
    async def body():
        admin, alice = await login(srv, "admin"), await login(srv, "alice")
        items = await admin["xep_0133"].get_commands(timeout=5)
        listed = {node for _, node, _ in items["disco_items"]["items"]}
        assert listed == ADMIN_NODES | USER_NODES
        assert {jid for jid, _, _ in items["disco_items"]["items"]} == {"localhost"}
        names = {node: name for _, node, name in items["disco_items"]["items"]}
        assert names[ADMIN + "add-user"] == "Add User"
        items = await alice["xep_0050"].get_commands("localhost", timeout=5)
        assert {node for _, node, _ in items["disco_items"]["items"]} == USER_NODES
        await disconnect(admin, alice)
    run(body())


def test_command_nodes_describe_themselves_to_who_may_run_them(srv):
    async def body():
        admin, alice = await login(srv, "admin"), await login(srv, "alice")
        info = await admin["xep_0030"].get_info(jid="localhost", node=ADMIN + "add-user",
                                                timeout=5)
        assert info["disco_info"]["identities"] == {
            ("automation", "command-node", None, "Add User")}
        assert info["disco_info"]["features"] == {CMDS, XDATA}
        info = await alice["xep_0030"].get_info(jid="localhost", node=CMDS, timeout=5)
        assert ("automation", "command-list", None, "Commands") in \
            info["disco_info"]["identities"]
        info = await alice["xep_0030"].get_info(jid="localhost", node=next(iter(USER_NODES)),
                                                timeout=5)
        assert info["disco_info"]["features"] == {CMDS, XDATA}
        # XEP-0050 §2.2: a command the requester may not run is forbidden, not described.
        from slixmpp.exceptions import IqError
        with pytest.raises(IqError) as e:
            await alice["xep_0030"].get_info(jid="localhost", node=ADMIN + "add-user", timeout=5)
        assert e.value.iq["error"]["condition"] == "forbidden"
        # Nodes nobody registered stay the disco module's business.
        with pytest.raises(IqError) as e:
            await alice["xep_0030"].get_info(jid="localhost", node="nope", timeout=5)
        assert e.value.iq["error"]["condition"] == "item-not-found"
        await disconnect(admin, alice)
    run(body())


# ---------------------------------------------------------------- access


def test_a_user_is_forbidden_every_admin_command(srv):
    async def body():
        from slixmpp.exceptions import IqError
        alice = await login(srv, "alice")
        for node in sorted(ADMIN_NODES):
            with pytest.raises(IqError) as e:
                await execute(alice, node)
            # RFC 6120 §8.3.3.4 gives forbidden the type "auth".
            assert error_of(e) == ("auth", "forbidden", None), node
        await disconnect(alice)
    run(body())


def test_a_user_runs_a_user_command(srv):
    async def body():
        alice = await login(srv, "alice")
        reply = await execute(alice, "urn:x-tern:user#server-info")
        assert reply["command"]["status"] == "completed"
        assert reply["command"]["sessionid"]
        values = fields(reply)
        assert values["version"].startswith("tern ")
        assert int(values["uptime"]) >= 0
        await disconnect(alice)
    run(body())


def test_unknown_command_is_item_not_found(srv):
    async def body():
        from slixmpp.exceptions import IqError
        admin = await login(srv, "admin")
        with pytest.raises(IqError) as e:
            await execute(admin, "urn:example:nope")
        assert error_of(e) == ("cancel", "item-not-found", None)
        await disconnect(admin)
    run(body())


# ---------------------------------------------------------------- stages and actions


def test_multi_stage_wizard_with_next_prev_and_complete(srv):
    async def body():
        admin = await login(srv, "admin")
        first = await execute(admin, WIZARD)
        sid = first["command"]["sessionid"]
        assert first["command"]["status"] == "executing"
        assert first["command"]["actions"] == {"next"}  # no prev on the first stage
        assert first["command"].xml.find("{%s}actions" % CMDS).get("execute") == "next"
        assert first["command"]["form"]["type"] == "form"
        assert "accountjid" in fields(first)

        second = await execute(admin, WIZARD, action="next", sessionid=sid,
                               payload=fill(first, accountjid="bob@localhost"))
        assert second["command"]["sessionid"] == sid
        assert second["command"]["status"] == "executing"
        assert set(second["command"]["actions"]) == {"prev", "complete"}
        assert second["command"].xml.find("{%s}actions" % CMDS).get("execute") == "complete"
        form = second["command"]["form"]
        assert form["title"] == "Managing bob@localhost"
        facts = [f.find("{%s}value" % XDATA).text
                 for f in form.xml.findall("{%s}field[@type='fixed']" % XDATA)]
        assert "Online resources:" in facts and "Disabled: no" in facts

        # prev shows the first stage again, with what was submitted there.
        back = await execute(admin, WIZARD, action="prev", sessionid=sid)
        assert back["command"]["actions"] == {"next"}
        assert fields(back)["accountjid"] == "bob@localhost"

        # 'execute' is the stage's default action: next here.
        second = await execute(admin, WIZARD, action="execute", sessionid=sid,
                               payload=fill(back, accountjid="carol@localhost"))
        assert second["command"]["form"]["title"] == "Managing carol@localhost"
        done = await execute(admin, WIZARD, action="complete", sessionid=sid,
                             payload=fill(second, action="end-sessions"))
        assert done["command"]["status"] == "completed"
        assert notes(done) == [("info", "carol@localhost: 0 sessions ended")]
        await disconnect(admin)
    run(body())


def test_cancel_ends_the_session(srv):
    async def body():
        from slixmpp.exceptions import IqError
        admin = await login(srv, "admin")
        first = await execute(admin, WIZARD)
        sid = first["command"]["sessionid"]
        await execute(admin, WIZARD, action="next", sessionid=sid,
                      payload=fill(first, accountjid="bob@localhost"))
        canceled = await execute(admin, WIZARD, action="cancel", sessionid=sid)
        assert canceled["command"]["status"] == "canceled"
        assert canceled["command"]["sessionid"] == sid
        # XEP-0050 §6.4: an ended session's id is session-expired.
        with pytest.raises(IqError) as e:
            await execute(admin, WIZARD, action="next", sessionid=sid,
                          payload=fill(first, accountjid="bob@localhost"))
        assert error_of(e) == ("cancel", "not-allowed", "session-expired")
        await disconnect(admin)
    run(body())


def test_a_completed_session_cannot_be_continued(srv):
    async def body():
        from slixmpp.exceptions import IqError
        admin = await login(srv, "admin")
        done = await execute(admin, ADMIN + "get-registered-users-num")
        assert done["command"]["status"] == "completed"
        with pytest.raises(IqError) as e:
            await execute(admin, ADMIN + "get-registered-users-num", action="complete",
                          sessionid=done["command"]["sessionid"])
        assert error_of(e) == ("cancel", "not-allowed", "session-expired")
        await disconnect(admin)
    run(body())


def test_sessions_belong_to_their_requester(srv):
    async def body():
        from slixmpp.exceptions import IqError
        admin1, admin2 = await login(srv, "admin", "one"), await login(srv, "admin", "two")
        first = await execute(admin1, WIZARD)
        sid = first["command"]["sessionid"]
        form = fill(first, accountjid="bob@localhost")
        for who, node, session in ((admin1, WIZARD, "0123456789abcdef"),
                                   (admin2, WIZARD, sid),  # another resource of the same user
                                   (admin1, ADMIN + "add-user", sid)):  # another command
            with pytest.raises(IqError) as e:
                await execute(who, node, action="next", sessionid=session, payload=form)
            assert error_of(e) == ("modify", "bad-request", "bad-sessionid")
        # The owner still can.
        reply = await execute(admin1, WIZARD, action="next", sessionid=sid, payload=form)
        assert reply["command"]["status"] == "executing"
        await disconnect(admin1, admin2)
    run(body())


def test_sessions_end_with_their_requester(srv):
    async def body():
        from slixmpp.exceptions import IqError
        admin = await login(srv, "admin", "desk")
        first = await execute(admin, WIZARD)
        sid = first["command"]["sessionid"]
        await disconnect(admin)
        await asyncio.sleep(0.2)
        admin = await login(srv, "admin", "desk")
        with pytest.raises(IqError) as e:
            await execute(admin, WIZARD, action="next", sessionid=sid,
                          payload=fill(first, accountjid="bob@localhost"))
        assert error_of(e) == ("modify", "bad-request", "bad-sessionid")
        await disconnect(admin)
    run(body())


def test_actions_the_stage_does_not_allow_are_bad_action(srv):
    async def body():
        from slixmpp.exceptions import IqError
        admin = await login(srv, "admin")
        first = await execute(admin, WIZARD)
        sid = first["command"]["sessionid"]
        form = fill(first, accountjid="bob@localhost")
        for action in ("complete", "prev"):  # first stage: next only
            with pytest.raises(IqError) as e:
                await execute(admin, WIZARD, action=action, sessionid=sid, payload=form)
            assert error_of(e) == ("modify", "bad-request", "bad-action"), action
        second = await execute(admin, WIZARD, action="next", sessionid=sid, payload=form)
        with pytest.raises(IqError) as e:  # last stage: no next
            await execute(admin, WIZARD, action="next", sessionid=sid,
                          payload=fill(second, action="end-sessions"))
        assert error_of(e) == ("modify", "bad-request", "bad-action")
        # The session survives a refused action.
        done = await execute(admin, WIZARD, action="complete", sessionid=sid,
                             payload=fill(second, action="end-sessions"))
        assert done["command"]["status"] == "completed"
        await disconnect(admin)
    run(body())


def test_malformed_actions_and_missing_session_ids(srv):
    s = RawStream(srv)
    s.login("admin", PASSWORDS["admin"])

    def ask(ident, command):
        s.send(f"<iq type='set' id='{ident}' to='localhost'>{command}</iq>")
        m = s.read_until(rf"<iq(?=[^>]*id=['\"]{ident}['\"])[^>]*?(?:/>|>.*?</iq>)".encode())
        return ET.fromstring(m.group(0))

    def error(reply):
        err = reply.find("error")
        return (reply.get("type"), err.get("type"), [c.tag for c in err if "text" not in c.tag])

    reply = ask("m1", f"<command xmlns='{CMDS}' node='{WIZARD}' action='jump'/>")
    assert error(reply) == ("error", "modify", [
        "{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request", "{%s}malformed-action" % CMDS])
    reply = ask("m2", f"<command xmlns='{CMDS}' node='{WIZARD}' action='next'/>")
    assert error(reply) == ("error", "modify", [
        "{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request", "{%s}bad-sessionid" % CMDS])
    reply = ask("m3", f"<command xmlns='{CMDS}'/>")
    assert error(reply)[2] == ["{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request"]
    # A form that is not a submission.
    reply = ask("m4", f"<command xmlns='{CMDS}' node='{WIZARD}'/>")
    sid = reply.find("{%s}command" % CMDS).get("sessionid")
    reply = ask("m5", f"<command xmlns='{CMDS}' node='{WIZARD}' sessionid='{sid}' "
                f"action='next'><x xmlns='{XDATA}' type='result'/></command>")
    assert error(reply) == ("error", "modify", [
        "{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request", "{%s}bad-payload" % CMDS])
    s.close()


def test_submitted_forms_are_checked_and_shown_again_with_a_note(srv):
    async def body():
        admin = await login(srv, "admin")
        first = await execute(admin, ADMIN + "add-user")
        sid = first["command"]["sessionid"]
        assert first["command"]["actions"] == {"complete"}
        # A required field left out: the same form comes back, with an error note.
        again = await execute(admin, ADMIN + "add-user", action="complete", sessionid=sid,
                              payload=fill(first, password="x", **{"password-verify": "x"}))
        assert again["command"]["status"] == "executing"
        assert notes(again) == [
            ("error", "'The Jabber ID for the account to be added' is required")]
        assert set(fields(again)) >= {"accountjid", "password", "password-verify"}
        # A JID that does not parse.
        again = await execute(admin, ADMIN + "add-user", action="complete", sessionid=sid,
                              payload=fill(first, accountjid="a@b@c", password="x",
                                           **{"password-verify": "x"}))
        (kind, text), = notes(again)
        assert kind == "error" and text.startswith("'a@b@c' in 'The Jabber ID")
        # The requester's text is kept, passwords are not sent back.
        assert fields(again)["accountjid"] == "a@b@c"
        assert fields(again)["password"] in ("", None)
        # Once right, the command completes in the same session.
        done = await execute(admin, ADMIN + "add-user", action="complete", sessionid=sid,
                             payload=fill(first, accountjid="dave@localhost", password="d-pw",
                                          **{"password-verify": "d-pw"}))
        assert done["command"]["status"] == "completed"
        assert notes(done) == [("info", "dave@localhost created")]
        await disconnect(admin)
    run(body())


def test_list_single_values_must_be_one_of_the_options(srv):
    async def body():
        admin = await login(srv, "admin")
        first = await execute(admin, ADMIN + "get-registered-users-list")
        again = await execute(admin, ADMIN + "get-registered-users-list", action="complete",
                              sessionid=first["command"]["sessionid"],
                              payload=fill(first, max_items="7"))
        assert notes(again) == [
            ("error", "'7' is not one of the choices of 'Maximum number of items to show'")]
        await disconnect(admin)
    run(body())


def test_open_sessions_per_requester_are_limited(srv):
    async def body():
        from slixmpp.exceptions import IqError
        admin = await login(srv, "admin", "busy")
        open_ids = [(await execute(admin, WIZARD))["command"]["sessionid"] for _ in range(8)]
        with pytest.raises(IqError) as e:
            await execute(admin, WIZARD)
        assert error_of(e)[1] == "resource-constraint"
        await execute(admin, WIZARD, action="cancel", sessionid=open_ids[0])
        reply = await execute(admin, WIZARD)
        assert reply["command"]["status"] == "executing"
        await disconnect(admin)
    run(body())


def test_slixmpp_command_workflow(srv):
    """slixmpp's own XEP-0133 client flow (start_command with callbacks) works as is."""
    async def body():
        admin = await login(srv, "admin")
        finished = asyncio.get_running_loop().create_future()

        def on_form(iq, session):
            form = fill(iq, accountjids=["alice@localhost"])
            session["payload"] = form
            session["next"] = on_done
            admin["xep_0050"].complete_command(session)

        def on_done(iq, session):
            finished.set_result(iq)

        def on_error(iq, session):
            finished.set_exception(AssertionError(str(iq)))

        admin["xep_0133"].get_user_lastlogin(session={"next": on_form, "error": on_error})
        iq = await asyncio.wait_for(finished, 5)
        assert iq["command"]["status"] == "completed"
        assert fields(iq)["accountjids"] == ["alice@localhost"]
        await disconnect(admin)
    run(body())


# ---------------------------------------------------------------- expiry


def test_an_idle_session_expires(tmp_path, pki):
    srv = start(tmp_path, pki, extra_config="[module adhoc]\ntimeout = 1\n")
    try:

        async def body():
            from slixmpp.exceptions import IqError
            admin = await login(srv, "admin")
            first = await execute(admin, ADMIN + "add-user")
            # Activity keeps a session alive ...
            await asyncio.sleep(0.6)
            again = await execute(admin, ADMIN + "add-user", action="complete",
                                  sessionid=first["command"]["sessionid"], payload=fill(first))
            assert again["command"]["status"] == "executing"
            await asyncio.sleep(0.6)
            again = await execute(admin, ADMIN + "add-user", action="complete",
                                  sessionid=first["command"]["sessionid"], payload=fill(first))
            assert again["command"]["status"] == "executing"
            # ... idleness ends it.
            started = time.monotonic()
            await asyncio.sleep(1.5)
            with pytest.raises(IqError) as e:
                await execute(admin, ADMIN + "add-user", action="complete",
                              sessionid=first["command"]["sessionid"],
                              payload=fill(first, accountjid="eve@localhost", password="e",
                                           **{"password-verify": "e"}))
            assert time.monotonic() - started < 5
            assert error_of(e) == ("cancel", "not-allowed", "session-expired")
            await disconnect(admin)
        run(body())
    finally:
        srv.check_clean_exit()
    assert "eve@localhost" not in srv.ternctl("user", "list", "localhost").stdout
