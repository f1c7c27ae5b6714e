/* test_scram.c — unit tests for the SCRAM server, credentials and SASLprep (src/core/scram.c).
 *
 * The RFC 5802 §5 and RFC 7677 §3 example exchanges are replayed byte for byte. Other cases use a
 * small independent SCRAM client written here with GnuTLS primitives. */
#include "core/scram.h"

#include <check.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char SECRET[] = "0123456789abcdef-server-secret";

/* ---- a lookup backed by one account ---------------------------------------------------- */

typedef struct account {
    const char *username;
    scram_credentials cred[SCRAM_HASH_COUNT];
    int calls;
    char last_username[256];
} account;

static int lookup(void *ctx, const char *username, scram_hash h, scram_credentials *out)
{
    account *a = ctx;
    a->calls++;
    snprintf(a->last_username, sizeof a->last_username, "%s", username);
    if (strcmp(username, a->username) != 0)
        return 0;
    *out = a->cred[h];
    return 1;
}

static void decode_b64(const char *b64, unsigned char **out, size_t *len)
{
    ck_assert_int_eq(scram_base64_decode(b64, strlen(b64), out, len), 0);
}

/* An account "user" with password "pencil", salted as in the RFC examples. */
static void make_rfc_account(account *a)
{
    memset(a, 0, sizeof *a);
    a->username = "user";
    unsigned char *salt;
    size_t salt_len;
    decode_b64("QSXCR+Q6sek8bf92", &salt, &salt_len);
    ck_assert_int_eq(scram_derive(SCRAM_SHA1, "pencil", salt, salt_len, 4096, &a->cred[SCRAM_SHA1]), 0);
    free(salt);
    decode_b64("W22ZaJ0SNY7soEsUEjb6gQ==", &salt, &salt_len);
    ck_assert_int_eq(scram_derive(SCRAM_SHA256, "pencil", salt, salt_len, 4096, &a->cred[SCRAM_SHA256]), 0);
    free(salt);
}

