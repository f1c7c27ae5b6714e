/* c2s_register.h — XEP-0077 in-band registration on a client stream, before authentication.
 * Offered only where the host says `registration = yes`, and only on an encrypted stream (a
 * password travels in it). Changing the password or removing the account after login is the
 * `register` module's work. */
#ifndef TERN_C2S_REGISTER_H
#define TERN_C2S_REGISTER_H

#include <stdbool.h>

#include "host/host.h"

/* Whether to offer registration on this stream (and accept its iq). */
bool register_allowed(const tern_host *host, bool encrypted);
/* The <register/> stream feature. */
void register_add_feature(tern_xml *features);
/* Whether `x` is an iq in jabber:iq:register (the only stanza allowed before authentication). */
bool register_is_request(const tern_xml *x);
/* Answers a registration iq: the form, a new account, or an error. `peer` is the client's
 * "address:port" (the rate limit counts per address). Returns the reply; the caller sends and
 * frees it. */
tern_xml *register_handle(tern_host *host, const char *peer, const tern_xml *iq);
/* At exit: forgets the rate-limit table. */
void register_release(void);

#endif
