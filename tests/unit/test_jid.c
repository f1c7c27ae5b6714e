/* test_jid.c — unit tests for JID parsing and preparation (src/jid.c, RFC 7622). */
#include "tern/jid.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Parses `text` and checks each prepared part (NULL = absent). */
static void expect_jid(const char *text, const char *node, const char *domain, const char *resource)
{
    tern_jid j;
    const char *why = NULL;
    ck_assert_msg(jid_parse(text, &j, &why) == 0, "'%s' rejected: %s", text, why ? why : "?");
    if (node)
        ck_assert_str_eq(j.node, node);
    else
        ck_assert_ptr_null(j.node);
    ck_assert_str_eq(j.domain, domain);
    if (resource)
        ck_assert_str_eq(j.resource, resource);
    else
        ck_assert_ptr_null(j.resource);
    jid_free(&j);
}

static void expect_invalid(const char *text)
{
    tern_jid j;
    const char *why = NULL;
    memset(&j, 0x5a, sizeof j);
    ck_assert_msg(jid_parse(text, &j, &why) == -1, "'%s' accepted", text);
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(j.storage_);
    ck_assert_ptr_null(j.full);
    ck_assert_ptr_null(j.domain);
}

/* RFC 7622 §3.5.1 examples of valid JIDs. */
START_TEST(rfc7622_valid_examples)
{
    expect_jid("juliet@example.com", "juliet", "example.com", NULL);
    expect_jid("juliet@example.com/foo", "juliet", "example.com", "foo");
    expect_jid("juliet@example.com/foo bar", "juliet", "example.com", "foo bar");
    expect_jid("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar");
    expect_jid("foo\\20bar@example.com", "foo\\20bar", "example.com", NULL);
    expect_jid("fussball@example.com", "fussball", "example.com", NULL);
    /* Divergence: PRECIS keeps "ß"; Nodeprep (stringprep B.2 case folding) maps it to "ss". */
    expect_jid("fu\xc3\x9f" "ball@example.com", "fussball", "example.com", NULL);
    expect_jid("\xcf\x80@example.com", "\xcf\x80", "example.com", NULL);           /* π */
    expect_jid("\xce\xa3@example.com/foo", "\xcf\x83", "example.com", "foo");       /* Σ → σ */
    expect_jid("\xcf\x83@example.com/foo", "\xcf\x83", "example.com", "foo");       /* σ */
    /* Divergence: PRECIS keeps final sigma "ς"; Nodeprep folds it to "σ". */
    expect_jid("\xcf\x82@example.com/foo", "\xcf\x83", "example.com", "foo");
    expect_jid("king@example.com/\xe2\x99\x9a", "king", "example.com", "\xe2\x99\x9a"); /* ♚ */
    expect_jid("example.com", NULL, "example.com", NULL);
    expect_jid("example.com/foobar", NULL, "example.com", "foobar");
    expect_jid("a.example.com/b@example.net", NULL, "a.example.com", "b@example.net");
}
END_TEST

/* RFC 7622 §3.5.2 examples of invalid JIDs, where the stringprep profiles agree. */
START_TEST(rfc7622_invalid_examples)
{
    expect_invalid("\"juliet\"@example.com");
    expect_invalid("foo bar@example.com");
    expect_invalid("juliet@example.com/");
    expect_invalid("@example.com/");
    expect_invalid("juliet@");
    expect_invalid("/foobar");
    /* Divergences (Nodeprep accepts what PRECIS IdentifierClass refuses):
     * "henry\u2163@example.com" — NFKC maps the Roman numeral to "iv";
     * "\u265a@example.com" — Nodeprep allows symbols in localparts. */
    expect_jid("henry\xe2\x85\xa3@example.com", "henryiv", "example.com", NULL);
    expect_jid("\xe2\x99\x9a@example.com", "\xe2\x99\x9a", "example.com", NULL);
}
END_TEST

