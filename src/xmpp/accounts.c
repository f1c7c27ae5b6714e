/* accounts.c — user accounts: SCRAM credentials (never a password) in the "accounts" keyval
 * store, keyed by the prepared bare JID.
 *
 * Record format (version 1), all integers big-endian:
 *   version (1 byte) = 1
 *   flags   (1 byte): bit 0 = disabled
 *   then for each SCRAM hash, in hash id order:
 *     hash id (1) | iterations (4) | salt length (1) | salt | StoredKey | ServerKey
 *     (key lengths are scram_hash_len(hash id): 20 for SHA-1, 32 for SHA-256)
 * An unknown version is refused rather than guessed at, so a newer ternd's records are never
 * rewritten by an older ternctl.
 *
 * Changes go through storage_kv_update, so check-and-write (create only if absent, change
 * the password but keep the flags) happens in one write transaction. The slow part, PBKDF2
 * (RFC 5802 §3 Hi()), runs before that transaction opens. */
#include "xmpp/accounts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/storage_env.h"
#include "tern/log.h"

#define RECORD_VERSION 1
#define FLAG_DISABLED 0x01
#define RECORD_MAX (2 + SCRAM_HASH_COUNT * (1 + 4 + 1 + SCRAM_MAX_SALT + 2 * SCRAM_MAX_KEY))

typedef struct account_record {
    unsigned char flags;
    bool has[SCRAM_HASH_COUNT];
    scram_credentials cred[SCRAM_HASH_COUNT];
} account_record;

/* ---- record encoding ---- */

static size_t record_encode(const account_record *r, unsigned char *out)
{
    size_t n = 0;
    out[n++] = RECORD_VERSION;
    out[n++] = r->flags;
    for (int h = 0; h < SCRAM_HASH_COUNT; h++) {
        if (!r->has[h])
            continue;
        const scram_credentials *c = &r->cred[h];
        size_t klen = scram_hash_len((scram_hash)h);
        out[n++] = (unsigned char)h;
        out[n++] = (unsigned char)(c->iterations >> 24);
        out[n++] = (unsigned char)(c->iterations >> 16);
        out[n++] = (unsigned char)(c->iterations >> 8);
        out[n++] = (unsigned char)c->iterations;
        out[n++] = (unsigned char)c->salt_len;
        memcpy(out + n, c->salt, c->salt_len);
        n += c->salt_len;
        memcpy(out + n, c->stored_key, klen);
        n += klen;
        memcpy(out + n, c->server_key, klen);
        n += klen;
    }
    return n;
}

static int record_decode(const unsigned char *in, size_t len, account_record *r)
{
    memset(r, 0, sizeof *r);
    if (len < 2 || in[0] != RECORD_VERSION)
        return -1;
    r->flags = in[1];
    size_t n = 2;
    while (n < len) {
        if (len - n < 6 || in[n] >= SCRAM_HASH_COUNT)
            return -1;
        scram_hash h = (scram_hash)in[n];
        scram_credentials *c = &r->cred[h];
        size_t klen = scram_hash_len(h);
        c->hash = h;
        c->iterations = (unsigned)in[n + 1] << 24 | (unsigned)in[n + 2] << 16 |
                        (unsigned)in[n + 3] << 8 | in[n + 4];
        c->salt_len = in[n + 5];
        n += 6;
        if (c->salt_len > SCRAM_MAX_SALT || len - n < c->salt_len + 2 * klen)
            return -1;
        memcpy(c->salt, in + n, c->salt_len);
        n += c->salt_len;
        memcpy(c->stored_key, in + n, klen);
        n += klen;
        memcpy(c->server_key, in + n, klen);
        n += klen;
        r->has[h] = true;
    }
    return 0;
}

static void *record_copy(const account_record *r, size_t *len)
{
    unsigned char buf[RECORD_MAX];
    *len = record_encode(r, buf);
    void *out = xmalloc(*len);
    memcpy(out, buf, *len);
    explicit_bzero(buf, sizeof buf);
    return out;
}

static void record_wipe(account_record *r)
{
    explicit_bzero(r, sizeof *r);
}

/* Reads and decodes a record: 1 found, 0 absent, -1 error (logged). */
static int record_load(tern_storage *st, const char *bare, account_record *r)
{
    void *value;
    size_t len;
    int rc = storage_kv_get(st, ACCOUNTS_STORE, bare, &value, &len);
    if (rc != 1)
        return rc;
    int ok = record_decode(value, len, r);
    explicit_bzero(value, len);
    free(value);
    if (ok < 0) {
        log_error(0, "accounts: the record of %s is unreadable", bare);
        return -1;
    }
    return 1;
}

