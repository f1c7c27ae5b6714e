/* s2s_dns_cache.h — the s2s resolver's answers by domain (see s2s_dns.c), kept as long as
 * their DNS TTL says, within bounds, and never more than a fixed number of domains.
 *
 * Separate from the resolver so that it needs neither c-ares nor the event loop: time is
 * passed in (milliseconds, monotonic), which is also what the unit test does. */
#ifndef TERN_S2S_DNS_CACHE_H
#define TERN_S2S_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "s2s/s2s_dns.h"

/* Seconds. A TTL of 0 must not mean one lookup per burst of stanzas; a long one must not
 * keep a moved server's old address for a day. */
#define S2S_DNS_CACHE_MIN_TTL 30
#define S2S_DNS_CACHE_MAX_TTL 3600
/* Domains. Each costs a few kilobytes at most; a server federates with far fewer. */
#define S2S_DNS_CACHE_MAX_ENTRIES 1024

typedef struct s2s_dns_cache s2s_dns_cache;

s2s_dns_cache *s2s_dns_cache_new(size_t max_entries);
void s2s_dns_cache_free(s2s_dns_cache *c);

/* Copies up to `max` cached addresses of `domain` into out and returns how many; 0 when
 * there is no entry or it has expired (an expired entry is removed). A hit makes the entry
 * the most recently used. */
size_t s2s_dns_cache_get(s2s_dns_cache *c, const char *domain, uint64_t now_ms, s2s_addr *out,
                         size_t max);

/* Stores `n` (> 0) addresses of `domain` for `ttl` seconds, bounded to MIN_TTL..MAX_TTL,
 * replacing what was stored for it. Every expired entry is removed first; then, if the cache
 * is still full, the least recently used entries go. */
void s2s_dns_cache_put(s2s_dns_cache *c, const char *domain, const s2s_addr *addrs, size_t n,
                       unsigned ttl, uint64_t now_ms);

size_t s2s_dns_cache_count(const s2s_dns_cache *c);

#endif
