/* metrics — GET /metrics on the HTTP listener ([http] listen / tls_listen): the server's
 * figures for Prometheus. Off unless a host's `modules =` line names metrics.
 *
 * The text format is Prometheus' 0.0.4 exposition format, or OpenMetrics 1.0 when the scraper
 * asks for it in Accept (Prometheus does). Server-wide figures come from
 * tern_server_get_stats(); per-host figures (accounts, messages waiting in offline queues)
 * are given for every host that loads this module, each labelled host="...".
 *
 * Cost: the per-host figures walk every account of the host and count its offline queue, so a
 * scrape is O(accounts). That is fine for the thousands of accounts a scrape interval allows;
 * a large server would keep running totals instead (the offline module would publish them).
 *
 * The figures tell an outsider how busy the server is and how many accounts it has, and the
 * HTTP listener is usually public (BOSH, WebSocket), so only the addresses in the `allow`
 * setting may read them: loopback by default, where a local Prometheus or a reverse proxy
 * runs; others get 403.
 *
 * Not exported yet: s2s links (there is no s2s module); sessions carry kind="c2s" so BOSH and
 * WebSocket sessions can join the same family later. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/http.h>
#include <tern/module.h>

#define OFFLINE_STORE "offline"

#define TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* ---- who may read ---- */

/* One address as 16 bytes (IPv4 as IPv4-mapped IPv6, so "127.0.0.0/8" also matches
 * "::ffff:127.0.0.1" on a dual-stack listener) and the prefix length in those bytes' bits. */
typedef struct net_prefix {
    unsigned char addr[16];
    unsigned bits;
} net_prefix;

static bool parse_ip(const char *text, unsigned char out[16], bool *v4)
{
    struct in_addr a4;
    *v4 = inet_pton(AF_INET, text, &a4) == 1;
    if (*v4) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, text, out) == 1;
}

/* "ADDRESS" or "ADDRESS/BITS". */
static bool parse_prefix(const char *word, net_prefix *p)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(word, '/');
    size_t len = slash ? (size_t)(slash - word) : strlen(word);
    if (len == 0 || len >= sizeof ip)
        return false;
    memcpy(ip, word, len);
    ip[len] = '\0';
    bool v4;
    if (!parse_ip(ip, p->addr, &v4))
        return false;
    unsigned max = v4 ? 32 : 128, bits = max;
    if (slash) {
        char *end;
        unsigned long n = strtoul(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end || n > max)
            return false;
        bits = (unsigned)n;
    }
    p->bits = v4 ? bits + 96 : bits;
    return true;
}

static bool prefix_matches(const net_prefix *p, const unsigned char addr[16])
{
    unsigned full = p->bits / 8, rest = p->bits % 8;
    if (memcmp(p->addr, addr, full) != 0)
        return false;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return rest == 0 || (p->addr[full] & mask) == (addr[full] & mask);
}

/* `peer` is "ip:port" or "[ipv6]:port" (tern_http_peer). */
static bool peer_allowed(const char *peer, const char *allow)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *start = peer[0] == '[' ? peer + 1 : peer;
    const char *end = peer[0] == '[' ? strchr(start, ']') : strrchr(start, ':');
    if (!end || (size_t)(end - start) >= sizeof ip)
        return false;
    memcpy(ip, start, (size_t)(end - start));
    ip[end - start] = '\0';
    unsigned char addr[16];
    bool v4;
    if (!parse_ip(ip, addr, &v4))
        return false;
    char *copy = strdup(allow), *save = NULL;
    if (!copy)
        abort();
    bool ok = false;
    for (char *w = strtok_r(copy, " \t,", &save); w && !ok; w = strtok_r(NULL, " \t,", &save)) {
        net_prefix p;
        ok = parse_prefix(w, &p) && prefix_matches(&p, addr);
    }
    free(copy);
    return ok;
}

static bool check_allow(const char *value, char *why, size_t why_len)
{
    char *copy = strdup(value), *save = NULL;
    if (!copy)
        abort();
    bool ok = true;
    for (char *w = strtok_r(copy, " \t,", &save); w && ok; w = strtok_r(NULL, " \t,", &save)) {
        net_prefix p;
        ok = parse_prefix(w, &p);
        if (!ok)
            snprintf(why, why_len, "'%s' is not an address or ADDRESS/BITS prefix", w);
    }
    free(copy);
    return ok;
}

