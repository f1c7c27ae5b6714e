/* store/lmdb/lmdb_backend.c — what the LMDB backend does across stores (deleting everything
 * an owner has, whichever modules wrote it) and its table of operations (store/backend.h). */
#include "store/lmdb/lmdb.h"
#include "store/lmdb/lmdb_internal.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "tern/log.h"

/* ---- everything an owner has ---- */

/* The names of every store in the environment ("kv:roster", "arc:offline", ...), malloc'd. */
static int list_stores(lmdb_db *st, char ***names, size_t *n)
{
    MDB_txn *txn;
    if (lmdb_read_begin(st, &txn, "listing stores") < 0)
        return -1;
    MDB_dbi main_dbi;
    MDB_cursor *cur;
    int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc == 0)
        rc = mdb_cursor_open(txn, main_dbi, &cur);
    if (rc) {
        log_error(0, "storage: listing stores: %s", mdb_strerror(rc));
        lmdb_read_end(st, txn);
        return -1;
    }
    *names = NULL;
    *n = 0;
    MDB_val key, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        *names = xrealloc(*names, (*n + 1) * sizeof **names);
        (*names)[(*n)++] = xstrndup(key.mv_data, key.mv_size);
    }
    mdb_cursor_close(cur);
    lmdb_read_end(st, txn);
    return 0;
}

int lmdb_delete_owner(void *db, const char *owner)
{
    lmdb_db *st = db;
    char **names;
    size_t n;
    if (list_stores(st, &names, &n) < 0)
        return -1;
    int ret = 0;
    key_buf exact, prefix; /* keyval keys are the owner; map and archive keys start owner '\0' */
    if (lmdb_key_make(st, &exact, owner, false, NULL, 0) < 0 ||
        lmdb_key_make(st, &prefix, owner, true, NULL, 0) < 0)
        ret = -1;
    for (size_t i = 0; i < n && ret == 0; i++) {
        char *colon = strchr(names[i], ':');
        if (!colon)
            continue; /* "meta": counters, not owners' data */
        *colon = '\0';
        const char *kind = names[i], *store = colon + 1;
        MDB_dbi dbi;
        if (lmdb_get_dbi(st, kind, store, &dbi) < 0) {
            ret = -1;
        } else if (strcmp(kind, "kv") == 0) {
            ret = lmdb_delete_key(st, dbi, &exact, "deleting an owner");
        } else if (strcmp(kind, "arc") == 0) {
            ret = lmdb_archive_clear(st, store, owner); /* items and their count */
        } else {
            ret = lmdb_delete_prefix(st, dbi, &prefix, "deleting an owner");
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

const tern_storage_backend storage_lmdb_backend = {
    .name = "lmdb",
    .open = lmdb_open,
    .close = lmdb_close,
    .set_max_size = lmdb_set_max_size,
    .size = lmdb_size,
    .delete_owner = lmdb_delete_owner,
    .kv_get = lmdb_kv_get,
    .kv_put = lmdb_kv_put,
    .kv_delete = lmdb_kv_delete,
    .kv_update = lmdb_kv_update,
    .kv_each_owner = lmdb_kv_each_owner,
    .map_get = lmdb_map_get,
    .map_apply = lmdb_map_apply,
    .map_each = lmdb_map_each,
    .map_clear = lmdb_map_clear,
    .archive_append = lmdb_archive_append,
    .archive_query = lmdb_archive_query,
    .archive_delete = lmdb_archive_delete,
    .archive_clear = lmdb_archive_clear,
    .archive_count = lmdb_archive_count,
    .batch = lmdb_batch,
};