static scram_server *new_server(scram_hash h, bool plus, const scram_channel_binding *b, size_t n,
                                bool plus_offered, account *a)
{
    scram_server *s = scram_server_new(h, plus, b, n, plus_offered, lookup, a, SECRET, 16);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* One step whose outcome is checked; returns the malloc'd output (or NULL). */
static char *step(scram_server *s, const char *in, scram_status want, const char *want_failure)
{
    char *out = (char *)"sentinel";
    size_t out_len = 12345;
    const char *failure = "sentinel";
    scram_status st = scram_server_step(s, in, strlen(in), &out, &out_len, &failure);
    ck_assert_msg(st == want, "step '%s': status %d, wanted %d (failure %s)", in, st, want,
                  failure ? failure : "none");
    if (want == SCRAM_FAILURE) {
        ck_assert_msg(strcmp(failure, want_failure) == 0, "step '%s': failure %s, wanted %s", in,
                      failure, want_failure);
    } else {
        ck_assert_ptr_null(failure);
        ck_assert_ptr_nonnull(out);
        ck_assert_uint_eq(out_len, strlen(out));
    }
    if (!out)
        ck_assert_uint_eq(out_len, 0);
    return out;
}

static void step_expect(scram_server *s, const char *in, scram_status want, const char *want_out)
{
    char *out = step(s, in, want, NULL);
    ck_assert_str_eq(out, want_out);
    free(out);
}

static void step_fail(scram_server *s, const char *in, const char *condition)
{
    char *out = step(s, in, SCRAM_FAILURE, condition);
    ck_assert_ptr_null(out);
}

/* ---- an independent client ----------------------------------------------------------------- */

typedef struct client_result {
    char *final_message;  /* client-final-message */
    char *server_final;   /* the "v=..." a correct server answers */
} client_result;

static const char *attr(const char *msg, char name)
{
    for (const char *p = msg; p; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        if (p[0] == name && p[1] == '=')
            return p + 2;
    }
    return NULL;
}

static char *attr_dup(const char *msg, char name)
{
    const char *v = attr(msg, name);
    ck_assert_ptr_nonnull(v);
    size_t len = strcspn(v, ",");
    char *s = malloc(len + 1);
    memcpy(s, v, len);
    s[len] = '\0';
    return s;
}

static client_result run_client(scram_hash h, const char *password, const char *client_first_bare,
                                const char *server_first, const void *cbind_input,
                                size_t cbind_len, const char *extensions,
                                const char *nonce_override)
{
    gnutls_mac_algorithm_t mac = h == SCRAM_SHA256 ? GNUTLS_MAC_SHA256 : GNUTLS_MAC_SHA1;
    gnutls_digest_algorithm_t dig = h == SCRAM_SHA256 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA1;
    size_t hlen = scram_hash_len(h);
    char *nonce = attr_dup(server_first, 'r');
    char *salt_b64 = attr_dup(server_first, 's');
    char *iter = attr_dup(server_first, 'i');
    unsigned char *salt;
    size_t salt_len;
    decode_b64(salt_b64, &salt, &salt_len);

    unsigned char salted[32], client_key[32], stored_key[32], server_key[32], sig[32], proof[32];
    gnutls_datum_t key = { (unsigned char *)password, (unsigned)strlen(password) };
    gnutls_datum_t sd = { salt, (unsigned)salt_len };
    ck_assert_int_eq(gnutls_pbkdf2(mac, &key, &sd, (unsigned)atoi(iter), salted, hlen), 0);
    gnutls_hmac_fast(mac, salted, hlen, "Client Key", 10, client_key);
    gnutls_hash_fast(dig, client_key, hlen, stored_key);
    gnutls_hmac_fast(mac, salted, hlen, "Server Key", 10, server_key);

    char *cb = scram_base64_encode(cbind_input, cbind_len);
    char without_proof[1024], auth_message[4096];
    snprintf(without_proof, sizeof without_proof, "c=%s,r=%s%s%s", cb,
             nonce_override ? nonce_override : nonce,
             extensions ? "," : "", extensions ? extensions : "");
    snprintf(auth_message, sizeof auth_message, "%s,%s,%s", client_first_bare, server_first,
             without_proof);
    gnutls_hmac_fast(mac, stored_key, hlen, auth_message, strlen(auth_message), sig);
    for (size_t i = 0; i < hlen; i++)
        proof[i] = client_key[i] ^ sig[i];
    char *proof_b64 = scram_base64_encode(proof, hlen);
    gnutls_hmac_fast(mac, server_key, hlen, auth_message, strlen(auth_message), sig);
    char *v = scram_base64_encode(sig, hlen);

    client_result r;
    r.final_message = malloc(strlen(without_proof) + strlen(proof_b64) + 4);
    sprintf(r.final_message, "%s,p=%s", without_proof, proof_b64);
    r.server_final = malloc(strlen(v) + 3);
    sprintf(r.server_final, "v=%s", v);
    free(nonce);
    free(salt_b64);
    free(iter);
    free(salt);
    free(cb);
    free(proof_b64);
    free(v);
    return r;
}

static void client_result_free(client_result *r)
{
    free(r->final_message);
    free(r->server_final);
}

/* Runs a whole exchange; gs2 is the gs2-header, cb_data the binding data the client puts in c=. */
static scram_status exchange(scram_server *s, scram_hash h, const char *gs2, const char *user,
                             const char *password, const void *cb_data, size_t cb_len,
                             const char **failure, char **final_out)
{
    char first[512], bare[512];
    snprintf(bare, sizeof bare, "n=%s,r=clientnonce123", user);
    snprintf(first, sizeof first, "%s%s", gs2, bare);
    char *server_first = step(s, first, SCRAM_CONTINUE, NULL);

    unsigned char cbind[512];
    size_t glen = strlen(gs2);
    memcpy(cbind, gs2, glen);
    if (cb_len)
        memcpy(cbind + glen, cb_data, cb_len);
    client_result r = run_client(h, password, bare, server_first, cbind, glen + cb_len, NULL, NULL);
    char *out = NULL;
    size_t out_len;
    scram_status st = scram_server_step(s, r.final_message, strlen(r.final_message), &out,
                                        &out_len, failure);
    if (st == SCRAM_SUCCESS)
        ck_assert_str_eq(out, r.server_final);
    if (final_out)
        *final_out = out;
    else
        free(out);
    client_result_free(&r);
    free(server_first);
    return st;
}

/* ---- RFC vectors ------------------------------------------------------------------------------ */

START_TEST(rfc5802_sha1_example)
{
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    scram_server_set_nonce_for_test(s, "3rfcNHYJY1ZVvWVs7j");
    step_expect(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", SCRAM_CONTINUE,
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
    ck_assert_str_eq(a.last_username, "user");
    ck_assert_ptr_null(scram_server_username(s)); /* not before success */
    step_expect(s,
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                SCRAM_SUCCESS, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    ck_assert_str_eq(scram_server_username(s), "user");
    ck_assert_ptr_null(scram_server_authzid(s));
    ck_assert(!scram_server_failed_on_binding(s));
    /* Nothing more is accepted after the exchange. */
    step_fail(s, "n,,n=user,r=fyko", "malformed-request");
    scram_server_free(s);
}
END_TEST

START_TEST(rfc7677_sha256_example)
{
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    scram_server_set_nonce_for_test(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    step_expect(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", SCRAM_CONTINUE,
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    step_expect(s,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                SCRAM_SUCCESS, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    ck_assert_str_eq(scram_server_username(s), "user");
    scram_server_free(s);
}
END_TEST

/* The stored keys of the RFC 5802 example, computed independently. */
START_TEST(derive_matches_rfc_keys)
{
    account a;
    make_rfc_account(&a);
    const scram_credentials *c = &a.cred[SCRAM_SHA1];
    ck_assert_int_eq(c->iterations, 4096);
    ck_assert_uint_eq(c->salt_len, 12);
    ck_assert_int_eq(c->hash, SCRAM_SHA1);
    char *sk = scram_base64_encode(c->server_key, 20);
    /* ServerKey = HMAC(SaltedPassword, "Server Key"); SaltedPassword of the RFC example is
     * 1d96ee3a529b5a5f9e47c01f229a2cb8a6e15f7d. */
    unsigned char salted[20] = { 0x1d, 0x96, 0xee, 0x3a, 0x52, 0x9b, 0x5a, 0x5f, 0x9e, 0x47,
                                 0xc0, 0x1f, 0x22, 0x9a, 0x2c, 0xb8, 0xa6, 0xe1, 0x5f, 0x7d };
    unsigned char expect[20];
    gnutls_hmac_fast(GNUTLS_MAC_SHA1, salted, 20, "Server Key", 10, expect);
    char *ek = scram_base64_encode(expect, 20);
    ck_assert_str_eq(sk, ek);
    free(sk);
    free(ek);
    ck_assert_int_eq(scram_hash_len(SCRAM_SHA1), 20);
    ck_assert_int_eq(scram_hash_len(SCRAM_SHA256), 32);
    ck_assert_str_eq(scram_hash_mech(SCRAM_SHA1), "SCRAM-SHA-1");
    ck_assert_str_eq(scram_hash_mech(SCRAM_SHA256), "SCRAM-SHA-256");
}
END_TEST

/* ---- credential failures ------------------------------------------------------------------- */

START_TEST(wrong_password)
{
    account a;
    make_rfc_account(&a);
    for (int h = 0; h < SCRAM_HASH_COUNT; h++) {
        scram_server *s = new_server((scram_hash)h, false, NULL, 0, false, &a);
        const char *failure = NULL;
        char *out = (char *)"x";
        ck_assert_int_eq(exchange(s, (scram_hash)h, "n,,", "user", "pencil!", NULL, 0, &failure,
                                  &out),
                         SCRAM_FAILURE);
        ck_assert_str_eq(failure, "not-authorized");
        ck_assert_ptr_null(out);
        ck_assert(!scram_server_failed_on_binding(s));
        ck_assert_ptr_null(scram_server_username(s));
        scram_server_free(s);

        s = new_server((scram_hash)h, false, NULL, 0, false, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "n,,", "user", "pencil", NULL, 0, &failure,
                                  NULL),
                         SCRAM_SUCCESS);
        scram_server_free(s);
    }
}
END_TEST

static char *server_first_for(const char *user, const unsigned char *secret, account *a)
{
    scram_server *s = scram_server_new(SCRAM_SHA256, false, NULL, 0, false, lookup, a, secret, 16);
    ck_assert_ptr_nonnull(s);
    scram_server_set_nonce_for_test(s, "SNONCE");
    char first[300];
    snprintf(first, sizeof first, "n,,n=%s,r=cn", user);
    char *out = step(s, first, SCRAM_CONTINUE, NULL);
    scram_server_free(s);
    return out;
}

START_TEST(unknown_user_looks_like_a_user)
{
    account a;
    make_rfc_account(&a);
    /* A known user stored with the defaults (16-byte salt, default iterations) for comparison. */
    unsigned char salt[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    ck_assert_int_eq(scram_derive(SCRAM_SHA256, "pencil", salt, 16, SCRAM_DEFAULT_ITERATIONS,
                                  &a.cred[SCRAM_SHA256]), 0);
    a.username = "knownuser";

    char *known = server_first_for("knownuser", SECRET, &a);
    char *ghost1 = server_first_for("ghostuser", SECRET, &a);
    char *ghost2 = server_first_for("ghostuser", SECRET, &a);
    char *other = server_first_for("ghostusers", SECRET, &a);
    char *other_secret = server_first_for("ghostuser", (const unsigned char *)"another secret!!", &a);
    ck_assert_str_eq(known, "r=cnSNONCE,s=AQIDBAUGBwgJCgsMDQ4PEA==,i=10000");
    /* Same shape: 16-byte salt, default iteration count, same length. */
    ck_assert_uint_eq(strlen(ghost1), strlen(known));
    ck_assert_int_eq(strncmp(ghost1, "r=cnSNONCE,s=", 13), 0);
    ck_assert_str_eq(ghost1 + strlen(ghost1) - 8, ",i=10000");
    char *salt_b64 = attr_dup(ghost1, 's');
    unsigned char *ghost_salt;
    size_t ghost_salt_len;
    decode_b64(salt_b64, &ghost_salt, &ghost_salt_len);
    ck_assert_uint_eq(ghost_salt_len, 16);
    free(salt_b64);
    free(ghost_salt);
    /* Stable across exchanges, different per user and per server secret. */
    ck_assert_str_eq(ghost1, ghost2);
    ck_assert_str_ne(ghost1, other);
    ck_assert_str_ne(ghost1, other_secret);
    free(known);
    free(ghost1);
    free(ghost2);
    free(other);
    free(other_secret);

    /* The whole exchange fails the way a wrong password does, whatever the password. */
    scram_server *s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    const char *failure = NULL;
    char *out = (char *)"x";
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "n,,", "ghostuser", "pencil", NULL, 0, &failure, &out),
                     SCRAM_FAILURE);
    ck_assert_str_eq(failure, "not-authorized");
    ck_assert_ptr_null(out);
    ck_assert(!scram_server_failed_on_binding(s));
    scram_server_free(s);
}
END_TEST

/* A lookup handing back credentials for the wrong hash is treated as no account. */
START_TEST(unusable_stored_credentials)
{
    account a;
    make_rfc_account(&a);
    a.cred[SCRAM_SHA256] = a.cred[SCRAM_SHA1];
    scram_server *s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    const char *failure = NULL;
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "n,,", "user", "pencil", NULL, 0, &failure, NULL),
                     SCRAM_FAILURE);
    ck_assert_str_eq(failure, "not-authorized");
    scram_server_free(s);
}
END_TEST

/* ---- channel binding ------------------------------------------------------------------------ */

START_TEST(downgrade_y_flag)
{
    account a;
    make_rfc_account(&a);
    /* We offered -PLUS; a client that supports binding says "y": someone removed the offer. */
    scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, true, &a);
    step_fail(s, "y,,n=user,r=abcdef", "not-authorized");
    /* Decided before any credential check: no anti-guessing delay needed. */
    ck_assert(scram_server_failed_on_binding(s));
    scram_server_free(s);

    /* Without a -PLUS offer, "y" is fine, and c= carries "y,,". */
    s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    const char *failure = NULL;
    ck_assert_int_eq(exchange(s, SCRAM_SHA1, "y,,", "user", "pencil", NULL, 0, &failure, NULL),
                     SCRAM_SUCCESS);
    scram_server_free(s);

    /* The client must echo the flag it sent: "n,," in c= after "y,," is a mismatch. */
    s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    char *sf = step(s, "y,,n=user,r=abcdef", SCRAM_CONTINUE, NULL);
    client_result r = run_client(SCRAM_SHA1, "pencil", "n=user,r=abcdef", sf, "n,,", 3, NULL, NULL);
    step_fail(s, r.final_message, "not-authorized");
    client_result_free(&r);
    free(sf);
    scram_server_free(s);
}
END_TEST

static const unsigned char EXPORTER[32] = "exporter-key-material-32-bytes!";
static const unsigned char END_POINT[32] = "certificate-hash-sha256-32-byte";

START_TEST(tls_exporter_binding)
{
    account a;
    make_rfc_account(&a);
    scram_channel_binding cb[2] = {
        { "tls-server-end-point", END_POINT, sizeof END_POINT },
        { "tls-exporter", EXPORTER, sizeof EXPORTER },
    };
    const char *failure = NULL;
    for (int h = 0; h < SCRAM_HASH_COUNT; h++) {
        scram_server *s = new_server((scram_hash)h, true, cb, 2, true, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-exporter,,", "user", "pencil", EXPORTER,
                                  sizeof EXPORTER, &failure, NULL),
                         SCRAM_SUCCESS);
        ck_assert_str_eq(scram_server_username(s), "user");
        scram_server_free(s);

        s = new_server((scram_hash)h, true, cb, 2, true, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-server-end-point,,", "user", "pencil",
                                  END_POINT, sizeof END_POINT, &failure, NULL),
                         SCRAM_SUCCESS);
        scram_server_free(s);

        /* Right password, wrong binding data (a man in the middle has another TLS session). */
        s = new_server((scram_hash)h, true, cb, 2, true, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-exporter,,", "user", "pencil", END_POINT,
                                  sizeof END_POINT, &failure, NULL),
                         SCRAM_FAILURE);
        ck_assert_str_eq(failure, "not-authorized");
        ck_assert(!scram_server_failed_on_binding(s));
        scram_server_free(s);

        /* Binding data missing from c=. */
        s = new_server((scram_hash)h, true, cb, 2, true, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-exporter,,", "user", "pencil", NULL, 0,
                                  &failure, NULL),
                         SCRAM_FAILURE);
        ck_assert_str_eq(failure, "not-authorized");
        scram_server_free(s);
    }
}
END_TEST

