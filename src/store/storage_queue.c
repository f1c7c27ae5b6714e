/* store/storage_queue.c — the _async calls of tern/storage.h: a queue the main loop fills, one
 * storage thread that empties it, and completions handed back to the main loop.
 *
 * Group commit. The thread takes everything queued at once; consecutive writes (at most
 * BATCH_MAX) go to the backend's `batch`, which commits them in one durable transaction, each
 * write still failing alone. While that commit's fsync runs, the main loop goes on queueing,
 * so the busier the server, the more writes share one fsync. A batch the backend could not
 * make room for (TERN_STORAGE_FULL) is run again one write at a time, so the writes that fit
 * are not refused with the one that did not.
 *
 * Order. Work runs in queue order: a query sees every write queued before it. Completions run
 * on the main loop in queue order too. A plain call about an owner waits (storage_queue_wait)
 * until that owner's queued writes in its store are committed: `pending` maps "store\nowner"
 * to the sequence number of the last write queued for it, and `finished` says how far the
 * thread got. The wait blocks the main loop, but only when a module mixes both kinds of call
 * for the same data, and only for one commit.
 *
 * Bounded. The bytes an op carries (values, payloads, keys) are counted from queueing until the
 * thread finished it; past [server] storage_queue_max, queueing waits for the thread to get
 * back under half of it. A disk that cannot keep up then slows the main loop to its pace (as
 * plain calls would) instead of letting a flood of messages grow the queue without bound.
 *
 * Threads. The queue and the finished lists are guarded by `lock`; `pending`, the sequence
 * numbers handed out and `queued` belong to the main loop alone. An op belongs to the main
 * loop until queued, to the thread until it is on the finished list, then to the main loop
 * again, which runs its completion and frees it. */
#include "store/storage_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/storage_env.h"
#include "tern/hashmap.h"
#include "tern/log.h"

/* Writes per transaction at most: bounds what one failed commit takes with it and how long
 * the thread holds LMDB's write lock (ternctl waits for it). */
#define BATCH_MAX 512
#define QUEUE_MAX_DEFAULT ((size_t)32 << 20)
/* What an op costs besides the bytes it carries (the struct, its strings' headers). */
#define OP_OVERHEAD 256

typedef enum op_kind {
    OP_KV_PUT,
    OP_KV_DELETE,
    OP_MAP_APPLY,
    OP_APPEND,
    OP_ARCHIVE_DELETE,
    OP_ARCHIVE_CLEAR,
    OP_QUERY,   /* kinds from here on are not writes */
    OP_BARRIER,
} op_kind;

typedef struct storage_op storage_op;
struct storage_op {
    storage_op *next;
    op_kind kind;
    uint64_t seq;
    char *store, *owner, *peer;
    char *pending_key;              /* "store\nowner" for a write */
    size_t bytes;                   /* what it counts against storage_queue_max */
    void *value;                    /* kv value or archive payload */
    size_t len;
    storage_map_change *changes;    /* copies: keys and values owned by the op */
    size_t n_changes;
    time_t when;
    size_t max_items;
    uint64_t id;                    /* archive delete */
    struct storage_archive_query q; /* q.peer points at `peer` */

    int rc;                         /* results, set on the storage thread */
    uint64_t id_out;
    storage_archive_item *items;
    size_t n_items, cap_items;

    storage_write_done write_done;  /* completions, run on the main loop */
    int (*item_fn)(void *ctx, const storage_archive_item *item);
    void (*query_done)(void *ctx, int rc);
    void (*barrier_done)(void *ctx);
    void *ctx;
};

struct storage_queue {
    pthread_t thread;
    pthread_t main_thread;
    pthread_mutex_t lock;
    pthread_cond_t work;            /* the thread waits for work */
    pthread_cond_t progress;        /* the main loop waits for `finished_seq` to move */
    storage_op *head, *tail;        /* queued, not yet taken */
    storage_op *done_head, *done_tail; /* finished, completions not yet run */
    uint64_t finished_seq;          /* every op up to this one is finished */
    size_t in_flight;               /* bytes of the ops queued and not yet finished */
    bool stopping;
    void (*wake)(void *arg);
    void *wake_arg;
    /* main loop only */
    uint64_t last_seq;
    size_t queued;                  /* queued and not yet completed */
    hashmap *pending;               /* "store\nowner" -> (uintptr_t)seq of its last write */
};

static bool is_write(const storage_op *op)
{
    return op->kind < OP_QUERY;
}

static void op_free(storage_op *op)
{
    free(op->store);
    free(op->owner);
    free(op->peer);
    free(op->pending_key);
    free(op->value);
    for (size_t i = 0; i < op->n_changes; i++) {
        free((void *)op->changes[i].key);
        free((void *)op->changes[i].value);
    }
    free(op->changes);
    for (size_t i = 0; i < op->n_items; i++) {
        free((void *)op->items[i].peer);
        free((void *)op->items[i].payload);
    }
    free(op->items);
    free(op);
}

