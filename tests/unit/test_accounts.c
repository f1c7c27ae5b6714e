/* test_accounts.c — user accounts on a real storage directory: creation, duplicate refusal,
 * SCRAM credentials for both hashes checked against the right and wrong password, password
 * change, the disabled flag, deletion, listing by domain, and the stored record's layout. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/storage_env.h"
#include "xmpp/accounts.h"

#define ITER 4096  /* fewer than the default: the tests derive many keys */

static char root[64];
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

static void open_storage(void)
{
    char err[256] = "";
    st = storage_open(dir, 0, err, sizeof err);
    ck_assert_msg(st != NULL, "storage_open: %s", err);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    open_storage();
}

static void teardown(void)
{
    storage_close(st);
    remove_dir(dir);
}

/* Checks a password against the stored credentials of both mechanisms. */
static void assert_password(const char *bare, const char *password, bool expect)
{
    for (int h = 0; h < SCRAM_HASH_COUNT; h++) {
        scram_credentials cred;
        memset(&cred, 0xaa, sizeof cred);
        ck_assert_int_eq(account_get_credentials(st, bare, (scram_hash)h, &cred), 1);
        ck_assert_int_eq(cred.hash, h);
        ck_assert_msg(scram_check_password(&cred, password) == expect, "%s, %s: %s expected",
                      scram_hash_mech((scram_hash)h), password, expect ? "match" : "mismatch");
    }
}

START_TEST(test_create_and_credentials)
{
    ck_assert(!account_exists(st, "alice@a.test"));
    ck_assert_int_eq(account_create(st, "alice@a.test", "s3cret pass", ITER), ACCOUNT_OK);
    ck_assert(account_exists(st, "alice@a.test"));
    ck_assert(!account_exists(st, "alice@b.test"));
    ck_assert(!account_exists(st, "alic@a.test"));

    scram_credentials c1, c256;
    ck_assert_int_eq(account_get_credentials(st, "alice@a.test", SCRAM_SHA1, &c1), 1);
    ck_assert_int_eq(account_get_credentials(st, "alice@a.test", SCRAM_SHA256, &c256), 1);
    ck_assert_int_eq(c1.hash, SCRAM_SHA1);
    ck_assert_int_eq(c256.hash, SCRAM_SHA256);
    ck_assert_uint_eq(c1.iterations, ITER);
    ck_assert_uint_eq(c256.iterations, ITER);
    ck_assert_uint_ge(c1.salt_len, 16);
    ck_assert_uint_ge(c256.salt_len, 16);
    /* Fresh salts per mechanism. */
    ck_assert(c1.salt_len != c256.salt_len || memcmp(c1.salt, c256.salt, c1.salt_len) != 0);

    /* What was stored is exactly what the same password and salt derive. */
    scram_credentials again;
    ck_assert_int_eq(scram_derive(SCRAM_SHA256, "s3cret pass", c256.salt, c256.salt_len, ITER,
                                  &again), 0);
    ck_assert_mem_eq(again.stored_key, c256.stored_key, 32);
    ck_assert_mem_eq(again.server_key, c256.server_key, 32);
    ck_assert_int_eq(scram_derive(SCRAM_SHA1, "s3cret pass", c1.salt, c1.salt_len, ITER, &again),
                     0);
    ck_assert_mem_eq(again.stored_key, c1.stored_key, 20);
    ck_assert_mem_eq(again.server_key, c1.server_key, 20);

    assert_password("alice@a.test", "s3cret pass", true);
    assert_password("alice@a.test", "s3cret pas", false);
    assert_password("alice@a.test", "S3cret pass", false);

    ck_assert_int_eq(account_get_credentials(st, "nobody@a.test", SCRAM_SHA1, &c1), 0);
    ck_assert_int_eq(account_get_credentials(st, "nobody@a.test", SCRAM_SHA256, &c1), 0);
}
END_TEST

START_TEST(test_default_iterations)
{
    ck_assert_int_eq(account_create(st, "d@a.test", "pw", 0), ACCOUNT_OK);
    scram_credentials c;
    ck_assert_int_eq(account_get_credentials(st, "d@a.test", SCRAM_SHA256, &c), 1);
    ck_assert_uint_eq(c.iterations, SCRAM_DEFAULT_ITERATIONS);
}
END_TEST

