/* admin — placeholder while the module is being written (issue 6). */
#include <tern/module.h>

static int admin_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)state;
    (void)err;
    (void)err_len;
    return 0;
}

TERN_MODULE("admin", admin_load, NULL);