/* ---- credentials ---- */

/* Derives every mechanism's credentials. The password is checked first: RFC 4013 SASLprep
 * must accept it and leave something (an empty password is no password). */
static account_result make_credentials(const char *password, unsigned iterations,
                                       account_record *r)
{
    char *prepared = NULL;
    if (!password || scram_saslprep(password, &prepared) < 0)
        return ACCOUNT_BAD_PASSWORD;
    bool empty = prepared[0] == '\0';
    explicit_bzero(prepared, strlen(prepared));
    free(prepared);
    if (empty)
        return ACCOUNT_BAD_PASSWORD;
    if (!iterations)
        iterations = SCRAM_DEFAULT_ITERATIONS;
    for (int h = 0; h < SCRAM_HASH_COUNT; h++) {
        if (scram_make_credentials((scram_hash)h, password, iterations, &r->cred[h]) < 0) {
            log_error(0, "accounts: deriving %s credentials failed", scram_hash_mech((scram_hash)h));
            return ACCOUNT_ERROR;
        }
        r->has[h] = true;
    }
    return ACCOUNT_OK;
}

static bool bare_ok(const char *bare)
{
    if (bare && *bare)
        return true;
    log_error(0, "accounts: empty JID");
    return false;
}

/* ---- changes, each in one write transaction ---- */

typedef struct change_ctx {
    const account_record *fresh;  /* create / set_password: the new credentials */
    bool disabled;                /* set_disabled */
    account_result result;        /* recomputed on every run of the update function */
} change_ctx;

static storage_update create_fn(void *vctx, const void *old, size_t old_len, void **out,
                                size_t *out_len)
{
    (void)old_len;
    change_ctx *ctx = vctx;
    if (old) {
        ctx->result = ACCOUNT_EXISTS;
        return STORAGE_KEEP;
    }
    ctx->result = ACCOUNT_OK;
    *out = record_copy(ctx->fresh, out_len);
    return STORAGE_PUT;
}

/* Shared by set_password and set_disabled: decodes the current record into *r, or says why
 * not. */
static bool change_load(change_ctx *ctx, const void *old, size_t old_len, account_record *r)
{
    if (!old) {
        ctx->result = ACCOUNT_NOT_FOUND;
        return false;
    }
    if (record_decode(old, old_len, r) < 0) {
        ctx->result = ACCOUNT_ERROR;
        return false;
    }
    ctx->result = ACCOUNT_OK;
    return true;
}

static storage_update set_password_fn(void *vctx, const void *old, size_t old_len, void **out,
                                      size_t *out_len)
{
    change_ctx *ctx = vctx;
    account_record r;
    if (!change_load(ctx, old, old_len, &r))
        return STORAGE_KEEP;
    account_record next = *ctx->fresh;
    next.flags = r.flags;  /* a password change does not re-enable a disabled account */
    *out = record_copy(&next, out_len);
    record_wipe(&r);
    record_wipe(&next);
    return STORAGE_PUT;
}

static storage_update set_disabled_fn(void *vctx, const void *old, size_t old_len, void **out,
                                      size_t *out_len)
{
    change_ctx *ctx = vctx;
    account_record r;
    if (!change_load(ctx, old, old_len, &r))
        return STORAGE_KEEP;
    if (ctx->disabled)
        r.flags |= FLAG_DISABLED;
    else
        r.flags &= (unsigned char)~FLAG_DISABLED;
    *out = record_copy(&r, out_len);
    record_wipe(&r);
    return STORAGE_PUT;
}

static storage_update delete_fn(void *vctx, const void *old, size_t old_len, void **out,
                                size_t *out_len)
{
    (void)old_len, (void)out, (void)out_len;
    change_ctx *ctx = vctx;
    ctx->result = old ? ACCOUNT_OK : ACCOUNT_NOT_FOUND;
    return old ? STORAGE_DELETE : STORAGE_KEEP;
}

static account_result run_change(tern_storage *st, const char *bare,
                                 storage_update (*fn)(void *, const void *, size_t, void **,
                                                      size_t *),
                                 change_ctx *ctx)
{
    ctx->result = ACCOUNT_ERROR;
    int rc = storage_kv_update(st, ACCOUNTS_STORE, bare, fn, ctx);
    if (rc < 0)
        return rc == TERN_STORAGE_FULL ? ACCOUNT_FULL : ACCOUNT_ERROR;
    if (ctx->result == ACCOUNT_ERROR)
        log_error(0, "accounts: the record of %s is unreadable", bare);
    return ctx->result;
}

