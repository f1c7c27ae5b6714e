/* host.h — a virtual host: its configuration, hook bus, registries, loaded modules, timers and
 * the routing table of its online accounts (bare JID → bound sessions). */
#ifndef TERN_HOST_H
#define TERN_HOST_H

#include <stddef.h>

#include "core/config.h"
#include "core/hashmap.h"
#include "tern/module.h"

typedef struct hook hook;
typedef struct registry_item registry_item;
typedef struct module_instance module_instance;
typedef struct module_change module_change;
typedef struct host_listener host_listener;

/* One module loaded on one host (module.c loads it; owner.c tells whose code registered what). */
struct module_instance {
    const tern_module_def *def;
    void *state;
    void *handle;           /* dlopen handle */
    const void *base;       /* where the shared object is mapped (dladdr's dli_fbase) */
    module_instance *next;
};

/* The sessions of one online account. */
typedef struct user_sessions {
    tern_session *head;  /* linked through tern_session.next_of_user */
    size_t count;
} user_sessions;

struct tern_host {
    char *name;
    const config_host *cfg;
    hashmap *hooks;            /* event name → hook list (hooks.c) */
    hook *deliver_hooks;       /* tern_hook_deliver(), by descending priority */
    hook *element_hooks;       /* tern_hook_element() */
    hook *preauth_hooks;       /* tern_hook_preauth_iq() */
    registry_item *registry;
    module_instance *modules;  /* in load order, newest first */
    module_change *changes;    /* run-time loads and unloads not yet done (module.c) */
    /* The module whose code runs now (its load(), a hook, a timer), or NULL for the core:
     * what owns a registration made from code that is not in a module's own object. */
    const module_instance *running;
    const module_instance *loading; /* the module in its load(), or NULL */
    char *load_error;          /* set by a registration the running load() got wrong */
    struct tern_timer *timers;
    host_listener *listeners;  /* tern_listen(), by module */
    hashmap *users;            /* bare JID → user_sessions */
    size_t n_sessions;
};

tern_host *host_new(const config_host *cfg);
/* Frees everything the host owns; unload its modules first (module_unload_host). */
void host_free(tern_host *host);
/* Removes every hook, registry item, timer and listener owned by a module instance (NULL:
 * everything). */
void host_remove_owned(tern_host *host, const module_instance *owner);

user_sessions *host_user(tern_host *host, const char *bare);
/* Closes the listeners modules opened (a graceful stop takes no new connections). */
void host_close_listeners(tern_host *host);

#endif
