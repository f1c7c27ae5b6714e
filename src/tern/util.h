/* tern/util.h — small helpers every part of tern uses, modules included: allocation that never returns NULL
 * (out of memory aborts: a server that cannot allocate cannot keep its promises anyway),
 * random identifiers, and time. */
#ifndef TERN_PUBLIC_UTIL_H
#define TERN_PUBLIC_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* `len` random printable characters [A-Za-z0-9] into out (NUL-terminated; out has len+1). */
void random_token(char *out, size_t len);
void random_bytes(void *out, size_t len);

/* Milliseconds on the monotonic clock. */
uint64_t now_ms(void);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
