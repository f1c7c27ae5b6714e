/* listen.h — listening sockets (IPv4 and IPv6) that hand accepted sockets to a protocol. */
#ifndef TERN_LISTEN_H
#define TERN_LISTEN_H

#include <event2/event.h>
#include <stdbool.h>

#include "core/config.h"

typedef struct listener listener;

/* What an accepted socket is handed to: the protocol that opened the listener (c2s, HTTP,
 * s2s, a module), which owns the socket from then on. `tls` says the protocol is direct TLS;
 * `arg` is the opener's. */
typedef void (*listen_accept_fn)(evutil_socket_t fd, bool tls, void *arg);

/* Binds every address of `addrs` for `accept` (`label`, e.g. "c2s, STARTTLS", names them in
 * the log). Returns 0, or -1 with a reason in err (nothing stays bound). */
int listen_add(listener **list, struct event_base *base, const config_addr_list *addrs,
               listen_accept_fn accept, bool tls, void *arg, const char *label, char *err,
               size_t err_len);
void listen_free_all(listener *list);

#endif
