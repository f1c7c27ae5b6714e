/* session_order.c — a session's output kept in order behind slots (tern/module.h,
 * "output order").
 *
 * A module whose answer to a stanza waits for work that completes on a later loop turn (a
 * queued storage write) reserves a slot at the end of the session's output. Whatever is
 * delivered to the session afterwards is held behind the slot; the completion puts its
 * answer into the slot and releases it, and the head of the queue goes out as long as it is
 * a held stanza or a released slot. So the client sees what it would have seen had the work
 * been instant: an iq result before the answer to its next stanza, stored messages before the
 * live ones sent after them.
 *
 * Per session, one queue of entries in output order, each a held stanza or a slot. The queue
 * outlives its session while slots of it are open (their holders still have the pointer); a
 * release after the session ended sends nothing. Held stanzas go out through the delivery
 * hooks like any other, when their turn comes. */
#include "xmpp/session_order.h"

#include <stdlib.h>

#include "core/util.h"
#include "tern/log.h"

/* Stanzas held for one session at most. A slot stays open for one storage commit (a few
 * milliseconds); a session that receives more than this meanwhile gets the rest at once,
 * out of order, rather than the server holding them without bound. */
#define ORDER_MAX_HELD 1024

typedef struct order_entry order_entry;

struct tern_output_slot {
    session_order *q;
    const module_instance *owner; /* the module that reserved it (released if it unloads) */
    bool released;
    tern_xml **stanzas;
    size_t n, cap;
};

struct order_entry {
    order_entry *next;
    tern_xml *stanza;        /* a held stanza, or NULL for a slot */
    tern_output_slot *slot;
};

struct session_order {
    tern_session *session;   /* NULL once the session ended */
    void (*deliver)(tern_session *s, const tern_xml *x);
    uint64_t log_id;
    order_entry *head, *tail;
    size_t n_held;
    size_t open;             /* slots not yet released */
    bool warned;             /* ORDER_MAX_HELD was logged for this session */
};

static void entry_free(order_entry *e)
{
    if (e->stanza)
        xml_unref(e->stanza);
    if (e->slot) {
        for (size_t i = 0; i < e->slot->n; i++)
            xml_unref(e->slot->stanzas[i]);
        free(e->slot->stanzas);
        free(e->slot);
    }
    free(e);
}

static void queue_free(session_order *q)
{
    while (q->head) {
        order_entry *e = q->head;
        q->head = e->next;
        entry_free(e);
    }
    free(q);
}

static void append(session_order *q, order_entry *e)
{
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
}

session_order *order_new(tern_session *s, void (*deliver)(tern_session *s, const tern_xml *x),
                         uint64_t log_id)
{
    session_order *q = xcalloc(1, sizeof *q);
    q->session = s;
    q->deliver = deliver;
    q->log_id = log_id;
    return q;
}

tern_output_slot *order_reserve(session_order *q, const module_instance *owner)
{
    tern_output_slot *slot = xcalloc(1, sizeof *slot);
    slot->q = q;
    slot->owner = owner;
    order_entry *e = xcalloc(1, sizeof *e);
    e->slot = slot;
    append(q, e);
    q->open++;
    return slot;
}

tern_session *tern_slot_session(const tern_output_slot *slot)
{
    return slot->q->session;
}

void tern_slot_send(tern_output_slot *slot, const tern_xml *stanza)
{
    session_order *q = slot->q;
    if (!q->session || slot->released)
        return;
    if (q->head && q->head->slot == slot) {
        /* Nothing is ahead of it: out at once, so a long answer streams instead of piling
         * up in the slot. */
        q->deliver(q->session, stanza);
        return;
    }
    if (slot->n == slot->cap) {
        slot->cap = slot->cap ? slot->cap * 2 : 4;
        slot->stanzas = xrealloc(slot->stanzas, slot->cap * sizeof *slot->stanzas);
    }
    tern_xml *x = (tern_xml *)stanza; /* referenced, never changed */
    xml_ref(x);
    slot->stanzas[slot->n++] = x;
}

/* Sends (or, once the session ended, drops) the head of the queue while it is ready. */
static void flush(session_order *q)
{
    while (q->head && (q->head->stanza || q->head->slot->released)) {
        order_entry *e = q->head;
        q->head = e->next;
        if (!q->head)
            q->tail = NULL;
        if (e->stanza)
            q->n_held--;
        if (q->session) {
            if (e->stanza) {
                q->deliver(q->session, e->stanza);
            } else {
                for (size_t i = 0; i < e->slot->n; i++)
                    q->deliver(q->session, e->slot->stanzas[i]);
            }
        }
        entry_free(e);
    }
}

void tern_slot_release(tern_output_slot *slot)
{
    session_order *q = slot->q;
    if (slot->released)
        return;
    slot->released = true;
    q->open--;
    flush(q);
    if (!q->session && q->open == 0)
        queue_free(q);
}

bool order_hold(session_order *q, const tern_xml *stanza)
{
    if (!q->head)
        return false;
    if (q->n_held >= ORDER_MAX_HELD) {
        if (!q->warned)
            log_warn(q->log_id, "output order: %d stanzas held; sending the rest at once",
                     ORDER_MAX_HELD);
        q->warned = true;
        return false;
    }
    order_entry *e = xcalloc(1, sizeof *e);
    e->stanza = (tern_xml *)stanza; /* referenced, never changed */
    xml_ref(e->stanza);
    append(q, e);
    q->n_held++;
    return true;
}

void order_detach(session_order *q)
{
    q->session = NULL;
    if (q->open == 0)
        queue_free(q);
}

void order_release_owned(session_order *q, const module_instance *owner)
{
    for (order_entry *e = q->head; e; e = e->next) {
        if (e->slot && !e->slot->released && e->slot->owner == owner) {
            e->slot->released = true;
            q->open--;
        }
    }
    flush(q);
}
