/* s2s_dns.c — resolving a remote domain to the addresses of its XMPP server (see s2s_dns.h).
 *
 * One c-ares channel for the process, driven by libevent: c-ares tells us which sockets it
 * wants watched (sock_state_cb) and we hand readiness back with ares_process_fd, plus a timer
 * for its retransmissions. A lookup runs in two rounds: both SRV queries in parallel, then the
 * address queries of every target in parallel; the result keeps the SRV order. Results are
 * cached (s2s_dns_cache.c) by the smallest TTL of their records, within bounds. */
#include "s2s/s2s_dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "process/server.h"
#include "s2s/s2s_dns_cache.h"
#include "tern/log.h"
#include "tern/xml.h"

#define DEFAULT_PORT 5269
#define MAX_TARGETS 16
#define MAX_ADDRS 32
/* c-ares 1.18 does not report SRV TTLs; the cached result lives as long as its addresses'
 * TTL allows, and never longer than this. */
#define SRV_TTL_CAP 300

typedef struct target {
    char *host;
    unsigned short port, priority, weight;
    bool direct_tls;
    s2s_addr addrs[4];
    size_t n_addrs;
} target;

struct s2s_dns_req {
    char *domain;
    s2s_dns_cb cb;
    void *ctx;
    bool cancelled;
    int pending;            /* outstanding c-ares queries */
    bool any_srv;           /* some SRV answer existed (even one with "." as target) */
    target targets[MAX_TARGETS];
    size_t n_targets;
    unsigned ttl;
    struct event *deliver;  /* cached answers are delivered from the loop, not inline */
    s2s_addr *cached;       /* with deliver: a copy of the cached answer */
    size_t n_cached;
};

typedef struct watched {
    ares_socket_t fd;
    struct event *ev;
    struct watched *next;
} watched;

static ares_channel channel;
static bool channel_ready;
static watched *sockets;
static struct event *timeout_ev;
static s2s_dns_cache *cache;
static unsigned queries_out; /* c-ares queries not answered yet: the timer runs only then */