START_TEST(test_duplicate_is_refused)
{
    ck_assert_int_eq(account_create(st, "bob@b.test", "first", ITER), ACCOUNT_OK);
    ck_assert_int_eq(account_create(st, "bob@b.test", "second", ITER), ACCOUNT_EXISTS);
    assert_password("bob@b.test", "first", true);   /* the refused create changed nothing */
    assert_password("bob@b.test", "second", false);
}
END_TEST

START_TEST(test_bad_passwords)
{
    ck_assert_int_eq(account_create(st, "c@a.test", "", ITER), ACCOUNT_BAD_PASSWORD);
    ck_assert_int_eq(account_create(st, "c@a.test", NULL, ITER), ACCOUNT_BAD_PASSWORD);
    /* RFC 4013 §2.3: control characters (RFC 3454 C.2.1) are prohibited. */
    ck_assert_int_eq(account_create(st, "c@a.test", "a\x07" "b", ITER), ACCOUNT_BAD_PASSWORD);
    /* RFC 4013 §2.1: SOFT HYPHEN maps to nothing, leaving an empty password. */
    ck_assert_int_eq(account_create(st, "c@a.test", "\xC2\xAD", ITER), ACCOUNT_BAD_PASSWORD);
    ck_assert(!account_exists(st, "c@a.test"));

    ck_assert_int_eq(account_create(st, "c@a.test", "good", ITER), ACCOUNT_OK);
    ck_assert_int_eq(account_set_password(st, "c@a.test", "", ITER), ACCOUNT_BAD_PASSWORD);
    assert_password("c@a.test", "good", true);
}
END_TEST

/* RFC 4013 §2.1: non-ASCII space maps to SPACE, so either spelling logs in. */
START_TEST(test_password_is_saslprepped)
{
    ck_assert_int_eq(account_create(st, "n@a.test", "a\xC2\xA0" "b", ITER), ACCOUNT_OK);
    assert_password("n@a.test", "a b", true);
}
END_TEST

START_TEST(test_set_password)
{
    ck_assert_int_eq(account_set_password(st, "e@a.test", "x", ITER), ACCOUNT_NOT_FOUND);
    ck_assert(!account_exists(st, "e@a.test"));
    ck_assert_int_eq(account_create(st, "e@a.test", "old password", ITER), ACCOUNT_OK);
    scram_credentials before, after;
    ck_assert_int_eq(account_get_credentials(st, "e@a.test", SCRAM_SHA256, &before), 1);
    ck_assert_int_eq(account_set_password(st, "e@a.test", "new password", ITER + 1), ACCOUNT_OK);
    assert_password("e@a.test", "old password", false);
    assert_password("e@a.test", "new password", true);
    ck_assert_int_eq(account_get_credentials(st, "e@a.test", SCRAM_SHA256, &after), 1);
    ck_assert_uint_eq(after.iterations, ITER + 1);
    ck_assert(memcmp(before.salt, after.salt, before.salt_len) != 0);
}
END_TEST

START_TEST(test_disabled_flag)
{
    ck_assert_int_eq(account_set_disabled(st, "f@a.test", true), ACCOUNT_NOT_FOUND);
    ck_assert(!account_is_disabled(st, "f@a.test"));
    ck_assert_int_eq(account_create(st, "f@a.test", "pw", ITER), ACCOUNT_OK);
    ck_assert(!account_is_disabled(st, "f@a.test"));
    ck_assert_int_eq(account_set_disabled(st, "f@a.test", true), ACCOUNT_OK);
    ck_assert(account_is_disabled(st, "f@a.test"));
    assert_password("f@a.test", "pw", true);  /* credentials untouched */
    /* A password change keeps the account disabled. */
    ck_assert_int_eq(account_set_password(st, "f@a.test", "pw2", ITER), ACCOUNT_OK);
    ck_assert(account_is_disabled(st, "f@a.test"));
    ck_assert_int_eq(account_set_disabled(st, "f@a.test", true), ACCOUNT_OK);
    ck_assert(account_is_disabled(st, "f@a.test"));
    ck_assert_int_eq(account_set_disabled(st, "f@a.test", false), ACCOUNT_OK);
    ck_assert(!account_is_disabled(st, "f@a.test"));
    assert_password("f@a.test", "pw2", true);
}
END_TEST

