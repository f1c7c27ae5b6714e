/* store/storage.c — tern/storage.h and storage_env.h, dispatched through a backend's table
 * (store/backend.h). This layer owns what every backend would otherwise repeat: choosing the
 * backend, turning map put/delete into one-change applies, and counting the writes and the
 * bytes they carried (storage_get_write_stats, exported by /metrics), so "how much does one
 * roster change cost" is measured the same way whatever stores the bytes.
 *
 * Every plain call about one owner first waits for that owner's queued writes
 * (storage_queue_wait, store/storage_queue.c): plain and queued calls may be mixed freely. */
#include "store/storage_env.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/backend.h"
#include "store/lmdb/lmdb.h"
#include "store/storage_internal.h"

/* A plain write: its own transaction. */
static void count_write(tern_storage *st, size_t bytes)
{
    storage_count_write(st, bytes);
    storage_count_commit(st);
}

static size_t owner_len(const char *owner)
{
    return owner ? strlen(owner) : 0;
}

/* ---- environment ---- */

tern_storage *storage_open(const char *dir, size_t map_size, char *err, size_t err_len)
{
    const tern_storage_backend *backend = &storage_lmdb_backend; /* the only one, for now */
    void *db = backend->open(dir, map_size, err, err_len);
    if (!db)
        return NULL;
    tern_storage *st = xcalloc(1, sizeof *st);
    st->backend = backend;
    st->db = db;
    atomic_init(&st->writes, 0);
    atomic_init(&st->bytes, 0);
    atomic_init(&st->commits, 0);
    return st;
}

void storage_close(tern_storage *st)
{
    if (!st)
        return;
    storage_queue_stop(st);
    st->backend->close(st->db);
    free(st);
}

void storage_set_max_size(tern_storage *st, size_t max)
{
    st->backend->set_max_size(st->db, max);
}

long long storage_file_size(tern_storage *st)
{
    return st->backend->size(st->db);
}

int storage_delete_owner(tern_storage *st, const char *owner)
{
    storage_queue_wait(st, NULL, NULL);
    int rc = st->backend->delete_owner(st->db, owner);
    if (rc == 0)
        count_write(st, owner_len(owner));
    return rc;
}

/* ---- keyval ---- */

int storage_kv_get(tern_storage *st, const char *store, const char *owner, void **value,
                   size_t *len)
{
    storage_queue_wait(st, store, owner);
    return st->backend->kv_get(st->db, store, owner, value, len);
}

int storage_kv_put(tern_storage *st, const char *store, const char *owner, const void *value,
                   size_t len)
{
    storage_queue_wait(st, store, owner);
    int rc = st->backend->kv_put(st->db, store, owner, value, len);
    if (rc == 0)
        count_write(st, owner_len(owner) + len);
    return rc;
}

int storage_kv_delete(tern_storage *st, const char *store, const char *owner)
{
    storage_queue_wait(st, store, owner);
    int rc = st->backend->kv_delete(st->db, store, owner);
    if (rc == 0)
        count_write(st, owner_len(owner));
    return rc;
}

/* kv_update's fn decides inside the backend's transaction what is written; this wrapper
 * remembers the decision of its last run (it may run again after the map grew), which is the
 * one that was committed. */
struct update_count {
    storage_update (*fn)(void *ctx, const void *old, size_t old_len, void **out,
                         size_t *out_len);
    void *ctx;
    storage_update what;
    size_t len;
};

static storage_update update_counted(void *ctx, const void *old, size_t old_len, void **out,
                                     size_t *out_len)
{
    struct update_count *u = ctx;
    u->what = u->fn(u->ctx, old, old_len, out, out_len);
    u->len = u->what == STORAGE_PUT ? *out_len : 0;
    return u->what;
}

