/* store/storage_env.h — opening and closing the storage environment (core only; modules use
 * tern/storage.h). Implemented by store/storage.c through a backend's table (store/backend.h):
 * today one LMDB environment under data_dir with one named database per store. Safe to open
 * from ternd and ternctl at the same time (LMDB's own locking). */
#ifndef TERN_STORAGE_ENV_H
#define TERN_STORAGE_ENV_H

#include <stddef.h>

#include "tern/storage.h"

/* Opens (creating the folder if needed) the environment in `dir`. On failure returns NULL and
 * writes a reason into err. map_size 0 means the default (1 GiB, grown on demand). */
tern_storage *storage_open(const char *dir, size_t map_size, char *err, size_t err_len);
/* Drains and stops the storage thread, if started, then closes. */
void storage_close(tern_storage *st);
/* Caps the size of the data file at `max` bytes ([server] max_storage_size): past it writes
 * fail with TERN_STORAGE_FULL, as they do when the disk is full. 0: no cap. Call before the
 * first transaction. */
void storage_set_max_size(tern_storage *st, size_t max);
/* Deletes everything stored under `owner` (a bare JID) in every store of every kind: what an
 * account deletion must remove, whichever modules wrote it. Each store is its own transaction;
 * deleting again after a crash finishes the job. */
int storage_delete_owner(tern_storage *st, const char *owner);
/* Size in bytes of the data file, for `ternctl status`. */
long long storage_file_size(tern_storage *st);
/* Writes committed since storage_open, and the bytes they carried: the owner, map key and value
 * of every record written (a delete counts its key). One call is one write, however many
 * changes it holds (storage_map_apply); `commits` counts durable transactions, one for each
 * plain write and one for each group commit of queued writes. Any thread may read them at any
 * time; any pointer may be NULL. */
void storage_get_write_stats(tern_storage *st, unsigned long long *writes,
                             unsigned long long *bytes, unsigned long long *commits);

/* ---- the storage thread of the _async calls (tern/storage.h) ----
 * ternd starts it once its main loop exists. `wake` is called from the storage thread when
 * completions are ready, once until the next storage_run_completions: it must get the main
 * loop to call storage_run_completions soon (ternd posts to an inbox). Without the thread
 * (ternctl) an _async call does its work at once and calls done before it returns. */
int storage_start_thread(tern_storage *st, void (*wake)(void *arg), void *arg, char *err,
                         size_t err_len);
/* The bytes of queued work (values, payloads, keys) past which an _async call waits for the
 * storage thread to catch up before it returns ([server] storage_queue_max): when the disk
 * cannot keep up, the main loop slows to its pace instead of queueing without bound. Any
 * time, before or after the thread starts; 0 keeps the default (32 MiB). */
void storage_set_queue_max(tern_storage *st, size_t bytes);
/* On the main loop: runs the completions that are ready, in queue order. */
void storage_run_completions(tern_storage *st);
/* On the main loop: waits until everything queued is done and its completions ran, and what
 * those queued in turn (before a module is unloaded, at shutdown). */
void storage_drain(tern_storage *st);
/* Work queued and not yet completed, for /metrics. */
size_t storage_queued(tern_storage *st);

/* Core only (accounts): read-modify-write of one keyval value in a single write transaction, so
 * a check-then-put (create if absent) or two concurrent updates cannot race. `fn` sees the
 * current value (NULL, 0 when absent) and returns STORAGE_KEEP (write nothing), STORAGE_PUT
 * with *out and *out_len set to a malloc'd new value (the storage layer frees it) or
 * STORAGE_DELETE. fn runs inside the write transaction: keep it short, never call the storage
 * API from it, and let it recompute its ctx results each time (it runs again when the map had
 * to grow). Returns 0, or -1 on error. */
typedef enum storage_update { STORAGE_KEEP, STORAGE_PUT, STORAGE_DELETE } storage_update;
int storage_kv_update(tern_storage *st, const char *store, const char *owner,
                      storage_update (*fn)(void *ctx, const void *old, size_t old_len,
                                           void **out, size_t *out_len),
                      void *ctx);

#endif
