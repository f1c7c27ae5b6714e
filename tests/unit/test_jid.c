/* test_jid.c — unit tests for JID parsing and preparation (src/core/jid.c, RFC 7622). */
#include "tern/jid.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jid_prep.h"

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

/* ---- the ASCII fast path gives exactly the libidn/libidn2 result (src/core/jid_prep.h) ---- */

typedef enum part_kind { NODE, DOMAIN, RESOURCE } part_kind;
static const char *const kind_names[] = { "node", "domain", "resource" };

static int slow_prep(part_kind kind, const char *in, char **out)
{
    return kind == NODE ? jid_prep_node_slow(in, out)
           : kind == DOMAIN ? jid_prep_domain_slow(in, out)
                            : jid_prep_resource_slow(in, out);
}

static int public_prep(part_kind kind, const char *in, char **out)
{
    return kind == NODE ? jid_prep_node(in, out)
           : kind == DOMAIN ? jid_prep_domain(in, out)
                            : jid_prep_resource(in, out);
}

/* Checks that the fast path, when it answers, answers like the slow path, and that the public
 * function (fast path, then slow) answers like the slow path always. Returns whether the fast
 * path answered. */
static bool check_agree(part_kind kind, const char *in)
{
    size_t len = strlen(in);
    char *slow = NULL, *pub = NULL;
    int slow_rc = slow_prep(kind, in, &slow);
    int pub_rc = public_prep(kind, in, &pub);
    ck_assert_msg(pub_rc == slow_rc, "%s '%.80s' (%zu bytes): slow %d, public %d",
                  kind_names[kind], in, len, slow_rc, pub_rc);
    if (slow_rc == 0)
        ck_assert_msg(strcmp(pub, slow) == 0, "%s '%.80s': slow '%.80s', public '%.80s'",
                      kind_names[kind], in, slow, pub);
    else
        ck_assert_ptr_null(pub);

    char *buf = malloc(TERN_JID_PART_MAX + 1);
    ck_assert_ptr_nonnull(buf);
    size_t out_len = 0;
    jid_fast fast = kind == NODE     ? jid_fast_node(in, len, buf)
                    : kind == DOMAIN ? jid_fast_domain(in, len, buf, &out_len)
                                     : jid_fast_resource(in, len);
    if (fast != JID_FAST_UNSURE) {
        ck_assert_msg((fast == JID_FAST_OK) == (slow_rc == 0),
                      "%s '%.80s' (%zu bytes): slow %d, fast %d", kind_names[kind], in, len,
                      slow_rc, (int)fast);
        if (fast == JID_FAST_OK) {
            const char *got = kind == RESOURCE ? in : buf;
            ck_assert_msg(strcmp(got, slow) == 0, "%s '%.80s': slow '%.80s', fast '%.80s'",
                          kind_names[kind], in, slow, got);
            if (kind == DOMAIN)
                ck_assert_uint_eq(out_len, strlen(slow));
        }
    }
    free(buf);
    free(slow);
    free(pub);
    return fast != JID_FAST_UNSURE;
}

/* Every ASCII byte alone, and inside, before and after ordinary text, in each part. */
START_TEST(fast_path_every_ascii_byte)
{
    static const char *const frames[][2] = { { "", "" },     { "ab", "cd" }, { "x", "" },
                                             { "", "y.com" }, { "a.", "" },   { "xn--", "" } };
    for (part_kind kind = NODE; kind <= RESOURCE; kind++) {
        int decided = 0, total = 0;
        for (int c = 0x01; c <= 0x7f; c++)
            for (size_t f = 0; f < sizeof frames / sizeof frames[0]; f++) {
                char in[32];
                snprintf(in, sizeof in, "%s%c%s", frames[f][0], c, frames[f][1]);
                decided += check_agree(kind, in);
                total++;
            }
        /* Node and resource parts made of ASCII never need libidn; domains do only for IP
         * literals ("[", digits and dots) and A-labels ("xn--"). */
        if (kind == DOMAIN)
            ck_assert_int_gt(decided, total * 3 / 4);
        else
            ck_assert_int_eq(decided, total);
    }
}
END_TEST

static unsigned rng_state;

static unsigned rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) & 0x7fff;
}

/* Appends one random piece to s (at most 8 bytes): mostly ASCII, sometimes a separator or
 * label rule's edge, sometimes UTF-8 the fast path must hand over (soft hyphen, combining
 * long solidus overlay, ß, ü, ideographic full stop, fullwidth '@', a stray byte). */
