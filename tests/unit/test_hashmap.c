/* test_hashmap.c — the routing table's hash map: insert, replace, remove with backward shift
 * (every remaining key must stay findable), growth, iteration. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hashmap.h"

START_TEST(put_get_replace_remove)
{
    hashmap *m = hashmap_new();
    int a = 1, b = 2;
    ck_assert_ptr_null(hashmap_put(m, "alice@localhost", &a));
    ck_assert_ptr_eq(hashmap_get(m, "alice@localhost"), &a);
    ck_assert_ptr_eq(hashmap_put(m, "alice@localhost", &b), &a);
    ck_assert_ptr_eq(hashmap_get(m, "alice@localhost"), &b);
    ck_assert_uint_eq(hashmap_count(m), 1);
    ck_assert_ptr_null(hashmap_get(m, "bob@localhost"));
    ck_assert_ptr_eq(hashmap_remove(m, "alice@localhost"), &b);
    ck_assert_ptr_null(hashmap_remove(m, "alice@localhost"));
    ck_assert_uint_eq(hashmap_count(m), 0);
    hashmap_free(m);
}
END_TEST

/* Many keys, removed in an interleaved order: after each removal every other key that is
 * still in the map must be found (this is what backward-shift deletion can break). */
START_TEST(removal_keeps_probe_chains_intact)
{
    enum { N = 2000 };
    static int values[N];
    char key[32];
    hashmap *m = hashmap_new();
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "user%d@host", i);
        hashmap_put(m, key, &values[i]);
    }
    ck_assert_uint_eq(hashmap_count(m), N);
    for (int step = 0; step < 3; step++) {
        for (int i = step; i < N; i += 3) {
            snprintf(key, sizeof key, "user%d@host", i);
            ck_assert_ptr_eq(hashmap_remove(m, key), &values[i]);
        }
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof key, "user%d@host", i);
            bool removed = i % 3 <= step;
            if (removed)
                ck_assert_ptr_null(hashmap_get(m, key));
            else
                ck_assert_ptr_eq(hashmap_get(m, key), &values[i]);
        }
    }
    ck_assert_uint_eq(hashmap_count(m), 0);
    hashmap_free(m);
}
END_TEST

static void count_entries(void *ctx, const char *key, void *value)
{
    (void)key;
    (void)value;
    (*(int *)ctx)++;
}

START_TEST(each_visits_every_entry_once)
{
    hashmap *m = hashmap_new();
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        hashmap_put(m, key, m);
    }
    int n = 0;
    hashmap_each(m, count_entries, &n);
    ck_assert_int_eq(n, 100);
    hashmap_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hashmap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, put_get_replace_remove);
    tcase_add_test(tc, removal_keeps_probe_chains_intact);
    tcase_add_test(tc, each_visits_every_entry_once);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
