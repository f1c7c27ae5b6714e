/* server.c — the process-wide state (see server.h). What acts on it — reload, stop,
 * statistics — is control.c, above the layers that read this state. */
#include "process/server.h"

#include <stdlib.h>

#include "core/util.h"
#include "tern/module.h"

server_state server;

tern_host *server_find_host(const char *domain)
{
    return server.hosts_by_name ? hashmap_get(server.hosts_by_name, domain) : NULL;
}

uint64_t server_next_id(void) { return ++server.next_id; }

time_t tern_server_started(void) { return server.started; }

struct event_base *tern_event_base(void) { return server.base; }

tern_host *tern_server_host(const char *domain) { return server_find_host(domain); }

bool tern_server_stopping(void) { return server.stopping; }

void tern_component_each(void (*fn)(void *ctx, const tern_component_config *c), void *ctx)
{
    for (size_t i = 0; i < server.cfg->n_components; i++) {
        const config_component *c = &server.cfg->components[i];
        tern_component_config out = { c->name, c->secret, c->roster, c->message };
        fn(ctx, &out);
    }
}

void server_release(void)
{
    if (server.stop_timer)
        event_free(server.stop_timer);
    for (size_t i = 0; i < server.n_old_configs; i++)
        config_free(server.old_configs[i]);
    free(server.old_configs);
}
