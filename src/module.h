/* module.h — loading modules with dlopen (see tern/module.h for what a module is). */
#ifndef TERN_MODULE_LOADER_H
#define TERN_MODULE_LOADER_H

#include <stddef.h>

#include "host.h"

/* The folder modules are loaded from: [server] module_dir, else the build tree's modules/
 * when ternd runs from its build tree, else the installed module folder. cfg may be NULL. */
const char *module_dir(const config *cfg);

/* Loads the host's `modules =` list in order. -1 with a reason naming the module in err. */
int module_load_host(tern_host *host, const char *dir, char *err, size_t err_len);
/* Unloads every module of the host, newest first, removing what each registered. */
void module_unload_host(tern_host *host);

#endif