int storage_kv_update(tern_storage *st, const char *store, const char *owner,
                      storage_update (*fn)(void *ctx, const void *old, size_t old_len,
                                           void **out, size_t *out_len),
                      void *ctx)
{
    storage_queue_wait(st, store, owner);
    struct update_count u = { fn, ctx, STORAGE_KEEP, 0 };
    int rc = st->backend->kv_update(st->db, store, owner, update_counted, &u);
    if (rc == 0 && u.what != STORAGE_KEEP)
        count_write(st, owner_len(owner) + u.len);
    return rc;
}

int storage_kv_each_owner(tern_storage *st, const char *store, const char *domain,
                          int (*fn)(void *ctx, const char *owner), void *ctx)
{
    storage_queue_wait(st, store, NULL);
    return st->backend->kv_each_owner(st->db, store, domain, fn, ctx);
}

/* ---- map ---- */

int storage_map_get(tern_storage *st, const char *store, const char *owner, const char *key,
                    void **value, size_t *len)
{
    storage_queue_wait(st, store, owner);
    return st->backend->map_get(st->db, store, owner, key, value, len);
}

int storage_map_apply(tern_storage *st, const char *store, const char *owner,
                      const storage_map_change *changes, size_t n)
{
    storage_queue_wait(st, store, owner);
    int rc = st->backend->map_apply(st->db, store, owner, changes, n);
    if (rc == 0 && n > 0)
        count_write(st, storage_map_apply_bytes(owner, changes, n));
    return rc;
}

int storage_map_put(tern_storage *st, const char *store, const char *owner, const char *key,
                    const void *value, size_t len)
{
    /* A NULL value means "delete" to map_apply; an empty put may pass NULL, 0. */
    storage_map_change change = { key, value ? value : "", len };
    return storage_map_apply(st, store, owner, &change, 1);
}

int storage_map_delete(tern_storage *st, const char *store, const char *owner, const char *key)
{
    storage_map_change change = { key, NULL, 0 };
    return storage_map_apply(st, store, owner, &change, 1);
}

int storage_map_each(tern_storage *st, const char *store, const char *owner,
                     int (*fn)(void *ctx, const char *key, const void *value, size_t len),
                     void *ctx)
{
    storage_queue_wait(st, store, owner);
    return st->backend->map_each(st->db, store, owner, fn, ctx);
}

int storage_map_clear(tern_storage *st, const char *store, const char *owner)
{
    storage_queue_wait(st, store, owner);
    int rc = st->backend->map_clear(st->db, store, owner);
    if (rc == 0)
        count_write(st, owner_len(owner));
    return rc;
}

/* ---- archive ---- */

int storage_archive_append(tern_storage *st, const char *store, const char *owner, time_t when,
                           const char *peer, const void *payload, size_t len, uint64_t *id_out)
{
    storage_queue_wait(st, store, owner);
    int rc = st->backend->archive_append(st->db, store, owner, when, peer, payload, len, 0,
                                         id_out);
    if (rc == 0)
        count_write(st, storage_append_bytes(owner, peer, len));
    return rc;
}

int storage_archive_query(tern_storage *st, const char *store, const char *owner,
                          const struct storage_archive_query *q,
                          int (*fn)(void *ctx, const storage_archive_item *item), void *ctx)
{
    storage_queue_wait(st, store, owner);
    return st->backend->archive_query(st->db, store, owner, q, fn, ctx);
}

int storage_archive_delete(tern_storage *st, const char *store, const char *owner, uint64_t id)
{
    storage_queue_wait(st, store, owner);
    int rc = st->backend->archive_delete(st->db, store, owner, id);
    if (rc == 0)
        count_write(st, owner_len(owner) + sizeof id);
    return rc;
}

int storage_archive_clear(tern_storage *st, const char *store, const char *owner)
{
    storage_queue_wait(st, store, owner);
    int rc = st->backend->archive_clear(st->db, store, owner);
    if (rc == 0)
        count_write(st, owner_len(owner));
    return rc;
}

int storage_archive_count(tern_storage *st, const char *store, const char *owner, size_t *count)
{
    storage_queue_wait(st, store, owner);
    return st->backend->archive_count(st->db, store, owner, count);
}
