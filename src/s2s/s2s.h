/* s2s.h — server-to-server streams (RFC 6120 with jabber:server), inside the core.
 *
 * Outgoing links (s2s_out.c) carry stanzas from one local domain to one remote domain: one link
 * per (local, remote) pair, set up on demand (DNS in s2s_dns.c, TCP, STARTTLS, Server Dialback)
 * with a bounded queue meanwhile. Incoming streams (s2s_in.c) accept a peer's stanzas once it
 * proved, by dialback, that it speaks for the domain in their 'from'. Dialback needs both
 * sides at once: an incoming db:result is checked by sending db:verify over an outgoing link
 * to the claimed domain, and the answer comes back on that link; the calls below connect the
 * two halves. Modules reach all of this through tern/s2s.h. */
#ifndef TERN_S2S_H
#define TERN_S2S_H

#include <stdbool.h>
#include <stdint.h>

#include "net/conn.h"
#include "tern/error.h"
#include "tern/xml.h"

#define NS_DIALBACK         "jabber:server:dialback"        /* XEP-0220 */
#define NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"

/* Seconds: a link must be authenticated within this, or its stanzas bounce with
 * remote-server-timeout (incoming streams that do not authenticate are closed). */
#define S2S_HANDSHAKE_SECONDS 15
/* An outgoing link that carried nothing for this long is closed. */
#define S2S_IDLE_SECONDS 300
/* Stanzas waiting for one link to come up; beyond, new ones bounce at once. */
#define S2S_MAX_QUEUE 1000

/* The answer to a dialback verification for the incoming stream `in_id`. */
typedef void (*s2s_verified_fn)(uint64_t in_id, const char *local, const char *remote,
                                bool valid);

/* s2s_out.c */
/* Sends (or queues) a stanza from `local` (a local host) to `remote`; takes ownership. */
void s2s_out_send(const char *local, const char *remote, tern_xml *stanza);
/* Asks the authoritative server of `remote` whether `key` is its key for the stream `id`
 * (XEP-0220 §2.1.2). The answer goes to done(in_id, ...) (s2s_in_verified: the incoming
 * side passes it, so the outgoing side never calls it by name). */
void s2s_out_verify(const char *local, const char *remote, const char *id, const char *key,
                    uint64_t in_id, s2s_verified_fn done);
void s2s_out_free_all(void);

/* s2s_in.c */
void s2s_accept(int fd);
/* The answer to s2s_out_verify: the incoming stream `in_id` (if it still exists) tells its
 * peer and, when valid, accepts stanzas from `remote` to `local`. */
void s2s_in_verified(uint64_t in_id, const char *local, const char *remote, bool valid);
void s2s_in_free_all(void);

/* s2s_proto.c */
/* XEP-0185: HMAC-SHA256(SHA256(secret), receiving ' ' originating ' ' stream id), in hex. */
void s2s_dialback_key(const char *receiving, const char *originating, const char *id,
                      char out[65]);
/* Our stream header on a jabber:server stream with the dialback namespace declared. `id` and
 * `to` may be NULL. */
void s2s_write_header(conn *c, const char *from, const char *to, const char *id);
/* A dialback element, <db:result/> or <db:verify/> (`name`), with `key` as its text when not
 * NULL; NULL attributes are left out. Written with the db: prefix our header declares, as in
 * XEP-0220's examples: ejabberd's parser matches the prefixed name only and silently drops
 * <result xmlns='jabber:server:dialback'/>, the same element to a namespace-aware reader. */
void s2s_write_dialback(conn *c, const char *name, const char *from, const char *to,
                        const char *id, const char *type, const char *key);
/* <stream:error> with the condition, then </stream:stream>. */
void s2s_write_stream_error(conn *c, tern_stream_error cond, const char *text);
/* A stanza received in jabber:server, as the jabber:client tree the rest of tern uses (the
 * input is consumed); NULL when it cannot be converted. */
tern_xml *s2s_import_stanza(tern_xml *x);

/* s2s.c */
/* At exit, before modules unload. */
void s2s_free_all(void);

#endif
