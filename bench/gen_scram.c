/* gen_scram.c — client SASL for the load generator (see gen_scram.h). Crypto and base64 come
 * from GnuTLS, like the server's src/core/scram.c. */
#include "gen_scram.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 32  /* SHA-256 output */
#define SALT_MAX 64 /* decoded; servers use 12..32 bytes */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

const char *gen_mech_name(gen_mech m)
{
    switch (m) {
    case GEN_MECH_PLAIN: return "PLAIN";
    case GEN_MECH_SCRAM_SHA1: return "SCRAM-SHA-1";
    case GEN_MECH_SCRAM_SHA256: return "SCRAM-SHA-256";
    }
    return "?";
}

int gen_mech_parse(const char *name, gen_mech *out)
{
    for (int m = GEN_MECH_PLAIN; m <= GEN_MECH_SCRAM_SHA256; m++)
        if (strcmp(name, gen_mech_name((gen_mech)m)) == 0) {
            *out = (gen_mech)m;
            return 0;
        }
    return -1;
}

/* ------------------------------------------------------------------ base64 */

static char *b64_encode(const void *data, size_t len)
{
    gnutls_datum_t in = { (unsigned char *)data, (unsigned)len }, out = { NULL, 0 };
    if (gnutls_base64_encode2(&in, &out) < 0)
        abort();
    char *s = xmalloc(out.size + 1);
    memcpy(s, out.data, out.size);
    s[out.size] = '\0';
    gnutls_free(out.data);
    return s;
}

/* Decodes into a malloc'd NUL-terminated buffer; -1 on bad input. */
static int b64_decode(const char *in, unsigned char **out, size_t *out_len)
{
    size_t n = strlen(in);
    if (n == 0 || (n == 1 && in[0] == '=')) { /* RFC 6120 §6.4.2: "=" is an empty response */
        *out = xmalloc(1);
        (*out)[0] = 0;
        *out_len = 0;
        return 0;
    }
    gnutls_datum_t d = { (unsigned char *)in, (unsigned)n }, r = { NULL, 0 };
    if (gnutls_base64_decode2(&d, &r) < 0)
        return -1;
    *out = xmalloc(r.size + 1);
    memcpy(*out, r.data, r.size);
    (*out)[r.size] = 0;
    *out_len = r.size;
    gnutls_free(r.data);
    return 0;
}

char *gen_plain_response(const char *user, const char *password)
{
    size_t ul = strlen(user), pl = strlen(password);
    char *msg = xmalloc(ul + pl + 2);
    msg[0] = '\0'; /* no authzid (RFC 4616 §2) */
    memcpy(msg + 1, user, ul);
    msg[1 + ul] = '\0';
    memcpy(msg + 2 + ul, password, pl);
    char *b = b64_encode(msg, ul + pl + 2);
    free(msg);
    return b;
}

/* ------------------------------------------------------------------ key cache */

typedef struct key_entry {
    bool valid;
    gen_mech mech;
    unsigned iterations;
    size_t salt_len;
    unsigned char salt[SALT_MAX];
    unsigned char client_key[KEY_MAX], server_key[KEY_MAX];
} key_entry;

struct gen_key_cache {
    size_t n;
    key_entry *e;
    unsigned long derivations;
};

gen_key_cache *gen_key_cache_new(size_t n)
{
    gen_key_cache *kc = xmalloc(sizeof *kc);
    kc->n = n;
    kc->e = calloc(n ? n : 1, sizeof *kc->e);
    if (!kc->e)
        abort();
    kc->derivations = 0;
    return kc;
}

void gen_key_cache_free(gen_key_cache *kc)
{
    if (!kc)
        return;
    free(kc->e);
    free(kc);
}

unsigned long gen_key_cache_derivations(const gen_key_cache *kc)
{
    return kc ? kc->derivations : 0;
}

static void hex_out(FILE *f, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

static int hex_in(const char *s, unsigned char *out, size_t max, size_t *n)
{
    size_t len = strlen(s);
    if (len % 2 || len / 2 > max)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *n = len / 2;
    return 0;
}

/* One line per user: USER MECH ITERATIONS SALT_HEX CLIENTKEY_HEX SERVERKEY_HEX */
int gen_key_cache_save(const gen_key_cache *kc, const char *path, const char *prefix, long first)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < kc->n; i++) {
        const key_entry *e = &kc->e[i];
        if (!e->valid)
            continue;
        size_t kl = e->mech == GEN_MECH_SCRAM_SHA1 ? 20 : 32;
        fprintf(f, "%s%ld %s %u ", prefix, first + (long)i, gen_mech_name(e->mech), e->iterations);
        hex_out(f, e->salt, e->salt_len);
        fputc(' ', f);
        hex_out(f, e->client_key, kl);
        fputc(' ', f);
        hex_out(f, e->server_key, kl);
        fputc('\n', f);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -1;
    return 0;
}