START_TEST(test_delete)
{
    ck_assert_int_eq(account_delete(st, "g@a.test"), ACCOUNT_NOT_FOUND);
    ck_assert_int_eq(account_create(st, "g@a.test", "pw", ITER), ACCOUNT_OK);
    ck_assert_int_eq(account_create(st, "g@a.testx", "pw", ITER), ACCOUNT_OK);
    ck_assert_int_eq(account_delete(st, "g@a.test"), ACCOUNT_OK);
    ck_assert(!account_exists(st, "g@a.test"));
    ck_assert(account_exists(st, "g@a.testx"));
    scram_credentials c;
    ck_assert_int_eq(account_get_credentials(st, "g@a.test", SCRAM_SHA1, &c), 0);
    ck_assert_int_eq(account_delete(st, "g@a.test"), ACCOUNT_NOT_FOUND);
    /* The name is free again. */
    ck_assert_int_eq(account_create(st, "g@a.test", "pw2", ITER), ACCOUNT_OK);
    assert_password("g@a.test", "pw2", true);
}
END_TEST

typedef struct names {
    char text[1024];
    int calls, stop_after;
} names;

static int collect_name(void *ctx, const char *bare)
{
    names *n = ctx;
    strcat(n->text, bare);
    strcat(n->text, ",");
    n->calls++;
    return n->stop_after && n->calls >= n->stop_after;
}

START_TEST(test_each)
{
    static const char *const jids[] = { "zed@a.test", "bob@b.test", "amy@a.test", "x@xa.test",
                                        "y@a.test.example" };
    for (size_t i = 0; i < sizeof jids / sizeof jids[0]; i++)
        ck_assert_int_eq(account_create(st, jids[i], "pw", ITER), ACCOUNT_OK);
    /* A host-keyed entry in the store is not an account. */
    ck_assert_int_eq(storage_kv_put(st, ACCOUNTS_STORE, "a.test", "x", 1), 0);

    names n = { 0 };
    ck_assert_int_eq(account_each(st, "a.test", collect_name, &n), 0);
    ck_assert_str_eq(n.text, "amy@a.test,zed@a.test,");
    memset(&n, 0, sizeof n);
    ck_assert_int_eq(account_each(st, "b.test", collect_name, &n), 0);
    ck_assert_str_eq(n.text, "bob@b.test,");
    memset(&n, 0, sizeof n);
    ck_assert_int_eq(account_each(st, "c.test", collect_name, &n), 0);
    ck_assert_str_eq(n.text, "");
    memset(&n, 0, sizeof n);
    n.stop_after = 1;
    ck_assert_int_eq(account_each(st, "a.test", collect_name, &n), 0);
    ck_assert_str_eq(n.text, "amy@a.test,");
}
END_TEST

/* The record layout documented in accounts.c: version, flags, then per hash id, iterations,
 * salt length, salt, StoredKey, ServerKey. */
START_TEST(test_record_layout)
{
    ck_assert_int_eq(account_create(st, "r@a.test", "pw", 0x00011234), ACCOUNT_OK);
    ck_assert_int_eq(account_set_disabled(st, "r@a.test", true), ACCOUNT_OK);
    scram_credentials c1, c256;
    ck_assert_int_eq(account_get_credentials(st, "r@a.test", SCRAM_SHA1, &c1), 1);
    ck_assert_int_eq(account_get_credentials(st, "r@a.test", SCRAM_SHA256, &c256), 1);
    void *v;
    size_t len;
    ck_assert_int_eq(storage_kv_get(st, ACCOUNTS_STORE, "r@a.test", &v, &len), 1);
    const unsigned char *p = v;
    ck_assert_uint_eq(len, 2 + 6 + c1.salt_len + 40 + 6 + c256.salt_len + 64);
    ck_assert_int_eq(p[0], 1);
    ck_assert_int_eq(p[1], 1);
    ck_assert_int_eq(p[2], SCRAM_SHA1);
    ck_assert_mem_eq(p + 3, "\x00\x01\x12\x34", 4);
    ck_assert_uint_eq(p[7], c1.salt_len);
    ck_assert_mem_eq(p + 8, c1.salt, c1.salt_len);
    ck_assert_mem_eq(p + 8 + c1.salt_len, c1.stored_key, 20);
    ck_assert_mem_eq(p + 28 + c1.salt_len, c1.server_key, 20);
    const unsigned char *q = p + 48 + c1.salt_len;
    ck_assert_int_eq(q[0], SCRAM_SHA256);
    ck_assert_mem_eq(q + 1, "\x00\x01\x12\x34", 4);
    ck_assert_uint_eq(q[5], c256.salt_len);
    ck_assert_mem_eq(q + 6 + c256.salt_len, c256.stored_key, 32);
    ck_assert_mem_eq(q + 38 + c256.salt_len, c256.server_key, 32);
    free(v);
}
END_TEST

