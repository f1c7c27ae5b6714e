/* storage_internal.h — what the two halves of the LMDB backend share: storage.c (environment,
 * transactions, named databases, keyval, map) and storage_archive.c (the archive store).
 * Core only and private to those two files: modules use tern/storage.h, the rest of the core
 * storage_env.h. struct tern_storage stays private to storage.c; everything here works on it
 * through these functions. */
#ifndef TERN_STORAGE_INTERNAL_H
#define TERN_STORAGE_INTERNAL_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>

#include "tern/storage.h"

/* Callbacks never run inside a transaction (see storage.c): items are copied out in batches of
 * at most this many items or (about) this many bytes per transaction. */
#define STORAGE_BATCH_ITEMS 64
#define STORAGE_BATCH_BYTES ((size_t)1 << 20)
/* LMDB's compile-time MDB_MAXKEYSIZE is 511 by default; keys are built in a buffer this big
 * and checked against the real limit from mdb_env_get_maxkeysize(). */
#define STORAGE_KEY_BUF 512

/* ---- transactions ---- */

/* Begins a transaction holding the map lock shared, retrying after MDB_MAP_RESIZED. Returns 0
 * or an MDB code (not logged). On success end it with storage_txn_abort (or a commit inside
 * storage_write), or a read-only one with storage_read_end. *seen, if not NULL, gets the map size the transaction runs with. */
int storage_txn_begin(tern_storage *st, unsigned flags, MDB_txn **txn, size_t *seen);
/* Aborts a transaction from storage_txn_begin and releases the map lock. */
void storage_txn_abort(tern_storage *st, MDB_txn *txn);
/* A read-only storage_txn_begin that logs failures as "storage: <what>: ..." and returns -1. */
int storage_read_begin(tern_storage *st, MDB_txn **txn, const char *what);
/* Ends a read-only transaction (storage_read_begin, or storage_txn_begin with MDB_RDONLY),
 * keeping it for reuse. */
void storage_read_end(tern_storage *st, MDB_txn *txn);

/* One write operation run inside a write transaction: returns 0 to commit or an MDB/errno code
 * to abort. It may run more than once (after the map grew), so it must not keep state
 * between runs other than what it recomputes. */
typedef int (*storage_write_op)(MDB_txn *txn, void *arg);
/* Runs op in a write transaction and commits it durably, growing the map and retrying on
 * MDB_MAP_FULL. Returns 0, or -1 (logged as "storage: <what>: ..."). */
int storage_write(tern_storage *st, const char *what, storage_write_op op, void *arg);

/* ---- named databases ---- */

/* The handle of database "kind:store" (or "kind" alone when store is NULL), created on first
 * use. Call it before beginning a transaction of your own. Returns 0, or -1 (logged). */
int storage_get_dbi(tern_storage *st, const char *kind, const char *store, MDB_dbi *out);

/* ---- keys ---- */

typedef struct key_buf {
    unsigned char data[STORAGE_KEY_BUF];
    size_t len;
    size_t prefix_len;  /* owner + '\0' */
} key_buf;

/* Builds owner [ '\0' suffix ]. Fails (logged) when the key is empty or exceeds LMDB's limit. */
int storage_key_make(tern_storage *st, key_buf *k, const char *owner, bool sep,
                     const void *suffix, size_t suffix_len);
/* Whether key starts with k's owner prefix (owner + '\0'). */
bool storage_key_has_prefix(const MDB_val *key, const key_buf *k);

/* ---- writes by key ---- */

/* Deletes the exact key k in one write transaction; an absent key is not an error. */
int storage_delete_key(tern_storage *st, MDB_dbi dbi, const key_buf *k, const char *what);
/* Deletes every key that starts with k's owner prefix in one write transaction. */
int storage_delete_prefix(tern_storage *st, MDB_dbi dbi, const key_buf *k, const char *what);

#endif
