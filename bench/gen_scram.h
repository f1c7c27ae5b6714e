/* gen_scram.h — the client side of SASL for the load generator: SCRAM-SHA-1/-256 (RFC 5802,
 * RFC 7677) and PLAIN (RFC 4616), with a cache of derived client keys.
 *
 * src/core/scram.h is the server side (it verifies proofs against stored keys); a client computes
 * the proof from the password instead, which costs one PBKDF2 per (salt, iteration count).
 * With 10,000 iterations that is milliseconds of generator CPU per login, which would make the
 * generator, not the server, the bottleneck of a logins/s measurement. Real clients cache
 * ClientKey and ServerKey (RFC 5802 §5.1 allows it), and so does the generator: per user, keyed
 * by hash, salt and iteration count, in memory and optionally in a file kept between runs.
 *
 * Passwords are used as given (the benchmark's passwords are ASCII, for which SASLprep is the
 * identity). No channel binding: the generator always sends the "n" GS2 flag. */
#ifndef TERN_BENCH_GEN_SCRAM_H
#define TERN_BENCH_GEN_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum gen_mech { GEN_MECH_PLAIN, GEN_MECH_SCRAM_SHA1, GEN_MECH_SCRAM_SHA256 } gen_mech;

const char *gen_mech_name(gen_mech m);              /* "PLAIN", "SCRAM-SHA-1", ... */
int gen_mech_parse(const char *name, gen_mech *out); /* 0, or -1 when unknown */

/* Derived keys per user, indexed 0..n-1 by the caller (user number - first user). */
typedef struct gen_key_cache gen_key_cache;
gen_key_cache *gen_key_cache_new(size_t n);
void gen_key_cache_free(gen_key_cache *kc);
/* Loads entries written by gen_key_cache_save; a missing file is not an error. Lines whose
 * user is not `prefix` + number in range are skipped. Returns the number of entries loaded. */
long gen_key_cache_load(gen_key_cache *kc, const char *path, const char *prefix, long first);
int gen_key_cache_save(const gen_key_cache *kc, const char *path, const char *prefix, long first);
unsigned long gen_key_cache_derivations(const gen_key_cache *kc); /* PBKDF2 runs so far */

/* The initial response of PLAIN: base64 of "\0user\0password" (malloc'd). */
char *gen_plain_response(const char *user, const char *password);

typedef struct gen_scram gen_scram;
/* `slot` is the user's index in the cache. */
gen_scram *gen_scram_new(gen_mech m, const char *user, const char *password, gen_key_cache *kc,
                         size_t slot);
void gen_scram_free(gen_scram *s);
/* client-first-message, base64-encoded for <auth/> (malloc'd). */
char *gen_scram_first(gen_scram *s);
/* From the base64 server-first-message (text of <challenge/>), the base64 client-final-message
 * (malloc'd), or NULL when the challenge is malformed or the nonce is not ours. */
char *gen_scram_final(gen_scram *s, const char *challenge_b64);
/* Checks the server signature in the base64 text of <success/> (RFC 5802 §3: the client must
 * authenticate the server). Returns true when it matches. */
bool gen_scram_verify(gen_scram *s, const char *success_b64);

#endif
