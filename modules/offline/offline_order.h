/* offline_order.h — keeping a session's output in order while storage works.
 *
 * A stanza that causes storage work (a message stored offline, a session's delivery of its
 * stored messages) is answered when the work completes, on a later turn of the main loop. So
 * that the client still sees everything in the order it would have without the wait, the
 * module reserves a slot in the session's output when it queues the work: whatever is
 * delivered to the session afterwards is held behind the slot (order_hold, a delivery hook),
 * the completion puts its answer into the slot, and releasing the slot sends it and then what
 * was held. Hence also: a reply to a client's later stanza (a ping's pong) arrives only once
 * the write its earlier message caused is committed. */
#ifndef OFFLINE_ORDER_H
#define OFFLINE_ORDER_H

#include <tern/module.h>

/* Above every other delivery hook: held stanzas and slot contents are sent past it, so the
 * hooks below (CSI, Stream Management) see them as any other. */
#define ORDER_PRIORITY 1000
/* Stanzas held for a session at most; past it they go straight out, out of order, rather than
 * into memory without bound. */
#define ORDER_MAX_HELD 256

typedef struct order_slot order_slot;

/* A slot at the end of s's output. */
order_slot *order_reserve(tern_session *s);
/* The session the slot belongs to, or NULL once that session ended. */
tern_session *order_slot_session(const order_slot *slot);
/* Queues a stanza in the slot (it stays the caller's; a reference is kept). */
void order_slot_add(order_slot *slot, const tern_xml *stanza);
/* The slot is complete: frees it and sends what is no longer waiting behind another. */
void order_release(order_slot *slot);

/* The delivery hook (at ORDER_PRIORITY) that holds stanzas behind open slots. */
tern_event_result order_hold(tern_session *s, const tern_xml *stanza, void *data);

#endif
