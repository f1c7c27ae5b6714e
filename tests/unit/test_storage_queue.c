/* test_storage_queue.c — the _async calls of tern/storage.h on the real LMDB backend with the
 * storage thread running: writes queued together share one commit (group commit), each still
 * failing alone; the archive quota holds inside a batch; a plain call sees the writes queued
 * before it; queries and barriers come after the writes queued before them; completions run
 * in queue order; a batch that must grow the map or open a store runs again; a full map
 * refuses only the writes that do not fit; without the thread the calls run at once. */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/storage_env.h"

static char root[64];
static char dir[96];
static tern_storage *st;
static int wakes;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(const char *path)
{
    nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The main loop's part is played by the test: storage_drain waits and runs completions. */
static void wake(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&wakes, 1, __ATOMIC_RELAXED);
}

static void open_storage(size_t map_size, bool thread)
{
    char err[256] = "";
    st = storage_open(dir, map_size, err, sizeof err);
    ck_assert_msg(st != NULL, "storage_open: %s", err);
    if (thread)
        ck_assert_int_eq(storage_start_thread(st, wake, NULL, err, sizeof err), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    wakes = 0;
    open_storage(0, true);
}

static void teardown(void)
{
    storage_close(st);
    st = NULL;
    remove_dir(dir);
}

static unsigned long long commits(void)
{
    unsigned long long n;
    storage_get_write_stats(st, NULL, NULL, &n);
    return n;
}

static unsigned long long writes(void)
{
    unsigned long long n;
    storage_get_write_stats(st, &n, NULL, NULL);
    return n;
}

/* ---- recording completions ---- */

#define MAX_DONE 1024

typedef struct record {
    int order[MAX_DONE]; /* the tag of each completion, in the order they ran */
    int rc[MAX_DONE];
    uint64_t id[MAX_DONE];
    size_t n;
} record;

static record rec;

typedef struct tag {
    record *r;
    int value;
} tag;

static tag tags[MAX_DONE];

static tag *tag_of(int value)
{
    tags[value] = (tag){ &rec, value };
    return &tags[value];
}

static void write_done(void *ctx, int rc, uint64_t id)
{
    tag *t = ctx;
    record *r = t->r;
    r->order[r->n] = t->value;
    r->rc[r->n] = rc;
    r->id[r->n] = id;
    r->n++;
}

static void barrier_done(void *ctx)
{
    write_done(ctx, 0, 0);
}

/* ---- holding LMDB's write lock from another thread ---- */

/* A plain write on another thread whose update function waits until released: while it does,
 * the storage thread cannot commit, so everything queued meanwhile piles up into one batch. */
typedef struct blocker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool inside, release;
} blocker;

static storage_update block_update(void *ctx, const void *old, size_t old_len, void **out,
                                   size_t *out_len)
{
    (void)old, (void)old_len, (void)out, (void)out_len;
    blocker *b = ctx;
    pthread_mutex_lock(&b->lock);
    b->inside = true;
    pthread_cond_broadcast(&b->cond);
    while (!b->release)
        pthread_cond_wait(&b->cond, &b->lock);
    pthread_mutex_unlock(&b->lock);
    return STORAGE_KEEP;
}

static void *block_main(void *arg)
{
    storage_kv_update(st, "lock", "holder@h", block_update, arg);
    return NULL;
}

static void block_start(blocker *b)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    ck_assert_int_eq(pthread_create(&b->thread, NULL, block_main, b), 0);
    pthread_mutex_lock(&b->lock);
    while (!b->inside)
        pthread_cond_wait(&b->cond, &b->lock);
    pthread_mutex_unlock(&b->lock);
}

static void block_end(blocker *b)
{
    pthread_mutex_lock(&b->lock);
    b->release = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
}

/* ---- tests ---- */

/* 200 appends queued while a commit is held up: at most two transactions (the first write
 * may have been taken alone before the rest were queued), 200 writes, ids 1..200 in queue
 * order, completions in queue order, all durable after a reopen. */
