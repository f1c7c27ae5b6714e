/* version — XEP-0092 Software Version of the server. The operating system is not disclosed:
 * it helps attackers more than users. */
#include <tern/module.h>

static tern_event_result version_answer(const tern_stanza_event *ev, void *data)
{
    (void)data;
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", NS_VERSION);
    tern_xml_add_text_child(query, "name", NULL, tern_server_name());
    tern_xml_add_text_child(query, "version", NULL, tern_server_version());
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static int version_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    tern_hook_iq(host, "get", "host", NS_VERSION, "query", version_answer, NULL);
    tern_disco_add_feature(host, NS_VERSION);
    return 0;
}

TERN_MODULE("version", version_load, NULL);
