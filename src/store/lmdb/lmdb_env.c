/* store/lmdb/lmdb_env.c — the LMDB backend's environment: opening and closing it,
 * transactions and map growth, named databases, keys. The operations on top are in lmdb_kv.c
 * (keyval, map), lmdb_archive.c (archive) and lmdb_backend.c (delete_owner, the table of
 * store/backend.h); what the files share is declared in lmdb_internal.h.
 *
 * One LMDB environment per data_dir, one named database per (kind, store) — "kv:accounts",
 * "map:private", "arc:offline" — so kinds never mix, plus "meta" for archive id counters.
 * Key layouts (owners are bare JIDs or hosts and never contain a NUL, so "owner\0" is a prefix
 * no other owner shares, even when one owner is a prefix of another: "al@x" vs "al@xy"):
 *   keyval   owner
 *   map      owner '\0' key
 *   archive  owner '\0' id, and "meta" counters (layouts in lmdb_archive.c)
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
 * commit (no MDB_NOSYNC / MDB_NOMETASYNC), so a 0 return survives kill -9 and power loss.
 *
 * Group commit (lmdb_batch): the writes of a batch run on one thread inside one parent write
 * transaction, each in a nested transaction of its own, so a write that fails is undone alone;
 * the parent commits once (one fsync for all). A batch that runs out of map, or meets a store
 * whose database is not open yet (mdb_dbi_open cannot run inside it) or was opened after the
 * batch began, is aborted whole, the map grown or the database opened outside it, and run
 * again. Inside a batch, which holds LMDB's writer lock, nothing waits for dbi_lock: another
 * thread may hold it while it waits for the writer lock to open a database. */
#include "store/lmdb/lmdb_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "tern/log.h"

#define LMDB_DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define LMDB_MAX_DBS 128
/* Bounds the loops that retry after MDB_MAP_FULL / MDB_MAP_RESIZED: doubling from 64 KiB
 * reaches any realistic size in far fewer steps. */
#define LMDB_MAX_RETRIES 48
/* Read transactions kept for reuse: ternd reads on every stanza (a block list, a roster), and
 * beginning a fresh one allocates and clears LMDB's per-transaction tables each time. */
#define LMDB_READ_POOL 8

struct dbi_entry {
    char *name;
    MDB_dbi dbi;
};

/* The batch this thread is running (lmdb_batch), or NULL: lmdb_write and lmdb_get_dbi work
 * inside it instead of on their own. */
struct lmdb_batch {
    MDB_txn *txn;          /* the parent write transaction */
    size_t seen;           /* the map size it runs with */
    bool map_full;         /* a write ran out of map: grow, then run again */
    bool redo;             /* run again (map_full, or need_kind names a store to open) */
    const char *need_kind; /* a database to open before running again */
    char need_store[256];
    bool need_has_store;
    bool wait_dbi_lock;    /* dbi_lock was busy: wait for it outside the batch, then again */
    size_t dbis_at_begin;  /* handles opened before the transaction began: usable in it */
};
static _Thread_local struct lmdb_batch *thread_batch;

struct lmdb_db {
    MDB_env *env;
    char *dir;
    size_t max_key;
    size_t map_size;            /* current map size; changed only under map_lock exclusive */
    size_t max_size;            /* the map never grows past it; 0: no cap */
    pthread_rwlock_t map_lock;  /* shared: a transaction is open; exclusive: resizing */
    pthread_mutex_t dbi_lock;   /* guards dbis[] and serialises mdb_dbi_open */
    struct dbi_entry dbis[LMDB_MAX_DBS];
    size_t n_dbis;
    pthread_mutex_t pool_lock;  /* guards read_pool */
    MDB_txn *read_pool[LMDB_READ_POOL]; /* reset read transactions (mdb_txn_reset) */
    size_t n_read_pool;
};

/* ---- transactions and map size ---- */

static void map_lock_exclusive_set(lmdb_db *st, size_t size, const char *why)
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
static void adopt_map_size(lmdb_db *st)
{
    map_lock_exclusive_set(st, 0, "adopting the map size");
}

/* MDB_MAP_FULL: double the map (up to max_size), unless another thread already grew it past
 * `seen`. 0, TERN_STORAGE_FULL at the cap, or -1. */
static int grow_map(lmdb_db *st, size_t seen)
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
static MDB_txn *renew_pooled(lmdb_db *st)
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
 * lmdb_txn_abort or txn_commit (lmdb_read_end for MDB_RDONLY), which release the lock.
 * *seen gets the map size the transaction runs with. */