START_TEST(unsupported_binding_type)
{
    account a;
    make_rfc_account(&a);
    scram_channel_binding cb = { "tls-exporter", EXPORTER, sizeof EXPORTER };
    scram_server *s = new_server(SCRAM_SHA256, true, &cb, 1, true, &a);
    char *out = step(s, "p=tls-unique,,n=user,r=abcdef", SCRAM_FAILURE, "not-authorized");
    ck_assert_str_eq(out, "e=unsupported-channel-binding-type");
    free(out);
    ck_assert(scram_server_failed_on_binding(s));
    ck_assert_int_eq(a.calls, 0); /* no account was looked up */
    scram_server_free(s);

    /* -PLUS on a connection with no binding at all. */
    s = new_server(SCRAM_SHA256, true, NULL, 0, true, &a);
    out = step(s, "p=tls-exporter,,n=user,r=abcdef", SCRAM_FAILURE, "not-authorized");
    ck_assert_str_eq(out, "e=unsupported-channel-binding-type");
    free(out);
    ck_assert(scram_server_failed_on_binding(s));
    scram_server_free(s);
}
END_TEST

/* TLS 1.2: tls-unique (RFC 5929 §3) is the client's first Finished message, 12 bytes. */
static const unsigned char FINISHED12[12] = "finished-12";
/* TLS 1.3 "tls-unique" as CPython's ssl module (slixmpp 1.8.3) gives it: the client's Finished
 * message, as long as the suite's hash. */
