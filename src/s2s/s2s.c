/* s2s.c — the entry points of federation: what the s2s module calls (tern/s2s.h) and the
 * shutdown of every link, above both halves (s2s_in.c, s2s_out.c). */
#include "s2s/s2s.h"

#include <stdlib.h>

#include "host/host.h"
#include "host/served.h"
#include "s2s/s2s_dns.h"
#include "tern/jid.h"
#include "tern/s2s.h"

void tern_s2s_send(tern_host *host, const char *remote_domain, tern_xml *stanza)
{
    /* The link starts at the domain the stanza comes from: the host, or a domain one of its
     * modules serves (tern_serve_domain()), which dialback then proves as its own. */
    tern_jid from = { 0 };
    const char *why, *local = host->name;
    const char *from_text = served_any() ? xml_attr(stanza, "from") : NULL;
    if (from_text && jid_parse(from_text, &from, &why) == 0 && served_find(from.domain))
        local = from.domain;
    s2s_out_send(local, remote_domain, stanza);
    jid_free(&from);
}

void s2s_free_all(void)
{
    s2s_in_free_all();
    s2s_out_free_all();
    s2s_dns_shutdown();
}
