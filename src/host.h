/* host.h — a virtual host: its configuration, hook bus, registries, loaded modules, timers and
 * the routing table of its online accounts (bare JID → bound sessions). */
#ifndef TERN_HOST_H
#define TERN_HOST_H

#include <stddef.h>

#include "config.h"
#include "hashmap.h"
#include "tern/module.h"

typedef struct hook hook;
typedef struct registry_item registry_item;
typedef struct module_instance module_instance;

/* The sessions of one online account. */
typedef struct user_sessions {
    tern_session *head;  /* linked through tern_session.next_of_user */
    size_t count;
} user_sessions;

struct tern_host {
    char *name;
    const config_host *cfg;
    hashmap *hooks;            /* event name → hook list (hooks.c) */
    registry_item *registry;
    module_instance *modules;  /* in load order, newest first */
    const module_instance *loading; /* owner of registrations made right now */
    struct tern_timer *timers;
    hashmap *users;            /* bare JID → user_sessions */
    size_t n_sessions;
};

tern_host *host_new(const config_host *cfg);
/* Unloads modules (newest first) and frees everything the host owns. */
void host_free(tern_host *host);
/* Removes every hook, registry item and timer owned by a module instance. */
void host_remove_owned(tern_host *host, const module_instance *owner);

user_sessions *host_user(tern_host *host, const char *bare);

#endif
