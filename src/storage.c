/* storage.c — the LMDB backend behind tern/storage.h and storage_env.h: the environment,
 * transactions and map growth, named databases, keyval and map. The archive store is in
 * storage_archive.c; what the two share is declared in storage_internal.h.
 *
 * One LMDB environment per data_dir, one named database per (kind, store) — "kv:accounts",
 * "map:private", "arc:offline" — so kinds never mix, plus "meta" for archive id counters.
 * Key layouts (owners are bare JIDs or hosts and never contain a NUL, so "owner\0" is a prefix
 * no other owner shares, even when one owner is a prefix of another: "al@x" vs "al@xy"):
 *   keyval   owner
 *   map      owner '\0' key
 *   archive  owner '\0' id, and "meta" counters (layouts in storage_archive.c)
 *
 * Concurrency. ternd's worker threads and ternctl (another process) share the environment.
 * MDB_NOTLS frees read transactions from the thread that began them; LMDB serialises writers
 * itself. Growing the map (mdb_env_set_mapsize) is only allowed while this process has no
 * transaction open, so every transaction holds `map_lock` shared and a resize takes it
 * exclusively. Callbacks (each_owner, map_each, archive_query) never run inside a
 * transaction: items are copied out in batches and delivered after the transaction ends,
 * so a callback may call back into storage and a slow callback never pins old pages.
 *
 * Durability: every write is one committed transaction with LMDB's default synchronous
 * commit (no MDB_NOSYNC / MDB_NOMETASYNC), so a 0 return survives kill -9 and power loss. */
#include "storage_env.h"
#include "storage_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tern/log.h"
#include "util.h"

#define STORAGE_DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define STORAGE_MAX_DBS 128
/* Bounds the loops that retry after MDB_MAP_FULL / MDB_MAP_RESIZED: doubling from 64 KiB
 * reaches any realistic size in far fewer steps. */
#define STORAGE_MAX_RETRIES 48
/* Read transactions kept for reuse: ternd reads on every stanza (a block list, a roster), and
 * beginning a fresh one allocates and clears LMDB's per-transaction tables each time. */
#define STORAGE_READ_POOL 8

struct dbi_entry {
    char *name;
    MDB_dbi dbi;
};

struct tern_storage {
    MDB_env *env;
    char *dir;
    size_t max_key;
    size_t map_size;            /* current map size; changed only under map_lock exclusive */
    size_t max_size;            /* the map never grows past it; 0: no cap */
    pthread_rwlock_t map_lock;  /* shared: a transaction is open; exclusive: resizing */
    pthread_mutex_t dbi_lock;   /* guards dbis[] and serialises mdb_dbi_open */
    struct dbi_entry dbis[STORAGE_MAX_DBS];
    size_t n_dbis;
    pthread_mutex_t pool_lock;  /* guards read_pool */
    MDB_txn *read_pool[STORAGE_READ_POOL]; /* reset read transactions (mdb_txn_reset) */
    size_t n_read_pool;
};

/* ---- transactions and map size ---- */

static void map_lock_exclusive_set(tern_storage *st, size_t size, const char *why)
{
    pthread_rwlock_wrlock(&st->map_lock);
    int rc = mdb_env_set_mapsize(st->env, size);
    if (rc)
        log_error(0, "storage: %s: %s", why, mdb_strerror(rc));
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info) == 0)
        st->map_size = info.me_mapsize;
    pthread_rwlock_unlock(&st->map_lock);
}

/* Another process grew the map past ours (MDB_MAP_RESIZED): size 0 adopts the size recorded in
 * the environment. */
static void adopt_map_size(tern_storage *st)
{
    map_lock_exclusive_set(st, 0, "adopting the map size");
}

/* MDB_MAP_FULL: double the map (up to max_size), unless another thread already grew it past
 * `seen`. 0, TERN_STORAGE_FULL at the cap, or -1. */