static void *copy_bytes(const void *p, size_t len)
{
    void *out = xmalloc(len ? len : 1);
    if (len)
        memcpy(out, p, len);
    return out;
}

/* ---- running work (on the storage thread, or at once without it) ---- */

static int run_write(tern_storage *st, storage_op *op)
{
    const tern_storage_backend *b = st->backend;
    switch (op->kind) {
    case OP_KV_PUT:
        return b->kv_put(st->db, op->store, op->owner, op->value, op->len);
    case OP_KV_DELETE:
        return b->kv_delete(st->db, op->store, op->owner);
    case OP_MAP_APPLY:
        return b->map_apply(st->db, op->store, op->owner, op->changes, op->n_changes);
    case OP_APPEND:
        return b->archive_append(st->db, op->store, op->owner, op->when, op->peer, op->value,
                                 op->len, op->max_items, &op->id_out);
    case OP_ARCHIVE_DELETE:
        return b->archive_delete(st->db, op->store, op->owner, op->id);
    case OP_ARCHIVE_CLEAR:
        return b->archive_clear(st->db, op->store, op->owner);
    default:
        return -1;
    }
}

/* What the write counters charge a successful write (as storage.c does for plain calls). */
static size_t write_bytes(const storage_op *op)
{
    size_t owner = strlen(op->owner);
    switch (op->kind) {
    case OP_KV_PUT:
        return owner + op->len;
    case OP_MAP_APPLY:
        return storage_map_apply_bytes(op->owner, op->changes, op->n_changes);
    case OP_APPEND:
        return storage_append_bytes(op->owner, op->peer, op->len);
    case OP_ARCHIVE_DELETE:
        return owner + sizeof op->id;
    default:
        return owner;
    }
}

static int collect_item(void *ctx, const storage_archive_item *item)
{
    storage_op *op = ctx;
    if (op->n_items == op->cap_items) {
        op->cap_items = op->cap_items ? op->cap_items * 2 : 16;
        op->items = xrealloc(op->items, op->cap_items * sizeof *op->items);
    }
    storage_archive_item *copy = &op->items[op->n_items++];
    *copy = *item;
    copy->peer = item->peer ? xstrdup(item->peer) : NULL;
    copy->payload = copy_bytes(item->payload, item->payload_len);
    return 0;
}

static void run_read(tern_storage *st, storage_op *op)
{
    if (op->kind == OP_QUERY)
        op->rc = st->backend->archive_query(st->db, op->store, op->owner, &op->q, collect_item,
                                            op);
}

/* One write in its own transaction. */
static void run_alone(tern_storage *st, storage_op *op)
{
    op->rc = run_write(st, op);
    if (op->rc == 0) {
        storage_count_write(st, write_bytes(op));
        storage_count_commit(st);
    }
}

struct batch_run {
    tern_storage *st;
    storage_op *first, *end; /* end excluded */
};

static void run_batch(void *ctx)
{
    struct batch_run *r = ctx;
    for (storage_op *op = r->first; op != r->end; op = op->next)
        op->rc = run_write(r->st, op);
}

/* The writes first..end (excluded), n of them, in one transaction when there are several. */
static void commit_writes(tern_storage *st, storage_op *first, storage_op *end, size_t n)
{
    if (n == 1) {
        run_alone(st, first);
        return;
    }
    struct batch_run r = { st, first, end };
    int rc = st->backend->batch(st->db, run_batch, &r);
    if (rc == TERN_STORAGE_FULL) {
        for (storage_op *op = first; op != end; op = op->next)
            run_alone(st, op);
        return;
    }
    if (rc == 0)
        storage_count_commit(st);
    for (storage_op *op = first; op != end; op = op->next) {
        if (rc != 0 && op->rc == 0)
            op->rc = rc; /* the commit failed: nothing of the batch took effect */
        else if (op->rc == 0)
            storage_count_write(st, write_bytes(op));
    }
}

static void run_list(tern_storage *st, storage_op *list)
{
    for (storage_op *op = list; op;) {
        if (!is_write(op)) {
            run_read(st, op);
            op = op->next;
            continue;
        }
        storage_op *end = op;
        size_t n = 0;
        while (end && is_write(end) && n < BATCH_MAX) {
            end = end->next;
            n++;
        }
        commit_writes(st, op, end, n);
        op = end;
    }
}

/* ---- completions (main loop) ---- */

