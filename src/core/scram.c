/* scram.c — SCRAM-SHA-1 / SCRAM-SHA-256 server (RFC 5802, RFC 7677), with the -PLUS channel
 * bindings tls-server-end-point (RFC 5929) and tls-exporter (RFC 9266), SASLprep (RFC 4013) and the
 * derivation of the salted keys that are all we store of a password. tls-unique (RFC 5929) is
 * handled too: on TLS 1.2 it is an ordinary binding; on TLS 1.3 see scram_server_set_tls13.
 *
 * The exchange is two round trips:
 *   client-first  "n,,n=user,r=cnonce"             → server-first "r=cnonce+snonce,s=salt,i=4096"
 *   client-final  "c=biws,r=cnonce+snonce,p=proof"  → server-final "v=signature"
 * An unknown user gets a salt derived from the username and a server secret and random keys, so
 * the exchange looks the same as for a real account and fails at the proof like a wrong password.
 * Crypto and base64 come from GnuTLS; SASLprep from libidn. */
#include "core/scram.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

#include "core/util.h"


#define SCRAM_FAKE_SALT_LEN 16
#define SCRAM_SNONCE_BYTES 18 /* 24 base64 characters */

/* Frees a string that held secret material. */
static void free_secret(char *s)
{
    if (s) {
        gnutls_memset(s, 0, strlen(s));
        free(s);
    }
}

/* ---- hashes ---------------------------------------------------------------------------- */

size_t scram_hash_len(scram_hash h) { return h == SCRAM_SHA256 ? 32 : 20; }

const char *scram_hash_mech(scram_hash h) { return h == SCRAM_SHA256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1"; }

static gnutls_mac_algorithm_t hash_mac(scram_hash h)
{
    return h == SCRAM_SHA256 ? GNUTLS_MAC_SHA256 : GNUTLS_MAC_SHA1;
}

static gnutls_digest_algorithm_t hash_digest(scram_hash h)
{
    return h == SCRAM_SHA256 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA1;
}

static void hmac(scram_hash h, const void *key, size_t key_len, const void *text, size_t text_len,
                 unsigned char *out)
{
    if (gnutls_hmac_fast(hash_mac(h), key, key_len, text, text_len, out) < 0)
        abort(); /* cannot fail for SHA-1/SHA-256 short of a broken library */
}

static void digest(scram_hash h, const void *text, size_t len, unsigned char *out)
{
    if (gnutls_hash_fast(hash_digest(h), text, len, out) < 0)
        abort();
}

bool scram_const_equal(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}

/* ---- base64 ---------------------------------------------------------------------------- */

char *scram_base64_encode(const unsigned char *data, size_t len)
{
    if (len == 0)
        return xstrndup("", 0);
    gnutls_datum_t in = { (unsigned char *)data, (unsigned)len }, enc = { NULL, 0 };
    if (gnutls_base64_encode2(&in, &enc) < 0)
        abort();
    char *s = xstrndup((const char *)enc.data, enc.size);
    gnutls_free(enc.data);
    return s;
}

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* GnuTLS's decoder skips whitespace (it is built for PEM), which RFC 5802's base64 does not allow,
 * so the shape is checked here first: groups of four, padding only at the end. GnuTLS then rejects
 * non-zero padding bits. */
int scram_base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (in_len % 4 != 0)
        return -1;
    for (size_t i = 0; i < in_len; i++) {
        if (is_base64_char(in[i]))
            continue;
        if (in[i] != '=' || i + 2 < in_len || (i + 1 < in_len && in[i + 1] != '='))
            return -1;
    }
    if (in_len == 0) {
        *out = xmalloc(1);
        return 0;
    }
    gnutls_datum_t enc = { (unsigned char *)in, (unsigned)in_len }, dec = { NULL, 0 };
    if (gnutls_base64_decode2(&enc, &dec) < 0)
        return -1;
    *out = xmalloc(dec.size);
    memcpy(*out, dec.data, dec.size);
    *out_len = dec.size;
    gnutls_free(dec.data);
    return 0;
}

