/* module_settings.c — checks module settings against the modules' declarations and answers
 * the getters of tern/module.h.
 *
 * config.c cannot know which keys a module has: modules are shared objects. So the config
 * keeps module settings as text, and this file opens each named module (dlopen without
 * loading it on a host) to read its declarations before the configuration is accepted — at
 * start, on SIGHUP and for `ternd -t`. After that every value is known to be valid, and the
 * getters parse without failing. */
#include "host/module_settings.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_values.h"
#include "core/log.h"
#include "core/util.h"
#include "host/host.h"
#include "host/module.h"
#include "process/server.h"

static const tern_setting_def *find_def(const tern_setting_def *defs, const char *key)
{
    for (const tern_setting_def *d = defs; d && d->key; d++)
        if (strcmp(d->key, key) == 0)
            return d;
    return NULL;
}

bool module_setting_valid(const tern_setting_def *def, const char *value, char *why,
                          size_t why_len)
{
    unsigned long n;
    bool b;
    switch (def->type) {
    case TERN_SETTING_UINT:
        if (config_parse_number(value, def->min, def->max, &n))
            return true;
        snprintf(why, why_len, "expected a whole number in %lu..%lu", def->min, def->max);
        return false;
    case TERN_SETTING_BOOL:
        if (config_parse_bool(value, &b) == 0)
            return true;
        snprintf(why, why_len, "expected yes or no");
        return false;
    case TERN_SETTING_STRING:
        if (!def->check)
            return true;
        why[0] = '\0';
        if (def->check(value, why, why_len))
            return true;
        if (!why[0])
            snprintf(why, why_len, "not accepted by the module");
        return false;
    }
    snprintf(why, why_len, "unknown setting type");
    return false;
}

bool module_settings_sound(const tern_module_def *mod, char *why, size_t why_len)
{
    for (const tern_setting_def *d = mod->settings; d && d->key; d++) {
        char reason[200];
        if (!config_valid_module_name(d->key) || find_def(mod->settings, d->key) != d) {
            snprintf(why, why_len, "setting '%s' is declared twice or has an invalid name",
                     d->key);
            return false;
        }
        if (!d->default_value || !module_setting_valid(d, d->default_value, reason,
                                                       sizeof reason)) {
            snprintf(why, why_len, "setting '%s' has an invalid default (%s)", d->key,
                     d->default_value ? reason : "none");
            return false;
        }
    }
    return true;
}

/* ---- reading declarations from module files ---- */

typedef struct opened_module {
    char *name;
    void *handle;
    const tern_module_def *def; /* NULL: could not be opened; why says so */
    char why[300];
} opened_module;

typedef struct module_files {
    const char *dir;
    opened_module *items;
    size_t n;
} module_files;

static const opened_module *open_module_file(module_files *files, const char *name)
{
    for (size_t i = 0; i < files->n; i++)
        if (strcmp(files->items[i].name, name) == 0)
            return &files->items[i];
    files->items = xrealloc(files->items, (files->n + 1) * sizeof *files->items);
    opened_module *m = &files->items[files->n++];
    memset(m, 0, sizeof *m);
    m->name = xstrdup(name);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.so", files->dir, name);
    m->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const tern_module_def *def = m->handle ? dlsym(m->handle, TERN_MODULE_SYMBOL) : NULL;
    if (!m->handle)
        snprintf(m->why, sizeof m->why, "no module %s (%s)", name, dlerror());
    else if (!def)
        snprintf(m->why, sizeof m->why, "%.200s is not a tern module", path);
    else if (def->api_version != TERN_MODULE_API_VERSION)
        snprintf(m->why, sizeof m->why, "module %s was built for module API %u, not %u", name,
                 def->api_version, TERN_MODULE_API_VERSION);
    else
        m->def = def;
    return m;
}

static void close_module_files(module_files *files)
{
    for (size_t i = 0; i < files->n; i++) {
        if (files->items[i].handle)
            dlclose(files->items[i].handle);
        free(files->items[i].name);
    }
    free(files->items);
}

