/* server.c — the process-wide state (see server.h). */
#include "server.h"

#include <stdlib.h>

#include "host.h"
#include "tern/jid.h"

server_state server;

tern_host *server_find_host(const char *domain)
{
    return server.hosts_by_name ? hashmap_get(server.hosts_by_name, domain) : NULL;
}

uint64_t server_next_id(void) { return ++server.next_id; }