static const unsigned char FINISHED48[48] = "tls13-client-finished-of-an-aes256-sha384-suite";
static const unsigned char FINISHED32[32] = "tls13-client-finished-sha256-32";

START_TEST(tls_unique_binding_on_tls12)
{
    account a;
    make_rfc_account(&a);
    scram_channel_binding cb[2] = {
        { "tls-server-end-point", END_POINT, sizeof END_POINT },
        { "tls-unique", FINISHED12, sizeof FINISHED12 },
    };
    const char *failure = NULL;
    scram_server *s = new_server(SCRAM_SHA256, true, cb, 2, true, &a);
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "p=tls-unique,,", "user", "pencil", FINISHED12,
                              sizeof FINISHED12, &failure, NULL),
                     SCRAM_SUCCESS);
    scram_server_free(s);

    /* Another TLS session's Finished (a man in the middle). */
    unsigned char other[12];
    memcpy(other, FINISHED12, sizeof other);
    other[0] ^= 1;
    s = new_server(SCRAM_SHA256, true, cb, 2, true, &a);
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "p=tls-unique,,", "user", "pencil", other,
                              sizeof other, &failure, NULL),
                     SCRAM_FAILURE);
    ck_assert_ptr_null(scram_server_unbindable_user(s));
    scram_server_free(s);
}
END_TEST

/* A TLS 1.3 server: what tls.c gives there. */
static scram_server *tls13_plus_server(scram_hash h, account *a)
{
    static const scram_channel_binding cb[2] = {
        { "tls-exporter", EXPORTER, sizeof EXPORTER },
        { "tls-server-end-point", END_POINT, sizeof END_POINT },
    };
    scram_server *s = new_server(h, true, cb, 2, true, a);
    scram_server_set_tls13(s);
    return s;
}

START_TEST(tls_unique_on_tls13_fails_after_the_proof)
{
    account a;
    make_rfc_account(&a);
    const char *failure = NULL;
    for (int h = 0; h < SCRAM_HASH_COUNT; h++) {
        /* slixmpp 1.8.3 on TLS 1.3: refused, but only after its proof, which shows that the
         * password holder's one binding is tls-unique taken over TLS 1.3. */
        const unsigned char *finished[2] = { FINISHED48, FINISHED32 };
        size_t finished_len[2] = { sizeof FINISHED48, sizeof FINISHED32 };
        for (int i = 0; i < 2; i++) {
            scram_server *s = tls13_plus_server((scram_hash)h, &a);
            char *out = NULL;
            ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-unique,,", "user", "pencil",
                                      finished[i], finished_len[i], &failure, &out),
                             SCRAM_FAILURE);
            ck_assert_str_eq(failure, "not-authorized");
            ck_assert_str_eq(out, "e=unsupported-channel-binding-type");
            free(out);
            ck_assert(scram_server_failed_on_binding(s)); /* the password was right: no delay */
            ck_assert_str_eq(scram_server_unbindable_user(s), "user");
            ck_assert_ptr_null(scram_server_username(s)); /* not authenticated */
            scram_server_free(s);
        }

        /* A TLS 1.2 Finished: the client is on TLS 1.2 with someone else (a man in the middle
         * who made a client that also knows tls-exporter fall back to tls-unique). */
        scram_server *s = tls13_plus_server((scram_hash)h, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-unique,,", "user", "pencil",
                                  FINISHED12, sizeof FINISHED12, &failure, NULL),
                         SCRAM_FAILURE);
        ck_assert(scram_server_failed_on_binding(s));
        ck_assert_ptr_null(scram_server_unbindable_user(s));
        scram_server_free(s);

        /* No binding data at all. */
        s = tls13_plus_server((scram_hash)h, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-unique,,", "user", "pencil", NULL, 0,
                                  &failure, NULL),
                         SCRAM_FAILURE);
        ck_assert_ptr_null(scram_server_unbindable_user(s));
        scram_server_free(s);

        /* Without the password nothing is proved (a man in the middle forging the attempt),
         * and it is an ordinary credential failure. */
        s = tls13_plus_server((scram_hash)h, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-unique,,", "user", "wrong",
                                  FINISHED48, sizeof FINISHED48, &failure, NULL),
                         SCRAM_FAILURE);
        ck_assert_str_eq(failure, "not-authorized");
        ck_assert(!scram_server_failed_on_binding(s));
        ck_assert_ptr_null(scram_server_unbindable_user(s));
        scram_server_free(s);

        /* An unknown account proves nothing either. */
        s = tls13_plus_server((scram_hash)h, &a);
        ck_assert_int_eq(exchange(s, (scram_hash)h, "p=tls-unique,,", "ghost", "pencil",
                                  FINISHED48, sizeof FINISHED48, &failure, NULL),
                         SCRAM_FAILURE);
        ck_assert_ptr_null(scram_server_unbindable_user(s));
        scram_server_free(s);
    }

    /* Only tls-unique gets this: any other unknown type is refused at once. */
    a.calls = 0;
    scram_server *s = tls13_plus_server(SCRAM_SHA256, &a);
    char *out = step(s, "p=tls-foo,,n=user,r=abcdef", SCRAM_FAILURE, "not-authorized");
    ck_assert_str_eq(out, "e=unsupported-channel-binding-type");
    free(out);
    ck_assert_int_eq(a.calls, 0);
    scram_server_free(s);
}
END_TEST

