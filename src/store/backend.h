/* store/backend.h — the table of operations a storage backend implements (doc/architecture.md
 * §5). src/store/storage.c implements tern/storage.h and storage_env.h by calling through one
 * such table; LMDB (src/store/lmdb/) is the only backend today, and a second one (PostgreSQL,
 * say) is a new folder with a new table: no module and no other part of the core changes.
 *
 * Each operation takes the backend's own handle (`db`, what `open` returned) first, then the
 * same arguments as the public call of the same name in tern/storage.h or storage_env.h, and
 * returns what that call returns. The contract every backend keeps:
 *
 *   - Durable before return: a write that returns 0 is committed, and survives kill -9 and a
 *     power cut. A write that fails changed nothing (map_apply included: all or none).
 *   - Callbacks never run inside a transaction (kv_each_owner, map_each, archive_query): the
 *     backend copies items out and calls back after its transaction ended, so a callback may
 *     call back into storage and a slow one holds nothing. kv_update's fn is the exception the
 *     public header documents: it runs inside the write, possibly more than once.
 *   - Return codes: 0 success; 1 "found" (gets) or "more" (archive_query); -1 an error,
 *     already logged by the backend ("storage: <what>: ..."); TERN_STORAGE_FULL for a write
 *     that found no room (the configured cap, the disk, a quota), so a module can answer
 *     resource-constraint and the sender retry.
 *   - Owners never contain a NUL; map keys are NUL-terminated strings; values are opaque bytes
 *     the caller owns (gets return a malloc'd copy the caller frees).
 *   - The handle is shared by every thread of ternd: every operation is thread-safe, and the
 *     data may be opened by ternctl (another process) at the same time.
 *   - Group commit (`batch`): the writes made by `run` commit together, in one durable
 *     transaction, and each write still answers for itself: one that fails (a key too long,
 *     an archive at its max_items) changes nothing and leaves the others in. `run` may run
 *     more than once (when the backend had to make room, or open a store, first): it must
 *     make the same calls each time and take its results from the last run. batch returns 0
 *     when the commit succeeded, else what the writes would have returned for a failed
 *     commit (-1, or TERN_STORAGE_FULL when the commit found no room); then none of them
 *     took effect, whatever they returned.
 *
 * Counting writes and bytes is the dispatch layer's job, not the backend's. */
#ifndef TERN_STORE_BACKEND_H
#define TERN_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/storage_env.h"

typedef struct tern_storage_backend {
    const char *name; /* "lmdb" */

    /* The environment: open (creating `dir` if needed; NULL and a reason in err on failure),
     * close (NULL is a no-op), the size cap, the size of what is stored for `ternctl status`,
     * and deleting every record of an owner in every store. */
    void *(*open)(const char *dir, size_t map_size, char *err, size_t err_len);
    void (*close)(void *db);
    void (*set_max_size)(void *db, size_t max);
    long long (*size)(void *db);
    int (*delete_owner)(void *db, const char *owner);

    /* keyval */
    int (*kv_get)(void *db, const char *store, const char *owner, void **value, size_t *len);
    int (*kv_put)(void *db, const char *store, const char *owner, const void *value,
                  size_t len);
    int (*kv_delete)(void *db, const char *store, const char *owner);
    int (*kv_update)(void *db, const char *store, const char *owner,
                     storage_update (*fn)(void *ctx, const void *old, size_t old_len,
                                          void **out, size_t *out_len),
                     void *ctx);
    int (*kv_each_owner)(void *db, const char *store, const char *domain,
                         int (*fn)(void *ctx, const char *owner), void *ctx);

    /* map: map_apply is the only map write (a put or a delete is a one-change apply). */
    int (*map_get)(void *db, const char *store, const char *owner, const char *key,
                   void **value, size_t *len);
    int (*map_apply)(void *db, const char *store, const char *owner,
                     const storage_map_change *changes, size_t n);
    int (*map_each)(void *db, const char *store, const char *owner,
                    int (*fn)(void *ctx, const char *key, const void *value, size_t len),
                    void *ctx);
    int (*map_clear)(void *db, const char *store, const char *owner);

    /* archive */
    /* max_items > 0: TERN_STORAGE_LIMIT when the owner already has that many items. */
    int (*archive_append)(void *db, const char *store, const char *owner, time_t when,
                          const char *peer, const void *payload, size_t len, size_t max_items,
                          uint64_t *id_out);
    int (*archive_query)(void *db, const char *store, const char *owner,
                         const struct storage_archive_query *q,
                         int (*fn)(void *ctx, const storage_archive_item *item), void *ctx);
    int (*archive_delete)(void *db, const char *store, const char *owner, uint64_t id);
    int (*archive_clear)(void *db, const char *store, const char *owner);
    int (*archive_count)(void *db, const char *store, const char *owner, size_t *count);

    /* group commit: the write calls `run` makes on this thread commit together. */
    int (*batch)(void *db, void (*run)(void *ctx), void *ctx);
} tern_storage_backend;

#endif