/* ---- SASLprep and credentials ------------------------------------------------------------ */

/* RFC 4013 via libidn. Unassigned code points are allowed (the "query" rule of RFC 3454 §7)
 * for usernames and passwords alike: libidn's tables stop at Unicode 3.2, and refusing newer
 * characters would lock out passwords that clients happily send. Unassigned code points pass
 * through SASLprep unchanged, so clients that prohibit them compute the same keys for every
 * password they accept. */
int scram_saslprep(const char *in, char **out)
{
    *out = NULL;
    char *prepped = NULL;
    if (!in || stringprep_profile(in, &prepped, "SASLprep", 0) != STRINGPREP_OK) {
        free(prepped);
        return -1;
    }
    *out = prepped;
    return 0;
}

/* RFC 5802 §3: SaltedPassword = Hi(Normalize(password), salt, i) (PBKDF2), ClientKey =
 * HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword,
 * "Server Key"). */
int scram_derive(scram_hash h, const char *password, const unsigned char *salt, size_t salt_len,
                 unsigned iterations, scram_credentials *out)
{
    memset(out, 0, sizeof *out);
    if ((h != SCRAM_SHA1 && h != SCRAM_SHA256) || !salt || salt_len == 0 ||
        salt_len > SCRAM_MAX_SALT || iterations == 0)
        return -1;
    char *prepped;
    if (scram_saslprep(password, &prepped) < 0)
        return -1;
    if (*prepped == '\0') {
        free(prepped);
        return -1;
    }
    size_t hlen = scram_hash_len(h);
    unsigned char salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY];
    gnutls_datum_t key = { (unsigned char *)prepped, (unsigned)strlen(prepped) };
    gnutls_datum_t salt_datum = { (unsigned char *)salt, (unsigned)salt_len };
    int rc = gnutls_pbkdf2(hash_mac(h), &key, &salt_datum, iterations, salted, hlen);
    free_secret(prepped);
    if (rc < 0)
        return -1;

    hmac(h, salted, hlen, "Client Key", 10, client_key);
    digest(h, client_key, hlen, out->stored_key);
    hmac(h, salted, hlen, "Server Key", 10, out->server_key);
    gnutls_memset(salted, 0, sizeof salted);
    gnutls_memset(client_key, 0, sizeof client_key);
    out->hash = h;
    out->iterations = iterations;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    return 0;
}

int scram_make_credentials(scram_hash h, const char *password, unsigned iterations,
                           scram_credentials *out)
{
    unsigned char salt[16];
    if (gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof salt) < 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return scram_derive(h, password, salt, sizeof salt, iterations, out);
}

bool scram_check_password(const scram_credentials *cred, const char *password)
{
    scram_credentials attempt;
    if (scram_derive(cred->hash, password, cred->salt, cred->salt_len, cred->iterations,
                     &attempt) < 0)
        return false;
    bool ok = scram_const_equal(attempt.stored_key, cred->stored_key, scram_hash_len(cred->hash));
    gnutls_memset(&attempt, 0, sizeof attempt);
    return ok;
}

/* ---- server state ------------------------------------------------------------------------- */

enum scram_state { STATE_START, STATE_SENT_FIRST, STATE_DONE };

struct scram_server {
    scram_hash hash;
    bool plus, plus_offered;
    bool tls13;                 /* tls-unique does not exist on this channel */
    char *honest_y_user;        /* scram_server_allow_y */
    scram_channel_binding *bindings; /* deep copies */
    size_t n_bindings;
    scram_lookup_fn lookup;
    void *lookup_ctx;
    unsigned char *secret;
    size_t secret_len;

    enum scram_state state;
    bool sent_empty_challenge;
    bool succeeded;
    bool failed_on_binding;
    char *forced_snonce;

