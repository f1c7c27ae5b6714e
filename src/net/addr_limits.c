/* addr_limits.c — per-address connection counts and login allowances (see addr_limits.h).
 *
 * Logins use a token bucket per address: it holds up to twice logins_per_second tokens and
 * refills at logins_per_second, so a client that reconnects a few times is never slowed, and
 * a password guesser gets at most that rate however many connections it opens. An address
 * with no connections keeps its entry until its bucket is full again; otherwise closing and
 * reopening would reset the allowance. Such entries are swept as the table grows. */
#include "net/addr_limits.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hashmap.h"
#include "core/util.h"
#include "tern/log.h"

typedef struct addr_entry {
    unsigned conns, unauth;
    double tokens;         /* login allowance; < 0 before the first login (a full bucket) */
    uint64_t refilled_ms;
} addr_entry;

struct addr_limits {
    hashmap *by_key;
    unsigned unauth_total;
    size_t sweep_at;       /* sweep idle entries when the table grows past this */
    uint64_t logged_ms;    /* the last refusal logged, and how many since were not */
    unsigned unlogged;
};

#define SWEEP_MIN 1024

addr_limits *addr_limits_new(void)
{
    addr_limits *t = xcalloc(1, sizeof *t);
    t->by_key = hashmap_new();
    t->sweep_at = SWEEP_MIN;
    return t;
}

static void free_entry(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

void addr_limits_free(addr_limits *t)
{
    if (!t)
        return;
    hashmap_each(t->by_key, free_entry, NULL);
    hashmap_free(t->by_key);
    free(t);
}

bool addr_key_from_peer(const char *peer, char out[ADDR_KEY_LEN])
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *start = peer[0] == '[' ? peer + 1 : peer;
    const char *end = peer[0] == '[' ? strchr(start, ']') : strrchr(start, ':');
    if (!end || end == start || (size_t)(end - start) >= sizeof ip)
        return false;
    memcpy(ip, start, (size_t)(end - start));
    ip[end - start] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return inet_ntop(AF_INET, &a4, out, ADDR_KEY_LEN) != NULL;
    if (inet_pton(AF_INET6, ip, &a6) != 1)
        return false;
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(a6.s6_addr, v4_mapped, sizeof v4_mapped) == 0)
        return inet_ntop(AF_INET, a6.s6_addr + 12, out, ADDR_KEY_LEN) != NULL;
    memset(a6.s6_addr + 8, 0, 8);
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, &a6, text, sizeof text))
        return false;
    snprintf(out, ADDR_KEY_LEN, "%s/64", text);
    return true;
}

/* The bucket holds two seconds' worth at any rate, so two seconds after its last login an
 * address's allowance is full again. */
#define BUCKET_SECONDS 2

static bool entry_idle(const addr_entry *e, uint64_t now)
{
    return e->conns == 0 && (e->tokens < 0 || now - e->refilled_ms >= BUCKET_SECONDS * 1000);
}

typedef struct sweep_ctx {
    char **idle;
    size_t n_idle;
    uint64_t now;
} sweep_ctx;

static void collect_idle(void *ctx, const char *key, void *value)
{
    sweep_ctx *c = ctx;
    if (entry_idle(value, c->now))
        c->idle[c->n_idle++] = xstrdup(key);
}

static void sweep(addr_limits *t)
{
    size_t n = hashmap_count(t->by_key);
    sweep_ctx ctx = { xcalloc(n ? n : 1, sizeof *ctx.idle), 0, now_ms() };
    hashmap_each(t->by_key, collect_idle, &ctx);
    for (size_t i = 0; i < ctx.n_idle; i++) {
        free(hashmap_remove(t->by_key, ctx.idle[i]));
        free(ctx.idle[i]);
    }
    free(ctx.idle);
    size_t left = hashmap_count(t->by_key);
    t->sweep_at = left * 2 > SWEEP_MIN ? left * 2 : SWEEP_MIN;
}

static addr_entry *entry(addr_limits *t, const char *key)
{
    addr_entry *e = hashmap_get(t->by_key, key);
    if (!e) {
        if (hashmap_count(t->by_key) >= t->sweep_at)
            sweep(t);
        e = xcalloc(1, sizeof *e);
        e->tokens = -1;
        hashmap_put(t->by_key, key, e);
    }
    return e;
}

static void drop_if_idle(addr_limits *t, const char *key, addr_entry *e)
{
    if (entry_idle(e, now_ms()))
        free(hashmap_remove(t->by_key, key));
}

bool addr_limits_allow(const addr_limits *t, const char *key, const addr_limit_settings *s,
                       const char **why)
{
    if (t->unauth_total >= s->max_unauthenticated) {
        *why = "too many connections that have not authenticated";
        return false;
    }
    const addr_entry *e = *key ? hashmap_get(t->by_key, key) : NULL;
    if (e && e->conns >= s->max_per_address) {
        *why = "too many connections from this address";
        return false;
    }
    if (e && e->unauth >= s->max_unauthenticated_per_address) {
        *why = "too many connections from this address that have not authenticated";
        return false;
    }
    return true;
}

void addr_limits_add(addr_limits *t, const char *key)
{
    t->unauth_total++;
    if (*key) {
        addr_entry *e = entry(t, key);
        e->conns++;
        e->unauth++;
    }
}

void addr_limits_authenticated(addr_limits *t, const char *key)
{
    if (t->unauth_total)
        t->unauth_total--;
    addr_entry *e = *key ? hashmap_get(t->by_key, key) : NULL;
    if (e && e->unauth)
        e->unauth--;
}

void addr_limits_release(addr_limits *t, const char *key, bool authenticated)
{
    if (!authenticated && t->unauth_total)
        t->unauth_total--;
    addr_entry *e = *key ? hashmap_get(t->by_key, key) : NULL;
    if (!e)
        return;
    if (e->conns)
        e->conns--;
    if (!authenticated && e->unauth)
        e->unauth--;
    drop_if_idle(t, key, e);
}

bool addr_limits_login(addr_limits *t, const char *key, const addr_limit_settings *s)
{
    if (!*key)
        return true;
    addr_entry *e = entry(t, key);
    double capacity = (double)s->logins_per_second * BUCKET_SECONDS;
    uint64_t now = now_ms();
    if (e->tokens < 0)
        e->tokens = capacity;
    else
        e->tokens += (double)(now - e->refilled_ms) * s->logins_per_second / 1000.0;
    if (e->tokens > capacity)
        e->tokens = capacity;
    e->refilled_ms = now;
    if (e->tokens < 1)
        return false;
    e->tokens -= 1;
    return true;
}

void addr_limits_log_refusal(addr_limits *t, const char *what, const char *peer,
                             const char *why)
{
    uint64_t now = now_ms();
    if (t->logged_ms && now - t->logged_ms < 1000) {
        t->unlogged++;
        return;
    }
    if (t->unlogged)
        log_warn(0, "refusing a %s connection from %s: %s (and %u more refused since the last "
                    "such line)", what, peer, why, t->unlogged);
    else
        log_warn(0, "refusing a %s connection from %s: %s", what, peer, why);
    t->logged_ms = now;
    t->unlogged = 0;
}

void addr_limits_counts(const addr_limits *t, const char *key, unsigned *conns,
                        unsigned *unauth, unsigned *unauth_total)
{
    const addr_entry *e = hashmap_get(t->by_key, key);
    *conns = e ? e->conns : 0;
    *unauth = e ? e->unauth : 0;
    *unauth_total = t->unauth_total;
}
