/* bosh_link.h — XMPP over BOSH (XEP-0124, XEP-0206), bottom up:
 *
 *   bosh_session.c  a session: its sid (the table), the rid window and in-order processing,
 *                   held requests, the responses (and the last ones kept for resending), the
 *                   outgoing queue, wait, inactivity and pause.
 *   bosh_link.c      the c2s link (tern/c2s.h): one client stream per BOSH session, so SASL,
 *                   binding, routing, presence and offline delivery are those of a TCP client.
 *   bosh_route.c    the HTTP route /http-bind: parses a request's <body/>, creates sessions
 *                   (giving each its link) and hands requests to them.
 *
 * Ownership: the c2s owns its link, and the link owns the bosh_session; bosh_session_free()
 * runs only from the link's `free` (when c2s destroys itself). bosh_route.c ends a session by
 * calling bosh_link_ended() from an event of its own (never while c2s is on the stack). */
#ifndef TERN_MODULE_BOSH_LINK_H
#define TERN_MODULE_BOSH_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <tern/error.h>
#include <tern/xml.h>

#define NS_HTTPBIND "http://jabber.org/protocol/httpbind" /* XEP-0124 */
#define NS_XBOSH "urn:xmpp:xbosh"                         /* XEP-0206 */

typedef struct bosh_session bosh_session;
typedef struct bosh_link bosh_link;

/* ---- bosh_session.c: what the link does to its session (all of it only queues) ---- */

/* Our stream header's id (XEP-0206 'authid') and 'from', for the session creation response. */
void bosh_set_stream_info(bosh_session *s, const char *id, const char *from);
/* One element for the client (serialized at once: the tree stays the caller's). */
void bosh_queue(bosh_session *s, const tern_xml *element);
/* The <features/> element, sent as <stream:features/> (XEP-0206 §3). */
void bosh_queue_features(bosh_session *s, const tern_xml *features);
/* The end of the stream: a <stream:error/> (condition remote-stream-error, XEP-0206 §6), or
 * NULL for a plain close; the session ends once the terminal <body/> is out. */
void bosh_terminate(bosh_session *s, const tern_xml *stream_error);
/* The client's next request should carry xmpp:restart='true' (after SASL success). */
void bosh_expect_restart(bosh_session *s);
/* Holds back the payloads of further requests (the delay after a failed authentication). */
void bosh_pause_input(bosh_session *s, bool paused);
/* Whether the session was created over HTTPS (then all its requests must be). */
bool bosh_secure(const bosh_session *s);
const char *bosh_peer(const bosh_session *s);
void bosh_session_free(bosh_session *s);

/* ---- bosh_link.c: what the session does to its client stream ----
 * The session calls these through the table bosh_route.c gives it (s->link_ops), so it never
 * calls its link by name: bosh_session.c is below bosh_link.c, which is below bosh_route.c. */

typedef struct bosh_link_ops {
    /* The stream header from a session creation or restart request's <body/>: its 'to',
     * 'from', xml:lang and xmpp:version. */
    void (*header)(bosh_link *l, const tern_xml *body);
    /* A payload, in rid order; ownership passes. */
    void (*element)(bosh_link *l, tern_xml *element);
    /* The client's type='terminate' (after the payloads of that request). */
    void (*close)(bosh_link *l);
    /* A payload the client sent is unusable (XML rules, size): a stream error, as on TCP. */
    void (*error)(bosh_link *l, tern_stream_error cond, const char *text);
    /* The session is over: the c2s ends its session and destroys itself (and with it s). */
    void (*ended)(bosh_link *l, const char *reason);
} bosh_link_ops;

/* The c2s link of a BOSH session. */
extern const bosh_link_ops bosh_c2s_link;
/* A new client stream for session s (counted like any client connection). */
bosh_link *bosh_link_new(bosh_session *s);
uint64_t bosh_link_id(const bosh_link *l);

#endif