START_TEST(test_unreadable_record)
{
    ck_assert_int_eq(storage_kv_put(st, ACCOUNTS_STORE, "bad@a.test", "\x01\x00\x00\x01", 4), 0);
    scram_credentials c;
    ck_assert_int_eq(account_get_credentials(st, "bad@a.test", SCRAM_SHA1, &c), -1);
    ck_assert(account_is_disabled(st, "bad@a.test"));  /* fails closed */
    ck_assert_int_eq(account_set_password(st, "bad@a.test", "pw", ITER), ACCOUNT_ERROR);
    ck_assert_int_eq(account_set_disabled(st, "bad@a.test", false), ACCOUNT_ERROR);
    ck_assert_int_eq(account_create(st, "bad@a.test", "pw", ITER), ACCOUNT_EXISTS);
    ck_assert_int_eq(storage_kv_put(st, ACCOUNTS_STORE, "v9@a.test", "\x09\x00", 2), 0);
    ck_assert_int_eq(account_get_credentials(st, "v9@a.test", SCRAM_SHA1, &c), -1);
    /* Deleting still works, so an operator can recover. */
    ck_assert_int_eq(account_delete(st, "bad@a.test"), ACCOUNT_OK);
}
END_TEST

START_TEST(test_survives_reopen)
{
    ck_assert_int_eq(account_create(st, "p@a.test", "persist", ITER), ACCOUNT_OK);
    ck_assert_int_eq(account_set_disabled(st, "p@a.test", true), ACCOUNT_OK);
    storage_close(st);
    open_storage();
    ck_assert(account_exists(st, "p@a.test"));
    ck_assert(account_is_disabled(st, "p@a.test"));
    assert_password("p@a.test", "persist", true);
}
END_TEST

START_TEST(test_result_text)
{
    ck_assert_str_eq(account_result_text(ACCOUNT_OK), "success");
    ck_assert_str_eq(account_result_text(ACCOUNT_ERROR), "storage error");
    ck_assert_str_eq(account_result_text(ACCOUNT_EXISTS), "account already exists");
    ck_assert_str_eq(account_result_text(ACCOUNT_NOT_FOUND), "no such account");
    ck_assert_str_eq(account_result_text(ACCOUNT_BAD_PASSWORD),
                     "password is empty or contains characters that are not allowed");
    ck_assert_str_eq(account_result_text((account_result)42), "unknown error");
}
END_TEST

START_TEST(test_bad_jid)
{
    ck_assert_int_eq(account_create(st, "", "pw", ITER), ACCOUNT_ERROR);
    ck_assert_int_eq(account_create(st, NULL, "pw", ITER), ACCOUNT_ERROR);
    ck_assert(!account_exists(st, ""));
}
END_TEST

static Suite *accounts_suite(void)
{
    Suite *s = suite_create("accounts");
    TCase *tc = tcase_create("accounts");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_create_and_credentials);
    tcase_add_test(tc, test_default_iterations);
    tcase_add_test(tc, test_duplicate_is_refused);
    tcase_add_test(tc, test_bad_passwords);
    tcase_add_test(tc, test_password_is_saslprepped);
    tcase_add_test(tc, test_set_password);
    tcase_add_test(tc, test_disabled_flag);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_each);
    tcase_add_test(tc, test_record_layout);
    tcase_add_test(tc, test_unreadable_record);
    tcase_add_test(tc, test_survives_reopen);
    tcase_add_test(tc, test_result_text);
    tcase_add_test(tc, test_bad_jid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Every test's directory lives under root, removed here: Check skips teardown when a test
     * fails. */
    strcpy(root, "/tmp/tern-test-accounts-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(accounts_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_dir(root);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
