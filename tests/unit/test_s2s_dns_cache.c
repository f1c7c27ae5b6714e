/* test_s2s_dns_cache.c — the s2s resolver's cache: answers expire by their TTL (bounded to
 * 30 s .. 1 h), expired entries are removed, and a full cache drops its least recently used
 * domain first. Time is passed in, so nothing here sleeps. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/s2s_dns_cache.h"

#define SEC 1000ull

/* An address whose text says which domain and which index it is. */
static s2s_addr addr(const char *domain, int i)
{
    s2s_addr a;
    memset(&a, 0, sizeof a);
    snprintf(a.text, sizeof a.text, "%s#%d", domain, i);
    return a;
}

/* The first cached address's text of `domain` at `now`, or "" when there is none. */
static const char *first(s2s_dns_cache *c, const char *domain, uint64_t now)
{
    static s2s_addr out[4];
    if (s2s_dns_cache_get(c, domain, now, out, 4) == 0)
        return "";
    return out[0].text;
}

static void put1(s2s_dns_cache *c, const char *domain, unsigned ttl, uint64_t now)
{
    s2s_addr a = addr(domain, 0);
    s2s_dns_cache_put(c, domain, &a, 1, ttl, now);
}

START_TEST(entries_expire_by_their_ttl)
{
    s2s_dns_cache *c = s2s_dns_cache_new(8);
    uint64_t t0 = 1000 * SEC;
    put1(c, "a.example", 120, t0);
    ck_assert_str_eq(first(c, "a.example", t0 + 119 * SEC), "a.example#0");
    ck_assert_str_eq(first(c, "a.example", t0 + 120 * SEC), "");
    /* The expired entry was removed, not just hidden. */
    ck_assert_uint_eq(s2s_dns_cache_count(c), 0);
    s2s_dns_cache_free(c);
}
END_TEST

START_TEST(ttl_is_bounded)
{
    s2s_dns_cache *c = s2s_dns_cache_new(8);
    uint64_t t0 = 1000 * SEC;
    put1(c, "zero.example", 0, t0);
    put1(c, "day.example", 86400, t0);
    ck_assert_str_eq(first(c, "zero.example", t0 + (S2S_DNS_CACHE_MIN_TTL - 1) * SEC),
                     "zero.example#0");
    ck_assert_str_eq(first(c, "zero.example", t0 + S2S_DNS_CACHE_MIN_TTL * SEC), "");
    ck_assert_str_eq(first(c, "day.example", t0 + (S2S_DNS_CACHE_MAX_TTL - 1) * SEC),
                     "day.example#0");
    ck_assert_str_eq(first(c, "day.example", t0 + S2S_DNS_CACHE_MAX_TTL * SEC), "");
    s2s_dns_cache_free(c);
}
END_TEST

START_TEST(a_store_removes_every_expired_entry)
{
    s2s_dns_cache *c = s2s_dns_cache_new(100);
    uint64_t t0 = 1000 * SEC;
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "short%d.example", i);
        put1(c, name, 60, t0);
    }
    put1(c, "long.example", 600, t0);
    ck_assert_uint_eq(s2s_dns_cache_count(c), 51);
    /* Nobody asks for the short-lived ones again; the next store clears them out. */
    put1(c, "new.example", 60, t0 + 61 * SEC);
    ck_assert_uint_eq(s2s_dns_cache_count(c), 2);
    ck_assert_str_eq(first(c, "long.example", t0 + 61 * SEC), "long.example#0");
    ck_assert_str_eq(first(c, "new.example", t0 + 61 * SEC), "new.example#0");
    s2s_dns_cache_free(c);
}
END_TEST