long gen_key_cache_load(gen_key_cache *kc, const char *path, const char *prefix, long first)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char user[256], mech[32], salt[2 * SALT_MAX + 2], ck[2 * KEY_MAX + 2], sk[2 * KEY_MAX + 2];
    unsigned iter;
    long loaded = 0;
    size_t pl = strlen(prefix);
    while (fscanf(f, "%255s %31s %u %129s %65s %65s", user, mech, &iter, salt, ck, sk) == 6) {
        if (strncmp(user, prefix, pl) != 0)
            continue;
        char *end;
        long num = strtol(user + pl, &end, 10);
        if (*end || num < first || (size_t)(num - first) >= kc->n)
            continue;
        key_entry e = { .valid = true, .iterations = iter };
        size_t n1, n2;
        if (gen_mech_parse(mech, &e.mech) < 0 || e.mech == GEN_MECH_PLAIN ||
            hex_in(salt, e.salt, SALT_MAX, &e.salt_len) < 0 ||
            hex_in(ck, e.client_key, KEY_MAX, &n1) < 0 || hex_in(sk, e.server_key, KEY_MAX, &n2) < 0)
            continue;
        kc->e[num - first] = e;
        loaded++;
    }
    fclose(f);
    return loaded;
}

/* ------------------------------------------------------------------ SCRAM */

struct gen_scram {
    gen_mech mech;
    char *user, *password;
    gen_key_cache *kc;
    size_t slot;
    char nonce[40];
    char *client_first_bare;
    unsigned char server_signature[KEY_MAX];
};

static gnutls_mac_algorithm_t mac_of(gen_mech m)
{
    return m == GEN_MECH_SCRAM_SHA1 ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256;
}

static size_t key_len(gen_mech m)
{
    return m == GEN_MECH_SCRAM_SHA1 ? 20 : 32;
}

gen_scram *gen_scram_new(gen_mech m, const char *user, const char *password, gen_key_cache *kc,
                         size_t slot)
{
    gen_scram *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->mech = m;
    s->user = xstrdup(user);
    s->password = xstrdup(password);
    s->kc = kc;
    s->slot = slot;
    unsigned char rnd[18];
    if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof rnd) < 0)
        abort();
    char *b = b64_encode(rnd, sizeof rnd); /* 24 chars, never a ',' (RFC 5802 §7 "printable") */
    snprintf(s->nonce, sizeof s->nonce, "%s", b);
    free(b);
    return s;
}

void gen_scram_free(gen_scram *s)
{
    if (!s)
        return;
    free(s->user);
    free(s->password);
    free(s->client_first_bare);
    free(s);
}

char *gen_scram_first(gen_scram *s)
{
    /* RFC 5802 §5.1: a username containing ',' or '=' would need escaping; the generator's
     * user names are letters and digits. */
    size_t n = strlen(s->user) + strlen(s->nonce) + 8;
    s->client_first_bare = xmalloc(n);
    snprintf(s->client_first_bare, n, "n=%s,r=%s", s->user, s->nonce);
    size_t m = n + 3;
    char *first = xmalloc(m);
    snprintf(first, m, "n,,%s", s->client_first_bare);
    char *b = b64_encode(first, strlen(first));
    free(first);
    return b;
}