START_TEST(y_is_honest_only_for_the_user_who_proved_it)
{
    account a;
    make_rfc_account(&a);
    const char *failure = NULL;
    /* -PLUS was offered, but "user" proved on this stream that its client cannot bind. */
    scram_server *s = new_server(SCRAM_SHA256, false, NULL, 0, true, &a);
    scram_server_allow_y(s, "user");
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "y,,", "user", "pencil", NULL, 0, &failure, NULL),
                     SCRAM_SUCCESS);
    ck_assert_str_eq(scram_server_username(s), "user");
    scram_server_free(s);

    /* It still has to know the password. */
    s = new_server(SCRAM_SHA256, false, NULL, 0, true, &a);
    scram_server_allow_y(s, "user");
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "y,,", "user", "wrong", NULL, 0, &failure, NULL),
                     SCRAM_FAILURE);
    ck_assert(!scram_server_failed_on_binding(s));
    scram_server_free(s);

    /* Someone else's proof (an attacker's own account) does not excuse this user's "y". */
    a.calls = 0;
    s = new_server(SCRAM_SHA256, false, NULL, 0, true, &a);
    scram_server_allow_y(s, "mallory");
    step_fail(s, "y,,n=user,r=abcdef", "not-authorized");
    ck_assert(scram_server_failed_on_binding(s));
    ck_assert_int_eq(a.calls, 0); /* refused before any credential check */
    scram_server_free(s);

    /* Compared after SASLprep: "user" with a soft hyphen (mapped to nothing) is "user". */
    s = new_server(SCRAM_SHA256, false, NULL, 0, true, &a);
    scram_server_allow_y(s, "user");
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "y,,", "us\xc2\xad" "er", "pencil", NULL, 0,
                              &failure, NULL),
                     SCRAM_SUCCESS);
    scram_server_free(s);

    /* Cleared again: back to the downgrade rule. */
    s = new_server(SCRAM_SHA256, false, NULL, 0, true, &a);
    scram_server_allow_y(s, "user");
    scram_server_allow_y(s, NULL);
    step_fail(s, "y,,n=user,r=abcdef", "not-authorized");
    scram_server_free(s);

    /* "n" and -PLUS are untouched by it. */
    s = new_server(SCRAM_SHA256, false, NULL, 0, true, &a);
    scram_server_allow_y(s, "user");
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "n,,", "user", "pencil", NULL, 0, &failure, NULL),
                     SCRAM_SUCCESS);
    scram_server_free(s);
}
END_TEST

START_TEST(binding_flag_must_match_mechanism)
{
    account a;
    make_rfc_account(&a);
    scram_channel_binding cb = { "tls-exporter", EXPORTER, sizeof EXPORTER };
    /* p= with a non-PLUS mechanism. */
    scram_server *s = new_server(SCRAM_SHA1, false, &cb, 1, true, &a);
    step_fail(s, "p=tls-exporter,,n=user,r=abcdef", "malformed-request");
    ck_assert(!scram_server_failed_on_binding(s));
    scram_server_free(s);
    /* -PLUS chosen, but "n" or "y". */
    s = new_server(SCRAM_SHA1, true, &cb, 1, true, &a);
    step_fail(s, "n,,n=user,r=abcdef", "malformed-request");
    scram_server_free(s);
    s = new_server(SCRAM_SHA1, true, &cb, 1, true, &a);
    step_fail(s, "y,,n=user,r=abcdef", "malformed-request");
    scram_server_free(s);
}
END_TEST

/* ---- authzid and usernames --------------------------------------------------------------- */

START_TEST(authzid_returned)
{
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    const char *failure = NULL;
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "n,a=juliet@example.com,", "user", "pencil", NULL, 0,
                              &failure, NULL),
                     SCRAM_SUCCESS);
    ck_assert_str_eq(scram_server_authzid(s), "juliet@example.com");
    scram_server_free(s);

    /* =2C and =3D escapes decode to ',' and '='. */
    s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    ck_assert_int_eq(exchange(s, SCRAM_SHA256, "n,a=a=2Cb=3Dc,", "user", "pencil", NULL, 0,
                              &failure, NULL),
                     SCRAM_SUCCESS);
    ck_assert_str_eq(scram_server_authzid(s), "a,b=c");
    scram_server_free(s);
}
END_TEST

