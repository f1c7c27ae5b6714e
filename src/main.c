/* main.c — ternd: command line, start-up order, signals, and a graceful stop.
 *
 * Start-up order matters: everything that can fail on a bad config (config, certificates,
 * modules, storage, listeners) is done before "ready" is logged, so an operator sees one clear
 * error and no half-started server. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control_socket.h"
#include "core/config.h"
#include "core/config_lists.h"
#include "core/log.h"
#include "core/util.h"
#include "event/inbox.h"
#include "event/worker.h"
#include "host/host.h"
#include "host/module.h"
#include "host/module_settings.h"
#include "http/http.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/tls.h"
#include "process/pidfile.h"
#include "process/server.h"
#include "s2s/s2s.h"
#include "store/storage_env.h"
#include "tern/module.h"
#include "tern_build.h"
#include "xmpp/c2s.h"
#include "xmpp/c2s_relay.h"
#include "xmpp/session.h"

#define SECRET_STORE "server"
#define SECRET_OWNER "scram-secret"

typedef struct options {
    const char *config_path;
    bool check_only;
    bool list_settings;
    bool daemonize;
} options;


static void usage(FILE *out)
{
    fprintf(out, "usage: ternd -c FILE [-t] [-d]\n"
                 "       ternd [-c FILE] -s\n"
                 "  -c FILE  configuration file (INI, see tern.conf(5))\n"
                 "  -t       check the configuration, certificates and modules, then exit\n"
                 "  -s       print every module's settings with their defaults, then exit\n"
                 "  -d       run in the background; logs go to <data_dir>/ternd.log\n"
                 "  -V       print the version\n");
}

static int parse_options(int argc, char **argv, options *o)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:tsdVh")) != -1) {
        switch (opt) {
        case 'c': o->config_path = optarg; break;
        case 't': o->check_only = true; break;
        case 's': o->list_settings = true; break;
        case 'd': o->daemonize = true; break;
        case 'V': printf("ternd %s\n", PACKAGE_VERSION); exit(0);
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if ((!o->config_path && !o->list_settings) || optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* -s: the settings of the modules in the configured (or built-in) module folder. */
static int list_settings(const char *config_path)
{
    char err[1024];
    config *cfg = config_path ? config_load(config_path, err, sizeof err) : NULL;
    if (config_path && !cfg) {
        fprintf(stderr, "ternd: %s\n", err);
        return 1;
    }
    const char *dir = module_dir(cfg);
    int rc = module_settings_print(dir, stdout);
    if (rc != 0)
        fprintf(stderr, "ternd: cannot read the module folder %s\n", dir);
    config_free(cfg);
    return rc == 0 ? 0 : 1;
}

/* -t: every module named in the config must be a loadable file, and every module setting
 * known to its module. */
static int check_modules(const config *cfg)
{
    const char *dir = module_dir(cfg);
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        for (size_t j = 0; j < cfg->hosts[i].modules.n; j++) {
            char *path = xasprintf("%s/%s.so", dir, cfg->hosts[i].modules.items[j]);
            int ok = access(path, R_OK) == 0;
            if (!ok)
                fprintf(stderr, "ternd: %s: host %s: module %s not found (%s)\n", cfg->path,
                        cfg->hosts[i].name, cfg->hosts[i].modules.items[j], path);
            free(path);
            if (!ok)
                return -1;
        }
    }
    char err[1024];
    if (module_settings_check(cfg, dir, err, sizeof err) != 0) {
        fprintf(stderr, "ternd: %s\n", err);
        return -1;
    }
    return 0;
}

/* The SCRAM secret outlives restarts, so an unknown user's fake salt never changes and cannot
 * be told from a real one by asking twice. */
static int load_secret(void)
{
    void *value = NULL;
    size_t len = 0;
    int rc = storage_kv_get(server.storage, SECRET_STORE, SECRET_OWNER, &value, &len);
    if (rc == 1 && len == sizeof server.secret) {
        memcpy(server.secret, value, len);
        free(value);
        return 0;
    }
    free(value);
    if (rc < 0)
        return -1;
    if (gnutls_rnd(GNUTLS_RND_KEY, server.secret, sizeof server.secret) != 0)
        return -1;
    return storage_kv_put(server.storage, SECRET_STORE, SECRET_OWNER, server.secret,
                          sizeof server.secret);
}

/* The outcome of a module change asked for from a client (module_env.notify). */
static void notify_module_change(tern_host *host, const char *jid, const char *text)
{
    tern_xml *msg = xml_new("message", NS_CLIENT);
    xml_set_attr(msg, "type", "headline");
    xml_set_attr(msg, "from", host->name);
    xml_set_attr(msg, "to", jid);
    tern_xml_add_text_child(msg, "body", NULL, text);
    tern_route(host, msg);
}

