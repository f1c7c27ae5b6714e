/* scram.h — SCRAM (RFC 5802, RFC 7677) server side, credentials derivation, SASLprep.
 *
 * Only salted keys are ever stored (StoredKey, ServerKey, salt, iteration count). The server
 * exchange never reveals whether an account exists: for an unknown user it answers with a salt
 * derived from the username and a server secret, and fails at the proof like a wrong password.
 * Proofs are compared in constant time. Crypto comes from GnuTLS (gnutls_hmac_fast, gnutls_hash_fast,
 * gnutls_pbkdf2, gnutls_rnd). */
#ifndef TERN_SCRAM_H
#define TERN_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum scram_hash { SCRAM_SHA1 = 0, SCRAM_SHA256 = 1 } scram_hash;
#define SCRAM_HASH_COUNT 2
#define SCRAM_MAX_KEY 32   /* SHA-256 output */
#define SCRAM_MAX_SALT 32
#define SCRAM_DEFAULT_ITERATIONS 10000

size_t scram_hash_len(scram_hash h);        /* 20 or 32 */
const char *scram_hash_mech(scram_hash h);  /* "SCRAM-SHA-1", "SCRAM-SHA-256" */

typedef struct scram_credentials {
    scram_hash hash;
    unsigned iterations;
    unsigned char salt[SCRAM_MAX_SALT];
    size_t salt_len;
    unsigned char stored_key[SCRAM_MAX_KEY];
    unsigned char server_key[SCRAM_MAX_KEY];
} scram_credentials;

/* SASLprep (RFC 4013) of a username or password; malloc'd result, -1 if prohibited. */
int scram_saslprep(const char *in, char **out);
/* Derives credentials from a password with a given salt (used by tests with RFC vectors). The
 * password is SASLprep'd first. Returns 0 or -1. */
int scram_derive(scram_hash h, const char *password, const unsigned char *salt, size_t salt_len,
                 unsigned iterations, scram_credentials *out);
/* Same with a fresh random 16-byte salt. */
int scram_make_credentials(scram_hash h, const char *password, unsigned iterations,
                           scram_credentials *out);
/* Checks a plaintext password (SASL PLAIN) against stored credentials in constant time. */
bool scram_check_password(const scram_credentials *cred, const char *password);

/* Channel binding available on the connection, for the -PLUS variants. */
typedef struct scram_channel_binding {
    const char *type;            /* "tls-exporter", "tls-server-end-point", "tls-unique" */
    const unsigned char *data;
    size_t len;
} scram_channel_binding;

/* Looks up the stored credentials of a user (the prepared username as sent, after SASLprep).
 * Returns 1 and fills *out if the user exists, 0 if not. */
typedef int (*scram_lookup_fn)(void *ctx, const char *username, scram_hash h,
                               scram_credentials *out);

typedef struct scram_server scram_server;

typedef enum scram_status {
    SCRAM_CONTINUE,  /* send *out as a challenge, wait for the next message */
    SCRAM_SUCCESS,   /* send *out as additional data with <success/> */
    SCRAM_FAILURE,   /* authentication failed: *failure says which SASL condition to send */
} scram_status;

/* plus: the client chose the -PLUS mechanism. `bindings` lists the channel bindings this
 * connection can provide (n may be 0 on a plain connection). `plus_offered`: whether the server
 * advertised -PLUS mechanisms on this stream (to detect the "y" downgrade, RFC 5802 §6).
 * `secret` (16+ bytes) salts the fake credentials for unknown users. */
scram_server *scram_server_new(scram_hash h, bool plus, const scram_channel_binding *bindings,
                               size_t n_bindings, bool plus_offered, scram_lookup_fn lookup,
                               void *lookup_ctx, const unsigned char *secret, size_t secret_len);
void scram_server_free(scram_server *s);
/* One step. `in` is the decoded client message. On CONTINUE/SUCCESS *out and *out_len are a malloc'd
 * message (caller frees). On FAILURE *failure is a SASL condition name: "not-authorized",
 * "malformed-request", "invalid-authzid", "encryption-required"... and *out may carry a
 * server-final "e=..." message (NULL otherwise). */
scram_status scram_server_step(scram_server *s, const char *in, size_t in_len, char **out,
                               size_t *out_len, const char **failure);
/* After SUCCESS: the authenticated username (SASLprep'd, as looked up) and the authzid the
 * client asked for (NULL if none). Owned by the scram_server. */
const char *scram_server_username(const scram_server *s);
const char *scram_server_authzid(const scram_server *s);
/* True when the failure was about channel binding (an unsupported type, or the "y" downgrade,
 * decided before any credential check; or a binding that cannot exist here, after a correct
 * proof): such a failure needs no anti-guessing delay. */
bool scram_server_failed_on_binding(const scram_server *s);
/* The channel is TLS 1.3, where tls-unique does not exist (RFC 9266). CPython's ssl module
 * still hands out the TLS 1.3 Finished message as "tls-unique", so slixmpp up to 1.8.4 asks for
 * -PLUS with p=tls-unique. Such an exchange is run to the client's proof instead of being
 * refused at its first message; it still fails, but it can show who the client is (below). */
void scram_server_set_tls13(scram_server *s);
/* After a failed exchange: the username (SASLprep'd) whose password proved that this client's
 * one binding is tls-unique taken over TLS 1.3 (binding data of a TLS 1.3 Finished length, 32
 * or 48 bytes; a TLS 1.2 Finished is 12, RFC 5246 §7.4.9), or NULL. Such a client can bind to
 * nothing this channel offers. The proof covers the gs2 header and the binding data, so a man
 * in the middle cannot forge it without the password. Owned by the scram_server. */
const char *scram_server_unbindable_user(const scram_server *s);
/* `username`'s client proved earlier on this stream that it cannot bind (see above): a "y"
 * from that user means just that, not that someone hid our -PLUS mechanisms, and is accepted.
 * Every other "y" while -PLUS was offered stays a downgrade (RFC 5802 §6). */
void scram_server_allow_y(scram_server *s, const char *username);
/* Tests only: use `snonce` as the server nonce instead of a random one (RFC test vectors). */
void scram_server_set_nonce_for_test(scram_server *s, const char *snonce);

/* Helpers shared with PLAIN and tests. */
bool scram_const_equal(const void *a, const void *b, size_t len);
char *scram_base64_encode(const unsigned char *data, size_t len);          /* malloc'd */
int scram_base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len);

#endif
