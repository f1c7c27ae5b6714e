/* tern/s2s.h — what the s2s module asks of the core's server-to-server links (src/s2s/s2s.h). */
#ifndef TERN_PUBLIC_S2S_H
#define TERN_PUBLIC_S2S_H

#include "tern/module.h"

/* Sends a stanza from the local host `host` (or from a domain one of its modules serves, when
 * that is the stanza's 'from') to `remote_domain` over an outgoing link: queued
 * while the link is set up, then sent in order; bounced to its sender with
 * remote-server-not-found or remote-server-timeout when the link fails. Takes ownership. */
void tern_s2s_send(tern_host *host, const char *remote_domain, tern_xml *stanza);

#endif
