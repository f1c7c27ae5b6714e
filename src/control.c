/* control.c — the server control of the module API: reload (SIGHUP), graceful stop (SIGTERM)
 * and statistics, which admin commands reach the same way. It sits above the layers whose
 * state it changes (c2s, hosts, modules), so none of them calls up to it. */
#include <stdlib.h>

#include "core/log.h"
#include "core/util.h"
#include "host/host.h"
#include "host/module.h"
#include "host/module_settings.h"
#include "process/server.h"
#include "store/storage_env.h"
#include "tern/module.h"
#include "xmpp/c2s.h"

#define STOP_GRACE_MS 3000

int tern_server_reload(char *err, size_t err_len)
{
    config *fresh = config_load(server.cfg->path, err, err_len);
    if (!fresh)
        return -1;
    if (module_settings_check(fresh, module_dir(fresh), err, err_len) != 0) {
        config_free(fresh);
        return -1;
    }
    tls_ctx *tls = tls_ctx_new(fresh, err, err_len);
    if (!tls) {
        config_free(fresh);
        return -1;
    }
    /* Hosts and their modules keep the configuration they started with; listeners, hosts and
     * module lists change on restart. Certificates, admins, limits and logging change now. */
    server.old_configs = xrealloc(server.old_configs,
                                  (server.n_old_configs + 1) * sizeof *server.old_configs);
    server.old_configs[server.n_old_configs++] = server.cfg;
    server.cfg = fresh;
    tls_ctx_unref(server.tls);
    server.tls = tls;
    log_set_level((tern_log_level)fresh->log_level);
    storage_set_queue_max(server.storage, fresh->storage_queue_max);
    log_info(0, "configuration and certificates reloaded (listeners, hosts and modules change "
                "on restart)");
    return 0;
}

static void on_stop_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (server.n_clients == 0 || now_ms() >= server.stop_deadline)
        event_base_loopexit(server.base, NULL);
}

void tern_server_stop(void)
{
    if (server.stopping) {
        log_warn(0, "asked to stop again: exiting now");
        event_base_loopexit(server.base, NULL);
        return;
    }
    log_info(0, "stopping");
    server.stopping = true;
    listen_free_all(server.listeners);
    server.listeners = NULL;
    for (size_t i = 0; i < server.n_hosts; i++)
        host_close_listeners(server.hosts[i]);
    c2s_shutdown_all();
    /* Wait for the clients to read their <system-shutdown/>, but not forever. */
    server.stop_deadline = now_ms() + STOP_GRACE_MS;
    server.stop_timer = event_new(server.base, -1, EV_PERSIST, on_stop_tick, NULL);
    struct timeval tv = { 0, 50000 };
    event_add(server.stop_timer, &tv);
}

void tern_server_get_stats(tern_server_stats *out)
{
    size_t sessions = 0;
    for (size_t i = 0; i < server.n_hosts; i++)
        sessions += tern_host_session_count(server.hosts[i]);
    unsigned long long writes, written, commits;
    storage_get_write_stats(server.storage, &writes, &written, &commits);
    *out = (tern_server_stats){
        .c2s_connections = server.n_clients,
        .c2s_sessions = sessions,
        .stanzas_in = server.stanzas_in,
        .stanzas_out = server.stanzas_out,
        .auth_failures = server.auth_failures,
        .storage_bytes = storage_file_size(server.storage),
        .storage_writes = writes,
        .storage_written_bytes = written,
        .storage_commits = commits,
        .storage_queued = storage_queued(server.storage),
    };
}