static int grow_map(tern_storage *st, size_t seen)
{
    pthread_rwlock_wrlock(&st->map_lock);
    int rc = 0;
    if (st->map_size <= seen) {
        size_t want = seen > SIZE_MAX / 2 ? SIZE_MAX : seen * 2;
        if (st->max_size && want > st->max_size)
            want = st->max_size;
        if (want <= seen) {
            rc = MDB_MAP_FULL;
        } else {
            rc = mdb_env_set_mapsize(st->env, want);
            MDB_envinfo info;
            if (mdb_env_info(st->env, &info) == 0)
                st->map_size = info.me_mapsize;
        }
        if (rc == 0)
            log_info(0, "storage: map grown to %zu KiB", st->map_size / 1024);
    }
    pthread_rwlock_unlock(&st->map_lock);
    if (rc == MDB_MAP_FULL) {
        log_error(0, "storage: full: the map is at its largest (%zu KiB)", seen / 1024);
        return TERN_STORAGE_FULL;
    }
    if (rc) {
        log_error(0, "storage: growing the map: %s", mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/* A write that failed for want of room (the disk, a quota, a file size limit) rather than a
 * fault: the caller may say so (resource-constraint) and the sender try again later. */
static bool out_of_room(int rc)
{
    return rc == ENOSPC || rc == EDQUOT || rc == EFBIG;
}

/* A reset read transaction brought back to the newest snapshot, or NULL. Under map_lock shared.
 * A reset transaction holds no snapshot, so keeping one neither pins old pages nor counts as
 * open for a map resize. */
static MDB_txn *renew_pooled(tern_storage *st)
{
    pthread_mutex_lock(&st->pool_lock);
    MDB_txn *txn = st->n_read_pool ? st->read_pool[--st->n_read_pool] : NULL;
    pthread_mutex_unlock(&st->pool_lock);
    if (txn && mdb_txn_renew(txn) != 0) {
        mdb_txn_abort(txn); /* e.g. MDB_MAP_RESIZED: the caller begins afresh */
        txn = NULL;
    }
    return txn;
}

/* Begins a transaction holding map_lock shared; on success the caller ends it with
 * storage_txn_abort or txn_commit (storage_read_end for MDB_RDONLY), which release the lock.
 * *seen gets the map size the transaction runs with. */
int storage_txn_begin(tern_storage *st, unsigned flags, MDB_txn **txn, size_t *seen)
{
    for (int tries = 0;; tries++) {
        pthread_rwlock_rdlock(&st->map_lock);
        int rc = 0;
        *txn = (flags & MDB_RDONLY) ? renew_pooled(st) : NULL;
        if (!*txn)
            rc = mdb_txn_begin(st->env, NULL, flags, txn);
        if (rc == 0) {
            if (seen)
                *seen = st->map_size;
            return 0;
        }
        pthread_rwlock_unlock(&st->map_lock);
        if (rc != MDB_MAP_RESIZED || tries >= STORAGE_MAX_RETRIES)
            return rc;
        adopt_map_size(st);
    }
}

void storage_txn_abort(tern_storage *st, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&st->map_lock);
}

void storage_read_end(tern_storage *st, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    pthread_rwlock_unlock(&st->map_lock);
    pthread_mutex_lock(&st->pool_lock);
    if (st->n_read_pool < STORAGE_READ_POOL) {
        st->read_pool[st->n_read_pool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&st->pool_lock);
    if (txn)
        mdb_txn_abort(txn);
}

/* mdb_txn_commit frees the transaction whether or not it succeeds. */
static int txn_commit(tern_storage *st, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&st->map_lock);
    return rc;
}

int storage_read_begin(tern_storage *st, MDB_txn **txn, const char *what)
{
    int rc = storage_txn_begin(st, MDB_RDONLY, txn, NULL);
    if (rc) {
        log_error(0, "storage: %s: %s", what, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

int storage_write(tern_storage *st, const char *what, storage_write_op op, void *arg)
{
    for (int tries = 0; tries < STORAGE_MAX_RETRIES; tries++) {
        MDB_txn *txn;
        size_t seen;
        int rc = storage_txn_begin(st, 0, &txn, &seen);
        if (rc) {
            log_error(0, "storage: %s: %s", what, mdb_strerror(rc));
            return -1;
        }
        rc = op(txn, arg);
        if (rc == 0)
            rc = txn_commit(st, txn);
        else
            storage_txn_abort(st, txn);
        if (rc == 0)
            return 0;
        if (rc != MDB_MAP_FULL) {
            log_error(0, "storage: %s: %s", what, mdb_strerror(rc));
            return out_of_room(rc) ? TERN_STORAGE_FULL : -1;
        }
        int grown = grow_map(st, seen);
        if (grown != 0)
            return grown;
    }
    log_error(0, "storage: %s: %s", what, "the map could not grow enough");
    return -1;
}

/* ---- named databases ---- */

struct open_dbi_arg {
    const char *name;
    MDB_dbi dbi;
};

static int open_dbi_op(MDB_txn *txn, void *arg)
{
    struct open_dbi_arg *a = arg;
    return mdb_dbi_open(txn, a->name, MDB_CREATE, &a->dbi);
}

/* The handle of database "kind:store" (or "meta" when store is NULL), created on first use.
 * LMDB rules: mdb_dbi_open needs a transaction of its own that no other mdb_dbi_open runs
 * beside, and the handle is usable by other transactions only once that one committed. So it
 * runs in a dedicated write transaction under dbi_lock, before the caller begins its own. */
int storage_get_dbi(tern_storage *st, const char *kind, const char *store, MDB_dbi *out)
{
    if (store && (!*store || strlen(store) > 200)) {
        log_error(0, "storage: invalid store name");
        return -1;
    }
    /* "kind:store", built without printf: this runs for every read. */
    char name[256];
    size_t kind_len = strlen(kind), store_len = store ? strlen(store) : 0;
    if (kind_len + 1 + store_len >= sizeof name)
        return -1;
    memcpy(name, kind, kind_len);
    if (store) {
        name[kind_len] = ':';
        memcpy(name + kind_len + 1, store, store_len);
        kind_len += 1 + store_len;
    }
    name[kind_len] = '\0';

    pthread_mutex_lock(&st->dbi_lock);
    for (size_t i = 0; i < st->n_dbis; i++) {
        if (strcmp(st->dbis[i].name, name) == 0) {
            *out = st->dbis[i].dbi;
            pthread_mutex_unlock(&st->dbi_lock);
            return 0;
        }
    }
    int ret = -1;
    if (st->n_dbis == STORAGE_MAX_DBS) {
        log_error(0, "storage: opening %s: %s", name, "too many stores");
    } else {
        struct open_dbi_arg a = { .name = name };
        if (storage_write(st, name, open_dbi_op, &a) == 0) {
            st->dbis[st->n_dbis].name = xstrdup(name);
            st->dbis[st->n_dbis].dbi = a.dbi;
            st->n_dbis++;
            *out = a.dbi;
            ret = 0;
        }
    }
    pthread_mutex_unlock(&st->dbi_lock);
    return ret;
}

/* ---- keys ---- */

int storage_key_make(tern_storage *st, key_buf *k, const char *owner, bool sep,
                     const void *suffix, size_t suffix_len)
{
    size_t olen = owner ? strlen(owner) : 0;
    size_t len = olen + (sep ? 1 + suffix_len : 0);
    if (olen == 0 || len > st->max_key) {
        log_error(0, "storage: %s", olen == 0 ? "empty owner" : "key too long");
        return -1;
    }
    memcpy(k->data, owner, olen);
    k->len = olen;
    if (sep) {
        k->data[k->len++] = '\0';
        if (suffix_len)
            memcpy(k->data + k->len, suffix, suffix_len);
        k->len += suffix_len;
    }
    k->prefix_len = olen + 1;
    return 0;
}

bool storage_key_has_prefix(const MDB_val *key, const key_buf *k)
{
    return key->mv_size >= k->prefix_len && memcmp(key->mv_data, k->data, k->prefix_len) == 0;
}

/* ---- environment ---- */

tern_storage *storage_open(const char *dir, size_t map_size, char *err, size_t err_len)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc) {
        snprintf(err, err_len, "%s", mdb_strerror(rc));
        return NULL;
    }
    if ((rc = mdb_env_set_maxdbs(env, STORAGE_MAX_DBS)) ||
        (rc = mdb_env_set_mapsize(env, map_size ? map_size : STORAGE_DEFAULT_MAP_SIZE)) ||
        (rc = mdb_env_open(env, dir, MDB_NOTLS, 0600))) {
        snprintf(err, err_len, "cannot open storage in %s: %s", dir, mdb_strerror(rc));
        mdb_env_close(env);
        return NULL;
    }
    /* ternd may have been killed with -9 while it held read slots: free them, or they would
     * pin old pages and make the file grow without bound. */
    int dead = 0;
    rc = mdb_reader_check(env, &dead);
    if (rc)
        log_warn(0, "storage: checking stale readers: %s", mdb_strerror(rc));
    else if (dead > 0)
        log_info(0, "storage: cleared %d stale reader slot(s)", dead);

    tern_storage *st = xcalloc(1, sizeof *st);
    st->env = env;
    st->dir = xstrdup(dir);
    int max_key = mdb_env_get_maxkeysize(env);
    st->max_key = max_key > 0 && (size_t)max_key < STORAGE_KEY_BUF ? (size_t)max_key
                                                                   : STORAGE_KEY_BUF - 1;
    MDB_envinfo info;
    st->map_size = mdb_env_info(env, &info) == 0 ? info.me_mapsize : map_size;
    pthread_rwlock_init(&st->map_lock, NULL);
    pthread_mutex_init(&st->dbi_lock, NULL);
    pthread_mutex_init(&st->pool_lock, NULL);
    return st;
}

void storage_set_max_size(tern_storage *st, size_t max)
{
    st->max_size = max;
    if (max && st->map_size > max)
        map_lock_exclusive_set(st, max, "capping the map"); /* LMDB keeps what is in use */
}

void storage_close(tern_storage *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_read_pool; i++)
        mdb_txn_abort(st->read_pool[i]);
    mdb_env_close(st->env);  /* also closes every dbi handle */
    for (size_t i = 0; i < st->n_dbis; i++)
        free(st->dbis[i].name);
    pthread_rwlock_destroy(&st->map_lock);
    pthread_mutex_destroy(&st->dbi_lock);
    pthread_mutex_destroy(&st->pool_lock);
    free(st->dir);
    free(st);
}

long long storage_file_size(tern_storage *st)
{
    char *path = xasprintf("%s/data.mdb", st->dir);
    struct stat sb;
    long long size = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    if (size < 0)
        log_error(0, "storage: stat %s: %s", path, strerror(errno));
    free(path);
    return size;
}

/* ---- shared read / write helpers ---- */

/* Reads one value by exact key: 1 and a malloc'd copy, 0 when absent, -1 on error. */
static int get_value(tern_storage *st, MDB_dbi dbi, const key_buf *k, void **value, size_t *len,
                     const char *what)
{
    MDB_txn *txn;
    if (storage_read_begin(st, &txn, what) < 0)
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
    storage_read_end(st, txn);
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
static int clear_prefix_op(MDB_txn *txn, void *arg)
{
    struct put_arg *a = arg;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, a->dbi, &cur);
    if (rc)
        return rc;
    for (;;) {
        MDB_val key = { a->k->prefix_len, (void *)a->k->data }, val;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && !storage_key_has_prefix(&key, a->k))) {
            rc = 0;
            break;
        }
        if (rc || (rc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

int storage_delete_key(tern_storage *st, MDB_dbi dbi, const key_buf *k, const char *what)
{
    struct put_arg a = { dbi, k, NULL, 0 };
    return storage_write(st, what, del_op, &a);
}

int storage_delete_prefix(tern_storage *st, MDB_dbi dbi, const key_buf *k, const char *what)
{
    struct put_arg a = { dbi, k, NULL, 0 };
    return storage_write(st, what, clear_prefix_op, &a);
}

/* ---- keyval ---- */

int storage_kv_get(tern_storage *st, const char *store, const char *owner, void **value,
                   size_t *len)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "kv", store, &dbi) < 0 ||
        storage_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    return get_value(st, dbi, &k, value, len, "kv get");
}

int storage_kv_put(tern_storage *st, const char *store, const char *owner, const void *value,
                   size_t len)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "kv", store, &dbi) < 0 ||
        storage_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    struct put_arg a = { dbi, &k, value, len };
    return storage_write(st, "kv put", put_op, &a);
}

