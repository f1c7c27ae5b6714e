/* test_addr_limits.c — unit tests for the per-address limits (src/net/addr_limits.c): keys,
 * counting, and the login allowance. */
#include <check.h>
#include <stdlib.h>
#include <unistd.h>

#include "net/addr_limits.h"

static const addr_limit_settings limits = {
    .max_per_address = 4,
    .max_unauthenticated_per_address = 2,
    .max_unauthenticated = 3,
    .logins_per_second = 5,
};

START_TEST(test_keys)
{
    char key[ADDR_KEY_LEN];
    ck_assert(addr_key_from_peer("192.0.2.7:5222", key));
    ck_assert_str_eq(key, "192.0.2.7");
    /* An IPv6 host counts by its /64: it can pick any address in it. */
    ck_assert(addr_key_from_peer("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:40000", key));
    ck_assert_str_eq(key, "2001:db8:1:2::/64");
    ck_assert(addr_key_from_peer("[2001:db8:1:2::1]:1", key));
    ck_assert_str_eq(key, "2001:db8:1:2::/64");
    ck_assert(addr_key_from_peer("[::ffff:198.51.100.3]:80", key));
    ck_assert_str_eq(key, "198.51.100.3");
    ck_assert(!addr_key_from_peer("?:0", key));
    ck_assert(!addr_key_from_peer("", key));
    ck_assert(!addr_key_from_peer("[::1", key));
    ck_assert(!addr_key_from_peer("300.1.1.1:5", key));
}
END_TEST

START_TEST(test_counting)
{
    addr_limits *t = addr_limits_new();
    const char *why = NULL;
    unsigned conns, unauth, total;
    ck_assert(addr_limits_allow(t, "a", &limits, &why));
    addr_limits_add(t, "a");
    addr_limits_add(t, "a");
    /* Two unauthenticated from "a": the third is refused, and nothing is counted for it. */
    ck_assert(!addr_limits_allow(t, "a", &limits, &why));
    ck_assert_str_eq(why, "too many connections from this address that have not authenticated");
    addr_limits_counts(t, "a", &conns, &unauth, &total);
    ck_assert_uint_eq(conns, 2);
    ck_assert_uint_eq(unauth, 2);
    /* Authenticated connections count only against the per-address total. */
    addr_limits_authenticated(t, "a");
    addr_limits_authenticated(t, "a");
    for (int i = 0; i < 2; i++) {
        ck_assert(addr_limits_allow(t, "a", &limits, &why));
        addr_limits_add(t, "a");
        addr_limits_authenticated(t, "a");
    }
    ck_assert(!addr_limits_allow(t, "a", &limits, &why));
    ck_assert_str_eq(why, "too many connections from this address");
    /* Everyone's unauthenticated connections together. */
    addr_limits_add(t, "b");
    addr_limits_add(t, "c");
    addr_limits_add(t, ""); /* address unknown: only in the total */
    ck_assert(!addr_limits_allow(t, "d", &limits, &why));
    ck_assert_str_eq(why, "too many connections that have not authenticated");
    addr_limits_release(t, "", false);
    ck_assert(addr_limits_allow(t, "d", &limits, &why));
    addr_limits_release(t, "b", false);
    addr_limits_release(t, "a", true);
    addr_limits_counts(t, "a", &conns, &unauth, &total);
    ck_assert_uint_eq(conns, 3);
    ck_assert_uint_eq(unauth, 0);
    ck_assert_uint_eq(total, 1);
    addr_limits_counts(t, "b", &conns, &unauth, &total);
    ck_assert_uint_eq(conns, 0);
    addr_limits_free(t);
}
END_TEST

START_TEST(test_logins)
{
    addr_limits *t = addr_limits_new();
    /* A burst of twice the rate, then nothing until it refills at the rate. */
    for (int i = 0; i < 10; i++)
        ck_assert(addr_limits_login(t, "a", &limits));
    ck_assert(!addr_limits_login(t, "a", &limits));
    ck_assert(addr_limits_login(t, "b", &limits)); /* others are not affected */
    usleep(450 * 1000);
    ck_assert(addr_limits_login(t, "a", &limits)); /* ~2 tokens back */
    ck_assert(addr_limits_login(t, "a", &limits));
    ck_assert(!addr_limits_login(t, "a", &limits));
    /* Closing its connections does not reset an address's allowance. */
    addr_limits_add(t, "a");
    addr_limits_release(t, "a", false);
    ck_assert(!addr_limits_login(t, "a", &limits));
    addr_limits_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("addr_limits");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_counting);
    tcase_add_test(tc, test_logins);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
