/* sasl.h — SASL for client streams (RFC 6120 §6): which mechanisms are offered, and one
 * authentication exchange with SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS) or PLAIN. Accounts are
 * looked up on the stream's host; a missing account and a wrong password look the same. */
#ifndef TERN_SASL_H
#define TERN_SASL_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "host/host.h"

typedef struct sasl_exchange sasl_exchange;

/* The channel-binding types SASL can bind to, for links that must capture them up front
 * (c2s_relay.c). tls-unique exists on TLS 1.2 only: tls.c gives none on TLS 1.3. */
#define SASL_N_BINDING_TYPES 3
extern const char *const sasl_binding_types[SASL_N_BINDING_TYPES];

typedef enum sasl_status { SASL_CONTINUE, SASL_SUCCESS, SASL_FAILURE } sasl_status;

/* The TLS channel a client stream can bind to: `get` fills *out (gnutls_malloc'd) with the
 * binding data of `type`, or returns -1 when it has none of that type. */
typedef struct sasl_channel {
    int (*get)(void *ctx, const char *type, gnutls_datum_t *out);
    void *ctx;
} sasl_channel;

/* Adds <mechanisms/> (and XEP-0440 <sasl-channel-binding/> when -PLUS is possible) to the
 * features. encrypted: the client's bytes are protected (PLAIN needs it); channel: what to
 * bind to, or NULL when there is nothing to bind to (no TLS, or a link such as BOSH whose TLS
 * is not one channel). Returns whether -PLUS was offered. */
bool sasl_offer(tern_xml *features, bool encrypted, const sasl_channel *channel);

/* Starts an exchange for `mech`. NULL with *failure ("invalid-mechanism",
 * "encryption-required") when it cannot be used on this stream. unbindable_user: what
 * sasl_unbindable_user() said of an earlier attempt on this stream (TLS channel), or NULL. */
sasl_exchange *sasl_start(const char *mech, tern_host *host, bool encrypted,
                          const sasl_channel *channel, bool plus_offered,
                          const char *unbindable_user, const char **failure);
/* One step with the decoded client data. CONTINUE: send *out as <challenge/>. SUCCESS: send
 * *out (may be NULL) with <success/>. FAILURE: *failure is the condition. *out is malloc'd. */
sasl_status sasl_step(sasl_exchange *ex, const unsigned char *in, size_t len, char **out,
                      size_t *out_len, const char **failure);
/* The authenticated account's prepared localpart, after SUCCESS. */
const char *sasl_node(const sasl_exchange *ex);
/* The mechanism's name ("SCRAM-SHA-256-PLUS"), for the log. */
const char *sasl_mechanism(const sasl_exchange *ex);
/* Whether a failure came from checking credentials (answered after a delay, RFC 6120 §6.4.5
 * retries counted) rather than from the protocol. */
bool sasl_failure_is_credentials(const sasl_exchange *ex);
/* After a failed SCRAM-*-PLUS attempt: the user whose client proved, with its password, that
 * its only channel binding is tls-unique taken over TLS 1.3, which nothing here can check
 * (scram_server_unbindable_user); NULL otherwise. That user's "y" on a later attempt on the
 * same stream is then no downgrade (doc/jid-and-sasl.md). Owned by the exchange. */
const char *sasl_unbindable_user(const sasl_exchange *ex);
void sasl_free(sasl_exchange *ex);

#endif
