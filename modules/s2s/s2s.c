/* s2s — federation: stanzas for other domains leave over server-to-server links (RFC 6120,
 * XEP-0220 dialback; the links themselves live in the core, src/s2s*.c, since one link serves
 * every local host that talks to a domain and incoming streams exist without any host).
 * Loaded on a host, it claims that host's "<kind>/remote" events; without it, the router
 * answers them with remote-server-not-found. */
#include <tern/module.h>
#include <tern/s2s.h>

static tern_event_result s2s_claim(const tern_stanza_event *ev, void *data)
{
    (void)data;
    xml_ref(ev->stanza);
    tern_s2s_send(ev->host, ev->to->domain, ev->stanza);
    return TERN_HANDLED;
}

static int s2s_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    static const char *const kinds[] = {
        "message/remote", "presence/remote", "iq-get/remote",
        "iq-set/remote", "iq-result/remote", "iq-error/remote",
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        tern_hook_stanza(host, kinds[i], TERN_PRIORITY_DEFAULT, s2s_claim, NULL);
    return 0;
}

TERN_MODULE("s2s", s2s_load, NULL);