static const tern_setting_def metrics_settings[] = {
    { "allow", TERN_SETTING_STRING, "127.0.0.0/8 ::1", 0, 0,
      "addresses or prefixes (ADDRESS/BITS) that may read /metrics; empty: nobody",
      check_allow },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

typedef struct metrics_state {
    tern_host *host;
    tern_http_route route;
    struct metrics_state *next;
} metrics_state;

/* Every host that loaded the module. The shared object is loaded once for all hosts (dlopen
 * hands out the same one), so this list sees them all. */
static metrics_state *loaded;

/* ---- writing the exposition ---- */

typedef struct exposition {
    tern_buf *out;
    bool openmetrics;
} exposition;

/* The HELP and TYPE lines of a family. OpenMetrics names a counter family without the _total
 * its sample carries; the Prometheus format names it with. */
static void family(exposition *e, const char *name, const char *type, const char *help)
{
    size_t len = strlen(name);
    int base = (int)len;
    if (e->openmetrics && strcmp(type, "counter") == 0 && len > 6 &&
        strcmp(name + len - 6, "_total") == 0)
        base -= 6;
    buf_printf(e->out, "# HELP %.*s %s\n# TYPE %.*s %s\n", base, name, help, base, name, type);
}

static void sample(exposition *e, const char *name, unsigned long long value)
{
    buf_printf(e->out, "%s %llu\n", name, value);
}

/* A label value, escaped as both formats require (backslash, quote, newline). */
static void label_value(tern_buf *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_printf(out, "\\%c", *p);
        else if (*p == '\n')
            buf_append_str(out, "\\n");
        else
            buf_append(out, p, 1);
    }
}

static void labelled(exposition *e, const char *name, const char *label, const char *value,
                     unsigned long long n)
{
    buf_printf(e->out, "%s{%s=\"", name, label);
    label_value(e->out, value);
    buf_printf(e->out, "\"} %llu\n", n);
}

/* ---- per-host figures ---- */

typedef struct host_counts {
    tern_storage *storage;
    unsigned long long accounts;
    unsigned long long offline;
} host_counts;

static int count_account(void *ctx, const char *bare)
{
    host_counts *c = ctx;
    size_t queued = 0;
    c->accounts++;
    if (storage_archive_count(c->storage, OFFLINE_STORE, bare, &queued) == 0)
        c->offline += queued;
    return 0;
}

/* ---- the modules' own figures (tern_metric_add) ---- */

typedef struct module_family {
    exposition *e;
    const char *name;       /* the family being written */
    bool written;           /* its header is out */
    tern_host *host;
} module_family;

static void module_sample(void *ctx, const char *item, const void *data)
{
    module_family *f = ctx;
    const tern_metric *m = data;
    if (strcmp(item, f->name) != 0)
        return;
    if (!f->written) {
        family(f->e, m->name, m->type, m->help);
        f->written = true;
    }
    labelled(f->e, m->name, "host", tern_host_name(f->host), m->value(f->host));
}

typedef struct family_seen {
    exposition *e;
    const char **names;     /* families written so far: each once, with every host's sample */
    size_t n;
} family_seen;

static void module_family_once(void *ctx, const char *item, const void *data)
{
    (void)data;
    family_seen *seen = ctx;
    for (size_t i = 0; i < seen->n; i++)
        if (strcmp(seen->names[i], item) == 0)
            return;
    seen->names = realloc(seen->names, (seen->n + 1) * sizeof *seen->names);
    if (!seen->names)
        abort();
    seen->names[seen->n++] = item;
    module_family f = { seen->e, item, false, NULL };
    for (metrics_state *s = loaded; s; s = s->next) {
        f.host = s->host;
        tern_registry_each(s->host, TERN_REG_METRIC, module_sample, &f);
    }
}

static void write_module_figures(exposition *e)
{
    family_seen seen = { e, NULL, 0 };
    for (metrics_state *s = loaded; s; s = s->next)
        tern_registry_each(s->host, TERN_REG_METRIC, module_family_once, &seen);
    free(seen.names);
}

static void write_hosts(exposition *e)
{
    size_t n = 0;
    for (metrics_state *s = loaded; s; s = s->next)
        n++;
    host_counts *counts = calloc(n ? n : 1, sizeof *counts);
    if (!counts)
        abort();
    size_t i = 0;
    for (metrics_state *s = loaded; s; s = s->next, i++) {
        counts[i].storage = tern_host_storage(s->host);
        tern_account_each(s->host, count_account, &counts[i]);
    }
    family(e, "tern_accounts", "gauge", "Registered accounts, by host.");
    i = 0;
    for (metrics_state *s = loaded; s; s = s->next, i++)
        labelled(e, "tern_accounts", "host", tern_host_name(s->host), counts[i].accounts);
    family(e, "tern_offline_messages", "gauge",
           "Messages waiting in offline queues, by host of the recipient.");
    i = 0;
    for (metrics_state *s = loaded; s; s = s->next, i++)
        labelled(e, "tern_offline_messages", "host", tern_host_name(s->host),
                 counts[i].offline);
    free(counts);
}

