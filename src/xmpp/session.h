/* session.h — an authenticated, bound client resource: what the router delivers to.
 *
 * A session does not know its transport: c2s over TCP, WebSocket or BOSH provides
 * a session_transport, so everything above treats every client the same. */
#ifndef TERN_SESSION_H
#define TERN_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "host/host.h"
#include "tern/module.h"

typedef struct session_transport {
    /* Queue a stanza for the client (the stanza stays the caller's). */
    void (*send)(void *ctx, const tern_xml *stanza);
    /* End the stream with a stream error (e.g. conflict when another session takes over). */
    void (*close)(void *ctx, tern_stream_error cond, const char *text);
} session_transport;

typedef struct session_data session_data;

struct tern_session {
    uint64_t id;
    tern_host *host;
    tern_jid jid;                  /* full JID once bound */
    bool bound;
    bool available;                /* sent initial presence, not yet unavailable */
    int priority;
    tern_xml *presence;            /* last broadcast presence, or NULL */
    const session_transport *transport;
    void *transport_ctx;
    tern_session *next_of_user;    /* routing table list (host.h user_sessions) */
    session_data *data;            /* modules' per-session data */
    struct session_order *order;   /* output held behind slots (session_order.c), or NULL */
};

tern_session *session_new(tern_host *host, uint64_t id, const session_transport *t, void *ctx);
/* Binds node@host/resource. resource NULL or empty: a random one. A session already bound to
 * the same full JID is unbound and closed with <conflict/> (RFC 6120 §7.7.2.2: the new session
 * takes over). -1 with the error to answer in *cond and *why: bad-request when the resource
 * fails preparation, resource-constraint when the account already has max_sessions others. */
int session_bind(tern_session *s, const char *node, const char *resource, unsigned max_sessions,
                 tern_stanza_error *cond, const char **why);
/* Records broadcast presence (no 'to') from the client: available/unavailable and priority
 * (RFC 6121 §4.7.2.3), firing session/available or session/unavailable. */
void session_set_presence(tern_session *s, const tern_xml *presence);
/* Hands a stanza to the session's client through the delivery hooks (tern_hook_deliver):
 * what the router and tern_session_send() do. The stanza stays the caller's. */
void session_deliver(tern_session *s, const tern_xml *stanza);
/* The same without the output order's hold: for the stanzas whose turn has come. */
void session_deliver_now(tern_session *s, const tern_xml *stanza);
/* Frees the per-session data a module attached (before the module's code is unmapped): of
 * one session, or of every session of the host (the loader's module_env). */
void session_drop_owned_data(tern_session *s, const module_instance *owner);
void session_drop_module_data(tern_host *host, const module_instance *owner);
/* Unbinds (firing session/closed while the session is still bound) and frees. */
void session_free(tern_session *s);

#endif