START_TEST(username_escapes_and_saslprep)
{
    account a;
    make_rfc_account(&a);
    a.username = "us,er=x";
    scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    const char *failure = NULL;
    ck_assert_int_eq(exchange(s, SCRAM_SHA1, "n,,", "us=2Cer=3Dx", "pencil", NULL, 0, &failure, NULL),
                     SCRAM_SUCCESS);
    ck_assert_str_eq(scram_server_username(s), "us,er=x");
    scram_server_free(s);

    /* The lookup sees the SASLprep'd name: soft hyphen removed, U+2168 → "IX". */
    a.username = "IXuser";
    s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    ck_assert_int_eq(exchange(s, SCRAM_SHA1, "n,,", "I\xc2\xadX\xc2\xad" "user", "pencil", NULL, 0,
                              &failure, NULL),
                     SCRAM_SUCCESS);
    ck_assert_str_eq(a.last_username, "IXuser");
    scram_server_free(s);
}
END_TEST

/* ---- malformed messages ----------------------------------------------------------------------- */

START_TEST(malformed_client_first)
{
    static const char *const bad[] = {
        "x,,n=user,r=abc",
        "n",
        "n,",
        "n,n=user,r=abc",
        "nn,,n=user,r=abc",
        "n,,",
        "n,,r=abc",
        "n,,n=user",
        "n,,n=user,",
        "n,,n=user,r=",
        "n,,n=,r=abc",
        "n,,n=us=er,r=abc",
        "n,,n=us=2cer,r=abc",  /* escapes are upper case */
        "n,,n=user=,r=abc",
        "n,,n=user=2,r=abc",
        "n,,m=ext,n=user,r=abc",
        "n,,n=user,r=abc,m=ext",
        "n,,n=user,r=abc,1=x",
        "n,,n=user,r=abc,",
        "n,,n=user,r=ab c",
        "n,,n=user,r=ab\x7f",
        "n,,n=user,r=ab\xc3\xa9",
        "n,a=,n=user,r=abc",
        "n,a=x,n=user,r=abc,",
        "n,a=x=,n=user,r=abc",
        "n,b=x,n=user,r=abc",
        "n,,n=\x07,r=abc",          /* SASLprep: prohibited */
        "n,,n=\xd8\xa7\x31,r=abc",  /* SASLprep: bidi */
        "n,,n=\xc2\xad,r=abc",      /* SASLprep: empty */
        "n,,n=\xff,r=abc",          /* not UTF-8 */
        "n,,N=user,r=abc",
        "n,,r=abc,n=user",
    };
    account a;
    make_rfc_account(&a);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
        step_fail(s, bad[i], "malformed-request");
        scram_server_free(s);
    }
    ck_assert_int_eq(a.calls, 0);

    scram_channel_binding cb = { "tls-exporter", EXPORTER, sizeof EXPORTER };
    static const char *const bad_plus[] = {
        "p=,,n=user,r=abc",
        "p=tls exporter,,n=user,r=abc",
        "p=tls-exporter,n=user,r=abc",
        "p=tls_exporter,,n=user,r=abc",
    };
    for (size_t i = 0; i < sizeof bad_plus / sizeof bad_plus[0]; i++) {
        scram_server *s = new_server(SCRAM_SHA1, true, &cb, 1, true, &a);
        step_fail(s, bad_plus[i], "malformed-request");
        ck_assert(!scram_server_failed_on_binding(s));
        scram_server_free(s);
    }

    /* An embedded NUL. */
    scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    char *out;
    size_t out_len;
    const char *failure;
    ck_assert_int_eq(scram_server_step(s, "n,,n=us\0er,r=abc", 16, &out, &out_len, &failure),
                     SCRAM_FAILURE);
    ck_assert_str_eq(failure, "malformed-request");
    scram_server_free(s);
}
END_TEST