/* "quota, max_size" or "none", for the message about an unknown key. */
static void known_keys(const tern_module_def *def, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (const tern_setting_def *d = def->settings; d && d->key && used < len; d++) {
        int n = snprintf(out + used, len - used, "%s%s", used ? ", " : "", d->key);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (!out[0])
        snprintf(out, len, "none");
}

static bool host_loads(const config_host *host, const char *module)
{
    for (size_t i = 0; i < host->modules.n; i++)
        if (strcmp(host->modules.items[i], module) == 0)
            return true;
    return false;
}

static int check_list(const config *cfg, const config_host *host, const config_settings *list,
                      module_files *files, char *err, size_t err_len)
{
    for (size_t i = 0; i < list->n; i++) {
        const config_setting *set = &list->items[i];
        char where[300], why[300];
        if (host)
            snprintf(where, sizeof where, "[host %s] %s.%s", host->name, set->module, set->key);
        else
            snprintf(where, sizeof where, "[module %s] %s", set->module, set->key);
        if (host && !host_loads(host, set->module)) {
            snprintf(err, err_len, "%s:%d: %s: the host does not load module %s", cfg->path,
                     set->line, where, set->module);
            return -1;
        }
        const opened_module *m = open_module_file(files, set->module);
        if (!m->def) {
            snprintf(err, err_len, "%s:%d: %s: %s", cfg->path, set->line, where, m->why);
            return -1;
        }
        const tern_setting_def *def = find_def(m->def->settings, set->key);
        if (!def) {
            known_keys(m->def, why, sizeof why);
            snprintf(err, err_len, "%s:%d: unknown key '%s' for module %s (its keys: %s)",
                     cfg->path, set->line, set->key, set->module, why);
            return -1;
        }
        if (!module_setting_valid(def, set->value, why, sizeof why)) {
            snprintf(err, err_len, "%s:%d: invalid %s '%s' (%s)", cfg->path, set->line, where,
                     set->value, why);
            return -1;
        }
    }
    return 0;
}

int module_settings_check(const config *cfg, const char *dir, char *err, size_t err_len)
{
    module_files files = { .dir = dir };
    int rc = check_list(cfg, NULL, &cfg->module_settings, &files, err, err_len);
    for (size_t i = 0; i < cfg->n_hosts && rc == 0; i++)
        rc = check_list(cfg, &cfg->hosts[i], &cfg->hosts[i].module_settings, &files, err,
                        err_len);
    close_module_files(&files);
    return rc;
}

/* ---- ternd -s ---- */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *type_hint(const tern_setting_def *d, char *buf, size_t len)
{
    if (d->type == TERN_SETTING_UINT)
        snprintf(buf, len, "%lu..%lu", d->min, d->max);
    else
        snprintf(buf, len, "%s", d->type == TERN_SETTING_BOOL ? "yes|no" : "text");
    return buf;
}

int module_settings_print(const char *dir, FILE *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = xstrndup(e->d_name, len - 3);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, compare_names);
    module_files files = { .dir = dir };
    for (size_t i = 0; i < n; i++) {
        const opened_module *m = open_module_file(&files, names[i]);
        if (m->def && m->def->settings && m->def->settings->key) {
            fprintf(out, "[module %s]\n", names[i]);
            for (const tern_setting_def *s = m->def->settings; s->key; s++) {
                char hint[64];
                fprintf(out, "%s = %s ; %s: %s\n", s->key, s->default_value,
                        type_hint(s, hint, sizeof hint), s->doc);
            }
            fprintf(out, "\n");
        }
        free(names[i]);
    }
    free(names);
    close_module_files(&files);
    return 0;
}

/* ---- the module API's getters ---- */

static const char *setting_text(tern_host *host, const char *module, const char *key,
                                const tern_setting_def **def_out)
{
    const tern_setting_def *def = NULL;
    for (const module_instance *m = host->modules; m && !def; m = m->next)
        if (strcmp(m->def->name, module) == 0)
            def = find_def(m->def->settings, key);
    if (!def && host->loading && strcmp(host->loading->def->name, module) == 0)
        def = find_def(host->loading->def->settings, key);
    if (!def) {
        log_error(0, "host %s: module %s asked for setting '%s', which it does not declare",
                  host->name, module, key);
        return NULL;
    }
    *def_out = def;
    const config_setting *set = config_module_setting(server.cfg, host->name, module, key);
    return set ? set->value : def->default_value;
}

unsigned long tern_setting_uint(tern_host *host, const char *module, const char *key)
{
    const tern_setting_def *def;
    const char *text = setting_text(host, module, key, &def);
    unsigned long n = 0;
    if (text && def->type == TERN_SETTING_UINT)
        config_parse_number(text, def->min, def->max, &n);
    return n;
}

bool tern_setting_bool(tern_host *host, const char *module, const char *key)
{
    const tern_setting_def *def;
    const char *text = setting_text(host, module, key, &def);
    bool b = false;
    if (text && def->type == TERN_SETTING_BOOL)
        config_parse_bool(text, &b);
    return b;
}

const char *tern_setting_string(tern_host *host, const char *module, const char *key)
{
    const tern_setting_def *def;
    const char *text = setting_text(host, module, key, &def);
    return text ? text : "";
}
