/* tls.h — GnuTLS server credentials shared by every TLS listener and STARTTLS.
 *
 * All hosts' certificate/key pairs live in one credentials object: GnuTLS picks the pair whose
 * names match the client's SNI (falling back to the first). SIGHUP builds a new tls_ctx and
 * swaps it in; connections keep a reference to the one they started with. */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

typedef struct tls_ctx tls_ctx;

/* Loads every host's certificate (host-specific or [tls] default). NULL with a reason in err
 * when a file cannot be read or a key does not match. */
tls_ctx *tls_ctx_new(const config *cfg, char *err, size_t err_len);
void tls_ctx_ref(tls_ctx *t);
void tls_ctx_unref(tls_ctx *t);

/* A server-side session on a connected socket. alpn may be NULL ("xmpp-client" for XEP-0368
 * direct TLS). Returns NULL on failure (logged). */
gnutls_session_t tls_session_new(tls_ctx *t, int fd, const char *alpn);

/* A server-side session for an incoming server-to-server stream: like tls_session_new, but it
 * asks the peer for its certificate (optionally: a peer without one may still use dialback),
 * without listing our CAs, so that peers send the certificate they have. */
gnutls_session_t tls_s2s_session_new(tls_ctx *t, int fd);

/* A client-side session for an outgoing server-to-server stream: SNI `server_name`, our
 * certificates available for the peer to request, ALPN `alpn` (may be NULL). The peer's
 * certificate is not verified during the handshake (dialback authenticates peers without
 * trusted ones); tls_verify_peer tells afterwards whether it is valid. */
gnutls_session_t tls_client_session_new(tls_ctx *t, int fd, const char *server_name,
                                        const char *alpn);

/* Whether the certificate the peer presented on an established session is valid for the XMPP
 * domain `domain`: a chain to the trusted CAs ([tls] ca_file, or the system store) and, per
 * RFC 6125 / RFC 7590, a DNS-ID (subjectAltName dNSName, wildcards in the first label) or an
 * XmppAddr (RFC 6120 §13.7.1.4) naming it; a certificate without subjectAltName is matched by
 * its CN. 0 when valid, or -1 with a short reason in `why`. */
int tls_verify_peer(gnutls_session_t s, const char *domain, char *why, size_t why_len);

/* Channel binding data (RFC 9266 tls-exporter, RFC 5929 tls-server-end-point, and RFC 5929
 * tls-unique on TLS 1.2 only) of an established session: 0 and *out filled (free out->data with
 * gnutls_free) or -1. */
int tls_channel_binding(gnutls_session_t s, const char *type, gnutls_datum_t *out);

#endif