START_TEST(test_queued_writes_share_one_commit)
{
    rec.n = 0;
    blocker b;
    block_start(&b);
    unsigned long long c0 = commits(), w0 = writes();
    for (int i = 0; i < 200; i++) {
        char body[32];
        snprintf(body, sizeof body, "message %d", i);
        storage_archive_append_async(st, "offline", "bob@h", 1000 + i, "alice@h", body,
                                     strlen(body), 0, write_done, tag_of(i));
    }
    ck_assert_uint_eq(storage_queued(st), 200);
    block_end(&b);
    storage_drain(st);
    ck_assert_uint_eq(storage_queued(st), 0);
    ck_assert_uint_eq(rec.n, 200);
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(rec.order[i], i);
        ck_assert_int_eq(rec.rc[i], 0);
        ck_assert_uint_eq(rec.id[i], (uint64_t)i + 1);
    }
    ck_assert_uint_eq(writes() - w0, 200);
    ck_assert_uint_le(commits() - c0, 2);
    ck_assert_int_ge(wakes, 1);

    storage_close(st);
    open_storage(0, false);
    size_t n;
    ck_assert_int_eq(storage_archive_count(st, "offline", "bob@h", &n), 0);
    ck_assert_uint_eq(n, 200);
}
END_TEST

/* A quota checked inside the batch: 8 appends queued together against max_items 5 store
 * exactly 5, and the other 3 complete with TERN_STORAGE_LIMIT. */
START_TEST(test_quota_holds_within_a_batch)
{
    rec.n = 0;
    blocker b;
    block_start(&b);
    for (int i = 0; i < 8; i++)
        storage_archive_append_async(st, "offline", "carol@h", i, NULL, "x", 1, 5, write_done,
                                     tag_of(i));
    block_end(&b);
    storage_drain(st);
    ck_assert_uint_eq(rec.n, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(rec.rc[i], i < 5 ? 0 : TERN_STORAGE_LIMIT);
    size_t n;
    ck_assert_int_eq(storage_archive_count(st, "offline", "carol@h", &n), 0);
    ck_assert_uint_eq(n, 5);
}
END_TEST

/* One bad write in a batch (an empty owner) fails alone; the others commit. */
START_TEST(test_a_bad_write_fails_alone)
{
    rec.n = 0;
    blocker b;
    block_start(&b);
    storage_kv_put_async(st, "vcard", "a@h", "A", 1, write_done, tag_of(0));
    storage_kv_put_async(st, "vcard", "", "bad", 3, write_done, tag_of(1));
    storage_kv_put_async(st, "vcard", "c@h", "C", 1, write_done, tag_of(2));
    block_end(&b);
    storage_drain(st);
    ck_assert_uint_eq(rec.n, 3);
    ck_assert_int_eq(rec.rc[0], 0);
    ck_assert_int_eq(rec.rc[1], -1);
    ck_assert_int_eq(rec.rc[2], 0);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "vcard", "a@h", &v, &len), 1);
    free(v);
    ck_assert_int_eq(storage_kv_get(st, "vcard", "c@h", &v, &len), 1);
    free(v);
}
END_TEST

/* A plain read right after a queued write sees it (it waits for that owner's writes), and a
 * plain write cannot overtake a queued one. */
START_TEST(test_plain_calls_see_queued_writes)
{
    blocker b;
    block_start(&b);
    storage_kv_put_async(st, "vcard", "dave@h", "queued", 6, NULL, NULL);
    storage_map_apply_async(st, "private", "dave@h",
                            &(storage_map_change){ "ns", "first", 5 }, 1, NULL, NULL);
    block_end(&b);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "vcard", "dave@h", &v, &len), 1);
    ck_assert_int_eq((int)len, 6);
    ck_assert_int_eq(memcmp(v, "queued", 6), 0);
    free(v);
    ck_assert_int_eq(storage_map_put(st, "private", "dave@h", "ns", "second", 6), 0);
    ck_assert_int_eq(storage_map_get(st, "private", "dave@h", "ns", &v, &len), 1);
    ck_assert_int_eq(memcmp(v, "second", 6), 0);
    free(v);
    storage_drain(st);
}
END_TEST

typedef struct query_result {
    char bodies[16][16];
    size_t n;
    int rc;
    int done_calls;
} query_result;

static int query_item(void *ctx, const storage_archive_item *item)
{
    query_result *q = ctx;
    snprintf(q->bodies[q->n++], sizeof q->bodies[0], "%.*s", (int)item->payload_len,
             (const char *)item->payload);
    return 0;
}