int storage_kv_delete(tern_storage *st, const char *store, const char *owner)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "kv", store, &dbi) < 0 ||
        storage_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    return storage_delete_key(st, dbi, &k, "kv delete");
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

int storage_kv_update(tern_storage *st, const char *store, const char *owner,
                      storage_update (*fn)(void *ctx, const void *old, size_t old_len,
                                           void **out, size_t *out_len),
                      void *ctx)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "kv", store, &dbi) < 0 ||
        storage_key_make(st, &k, owner, false, NULL, 0) < 0)
        return -1;
    struct update_arg a = { dbi, &k, fn, ctx };
    return storage_write(st, "kv update", update_op, &a);
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
int storage_kv_each_owner(tern_storage *st, const char *store, const char *domain,
                          int (*fn)(void *ctx, const char *owner), void *ctx)
{
    MDB_dbi dbi;
    if (storage_get_dbi(st, "kv", store, &dbi) < 0)
        return -1;
    char *batch[STORAGE_BATCH_ITEMS];
    char *last = NULL;  /* the batch ended at this owner: resume after it */
    for (;;) {
        size_t n = 0;
        bool done = false;
        MDB_txn *txn;
        MDB_cursor *cur;
        if (storage_read_begin(st, &txn, "kv each") < 0) {
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
            while (rc == 0 && n < STORAGE_BATCH_ITEMS) {
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
        storage_read_end(st, txn);
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

static int map_key(tern_storage *st, key_buf *k, const char *owner, const char *key)
{
    if (!key) {
        log_error(0, "storage: map key missing");
        return -1;
    }
    return storage_key_make(st, k, owner, true, key, strlen(key));
}

int storage_map_get(tern_storage *st, const char *store, const char *owner, const char *key,
                    void **value, size_t *len)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "map", store, &dbi) < 0 || map_key(st, &k, owner, key) < 0)
        return -1;
    return get_value(st, dbi, &k, value, len, "map get");
}

int storage_map_put(tern_storage *st, const char *store, const char *owner, const char *key,
                    const void *value, size_t len)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "map", store, &dbi) < 0 || map_key(st, &k, owner, key) < 0)
        return -1;
    struct put_arg a = { dbi, &k, value, len };
    return storage_write(st, "map put", put_op, &a);
}