static int start_hosts(char *err, size_t err_len)
{
    module_set_env(&(module_env){ session_drop_module_data, notify_module_change });
    const config *cfg = server.cfg;
    server.hosts = xcalloc(cfg->n_hosts, sizeof *server.hosts);
    server.hosts_by_name = hashmap_new();
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        tern_host *h = host_new(&cfg->hosts[i]);
        server.hosts[server.n_hosts++] = h;
        hashmap_put(server.hosts_by_name, h->name, h);
    }
    const char *dir = module_dir(cfg);
    for (size_t i = 0; i < server.n_hosts; i++)
        if (module_load_host(server.hosts[i], dir, err, err_len) != 0)
            return -1;
    for (size_t i = 0; i < cfg->n_hosts; i++)
        if (cfg->hosts[i].registration && !config_strings_contain(&cfg->hosts[i].modules,
                                                                  "register"))
            log_warn(0, "host %s: registration = yes, but in-band registration is the register "
                     "module's and the host does not load it: clients cannot register",
                     cfg->hosts[i].name);
    return 0;
}

/* Whether any host loads module `name`. */
static bool module_wanted(const config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_hosts; i++)
        if (config_strings_contain(&cfg->hosts[i].modules, name))
            return true;
    return false;
}

/* Federation is the s2s module's: without it on any host, nothing listens for other servers. */
static bool s2s_wanted(const config *cfg)
{
    return module_wanted(cfg, "s2s");
}

static void accept_c2s(evutil_socket_t fd, bool tls, void *arg)
{
    (void)arg;
    c2s_accept(fd, tls);
}

static void accept_http(evutil_socket_t fd, bool tls, void *arg)
{
    (void)arg;
    http_accept(fd, tls);
}

/* s2s has no direct TLS listener (XEP-0368 for servers is outgoing only here). */
static void accept_s2s(evutil_socket_t fd, bool tls, void *arg)
{
    (void)tls;
    (void)arg;
    s2s_accept(fd);
}

static int start_listeners(char *err, size_t err_len)
{
    const config *cfg = server.cfg;
    listener **list = &server.listeners;
    struct event_base *base = server.base;
    if (listen_add(list, base, &cfg->c2s_listen, accept_c2s, false, NULL, "c2s, STARTTLS", err,
                   err_len) != 0 ||
        listen_add(list, base, &cfg->c2s_tls_listen, accept_c2s, true, NULL, "c2s, direct TLS", err,
                   err_len) != 0)
        return -1;
    if ((cfg->http_listen.n || cfg->http_tls_listen.n) && http_check_config(err, err_len) != 0)
        return -1;
    if (listen_add(list, base, &cfg->http_listen, accept_http, false, NULL, "HTTP", err,
                   err_len) != 0 ||
        listen_add(list, base, &cfg->http_tls_listen, accept_http, true, NULL, "HTTPS", err,
                   err_len) != 0)
        return -1;
    if (!s2s_wanted(cfg)) {
        if (cfg->s2s_section_line)
            log_warn(0, "%s:%d: the [s2s] section is unused: no host loads the s2s module, so "
                     "no s2s listener is opened and no other domain is reached", cfg->path,
                     cfg->s2s_section_line);
    } else if (listen_add(list, base, &cfg->s2s_listen, accept_s2s, false, NULL,
                          "s2s, STARTTLS", err, err_len) != 0) {
        return -1;
    }
    if (cfg->n_components && !module_wanted(cfg, "component"))
        log_warn(0, "%s:%d: [component %s] is unused: no host loads the component module",
                 cfg->path, cfg->components[0].line, cfg->components[0].name);
    /* One event loop is the main one; the others carry client connections (worker.h). */
    return workers_start(workers_wanted(cfg->workers) - 1, err, err_len);
}

/* ---- signals ---- */

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    log_info(0, "signal %d", (int)sig);
    tern_server_stop();
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    char err[1024];
    if (tern_server_reload(err, sizeof err) != 0)
        log_error(0, "reload failed, keeping the running configuration: %s", err);
}

/* ---- main ---- */

static int daemonize(const config *cfg)
{
    char *log_path = xasprintf("%s/ternd.log", cfg->data_dir);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    free(log_path);
    if (log_fd < 0 || daemon(0, 1) != 0) {
        fprintf(stderr, "ternd: cannot daemonise: %s\n", strerror(errno));
        return -1;
    }
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    close(null_fd);
    close(log_fd);
    return 0;
}

/* ---- the storage thread's completions (store/storage_env.h) ---- */

/* Where the storage thread tells the main loop that completions are ready. */
static inbox *storage_inbox;

static void on_storage_ready(inbox_msg *m)
{
    free(m);
    if (server.storage)  /* NULL once closed: a last message may still be queued */
        storage_run_completions(server.storage);
}

/* On the storage thread. */
static void storage_wake(void *arg)
{
    inbox_msg *m = xcalloc(1, sizeof *m);
    m->run = on_storage_ready;
    inbox_post(arg, m);
}