START_TEST(bare_and_full_strings)
{
    tern_jid j;
    ck_assert_int_eq(jid_parse("Juliet@Example.COM/Balcony", &j, NULL), 0);
    ck_assert_str_eq(j.bare, "juliet@example.com");
    ck_assert_str_eq(j.full, "juliet@example.com/Balcony"); /* resourceprep keeps case */
    jid_free(&j);
    ck_assert_ptr_null(j.storage_);
    jid_free(&j); /* safe on a zeroed jid */

    ck_assert_int_eq(jid_parse("Example.com", &j, NULL), 0);
    ck_assert_str_eq(j.bare, "example.com");
    ck_assert_str_eq(j.full, "example.com");
    jid_free(&j);

    ck_assert_int_eq(jid_parse("example.com/r", &j, NULL), 0);
    ck_assert_str_eq(j.bare, "example.com");
    ck_assert_str_eq(j.full, "example.com/r");
    jid_free(&j);
}
END_TEST

START_TEST(split_rules)
{
    /* The resource is everything after the first '/', even another '/' or '@'. */
    expect_jid("a@b/c/d@e", "a", "b", "c/d@e");
    expect_jid("b/c@d", NULL, "b", "c@d");
    /* "a@b@c": node "a", domain "b@c", which is not a valid domain. */
    expect_invalid("a@b@c");
    expect_invalid("@example.com");
    expect_invalid("user@");
    expect_invalid("");
    expect_invalid("/");
    expect_invalid("@");
    expect_invalid("u@/r");
}
END_TEST

START_TEST(domains)
{
    expect_jid("u@EXAMPLE.Com", "u", "example.com", NULL);
    expect_jid("u@example.com.", "u", "example.com", NULL);
    expect_jid("u@J\xc3\x9cRGEN.example", "u", "j\xc3\xbcrgen.example", NULL);
    /* A-labels are kept in Unicode form so both spellings are one domain. */
    expect_jid("u@xn--jrgen-kva.example", "u", "j\xc3\xbcrgen.example", NULL);
    expect_jid("u@XN--JRGEN-KVA.Example", "u", "j\xc3\xbcrgen.example", NULL);
    /* U+3002 ideographic full stop is a label separator under UTS#46. */
    expect_jid("u@example\xe3\x80\x82" "com", "u", "example.com", NULL);
    expect_jid("u@127.0.0.1", "u", "127.0.0.1", NULL);
    expect_jid("u@[::1]/r", "u", "[::1]", "r");
    expect_jid("u@[0:0:0:0:0:0:0:1]", "u", "[::1]", NULL);
    expect_jid("[2001:DB8::1]", NULL, "[2001:db8::1]", NULL);
    expect_jid("a-b.c9.example", NULL, "a-b.c9.example", NULL);

    expect_invalid("u@[::1");
    expect_invalid("u@[127.0.0.1]");
    expect_invalid("u@[]");
    expect_invalid("u@::1");
    expect_invalid("u@exa mple.com");
    expect_invalid("u@example..com");
    expect_invalid("u@.example.com");
    expect_invalid("u@example.com..");
    expect_invalid("u@.");
    expect_invalid("u@-example.com");
    expect_invalid("u@example-.com");
    expect_invalid("u@ex_ample.com");
    expect_invalid("u@xn--abc.example");                 /* invalid A-label */
    expect_invalid("u@xn--rnkk.example");                /* decodes to disallowed code points */
    expect_invalid("u@b\xef\xbc\xa0" "c");                /* fullwidth '@' maps to '@' */
    expect_invalid("u@\xff.example");                    /* not UTF-8 */
    char label64[80];
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".com");
    expect_invalid(label64);
    memmove(label64 + 63, label64 + 64, strlen(label64 + 64) + 1); /* 63 octets: fine */
    expect_jid(label64, NULL, label64, NULL);
}
END_TEST

START_TEST(nodes_and_resources)
{
    expect_jid("j\xc3\xbcrgen@example.com", "j\xc3\xbcrgen", "example.com", NULL);
    expect_jid("J\xc3\x9cRGEN@example.com", "j\xc3\xbcrgen", "example.com", NULL);
    expect_jid("u\xc2\xad" "ser@example.com", "user", "example.com", NULL); /* soft hyphen: gone */
    expect_invalid("\xc2\xad@example.com");     /* localpart empty after preparation */
    expect_invalid("foo\tbar@example.com");
    expect_invalid("foo\xc2\xa0" "bar@example.com"); /* no-break space */
    expect_invalid(" foo@example.com");
    expect_invalid("a:b@example.com");
    expect_invalid("a<b@example.com");
    expect_invalid("a&b@example.com");
    expect_invalid("a'b@example.com");
    expect_invalid("\xc3@example.com");         /* truncated UTF-8 */
    expect_invalid("\xc0\x80@example.com");     /* overlong */
    expect_invalid("\xed\xa0\x80@example.com"); /* surrogate */
    expect_invalid("u@example.com/a\x01");      /* control character in resource */
    expect_invalid("u@example.com/\xff");
}
END_TEST

