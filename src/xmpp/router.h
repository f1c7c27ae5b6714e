/* router.h — stanza routing (RFC 6121 §8). */
#ifndef TERN_ROUTER_H
#define TERN_ROUTER_H

#include "tern/module.h"

/* Routes a stanza whose 'from' is set. Takes ownership. `origin` is the local session it came
 * from (its 'from' already stamped), or NULL for stanzas the server itself generates. */
void router_route(tern_xml *stanza, tern_session *origin);
/* Sends the RFC 6120 §8.3 error for ev's stanza back to its sender. */
void router_reply_error(const tern_stanza_event *ev, tern_stanza_error cond, const char *text);

#endif