START_TEST(a_full_cache_drops_the_least_recently_used)
{
    s2s_dns_cache *c = s2s_dns_cache_new(3);
    uint64_t t0 = 1000 * SEC;
    put1(c, "a.example", 600, t0);
    put1(c, "b.example", 600, t0 + 1);
    put1(c, "c.example", 600, t0 + 2);
    /* a is used again, so b is now the least recently used. */
    ck_assert_str_eq(first(c, "a.example", t0 + 3), "a.example#0");
    put1(c, "d.example", 600, t0 + 4);
    ck_assert_uint_eq(s2s_dns_cache_count(c), 3);
    ck_assert_str_eq(first(c, "b.example", t0 + 5), "");
    ck_assert_str_eq(first(c, "a.example", t0 + 5), "a.example#0");
    ck_assert_str_eq(first(c, "c.example", t0 + 5), "c.example#0");
    ck_assert_str_eq(first(c, "d.example", t0 + 5), "d.example#0");
    /* Thousands of domains never grow it past its cap. */
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "many%d.example", i);
        put1(c, name, 600, t0 + 10 + (uint64_t)i);
        ck_assert_uint_le(s2s_dns_cache_count(c), 3);
    }
    ck_assert_str_eq(first(c, "many4999.example", t0 + 6000), "many4999.example#0");
    ck_assert_str_eq(first(c, "many4996.example", t0 + 6000), "");
    s2s_dns_cache_free(c);
}
END_TEST

START_TEST(expired_entries_go_before_live_ones)
{
    s2s_dns_cache *c = s2s_dns_cache_new(3);
    uint64_t t0 = 1000 * SEC;
    put1(c, "old-live.example", 3600, t0);       /* least recently used, but live */
    put1(c, "expiring.example", 30, t0 + 1);
    put1(c, "live.example", 3600, t0 + 2);
    put1(c, "new.example", 3600, t0 + 31 * SEC); /* expiring.example has expired by now */
    ck_assert_uint_eq(s2s_dns_cache_count(c), 3);
    ck_assert_str_eq(first(c, "old-live.example", t0 + 32 * SEC), "old-live.example#0");
    ck_assert_str_eq(first(c, "live.example", t0 + 32 * SEC), "live.example#0");
    ck_assert_str_eq(first(c, "new.example", t0 + 32 * SEC), "new.example#0");
    s2s_dns_cache_free(c);
}
END_TEST

START_TEST(a_new_answer_replaces_the_old_one)
{
    s2s_dns_cache *c = s2s_dns_cache_new(4);
    uint64_t t0 = 1000 * SEC;
    s2s_addr two[2] = { addr("x.example", 0), addr("x.example", 1) };
    s2s_dns_cache_put(c, "x.example", two, 2, 60, t0);
    s2s_addr out[4];
    ck_assert_uint_eq(s2s_dns_cache_get(c, "x.example", t0, out, 4), 2);
    ck_assert_str_eq(out[1].text, "x.example#1");
    /* Only as many as the caller has room for. */
    ck_assert_uint_eq(s2s_dns_cache_get(c, "x.example", t0, out, 1), 1);
    s2s_addr moved = addr("x.example", 7);
    s2s_dns_cache_put(c, "x.example", &moved, 1, 600, t0 + 50 * SEC);
    ck_assert_uint_eq(s2s_dns_cache_count(c), 1);
    ck_assert_uint_eq(s2s_dns_cache_get(c, "x.example", t0 + 100 * SEC, out, 4), 1);
    ck_assert_str_eq(out[0].text, "x.example#7");
    /* An empty answer is not cached. */
    s2s_dns_cache_put(c, "none.example", NULL, 0, 600, t0);
    ck_assert_uint_eq(s2s_dns_cache_count(c), 1);
    s2s_dns_cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("s2s_dns_cache");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, entries_expire_by_their_ttl);
    tcase_add_test(tc, ttl_is_bounded);
    tcase_add_test(tc, a_store_removes_every_expired_entry);
    tcase_add_test(tc, a_full_cache_drops_the_least_recently_used);
    tcase_add_test(tc, expired_entries_go_before_live_ones);
    tcase_add_test(tc, a_new_answer_replaces_the_old_one);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
