/* c2s.h — client-to-server streams (RFC 6120): stream headers and features, STARTTLS, SASL,
 * resource binding, then stanzas into the router. The negotiation is c2s.c; what carries it is
 * a link (c2s_link.h), the TCP one being c2s_tcp.c. */
#ifndef TERN_C2S_H
#define TERN_C2S_H

#include <stdbool.h>

#include "tern/error.h"

typedef struct c2s c2s;

/* A new client socket from a listener; direct_tls for XEP-0368 ports (c2s_tcp.c). */
void c2s_accept(int fd, bool direct_tls);
/* Ends the stream with a stream error and closes the connection. Links also report their
 * framing and XML errors this way. */
void c2s_stream_error(c2s *c, tern_stream_error cond, const char *text);
/* Ends every client stream with <system-shutdown/> (graceful stop). */
void c2s_shutdown_all(void);
/* Frees every client connection at exit (after the grace period of a stop). */
void c2s_free_all(void);

#endif