static void query_done(void *ctx, int rc)
{
    query_result *q = ctx;
    q->rc = rc;
    q->done_calls++;
}

/* A query sees the appends queued before it, not the ones after; its max and "more" work as
 * in the plain call; a barrier completes after the writes queued before it. */
START_TEST(test_queries_and_barriers_are_ordered)
{
    rec.n = 0;
    for (int i = 0; i < 3; i++) {
        char body[8];
        snprintf(body, sizeof body, "m%d", i);
        storage_archive_append_async(st, "offline", "erin@h", i, NULL, body, strlen(body), 0,
                                     write_done, tag_of(i));
    }
    query_result all = { 0 }, two = { 0 };
    storage_archive_query_async(st, "offline", "erin@h", NULL, query_item, query_done, &all);
    struct storage_archive_query q = { .max = 2 };
    storage_archive_query_async(st, "offline", "erin@h", &q, query_item, query_done, &two);
    storage_archive_append_async(st, "offline", "erin@h", 9, NULL, "late", 4, 0, write_done,
                                 tag_of(3));
    storage_after_writes(st, barrier_done, tag_of(4));
    storage_drain(st);
    ck_assert_int_eq(all.done_calls, 1);
    ck_assert_int_eq(all.rc, 0);
    ck_assert_uint_eq(all.n, 3);
    ck_assert_str_eq(all.bodies[0], "m0");
    ck_assert_str_eq(all.bodies[2], "m2");
    ck_assert_int_eq(two.rc, 1);
    ck_assert_uint_eq(two.n, 2);
    ck_assert_uint_eq(rec.n, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(rec.order[i], i);
}
END_TEST

/* A batch on a tiny map that writes to stores never opened before: it runs again after
 * opening them and after growing the map, and every write lands once. */
START_TEST(test_batch_opens_stores_and_grows_the_map)
{
    storage_close(st);
    open_storage(64 * 1024, true);
    rec.n = 0;
    static unsigned char chunk[8 * 1024];
    blocker b;
    block_start(&b);
    for (int i = 0; i < 64; i++) {
        char store[16], owner[16];
        snprintf(store, sizeof store, "s%d", i % 8);
        snprintf(owner, sizeof owner, "u%d@h", i);
        memset(chunk, i, sizeof chunk);
        storage_kv_put_async(st, store, owner, chunk, sizeof chunk, write_done, tag_of(i));
    }
    block_end(&b);
    storage_drain(st);
    ck_assert_uint_eq(rec.n, 64);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(rec.rc[i], 0);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "s7", "u63@h", &v, &len), 1);
    ck_assert_uint_eq(len, sizeof chunk);
    ck_assert_int_eq(((unsigned char *)v)[0], 63);
    free(v);
}
END_TEST

/* A capped map: the batch does not fit, so the writes run one by one; those that fit are
 * kept, the rest complete with TERN_STORAGE_FULL. */
START_TEST(test_full_map_refuses_only_what_does_not_fit)
{
    storage_close(st);
    open_storage(64 * 1024, true);
    storage_set_max_size(st, 1024 * 1024);
    rec.n = 0;
    static unsigned char chunk[20 * 1024];
    blocker b;
    block_start(&b);
    for (int i = 0; i < 100; i++)
        storage_archive_append_async(st, "big", "o@h", i, NULL, chunk, sizeof chunk, 0,
                                     write_done, tag_of(i));
    block_end(&b);
    storage_drain(st);
    ck_assert_uint_eq(rec.n, 100);
    int kept = 0;
    for (int i = 0; i < 100; i++) {
        ck_assert(rec.rc[i] == 0 || rec.rc[i] == TERN_STORAGE_FULL);
        kept += rec.rc[i] == 0;
    }
    ck_assert_int_gt(kept, 20);
    ck_assert_int_lt(kept, 100);
    size_t n;
    ck_assert_int_eq(storage_archive_count(st, "big", "o@h", &n), 0);
    ck_assert_uint_eq(n, (size_t)kept);
}
END_TEST

