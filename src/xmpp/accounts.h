/* accounts.h — user accounts: SCRAM credentials per mechanism, stored in the "accounts" keyval
 * store under the prepared bare JID. No password is ever stored. */
#ifndef TERN_ACCOUNTS_H
#define TERN_ACCOUNTS_H

#include <stdbool.h>

#include "core/scram.h"
#include "tern/account.h"
#include "tern/storage.h"

#define ACCOUNTS_STORE "accounts"


/* `bare` must be a prepared bare JID (node@domain). Derives SCRAM-SHA-1 and SCRAM-SHA-256
 * credentials with fresh salts and `iterations` (0: SCRAM_DEFAULT_ITERATIONS). */
account_result account_create(tern_storage *st, const char *bare, const char *password,
                              unsigned iterations);
account_result account_set_password(tern_storage *st, const char *bare, const char *password,
                                     unsigned iterations);
account_result account_delete(tern_storage *st, const char *bare);
bool account_exists(tern_storage *st, const char *bare);
/* 1 and *out filled, 0 when the account does not exist, -1 on error. */
int account_get_credentials(tern_storage *st, const char *bare, scram_hash h,
                            scram_credentials *out);
/* Disabled accounts cannot log in (used by XEP-0133 later). */
account_result account_set_disabled(tern_storage *st, const char *bare, bool disabled);
bool account_is_disabled(tern_storage *st, const char *bare);
/* Calls fn for each account of a domain in order. */
int account_each(tern_storage *st, const char *domain, int (*fn)(void *ctx, const char *bare),
                 void *ctx);

#endif
