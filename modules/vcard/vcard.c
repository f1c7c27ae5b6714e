/* vcard — placeholder while the module is being written (issue 3). */
#include <tern/module.h>

static int vcard_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)state;
    (void)err;
    (void)err_len;
    return 0;
}

TERN_MODULE("vcard", vcard_load, NULL);