static size_t random_piece(char *s, bool ascii_only)
{
    static const char *const pieces[] = { "\xc2\xad", "\xcc\xb8", "\xc3\x9f", "\xc3\xbc",
                                          "\xe3\x80\x82", "\xef\xbc\xa0", "\xff", "xn--",
                                          "XN--", ".", "-", "[", "]", "::1", "1.2" };
    unsigned r = rng() % 100;
    if (r < 55) { /* letters and digits: the common case */
        static const char common[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        s[0] = common[rng() % (sizeof common - 1)];
        return 1;
    }
    if (r < 85 || ascii_only) { /* any ASCII byte but NUL */
        s[0] = (char)(1 + rng() % 0x7f);
        return 1;
    }
    const char *p = pieces[rng() % (sizeof pieces / sizeof pieces[0])];
    size_t n = strlen(p);
    memcpy(s, p, n);
    return n;
}

/* A string of about `len` bytes (exactly `len` when ascii_only). */
static char *random_string(size_t len, bool ascii_only)
{
    char *s = malloc(len + 16);
    ck_assert_ptr_nonnull(s);
    size_t n = 0;
    while (n < len)
        n += random_piece(s + n, ascii_only);
    s[ascii_only ? len : n] = '\0';
    return s;
}

/* A domain-shaped ASCII string of exactly `len` bytes: LDH labels of 1..63 bytes (sometimes 64)
 * separated by dots, maybe a final dot, maybe one odd byte. */
static char *random_domain(size_t len)
{
    static const char ldh[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
    char *s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    size_t label = 0, max_label = 1 + rng() % 64;
    for (size_t i = 0; i < len; i++) {
        if (label > 0 && (label == max_label || rng() % 16 == 0)) {
            s[i] = '.';
            label = 0;
            max_label = 1 + rng() % 64;
        } else {
            s[i] = ldh[rng() % (sizeof ldh - 1)];
            label++;
        }
    }
    if (len > 0 && rng() % 4 == 0)
        s[len - 1] = '.';
    if (len > 0 && rng() % 8 == 0)
        s[rng() % len] = (char)(1 + rng() % 0x7f);
    s[len] = '\0';
    return s;
}

START_TEST(fast_path_random_parts)
{
    static const size_t edge_lengths[] = { 1, 2, 3, 4, 5, 62, 63, 64, 65, 1022, 1023, 1024, 1025 };
    rng_state = 20240611;
    for (part_kind kind = NODE; kind <= RESOURCE; kind++) {
        int decided = 0, total = 0;
        for (int iter = 0; iter < 6000; iter++) {
            size_t len = iter % 3 == 0 ? edge_lengths[rng() % (sizeof edge_lengths / sizeof edge_lengths[0])]
                                       : 1 + rng() % 40;
            bool ascii_only = iter % 2 == 0;
            char *s = kind == DOMAIN && iter % 4 < 2 ? random_domain(len) : random_string(len, ascii_only);
            decided += check_agree(kind, s);
            total++;
            /* The same text in upper case, lower case, and with an empty and a one-byte
             * neighbour, which catch case mapping and off-by-one length errors. */
            for (char *p = s; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 'a' + 'A');
            decided += check_agree(kind, s);
            total++;
            free(s);
        }
        check_agree(kind, "");
        ck_assert_int_gt(decided, total / 3);
    }
}
END_TEST

/* Lengths 1023, 1024 and 1025 of text every part accepts, with a final dot for domains. */
START_TEST(fast_path_length_edges)
{
    for (part_kind kind = NODE; kind <= RESOURCE; kind++)
        for (size_t len = 1020; len <= 1026; len++) {
            char *s = kind == DOMAIN ? malloc(len + 1) : repeat("Ab", len / 2 + 1, "", "");
            ck_assert_ptr_nonnull(s);
            if (kind == DOMAIN)
                for (size_t i = 0; i < len; i++)
                    s[i] = i % 64 == 63 ? '.' : (char)('A' + i % 26);
            s[len] = '\0';
            ck_assert(check_agree(kind, s));
            if (kind == DOMAIN) {
                s[len - 1] = '.';
                ck_assert(check_agree(kind, s));
            }
            free(s);
        }
}
END_TEST

/* The old jid_parse(), written against the slow path only: split, copy, prepare each part in
 * order. jid_parse() must give the same result and the same reason for every input. */
static int reference_parse(const char *text, char **full, const char **why)
{
    *full = NULL;
    const char *slash = strchr(text, '/');
    size_t rest_len = slash ? (size_t)(slash - text) : strlen(text);
    const char *at = memchr(text, '@', rest_len);
    char *node = at ? strndup(text, (size_t)(at - text)) : NULL;
    const char *domain_start = at ? at + 1 : text;
    char *domain = strndup(domain_start, rest_len - (size_t)(domain_start - text));
    const char *resource = slash ? slash + 1 : NULL;
    char *pnode = NULL, *pdomain = NULL, *presource = NULL;
    int rc = -1;
    if (node && *node == '\0')
        *why = "empty localpart";
    else if (node && jid_prep_node_slow(node, &pnode) < 0)
        *why = "invalid localpart";
    else if (*domain == '\0')
        *why = "empty domainpart";
    else if (jid_prep_domain_slow(domain, &pdomain) < 0)
        *why = "invalid domainpart";
    else if (resource && *resource == '\0')
        *why = "empty resourcepart";
    else if (resource && jid_prep_resource_slow(resource, &presource) < 0)
        *why = "invalid resourcepart";
    else {
        size_t n = strlen(pdomain) + (pnode ? strlen(pnode) + 1 : 0) +
                   (presource ? strlen(presource) + 1 : 0) + 1;
        *full = malloc(n);
        ck_assert_ptr_nonnull(*full);
        snprintf(*full, n, "%s%s%s%s%s", pnode ? pnode : "", pnode ? "@" : "", pdomain,
                 presource ? "/" : "", presource ? presource : "");
        rc = 0;
    }
    free(node);
    free(domain);
    free(pnode);
    free(pdomain);
    free(presource);
    return rc;
}

static void check_parse_agrees(const char *text)
{
    char *want = NULL;
    const char *want_why = NULL, *why = NULL;
    int want_rc = reference_parse(text, &want, &want_why);
    tern_jid j;
    int rc = jid_parse(text, &j, &why);
    ck_assert_msg(rc == want_rc, "'%.100s': reference %d (%s), jid_parse %d (%s)", text, want_rc,
                  want_why ? want_why : "-", rc, why ? why : "-");
    if (rc == 0) {
        ck_assert_str_eq(j.full, want);
        /* The parts and the bare JID are consistent with the full one. */
        size_t bare_len = strlen(j.bare);
        ck_assert(strncmp(j.full, j.bare, bare_len) == 0);
        ck_assert(j.resource ? j.full[bare_len] == '/' && !strcmp(j.full + bare_len + 1, j.resource)
                             : j.full[bare_len] == '\0');
        ck_assert(j.node ? !strncmp(j.bare, j.node, strlen(j.node)) &&
                               j.bare[strlen(j.node)] == '@' &&
                               !strcmp(j.bare + strlen(j.node) + 1, j.domain)
                         : !strcmp(j.bare, j.domain));
        jid_free(&j);
    } else {
        ck_assert_str_eq(why, want_why);
        ck_assert_ptr_null(j.storage_);
    }
    free(want);
}

START_TEST(fast_path_whole_jids)
{
    static const char *const fixed[] = { "", "@", "/", "@/", "a@", "@b", "a@b/", "a@/c", "/c",
                                         "A@B/C", "a@b.", "a@127.0.0.1/x", "a@[::1]/x",
                                         "a@xn--jrgen-kva.example/R", "a b@c", "a@b c", "a@b/c d",
                                         "a@b/c\x7f", "\"a\"@b", "a@b@c", "a/b@c" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_parse_agrees(fixed[i]);
    rng_state = 777;
    char text[3200];
    for (int iter = 0; iter < 8000; iter++) {
        size_t n = 0;
        bool ascii_only = iter % 2 == 0;
        for (int part = 0; part < 3; part++) {
            if (part == 1 || rng() % 4 != 0) {
                size_t len = rng() % 10 == 0 ? 1020 + rng() % 6 : rng() % 12;
                char *s = part == 1 && rng() % 2 ? random_domain(len) : random_string(len, ascii_only);
                size_t sl = strlen(s);
                memcpy(text + n, s, sl);
                n += sl;
                free(s);
            }
            if (part == 0 && rng() % 4 != 0)
                text[n++] = '@';
            if (part == 1 && rng() % 3 != 0)
                text[n++] = '/';
        }
        text[n] = '\0';
        check_parse_agrees(text);
    }
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
    tcase_add_test(tc, fast_path_every_ascii_byte);
    tcase_add_test(tc, fast_path_random_parts);
    tcase_add_test(tc, fast_path_length_edges);
    tcase_add_test(tc, fast_path_whole_jids);
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