static void complete(storage_op *op)
{
    switch (op->kind) {
    case OP_QUERY: {
        bool stop = false;
        for (size_t i = 0; i < op->n_items && !stop && op->item_fn; i++)
            stop = op->item_fn(op->ctx, &op->items[i]) != 0;
        if (op->query_done)
            op->query_done(op->ctx, op->rc);
        break;
    }
    case OP_BARRIER:
        if (op->barrier_done)
            op->barrier_done(op->ctx);
        break;
    default:
        if (op->write_done)
            op->write_done(op->ctx, op->rc, op->kind == OP_APPEND && op->rc == 0 ? op->id_out : 0);
        break;
    }
}

static void finish(storage_queue *q, storage_op *op)
{
    if (op->pending_key && (uintptr_t)hashmap_get(q->pending, op->pending_key) == op->seq)
        hashmap_remove(q->pending, op->pending_key);
    q->queued--;
    complete(op);
    op_free(op);
}

void storage_run_completions(tern_storage *st)
{
    storage_queue *q = st->queue;
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    storage_op *list = q->done_head;
    q->done_head = q->done_tail = NULL;
    pthread_mutex_unlock(&q->lock);
    while (list) {
        storage_op *next = list->next;
        finish(q, list);
        list = next;
    }
}

/* ---- the storage thread ---- */

static void *queue_main(void *arg)
{
    tern_storage *st = arg;
    storage_queue *q = st->queue;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->work, &q->lock);
        if (!q->head)
            break;
        storage_op *list = q->head, *last = q->tail;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->lock);

        run_list(st, list);

        size_t bytes = 0;
        for (storage_op *op = list; op; op = op->next)
            bytes += op->bytes;
        pthread_mutex_lock(&q->lock);
        q->in_flight -= bytes;
        bool first_done = !q->done_head;
        if (q->done_tail)
            q->done_tail->next = list;
        else
            q->done_head = list;
        q->done_tail = last;
        q->finished_seq = last->seq;
        pthread_cond_broadcast(&q->progress);
        if (first_done && q->wake) {
            pthread_mutex_unlock(&q->lock);
            q->wake(q->wake_arg);
            pthread_mutex_lock(&q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int storage_start_thread(tern_storage *st, void (*wake)(void *arg), void *arg, char *err,
                         size_t err_len)
{
    storage_queue *q = xcalloc(1, sizeof *q);
    q->main_thread = pthread_self();
    q->wake = wake;
    q->wake_arg = arg;
    q->pending = hashmap_new();
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->progress, NULL);
    st->queue = q;
    /* Signals are the main loop's business: the thread starts with them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&q->thread, NULL, queue_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, err_len, "cannot start the storage thread: %s", strerror(rc));
        st->queue = NULL;
        hashmap_free(q->pending);
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->work);
        pthread_cond_destroy(&q->progress);
        free(q);
        return -1;
    }
    return 0;
}

/* Blocks until the thread finished every op up to `seq`. */
static void wait_finished(storage_queue *q, uint64_t seq)
{
    pthread_mutex_lock(&q->lock);
    while (q->finished_seq < seq)
        pthread_cond_wait(&q->progress, &q->lock);
    pthread_mutex_unlock(&q->lock);
}

/* Completions may queue more work (a delivery's deletes): a bounded number of rounds. */
#define DRAIN_ROUNDS 64

void storage_drain(tern_storage *st)
{
    storage_queue *q = st->queue;
    for (int round = 0; q && q->queued > 0 && round < DRAIN_ROUNDS; round++) {
        wait_finished(q, q->last_seq);
        storage_run_completions(st);
    }
    if (q && q->queued > 0)
        log_warn(0, "storage: %zu queued operations still pending after draining", q->queued);
}

void storage_queue_stop(tern_storage *st)
{
    storage_queue *q = st->queue;
    if (!q)
        return;
    storage_drain(st);
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    storage_run_completions(st); /* what the last drain round queued */
    st->queue = NULL;
    hashmap_free(q->pending);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->progress);
    free(q);
}

void storage_queue_wait(tern_storage *st, const char *store, const char *owner)
{
    storage_queue *q = st->queue;
    if (!q || q->queued == 0 || !pthread_equal(pthread_self(), q->main_thread))
        return;
    uint64_t seq = q->last_seq;
    if (owner) {
        char *key = xasprintf("%s\n%s", store, owner);
        seq = (uintptr_t)hashmap_get(q->pending, key);
        free(key);
        if (seq == 0)
            return;
    }
    wait_finished(q, seq);
}

size_t storage_queued(tern_storage *st)
{
    return st->queue ? st->queue->queued : 0;
}

void storage_set_queue_max(tern_storage *st, size_t bytes)
{
    st->queue_max = bytes;
}

/* ---- queueing (main loop) ---- */

static storage_op *op_new(op_kind kind, const char *store, const char *owner)
{
    storage_op *op = xcalloc(1, sizeof *op);
    op->kind = kind;
    op->store = xstrdup(store ? store : "");
    op->owner = xstrdup(owner ? owner : "");
    return op;
}

static void enqueue(tern_storage *st, storage_op *op)
{
    storage_queue *q = st->queue;
    if (!q) {
        /* No storage thread (ternctl): the work is done now. */
        if (is_write(op))
            run_alone(st, op);
        else
            run_read(st, op);
        complete(op);
        op_free(op);
        return;
    }
    op->seq = ++q->last_seq;
    q->queued++;
    if (is_write(op)) {
        op->pending_key = xasprintf("%s\n%s", op->store, op->owner);
        hashmap_put(q->pending, op->pending_key, (void *)(uintptr_t)op->seq);
    }
    op->bytes = OP_OVERHEAD + strlen(op->store) + strlen(op->owner) + op->len;
    for (size_t i = 0; i < op->n_changes; i++)
        op->bytes += strlen(op->changes[i].key) + op->changes[i].len;
    size_t max = st->queue_max ? st->queue_max : QUEUE_MAX_DEFAULT;
    pthread_mutex_lock(&q->lock);
    if (q->in_flight + op->bytes > max && q->in_flight > 0) {
        /* Over the bound: wait until the thread is back under half of it. */
        while (q->in_flight > max / 2)
            pthread_cond_wait(&q->progress, &q->lock);
    }
    q->in_flight += op->bytes;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->lock);
}