static void *release_later(void *arg)
{
    usleep(300 * 1000);
    block_end(arg);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Past storage_queue_max the queueing call waits for the thread: with the commit held up for
 * 300 ms, queueing 400 KiB against a 64 KiB bound takes about that long, and nothing is lost;
 * under the bound it does not wait. */
START_TEST(test_a_full_queue_makes_the_caller_wait)
{
    storage_set_queue_max(st, 64 * 1024);
    rec.n = 0;
    static unsigned char chunk[4096];
    blocker b;
    block_start(&b);
    double t0 = now_s();
    for (int i = 0; i < 8; i++) /* 32 KiB: under the bound */
        storage_archive_append_async(st, "offline", "gus@h", i, NULL, chunk, sizeof chunk, 0,
                                     write_done, tag_of(i));
    ck_assert(now_s() - t0 < 0.2);
    pthread_t releaser;
    ck_assert_int_eq(pthread_create(&releaser, NULL, release_later, &b), 0);
    for (int i = 8; i < 100; i++)
        storage_archive_append_async(st, "offline", "gus@h", i, NULL, chunk, sizeof chunk, 0,
                                     write_done, tag_of(i));
    ck_assert(now_s() - t0 >= 0.25);
    pthread_join(releaser, NULL);
    storage_drain(st);
    ck_assert_uint_eq(rec.n, 100);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(rec.rc[i], 0);
    size_t n;
    ck_assert_int_eq(storage_archive_count(st, "offline", "gus@h", &n), 0);
    ck_assert_uint_eq(n, 100);
}
END_TEST

/* The main loop opens stores (plain writes to stores never used) while the storage thread
 * commits batches that open others: neither waits for the other forever (a batch holds LMDB's
 * writer lock; opening a store needs it), and every write lands. */
START_TEST(test_opening_stores_on_both_sides_does_not_deadlock)
{
    rec.n = 0;
    for (int round = 0; round < 5; round++) { /* 115 stores: under LMDB_MAX_DBS */
        for (int i = 0; i < 20; i++) {
            char store[32];
            snprintf(store, sizeof store, "q%d-%d", round, i);
            storage_kv_put_async(st, store, "u@h", "v", 1, write_done, tag_of(round % 50));
        }
        for (int i = 0; i < 3; i++) {
            char store[32];
            snprintf(store, sizeof store, "p%d-%d", round, i);
            ck_assert_int_eq(storage_kv_put(st, store, "u@h", "w", 1), 0);
        }
        storage_drain(st);
    }
    ck_assert_uint_eq(rec.n, 100);
    for (size_t i = 0; i < rec.n; i++)
        ck_assert_int_eq(rec.rc[i], 0);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "q4-19", "u@h", &v, &len), 1);
    free(v);
    ck_assert_int_eq(storage_kv_get(st, "p4-2", "u@h", &v, &len), 1);
    free(v);
}
END_TEST

/* Without the storage thread (ternctl) an _async call completes before it returns. */
START_TEST(test_without_the_thread_calls_run_at_once)
{
    storage_close(st);
    open_storage(0, false);
    rec.n = 0;
    storage_archive_append_async(st, "offline", "fay@h", 1, NULL, "x", 1, 1, write_done,
                                 tag_of(0));
    ck_assert_uint_eq(rec.n, 1);
    ck_assert_int_eq(rec.rc[0], 0);
    storage_archive_append_async(st, "offline", "fay@h", 2, NULL, "y", 1, 1, write_done,
                                 tag_of(1));
    ck_assert_uint_eq(rec.n, 2);
    ck_assert_int_eq(rec.rc[1], TERN_STORAGE_LIMIT);
    ck_assert_uint_eq(storage_queued(st), 0);
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("storage_queue");
    TCase *tc = tcase_create("lmdb");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_queued_writes_share_one_commit);
    tcase_add_test(tc, test_quota_holds_within_a_batch);
    tcase_add_test(tc, test_a_bad_write_fails_alone);
    tcase_add_test(tc, test_plain_calls_see_queued_writes);
    tcase_add_test(tc, test_queries_and_barriers_are_ordered);
    tcase_add_test(tc, test_batch_opens_stores_and_grows_the_map);
    tcase_add_test(tc, test_full_map_refuses_only_what_does_not_fit);
    tcase_add_test(tc, test_without_the_thread_calls_run_at_once);
    tcase_add_test(tc, test_a_full_queue_makes_the_caller_wait);
    tcase_add_test(tc, test_opening_stores_on_both_sides_does_not_deadlock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    strcpy(root, "/tmp/tern-test-queue-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(queue_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_dir(root);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
