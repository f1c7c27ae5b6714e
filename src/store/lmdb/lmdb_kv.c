/* store/lmdb/lmdb_kv.c — the keyval and map stores of the LMDB backend (layouts in
 * lmdb_env.c), and the read and write helpers by key the archive and delete_owner share. As
 * everywhere in this backend, the each-callbacks never run inside a transaction: items are
 * copied out in batches and delivered after the read transaction ended. */
#include "store/lmdb/lmdb_internal.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "tern/log.h"

/* ---- shared read / write helpers ---- */

/* Reads one value by exact key: 1 and a malloc'd copy, 0 when absent, -1 on error. */
static int get_value(lmdb_db *st, MDB_dbi dbi, const key_buf *k, void **value, size_t *len,
                     const char *what)
{
    MDB_txn *txn;
    if (lmdb_read_begin(st, &txn, what) < 0)
        return -1;
    MDB_val key = { k->len, (void *)k->data }, val;
    int rc = mdb_get(txn, dbi, &key, &val);
    int ret;
    if (rc == 0) {
        *value = xmalloc(val.mv_size);
        memcpy(*value, val.mv_data, val.mv_size);
        *len = val.mv_size;
        ret = 1;
    } else if (rc == MDB_NOTFOUND) {
        *value = NULL;
        *len = 0;
        ret = 0;
    } else {
        log_error(0, "storage: %s: %s", what, mdb_strerror(rc));
        ret = -1;
    }
    lmdb_read_end(st, txn);
    return ret;
}

struct put_arg {
    MDB_dbi dbi;
    const key_buf *k;
    const void *value;
    size_t len;
};

static int put_op(MDB_txn *txn, void *arg)
{
    struct put_arg *a = arg;
    MDB_val key = { a->k->len, (void *)a->k->data }, val = { a->len, (void *)a->value };
    return mdb_put(txn, a->dbi, &key, &val, 0);
}

static int del_op(MDB_txn *txn, void *arg)
{
    struct put_arg *a = arg;
    MDB_val key = { a->k->len, (void *)a->k->data };
    int rc = mdb_del(txn, a->dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;  /* deleting what is absent is not an error */
}

/* Deletes every key that starts with k's prefix (owner + '\0'). Re-seeking after each delete is
 * O(n log n) but leans on nothing subtle about cursor positions after mdb_cursor_del. */
int lmdb_delete_prefix_in(MDB_txn *txn, MDB_dbi dbi, const key_buf *k)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    for (;;) {
        MDB_val key = { k->prefix_len, (void *)k->data }, val;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && !lmdb_key_has_prefix(&key, k))) {
            rc = 0;
            break;
        }
        if (rc || (rc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

static int clear_prefix_op(MDB_txn *txn, void *arg)
{
    struct put_arg *a = arg;
    return lmdb_delete_prefix_in(txn, a->dbi, a->k);
}

int lmdb_delete_key(lmdb_db *st, MDB_dbi dbi, const key_buf *k, const char *what)
{
    struct put_arg a = { dbi, k, NULL, 0 };
    return lmdb_write(st, what, del_op, &a);
}

int lmdb_delete_prefix(lmdb_db *st, MDB_dbi dbi, const key_buf *k, const char *what)
{
    struct put_arg a = { dbi, k, NULL, 0 };
    return lmdb_write(st, what, clear_prefix_op, &a);
}

/* ---- keyval ---- */

int lmdb_kv_get(void *db, const char *store, const char *owner, void **value,
                size_t *len)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "kv", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    return get_value(st, dbi, &k, value, len, "kv get");
}

int lmdb_kv_put(void *db, const char *store, const char *owner, const void *value,
                size_t len)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "kv", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    struct put_arg a = { dbi, &k, value, len };
    return lmdb_write(st, "kv put", put_op, &a);
}

int lmdb_kv_delete(void *db, const char *store, const char *owner)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "kv", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    return lmdb_delete_key(st, dbi, &k, "kv delete");
}

struct update_arg {
    MDB_dbi dbi;
    const key_buf *k;
    storage_update (*fn)(void *ctx, const void *old, size_t old_len, void **out,
                         size_t *out_len);
    void *ctx;
};

