/* owner.c — telling modules' registrations apart by where their code is mapped. */
#include "host/owner.h"

#include <dlfcn.h>

const module_instance *owner_of(const tern_host *host, const void *addr)
{
    Dl_info info;
    if (addr && dladdr(addr, &info) && info.dli_fbase) {
        for (const module_instance *m = host->modules; m; m = m->next)
            if (m->base == info.dli_fbase)
                return m;
        /* A module still in its load() is not in the list yet. */
        if (host->running && host->running->base == info.dli_fbase)
            return host->running;
    }
    return host->running;
}