static int start_storage_thread(char *err, size_t err_len)
{
    storage_inbox = inbox_new(server.base);
    if (!storage_inbox) {
        snprintf(err, err_len, "cannot create the storage thread's inbox: %s", strerror(errno));
        return -1;
    }
    storage_set_queue_max(server.storage, server.cfg->storage_queue_max);
    return storage_start_thread(server.storage, storage_wake, storage_inbox, err, err_len);
}

static void close_storage(void)
{
    storage_close(server.storage); /* completes what is queued, then stops the thread */
    server.storage = NULL;
    if (storage_inbox)
        inbox_free(storage_inbox);
    storage_inbox = NULL;
}

static void shutdown_server(int pid_fd)
{
    listen_free_all(server.listeners);
    c2s_free_all();
    workers_stop(); /* after c2s: the workers close the connections c2s left them */
    c2s_relay_release();
    http_free_all(); /* before the modules unload: they hear about requests they hold */
    s2s_free_all();
    conn_close_lingering();
    control_close();
    for (size_t i = 0; i < server.n_hosts; i++)
        module_unload_host(server.hosts[i]);
    for (size_t i = 0; i < server.n_hosts; i++)
        host_free(server.hosts[i]);
    free(server.hosts);
    hashmap_free(server.hosts_by_name);
    tls_ctx_unref(server.tls);
    close_storage();
    server_release();
    event_base_free(server.base);
    pidfile_release(pid_fd, server.cfg->pid_file);
    config_free(server.cfg);
}

int main(int argc, char **argv)
{
    options opts = { 0 };
    char err[1024];
    log_set_program("ternd");
    if (parse_options(argc, argv, &opts) != 0)
        return 2;
    if (opts.list_settings)
        return list_settings(opts.config_path);
    server.cfg = config_load(opts.config_path, err, sizeof err);
    if (!server.cfg) {
        fprintf(stderr, "ternd: %s\n", err);
        return 1;
    }
    log_set_level((tern_log_level)server.cfg->log_level);
    server.tls = tls_ctx_new(server.cfg, err, sizeof err);
    if (!server.tls) {
        fprintf(stderr, "ternd: %s\n", err);
        return 1;
    }
    if (!opts.check_only &&
        module_settings_check(server.cfg, module_dir(server.cfg), err, sizeof err) != 0) {
        fprintf(stderr, "ternd: %s\n", err);
        config_free(server.cfg);
        return 1;
    }
    if (opts.check_only) {
        int rc = check_modules(server.cfg);
        if (rc == 0 && (rc = http_check_config(err, sizeof err)) != 0)
            fprintf(stderr, "ternd: %s\n", err);
        if (rc == 0)
            printf("ternd: %s: configuration OK\n", server.cfg->path);
        tls_ctx_unref(server.tls);
        config_free(server.cfg);
        return rc == 0 ? 0 : 1;
    }
    if (mkdir(server.cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "ternd: cannot create data_dir %s: %s\n", server.cfg->data_dir,
                strerror(errno));
        return 1;
    }
    if (opts.daemonize && daemonize(server.cfg) != 0)
        return 1;
    int pid_fd = pidfile_acquire(server.cfg->pid_file, err, sizeof err);
    if (pid_fd < 0) {
        log_error(0, "%s", err);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit makes writes fail (EFBIG), not the process */
    server.storage = storage_open(server.cfg->data_dir, 0, err, sizeof err);
    if (server.storage)
        storage_set_max_size(server.storage, server.cfg->max_storage_size);
    if (!server.storage || load_secret() != 0) {
        log_error(0, "cannot open storage in %s: %s", server.cfg->data_dir,
                  server.storage ? "cannot read or write the server secret" : err);
        return 1;
    }
    server.base = event_base_new();
    server.started = time(NULL);
    if (!server.base) {
        log_error(0, "cannot create the event loop");
        return 1;
    }
    if (start_storage_thread(err, sizeof err) != 0 || start_hosts(err, sizeof err) != 0 ||
        start_listeners(err, sizeof err) != 0 ||
        control_open(server.cfg->control_socket, err, sizeof err) != 0) {
        log_error(0, "%s", err);
        shutdown_server(pid_fd);
        return 1;
    }
    struct event *ev_term = evsignal_new(server.base, SIGTERM, on_sigterm, NULL);
    struct event *ev_int = evsignal_new(server.base, SIGINT, on_sigterm, NULL);
    struct event *ev_hup = evsignal_new(server.base, SIGHUP, on_sighup, NULL);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_hup, NULL);
    log_info(0, "tern %s ready: %zu host(s), data in %s", PACKAGE_VERSION, server.n_hosts,
             server.cfg->data_dir);

    event_base_dispatch(server.base);

    log_info(0, "stopped");
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    shutdown_server(pid_fd);
    return 0;
}
