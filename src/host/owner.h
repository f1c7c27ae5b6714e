/* owner.h — which module owns a hook, timer, registry item or session data, so that unloading
 * the module removes exactly what it registered, whenever it registered it.
 *
 * The owner of a registration is the module whose shared object holds the function (or, for
 * items without one, the data) being registered; for an address outside every module — core
 * code, or a module calling the API with a pointer of another module's — the module whose code
 * is running now (host->running, set around load() and every hook and timer). */
#ifndef TERN_OWNER_H
#define TERN_OWNER_H

#include "host/host.h"

/* The module instance of `host` whose object contains `addr`, else host->running (may be
 * NULL: the core). */
const module_instance *owner_of(const tern_host *host, const void *addr);

/* Marks `m` as running on host for the duration of a call into its code; returns the previous
 * value for owner_leave (calls nest: a hook may route a stanza that runs other hooks). */
static inline const module_instance *owner_enter(tern_host *host, const module_instance *m)
{
    const module_instance *prev = host->running;
    host->running = m;
    return prev;
}

static inline void owner_leave(tern_host *host, const module_instance *prev)
{
    host->running = prev;
}

#endif
