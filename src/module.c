/* module.c — the dlopen loader. A module's shared object exports one symbol,
 * tern_module_definition, naming the API version it was built against; a mismatch is refused
 * with a message that says what to rebuild. */
#include "module.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hooks.h"
#include "module_settings.h"
#include "owner.h"
#include "session.h"
#include "util.h"

const char *module_dir(const config *cfg)
{
    if (cfg && cfg->module_dir)
        return cfg->module_dir;
    /* Like libtool's wrappers: a ternd run from its build tree uses the modules built beside it,
     * so `src/ternd -c etc/tern.conf` works without `make install`. */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        if (strcmp(self, TERN_BUILD_BINARY) == 0)
            return TERN_BUILD_MODULE_DIR;
    }
    return TERN_MODULE_DIR;
}

static void drop_session_data(tern_session *s, void *owner)
{
    session_drop_owned_data(s, owner);
}

/* Everything the module registered, and the data it attached to sessions (whose free
 * functions are its code, so this runs before dlclose). */
static void remove_owned(tern_host *host, const module_instance *m)
{
    host_remove_owned(host, m);
    tern_host_each_online(host, drop_session_data, (void *)m);
}

static int load_one(tern_host *host, const char *dir, const char *name, char *err,
                    size_t err_len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(err, err_len, "host %s: cannot load module %s: %s", host->name, name, dlerror());
        return -1;
    }
    const tern_module_def *def = dlsym(handle, TERN_MODULE_SYMBOL);
    if (!def) {
        snprintf(err, err_len, "host %s: %s is not a tern module (no %s symbol)", host->name,
                 path, TERN_MODULE_SYMBOL);
        dlclose(handle);
        return -1;
    }
    if (def->api_version != TERN_MODULE_API_VERSION) {
        snprintf(err, err_len, "host %s: module %s was built for module API %u but this ternd "
                 "provides API %u; rebuild the module against this version", host->name, name,
                 def->api_version, TERN_MODULE_API_VERSION);
        dlclose(handle);
        return -1;
    }
    char why[256] = "";
    if (strcmp(def->name, name) != 0 || !module_settings_sound(def, why, sizeof why)) {
        if (!why[0])
            snprintf(why, sizeof why, "it calls itself %s", def->name);
        snprintf(err, err_len, "host %s: module %s is broken: %s", host->name, name, why);
        dlclose(handle);
        return -1;
    }
    module_instance *m = xcalloc(1, sizeof *m);
    m->def = def;
    m->handle = handle;
    Dl_info info;
    if (dladdr(def, &info))
        m->base = info.dli_fbase;
    const module_instance *prev = owner_enter(host, m);
    host->loading = m;
    int rc = def->load(host, &m->state, why, sizeof why);
    host->loading = NULL;
    if (rc == 0 && host->load_error) {
        /* A misspelt event would never fire: refuse the module rather than run it deaf. */
        snprintf(why, sizeof why, "%s", host->load_error);
        if (def->unload)
            def->unload(host, m->state);
        rc = -1;
    }
    owner_leave(host, prev);
    free(host->load_error);
    host->load_error = NULL;
    if (rc != 0) {
        snprintf(err, err_len, "host %s: module %s failed to load: %s", host->name, name,
                 why[0] ? why : "no reason given");
        remove_owned(host, m);
        dlclose(handle);
        free(m);
        return -1;
    }
    m->next = host->modules;
    host->modules = m;
    log_debug(0, "host %s: loaded module %s", host->name, def->name);
    return 0;
}

int module_load_host(tern_host *host, const char *dir, char *err, size_t err_len)
{
    const config_strings *names = &host->cfg->modules;
    for (size_t i = 0; i < names->n; i++)
        if (load_one(host, dir, names->items[i], err, err_len) != 0)
            return -1;
    return 0;
}

void module_unload_host(tern_host *host)
{
    while (host->modules) {
        module_instance *m = host->modules;
        host->modules = m->next;
        /* unload() first, while its timers and hooks still exist (it may cancel them). */
        if (m->def->unload) {
            const module_instance *prev = owner_enter(host, m);
            m->def->unload(host, m->state);
            owner_leave(host, prev);
        }
        remove_owned(host, m);
        dlclose(m->handle);
        free(m);
    }
}
