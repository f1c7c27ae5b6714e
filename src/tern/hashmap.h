/* tern/hashmap.h — a string-keyed hash table (open addressing, linear probing). The map copies
 * keys and owns the copies; values are the caller's. Used for the routing table, hook lookup by
 * event name and by modules (BOSH sessions by sid). Not thread-safe: the owner decides the locking. */
#ifndef TERN_PUBLIC_HASHMAP_H
#define TERN_PUBLIC_HASHMAP_H

#include <stddef.h>

typedef struct hashmap hashmap;

hashmap *hashmap_new(void);
void hashmap_free(hashmap *m); /* frees keys, not values */
void *hashmap_get(const hashmap *m, const char *key);
/* Inserts or replaces; returns the previous value (or NULL). */
void *hashmap_put(hashmap *m, const char *key, void *value);
/* Removes; returns the removed value (or NULL). */
void *hashmap_remove(hashmap *m, const char *key);
size_t hashmap_count(const hashmap *m);
/* Calls fn for each entry; fn may replace the value of the entry it is given, nothing else. */
void hashmap_each(const hashmap *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx);

#endif
