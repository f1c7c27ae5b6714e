/* served.h — domains that modules serve (tern_serve_domain() in tern/module.h): the router
 * asks here about a domain that is no host, and delivers to the module that serves it. */
#ifndef TERN_SERVED_H
#define TERN_SERVED_H

#include "host/host.h"
#include "tern/module.h"

typedef struct served_domain served_domain;

/* Whether any module serves a domain (lets hot paths skip the lookup). */
bool served_any(void);
/* The entry for a prepared domain, or NULL. */
served_domain *served_find(const char *domain);
/* The host whose module serves it. */
tern_host *served_host(const served_domain *sd);
/* Hands ev (its host set to served_host()) to the module, as its code. */
void served_deliver(const served_domain *sd, const tern_stanza_event *ev);
/* Removes what `owner` serves on host (NULL: everything the host's modules serve). */
void served_remove_owned(tern_host *host, const module_instance *owner);

#endif
