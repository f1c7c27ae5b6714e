/* tern/privilege.h — what privileged entities may do on behalf of a host's accounts
 * (XEP-0356 Privileged Entity): the service the component module provides, which the roster
 * module asks before it lets anyone but the account itself read or change a roster. */
#ifndef TERN_PRIVILEGE_H
#define TERN_PRIVILEGE_H

#include <stdbool.h>

#include "tern/module.h"

#define TERN_SERVICE_PRIVILEGE "privilege"

typedef struct tern_privilege_api {
    /* Whether `entity` (a prepared bare JID: an external component's domain) may use
     * `access` ("roster") as `type` ("get" or "set") for the accounts of `host`. */
    bool (*allows)(tern_host *host, const char *entity, const char *access, const char *type);
    /* Calls fn for each entity that reads `access` ("roster") of the host's accounts and is
     * connected: the roster module sends it the accounts' roster pushes (XEP-0356 §4.3). */
    void (*each_reader)(tern_host *host, const char *access,
                        void (*fn)(void *ctx, const char *entity), void *ctx);
} tern_privilege_api;

static inline const tern_privilege_api *tern_privilege(tern_host *host)
{
    return (const tern_privilege_api *)tern_service_get(host, TERN_SERVICE_PRIVILEGE);
}

#endif