static void arm_timeout(void)
{
    if (queries_out == 0) {
        event_del(timeout_ev);
        return;
    }
    struct timeval max = { 1, 0 }, tv;
    struct timeval *t = ares_timeout(channel, &max, &tv);
    event_add(timeout_ev, t);
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
    ares_process_fd(channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    if (channel_ready)
        arm_timeout();
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (channel_ready)
        arm_timeout();
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    (void)data;
    watched **at = &sockets;
    while (*at && (*at)->fd != fd)
        at = &(*at)->next;
    if (*at) {
        watched *w = *at;
        event_free(w->ev);
        *at = w->next;
        free(w);
    }
    if (!readable && !writable)
        return;
    watched *w = xcalloc(1, sizeof *w);
    w->fd = fd;
    w->ev = event_new(server.base, fd, EV_PERSIST | (readable ? EV_READ : 0) |
                      (writable ? EV_WRITE : 0), on_socket, NULL);
    event_add(w->ev, NULL);
    w->next = sockets;
    sockets = w;
}

static int ensure_channel(void)
{
    if (channel_ready)
        return 0;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return -1;
    struct ares_options opts = { 0 };
    opts.sock_state_cb = sock_state;
    opts.timeout = 2000; /* ms per try; several servers and tries stay within seconds */
    opts.tries = 2;
    int rc = ares_init_options(&channel, &opts,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        log_error(0, "dns: cannot start the resolver: %s", ares_strerror(rc));
        ares_library_cleanup();
        return -1;
    }
    const config_strings *ds = &server.cfg->dns_servers;
    if (ds->n) {
        tern_buf csv;
        buf_init(&csv);
        for (size_t i = 0; i < ds->n; i++)
            buf_printf(&csv, "%s%s", i ? "," : "", ds->items[i]);
        rc = ares_set_servers_ports_csv(channel, buf_cstr(&csv));
        if (rc != ARES_SUCCESS)
            log_error(0, "dns: cannot use dns_servers %s: %s", buf_cstr(&csv), ares_strerror(rc));
        buf_free(&csv);
    }
    timeout_ev = evtimer_new(server.base, on_timeout, NULL);
    cache = s2s_dns_cache_new(S2S_DNS_CACHE_MAX_ENTRIES);
    channel_ready = true;
    return 0;
}

/* ---- completing a request ---- */

static void req_free(s2s_dns_req *r)
{
    for (size_t i = 0; i < r->n_targets; i++)
        free(r->targets[i].host);
    if (r->deliver)
        event_free(r->deliver);
    free(r->cached);
    free(r->domain);
    free(r);
}

static void finish(s2s_dns_req *r)
{
    s2s_addr all[MAX_ADDRS];
    size_t n = 0;
    for (size_t i = 0; i < r->n_targets; i++)
        for (size_t j = 0; j < r->targets[i].n_addrs && n < MAX_ADDRS; j++)
            all[n++] = r->targets[i].addrs[j];
    if (n && !r->cancelled)
        s2s_dns_cache_put(cache, r->domain, all, n, r->ttl, now_ms());
    if (!r->cancelled) {
        const char *why = n ? NULL : r->any_srv && !r->n_targets
                                         ? "the domain offers no XMPP server (SRV target \".\")"
                                         : "no address found";
        log_debug(0, "dns: %s resolved to %zu address(es)", r->domain, n);
        r->cb(r->ctx, all, n, why);
    }
    req_free(r);
}

static void query_done(s2s_dns_req *r)
{
    if (--r->pending == 0)
        finish(r);
}

/* Address lookups carry both the request and the target index. */
typedef struct addr_query {
    s2s_dns_req *req;
    size_t index;
} addr_query;

static void on_target_addrs(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    addr_query *q = arg;
    s2s_dns_req *r = q->req;
    queries_out--;
    target *t = &r->targets[q->index];
    free(q);
    if (status == ARES_SUCCESS && res) {
        for (struct ares_addrinfo_node *n = res->nodes; n && t->n_addrs < ARRAY_LEN(t->addrs);
             n = n->ai_next) {
            s2s_addr *a = &t->addrs[t->n_addrs++];
            memset(a, 0, sizeof *a);
            memcpy(&a->ss, n->ai_addr, n->ai_addrlen);
            a->len = n->ai_addrlen;
            a->direct_tls = t->direct_tls;
            char ip[INET6_ADDRSTRLEN] = "?";
            if (n->ai_family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
                sin->sin_port = htons(t->port);
                inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
                snprintf(a->text, sizeof a->text, "%s:%u", ip, t->port);
            } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
                sin6->sin6_port = htons(t->port);
                inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
                snprintf(a->text, sizeof a->text, "[%s]:%u", ip, t->port);
            }
            if ((unsigned)n->ai_ttl < r->ttl)
                r->ttl = (unsigned)n->ai_ttl;
        }
    }
    if (res)
        ares_freeaddrinfo(res);
    query_done(r);
}

static void lookup_addresses(s2s_dns_req *r)
{
    if (r->n_targets == 0) {
        finish(r);
        return;
    }
    r->pending = (int)r->n_targets;
    for (size_t i = 0; i < r->n_targets; i++) {
        addr_query *q = xcalloc(1, sizeof *q);
        q->req = r;
        q->index = i;
        struct ares_addrinfo_hints hints = { 0 };
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        queries_out++;
        ares_getaddrinfo(channel, r->targets[i].host, NULL, &hints, on_target_addrs, q);
    }
}

/* RFC 2782: lowest priority first; within a priority, a weighted random order. At equal
 * priority XEP-0368 lets us prefer direct TLS, which saves a round trip. */
static void order_targets(s2s_dns_req *r)
{
    target *t = r->targets;
    size_t n = r->n_targets;
    for (size_t i = 0; i < n; i++) {
        /* Among the remaining targets of the lowest priority, pick one by weight. */
        unsigned best = 0xffff + 1;
        for (size_t j = i; j < n; j++)
            if (t[j].priority < best)
                best = t[j].priority;
        unsigned long total = 0;
        for (size_t j = i; j < n; j++)
            if (t[j].priority == best)
                total += t[j].weight + 1u;
        uint32_t rnd;
        random_bytes(&rnd, sizeof rnd);
        unsigned long pick = total ? rnd % total : 0, sum = 0;
        size_t chosen = i;
        for (size_t j = i; j < n; j++) {
            if (t[j].priority != best)
                continue;
            sum += t[j].weight + 1u;
            if (sum > pick) {
                chosen = j;
                break;
            }
        }
        target tmp = t[i];
        t[i] = t[chosen];
        t[chosen] = tmp;
    }
}