    char *gs2_header; /* "n,," / "p=tls-exporter,a=juliet@example.com," ... */
    const scram_channel_binding *binding; /* chosen with p=, else NULL */
    bool tls13_unique;          /* p=tls-unique on a TLS 1.3 channel: run to the proof, then fail */
    bool proved_unbindable;     /* ...and the proof and the binding data's length showed it */
    char *username;   /* SASLprep'd */
    char *authzid;
    char *client_first_bare;
    char *server_first;
    char *nonce;      /* cnonce + snonce */
    scram_credentials cred;
    bool user_exists;
};

scram_server *scram_server_new(scram_hash h, bool plus, const scram_channel_binding *bindings,
                               size_t n_bindings, bool plus_offered, scram_lookup_fn lookup,
                               void *lookup_ctx, const unsigned char *secret, size_t secret_len)
{
    if ((h != SCRAM_SHA1 && h != SCRAM_SHA256) || !lookup || !secret || secret_len < 16)
        return NULL;
    scram_server *s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->hash = h;
    s->plus = plus;
    s->plus_offered = plus_offered;
    s->lookup = lookup;
    s->lookup_ctx = lookup_ctx;
    s->secret = xmalloc(secret_len);
    memcpy(s->secret, secret, secret_len);
    s->secret_len = secret_len;
    if (n_bindings > 0) {
        s->bindings = xmalloc(n_bindings * sizeof *s->bindings);
        for (size_t i = 0; i < n_bindings; i++) {
            unsigned char *data = xmalloc(bindings[i].len);
            if (bindings[i].len)
                memcpy(data, bindings[i].data, bindings[i].len);
            s->bindings[i].type = xstrndup(bindings[i].type, strlen(bindings[i].type));
            s->bindings[i].data = data;
            s->bindings[i].len = bindings[i].len;
        }
        s->n_bindings = n_bindings;
    }
    return s;
}

void scram_server_free(scram_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_bindings; i++) {
        free((char *)s->bindings[i].type);
        free((unsigned char *)s->bindings[i].data);
    }
    free(s->bindings);
    gnutls_memset(s->secret, 0, s->secret_len);
    free(s->secret);
    free(s->forced_snonce);
    free(s->honest_y_user);
    free(s->gs2_header);
    free(s->username);
    free(s->authzid);
    free(s->client_first_bare);
    free(s->server_first);
    free(s->nonce);
    gnutls_memset(&s->cred, 0, sizeof s->cred);
    free(s);
}

void scram_server_set_nonce_for_test(scram_server *s, const char *snonce)
{
    free(s->forced_snonce);
    s->forced_snonce = xstrndup(snonce, strlen(snonce));
}

const char *scram_server_username(const scram_server *s) { return s->succeeded ? s->username : NULL; }

const char *scram_server_authzid(const scram_server *s) { return s->succeeded ? s->authzid : NULL; }

bool scram_server_failed_on_binding(const scram_server *s) { return s->failed_on_binding; }

void scram_server_set_tls13(scram_server *s) { s->tls13 = true; }

const char *scram_server_unbindable_user(const scram_server *s)
{
    return s->proved_unbindable ? s->username : NULL;
}

void scram_server_allow_y(scram_server *s, const char *username)
{
    free(s->honest_y_user);
    s->honest_y_user = username ? xstrndup(username, strlen(username)) : NULL;
}

/* ---- message parsing (RFC 5802 §7) --------------------------------------------------------- */

/* Returns the length of the attribute value starting at p (up to ',' or the end). */
static size_t value_len(const char *p)
{
    const char *comma = strchr(p, ',');
    return comma ? (size_t)(comma - p) : strlen(p);
}

/* saslname = 1*(value-safe-char / "=2C" / "=3D"): ',' and '=' only as escapes. */
static int decode_saslname(const char *p, size_t len, char **out)
{
    *out = NULL;
    if (len == 0)
        return -1;
    char *s = xmalloc(len + 1), *w = s;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '=') {
            *w++ = p[i];
        } else if (i + 3 <= len && strncmp(p + i, "=2C", 3) == 0) {
            *w++ = ',';
            i += 2;
        } else if (i + 3 <= len && strncmp(p + i, "=3D", 3) == 0) {
            *w++ = '=';
            i += 2;
        } else {
            free(s);
            return -1;
        }
    }
    *w = '\0';
    *out = s;
    return 0;
}