static void write_metrics(exposition *e)
{
    tern_server_stats st;
    tern_server_get_stats(&st);
    time_t started = tern_server_started();
    time_t now = time(NULL);

    family(e, "tern_build_info", "gauge", "The version of this server (always 1).");
    buf_printf(e->out, "tern_build_info{version=\"");
    label_value(e->out, tern_server_version());
    buf_printf(e->out, "\"} 1\n");
    family(e, "tern_start_time_seconds", "gauge",
           "When this server started, in seconds since the epoch.");
    sample(e, "tern_start_time_seconds", (unsigned long long)started);
    family(e, "tern_uptime_seconds", "gauge", "Seconds since this server started.");
    sample(e, "tern_uptime_seconds", now > started ? (unsigned long long)(now - started) : 0);

    family(e, "tern_c2s_connections", "gauge", "Client connections open now, at any stage.");
    sample(e, "tern_c2s_connections", st.c2s_connections);
    family(e, "tern_sessions", "gauge", "Bound sessions now, by kind.");
    labelled(e, "tern_sessions", "kind", "c2s", st.c2s_sessions);

    family(e, "tern_stanzas_in_total", "counter", "Stanzas received from clients.");
    sample(e, "tern_stanzas_in_total", st.stanzas_in);
    family(e, "tern_stanzas_out_total", "counter", "Stanzas sent to clients.");
    sample(e, "tern_stanzas_out_total", st.stanzas_out);
    family(e, "tern_auth_failures_total", "counter", "Failed authentication attempts.");
    sample(e, "tern_auth_failures_total", st.auth_failures);

    family(e, "tern_storage_bytes", "gauge", "Size of the storage file in bytes.");
    sample(e, "tern_storage_bytes", st.storage_bytes > 0 ? (unsigned long long)st.storage_bytes
                                                         : 0);
    family(e, "tern_storage_writes_total", "counter",
           "Storage writes committed (one per call, however many records it changed).");
    sample(e, "tern_storage_writes_total", st.storage_writes);
    family(e, "tern_storage_written_bytes_total", "counter",
           "Bytes those writes carried: the owner, key and value of every record written.");
    sample(e, "tern_storage_written_bytes_total", st.storage_written_bytes);
    family(e, "tern_storage_commits_total", "counter",
           "Durable storage transactions (writes queued together share one: group commit).");
    sample(e, "tern_storage_commits_total", st.storage_commits);
    family(e, "tern_storage_queued", "gauge", "Storage work queued and not yet completed.");
    sample(e, "tern_storage_queued", st.storage_queued);
    write_hosts(e);
    write_module_figures(e);
    if (e->openmetrics)
        buf_append_str(e->out, "# EOF\n");
}

/* ---- the route ---- */

static void metrics_serve(tern_http_request *req, void *data)
{
    metrics_state *st = data;
    if (!peer_allowed(tern_http_peer(req), tern_setting_string(st->host, "metrics", "allow"))) {
        log_info(0, "metrics: refusing /metrics to %s (not in [module metrics] allow)",
                 tern_http_peer(req));
        tern_http_respond(req, 403, NULL, NULL, 0);
        return;
    }
    /* Prometheus asks for OpenMetrics first in its Accept list; others get the classic. */
    const char *accept = tern_http_header(req, "Accept");
    exposition e = { .openmetrics = accept && strstr(accept, "application/openmetrics-text") };
    tern_buf out;
    buf_init(&out);
    e.out = &out;
    write_metrics(&e);
    tern_http_add_header(req, "Cache-Control", "no-store");
    tern_http_respond(req, 200, e.openmetrics ? TYPE_OPENMETRICS : TYPE_PROMETHEUS, out.data,
                      out.len);
    buf_free(&out);
}

static int metrics_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    metrics_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->host = host;
    st->route = (tern_http_route){ .path = "/metrics", .methods = "GET",
                                   .handler = metrics_serve, .data = st };
    tern_http_add_route(host, &st->route);
    /* Appended, so hosts are listed in configuration order. */
    metrics_state **at = &loaded;
    while (*at)
        at = &(*at)->next;
    *at = st;
    *state = st;
    return 0;
}

static void metrics_unload(tern_host *host, void *state)
{
    (void)host;
    for (metrics_state **at = &loaded; *at; at = &(*at)->next) {
        if (*at == state) {
            *at = ((metrics_state *)state)->next;
            break;
        }
    }
    free(state);
}

TERN_MODULE_SETTINGS("metrics", metrics_load, metrics_unload, metrics_settings);
