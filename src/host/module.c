/* module.c — the dlopen loader. A module's shared object exports one symbol,
 * tern_module_definition, naming the API version it was built against; a mismatch is refused
 * with a message that says what to rebuild. */
#include "host/module.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "host/hooks.h"
#include "host/module_settings.h"
#include "host/owner.h"
#include "process/server.h"
#include "store/storage_env.h"

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

static module_env env; /* from main(): the loader may not call the session layer above it */

void module_set_env(const module_env *e) { env = *e; }

/* Everything the module registered, and the data it attached to sessions (whose free
 * functions are its code, so this runs before dlclose). */
static void remove_owned(tern_host *host, const module_instance *m)
{
    host_remove_owned(host, m);
    if (env.drop_session_data)
        env.drop_session_data(host, m);
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

static void unload_instance(tern_host *host, module_instance *m)
{
    /* Its queued storage work completes first: the completions call into the module. */
    storage_drain(server.storage);
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

/* ---- changes at run time ---- */

struct module_change {
    tern_host *host;
    tern_module_op op;
    char *name;
    char *notify;      /* a JID told the outcome, or NULL */
    struct event *ev;
    module_change *next;
};

static void change_free(module_change *c)
{
    event_free(c->ev);
    free(c->name);
    free(c->notify);
    free(c);
}

static module_instance **find_loaded(tern_host *host, const char *name)
{
    for (module_instance **at = &host->modules; *at; at = &(*at)->next)
        if (strcmp((*at)->def->name, name) == 0)
            return at;
    return NULL;
}

static void tell(const module_change *c, const char *text)
{
    if (c->notify && env.notify)
        env.notify(c->host, c->notify, text);
}

static const char *const op_done[] = { "loaded", "unloaded", "reloaded" };

bool module_change_now(tern_host *host, tern_module_op op, const char *name, char *text,
                       size_t text_len)
{
    char err[1024] = "";
    bool ok = true;
    module_instance **at = find_loaded(host, name);
    if (!module_name_ok(name)) {
        ok = false;
        snprintf(err, sizeof err, "that is not a module name (a-z, 0-9 and _)");
    } else if (op != TERN_MODULE_LOAD) {
        if (!at) {
            ok = false;
            snprintf(err, sizeof err, "it is not loaded");
        } else {
            module_instance *m = *at;
            *at = m->next;
            unload_instance(host, m);
        }
    } else if (at) {
        ok = false;
        snprintf(err, sizeof err, "it is already loaded");
    }
    if (ok && op != TERN_MODULE_UNLOAD &&
        load_one(host, module_dir(server.cfg), name, err, sizeof err) != 0)
        ok = false;
    if (ok)
        snprintf(text, text_len, "module %s %s", name, op_done[op]);
    else
        snprintf(text, text_len, "module %s was not %s: %s", name, op_done[op], err);
    if (ok)
        log_info(0, "host %s: %s", host->name, text);
    else
        log_error(0, "host %s: %s", host->name, text);
    return ok;
}

/* Runs on a loop turn of its own: no module code of this host is on the stack. */
static void run_change(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    module_change *c = arg;
    tern_host *host = c->host;
    for (module_change **at = &host->changes; *at; at = &(*at)->next)
        if (*at == c) {
            *at = c->next;
            break;
        }
    char text[1200];
    module_change_now(host, c->op, c->name, text, sizeof text);
    tell(c, text);
    change_free(c);
}

bool module_name_ok(const char *name)
{
    if (!*name || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

int tern_module_change(tern_host *host, tern_module_op op, const char *name, const char *notify,
                       char *err, size_t err_len)
{
    if (op > TERN_MODULE_RELOAD || !module_name_ok(name)) {
        snprintf(err, err_len, "\"%s\" is not a module name (a-z, 0-9 and _)", name);
        return -1;
    }
    bool loaded = find_loaded(host, name) != NULL;
    if (op == TERN_MODULE_LOAD && loaded) {
        snprintf(err, err_len, "module %s is already loaded on %s", name, host->name);
        return -1;
    }
    if (op != TERN_MODULE_LOAD && !loaded) {
        snprintf(err, err_len, "module %s is not loaded on %s", name, host->name);
        return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.so", module_dir(server.cfg), name);
    if (op != TERN_MODULE_UNLOAD && access(path, R_OK) != 0) {
        snprintf(err, err_len, "there is no module %s (%s)", name, path);
        return -1;
    }
    for (const module_change *c = host->changes; c; c = c->next)
        if (strcmp(c->name, name) == 0) {
            snprintf(err, err_len, "a change of module %s is already under way", name);
            return -1;
        }
    module_change *c = xcalloc(1, sizeof *c);
    c->host = host;
    c->op = op;
    c->name = xstrdup(name);
    c->notify = notify ? xstrdup(notify) : NULL;
    c->ev = event_new(server.base, -1, 0, run_change, c);
    c->next = host->changes;
    host->changes = c;
    struct timeval now = { 0, 0 };
    event_add(c->ev, &now);
    return 0;
}

void tern_module_each(tern_host *host, void (*fn)(void *ctx, const char *name), void *ctx)
{
    /* host->modules is newest first; callers want load order. */
    size_t n = 0;
    for (const module_instance *m = host->modules; m; m = m->next)
        n++;
    const module_instance **list = xcalloc(n ? n : 1, sizeof *list);
    size_t i = n;
    for (const module_instance *m = host->modules; m; m = m->next)
        list[--i] = m;
    for (i = 0; i < n; i++)
        fn(ctx, list[i]->def->name);
    free(list);
}

void module_unload_host(tern_host *host)
{
    while (host->changes) {
        module_change *c = host->changes;
        host->changes = c->next;
        change_free(c);
    }
    while (host->modules) {
        module_instance *m = host->modules;
        host->modules = m->next;
        unload_instance(host, m);
    }
}
