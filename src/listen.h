/* listen.h — listening sockets (IPv4 and IPv6) that hand accepted sockets to a protocol. */
#ifndef TERN_LISTEN_H
#define TERN_LISTEN_H

#include <event2/event.h>

#include "config.h"

typedef enum listen_kind {
    LISTEN_C2S,          /* client streams, STARTTLS */
    LISTEN_C2S_DIRECT,   /* client streams, direct TLS (XEP-0368) */
    LISTEN_HTTP,         /* HTTP/1.1 (http.h) */
    LISTEN_HTTPS,        /* HTTP/1.1 over TLS */
    LISTEN_S2S,          /* server-to-server streams, STARTTLS (s2s.h) */
} listen_kind;

typedef struct listener listener;

/* Binds every address of `addrs`. Returns 0, or -1 with a reason in err (nothing stays bound). */
int listen_add(listener **list, struct event_base *base, const config_addr_list *addrs,
               listen_kind kind, char *err, size_t err_len);
void listen_free_all(listener *list);

#endif
