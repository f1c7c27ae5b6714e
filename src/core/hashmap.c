/* hashmap.c — open addressing with linear probing and backward-shift deletion (no tombstones,
 * so lookups stay short however many sessions come and go). FNV-1a hash. */
#include "core/hashmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

typedef struct slot {
    char *key;     /* NULL: empty */
    uint32_t hash;
    void *value;
} slot;

struct hashmap {
    slot *slots;
    size_t cap;    /* power of two */
    size_t count;
};

static uint32_t hash_key(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

hashmap *hashmap_new(void)
{
    hashmap *m = xcalloc(1, sizeof *m);
    m->cap = 16;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    return m;
}

void hashmap_free(hashmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static size_t find_slot(const hashmap *m, const char *key, uint32_t h)
{
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key) {
        if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i; /* the empty slot where key would go */
}

static void grow(hashmap *m)
{
    slot *old = m->slots;
    size_t old_cap = m->cap;
    m->cap *= 2;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key)
            continue;
        size_t j = old[i].hash & (m->cap - 1);
        while (m->slots[j].key)
            j = (j + 1) & (m->cap - 1);
        m->slots[j] = old[i];
    }
    free(old);
}

void *hashmap_get(const hashmap *m, const char *key)
{
    size_t i = find_slot(m, key, hash_key(key));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

void *hashmap_put(hashmap *m, const char *key, void *value)
{
    uint32_t h = hash_key(key);
    size_t i = find_slot(m, key, h);
    if (m->slots[i].key) {
        void *prev = m->slots[i].value;
        m->slots[i].value = value;
        return prev;
    }
    if ((m->count + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
        grow(m);
        i = find_slot(m, key, h);
    }
    m->slots[i] = (slot){ xstrdup(key), h, value };
    m->count++;
    return NULL;
}

void *hashmap_remove(hashmap *m, const char *key)
{
    size_t mask = m->cap - 1;
    size_t i = find_slot(m, key, hash_key(key));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->count--;
    /* Backward shift: move later entries of the probe run into the hole when their home slot
     * does not lie strictly between the hole and themselves. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->slots[hole] = m->slots[j];
            m->slots[j].key = NULL;
            hole = j;
        }
    }
    return value;
}

size_t hashmap_count(const hashmap *m) { return m->count; }

void hashmap_each(const hashmap *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            fn(ctx, m->slots[i].key, m->slots[i].value);
}
