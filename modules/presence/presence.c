/* presence — placeholder while the module is being written (issue 3). */
#include <tern/module.h>

static int presence_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)state;
    (void)err;
    (void)err_len;
    return 0;
}

TERN_MODULE("presence", presence_load, NULL);