int lmdb_txn_begin(lmdb_db *st, unsigned flags, MDB_txn **txn, size_t *seen)
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
        if (rc != MDB_MAP_RESIZED || tries >= LMDB_MAX_RETRIES)
            return rc;
        adopt_map_size(st);
    }
}

void lmdb_txn_abort(lmdb_db *st, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&st->map_lock);
}

void lmdb_read_end(lmdb_db *st, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    pthread_rwlock_unlock(&st->map_lock);
    pthread_mutex_lock(&st->pool_lock);
    if (st->n_read_pool < LMDB_READ_POOL) {
        st->read_pool[st->n_read_pool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&st->pool_lock);
    if (txn)
        mdb_txn_abort(txn);
}

/* mdb_txn_commit frees the transaction whether or not it succeeds. */
static int txn_commit(lmdb_db *st, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&st->map_lock);
    return rc;
}

int lmdb_read_begin(lmdb_db *st, MDB_txn **txn, const char *what)
{
    int rc = lmdb_txn_begin(st, MDB_RDONLY, txn, NULL);
    if (rc) {
        log_error(0, "storage: %s: %s", what, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/* A write inside this thread's batch: a nested transaction of the batch's, so a failure
 * undoes this write alone. Once the batch is to run again, the rest of this run is moot. */
static int batch_write(lmdb_db *st, struct lmdb_batch *b, const char *what, lmdb_write_op op,
                       void *arg)
{
    if (b->redo)
        return -1;
    MDB_txn *child;
    int rc = mdb_txn_begin(st->env, b->txn, 0, &child);
    if (rc == 0) {
        rc = op(child, arg);
        if (rc == 0)
            rc = mdb_txn_commit(child);
        else
            mdb_txn_abort(child);
    }
    if (rc == 0 || rc == TERN_STORAGE_LIMIT)
        return rc;
    if (rc == MDB_MAP_FULL) {
        b->map_full = b->redo = true;
        return -1;
    }
    log_error(0, "storage: %s: %s", what, mdb_strerror(rc));
    return out_of_room(rc) ? TERN_STORAGE_FULL : -1;
}

int lmdb_write(lmdb_db *st, const char *what, lmdb_write_op op, void *arg)
{
    if (thread_batch)
        return batch_write(st, thread_batch, what, op, arg);
    for (int tries = 0; tries < LMDB_MAX_RETRIES; tries++) {
        MDB_txn *txn;
        size_t seen;
        int rc = lmdb_txn_begin(st, 0, &txn, &seen);
        if (rc) {
            log_error(0, "storage: %s: %s", what, mdb_strerror(rc));
            return -1;
        }
        rc = op(txn, arg);
        if (rc == 0)
            rc = txn_commit(st, txn);
        else
            lmdb_txn_abort(st, txn);
        if (rc == 0 || rc == TERN_STORAGE_LIMIT)
            return rc;
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

/* ---- group commit ---- */

int lmdb_batch(void *db, void (*run)(void *ctx), void *ctx)
{
    lmdb_db *st = db;
    for (int tries = 0; tries < LMDB_MAX_RETRIES; tries++) {
        struct lmdb_batch b = { 0 };
        pthread_mutex_lock(&st->dbi_lock);
        b.dbis_at_begin = st->n_dbis; /* read before the transaction begins: never too many */
        pthread_mutex_unlock(&st->dbi_lock);
        int rc = lmdb_txn_begin(st, 0, &b.txn, &b.seen);
        if (rc) {
            log_error(0, "storage: %s: %s", "batch", mdb_strerror(rc));
            return -1;
        }
        thread_batch = &b;
        run(ctx);
        thread_batch = NULL;
        if (b.redo) {
            lmdb_txn_abort(st, b.txn);
        } else {
            rc = txn_commit(st, b.txn);
            if (rc == 0)
                return 0;
            if (rc != MDB_MAP_FULL) {
                log_error(0, "storage: %s: %s", "batch commit", mdb_strerror(rc));
                return out_of_room(rc) ? TERN_STORAGE_FULL : -1;
            }
            b.map_full = true;
        }
        if (b.wait_dbi_lock) { /* whoever holds it opens a database: let it finish */
            pthread_mutex_lock(&st->dbi_lock);
            pthread_mutex_unlock(&st->dbi_lock);
        }
        MDB_dbi dbi;
        if (b.need_kind &&
            lmdb_get_dbi(st, b.need_kind, b.need_has_store ? b.need_store : NULL, &dbi) < 0)
            return -1;
        if (b.map_full) {
            int grown = grow_map(st, b.seen);
            if (grown != 0)
                return grown;
        }
    }
    log_error(0, "storage: %s: %s", "batch", "the map could not grow enough");
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

/* lmdb_get_dbi inside this thread's batch, which holds LMDB's writer lock: it must never wait
 * for dbi_lock, whose holder may be opening a database and so waiting for that very lock. A
 * busy lock, a database not open yet, or one opened after the batch began (its transaction
 * cannot use the handle) makes the batch run again, outside any lock. */
static int batch_get_dbi(lmdb_db *st, struct lmdb_batch *b, const char *name, const char *kind,
                         const char *store, MDB_dbi *out)
{
    if (b->redo)
        return -1;
    if (pthread_mutex_trylock(&st->dbi_lock) != 0) {
        b->redo = b->wait_dbi_lock = true;
        return -1;
    }
    for (size_t i = 0; i < st->n_dbis; i++) {
        if (strcmp(st->dbis[i].name, name) == 0) {
            bool usable = i < b->dbis_at_begin;
            *out = st->dbis[i].dbi;
            pthread_mutex_unlock(&st->dbi_lock);
            if (!usable)
                b->redo = true;
            return usable ? 0 : -1;
        }
    }
    pthread_mutex_unlock(&st->dbi_lock);
    b->redo = true;
    b->need_kind = kind;
    b->need_has_store = store != NULL;
    snprintf(b->need_store, sizeof b->need_store, "%s", store ? store : "");
    return -1;
}

/* The handle of database "kind:store" (or "meta" when store is NULL), created on first use.
 * LMDB rules: mdb_dbi_open needs a transaction of its own that no other mdb_dbi_open runs
 * beside, and the handle is usable by other transactions only once that one committed. So it
 * runs in a dedicated write transaction under dbi_lock, before the caller begins its own. */
int lmdb_get_dbi(lmdb_db *st, const char *kind, const char *store, MDB_dbi *out)
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

    struct lmdb_batch *b = thread_batch;
    if (b)
        return batch_get_dbi(st, b, name, kind, store, out);
    pthread_mutex_lock(&st->dbi_lock);
    for (size_t i = 0; i < st->n_dbis; i++) {
        if (strcmp(st->dbis[i].name, name) == 0) {
            *out = st->dbis[i].dbi;
            pthread_mutex_unlock(&st->dbi_lock);
            return 0;
        }
    }
    int ret = -1;
    if (st->n_dbis == LMDB_MAX_DBS) {
        log_error(0, "storage: opening %s: %s", name, "too many stores");
    } else {
        struct open_dbi_arg a = { .name = name };
        if (lmdb_write(st, name, open_dbi_op, &a) == 0) {
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

int lmdb_key_make(lmdb_db *st, key_buf *k, const char *owner, bool sep,
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

size_t lmdb_max_key(const lmdb_db *st)
{
    return st->max_key;
}

bool lmdb_key_has_prefix(const MDB_val *key, const key_buf *k)
{
    return key->mv_size >= k->prefix_len && memcmp(key->mv_data, k->data, k->prefix_len) == 0;
}

/* ---- environment ---- */

void *lmdb_open(const char *dir, size_t map_size, char *err, size_t err_len)
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
    if ((rc = mdb_env_set_maxdbs(env, LMDB_MAX_DBS)) ||
        (rc = mdb_env_set_mapsize(env, map_size ? map_size : LMDB_DEFAULT_MAP_SIZE)) ||
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

    lmdb_db *st = xcalloc(1, sizeof *st);
    st->env = env;
    st->dir = xstrdup(dir);
    int max_key = mdb_env_get_maxkeysize(env);
    st->max_key = max_key > 0 && (size_t)max_key < LMDB_KEY_BUF ? (size_t)max_key
                                                                : LMDB_KEY_BUF - 1;
    MDB_envinfo info;
    st->map_size = mdb_env_info(env, &info) == 0 ? info.me_mapsize : map_size;
    pthread_rwlock_init(&st->map_lock, NULL);
    pthread_mutex_init(&st->dbi_lock, NULL);
    pthread_mutex_init(&st->pool_lock, NULL);
    return st;
}

void lmdb_set_max_size(void *db, size_t max)
{
    lmdb_db *st = db;
    st->max_size = max;
    if (max && st->map_size > max)
        map_lock_exclusive_set(st, max, "capping the map"); /* LMDB keeps what is in use */
}

void lmdb_close(void *db)
{
    lmdb_db *st = db;
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

long long lmdb_size(void *db)
{
    lmdb_db *st = db;
    char *path = xasprintf("%s/data.mdb", st->dir);
    struct stat sb;
    long long size = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    if (size < 0)
        log_error(0, "storage: stat %s: %s", path, strerror(errno));
    free(path);
    return size;
}

