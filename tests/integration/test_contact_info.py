"""The server's contact addresses (XEP-0157, the contact_info module): what a client sees in
the server's disco#info, through slixmpp's own XEP-0030/XEP-0128 plugins and on the wire;
addresses that are no URIs refused by `ternd -t`; new values shown after SIGHUP."""
import signal
import subprocess
import xml.etree.ElementTree as ET

from tern_harness import TERND, RawStream, TernServer, connect, disconnect, make_client, run

DATA = "{jabber:x:data}"
SERVERINFO = "http://jabber.org/network/serverinfo"
CONTACTS = ("[module contact_info]\n"
            "abuse = mailto:abuse@example.org xmpp:abuse@localhost\n"
            "security = https://example.org/security.txt\n")


def server_info_form(srv, user="alice"):
    """The XEP-0157 form of the host's disco#info, as {var: [values]}, or None."""
    s = RawStream(srv)
    s.login(user, "pw", "r")
    s.send("<iq type='get' id='i1' to='localhost'>"
           "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    reply = ET.fromstring(s.read_until(rb"<iq[^>]*id='i1'.*?</iq>").group(0))
    s.close()
    query = reply.find("{http://jabber.org/protocol/disco#info}query")
    for form in query.findall(DATA + "x"):
        fields = {f.get("var"): [v.text for v in f.findall(DATA + "value")]
                  for f in form.findall(DATA + "field")}
        if fields.get("FORM_TYPE") == [SERVERINFO]:
            assert form.get("type") == "result"
            hidden = [f for f in form.findall(DATA + "field") if f.get("var") == "FORM_TYPE"]
            assert hidden[0].get("type") == "hidden"
            return fields
    return None


def test_the_addresses_are_in_the_servers_disco_info(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping contact_info", extra_config=CONTACTS)
    srv.add_user("alice@localhost", "pw")
    srv.start()
    try:
        assert server_info_form(srv) == {
            "FORM_TYPE": [SERVERINFO],
            "abuse-addresses": ["mailto:abuse@example.org", "xmpp:abuse@localhost"],
            "security-addresses": ["https://example.org/security.txt"],
        }

        async def body():
            alice = make_client("alice@localhost/lib", "pw", server=srv,
                                plugins=["xep_0030", "xep_0128"])
            await connect(alice, srv)
            info = await alice["xep_0030"].get_info(jid="localhost", timeout=10)
            values = info["disco_info"]["form"].get_values()
            assert values["FORM_TYPE"] in (SERVERINFO, [SERVERINFO])
            assert values["abuse-addresses"] == ["mailto:abuse@example.org",
                                                 "xmpp:abuse@localhost"]
            await disconnect(alice)
        run(body())

        # SIGHUP: the form shows the settings in force.
        srv.config.write_text(srv.config.read_text().replace(
            "security = https://example.org/security.txt", "support = xmpp:help@localhost"))
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log("configuration and certificates reloaded")
        fields = server_info_form(srv)
        assert "security-addresses" not in fields
        assert fields["support-addresses"] == ["xmpp:help@localhost"]
    finally:
        srv.check_clean_exit()


def test_without_addresses_there_is_no_form(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco ping contact_info")
    srv.add_user("alice@localhost", "pw")
    srv.start()
    try:
        assert server_info_form(srv) is None
    finally:
        srv.check_clean_exit()


def test_an_address_that_is_no_uri_is_a_config_error(tmp_path, pki):
    srv = TernServer(tmp_path, pki, modules="disco contact_info",
                     extra_config="[module contact_info]\nadmin = admin@example.org\n")
    proc = subprocess.run([str(TERND), "-c", str(srv.config), "-t"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0
    assert "'admin@example.org' is not a URI" in proc.stderr, proc.stderr