int storage_map_delete(tern_storage *st, const char *store, const char *owner, const char *key)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "map", store, &dbi) < 0 || map_key(st, &k, owner, key) < 0)
        return -1;
    return storage_delete_key(st, dbi, &k, "map delete");
}

int storage_map_clear(tern_storage *st, const char *store, const char *owner)
{
    MDB_dbi dbi;
    key_buf k;
    if (storage_get_dbi(st, "map", store, &dbi) < 0 ||
        storage_key_make(st, &k, owner, true, NULL, 0) < 0)
        return -1;
    return storage_delete_prefix(st, dbi, &k, "map clear");
}

struct map_item {
    char *key;
    void *value;
    size_t len;
};

int storage_map_each(tern_storage *st, const char *store, const char *owner,
                     int (*fn)(void *ctx, const char *key, const void *value, size_t len),
                     void *ctx)
{
    MDB_dbi dbi;
    key_buf k;  /* the owner prefix, then the full key to resume from */
    if (storage_get_dbi(st, "map", store, &dbi) < 0 ||
        storage_key_make(st, &k, owner, true, NULL, 0) < 0)
        return -1;
    struct map_item batch[STORAGE_BATCH_ITEMS];
    bool resume = false;
    for (;;) {
        size_t n = 0, bytes = 0;
        bool done = false;
        MDB_txn *txn;
        MDB_cursor *cur;
        if (storage_read_begin(st, &txn, "map each") < 0)
            return -1;
        int rc = mdb_cursor_open(txn, dbi, &cur);
        if (rc == 0) {
            MDB_val key = { k.len, k.data }, val;
            rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
            if (rc == 0 && resume && key.mv_size == k.len && memcmp(key.mv_data, k.data, k.len) == 0)
                rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            while (rc == 0 && storage_key_has_prefix(&key, &k) && n < STORAGE_BATCH_ITEMS &&
                   bytes < STORAGE_BATCH_BYTES) {
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
            if (rc == MDB_NOTFOUND || (rc == 0 && !storage_key_has_prefix(&key, &k))) {
                done = true;
                rc = 0;
            }
            mdb_cursor_close(cur);
        }
        storage_read_end(st, txn);
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

/* ---- everything an owner has ---- */

/* The names of every store in the environment ("kv:roster", "arc:offline", ...), malloc'd. */
static int list_stores(tern_storage *st, char ***names, size_t *n)
{
    MDB_txn *txn;
    if (storage_read_begin(st, &txn, "listing stores") < 0)
        return -1;
    MDB_dbi main_dbi;
    MDB_cursor *cur;
    int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc == 0)
        rc = mdb_cursor_open(txn, main_dbi, &cur);
    if (rc) {
        log_error(0, "storage: listing stores: %s", mdb_strerror(rc));
        storage_read_end(st, txn);
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
    storage_read_end(st, txn);
    return 0;
}

int storage_delete_owner(tern_storage *st, const char *owner)
{
    char **names;
    size_t n;
    if (list_stores(st, &names, &n) < 0)
        return -1;
    int ret = 0;
    key_buf exact, prefix; /* keyval keys are the owner; map and archive keys start owner '\0' */
    if (storage_key_make(st, &exact, owner, false, NULL, 0) < 0 ||
        storage_key_make(st, &prefix, owner, true, NULL, 0) < 0)
        ret = -1;
    for (size_t i = 0; i < n && ret == 0; i++) {
        char *colon = strchr(names[i], ':');
        if (!colon)
            continue; /* "meta": counters, not owners' data */
        *colon = '\0';
        const char *kind = names[i], *store = colon + 1;
        MDB_dbi dbi;
        if (storage_get_dbi(st, kind, store, &dbi) < 0) {
            ret = -1;
        } else if (strcmp(kind, "kv") == 0) {
            ret = storage_delete_key(st, dbi, &exact, "deleting an owner");
        } else {
            ret = storage_delete_prefix(st, dbi, &prefix, "deleting an owner");
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}
