/* tern/account.h — results of account operations, shared by the core, ternctl and modules. */
#ifndef TERN_ACCOUNT_H
#define TERN_ACCOUNT_H

typedef enum account_result {
    ACCOUNT_OK = 0,
    ACCOUNT_ERROR = -1,        /* storage failure (logged) */
    ACCOUNT_EXISTS = -2,
    ACCOUNT_NOT_FOUND = -3,
    ACCOUNT_BAD_PASSWORD = -4, /* empty, or prohibited by SASLprep */
    ACCOUNT_FULL = -5,         /* storage is full (the disk, or [server] max_storage_size) */
} account_result;

/* English text for a result, e.g. "the account already exists". */
const char *account_result_text(account_result r);

#endif
