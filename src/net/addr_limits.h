/* addr_limits.h — what one network address may hold at once (XEP-0205 §3): connections,
 * connections that have not authenticated yet, and logins per second; plus a cap on
 * unauthenticated connections from everyone together. One table per kind of listener (client
 * streams, incoming server streams), used on the main loop only.
 *
 * An address is counted by its key: an IPv4 address as it is, an IPv6 address by its /64 (one
 * site's network: a single host there has 2^64 addresses to choose from). */
#ifndef TERN_ADDR_LIMITS_H
#define TERN_ADDR_LIMITS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_KEY_LEN 50 /* an IPv6 text (46 with its NUL) and "/64" */

typedef struct addr_limits addr_limits;

typedef struct addr_limit_settings {
    unsigned max_per_address;              /* connections */
    unsigned max_unauthenticated_per_address;
    unsigned max_unauthenticated;          /* all addresses together */
    unsigned logins_per_second;            /* per address; a burst of twice that is allowed */
} addr_limit_settings;

addr_limits *addr_limits_new(void);
void addr_limits_free(addr_limits *t);

/* The key of a peer written as "ip:port" or "[ipv6]:port" (conn_peer(), tern_http_peer());
 * false when it is neither (a Unix socket, "?"). IPv4-mapped IPv6 counts as IPv4. */
bool addr_key_from_peer(const char *peer, char out[ADDR_KEY_LEN]);

/* Whether a new connection from `key` is within the limits; if not, *why says which. An
 * empty key (address unknown) is held only to the total. */
bool addr_limits_allow(const addr_limits *t, const char *key, const addr_limit_settings *s,
                       const char **why);
/* Counts a new, unauthenticated connection from `key` (after addr_limits_allow()). */
void addr_limits_add(addr_limits *t, const char *key);
/* The connection counted under `key` authenticated: no longer counts as unauthenticated. */
void addr_limits_authenticated(addr_limits *t, const char *key);
/* The connection counted under `key` ended. */
void addr_limits_release(addr_limits *t, const char *key, bool authenticated);
/* Takes one login attempt from the address's allowance; false when it has none left now. */
bool addr_limits_login(addr_limits *t, const char *key, const addr_limit_settings *s);

/* Logs a refused connection ("client", "s2s"), at most one line a second per table: under a
 * flood every refusal would be a line. The line counts the refusals it stands for. */
void addr_limits_log_refusal(addr_limits *t, const char *what, const char *peer,
                             const char *why);

/* For tests and statistics: connections and unauthenticated ones counted under key, and the
 * unauthenticated total. */
void addr_limits_counts(const addr_limits *t, const char *key, unsigned *conns,
                        unsigned *unauth, unsigned *unauth_total);

#endif
