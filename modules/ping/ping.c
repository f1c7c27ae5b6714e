/* ping — XEP-0199 XMPP Ping: the server answers pings addressed to it, and pings to a local
 * account's bare JID (a ping without 'to' is one to the sender's own account, RFC 6120 §10.3).
 * RFC 6121 §8.5.2.1.3 and §8.5.2.2.3: the server itself answers an iq to a bare JID on the
 * account's behalf; the core has already answered service-unavailable when the account does
 * not exist (RFC 6121 §8.5.1). Clients use the self-ping to see whether server ping works.
 * The smallest module; copy it to start a new one. */
#include <tern/module.h>

static tern_event_result ping_answer(const tern_stanza_event *ev, void *data)
{
    (void)data;
    tern_reply(ev, tern_iq_result_new(ev));
    return TERN_HANDLED;
}

static int ping_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    tern_hook_iq(host, "get", "host", NS_PING, "ping", ping_answer, NULL);
    tern_hook_iq(host, "get", "bare", NS_PING, "ping", ping_answer, NULL);
    tern_disco_add_feature(host, NS_PING);
    return 0;
}

TERN_MODULE("ping", ping_load, NULL);