static void srv_round_done(s2s_dns_req *r)
{
    if (--r->pending > 0)
        return;
    if (r->cancelled) {
        req_free(r);
        return;
    }
    if (!r->any_srv) {
        /* RFC 6120 §3.2.2: no SRV record, so the domain itself on the default port. */
        target *t = &r->targets[r->n_targets++];
        t->host = xstrdup(r->domain);
        t->port = DEFAULT_PORT;
    }
    order_targets(r);
    lookup_addresses(r);
}

typedef struct srv_query {
    s2s_dns_req *req;
    bool direct_tls;
} srv_query;

static void on_srv(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    srv_query *q = arg;
    s2s_dns_req *r = q->req;
    queries_out--;
    bool direct = q->direct_tls;
    free(q);
    struct ares_srv_reply *srv = NULL;
    if (status == ARES_SUCCESS && ares_parse_srv_reply(abuf, alen, &srv) == ARES_SUCCESS) {
        r->any_srv = true;
        for (struct ares_srv_reply *s = srv; s; s = s->next) {
            /* A lone "." target: the service is decidedly not available (RFC 2782). */
            if (!s->host[0] || !strcmp(s->host, ".") || r->n_targets == MAX_TARGETS)
                continue;
            target *t = &r->targets[r->n_targets++];
            t->host = xstrdup(s->host);
            t->port = s->port;
            t->priority = s->priority;
            t->weight = s->weight;
            t->direct_tls = direct;
        }
        ares_free_data(srv);
    }
    srv_round_done(r);
}

static void deliver_cached(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s2s_dns_req *r = arg;
    r->cb(r->ctx, r->cached, r->n_cached, NULL);
    req_free(r);
}

s2s_dns_req *s2s_dns_resolve(const char *domain, s2s_dns_cb cb, void *ctx)
{
    if (ensure_channel() != 0)
        return NULL;
    s2s_dns_req *r = xcalloc(1, sizeof *r);
    r->domain = xstrdup(domain);
    r->cb = cb;
    r->ctx = ctx;
    r->ttl = SRV_TTL_CAP;
    char host[256];
    unsigned port;
    if (config_s2s_route(server.cfg, domain, host, sizeof host, &port)) {
        /* [s2s] routes: this host and port instead of the domain's SRV records. */
        log_debug(0, "dns: %s has a static route to %s port %u", domain, host, port);
        target *t = &r->targets[r->n_targets++];
        t->host = xstrdup(host);
        t->port = (unsigned short)port;
        lookup_addresses(r);
        arm_timeout();
        return r;
    }
    s2s_addr hit[MAX_ADDRS];
    size_t n = s2s_dns_cache_get(cache, domain, now_ms(), hit, MAX_ADDRS);
    if (n) {
        /* A copy: the entry may expire or be evicted before the answer is delivered. */
        r->cached = xcalloc(n, sizeof *hit);
        memcpy(r->cached, hit, n * sizeof *hit);
        r->n_cached = n;
        r->deliver = evtimer_new(server.base, deliver_cached, r);
        struct timeval zero = { 0, 0 };
        event_add(r->deliver, &zero);
        return r;
    }
    r->pending = 2;
    static const char *const services[] = { "_xmpps-server._tcp.", "_xmpp-server._tcp." };
    for (int i = 0; i < 2; i++) {
        srv_query *q = xcalloc(1, sizeof *q);
        q->req = r;
        q->direct_tls = i == 0;
        char *name = xasprintf("%s%s", services[i], domain);
        queries_out++;
        ares_query(channel, name, 1 /* C_IN */, 33 /* T_SRV */, on_srv, q);
        free(name);
    }
    arm_timeout();
    return r;
}

void s2s_dns_cancel(s2s_dns_req *r)
{
    if (!r)
        return;
    if (r->deliver) {
        req_free(r); /* a cached answer not delivered yet: nothing else refers to it */
        return;
    }
    r->cancelled = true; /* freed when its queries complete */
}

void s2s_dns_shutdown(void)
{
    if (!channel_ready)
        return;
    /* Completes every outstanding query with ARES_EDESTRUCTION: their requests free
     * themselves (the owners cancelled them before). */
    ares_destroy(channel);
    channel_ready = false;
    while (sockets) {
        watched *w = sockets;
        sockets = w->next;
        event_free(w->ev);
        free(w);
    }
    event_free(timeout_ev);
    s2s_dns_cache_free(cache);
    cache = NULL;
    ares_library_cleanup();
}
