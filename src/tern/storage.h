/* tern/storage.h — the narrow storage API modules use (doc/architecture.md §5, "Storage").
 *
 * Three kinds of store, each named by a short string ("accounts", "roster", "offline", ...):
 *   keyval:  one value per owner;
 *   map:     many keyed values per owner;
 *   archive: an append-only, time-ordered log per owner.
 * An owner is a prepared bare JID ("user@host") or a host ("host"). Every write is committed
 * durably before the call returns (a crash right after a 0 return loses nothing). Functions
 * return 0 on success, 1 for "found"/"more", -1 on error (logged by the storage layer), and a
 * write may return TERN_STORAGE_FULL (also < 0) when the disk or the configured size is full:
 * answer it with tern_storage_error() (resource-constraint, RFC 6120 §8.3.3.18).
 * Values are opaque bytes; the caller owns what it passes in, and frees what it gets out with
 * free(). The backend today is LMDB (src/store/lmdb/); modules never see it.
 *
 * Two ways to call it. The plain calls below block until done (an LMDB read is a few
 * microseconds; a write waits for its own fsync). The _async calls at the end queue the work
 * and return at once; a storage thread commits every write queued meanwhile in one durable
 * transaction (group commit: one fsync for all of them) and the completion runs later on the
 * main loop, with the result. Send what acknowledges a write (an iq result, a Stream
 * Management <a/>) from the completion: then nothing acknowledged is ever lost. A handler on a
 * hot path (a message to an offline user, an archived message) should use them; the loop goes
 * on routing while the disk works. A networked backend will only be fast through them. */
#ifndef TERN_STORAGE_H
#define TERN_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct tern_storage tern_storage;

#define TERN_STORAGE_FULL (-2)
/* An archive append with max_items found the owner at that many items (nothing written). */
#define TERN_STORAGE_LIMIT (-3)

/* keyval. get: 1 and *value, *len (malloc'd) when present, 0 when absent. */
int storage_kv_get(tern_storage *st, const char *store, const char *owner, void **value,
                   size_t *len);
int storage_kv_put(tern_storage *st, const char *store, const char *owner, const void *value,
                   size_t len);
int storage_kv_delete(tern_storage *st, const char *store, const char *owner); /* absent: 0 */
/* Calls fn for each owner in a store whose owner ends with "@domain" (or every owner when
 * domain is NULL), in key order. fn returns 0 to continue, non-zero to stop. */
int storage_kv_each_owner(tern_storage *st, const char *store, const char *domain,
                          int (*fn)(void *ctx, const char *owner), void *ctx);

/* map. */
int storage_map_get(tern_storage *st, const char *store, const char *owner, const char *key,
                    void **value, size_t *len);
int storage_map_put(tern_storage *st, const char *store, const char *owner, const char *key,
                    const void *value, size_t len);
int storage_map_delete(tern_storage *st, const char *store, const char *owner, const char *key);
/* One change to a map: value NULL deletes key (absent is not an error), else puts it. */
typedef struct storage_map_change {
    const char *key;
    const void *value;
    size_t len;
} storage_map_change;
/* Applies n changes to one owner's map in a single durable transaction: all or none. */
int storage_map_apply(tern_storage *st, const char *store, const char *owner,
                      const storage_map_change *changes, size_t n);
int storage_map_each(tern_storage *st, const char *store, const char *owner,
                     int (*fn)(void *ctx, const char *key, const void *value, size_t len),
                     void *ctx);
/* Deletes every key of an owner (used when an account is deleted). */
int storage_map_clear(tern_storage *st, const char *store, const char *owner);

/* archive. */
typedef struct storage_archive_item {
    uint64_t id;          /* assigned by append: increases with each append in a store */
    time_t when;          /* seconds since the epoch */
    const char *peer;     /* the other party's bare JID, may be NULL */
    const void *payload;  /* e.g. a serialized stanza */
    size_t payload_len;
} storage_archive_item;