static char *repeat(const char *unit, size_t times, const char *prefix, const char *suffix)
{
    size_t ul = strlen(unit), pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + ul * times + sl + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + ul * times, suffix, sl + 1);
    return s;
}

START_TEST(length_limits)
{
    tern_jid j;
    char *s = repeat("a", 1023, "", "@example.com");
    ck_assert_int_eq(jid_parse(s, &j, NULL), 0);
    ck_assert_uint_eq(strlen(j.node), 1023);
    jid_free(&j);
    free(s);
    s = repeat("a", 1024, "", "@example.com");
    expect_invalid(s);
    free(s);
    /* Limits apply after preparation: 1023 letters plus a soft hyphen (mapped to nothing). */
    s = repeat("a", 1023, "", "\xc2\xad@example.com");
    ck_assert_int_eq(jid_parse(s, &j, NULL), 0);
    ck_assert_uint_eq(strlen(j.node), 1023);
    jid_free(&j);
    free(s);
    s = repeat("\xc3\xbc", 512, "", "@example.com"); /* 1024 bytes */
    expect_invalid(s);
    free(s);

    s = repeat("r", 1023, "u@example.com/", "");
    ck_assert_int_eq(jid_parse(s, &j, NULL), 0);
    ck_assert_uint_eq(strlen(j.resource), 1023);
    ck_assert_uint_eq(strlen(j.full), strlen("u@example.com/") + 1023);
    jid_free(&j);
    free(s);
    s = repeat("r", 1024, "u@example.com/", "");
    expect_invalid(s);
    free(s);

    /* Domain: 16 labels of 63 octets and 15 dots = 1023 octets; one more octet is too long. */
    char domain[1100];
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        if (i)
            domain[n++] = '.';
        memset(domain + n, 'd', 63);
        n += 63;
    }
    domain[n] = '\0';
    ck_assert_uint_eq(n, 1023);
    ck_assert_int_eq(jid_parse(domain, &j, NULL), 0);
    ck_assert_uint_eq(strlen(j.domain), 1023);
    jid_free(&j);
    strcpy(domain + n, "."); /* the final dot is stripped first */
    ck_assert_int_eq(jid_parse(domain, &j, NULL), 0);
    ck_assert_uint_eq(strlen(j.domain), 1023);
    jid_free(&j);
    strcpy(domain + n, ".e");
    expect_invalid(domain);
}
END_TEST

