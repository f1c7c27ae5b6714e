/* session_order.h — a session's output kept in order across work that completes later
 * (tern_session_reserve() in tern/module.h; doc/architecture.md §3). session.c calls these:
 * tern_session_reserve() makes the queue and its slots, session_deliver() asks order_hold()
 * first, session_free() detaches the queue. The queue knows the session only through the
 * deliver function session.c gives it. */
#ifndef TERN_SESSION_ORDER_H
#define TERN_SESSION_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "host/host.h"
#include "tern/module.h"

typedef struct session_order session_order;

/* The queue of session s: `deliver` sends a stanza through the delivery hooks, past the
 * hold (session_deliver_now). */
session_order *order_new(tern_session *s, void (*deliver)(tern_session *s, const tern_xml *x),
                         uint64_t log_id);
/* A slot at the end of the queue, reserved by `owner` (host->running). */
tern_output_slot *order_reserve(session_order *q, const module_instance *owner);

/* Whether `stanza` was held behind an open slot of the session (the queue keeps a
 * reference); false: deliver it now. */
bool order_hold(session_order *q, const tern_xml *stanza);
/* The session is going away: open slots stay valid (their release sends nothing), and the
 * queue is freed with the last of them. */
void order_detach(session_order *q);
/* Releases the open slots `owner` reserved (it is being unloaded). */
void order_release_owned(session_order *q, const module_instance *owner);

#endif
