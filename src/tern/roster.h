/* tern/roster.h — the roster service: what the roster module offers other modules.
 *
 * The roster module owns each account's contact list (RFC 6121 §2) and its subscription states
 * (RFC 6121 §3). Other modules — presence, offline, disco, vcard — only ask questions about it,
 * through this API, found with tern_service_get(host, TERN_SERVICE_ROSTER). When the roster
 * module is not loaded the service is NULL and callers treat every contact as "none". */
#ifndef TERN_ROSTER_H
#define TERN_ROSTER_H

#include <stdbool.h>

#include "tern/module.h"

#define TERN_SERVICE_ROSTER "roster"

/* RFC 6121 §2.1.2.5: whose presence flows where. */
typedef enum tern_subscription {
    TERN_SUB_NONE = 0, /* neither way */
    TERN_SUB_TO = 1,   /* the owner receives the contact's presence */
    TERN_SUB_FROM = 2, /* the contact receives the owner's presence */
    TERN_SUB_BOTH = 3, /* TO | FROM */
} tern_subscription;

#define TERN_SUB_HAS_TO(s)   (((s) & TERN_SUB_TO) != 0)
#define TERN_SUB_HAS_FROM(s) (((s) & TERN_SUB_FROM) != 0)

typedef struct tern_roster_api {
    /* The subscription between a local account `owner` (prepared bare JID) and `contact`
     * (prepared bare JID), from the owner's roster; TERN_SUB_NONE when not in it. */
    tern_subscription (*subscription)(tern_host *host, const char *owner, const char *contact);
    /* Whether `contact` is in owner's roster at all (any state, including pending). */
    bool (*has_contact)(tern_host *host, const char *owner, const char *contact);
    /* Calls fn for each contact of `owner` whose subscription includes TO (want_to) and/or
     * FROM (want_from): with both true, contacts that have either. */
    void (*each_contact)(tern_host *host, const char *owner, bool want_to, bool want_from,
                         void (*fn)(void *ctx, const char *contact), void *ctx);
} tern_roster_api;

static inline const tern_roster_api *tern_roster(tern_host *host)
{
    return (const tern_roster_api *)tern_service_get(host, TERN_SERVICE_ROSTER);
}

#endif
