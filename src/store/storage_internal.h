/* store/storage_internal.h — what store/storage.c (the plain calls, dispatched to a backend),
 * store/storage_queue.c (the _async calls and the storage thread) and store/storage_stats.c
 * (the write counters) share. Private to src/store/. */
#ifndef TERN_STORE_STORAGE_INTERNAL_H
#define TERN_STORE_STORAGE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

#include "store/backend.h"

typedef struct storage_queue storage_queue;

struct tern_storage {
    const tern_storage_backend *backend;
    void *db;                         /* the backend's handle */
    atomic_ullong writes;             /* committed write calls */
    atomic_ullong bytes;              /* owner + key + value bytes of those writes */
    atomic_ullong commits;            /* durable transactions */
    storage_queue *queue;             /* the storage thread, once started; else NULL */
    size_t queue_max;                 /* storage_set_queue_max; 0: the default */
};

/* storage_stats.c: a committed write of `bytes` bytes, and a durable transaction (a batch of
 * writes is one). */
void storage_count_write(tern_storage *st, size_t bytes);
void storage_count_commit(tern_storage *st);

/* storage_stats.c: the bytes the counters charge to each kind of write. */
size_t storage_map_apply_bytes(const char *owner, const storage_map_change *changes, size_t n);
size_t storage_append_bytes(const char *owner, const char *peer, size_t len);

/* storage_queue.c: before a plain call, wait for the queued writes it must see (or must not
 * overtake): the owner's in a store, or (owner NULL) everything queued. A no-op off the main
 * loop and without the storage thread. */
void storage_queue_wait(tern_storage *st, const char *store, const char *owner);
/* Stops the thread after draining; storage_close calls it. */
void storage_queue_stop(tern_storage *st);

#endif