/* A struct tag only: a typedef of the same name would clash with the function below. */
struct storage_archive_query {
    time_t start, end;    /* inclusive; 0 means unbounded */
    const char *peer;     /* only items with this peer; NULL: all */
    uint64_t after_id;    /* only items with id > after_id; 0: from the start */
    uint64_t before_id;   /* only items with id < before_id; 0: to the end */
    size_t max;           /* at most this many items; 0: unlimited */
    int reverse;          /* newest first (for "the last N" paging) */
};

/* Appends; fills *id_out with the item's id. */
int storage_archive_append(tern_storage *st, const char *store, const char *owner, time_t when,
                           const char *peer, const void *payload, size_t len, uint64_t *id_out);
/* Calls fn for each matching item in id order (or reverse). The item's pointers are valid only
 * during the call. fn returns 0 to continue, non-zero to stop. Returns 1 if more items matched
 * than were returned (max reached), 0 if complete, -1 on error. */
int storage_archive_query(tern_storage *st, const char *store, const char *owner,
                          const struct storage_archive_query *q,
                          int (*fn)(void *ctx, const storage_archive_item *item), void *ctx);
int storage_archive_delete(tern_storage *st, const char *store, const char *owner, uint64_t id);
int storage_archive_clear(tern_storage *st, const char *store, const char *owner);
/* Number of items an owner has in a store. */
int storage_archive_count(tern_storage *st, const char *store, const char *owner, size_t *count);

/* ---- asynchronous calls: queued, group-committed, completed on the main loop ----
 *
 * Main loop only (module handlers, timers). Each call copies its arguments and returns; the
 * work runs on the storage thread in the order queued, writes batched into one transaction
 * per commit, and `done` (may be NULL: errors are logged either way) runs on the main loop
 * once the write is durable or failed, never inside the call. Completions run in queue order.
 * rc is what the plain call would have returned (0, -1, TERN_STORAGE_FULL,
 * TERN_STORAGE_LIMIT); id is the new item's id for an append, else 0.
 *
 * Reading your writes: a plain call about an owner in a store first waits for that owner's
 * queued writes in that store to commit, so it never sees older data than was queued (and a
 * plain write cannot overtake a queued one). An _async query sees every write queued before
 * it. A module that is unloaded first sees its queued work completed. */
typedef void (*storage_write_done)(void *ctx, int rc, uint64_t id);

void storage_kv_put_async(tern_storage *st, const char *store, const char *owner,
                          const void *value, size_t len, storage_write_done done, void *ctx);
void storage_kv_delete_async(tern_storage *st, const char *store, const char *owner,
                             storage_write_done done, void *ctx);
void storage_map_apply_async(tern_storage *st, const char *store, const char *owner,
                             const storage_map_change *changes, size_t n,
                             storage_write_done done, void *ctx);
/* max_items > 0 bounds the owner's archive: at that many items the append writes nothing and
 * completes with TERN_STORAGE_LIMIT (a quota checked in the same transaction, so appends
 * queued together cannot overshoot it). */
void storage_archive_append_async(tern_storage *st, const char *store, const char *owner,
                                  time_t when, const char *peer, const void *payload,
                                  size_t len, size_t max_items, storage_write_done done,
                                  void *ctx);
void storage_archive_delete_async(tern_storage *st, const char *store, const char *owner,
                                  uint64_t id, storage_write_done done, void *ctx);
void storage_archive_clear_async(tern_storage *st, const char *store, const char *owner,
                                 storage_write_done done, void *ctx);
/* Runs the query after every write queued before it; on the main loop, `item` is called for
 * each match (non-zero stops: the rest are skipped), then `done` with 1 (more matched than
 * q->max), 0 (complete) or -1. The items are copied out: mind q->max on large archives. */
void storage_archive_query_async(tern_storage *st, const char *store, const char *owner,
                                 const struct storage_archive_query *q,
                                 int (*item)(void *ctx, const storage_archive_item *item),
                                 void (*done)(void *ctx, int rc), void *ctx);
/* Calls done once everything queued before it is committed (or failed): e.g. a Stream
 * Management <a/> that acknowledges stanzas whose writes are in flight. */
void storage_after_writes(tern_storage *st, void (*done)(void *ctx), void *ctx);

#endif
