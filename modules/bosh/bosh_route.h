/* bosh_route.h — the /http-bind route of the bosh module (bosh_route.c). */
#ifndef TERN_MODULE_BOSH_ROUTE_H
#define TERN_MODULE_BOSH_ROUTE_H

#include <tern/http.h>

/* The handler of POST /http-bind (data unused): every BOSH request of every host. */
void bosh_route_handle(tern_http_request *http, void *data);

#endif