static int update_op(MDB_txn *txn, void *arg)
{
    struct update_arg *a = arg;
    MDB_val key = { a->k->len, (void *)a->k->data }, val;
    int rc = mdb_get(txn, a->dbi, &key, &val);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    void *out = NULL;
    size_t out_len = 0;
    storage_update what = a->fn(a->ctx, rc == 0 ? val.mv_data : NULL, rc == 0 ? val.mv_size : 0,
                                &out, &out_len);
    switch (what) {
    case STORAGE_PUT:
        val.mv_data = out;
        val.mv_size = out_len;
        rc = mdb_put(txn, a->dbi, &key, &val, 0);
        free(out);
        return rc;
    case STORAGE_DELETE:
        return rc == 0 ? mdb_del(txn, a->dbi, &key, NULL) : 0;
    case STORAGE_KEEP:
    default:
        return 0;  /* commits an empty transaction: cheap, LMDB writes nothing */
    }
}

int lmdb_kv_update(void *db, const char *store, const char *owner,
                   storage_update (*fn)(void *ctx, const void *old, size_t old_len,
                                        void **out, size_t *out_len),
                   void *ctx)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "kv", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    struct update_arg a = { dbi, &k, fn, ctx };
    return lmdb_write(st, "kv update", update_op, &a);
}

static bool owner_in_domain(const char *owner, size_t len, const char *domain)
{
    if (!domain)
        return true;
    size_t dlen = strlen(domain);
    if (len == dlen)
        return memcmp(owner, domain, dlen) == 0;
    return len > dlen && owner[len - dlen - 1] == '@' &&
           memcmp(owner + len - dlen, domain, dlen) == 0;
}

/* Batches of owner names, collected in one read transaction and delivered after it. */
int lmdb_kv_each_owner(void *db, const char *store, const char *domain,
                       int (*fn)(void *ctx, const char *owner), void *ctx)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    if (lmdb_get_dbi(st, "kv", store, &dbi) < 0)
        return -1;
    char *batch[LMDB_BATCH_ITEMS];
    char *last = NULL;  /* the batch ended at this owner: resume after it */
    for (;;) {
        size_t n = 0;
        bool done = false;
        MDB_txn *txn;
        MDB_cursor *cur;
        if (lmdb_read_begin(st, &txn, "kv each") < 0) {
            free(last);
            return -1;
        }
        int rc = mdb_cursor_open(txn, dbi, &cur);
        if (rc == 0) {
            MDB_val key = { last ? strlen(last) : 0, last }, val;
            rc = mdb_cursor_get(cur, &key, &val, last ? MDB_SET_RANGE : MDB_FIRST);
            if (rc == 0 && last && key.mv_size == strlen(last) &&
                memcmp(key.mv_data, last, key.mv_size) == 0)
                rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            while (rc == 0 && n < LMDB_BATCH_ITEMS) {
                if (owner_in_domain(key.mv_data, key.mv_size, domain))
                    batch[n++] = xstrndup(key.mv_data, key.mv_size);
                rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            }
            free(last);
            last = n ? xstrdup(batch[n - 1]) : NULL;
            if (rc == MDB_NOTFOUND) {
                done = true;
                rc = 0;
            }
            mdb_cursor_close(cur);
        }
        lmdb_read_end(st, txn);
        if (rc)
            log_error(0, "storage: kv each: %s", mdb_strerror(rc));
        bool stop = false;
        for (size_t i = 0; i < n; i++) {
            if (!rc && !stop && fn(ctx, batch[i]) != 0)
                stop = true;
            free(batch[i]);
        }
        if (rc || stop || done) {
            free(last);
            return rc ? -1 : 0;
        }
    }
}

/* ---- map ---- */

static int map_key(lmdb_db *st, key_buf *k, const char *owner, const char *key)
{
    if (!key) {
        log_error(0, "storage: map key missing");
        return -1;
    }
    return lmdb_key_make(st, k, owner, true, key, strlen(key));
}

int lmdb_map_get(void *db, const char *store, const char *owner, const char *key,
                 void **value, size_t *len)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "map", store, &dbi) < 0 || map_key(st, &k, owner, key) < 0)
        return -1;
    return get_value(st, dbi, &k, value, len, "map get");
}

