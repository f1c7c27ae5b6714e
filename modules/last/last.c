/* last — placeholder while the module is being written (issue 3). */
#include <tern/module.h>

static int last_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)state;
    (void)err;
    (void)err_len;
    return 0;
}

TERN_MODULE("last", last_load, NULL);