/* Sends a valid client-first, then `final` (with NONCE replaced by the full nonce). */
static void final_fails(const char *final, const char *condition)
{
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    scram_server_set_nonce_for_test(s, "3rfcNHYJY1ZVvWVs7j");
    char *sf = step(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", SCRAM_CONTINUE, NULL);
    free(sf);
    char msg[512];
    const char *at = strstr(final, "NONCE");
    if (at)
        snprintf(msg, sizeof msg, "%.*s%s%s", (int)(at - final), final,
                 "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j", at + 5);
    else
        snprintf(msg, sizeof msg, "%s", final);
    char *out = step(s, msg, SCRAM_FAILURE, condition);
    ck_assert_msg(out == NULL, "'%s' produced output", msg);
    ck_assert(!scram_server_failed_on_binding(s));
    /* The exchange is over. */
    step_fail(s, "c=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "malformed-request");
    scram_server_free(s);
}

START_TEST(malformed_client_final)
{
    /* The RFC proof is valid for the exact message; every variation below fails. */
    final_fails("c=biws,r=NONCE", "malformed-request");
    final_fails("c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "malformed-request");
    final_fails("r=NONCE,c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "malformed-request");
    final_fails("c=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=,x=y", "malformed-request");
    final_fails("c=biws,r=NONCE,m=x,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "malformed-request");
    final_fails("c=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4T", "malformed-request");
    final_fails("c=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts", "malformed-request");
    final_fails("c=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts==", "malformed-request");
    final_fails("c=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJ QyF0X+HI4Ts=", "malformed-request");
    final_fails("c=biws,r=NONCE,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "malformed-request");
    final_fails("c=biws,r=NONCE,p=", "malformed-request");
    final_fails("c=bi!s,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "malformed-request");
    final_fails("c=biw,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "malformed-request");
    final_fails("x=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "malformed-request");
    final_fails("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "malformed-request");
    /* Well-formed but wrong: nonce, binding header, proof. */
    final_fails("c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "not-authorized");
    final_fails("c=biws,r=NONCEx,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "not-authorized");
    final_fails("c=eSws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "not-authorized");
    final_fails("c=biws,r=NONCE,p=v0X9v3Bz2T0CJGbJQyF0X+HI4Ts=", "not-authorized");
    final_fails("c=biws,r=NONCE,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Tt=", "malformed-request"); /* padding bits */
    final_fails("c=biws,r=NONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-authorized");
    /* The right proof still passes, so the failures above are caused by the variations. */
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    scram_server_set_nonce_for_test(s, "3rfcNHYJY1ZVvWVs7j");
    free(step(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", SCRAM_CONTINUE, NULL));
    free(step(s, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
              SCRAM_SUCCESS, NULL));
    scram_server_free(s);
}
END_TEST

/* A client-final signed correctly but carrying another nonce (a replay from another exchange)
 * is refused although its proof matches its own AuthMessage. */
START_TEST(nonce_must_match)
{
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    scram_server_set_nonce_for_test(s, "SERVERNONCE");
    char *sf = step(s, "n,,n=user,r=abcdef", SCRAM_CONTINUE, NULL);
    client_result r = run_client(SCRAM_SHA256, "pencil", "n=user,r=abcdef", sf, "n,,", 3, NULL,
                                 "abcdefOTHERNONCE");
    step_fail(s, r.final_message, "not-authorized");
    client_result_free(&r);
    scram_server_free(s);

    /* The same client with the right nonce passes. */
    s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    scram_server_set_nonce_for_test(s, "SERVERNONCE");
    free(step(s, "n,,n=user,r=abcdef", SCRAM_CONTINUE, NULL));
    r = run_client(SCRAM_SHA256, "pencil", "n=user,r=abcdef", sf, "n,,", 3, NULL,
                   "abcdefSERVERNONCE");
    step_expect(s, r.final_message, SCRAM_SUCCESS, r.server_final);
    client_result_free(&r);
    free(sf);
    scram_server_free(s);
}
END_TEST

START_TEST(extensions_in_client_final_are_covered_by_proof)
{
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA256, false, NULL, 0, false, &a);
    char *sf = step(s, "n,,n=user,r=abcdef", SCRAM_CONTINUE, NULL);
    client_result r = run_client(SCRAM_SHA256, "pencil", "n=user,r=abcdef", sf, "n,,", 3, "x=ext", NULL);
    step_expect(s, r.final_message, SCRAM_SUCCESS, r.server_final);
    client_result_free(&r);
    free(sf);
    scram_server_free(s);
}
END_TEST

START_TEST(empty_initial_response)
{
    account a;
    make_rfc_account(&a);
    scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    char *out = NULL;
    size_t out_len = 99;
    const char *failure = "x";
    /* No initial response: one empty challenge, then the client-first-message. */
    ck_assert_int_eq(scram_server_step(s, "", 0, &out, &out_len, &failure), SCRAM_CONTINUE);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(out_len, 0);
    ck_assert_ptr_null(failure);
    free(out);
    ck_assert_int_eq(scram_server_step(s, "", 0, &out, &out_len, &failure), SCRAM_FAILURE);
    ck_assert_str_eq(failure, "malformed-request");
    ck_assert_ptr_null(out);
    scram_server_free(s);

    s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    ck_assert_int_eq(scram_server_step(s, "", 0, &out, &out_len, &failure), SCRAM_CONTINUE);
    free(out);
    ck_assert_int_eq(exchange(s, SCRAM_SHA1, "n,,", "user", "pencil", NULL, 0, &failure, NULL),
                     SCRAM_SUCCESS);
    scram_server_free(s);

    /* An empty client-final is malformed. */
    s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
    free(step(s, "n,,n=user,r=abc", SCRAM_CONTINUE, NULL));
    ck_assert_int_eq(scram_server_step(s, "", 0, &out, &out_len, &failure), SCRAM_FAILURE);
    ck_assert_str_eq(failure, "malformed-request");
    scram_server_free(s);
}
END_TEST

START_TEST(random_server_nonce)
{
    account a;
    make_rfc_account(&a);
    char *first[2];
    for (int i = 0; i < 2; i++) {
        scram_server *s = new_server(SCRAM_SHA1, false, NULL, 0, false, &a);
        first[i] = step(s, "n,,n=user,r=abc", SCRAM_CONTINUE, NULL);
        scram_server_free(s);
        char *nonce = attr_dup(first[i], 'r');
        ck_assert_int_eq(strncmp(nonce, "abc", 3), 0);
        ck_assert_uint_ge(strlen(nonce), 3 + 16);
        for (const char *p = nonce; *p; p++)
            ck_assert(*p >= 0x21 && *p <= 0x7e && *p != ',');
        free(nonce);
    }
    ck_assert_str_ne(first[0], first[1]);
    free(first[0]);
    free(first[1]);
}
END_TEST

START_TEST(server_new_checks)
{
    account a;
    make_rfc_account(&a);
    ck_assert_ptr_null(scram_server_new(SCRAM_SHA1, false, NULL, 0, false, lookup, &a, SECRET, 15));
    ck_assert_ptr_null(scram_server_new(SCRAM_SHA1, false, NULL, 0, false, lookup, &a, NULL, 16));
    ck_assert_ptr_null(scram_server_new(SCRAM_SHA1, false, NULL, 0, false, NULL, &a, SECRET, 16));
    scram_server_free(NULL);
}
END_TEST

/* ---- SASLprep, PLAIN, helpers ---------------------------------------------------------------- */

static void prep_ok(const char *in, const char *want)
{
    char *out = NULL;
    ck_assert_msg(scram_saslprep(in, &out) == 0, "saslprep rejected '%s'", in);
    ck_assert_str_eq(out, want);
    free(out);
}

static void prep_fails(const char *in)
{
    char *out = (char *)"x";
    ck_assert_int_eq(scram_saslprep(in, &out), -1);
    ck_assert_ptr_null(out);
}

/* RFC 4013 §3 examples. */
START_TEST(saslprep_rfc4013)
{
    prep_ok("I\xc2\xadX", "IX");        /* SOFT HYPHEN mapped to nothing */
    prep_ok("user", "user");            /* no transformation */
    prep_ok("USER", "USER");            /* case preserved */
    prep_ok("\xc2\xaa", "a");           /* NFKC: FEMININE ORDINAL INDICATOR */
    prep_ok("\xe2\x85\xa8", "IX");      /* NFKC: ROMAN NUMERAL NINE */
    prep_fails("\x07");                 /* prohibited */
    prep_fails("\xd8\xa7" "1");         /* bidi: RandALCat not at both ends */
    /* Extras: non-ASCII space maps to SPACE; invalid UTF-8 is refused. */
    prep_ok("a\xc2\xa0" "b", "a b");
    prep_fails("\xff");
}
END_TEST

START_TEST(check_password)
{
    scram_credentials c;
    ck_assert_int_eq(scram_make_credentials(SCRAM_SHA256, "correct horse", 4096, &c), 0);
    ck_assert_int_eq(c.iterations, 4096);
    ck_assert_uint_eq(c.salt_len, 16);
    ck_assert(scram_check_password(&c, "correct horse"));
    ck_assert(!scram_check_password(&c, "correct horse "));
    ck_assert(!scram_check_password(&c, "Correct horse"));
    ck_assert(!scram_check_password(&c, ""));
    ck_assert(!scram_check_password(&c, "\x07"));

    scram_credentials c2;
    ck_assert_int_eq(scram_make_credentials(SCRAM_SHA256, "correct horse", 4096, &c2), 0);
    ck_assert(memcmp(c.salt, c2.salt, 16) != 0); /* fresh salt each time */
    ck_assert(memcmp(c.stored_key, c2.stored_key, 32) != 0);

    /* The password is SASLprep'd on both sides: "I<soft hyphen>X" and U+2168 are "IX". */
    ck_assert_int_eq(scram_make_credentials(SCRAM_SHA1, "I\xc2\xadX", 100, &c), 0);
    ck_assert(scram_check_password(&c, "IX"));
    ck_assert(scram_check_password(&c, "\xe2\x85\xa8"));
    ck_assert(!scram_check_password(&c, "ix"));

    account a;
    make_rfc_account(&a);
    ck_assert(scram_check_password(&a.cred[SCRAM_SHA1], "pencil"));
    ck_assert(scram_check_password(&a.cred[SCRAM_SHA256], "pencil"));
    ck_assert(!scram_check_password(&a.cred[SCRAM_SHA1], "pencil2"));

    unsigned char salt[4] = { 1, 2, 3, 4 };
    ck_assert_int_eq(scram_derive(SCRAM_SHA1, "x", salt, 4, 0, &c), -1);
    ck_assert_int_eq(scram_derive(SCRAM_SHA1, "x", salt, 0, 1, &c), -1);
    ck_assert_int_eq(scram_derive(SCRAM_SHA1, "", salt, 4, 1, &c), -1);
    ck_assert_int_eq(scram_derive(SCRAM_SHA1, "\x07", salt, 4, 1, &c), -1);
}
END_TEST

START_TEST(base64_and_compare)
{
    char *s = scram_base64_encode((const unsigned char *)"n,,", 3);
    ck_assert_str_eq(s, "biws");
    free(s);
    s = scram_base64_encode((const unsigned char *)"", 0);
    ck_assert_str_eq(s, "");
    free(s);
    unsigned char big[200];
    memset(big, 0xfb, sizeof big);
    s = scram_base64_encode(big, sizeof big);
    ck_assert_uint_eq(strlen(s), 268); /* no line breaks */
    ck_assert_ptr_null(strchr(s, '\n'));
    unsigned char *d;
    size_t len;
    ck_assert_int_eq(scram_base64_decode(s, strlen(s), &d, &len), 0);
    ck_assert_uint_eq(len, sizeof big);
    ck_assert(memcmp(d, big, len) == 0);
    free(d);
    free(s);

    ck_assert_int_eq(scram_base64_decode("QUI=", 4, &d, &len), 0);
    ck_assert_uint_eq(len, 2);
    ck_assert(memcmp(d, "AB", 2) == 0);
    free(d);
    ck_assert_int_eq(scram_base64_decode("", 0, &d, &len), 0);
    ck_assert_uint_eq(len, 0);
    free(d);
    static const char *const bad[] = { "QUJ", "QU=D", "QU\nJ", "QUJD====", "QUJ=", "Q===", "@@@@",
                                       "QUJD QUJD", "=QUJ", "QUI=QUJD", "QUJD\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = (unsigned char *)"x";
        ck_assert_msg(scram_base64_decode(bad[i], strlen(bad[i]), &d, &len) == -1, "accepted %s",
                      bad[i]);
        ck_assert_ptr_null(d);
    }
    ck_assert(scram_const_equal("abcd", "abcd", 4));
    ck_assert(!scram_const_equal("abcd", "abce", 4));
    ck_assert(scram_const_equal("abcd", "abce", 3));
}
END_TEST

static Suite *scram_suite(void)
{
    Suite *s = suite_create("scram");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rfc5802_sha1_example);
    tcase_add_test(tc, rfc7677_sha256_example);
    tcase_add_test(tc, derive_matches_rfc_keys);
    tcase_add_test(tc, wrong_password);
    tcase_add_test(tc, unknown_user_looks_like_a_user);
    tcase_add_test(tc, unusable_stored_credentials);
    tcase_add_test(tc, downgrade_y_flag);
    tcase_add_test(tc, tls_exporter_binding);
    tcase_add_test(tc, unsupported_binding_type);
    tcase_add_test(tc, binding_flag_must_match_mechanism);
    tcase_add_test(tc, tls_unique_binding_on_tls12);
    tcase_add_test(tc, tls_unique_on_tls13_fails_after_the_proof);
    tcase_add_test(tc, y_is_honest_only_for_the_user_who_proved_it);
    tcase_add_test(tc, authzid_returned);
    tcase_add_test(tc, username_escapes_and_saslprep);
    tcase_add_test(tc, malformed_client_first);
    tcase_add_test(tc, malformed_client_final);
    tcase_add_test(tc, nonce_must_match);
    tcase_add_test(tc, extensions_in_client_final_are_covered_by_proof);
    tcase_add_test(tc, empty_initial_response);
    tcase_add_test(tc, random_server_nonce);
    tcase_add_test(tc, server_new_checks);
    tcase_add_test(tc, saslprep_rfc4013);
    tcase_add_test(tc, check_password);
    tcase_add_test(tc, base64_and_compare);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(scram_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