/* printable = %x21-2B / %x2D-7E (no ',') */
static bool valid_nonce(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e || p[i] == ',')
            return false;
    return true;
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* cb-name = 1*(ALPHA / DIGIT / "." / "-") */
static bool valid_cb_name(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha(p[i]) && !(p[i] >= '0' && p[i] <= '9') && p[i] != '.' && p[i] != '-')
            return false;
    return true;
}

/* extensions = attr-val *("," attr-val), attr-val = ALPHA "=" value. We support none; "m" is the
 * reserved mandatory extension, whose presence MUST fail authentication (RFC 5802 §5.1). */
static bool valid_extensions(const char *p)
{
    for (;;) {
        if (!is_alpha(p[0]) || p[1] != '=' || p[0] == 'm')
            return false;
        const char *comma = strchr(p, ',');
        if (!comma)
            return true;
        p = comma + 1;
    }
}

enum cb_flag { CB_NONE, CB_CLIENT_ONLY, CB_USED };

typedef struct client_first {
    enum cb_flag flag;
    const char *cb_name;
    size_t cb_name_len;
    size_t gs2_header_len;
    char *authzid;
    char *username; /* decoded, not yet SASLprep'd */
    const char *nonce;
    size_t nonce_len;
} client_first;

/* Parses client-first-message. Returns 0 or -1 (malformed). Pointers point into msg. */
static int parse_client_first(const char *msg, client_first *cf)
{
    memset(cf, 0, sizeof *cf);
    const char *p = msg;
    if (p[0] == 'n' && p[1] == ',') {
        cf->flag = CB_NONE;
        p += 2;
    } else if (p[0] == 'y' && p[1] == ',') {
        cf->flag = CB_CLIENT_ONLY;
        p += 2;
    } else if (p[0] == 'p' && p[1] == '=') {
        cf->flag = CB_USED;
        cf->cb_name = p + 2;
        cf->cb_name_len = value_len(cf->cb_name);
        if (!valid_cb_name(cf->cb_name, cf->cb_name_len) || cf->cb_name[cf->cb_name_len] != ',')
            return -1;
        p = cf->cb_name + cf->cb_name_len + 1;
    } else {
        return -1;
    }
    if (p[0] == 'a' && p[1] == '=') {
        size_t len = value_len(p + 2);
        if (decode_saslname(p + 2, len, &cf->authzid) < 0)
            return -1;
        p += 2 + len;
    }
    if (*p != ',')
        goto bad;
    p++;
    cf->gs2_header_len = (size_t)(p - msg);

    /* client-first-message-bare: a leading "m=" is the reserved extension; refused. */
    if (p[0] != 'n' || p[1] != '=')
        goto bad;
    size_t len = value_len(p + 2);
    if (decode_saslname(p + 2, len, &cf->username) < 0)
        goto bad;
    p += 2 + len;
    if (p[0] != ',' || p[1] != 'r' || p[2] != '=')
        goto bad;
    cf->nonce = p + 3;
    cf->nonce_len = value_len(cf->nonce);
    if (!valid_nonce(cf->nonce, cf->nonce_len))
        goto bad;
    p = cf->nonce + cf->nonce_len;
    if (*p == ',' && !valid_extensions(p + 1))
        goto bad;
    return 0;
bad:
    free(cf->authzid);
    free(cf->username);
    cf->authzid = cf->username = NULL;
    return -1;
}

/* ---- steps ----------------------------------------------------------------------------------- */

static scram_status fail(scram_server *s, const char *condition, const char **failure)
{
    s->state = STATE_DONE;
    *failure = condition;
    return SCRAM_FAILURE;
}

static const scram_channel_binding *find_binding(const scram_server *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n_bindings; i++)
        if (strlen(s->bindings[i].type) == len && memcmp(s->bindings[i].type, name, len) == 0)
            return &s->bindings[i];
    return NULL;
}

