/* worker.h — the extra event loops of `workers` (doc/architecture.md §2, "Threads").
 *
 * The main loop (server.base) owns every session, the router, the modules, storage, HTTP and
 * s2s. With `workers` = N > 1, N - 1 more threads each run an event loop that carries client
 * TCP connections: the socket, TLS, and parsing the stream into stanza trees. The two sides
 * only exchange messages through inboxes (inbox.h): parsed elements go to the main loop,
 * serialized output comes back (c2s_relay.c). So no lock guards sessions, the routing table or
 * module state: they are touched by the main loop alone, and the work that grows with bytes
 * (TLS records, XML parsing, system calls) runs in parallel with it. */
#ifndef TERN_WORKER_H
#define TERN_WORKER_H

#include <event2/event.h>
#include <stddef.h>

#include "event/inbox.h"

typedef struct worker worker;

/* The number of event loops `workers` asks for: the value itself, or the online CPUs for 0
 * (auto). */
unsigned workers_wanted(unsigned configured);
/* Starts `n` worker threads (n may be 0). 0, or -1 with a reason. */
int workers_start(unsigned n, char *err, size_t err_len);
/* Stops every worker: each runs what its inbox still holds, closes its lingering sockets and
 * exits; then the threads are joined. Afterwards, the main inbox may hold their last
 * messages: drain it. */
void workers_stop(void);
size_t workers_count(void);
/* The worker for a new connection (round robin), or NULL when there are none. */
worker *worker_next(void);
struct event_base *worker_base(worker *w);

/* Handing messages over, batched per loop turn: what one loop posts to another during one turn
 * of its loop crosses at the end of that turn as one chain (inbox_post_chain): one lock and at
 * most one wake-up per turn and destination instead of one per stanza, and the receiver runs
 * the whole chain with nothing of its own in between. */

/* From the main loop, to worker w. */
void worker_post(worker *w, inbox_msg *m);
/* From worker w's own thread, to the main loop. */
void worker_post_main(worker *w, inbox_msg *m);

#endif
