/* test_storage.c — the LMDB storage layer on a real temporary directory: keyval, map and
 * archive semantics, no cross-talk between owners that prefix each other, persistence across
 * close/open, visibility of another process's writes, map growth from a tiny size, map_apply
 * (many changes, all or none) and the write counters. */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/storage_env.h"

static char dir[96];
static tern_storage *st;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(const char *path)
{
    nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Every test's directory lives under `root`, made and removed by main(): Check runs each test
 * in a child process and skips teardown when the test fails, so the runner cleans up. */
static char root[64];

static tern_storage *open_at(const char *path, size_t map_size)
{
    char err[256] = "";
    tern_storage *s = storage_open(path, map_size, err, sizeof err);
    ck_assert_msg(s != NULL, "storage_open: %s", err);
    return s;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    st = open_at(dir, 0);
}

static void teardown(void)
{
    storage_close(st);
    st = NULL;
    remove_dir(dir);
}

/* ---- helpers ---- */

static void assert_kv(const char *store, const char *owner, const char *expect)
{
    void *v = (void *)1;
    size_t len = 99;
    int rc = storage_kv_get(st, store, owner, &v, &len);
    if (!expect) {
        ck_assert_int_eq(rc, 0);
        ck_assert_ptr_null(v);
        return;
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_eq(len, strlen(expect));
    ck_assert_mem_eq(v, expect, len);
    free(v);
}

static void assert_map(const char *store, const char *owner, const char *key, const char *expect)
{
    void *v = NULL;
    size_t len = 0;
    int rc = storage_map_get(st, store, owner, key, &v, &len);
    if (!expect) {
        ck_assert_int_eq(rc, 0);
        return;
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_eq(len, strlen(expect));
    ck_assert_mem_eq(v, expect, len);
    free(v);
}

/* Collects callback results as one string "a,b,c," for exact comparison. */
typedef struct collect {
    char text[8192];
    size_t calls;
    size_t stop_after;  /* 0: never stop */
} collect;

static void collect_add(collect *c, const char *s)
{
    strncat(c->text, s, sizeof c->text - strlen(c->text) - 1);
    strncat(c->text, ",", sizeof c->text - strlen(c->text) - 1);
}

static int collect_owner(void *ctx, const char *owner)
{
    collect *c = ctx;
    collect_add(c, owner);
    c->calls++;
    return c->stop_after && c->calls >= c->stop_after;
}

static int collect_map(void *ctx, const char *key, const void *value, size_t len)
{
    collect *c = ctx;
    char buf[256];
    snprintf(buf, sizeof buf, "%s=%.*s", key, (int)len, (const char *)value);
    collect_add(c, buf);
    c->calls++;
    return c->stop_after && c->calls >= c->stop_after;
}

static int collect_item(void *ctx, const storage_archive_item *item)
{
    collect *c = ctx;
    char buf[256];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)item->id);
    collect_add(c, buf);
    c->calls++;
    return c->stop_after && c->calls >= c->stop_after;
}

static int query(const char *owner, const struct storage_archive_query *q, collect *c)
{
    memset(c, 0, sizeof *c);
    return storage_archive_query(st, "log", owner, q, collect_item, c);
}

/* ---- environment ---- */

/* Deleting an account's data reaches every store of every kind, and nobody else's data — not
 * even an owner whose name extends the deleted one ("al@x" vs "al@xy"). */
START_TEST(test_delete_owner_everywhere)
{
    uint64_t id;
    size_t count;
    void *v;
    size_t len;
    const char *owners[] = { "al@x", "al@xy" };
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(storage_kv_put(st, "roster", owners[i], "r", 1), 0);
        ck_assert_int_eq(storage_kv_put(st, "vcard", owners[i], "v", 1), 0);
        ck_assert_int_eq(storage_map_put(st, "private", owners[i], "ns", "p", 1), 0);
        ck_assert_int_eq(storage_archive_append(st, "offline", owners[i], 1, NULL, "m", 1, &id),
                         0);
    }
    ck_assert_int_eq(storage_delete_owner(st, "al@x"), 0);
    ck_assert_int_eq(storage_kv_get(st, "roster", "al@x", &v, &len), 0);
    ck_assert_int_eq(storage_kv_get(st, "vcard", "al@x", &v, &len), 0);
    ck_assert_int_eq(storage_map_get(st, "private", "al@x", "ns", &v, &len), 0);
    ck_assert_int_eq(storage_archive_count(st, "offline", "al@x", &count), 0);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(storage_kv_get(st, "roster", "al@xy", &v, &len), 1);
    free(v);
    ck_assert_int_eq(storage_map_get(st, "private", "al@xy", "ns", &v, &len), 1);
    free(v);
    ck_assert_int_eq(storage_archive_count(st, "offline", "al@xy", &count), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(storage_delete_owner(st, "al@x"), 0); /* again: nothing left, no error */
}
END_TEST

START_TEST(test_open_creates_private_dir)
{
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    tern_storage *s2 = open_at(sub, 0);
    struct stat sb;
    ck_assert_int_eq(stat(sub, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(sb.st_mode & 0777, 0700);
    ck_assert_int_eq(storage_kv_put(s2, "s", "a@b", "x", 1), 0);
    ck_assert_int_gt(storage_file_size(s2), 0);
    storage_close(s2);
    remove_dir(sub);
}
END_TEST

START_TEST(test_open_fails_with_reason)
{
    char file[128], under[160], err[256] = "";
    snprintf(file, sizeof file, "%s/plainfile", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(under, sizeof under, "%s/db", file);
    ck_assert_ptr_null(storage_open(under, 0, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, under));
    unlink(file);
}
END_TEST

/* ---- keyval ---- */

START_TEST(test_kv_put_get_overwrite_delete)
{
    assert_kv("roster", "alice@a.test", NULL);
    ck_assert_int_eq(storage_kv_put(st, "roster", "alice@a.test", "one", 3), 0);
    assert_kv("roster", "alice@a.test", "one");
    ck_assert_int_eq(storage_kv_put(st, "roster", "alice@a.test", "second", 6), 0);
    assert_kv("roster", "alice@a.test", "second");
    /* Other stores and other kinds with the same names do not see it. */
    assert_kv("vcard", "alice@a.test", NULL);
    assert_map("roster", "alice@a.test", "", NULL);
    ck_assert_int_eq(storage_kv_delete(st, "roster", "alice@a.test"), 0);
    assert_kv("roster", "alice@a.test", NULL);
    ck_assert_int_eq(storage_kv_delete(st, "roster", "alice@a.test"), 0); /* absent: 0 */
}
END_TEST

START_TEST(test_kv_binary_and_empty_values)
{
    const unsigned char bin[] = { 0, 1, 0, 0xff, 0 };
    ck_assert_int_eq(storage_kv_put(st, "s", "a@b", bin, sizeof bin), 0);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "s", "a@b", &v, &len), 1);
    ck_assert_uint_eq(len, sizeof bin);
    ck_assert_mem_eq(v, bin, sizeof bin);
    free(v);
    ck_assert_int_eq(storage_kv_put(st, "s", "a@b", "", 0), 0);
    ck_assert_int_eq(storage_kv_get(st, "s", "a@b", &v, &len), 1);
    ck_assert_uint_eq(len, 0);
    free(v);
}
END_TEST

START_TEST(test_kv_bad_keys)
{
    char longjid[1024];
    memset(longjid, 'x', sizeof longjid - 1);
    longjid[sizeof longjid - 1] = '\0';
    ck_assert_int_eq(storage_kv_put(st, "s", longjid, "v", 1), -1);
    ck_assert_int_eq(storage_kv_put(st, "s", "", "v", 1), -1);
    ck_assert_int_eq(storage_kv_put(st, "", "a@b", "v", 1), -1);
}
END_TEST

static void put_owners(void)
{
    static const char *const owners[] = { "bob@b.test", "alice@a.test", "a.test", "carol@xa.test",
                                          "xa.test", "dave@a.test", "eve@a.test.org" };
    for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++)
        ck_assert_int_eq(storage_kv_put(st, "accounts", owners[i], "v", 1), 0);
}

START_TEST(test_kv_each_owner_domain)
{
    put_owners();
    collect c = { 0 };
    ck_assert_int_eq(storage_kv_each_owner(st, "accounts", "a.test", collect_owner, &c), 0);
    ck_assert_str_eq(c.text, "a.test,alice@a.test,dave@a.test,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_kv_each_owner(st, "accounts", "xa.test", collect_owner, &c), 0);
    ck_assert_str_eq(c.text, "carol@xa.test,xa.test,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_kv_each_owner(st, "accounts", "b.test", collect_owner, &c), 0);
    ck_assert_str_eq(c.text, "bob@b.test,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_kv_each_owner(st, "accounts", "test", collect_owner, &c), 0);
    ck_assert_str_eq(c.text, "");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_kv_each_owner(st, "accounts", NULL, collect_owner, &c), 0);
    ck_assert_str_eq(c.text, "a.test,alice@a.test,bob@b.test,carol@xa.test,dave@a.test,"
                             "eve@a.test.org,xa.test,");
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    ck_assert_int_eq(storage_kv_each_owner(st, "accounts", NULL, collect_owner, &c), 0);
    ck_assert_str_eq(c.text, "a.test,alice@a.test,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_kv_each_owner(st, "empty", NULL, collect_owner, &c), 0);
    ck_assert_uint_eq(c.calls, 0);
}
END_TEST

/* More owners than one batch holds, with non-matching owners between them. */
START_TEST(test_kv_each_owner_many)
{
    char owner[64];
    for (int i = 0; i < 300; i++) {
        snprintf(owner, sizeof owner, "u%03d@%s", i, i % 3 ? "other.test" : "d.test");
        ck_assert_int_eq(storage_kv_put(st, "s", owner, "v", 1), 0);
    }
    collect c = { 0 };
    ck_assert_int_eq(storage_kv_each_owner(st, "s", "d.test", collect_owner, &c), 0);
    ck_assert_uint_eq(c.calls, 100);
    char expect[8192] = "";
    for (int i = 0; i < 300; i += 3) {
        snprintf(owner, sizeof owner, "u%03d@d.test,", i);
        strcat(expect, owner);
    }
    ck_assert_str_eq(c.text, expect);
    memset(&c, 0, sizeof c);
    c.stop_after = 70;
    ck_assert_int_eq(storage_kv_each_owner(st, "s", "d.test", collect_owner, &c), 0);
    ck_assert_uint_eq(c.calls, 70);
}
END_TEST

/* ---- map ---- */

START_TEST(test_map_no_cross_talk)
{
    ck_assert_int_eq(storage_map_put(st, "private", "al@x", "a", "1", 1), 0);
    ck_assert_int_eq(storage_map_put(st, "private", "al@x", "ab", "2", 1), 0);
    ck_assert_int_eq(storage_map_put(st, "private", "al@x", "b", "3", 1), 0);
    ck_assert_int_eq(storage_map_put(st, "private", "al@x", "", "empty", 5), 0);
    ck_assert_int_eq(storage_map_put(st, "private", "al@xy", "a", "other", 5), 0);
    ck_assert_int_eq(storage_map_put(st, "private", "al", "a", "short", 5), 0);
    ck_assert_int_eq(storage_map_put(st, "pep", "al@x", "a", "pep", 3), 0);

    assert_map("private", "al@x", "a", "1");
    assert_map("private", "al@x", "ab", "2");
    assert_map("private", "al@xy", "a", "other");
    assert_map("private", "al", "a", "short");
    assert_map("private", "al@xy", "ab", NULL);
    assert_map("private", "al@x", "abc", NULL);
    assert_map("pep", "al@x", "a", "pep");
    assert_kv("private", "al@x", NULL);

    collect c = { 0 };
    ck_assert_int_eq(storage_map_each(st, "private", "al@x", collect_map, &c), 0);
    ck_assert_str_eq(c.text, "=empty,a=1,ab=2,b=3,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_map_each(st, "private", "al@xy", collect_map, &c), 0);
    ck_assert_str_eq(c.text, "a=other,");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_map_each(st, "private", "nobody@x", collect_map, &c), 0);
    ck_assert_str_eq(c.text, "");
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    ck_assert_int_eq(storage_map_each(st, "private", "al@x", collect_map, &c), 0);
    ck_assert_str_eq(c.text, "=empty,a=1,");

    ck_assert_int_eq(storage_map_put(st, "private", "al@x", "a", "new", 3), 0);
    assert_map("private", "al@x", "a", "new");
    ck_assert_int_eq(storage_map_delete(st, "private", "al@x", "a"), 0);
    assert_map("private", "al@x", "a", NULL);
    assert_map("private", "al@x", "ab", "2");
    assert_map("private", "al@xy", "a", "other");
    ck_assert_int_eq(storage_map_delete(st, "private", "al@x", "a"), 0); /* absent: 0 */

    ck_assert_int_eq(storage_map_clear(st, "private", "al@x"), 0);
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(storage_map_each(st, "private", "al@x", collect_map, &c), 0);
    ck_assert_str_eq(c.text, "");
    assert_map("private", "al@xy", "a", "other");
    assert_map("private", "al", "a", "short");
    assert_map("pep", "al@x", "a", "pep");
    ck_assert_int_eq(storage_map_clear(st, "private", "al@x"), 0);
}
END_TEST

static int count_map_bytes(void *ctx, const char *key, const void *value, size_t len)
{
    size_t *total = ctx;
    char expect = key[strlen(key) - 1];
    for (size_t i = 0; i < len; i++)
        if (((const char *)value)[i] != expect)
            return 1;
    *total += len;
    return 0;
}

/* More keys than one batch, and more bytes than one batch. */
START_TEST(test_map_each_many)
{
    static char big[300 * 1024];
    char key[32];
    for (int i = 0; i < 150; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        memset(big, key[3], sizeof big);
        ck_assert_int_eq(storage_map_put(st, "m", "o@h", key, big, i < 10 ? sizeof big : 10), 0);
    }
    size_t total = 0;
    ck_assert_int_eq(storage_map_each(st, "m", "o@h", count_map_bytes, &total), 0);
    ck_assert_uint_eq(total, 10 * sizeof big + 140 * 10);
}
END_TEST

/* ---- archive ---- */

static uint64_t append(const char *owner, time_t when, const char *peer, const char *body)
{
    uint64_t id = 0;
    ck_assert_int_eq(storage_archive_append(st, "log", owner, when, peer, body, strlen(body), &id),
                     0);
    return id;
}

static void fill_archive(void)
{
    ck_assert_uint_eq(append("al@x", 100, "p@a", "m1"), 1);
    ck_assert_uint_eq(append("al@x", 200, "q@b", "m2"), 2);
    ck_assert_uint_eq(append("al@xy", 250, "p@a", "other owner"), 3);
    ck_assert_uint_eq(append("al@x", 300, "p@a", "m3"), 4);
    ck_assert_uint_eq(append("al@x", 400, NULL, "m4"), 5);
    ck_assert_uint_eq(append("al@x", 500, "p@a", "m5"), 6);
}

static const unsigned char odd_payload[] = { '<', 0, 0xff, '>' };

static int check_items(void *ctx, const storage_archive_item *item)
{
    int *n = ctx;
    if (*n == 0) {
        ck_assert_uint_eq(item->id, 1);
        ck_assert_int_eq(item->when, -5);
        ck_assert_str_eq(item->peer, "peer@h/r");
        ck_assert_uint_eq(item->payload_len, sizeof odd_payload);
        ck_assert_mem_eq(item->payload, odd_payload, sizeof odd_payload);
    } else {
        ck_assert_uint_eq(item->id, 2);
        ck_assert_int_eq(item->when, 1700000000);
        ck_assert_ptr_null(item->peer);
        ck_assert_uint_eq(item->payload_len, 0);
    }
    (*n)++;
    return 0;
}

START_TEST(test_archive_items_round_trip)
{
    uint64_t id;
    ck_assert_int_eq(storage_archive_append(st, "log", "al@x", -5, "peer@h/r", odd_payload,
                                            sizeof odd_payload, &id), 0);
    ck_assert_uint_eq(id, 1);
    ck_assert_int_eq(storage_archive_append(st, "log", "al@x", 1700000000, NULL, NULL, 0, &id), 0);
    ck_assert_uint_eq(id, 2);
    int n = 0;
    ck_assert_int_eq(storage_archive_query(st, "log", "al@x", NULL, check_items, &n), 0);
    ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(test_archive_queries)
{
    fill_archive();
    collect c;
    struct storage_archive_query q = { 0 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "1,2,4,5,6,");
    ck_assert_int_eq(query("al@xy", &q, &c), 0);
    ck_assert_str_eq(c.text, "3,");
    ck_assert_int_eq(query("al", &q, &c), 0);
    ck_assert_str_eq(c.text, "");

    q = (struct storage_archive_query){ .start = 200, .end = 400 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "2,4,5,");
    q = (struct storage_archive_query){ .start = 201 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "4,5,6,");
    q = (struct storage_archive_query){ .end = 199 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "1,");

    q = (struct storage_archive_query){ .peer = "p@a" };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "1,4,6,");
    q = (struct storage_archive_query){ .peer = "p@" };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "");

    q = (struct storage_archive_query){ .after_id = 2 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "4,5,6,");
    q = (struct storage_archive_query){ .before_id = 5 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "1,2,4,");
    q = (struct storage_archive_query){ .after_id = 1, .before_id = 6 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "2,4,5,");
    q = (struct storage_archive_query){ .after_id = 6 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "");

    q = (struct storage_archive_query){ .max = 2 };
    ck_assert_int_eq(query("al@x", &q, &c), 1);
    ck_assert_str_eq(c.text, "1,2,");
    q = (struct storage_archive_query){ .max = 5 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "1,2,4,5,6,");
    q = (struct storage_archive_query){ .max = 2, .peer = "p@a", .after_id = 1 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "4,6,");
    q = (struct storage_archive_query){ .max = 1, .peer = "p@a", .after_id = 1 };
    ck_assert_int_eq(query("al@x", &q, &c), 1);
    ck_assert_str_eq(c.text, "4,");

    q = (struct storage_archive_query){ .reverse = 1 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "6,5,4,2,1,");
    q = (struct storage_archive_query){ .reverse = 1, .max = 2 };
    ck_assert_int_eq(query("al@x", &q, &c), 1);
    ck_assert_str_eq(c.text, "6,5,");
    q = (struct storage_archive_query){ .reverse = 1, .max = 2, .before_id = 5 };
    ck_assert_int_eq(query("al@x", &q, &c), 1);
    ck_assert_str_eq(c.text, "4,2,");
    q = (struct storage_archive_query){ .reverse = 1, .max = 2, .before_id = 4 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "2,1,");
    q = (struct storage_archive_query){ .reverse = 1, .after_id = 2, .before_id = 6 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "5,4,");
    q = (struct storage_archive_query){ .reverse = 1, .before_id = 3 };
    ck_assert_int_eq(query("al@xy", &q, &c), 0);
    ck_assert_str_eq(c.text, "");
    q = (struct storage_archive_query){ .reverse = 1 };
    ck_assert_int_eq(query("al@xy", &q, &c), 0);
    ck_assert_str_eq(c.text, "3,");
    /* "al@x" sorts before "al@xy": the reverse seek must not land in al@xy's items. */
    q = (struct storage_archive_query){ .reverse = 1, .max = 1 };
    ck_assert_int_eq(query("al@x", &q, &c), 1);
    ck_assert_str_eq(c.text, "6,");

    /* The callback stops the walk: no "more". */
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    q = (struct storage_archive_query){ 0 };
    ck_assert_int_eq(storage_archive_query(st, "log", "al@x", &q, collect_item, &c), 0);
    ck_assert_str_eq(c.text, "1,");
}
END_TEST

START_TEST(test_archive_delete_clear_count_ids)
{
    fill_archive();
    size_t n = 99;
    ck_assert_int_eq(storage_archive_count(st, "log", "al@x", &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(storage_archive_count(st, "log", "al@xy", &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(storage_archive_count(st, "log", "nobody", &n), 0);
    ck_assert_uint_eq(n, 0);

    ck_assert_int_eq(storage_archive_delete(st, "log", "al@x", 4), 0);
    ck_assert_int_eq(storage_archive_delete(st, "log", "al@x", 3), 0); /* al@xy's id: no effect */
    ck_assert_int_eq(storage_archive_delete(st, "log", "al@x", 6), 0);  /* the newest */
    collect c;
    struct storage_archive_query q = { 0 };
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "1,2,5,");
    ck_assert_int_eq(query("al@xy", &q, &c), 0);
    ck_assert_str_eq(c.text, "3,");
    ck_assert_int_eq(storage_archive_count(st, "log", "al@x", &n), 0);
    ck_assert_uint_eq(n, 3);

    /* Ids are never reused, not even the deleted newest one. */
    ck_assert_uint_eq(append("al@x", 600, NULL, "m7"), 7);
    ck_assert_int_eq(storage_archive_clear(st, "log", "al@x"), 0);
    ck_assert_int_eq(storage_archive_count(st, "log", "al@x", &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(storage_archive_count(st, "log", "al@xy", &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(append("al@x", 700, NULL, "m8"), 8);
    ck_assert_int_eq(query("al@x", &q, &c), 0);
    ck_assert_str_eq(c.text, "8,");

    /* Each store counts on its own. */
    uint64_t id = 0;
    ck_assert_int_eq(storage_archive_append(st, "offline", "al@x", 1, NULL, "x", 1, &id), 0);
    ck_assert_uint_eq(id, 1);
}
END_TEST

/* More items than one batch: paging forward and backward with max, and "more". */
START_TEST(test_archive_many)
{
    for (int i = 1; i <= 200; i++)
        ck_assert_uint_eq(append("o@h", i, i % 2 ? "odd@h" : "even@h", "x"), (uint64_t)i);
    collect c;
    struct storage_archive_query q = { .max = 150 };
    ck_assert_int_eq(query("o@h", &q, &c), 1);
    ck_assert_uint_eq(c.calls, 150);
    ck_assert(strncmp(c.text, "1,2,3,", 6) == 0);
    ck_assert_ptr_nonnull(strstr(c.text, ",149,150,"));
    ck_assert_ptr_null(strstr(c.text, ",151,"));
    q = (struct storage_archive_query){ .max = 200 };
    ck_assert_int_eq(query("o@h", &q, &c), 0);
    ck_assert_uint_eq(c.calls, 200);
    q = (struct storage_archive_query){ .reverse = 1, .max = 100, .peer = "odd@h" };
    ck_assert_int_eq(query("o@h", &q, &c), 0);
    ck_assert_uint_eq(c.calls, 100);
    ck_assert(strncmp(c.text, "199,197,", 8) == 0);
    ck_assert_str_eq(c.text + strlen(c.text) - 3, ",1,");
    q = (struct storage_archive_query){ .reverse = 1, .max = 99, .peer = "odd@h" };
    ck_assert_int_eq(query("o@h", &q, &c), 1);
    ck_assert_str_eq(c.text + strlen(c.text) - 3, ",3,");
    q = (struct storage_archive_query){ .max = 70, .start = 101 };
    ck_assert_int_eq(query("o@h", &q, &c), 1);
    ck_assert(strncmp(c.text, "101,102,", 8) == 0);
    ck_assert_ptr_nonnull(strstr(c.text, ",170,"));
    ck_assert_ptr_null(strstr(c.text, ",171,"));
    memset(&c, 0, sizeof c);
    c.stop_after = 100;
    q = (struct storage_archive_query){ 0 };
    ck_assert_int_eq(storage_archive_query(st, "log", "o@h", &q, collect_item, &c), 0);
    ck_assert_uint_eq(c.calls, 100);
}
END_TEST

/* ---- durability, processes, growth ---- */

START_TEST(test_survives_close_and_reopen)
{
    ck_assert_int_eq(storage_kv_put(st, "s", "a@b", "kept", 4), 0);
    ck_assert_int_eq(storage_map_put(st, "m", "a@b", "k", "mv", 2), 0);
    ck_assert_uint_eq(append("a@b", 10, "p@q", "one"), 1);
    ck_assert_uint_eq(append("a@b", 11, "p@q", "two"), 2);
    ck_assert_int_eq(storage_archive_delete(st, "log", "a@b", 2), 0);
    storage_close(st);
    st = open_at(dir, 0);
    assert_kv("s", "a@b", "kept");
    assert_map("m", "a@b", "k", "mv");
    collect c;
    struct storage_archive_query q = { 0 };
    ck_assert_int_eq(query("a@b", &q, &c), 0);
    ck_assert_str_eq(c.text, "1,");
    ck_assert_uint_eq(append("a@b", 12, NULL, "three"), 3); /* the counter persisted too */
}
END_TEST

/* LMDB forbids opening one environment twice in a process, so the other opener is a child
 * process, as ternctl would be beside ternd. */
START_TEST(test_other_process_writes_are_visible)
{
    assert_kv("s", "child@h", NULL);  /* the parent's env is open and has used the store */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[256];
        tern_storage *cs = storage_open(dir, 0, err, sizeof err);
        int ok = cs && storage_kv_put(cs, "s", "child@h", "hello", 5) == 0 &&
                 storage_archive_append(cs, "log", "child@h", 1, NULL, "x", 1, NULL) == 0;
        storage_close(cs);
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    assert_kv("s", "child@h", "hello");
    ck_assert_uint_eq(append("child@h", 2, NULL, "y"), 2);
}
END_TEST

/* A child grows a tiny map far beyond the parent's: the parent adopts the new size
 * (MDB_MAP_RESIZED) and reads and writes on. */
START_TEST(test_other_process_grows_map)
{
    storage_close(st);
    st = open_at(dir, 64 * 1024);
    assert_kv("s", "a@b", NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[256];
        static char big[512 * 1024];
        tern_storage *cs = storage_open(dir, 64 * 1024, err, sizeof err);
        int ok = cs != NULL;
        for (int i = 0; ok && i < 8; i++) {
            char owner[32];
            snprintf(owner, sizeof owner, "u%d@h", i);
            memset(big, 'a' + i, sizeof big);
            ok = storage_kv_put(cs, "s", owner, big, sizeof big) == 0;
        }
        storage_close(cs);
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "s", "u7@h", &v, &len), 1);
    ck_assert_uint_eq(len, 512 * 1024);
    ck_assert_int_eq(((char *)v)[len - 1], 'h');
    free(v);
    ck_assert_int_eq(storage_kv_put(st, "s", "a@b", "after", 5), 0);
    assert_kv("s", "a@b", "after");
}
END_TEST

START_TEST(test_map_grows_from_tiny)
{
    storage_close(st);
    st = open_at(dir, 64 * 1024);
    static unsigned char chunk[40 * 1024];
    long long before = storage_file_size(st);
    /* 10 MB in total, through every kind of write. */
    for (int i = 0; i < 250; i++) {
        char name[32];
        snprintf(name, sizeof name, "u%d@h", i);
        memset(chunk, i & 0xff, sizeof chunk);
        if (i % 3 == 0)
            ck_assert_int_eq(storage_kv_put(st, "big", name, chunk, sizeof chunk), 0);
        else if (i % 3 == 1)
            ck_assert_int_eq(storage_map_put(st, "big", "o@h", name, chunk, sizeof chunk), 0);
        else
            ck_assert_int_eq(storage_archive_append(st, "big", "o@h", i, NULL, chunk, sizeof chunk,
                                                    NULL), 0);
    }
    ck_assert_int_gt(storage_file_size(st), before + 10LL * 1000 * 1000);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "big", "u249@h", &v, &len), 1);
    ck_assert_uint_eq(len, sizeof chunk);
    ck_assert_int_eq(((unsigned char *)v)[100], 249);
    free(v);
    ck_assert_int_eq(storage_map_get(st, "big", "o@h", "u1@h", &v, &len), 1);
    ck_assert_int_eq(((unsigned char *)v)[0], 1);
    free(v);
    size_t n;
    ck_assert_int_eq(storage_archive_count(st, "big", "o@h", &n), 0);
    ck_assert_uint_eq(n, 83);
    /* One value larger than the whole map was a moment ago. */
    static unsigned char huge[3 * 1024 * 1024];
    ck_assert_int_eq(storage_kv_put(st, "big", "huge@h", huge, sizeof huge), 0);
}
END_TEST

/* A capped map grows up to its cap, then every kind of write says TERN_STORAGE_FULL, and what
 * was written before is all there (and room made by deleting is used again). */
START_TEST(test_capped_map_fills_up)
{
    storage_close(st);
    st = open_at(dir, 64 * 1024);
    storage_set_max_size(st, 1024 * 1024);
    static unsigned char chunk[20 * 1024];
    int rc = 0, kept = 0;
    for (int i = 0; i < 200 && rc == 0; i++) {
        rc = storage_archive_append(st, "big", "o@h", i, NULL, chunk, sizeof chunk, NULL);
        kept += rc == 0;
    }
    ck_assert_int_eq(rc, TERN_STORAGE_FULL);
    ck_assert_int_gt(kept, 20);
    ck_assert_int_lt(kept, 60);
    ck_assert_int_eq(storage_kv_put(st, "big", "u@h", chunk, sizeof chunk), TERN_STORAGE_FULL);
    ck_assert_int_eq(storage_map_put(st, "big", "o@h", "k", chunk, sizeof chunk),
                     TERN_STORAGE_FULL);
    size_t n;
    ck_assert_int_eq(storage_archive_count(st, "big", "o@h", &n), 0);
    ck_assert_uint_eq(n, (size_t)kept);
    ck_assert_int_le(storage_file_size(st), 1024 * 1024);
    ck_assert_int_eq(storage_archive_clear(st, "big", "o@h"), 0);
    /* LMDB reuses freed pages once no snapshot can see them: a commit or two later. */
    ck_assert_int_eq(storage_kv_put(st, "small", "u@h", "a", 1), 0);
    ck_assert_int_eq(storage_kv_put(st, "small", "u@h", "b", 1), 0);
    ck_assert_int_eq(storage_kv_put(st, "big", "u@h", chunk, sizeof chunk), 0);
}
END_TEST

/* Writes and bytes counted since open. */
static void write_stats(unsigned long long *writes, unsigned long long *bytes)
{
    storage_get_write_stats(st, writes, bytes, NULL);
}

/* storage_map_apply: puts and deletes in one call, all visible at once; a deleted key that is
 * absent is no error; each committed call is one write of owner + key + value bytes per
 * change. */
START_TEST(test_map_apply_puts_and_deletes)
{
    ck_assert_int_eq(storage_map_put(st, "roster", "al@x", "i a@h", "<item/>", 7), 0);
    ck_assert_int_eq(storage_map_put(st, "roster", "al@x", "i b@h", "<item/>", 7), 0);
    unsigned long long w0, b0, w1, b1;
    write_stats(&w0, &b0);
    const storage_map_change changes[] = {
        { "meta", "ver=3", 5 },
        { "i a@h", NULL, 0 },     /* delete */
        { "i c@h", "<c/>", 4 },   /* put */
        { "i nobody@h", NULL, 0 }, /* absent: not an error */
        { "empty", NULL, 0 },
    };
    ck_assert_int_eq(storage_map_apply(st, "roster", "al@x", changes, 5), 0);
    assert_map("roster", "al@x", "meta", "ver=3");
    assert_map("roster", "al@x", "i a@h", NULL);
    assert_map("roster", "al@x", "i b@h", "<item/>");
    assert_map("roster", "al@x", "i c@h", "<c/>");
    collect c = { 0 };
    ck_assert_int_eq(storage_map_each(st, "roster", "al@x", collect_map, &c), 0);
    ck_assert_str_eq(c.text, "i b@h=<item/>,i c@h=<c/>,meta=ver=3,");

    write_stats(&w1, &b1);
    ck_assert_uint_eq(w1 - w0, 1);
    /* owner "al@x" (4) per change + keys 4+5+5+10+5 + values 5+4 */
    ck_assert_uint_eq(b1 - b0, 5 * 4 + 29 + 9);

    /* An empty change list commits nothing and counts nothing. */
    ck_assert_int_eq(storage_map_apply(st, "roster", "al@x", NULL, 0), 0);
    write_stats(&w0, &b0);
    ck_assert_uint_eq(w0, w1);
    ck_assert_uint_eq(b0, b1);

    /* Every kind of write counts; a read does not. */
    ck_assert_int_eq(storage_kv_put(st, "vcard", "al@x", "abc", 3), 0);
    ck_assert_int_eq(storage_map_delete(st, "roster", "al@x", "meta"), 0);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, "vcard", "al@x", &v, &len), 1);
    free(v);
    write_stats(&w1, &b1);
    ck_assert_uint_eq(w1 - w0, 2);
    ck_assert_uint_eq(b1 - b0, (4 + 3) + (4 + 4));
}
END_TEST

/* All or none: a change that cannot be made (a key too long, or no room left under the cap)
 * fails the whole call, and none of its other changes is visible. */
START_TEST(test_map_apply_all_or_nothing)
{
    storage_close(st);
    st = open_at(dir, 64 * 1024);
    storage_set_max_size(st, 1024 * 1024);
    ck_assert_int_eq(storage_map_put(st, "roster", "al@x", "keep", "old", 3), 0);

    char long_key[600];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    const storage_map_change bad_key[] = {
        { "new", "1", 1 },
        { "keep", NULL, 0 },
        { long_key, "2", 1 },
    };
    unsigned long long w0, b0, w1, b1;
    write_stats(&w0, &b0);
    ck_assert_int_eq(storage_map_apply(st, "roster", "al@x", bad_key, 3), -1);
    assert_map("roster", "al@x", "new", NULL);
    assert_map("roster", "al@x", "keep", "old");

    /* The first changes fit; the last one does not: the transaction aborts whole. */
    static unsigned char chunk[600 * 1024];
    const storage_map_change too_big[] = {
        { "new", "1", 1 },
        { "keep", NULL, 0 },
        { "a", chunk, sizeof chunk },
        { "b", chunk, sizeof chunk },
    };
    ck_assert_int_eq(storage_map_apply(st, "roster", "al@x", too_big, 4), TERN_STORAGE_FULL);
    assert_map("roster", "al@x", "new", NULL);
    assert_map("roster", "al@x", "keep", "old");
    assert_map("roster", "al@x", "a", NULL);
    write_stats(&w1, &b1);
    ck_assert_uint_eq(w1, w0); /* nothing was committed, nothing counted */
    ck_assert_uint_eq(b1, b0);

    /* Survives a reopen: the committed state is the one before the failed calls. */
    storage_close(st);
    st = open_at(dir, 0);
    assert_map("roster", "al@x", "keep", "old");
    assert_map("roster", "al@x", "new", NULL);
}
END_TEST

static void *append_thread(void *arg)
{
    static unsigned char chunk[8 * 1024];
    intptr_t t = (intptr_t)arg;
    char owner[32];
    snprintf(owner, sizeof owner, "t%d@h", (int)t);
    for (int i = 0; i < 100; i++) {
        if (storage_archive_append(st, "log", owner, i, NULL, chunk, sizeof chunk, NULL) != 0)
            return (void *)1;
        void *v;
        size_t len;
        if (storage_kv_get(st, "s", "nobody@h", &v, &len) != 0)
            return (void *)1;
    }
    return NULL;
}

/* Worker threads writing at once while the map grows under them. */
START_TEST(test_threads_while_growing)
{
    storage_close(st);
    st = open_at(dir, 64 * 1024);
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, append_thread, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        ck_assert_ptr_null(res);
    }
    uint64_t id = 0;
    ck_assert_int_eq(storage_archive_append(st, "log", "last@h", 0, NULL, "", 0, &id), 0);
    ck_assert_uint_eq(id, 401);  /* 400 appends took 400 distinct ids */
    for (int i = 0; i < 4; i++) {
        char owner[32];
        size_t n;
        snprintf(owner, sizeof owner, "t%d@h", i);
        ck_assert_int_eq(storage_archive_count(st, "log", owner, &n), 0);
        ck_assert_uint_eq(n, 100);
    }
}
END_TEST

/* The per-owner item count stays exact through appends, deletes (also of absent ids), a
 * clear and an owner's deletion, and the max_items bound follows it (the queued append runs
 * at once here: no storage thread). */
static void append_done(void *ctx, int rc, uint64_t id)
{
    (void)id;
    *(int *)ctx = rc;
}

START_TEST(test_archive_count_stays_exact)
{
    const char *o = "cnt@h";
    size_t n;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(storage_archive_append(st, "log", o, i, NULL, "x", 1, NULL), 0);
    ck_assert_int_eq(storage_archive_count(st, "log", o, &n), 0);
    ck_assert_uint_eq(n, 5);
    struct storage_archive_query q = { .max = 1 };
    collect c;
    query(o, &q, &c);
    uint64_t first = strtoull(c.text, NULL, 10);
    ck_assert_int_eq(storage_archive_delete(st, "log", o, first), 0);
    ck_assert_int_eq(storage_archive_delete(st, "log", o, first), 0); /* absent: no change */
    ck_assert_int_eq(storage_archive_count(st, "log", o, &n), 0);
    ck_assert_uint_eq(n, 4);
    int rc = 1;
    storage_archive_append_async(st, "log", o, 5, NULL, "y", 1, 5, append_done, &rc);
    ck_assert_int_eq(rc, 0);
    storage_archive_append_async(st, "log", o, 6, NULL, "z", 1, 5, append_done, &rc);
    ck_assert_int_eq(rc, TERN_STORAGE_LIMIT);
    ck_assert_int_eq(storage_archive_clear(st, "log", o), 0);
    ck_assert_int_eq(storage_archive_count(st, "log", o, &n), 0);
    ck_assert_uint_eq(n, 0);
    storage_archive_append_async(st, "log", o, 7, NULL, "w", 1, 1, append_done, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(storage_delete_owner(st, o), 0);
    ck_assert_int_eq(storage_archive_count(st, "log", o, &n), 0);
    ck_assert_uint_eq(n, 0);
    storage_archive_append_async(st, "log", o, 8, NULL, "v", 1, 1, append_done, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(storage_archive_count(st, "log", o, &n), 0);
    ck_assert_uint_eq(n, 1);
}
END_TEST

static Suite *storage_suite(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("lmdb");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_open_creates_private_dir);
    tcase_add_test(tc, test_delete_owner_everywhere);
    tcase_add_test(tc, test_open_fails_with_reason);
    tcase_add_test(tc, test_kv_put_get_overwrite_delete);
    tcase_add_test(tc, test_kv_binary_and_empty_values);
    tcase_add_test(tc, test_kv_bad_keys);
    tcase_add_test(tc, test_kv_each_owner_domain);
    tcase_add_test(tc, test_kv_each_owner_many);
    tcase_add_test(tc, test_map_no_cross_talk);
    tcase_add_test(tc, test_map_each_many);
    tcase_add_test(tc, test_map_apply_puts_and_deletes);
    tcase_add_test(tc, test_map_apply_all_or_nothing);
    tcase_add_test(tc, test_archive_items_round_trip);
    tcase_add_test(tc, test_archive_queries);
    tcase_add_test(tc, test_archive_delete_clear_count_ids);
    tcase_add_test(tc, test_archive_many);
    tcase_add_test(tc, test_archive_count_stays_exact);
    tcase_add_test(tc, test_survives_close_and_reopen);
    tcase_add_test(tc, test_other_process_writes_are_visible);
    tcase_add_test(tc, test_other_process_grows_map);
    tcase_add_test(tc, test_map_grows_from_tiny);
    tcase_add_test(tc, test_capped_map_fills_up);
    tcase_add_test(tc, test_threads_while_growing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    strcpy(root, "/tmp/tern-test-storage-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(storage_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_dir(root);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
