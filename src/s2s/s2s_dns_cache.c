/* s2s_dns_cache.c — the s2s resolver's cache (see s2s_dns_cache.h): a hash map from domain to
 * entry for lookups, and a list of the entries from least to most recently used for
 * eviction. */
#include "s2s/s2s_dns_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/hashmap.h"
#include "core/util.h"

typedef struct entry {
    char *domain;
    s2s_addr *addrs;
    size_t n;
    uint64_t expires_ms;
    struct entry *older, *newer; /* the use order */
} entry;

struct s2s_dns_cache {
    hashmap *by_domain; /* domain -> entry */
    entry *oldest, *newest;
    size_t count, max;
};

s2s_dns_cache *s2s_dns_cache_new(size_t max_entries)
{
    s2s_dns_cache *c = xcalloc(1, sizeof *c);
    c->by_domain = hashmap_new();
    c->max = max_entries ? max_entries : 1;
    return c;
}

static void unlink_entry(s2s_dns_cache *c, entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    e->older = e->newer = NULL;
}

static void link_newest(s2s_dns_cache *c, entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

static void remove_entry(s2s_dns_cache *c, entry *e)
{
    unlink_entry(c, e);
    hashmap_remove(c->by_domain, e->domain);
    c->count--;
    free(e->domain);
    free(e->addrs);
    free(e);
}

void s2s_dns_cache_free(s2s_dns_cache *c)
{
    if (!c)
        return;
    while (c->oldest)
        remove_entry(c, c->oldest);
    hashmap_free(c->by_domain);
    free(c);
}

size_t s2s_dns_cache_get(s2s_dns_cache *c, const char *domain, uint64_t now_ms, s2s_addr *out,
                         size_t max)
{
    entry *e = hashmap_get(c->by_domain, domain);
    if (!e)
        return 0;
    if (e->expires_ms <= now_ms) {
        remove_entry(c, e);
        return 0;
    }
    unlink_entry(c, e);
    link_newest(c, e);
    size_t n = e->n < max ? e->n : max;
    memcpy(out, e->addrs, n * sizeof *out);
    return n;
}

void s2s_dns_cache_put(s2s_dns_cache *c, const char *domain, const s2s_addr *addrs, size_t n,
                       unsigned ttl, uint64_t now_ms)
{
    if (n == 0)
        return;
    entry *e = hashmap_get(c->by_domain, domain);
    if (e)
        remove_entry(c, e);
    /* Expired entries would never be served again; a scan of at most max entries per
     * resolved domain costs nothing next to the lookup that produced it. */
    for (entry *x = c->oldest, *next; x; x = next) {
        next = x->newer;
        if (x->expires_ms <= now_ms)
            remove_entry(c, x);
    }
    while (c->count >= c->max)
        remove_entry(c, c->oldest);
    if (ttl < S2S_DNS_CACHE_MIN_TTL)
        ttl = S2S_DNS_CACHE_MIN_TTL;
    else if (ttl > S2S_DNS_CACHE_MAX_TTL)
        ttl = S2S_DNS_CACHE_MAX_TTL;
    e = xcalloc(1, sizeof *e);
    e->domain = xstrdup(domain);
    e->addrs = xcalloc(n, sizeof *addrs);
    memcpy(e->addrs, addrs, n * sizeof *addrs);
    e->n = n;
    e->expires_ms = now_ms + (uint64_t)ttl * 1000;
    hashmap_put(c->by_domain, e->domain, e);
    link_newest(c, e);
    c->count++;
}

size_t s2s_dns_cache_count(const s2s_dns_cache *c)
{
    return c->count;
}
