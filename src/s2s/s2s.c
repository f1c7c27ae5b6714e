/* s2s.c — the entry points of federation: what the s2s module calls (tern/s2s.h) and the
 * shutdown of every link, above both halves (s2s_in.c, s2s_out.c). */
#include "s2s/s2s.h"

#include "host/host.h"
#include "s2s/s2s_dns.h"
#include "tern/s2s.h"

void tern_s2s_send(tern_host *host, const char *remote_domain, tern_xml *stanza)
{
    s2s_out_send(host->name, remote_domain, stanza);
}

void s2s_free_all(void)
{
    s2s_in_free_all();
    s2s_out_free_all();
    s2s_dns_shutdown();
}