static void queue_write(tern_storage *st, storage_op *op, storage_write_done done, void *ctx)
{
    op->write_done = done;
    op->ctx = ctx;
    enqueue(st, op);
}

void storage_kv_put_async(tern_storage *st, const char *store, const char *owner,
                          const void *value, size_t len, storage_write_done done, void *ctx)
{
    storage_op *op = op_new(OP_KV_PUT, store, owner);
    op->value = copy_bytes(value, len);
    op->len = len;
    queue_write(st, op, done, ctx);
}

void storage_kv_delete_async(tern_storage *st, const char *store, const char *owner,
                             storage_write_done done, void *ctx)
{
    queue_write(st, op_new(OP_KV_DELETE, store, owner), done, ctx);
}

void storage_map_apply_async(tern_storage *st, const char *store, const char *owner,
                             const storage_map_change *changes, size_t n,
                             storage_write_done done, void *ctx)
{
    storage_op *op = op_new(OP_MAP_APPLY, store, owner);
    op->changes = xcalloc(n ? n : 1, sizeof *op->changes);
    op->n_changes = n;
    for (size_t i = 0; i < n; i++) {
        op->changes[i].key = xstrdup(changes[i].key);
        /* NULL stays NULL: it means "delete" */
        op->changes[i].value = changes[i].value ? copy_bytes(changes[i].value, changes[i].len)
                                                : NULL;
        op->changes[i].len = changes[i].len;
    }
    queue_write(st, op, done, ctx);
}

void storage_archive_append_async(tern_storage *st, const char *store, const char *owner,
                                  time_t when, const char *peer, const void *payload,
                                  size_t len, size_t max_items, storage_write_done done,
                                  void *ctx)
{
    storage_op *op = op_new(OP_APPEND, store, owner);
    op->when = when;
    op->peer = peer ? xstrdup(peer) : NULL;
    op->value = copy_bytes(payload, len);
    op->len = len;
    op->max_items = max_items;
    queue_write(st, op, done, ctx);
}

void storage_archive_delete_async(tern_storage *st, const char *store, const char *owner,
                                  uint64_t id, storage_write_done done, void *ctx)
{
    storage_op *op = op_new(OP_ARCHIVE_DELETE, store, owner);
    op->id = id;
    queue_write(st, op, done, ctx);
}

void storage_archive_clear_async(tern_storage *st, const char *store, const char *owner,
                                 storage_write_done done, void *ctx)
{
    queue_write(st, op_new(OP_ARCHIVE_CLEAR, store, owner), done, ctx);
}

void storage_archive_query_async(tern_storage *st, const char *store, const char *owner,
                                 const struct storage_archive_query *q,
                                 int (*item)(void *ctx, const storage_archive_item *item),
                                 void (*done)(void *ctx, int rc), void *ctx)
{
    storage_op *op = op_new(OP_QUERY, store, owner);
    if (q)
        op->q = *q;
    op->peer = q && q->peer ? xstrdup(q->peer) : NULL;
    op->q.peer = op->peer;
    op->item_fn = item;
    op->query_done = done;
    op->ctx = ctx;
    enqueue(st, op);
}

void storage_after_writes(tern_storage *st, void (*done)(void *ctx), void *ctx)
{
    storage_op *op = op_new(OP_BARRIER, NULL, NULL);
    op->barrier_done = done;
    op->ctx = ctx;
    enqueue(st, op);
}
