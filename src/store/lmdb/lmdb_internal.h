/* store/lmdb/lmdb_internal.h — what the files of the LMDB backend share: lmdb_env.c
 * (environment, transactions, map growth, named databases, keys), lmdb_kv.c (keyval and map),
 * lmdb_archive.c (archive) and lmdb_backend.c (delete_owner and the operations table).
 * Private to src/store/lmdb/: the rest of the server goes through store/storage.c. struct
 * lmdb_db stays private to lmdb_env.c; everything here works on it through these functions.
 * Names start with lmdb_ (liblmdb's own are mdb_), never storage_, which is the public API. */
#ifndef TERN_STORE_LMDB_INTERNAL_H
#define TERN_STORE_LMDB_INTERNAL_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/backend.h"

typedef struct lmdb_db lmdb_db;

/* Callbacks never run inside a transaction (see lmdb_env.c): items are copied out in batches
 * of at most this many items or (about) this many bytes per transaction. */
#define LMDB_BATCH_ITEMS 64
#define LMDB_BATCH_BYTES ((size_t)1 << 20)
/* LMDB's compile-time MDB_MAXKEYSIZE is 511 by default; keys are built in a buffer this big
 * and checked against the real limit from mdb_env_get_maxkeysize(). */
#define LMDB_KEY_BUF 512

/* ---- transactions (lmdb_env.c) ---- */

/* Begins a transaction holding the map lock shared, retrying after MDB_MAP_RESIZED. Returns 0
 * or an MDB code (not logged). On success end it with lmdb_txn_abort (or a commit inside
 * lmdb_write), or a read-only one with lmdb_read_end. *seen, if not NULL, gets the map size
 * the transaction runs with. */
int lmdb_txn_begin(lmdb_db *db, unsigned flags, MDB_txn **txn, size_t *seen);
/* Aborts a transaction from lmdb_txn_begin and releases the map lock. */
void lmdb_txn_abort(lmdb_db *db, MDB_txn *txn);
/* A read-only lmdb_txn_begin that logs failures as "storage: <what>: ..." and returns -1. */
int lmdb_read_begin(lmdb_db *db, MDB_txn **txn, const char *what);
/* Ends a read-only transaction (lmdb_read_begin, or lmdb_txn_begin with MDB_RDONLY), keeping
 * it for reuse. */
void lmdb_read_end(lmdb_db *db, MDB_txn *txn);

/* One write operation run inside a write transaction: returns 0 to commit or an MDB/errno code
 * (or TERN_STORAGE_LIMIT, passed on as it is) to abort. It may run more than once (after the map grew), so it must not keep state
 * between runs other than what it recomputes. */
typedef int (*lmdb_write_op)(MDB_txn *txn, void *arg);
/* Runs op in a write transaction and commits it durably, growing the map and retrying on
 * MDB_MAP_FULL. Returns 0, TERN_STORAGE_FULL, or -1 (logged as "storage: <what>: ..."). Inside
 * lmdb_batch on this thread, op runs in a nested transaction of the batch instead, committed
 * with it. */
int lmdb_write(lmdb_db *db, const char *what, lmdb_write_op op, void *arg);

/* ---- named databases (lmdb_env.c) ---- */

/* The handle of database "kind:store" (or "kind" alone when store is NULL), created on first
 * use. Call it before beginning a transaction of your own. Returns 0, or -1 (logged). */
int lmdb_get_dbi(lmdb_db *db, const char *kind, const char *store, MDB_dbi *out);

/* ---- keys (lmdb_env.c) ---- */

typedef struct key_buf {
    unsigned char data[LMDB_KEY_BUF];
    size_t len;
    size_t prefix_len;  /* owner + '\0' */
} key_buf;

/* The longest key LMDB takes in this environment. */
size_t lmdb_max_key(const lmdb_db *db);
/* Builds owner [ '\0' suffix ]. Fails (logged) when the key is empty or exceeds LMDB's limit. */
int lmdb_key_make(lmdb_db *db, key_buf *k, const char *owner, bool sep, const void *suffix,
                  size_t suffix_len);
/* Whether key starts with k's owner prefix (owner + '\0'). */
bool lmdb_key_has_prefix(const MDB_val *key, const key_buf *k);

/* ---- writes by key (lmdb_kv.c) ---- */

/* Deletes the exact key k in one write transaction; an absent key is not an error. */
int lmdb_delete_key(lmdb_db *db, MDB_dbi dbi, const key_buf *k, const char *what);
/* Deletes every key that starts with k's owner prefix in one write transaction. */
int lmdb_delete_prefix(lmdb_db *db, MDB_dbi dbi, const key_buf *k, const char *what);
/* The same inside the caller's write transaction; returns an MDB code. */
int lmdb_delete_prefix_in(MDB_txn *txn, MDB_dbi dbi, const key_buf *k);

/* ---- the operations of store/backend.h, `db` being an lmdb_db ---- */

/* lmdb_env.c */
void *lmdb_open(const char *dir, size_t map_size, char *err, size_t err_len);
void lmdb_close(void *db);
void lmdb_set_max_size(void *db, size_t max);
long long lmdb_size(void *db);
int lmdb_batch(void *db, void (*run)(void *ctx), void *ctx);

/* lmdb_kv.c */
int lmdb_kv_get(void *db, const char *store, const char *owner, void **value, size_t *len);
int lmdb_kv_put(void *db, const char *store, const char *owner, const void *value, size_t len);
int lmdb_kv_delete(void *db, const char *store, const char *owner);
int lmdb_kv_update(void *db, const char *store, const char *owner,
                   storage_update (*fn)(void *ctx, const void *old, size_t old_len, void **out,
                                        size_t *out_len),
                   void *ctx);
int lmdb_kv_each_owner(void *db, const char *store, const char *domain,
                       int (*fn)(void *ctx, const char *owner), void *ctx);
int lmdb_map_get(void *db, const char *store, const char *owner, const char *key, void **value,
                 size_t *len);
int lmdb_map_apply(void *db, const char *store, const char *owner,
                   const storage_map_change *changes, size_t n);
int lmdb_map_each(void *db, const char *store, const char *owner,
                  int (*fn)(void *ctx, const char *key, const void *value, size_t len),
                  void *ctx);
int lmdb_map_clear(void *db, const char *store, const char *owner);

/* lmdb_archive.c */
int lmdb_archive_append(void *db, const char *store, const char *owner, time_t when,
                        const char *peer, const void *payload, size_t len, size_t max_items,
                        uint64_t *id_out);
int lmdb_archive_query(void *db, const char *store, const char *owner,
                       const struct storage_archive_query *q,
                       int (*fn)(void *ctx, const storage_archive_item *item), void *ctx);
int lmdb_archive_delete(void *db, const char *store, const char *owner, uint64_t id);
int lmdb_archive_clear(void *db, const char *store, const char *owner);
int lmdb_archive_count(void *db, const char *store, const char *owner, size_t *count);

/* lmdb_backend.c */
int lmdb_delete_owner(void *db, const char *owner);

#endif