struct apply_arg {
    MDB_dbi dbi;
    key_buf *k;  /* the owner prefix; each change's key is written after it */
    const storage_map_change *changes;
    size_t n;
};

/* Every change in one transaction: the commit makes them visible together, and an error
 * aborts them together. */
static int apply_op(MDB_txn *txn, void *arg)
{
    struct apply_arg *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        const storage_map_change *c = &a->changes[i];
        size_t key_len = strlen(c->key);  /* fits: checked by lmdb_map_apply */
        memcpy(a->k->data + a->k->prefix_len, c->key, key_len);
        MDB_val key = { a->k->prefix_len + key_len, a->k->data };
        int rc;
        if (c->value) {
            MDB_val val = { c->len, (void *)c->value };
            rc = mdb_put(txn, a->dbi, &key, &val, 0);
        } else {
            rc = mdb_del(txn, a->dbi, &key, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;  /* deleting what is absent is not an error */
        }
        if (rc)
            return rc;
    }
    return 0;
}

int lmdb_map_apply(void *db, const char *store, const char *owner,
                   const storage_map_change *changes, size_t n)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "map", store, &dbi) < 0)
        return -1;
    /* Every key is checked before the transaction, so a bad one fails the call whole. */
    for (size_t i = 0; i < n; i++)
        if (map_key(st, &k, owner, changes[i].key) < 0)
            return -1;
    if (n == 0)
        return 0;
    if (lmdb_key_make(st, &k, owner, true, NULL, 0) < 0)
        return -1;
    struct apply_arg a = { dbi, &k, changes, n };
    return lmdb_write(st, n == 1 ? "map put" : "map apply", apply_op, &a);
}

int lmdb_map_clear(void *db, const char *store, const char *owner)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "map", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, true, NULL, 0) < 0)
        return -1;
    return lmdb_delete_prefix(st, dbi, &k, "map clear");
}

struct map_item {
    char *key;
    void *value;
    size_t len;
};

int lmdb_map_each(void *db, const char *store, const char *owner,
                  int (*fn)(void *ctx, const char *key, const void *value, size_t len),
                  void *ctx)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;  /* the owner prefix, then the full key to resume from */
    if (lmdb_get_dbi(st, "map", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, true, NULL, 0) < 0)
        return -1;
    struct map_item batch[LMDB_BATCH_ITEMS];
    bool resume = false;
    for (;;) {
        size_t n = 0, bytes = 0;
        bool done = false;
        MDB_txn *txn;
        MDB_cursor *cur;
        if (lmdb_read_begin(st, &txn, "map each") < 0)
            return -1;
        int rc = mdb_cursor_open(txn, dbi, &cur);
        if (rc == 0) {
            MDB_val key = { k.len, k.data }, val;
            rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
            if (rc == 0 && resume && key.mv_size == k.len &&
                memcmp(key.mv_data, k.data, k.len) == 0)
                rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            while (rc == 0 && lmdb_key_has_prefix(&key, &k) && n < LMDB_BATCH_ITEMS &&
                   bytes < LMDB_BATCH_BYTES) {
                const char *name = (const char *)key.mv_data + k.prefix_len;
                size_t name_len = key.mv_size - k.prefix_len;
                batch[n].key = xstrndup(name, name_len);
                batch[n].value = xmalloc(val.mv_size);
                memcpy(batch[n].value, val.mv_data, val.mv_size);
                batch[n].len = val.mv_size;
                n++;
                bytes += val.mv_size;
                memcpy(k.data, key.mv_data, key.mv_size);  /* fits: it is a key */
                k.len = key.mv_size;
                resume = true;
                rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            }
            if (rc == MDB_NOTFOUND || (rc == 0 && !lmdb_key_has_prefix(&key, &k))) {
                done = true;
                rc = 0;
            }
            mdb_cursor_close(cur);
        }
        lmdb_read_end(st, txn);
        if (rc)
            log_error(0, "storage: map each: %s", mdb_strerror(rc));
        bool stop = false;
        for (size_t i = 0; i < n; i++) {
            if (!rc && !stop && fn(ctx, batch[i].key, batch[i].value, batch[i].len) != 0)
                stop = true;
            free(batch[i].key);
            free(batch[i].value);
        }
        if (rc)
            return -1;
        if (stop || done)
            return 0;
    }
}