/* The value of attribute `name` ("r", "s", "i", "v") in a SCRAM message, malloc'd, or NULL. */
static char *scram_attr(const char *msg, char name)
{
    const char *p = msg;
    while (p && *p) {
        if (p[0] == name && p[1] == '=') {
            const char *end = strchr(p + 2, ',');
            size_t n = end ? (size_t)(end - p - 2) : strlen(p + 2);
            char *v = xmalloc(n + 1);
            memcpy(v, p + 2, n);
            v[n] = '\0';
            return v;
        }
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return NULL;
}

/* ClientKey and ServerKey for this salt and count, from the cache or one PBKDF2. */
static int derive_keys(gen_scram *s, const unsigned char *salt, size_t salt_len, unsigned iter,
                       unsigned char *ck, unsigned char *sk)
{
    size_t kl = key_len(s->mech);
    key_entry *e = s->kc && s->slot < s->kc->n ? &s->kc->e[s->slot] : NULL;
    if (e && e->valid && e->mech == s->mech && e->iterations == iter && e->salt_len == salt_len &&
        memcmp(e->salt, salt, salt_len) == 0) {
        memcpy(ck, e->client_key, kl);
        memcpy(sk, e->server_key, kl);
        return 0;
    }
    unsigned char salted[KEY_MAX];
    gnutls_datum_t key = { (unsigned char *)s->password, (unsigned)strlen(s->password) };
    gnutls_datum_t sd = { (unsigned char *)salt, (unsigned)salt_len };
    if (gnutls_pbkdf2(mac_of(s->mech), &key, &sd, iter, salted, kl) < 0)
        return -1;
    if (gnutls_hmac_fast(mac_of(s->mech), salted, kl, "Client Key", 10, ck) < 0 ||
        gnutls_hmac_fast(mac_of(s->mech), salted, kl, "Server Key", 10, sk) < 0)
        return -1;
    if (s->kc)
        s->kc->derivations++;
    if (e && salt_len <= SALT_MAX) {
        e->valid = true;
        e->mech = s->mech;
        e->iterations = iter;
        e->salt_len = salt_len;
        memcpy(e->salt, salt, salt_len);
        memcpy(e->client_key, ck, kl);
        memcpy(e->server_key, sk, kl);
    }
    return 0;
}

char *gen_scram_final(gen_scram *s, const char *challenge_b64)
{
    unsigned char *server_first = NULL, *salt = NULL;
    size_t sf_len, salt_len;
    char *r = NULL, *salt_b64 = NULL, *iter_s = NULL, *result = NULL, *auth_message = NULL;
    char *without_proof = NULL;
    if (b64_decode(challenge_b64, &server_first, &sf_len) < 0 || strlen((char *)server_first) != sf_len)
        goto out;
    r = scram_attr((char *)server_first, 'r');
    salt_b64 = scram_attr((char *)server_first, 's');
    iter_s = scram_attr((char *)server_first, 'i');
    /* RFC 5802 §5.1: the server's nonce must start with ours. */
    if (!r || !salt_b64 || !iter_s || strncmp(r, s->nonce, strlen(s->nonce)) != 0 ||
        strlen(r) <= strlen(s->nonce))
        goto out;
    char *end;
    unsigned long iter = strtoul(iter_s, &end, 10);
    if (*end || iter == 0 || iter > 10000000 || b64_decode(salt_b64, &salt, &salt_len) < 0 ||
        salt_len == 0)
        goto out;
    size_t kl = key_len(s->mech);
    unsigned char ck[KEY_MAX], sk[KEY_MAX], stored[KEY_MAX], sig[KEY_MAX], proof[KEY_MAX];
    if (derive_keys(s, salt, salt_len, (unsigned)iter, ck, sk) < 0)
        goto out;
    size_t wl = strlen(r) + 16;
    without_proof = xmalloc(wl);
    snprintf(without_proof, wl, "c=biws,r=%s", r); /* biws = base64("n,,") */
    size_t al = strlen(s->client_first_bare) + sf_len + strlen(without_proof) + 3;
    auth_message = xmalloc(al);
    snprintf(auth_message, al, "%s,%s,%s", s->client_first_bare, (char *)server_first, without_proof);
    gnutls_digest_algorithm_t dig = s->mech == GEN_MECH_SCRAM_SHA1 ? GNUTLS_DIG_SHA1 : GNUTLS_DIG_SHA256;
    if (gnutls_hash_fast(dig, ck, kl, stored) < 0 ||
        gnutls_hmac_fast(mac_of(s->mech), stored, kl, auth_message, strlen(auth_message), sig) < 0 ||
        gnutls_hmac_fast(mac_of(s->mech), sk, kl, auth_message, strlen(auth_message),
                         s->server_signature) < 0)
        goto out;
    for (size_t i = 0; i < kl; i++)
        proof[i] = ck[i] ^ sig[i];
    char *proof_b64 = b64_encode(proof, kl);
    size_t fl = strlen(without_proof) + strlen(proof_b64) + 4;
    char *final = xmalloc(fl);
    snprintf(final, fl, "%s,p=%s", without_proof, proof_b64);
    result = b64_encode(final, strlen(final));
    free(final);
    free(proof_b64);
out:
    free(server_first);
    free(salt);
    free(r);
    free(salt_b64);
    free(iter_s);
    free(auth_message);
    free(without_proof);
    return result;
}

bool gen_scram_verify(gen_scram *s, const char *success_b64)
{
    unsigned char *msg = NULL, *sig = NULL;
    size_t len, sig_len;
    bool ok = false;
    if (b64_decode(success_b64, &msg, &len) == 0) {
        char *v = scram_attr((char *)msg, 'v');
        if (v && b64_decode(v, &sig, &sig_len) == 0 && sig_len == key_len(s->mech) &&
            memcmp(sig, s->server_signature, sig_len) == 0)
            ok = true;
        free(v);
    }
    free(msg);
    free(sig);
    return ok;
}
