/* store/storage_stats.c — the write counters of the storage layer (storage_get_write_stats,
 * exported by /metrics and `ternctl status`): what store/storage.c (plain calls) and
 * store/storage_queue.c (queued calls) both charge, the same way whatever backend stores the
 * bytes.
 *
 * The counters are C11 atomics, updated with relaxed ordering: the storage thread and the main
 * loop write, and the main loop (/metrics) or ternctl's status read a figure that only has to
 * be eventually right, never ordered against other memory. */
#include "store/storage_internal.h"

#include <string.h>

#include "store/storage_env.h"

static size_t owner_len(const char *owner)
{
    return owner ? strlen(owner) : 0;
}

void storage_count_write(tern_storage *st, size_t bytes)
{
    atomic_fetch_add_explicit(&st->writes, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->bytes, bytes, memory_order_relaxed);
}

void storage_count_commit(tern_storage *st)
{
    atomic_fetch_add_explicit(&st->commits, 1, memory_order_relaxed);
}

size_t storage_map_apply_bytes(const char *owner, const storage_map_change *changes, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += owner_len(owner) + strlen(changes[i].key) +
                 (changes[i].value ? changes[i].len : 0);
    return bytes;
}

size_t storage_append_bytes(const char *owner, const char *peer, size_t len)
{
    return owner_len(owner) + owner_len(peer) + len;
}

void storage_get_write_stats(tern_storage *st, unsigned long long *writes,
                             unsigned long long *bytes, unsigned long long *commits)
{
    if (writes)
        *writes = atomic_load_explicit(&st->writes, memory_order_relaxed);
    if (bytes)
        *bytes = atomic_load_explicit(&st->bytes, memory_order_relaxed);
    if (commits)
        *commits = atomic_load_explicit(&st->commits, memory_order_relaxed);
}