/* Credentials for an unknown user: salt = HMAC-SHA-256(secret, username) truncated, so the same
 * name always gets the same salt (an attacker cannot tell by asking twice), default iteration
 * count, and random keys no proof can match. Computed for every user so both paths do the same
 * work. */
static void fake_credentials(const scram_server *s, scram_credentials *out)
{
    unsigned char mac[32];
    memset(out, 0, sizeof *out);
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, s->secret, s->secret_len, s->username,
                         strlen(s->username), mac) < 0)
        abort();
    out->hash = s->hash;
    out->iterations = SCRAM_DEFAULT_ITERATIONS;
    memcpy(out->salt, mac, SCRAM_FAKE_SALT_LEN);
    out->salt_len = SCRAM_FAKE_SALT_LEN;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, out->stored_key, sizeof out->stored_key) < 0 ||
        gnutls_rnd(GNUTLS_RND_RANDOM, out->server_key, sizeof out->server_key) < 0)
        abort();
}

static void load_credentials(scram_server *s)
{
    scram_credentials fake, real;
    fake_credentials(s, &fake);
    memset(&real, 0, sizeof real);
    s->user_exists = s->lookup(s->lookup_ctx, s->username, s->hash, &real) == 1;
    /* Credentials for another hash or with an impossible salt/count cannot verify anything;
     * treat them as no account (the lookup, which knows the storage, reports corruption). */
    if (s->user_exists && (real.hash != s->hash || real.iterations == 0 || real.salt_len == 0 ||
                           real.salt_len > SCRAM_MAX_SALT))
        s->user_exists = false;
    s->cred = s->user_exists ? real : fake;
    gnutls_memset(&real, 0, sizeof real);
    gnutls_memset(&fake, 0, sizeof fake);
}

static char *make_snonce(const scram_server *s)
{
    if (s->forced_snonce)
        return xstrndup(s->forced_snonce, strlen(s->forced_snonce));
    unsigned char raw[SCRAM_SNONCE_BYTES];
    if (gnutls_rnd(GNUTLS_RND_NONCE, raw, sizeof raw) < 0)
        abort();
    return scram_base64_encode(raw, sizeof raw); /* base64 is "printable" and has no ',' */
}

static scram_status step_client_first(scram_server *s, const char *msg, char **out,
                                      size_t *out_len, const char **failure)
{
    client_first cf;
    if (parse_client_first(msg, &cf) < 0)
        return fail(s, "malformed-request", failure);

    /* Channel binding negotiation (RFC 5802 §6). */
    scram_status st = SCRAM_CONTINUE;
    if (cf.flag == CB_USED && !s->plus) {
        st = fail(s, "malformed-request", failure); /* p= only with a -PLUS mechanism */
    } else if (cf.flag != CB_USED && s->plus) {
        st = fail(s, "malformed-request", failure); /* -PLUS chosen but no binding used */
    } else if (cf.flag == CB_USED &&
               !(s->binding = find_binding(s, cf.cb_name, cf.cb_name_len))) {
        if (s->tls13 && cf.cb_name_len == 10 && memcmp(cf.cb_name, "tls-unique", 10) == 0) {
            s->tls13_unique = true; /* fails at the proof (see scram_server_set_tls13) */
        } else {
            s->failed_on_binding = true;
            *out = xstrndup("e=unsupported-channel-binding-type", 34);
            *out_len = 34;
            st = fail(s, "not-authorized", failure);
        }
    }
    if (st == SCRAM_FAILURE) {
        free(cf.authzid);
        free(cf.username);
        return st;
    }

    /* RFC 5802 §5.1: the username is SASLprep'd as a query; failure or an empty result aborts. */
    int prep = scram_saslprep(cf.username, &s->username);
    free(cf.username);
    if (prep < 0 || *s->username == '\0') {
        free(cf.authzid);
        return fail(s, "malformed-request", failure);
    }
    /* "y": the client supports binding but believes we do not, while we offered -PLUS. Someone
     * stripped our mechanisms (downgrade attack), unless this user's client proved on this
     * stream that it has no binding we could check. Decided before any credential check. */
    if (cf.flag == CB_CLIENT_ONLY && s->plus_offered &&
        !(s->honest_y_user && strcmp(s->honest_y_user, s->username) == 0)) {
        s->failed_on_binding = true;
        free(cf.authzid);
        return fail(s, "not-authorized", failure);
    }
    s->authzid = cf.authzid;
    s->gs2_header = xstrndup(msg, cf.gs2_header_len);
    s->client_first_bare = xstrndup(msg + cf.gs2_header_len, strlen(msg + cf.gs2_header_len));
    load_credentials(s);

    char *snonce = make_snonce(s);
    size_t nonce_len = cf.nonce_len + strlen(snonce);
    s->nonce = xmalloc(nonce_len + 1);
    memcpy(s->nonce, cf.nonce, cf.nonce_len);
    memcpy(s->nonce + cf.nonce_len, snonce, strlen(snonce) + 1);
    free(snonce);

    char *salt = scram_base64_encode(s->cred.salt, s->cred.salt_len);
    size_t len = strlen(s->nonce) + strlen(salt) + 32;
    s->server_first = xmalloc(len);
    snprintf(s->server_first, len, "r=%s,s=%s,i=%u", s->nonce, salt, s->cred.iterations);
    free(salt);

    *out = xstrndup(s->server_first, strlen(s->server_first));
    *out_len = strlen(*out);
    s->state = STATE_SENT_FIRST;
    return SCRAM_CONTINUE;
}

