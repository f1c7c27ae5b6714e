/* ibr.h — in-band registration before authentication (XEP-0077 §3.1), the part of the
 * register module that creates accounts; register.c is the part for logged-in users. */
#ifndef TERN_MODULE_REGISTER_IBR_H
#define TERN_MODULE_REGISTER_IBR_H

#include <tern/module.h>

typedef struct ibr ibr;

/* Hooks the host's unauthenticated streams. */
ibr *ibr_load(tern_host *host);
void ibr_unload(ibr *r);

#endif
