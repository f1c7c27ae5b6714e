/* tern/c2s.h — client streams for transport modules (TCP in the core; WebSocket and BOSH as
 * modules): what a client stream is carried over, the boundary between the negotiation
 * (c2s.c: header checks, features, STARTTLS, SASL, registration, bind, the session) and the
 * framing and transport of the bytes (src/xmpp/c2s_tcp.c, modules/websocket/ws_link.c and
 * modules/bosh/bosh_link.c).
 *
 * Why a boundary: RFC 7395 and XEP-0206 carry the very same XMPP negotiation as RFC 6120 over
 * other framings, and users expect SASL, bind and routing to behave identically on each. So
 * c2s.c speaks only in trees and events ("open the stream with this header", "send this
 * element", "the client's stream closed") and never writes stream syntax itself; a link turns
 * those into bytes and turns bytes back into the calls at the bottom of this file.
 *
 * How each transport maps onto the operations:
 *   TCP (RFC 6120, c2s_tcp.c): `open` writes <?xml?><stream:stream ...>; elements are serialized
 *     with jabber:client as the default namespace in force; features go inside
 *     <stream:features/>; `close` writes </stream:stream>; `restart` resets the XML parser;
 *     STARTTLS is supported.
 *   WebSocket (RFC 7395): one element per text frame, each a complete document, so every
 *     element carries its own xmlns (serialize with no context namespace). `open` sends <open/>
 *     in urn:ietf:params:xml:ns:xmpp-framing with the same header fields; `close` sends
 *     <close/>; a stream error is a <stream:error/> frame followed by <close/> (§3.6.1);
 *     `restart` only expects a new <open/>; `start_tls` is NULL (TLS is the wss:// layer's, and
 *     `encrypted` reports it). The link passes the client's <open/> as the header with
 *     default_ns "jabber:client", since RFC 7395 has no stream-level default namespace.
 *   BOSH (XEP-0124/0206, bosh_link.c): output is queued and flushed as the children of <body/>
 *     responses to held requests; `open` records the header fields for the session-creation
 *     response (authid = id, from, ver, xmpp:version) rather than writing anything; `restart`
 *     answers the client's xmpp:restart request (whose <body/> the link passes as the header);
 *     `close` and a stream error become <body type='terminate'/> (the error as
 *     condition='remote-stream-error' with the <stream:error/> inside); `pause_reading` holds
 *     back incoming bodies; `start_tls` is NULL.
 *
 * Ownership: c2s owns the link context. It calls `free` exactly once, when it destroys itself:
 * after the link reported c2s_link_ended(), or at exit. The link never frees the c2s. */
#ifndef TERN_PUBLIC_C2S_H
#define TERN_PUBLIC_C2S_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "tern/error.h"
#include "tern/xml.h"

typedef struct c2s c2s;

/* Our stream header (RFC 6120 §4.7). Strings are borrowed for the call. */
typedef struct c2s_stream_header {
    const char *id;      /* fresh for every header we send */
    const char *from;    /* our domain, or NULL when the client named none we serve */
    const char *to;      /* the client's JID from its header, or NULL */
    const char *version; /* "1.0" */
    const char *lang;    /* xml:lang */
} c2s_stream_header;

/* The operations c2s performs on its link. Output operations only queue; none of them calls
 * back into c2s synchronously. After `stream_error` or `close`, or a failed `start_tls`, the
 * link ignores further output: the stream is over. */
typedef struct c2s_link {
    /* Open our side of the stream (again after each restart). */
    void (*open)(void *ctx, const c2s_stream_header *header);
    /* The features element (<features/> in NS_STREAMS): the link frames it as it must. */
    void (*send_features)(void *ctx, const tern_xml *features);
    /* One top-level element: a stanza, or a nonza such as <success/> (the tree stays the
     * caller's). */
    void (*send)(void *ctx, const tern_xml *element);
    /* The <error/> in NS_STREAMS (RFC 6120 §4.9), then our close; the link ends the transport
     * once that is out. c2s has already opened the stream if it had not (§4.9.1.2). */
    void (*stream_error)(void *ctx, const tern_xml *error);
    /* Our closing of the stream, then the end of the transport once that is out. */
    void (*close)(void *ctx);
    /* Expect a new stream header from the client: after <success/> (RFC 6120 §6.4.6) and after
     * a STARTTLS handshake (§5.4.3.3). Input the client sent before the restart is dropped. */
    void (*restart)(void *ctx);
    /* NULL when the link has no STARTTLS. Otherwise begins the TLS handshake once what is
     * queued (the <proceed/>) is out, delivering no input until it finished; -1 when TLS
     * cannot start, in which case the link has already ended the transport without a word
     * (the client now expects a handshake, not XML). */
    int (*start_tls)(void *ctx);
    /* Stop and resume delivering input (the delay after a failed authentication). */
    void (*pause_reading)(void *ctx, bool paused);
    /* Whether the client's bytes are protected by TLS; a link over an untrusted proxy says
     * false. */
    bool (*encrypted)(void *ctx);
    /* SASL channel binding (RFC 9266, RFC 5929): the data of `type` ("tls-exporter",
     * "tls-server-end-point", "tls-unique") for the TLS session carrying the stream, in *out
     * (allocated with gnutls_malloc, the caller frees it); -1 when there is none to bind to (no
     * TLS yet, a type the session cannot give). NULL for a link that no single TLS session
     * carries (BOSH). */
    int (*channel_binding)(void *ctx, const char *type, gnutls_datum_t *out);
    /* The client's "address:port" (rate limits and logs). */
    const char *(*peer)(void *ctx);
    /* Frees the link's state; see "Ownership" above. */
    void (*free)(void *ctx);
} c2s_link;

/* Whether another client stream from `peer` ("address:port") may start now: the server is
 * not stopping, and neither [c2s] max_connections nor the per-address and unauthenticated
 * limits are reached; *why says why not (a refusal for a limit is logged here). */
bool c2s_accepting(const char *peer, const char **why);
/* A new client stream from `peer` over `link`, with the login timer running (counted against
 * the limits until it ends). Nothing is sent until the client's header arrives. */
c2s *c2s_new(const c2s_link *link, void *link_ctx, const char *peer);
/* The id of the stream's logs and of its session. */
uint64_t c2s_id(const c2s *c);

/* Input: what the link reports, exactly the events of an RFC 6120 stream. */

/* The client's stream header: to, from, version and xml:lang as attributes; `default_ns` is
 * the content namespace it declared ("" if none). Borrowed for the call. */
void c2s_received_header(c2s *c, const tern_xml *header, const char *default_ns);
/* One complete top-level element; ownership passes to c2s. */
void c2s_received_element(c2s *c, tern_xml *element);
/* The client closed its stream: c2s answers with its own close. */
void c2s_received_close(c2s *c);
/* A framing or XML error the link found: ends the stream with that stream error and closes
 * the connection. */
void c2s_stream_error(c2s *c, tern_stream_error cond, const char *text);
/* [c2s] max_stanza_size: the largest element a client may send, whatever carries it. */
size_t tern_c2s_max_stanza_size(void);

/* The transport is gone (peer closed, socket error, flushed after our close, or timed out).
 * c2s ends the session and destroys itself, freeing the link. Never call it from inside a
 * link operation or while c2s is on the stack (e.g. from within c2s_received_element): c2s
 * would be freed under its own feet; defer it until that call returned. */
void c2s_link_ended(c2s *c, const char *reason);

#endif
