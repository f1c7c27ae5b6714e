/* offline_order.c — a session's output kept in order behind slots (offline_order.h).
 *
 * Per session, a queue of entries in output order, each a held stanza or a slot. The head
 * goes out as soon as it is a stanza or a released slot. The queue outlives its session while
 * slots of it are still with queued storage work (`slots`), so a completion after the session
 * ended finds a queue that says so (session NULL) and sends nothing. */
#include "offline_order.h"

#include <stdbool.h>
#include <stdlib.h>

#include <tern/util.h>

typedef struct entry entry;
typedef struct order_queue order_queue;

struct order_slot {
    order_queue *q;
    bool released;
    tern_xml **stanzas;
    size_t n, cap;
};

struct entry {
    entry *next;
    tern_xml *stanza;  /* a held stanza, or NULL for a slot */
    order_slot *slot;
};

struct order_queue {
    tern_session *session; /* NULL once the session ended */
    entry *head, *tail;
    size_t n_held;
    size_t slots;          /* slots not yet released */
};

/* The address keys the queue in the session's data. */
static const char order_key;

static void slot_free(order_slot *slot)
{
    for (size_t i = 0; i < slot->n; i++)
        xml_unref(slot->stanzas[i]);
    free(slot->stanzas);
    free(slot);
}

static void entry_free(entry *e)
{
    if (e->stanza)
        xml_unref(e->stanza);
    if (e->slot)
        slot_free(e->slot);
    free(e);
}

static void queue_free(order_queue *q)
{
    while (q->head) {
        entry *e = q->head;
        q->head = e->next;
        entry_free(e);
    }
    free(q);
}

/* The session ended (or the module unloads, after its storage work completed). */
static void queue_session_gone(void *data)
{
    order_queue *q = data;
    q->session = NULL;
    if (q->slots == 0)
        queue_free(q);
}

static void append(order_queue *q, entry *e)
{
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
}

order_slot *order_reserve(tern_session *s)
{
    order_queue *q = tern_session_get_data(s, &order_key);
    if (!q) {
        q = xcalloc(1, sizeof *q);
        q->session = s;
        tern_session_set_data(s, &order_key, q, queue_session_gone);
    }
    order_slot *slot = xcalloc(1, sizeof *slot);
    slot->q = q;
    entry *e = xcalloc(1, sizeof *e);
    e->slot = slot;
    append(q, e);
    q->slots++;
    return slot;
}

tern_session *order_slot_session(const order_slot *slot)
{
    return slot->q->session;
}

void order_slot_add(order_slot *slot, const tern_xml *stanza)
{
    if (!slot->q->session)
        return;
    if (slot->n == slot->cap) {
        slot->cap = slot->cap ? slot->cap * 2 : 8;
        slot->stanzas = xrealloc(slot->stanzas, slot->cap * sizeof *slot->stanzas);
    }
    tern_xml *x = (tern_xml *)stanza; /* referenced, never changed */
    xml_ref(x);
    slot->stanzas[slot->n++] = x;
}

void order_release(order_slot *slot)
{
    order_queue *q = slot->q;
    slot->released = true;
    q->slots--;
    while (q->head && (q->head->stanza || q->head->slot->released)) {
        entry *e = q->head;
        q->head = e->next;
        if (!q->head)
            q->tail = NULL;
        if (q->session) {
            if (e->stanza) {
                tern_session_send_past(q->session, e->stanza, ORDER_PRIORITY);
            } else {
                for (size_t i = 0; i < e->slot->n; i++)
                    tern_session_send_past(q->session, e->slot->stanzas[i], ORDER_PRIORITY);
            }
        }
        if (e->stanza)
            q->n_held--;
        entry_free(e);
    }
    if (!q->session && q->slots == 0)
        queue_free(q);
}

tern_event_result order_hold(tern_session *s, const tern_xml *stanza, void *data)
{
    (void)data;
    order_queue *q = tern_session_get_data(s, &order_key);
    if (!q || !q->head || q->n_held >= ORDER_MAX_HELD)
        return TERN_PASS;
    entry *e = xcalloc(1, sizeof *e);
    e->stanza = (tern_xml *)stanza; /* referenced, never changed */
    xml_ref(e->stanza);
    append(q, e);
    q->n_held++;
    return TERN_HANDLED;
}
