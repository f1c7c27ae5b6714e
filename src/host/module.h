/* module.h — loading modules with dlopen (see tern/module.h for what a module is). */
#ifndef TERN_MODULE_LOADER_H
#define TERN_MODULE_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "host/host.h"

/* What the loader needs from the layers above it, given once by main(). */
typedef struct module_env {
    /* Drops the per-session data `owner` attached to the host's sessions. */
    void (*drop_session_data)(tern_host *host, const module_instance *owner);
    /* Tells `jid` how a run-time change went (a message from the host). */
    void (*notify)(tern_host *host, const char *jid, const char *text);
} module_env;
void module_set_env(const module_env *env);

/* The folder modules are loaded from: [server] module_dir, else the build tree's modules/
 * when ternd runs from its build tree, else the installed module folder. cfg may be NULL. */
const char *module_dir(const config *cfg);

/* Loads the host's `modules =` list in order. -1 with a reason naming the module in err. */
int module_load_host(tern_host *host, const char *dir, char *err, size_t err_len);
/* Whether name can be a module's (a-z, 0-9 and _, at most 64 bytes: no path). */
bool module_name_ok(const char *name);
/* Loads, unloads or reloads one module now (see tern_module_change(), which schedules this);
 * only from code that no module of the host called (the event loop, the control socket).
 * Logs the outcome and writes it into text. */
bool module_change_now(tern_host *host, tern_module_op op, const char *name, char *text,
                       size_t text_len);
/* Unloads every module of the host, newest first, removing what each registered. */
void module_unload_host(tern_host *host);

#endif
