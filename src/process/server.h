/* server.h — the process-wide state of ternd: configuration, storage, TLS, hosts, listeners and
 * the event loop. One instance, created by main(); every core file reaches it through `server`.
 *
 * Threads: the main loop (`base`) owns every session, the routing tables and all module state;
 * worker threads only carry client TCP connections (doc/architecture.md §2, "Threads"). Code
 * that touches a session does so only from the main loop. */
#ifndef TERN_SERVER_H
#define TERN_SERVER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/config.h"
#include "core/hashmap.h"
#include "net/listen.h"
#include "net/tls.h"
#include "tern/storage.h"

typedef struct tern_host tern_host;
typedef struct c2s c2s;

typedef struct server {
    config *cfg;
    tern_storage *storage;
    struct event_base *base;
    tls_ctx *tls;
    tern_host **hosts;
    size_t n_hosts;
    hashmap *hosts_by_name;
    listener *listeners;
    c2s *clients;               /* every client connection, for shutdown and limits */
    size_t n_clients;
    uint64_t next_id;           /* connection/session ids for logs */
    unsigned char secret[32];   /* per-process secret (SCRAM fake salts for unknown users) */
    bool stopping;
    time_t started;
    config **old_configs;       /* replaced by reloads; hosts may still point into them */
    size_t n_old_configs;
    struct event *stop_timer;   /* during a graceful stop */
    uint64_t stop_deadline;
    uint64_t stanzas_in, stanzas_out, auth_failures; /* see tern_server_stats */
} server_state;

extern server_state server;

tern_host *server_find_host(const char *domain);
uint64_t server_next_id(void);
/* At exit: frees what reloads and the stop left behind. */
void server_release(void);

#endif
