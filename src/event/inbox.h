/* inbox.h — how one event loop hands work to another (doc/architecture.md §2, "Threads"): a queue of
 * messages plus a wake-up event on the receiving loop. The only memory two threads share is
 * the queue itself: a message belongs to its sender until inbox_post() and to the receiving
 * loop from then on, where its `run` executes (and frees it).
 *
 * Messages are delivered in the order they were posted by one sender. A burst costs one
 * wake-up: the receiver is woken only when the queue goes from empty to non-empty, and it
 * runs everything queued at once. */
#ifndef TERN_INBOX_H
#define TERN_INBOX_H

#include <event2/event.h>

typedef struct inbox_msg inbox_msg;
struct inbox_msg {
    inbox_msg *next;
    void (*run)(inbox_msg *m); /* on the receiving loop; owns m (frees it) */
};

typedef struct inbox inbox;

/* An inbox whose messages run on `base`'s thread. NULL when no eventfd can be made. */
inbox *inbox_new(struct event_base *base);
/* Runs what is still queued, then frees the inbox. On the receiving thread, once no other
 * thread posts to it any more. */
void inbox_free(inbox *ib);
/* From any thread. */
void inbox_post(inbox *ib, inbox_msg *m);
/* Posts messages first..last, linked by `next`, as one: they run together, in that order,
 * with no other work of the receiving loop between them. */
void inbox_post_chain(inbox *ib, inbox_msg *first, inbox_msg *last);
/* Runs what is queued now, on the receiving thread (for an orderly exit). */
void inbox_drain(inbox *ib);

#endif
