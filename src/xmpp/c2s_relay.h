/* c2s_relay.h — a client TCP connection carried by a worker thread (worker.h) for a c2s on the
 * main loop. */
#ifndef TERN_C2S_RELAY_H
#define TERN_C2S_RELAY_H

#include <stdbool.h>

#include "event/worker.h"

/* A new client stream: c2s on the main loop, the socket `fd` on worker `w`. */
void c2s_relay_accept(worker *w, int fd, bool direct_tls);
/* At exit, after workers_stop(): frees what the relays kept on the main loop. */
void c2s_relay_release(void);

#endif
