/* c2s.h — client-to-server streams (RFC 6120): stream headers and features, STARTTLS, SASL,
 * resource binding, then stanzas into the router. The negotiation is c2s.c; what carries it is
 * a link (tern/c2s.h), the TCP one being c2s_tcp.c. */
#ifndef TERN_C2S_H
#define TERN_C2S_H

#include <stdbool.h>

#include "tern/c2s.h"
#include "tern/error.h"

/* A new client socket from a listener; direct_tls for XEP-0368 ports (c2s_tcp.c). */
void c2s_accept(int fd, bool direct_tls);
/* Ends every client stream with <system-shutdown/> (graceful stop). */
void c2s_shutdown_all(void);
/* Frees every client connection at exit (after the grace period of a stop). */
void c2s_free_all(void);

#endif