/* Derives fresh credentials from `password` and applies `fn` with them in one transaction. */
static account_result change_credentials(tern_storage *st, const char *bare,
                                         const char *password, unsigned iterations,
                                         storage_update (*fn)(void *, const void *, size_t,
                                                              void **, size_t *))
{
    if (!bare_ok(bare))
        return ACCOUNT_ERROR;
    account_record fresh = { 0 };
    account_result res = make_credentials(password, iterations, &fresh);
    if (res == ACCOUNT_OK) {
        change_ctx ctx = { .fresh = &fresh };
        res = run_change(st, bare, fn, &ctx);
    }
    record_wipe(&fresh);
    return res;
}

account_result account_create(tern_storage *st, const char *bare, const char *password,
                              unsigned iterations)
{
    return change_credentials(st, bare, password, iterations, create_fn);
}

account_result account_set_password(tern_storage *st, const char *bare, const char *password,
                                     unsigned iterations)
{
    return change_credentials(st, bare, password, iterations, set_password_fn);
}

/* Removes the account record first (so the account can no longer log in), then everything
 * any module stored under the account (roster, offline queue, vCard, ...): ternctl, which runs
 * no modules, deletes as completely as the server does. */
account_result account_delete(tern_storage *st, const char *bare)
{
    if (!bare_ok(bare))
        return ACCOUNT_ERROR;
    change_ctx ctx = { 0 };
    account_result r = run_change(st, bare, delete_fn, &ctx);
    if (r == ACCOUNT_OK && storage_delete_owner(st, bare) < 0)
        log_error(0, "accounts: %s is deleted but some of its data could not be removed", bare);
    return r;
}

account_result account_set_disabled(tern_storage *st, const char *bare, bool disabled)
{
    if (!bare_ok(bare))
        return ACCOUNT_ERROR;
    change_ctx ctx = { .disabled = disabled };
    return run_change(st, bare, set_disabled_fn, &ctx);
}

/* ---- reads ---- */

bool account_exists(tern_storage *st, const char *bare)
{
    if (!bare_ok(bare))
        return false;
    void *value;
    size_t len;
    int rc = storage_kv_get(st, ACCOUNTS_STORE, bare, &value, &len);
    if (rc == 1) {
        explicit_bzero(value, len);
        free(value);
    }
    return rc == 1;
}

/* 0 also when the account lacks credentials for this mechanism: to SCRAM that is the same
 * as an unknown user. */
int account_get_credentials(tern_storage *st, const char *bare, scram_hash h,
                            scram_credentials *out)
{
    if (!bare_ok(bare) || (int)h < 0 || h >= SCRAM_HASH_COUNT)
        return -1;
    account_record r;
    int rc = record_load(st, bare, &r);
    if (rc == 1 && !r.has[h])
        rc = 0;
    if (rc == 1)
        *out = r.cred[h];
    record_wipe(&r);
    return rc;
}

/* A storage error reads as disabled: when in doubt, refuse the login. */
bool account_is_disabled(tern_storage *st, const char *bare)
{
    if (!bare_ok(bare))
        return true;
    account_record r;
    int rc = record_load(st, bare, &r);
    bool disabled = rc < 0 || (rc == 1 && (r.flags & FLAG_DISABLED));
    record_wipe(&r);
    return disabled;
}

struct each_ctx {
    int (*fn)(void *ctx, const char *bare);
    void *ctx;
};

/* The store is keyed by bare JIDs only; skipping anything without a node part keeps a stray
 * host-keyed entry from being listed as an account. */
static int each_account(void *vctx, const char *owner)
{
    struct each_ctx *e = vctx;
    return strchr(owner, '@') ? e->fn(e->ctx, owner) : 0;
}

int account_each(tern_storage *st, const char *domain, int (*fn)(void *ctx, const char *bare),
                 void *ctx)
{
    struct each_ctx e = { fn, ctx };
    return storage_kv_each_owner(st, ACCOUNTS_STORE, domain, each_account, &e);
}

const char *account_result_text(account_result r)
{
    switch (r) {
    case ACCOUNT_OK:
        return "success";
    case ACCOUNT_ERROR:
        return "storage error";
    case ACCOUNT_EXISTS:
        return "account already exists";
    case ACCOUNT_NOT_FOUND:
        return "no such account";
    case ACCOUNT_BAD_PASSWORD:
        return "password is empty or contains characters that are not allowed";
    case ACCOUNT_FULL:
        return "the server's storage is full; try again later";
    }
    return "unknown error";
}