START_TEST(from_parts)
{
    tern_jid j;
    const char *why = NULL;
    ck_assert_int_eq(jid_from_parts("Romeo", "Example.NET", "Orchard", &j, &why), 0);
    ck_assert_str_eq(j.full, "romeo@example.net/Orchard");
    jid_free(&j);
    ck_assert_int_eq(jid_from_parts(NULL, "example.net", NULL, &j, &why), 0);
    ck_assert_str_eq(j.full, "example.net");
    ck_assert_ptr_null(j.node);
    ck_assert_ptr_null(j.resource);
    jid_free(&j);
    ck_assert_int_eq(jid_from_parts("", "example.net", NULL, &j, &why), -1);
    ck_assert_int_eq(jid_from_parts("a", "", NULL, &j, &why), -1);
    ck_assert_int_eq(jid_from_parts("a", NULL, NULL, &j, &why), -1);
    ck_assert_int_eq(jid_from_parts("a", "example.net", "", &j, &why), -1);
    ck_assert_int_eq(jid_from_parts("a b", "example.net", NULL, &j, &why), -1);
    ck_assert_ptr_null(j.storage_);

    char *out = NULL;
    ck_assert_int_eq(jid_prep_node("ROMEO", &out), 0);
    ck_assert_str_eq(out, "romeo");
    free(out);
    ck_assert_int_eq(jid_prep_node("a@b", &out), -1);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(jid_prep_resource("Home Office", &out), 0);
    ck_assert_str_eq(out, "Home Office");
    free(out);
    ck_assert_int_eq(jid_prep_domain("Example.ORG.", &out), 0);
    ck_assert_str_eq(out, "example.org");
    free(out);
    ck_assert_int_eq(jid_prep_domain("b@c", &out), -1);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(equality_copy_bare)
{
    tern_jid a, b, c, d;
    ck_assert_int_eq(jid_parse("Juliet@EXAMPLE.com/balcony", &a, NULL), 0);
    ck_assert_int_eq(jid_parse("juliet@example.com./balcony", &b, NULL), 0);
    ck_assert_int_eq(jid_parse("juliet@example.com/Balcony", &c, NULL), 0);
    ck_assert(jid_equal(&a, &b));
    ck_assert(!jid_equal(&a, &c)); /* resources are case-sensitive */
    ck_assert(jid_equal_bare(&a, &c));

    jid_copy(&d, &a);
    ck_assert(d.storage_ != a.storage_);
    ck_assert(jid_equal(&d, &a));
    ck_assert_str_eq(d.node, "juliet");
    ck_assert_str_eq(d.resource, "balcony");
    jid_free(&a); /* the copy stays valid */
    ck_assert_str_eq(d.full, "juliet@example.com/balcony");

    tern_jid bare;
    jid_bare(&bare, &d);
    ck_assert_str_eq(bare.full, "juliet@example.com");
    ck_assert_str_eq(bare.bare, "juliet@example.com");
    ck_assert_ptr_null(bare.resource);
    ck_assert(!jid_equal(&bare, &d));
    ck_assert(jid_equal_bare(&bare, &d));

    tern_jid other, domain_only;
    ck_assert_int_eq(jid_parse("romeo@example.com/balcony", &other, NULL), 0);
    ck_assert(!jid_equal_bare(&other, &d));
    ck_assert_int_eq(jid_parse("example.com", &domain_only, NULL), 0);
    ck_assert(!jid_equal_bare(&domain_only, &bare));

    tern_jid zero = { 0 }, zcopy;
    jid_copy(&zcopy, &zero);
    ck_assert_ptr_null(zcopy.storage_);
    ck_assert(!jid_equal(&zero, &d));

    jid_free(&b);
    jid_free(&c);
    jid_free(&d);
    jid_free(&bare);
    jid_free(&other);
    jid_free(&domain_only);
}
END_TEST

/* Garbage never crashes (ASan/UBSan watch this): a deterministic pseudo-random byte soup, biased
 * toward the separators and UTF-8 lead bytes the parser cares about. */
START_TEST(garbage_never_crashes)
{
    static const unsigned char alphabet[] = { '@', '/', '.', '[', ']', ':', 'a', 'Z', '0', '-',
                                              ' ', 0x80, 0xc3, 0xbc, 0xe2, 0xf0, 0xff, 0xad, 0xc2,
                                              0x01, 'x', 'n' };
    unsigned seed = 12345;
    char buf[64];
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % (sizeof buf - 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (char)alphabet[(seed >> 16) % sizeof alphabet];
        }
        buf[len] = '\0';
        tern_jid j;
        const char *why = NULL;
        if (jid_parse(buf, &j, &why) == 0) {
            accepted++;
            /* A prepared JID is stable under re-preparation. */
            tern_jid again;
            ck_assert_int_eq(jid_parse(j.full, &again, NULL), 0);
            ck_assert_str_eq(again.full, j.full);
            jid_free(&again);
            jid_free(&j);
        } else {
            ck_assert_ptr_nonnull(why);
        }
    }
    ck_assert_int_gt(accepted, 0);
}
END_TEST

static Suite *jid_suite(void)
{
    Suite *s = suite_create("jid");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rfc7622_valid_examples);
    tcase_add_test(tc, rfc7622_invalid_examples);
    tcase_add_test(tc, bare_and_full_strings);
    tcase_add_test(tc, split_rules);
    tcase_add_test(tc, domains);
    tcase_add_test(tc, nodes_and_resources);
    tcase_add_test(tc, length_limits);
    tcase_add_test(tc, from_parts);
    tcase_add_test(tc, equality_copy_bare);
    tcase_add_test(tc, garbage_never_crashes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jid_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