/* The c= attribute carries base64(gs2-header [cbind-data]) (RFC 5802 §7). */
static bool channel_binding_matches(const scram_server *s, const unsigned char *c, size_t c_len)
{
    size_t hlen = strlen(s->gs2_header);
    if (s->tls13_unique)
        return false; /* nothing here to compare with */
    size_t cb_len = s->binding ? s->binding->len : 0;
    if (c_len != hlen + cb_len || memcmp(c, s->gs2_header, hlen) != 0)
        return false;
    return cb_len == 0 || scram_const_equal(c + hlen, s->binding->data, cb_len);
}

static scram_status step_client_final(scram_server *s, const char *msg, char **out,
                                      size_t *out_len, const char **failure)
{
    /* client-final-message = "c=" base64 ",r=" nonce ["," extensions] ",p=" base64, with the
     * proof always last; base64 has no ',' so the last ",p=" starts it. */
    const char *proof_attr = NULL;
    for (const char *p = strstr(msg, ",p="); p; p = strstr(p + 1, ",p="))
        proof_attr = p;
    if (!proof_attr || strncmp(msg, "c=", 2) != 0)
        return fail(s, "malformed-request", failure);
    size_t without_proof_len = (size_t)(proof_attr - msg);
    const char *proof_b64 = proof_attr + 3;

    size_t cb_b64_len = value_len(msg + 2);
    const char *r = msg + 2 + cb_b64_len;
    if (strncmp(r, ",r=", 3) != 0)
        return fail(s, "malformed-request", failure);
    r += 3;
    size_t r_len = value_len(r);
    if (r + r_len < proof_attr && !valid_extensions(r + r_len + 1))
        return fail(s, "malformed-request", failure);
    if (r + r_len > proof_attr)
        return fail(s, "malformed-request", failure);

    unsigned char *cbind = NULL, *proof = NULL;
    size_t cbind_len, proof_len;
    size_t hlen = scram_hash_len(s->hash);
    if (scram_base64_decode(msg + 2, cb_b64_len, &cbind, &cbind_len) < 0 ||
        scram_base64_decode(proof_b64, strlen(proof_b64), &proof, &proof_len) < 0 ||
        proof_len != hlen) {
        free(cbind);
        free(proof);
        return fail(s, "malformed-request", failure);
    }
    bool cb_ok = channel_binding_matches(s, cbind, cbind_len);
    bool nonce_ok = r_len == strlen(s->nonce) && memcmp(r, s->nonce, r_len) == 0;
    /* A TLS 1.3 Finished is as long as the suite's hash (SHA-256 or SHA-384); a TLS 1.2 one, 12
     * bytes, would mean the client is on TLS 1.2 and some other TLS session than ours. */
    size_t ghlen = strlen(s->gs2_header);
    size_t unique_len = cbind_len > ghlen ? cbind_len - ghlen : 0;
    bool tls13_finished = s->tls13_unique && unique_len > 0 &&
                          memcmp(cbind, s->gs2_header, ghlen) == 0 &&
                          (unique_len == 32 || unique_len == 48);
    free(cbind);

    /* AuthMessage = client-first-message-bare "," server-first-message ","
     *               client-final-message-without-proof                      (RFC 5802 §3) */
    size_t bare_len = strlen(s->client_first_bare), sf_len = strlen(s->server_first);
    size_t am_len = bare_len + 1 + sf_len + 1 + without_proof_len;
    char *auth_message = xmalloc(am_len);
    memcpy(auth_message, s->client_first_bare, bare_len);
    auth_message[bare_len] = ',';
    memcpy(auth_message + bare_len + 1, s->server_first, sf_len);
    auth_message[bare_len + 1 + sf_len] = ',';
    memcpy(auth_message + bare_len + 2 + sf_len, msg, without_proof_len);

    /* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); valid if H(ClientKey) equals
     * StoredKey. Done identically for unknown users, whose random StoredKey no proof matches. */
    unsigned char signature[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], check[SCRAM_MAX_KEY];
    hmac(s->hash, s->cred.stored_key, hlen, auth_message, am_len, signature);
    for (size_t i = 0; i < hlen; i++)
        client_key[i] = proof[i] ^ signature[i];
    digest(s->hash, client_key, hlen, check);
    bool proof_ok = scram_const_equal(check, s->cred.stored_key, hlen);
    free(proof);
    gnutls_memset(client_key, 0, sizeof client_key);

    if (s->tls13_unique && proof_ok & nonce_ok & s->user_exists) {
        /* The password holder asked for a binding that cannot exist here: no credential
         * failure, and if it was tls-unique over TLS 1.3, a proof that this client cannot
         * bind (scram_server_unbindable_user). */
        s->failed_on_binding = true;
        s->proved_unbindable = tls13_finished;
        free(auth_message);
        *out = xstrndup("e=unsupported-channel-binding-type", 34);
        *out_len = 34;
        return fail(s, "not-authorized", failure);
    }
    if (!(proof_ok & cb_ok & nonce_ok & s->user_exists)) {
        free(auth_message);
        return fail(s, "not-authorized", failure);
    }
    hmac(s->hash, s->cred.server_key, hlen, auth_message, am_len, signature);
    free(auth_message);
    char *v = scram_base64_encode(signature, hlen);
    *out_len = 2 + strlen(v);
    *out = xmalloc(*out_len + 1);
    memcpy(*out, "v=", 2);
    memcpy(*out + 2, v, strlen(v) + 1);
    free(v);
    s->state = STATE_DONE;
    s->succeeded = true;
    return SCRAM_SUCCESS;
}

scram_status scram_server_step(scram_server *s, const char *in, size_t in_len, char **out,
                               size_t *out_len, const char **failure)
{
    *out = NULL;
    *out_len = 0;
    *failure = NULL;

    /* No initial response: answer once with an empty challenge so the client sends its
     * client-first-message (RFC 6120 §6.4.2). */
    if (s->state == STATE_START && in_len == 0 && !s->sent_empty_challenge) {
        s->sent_empty_challenge = true;
        *out = xstrndup("", 0);
        return SCRAM_CONTINUE;
    }
    if (s->state == STATE_DONE || !in || in_len == 0 || memchr(in, '\0', in_len))
        return fail(s, "malformed-request", failure);

    char *msg = xstrndup(in, in_len);
    scram_status st = s->state == STATE_START ? step_client_first(s, msg, out, out_len, failure)
                                              : step_client_final(s, msg, out, out_len, failure);
    free(msg);
    return st;
}
