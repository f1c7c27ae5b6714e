/* config_lists.c — the containers a loaded configuration holds (lists of strings and
 * addresses, module settings) and config_free(); the parsing is config.c's. */
#include "core/config_lists.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void config_strings_add(config_strings *list, const char *s)
{
    list->items = xrealloc(list->items, (list->n + 1) * sizeof *list->items);
    list->items[list->n++] = xstrdup(s);
}

bool config_strings_contain(const config_strings *list, const char *s)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->items[i], s) == 0)
            return true;
    return false;
}

void config_strings_free(config_strings *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

void config_settings_free(config_settings *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].module);
        free(list->items[i].key);
        free(list->items[i].value);
    }
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

const config_setting *config_settings_find(const config_settings *list, const char *module,
                                          const char *key)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->items[i].module, module) == 0 &&
            (!key || strcmp(list->items[i].key, key) == 0))
            return &list->items[i];
    return NULL;
}

void config_addrs_add(config_addr_list *list, const config_addr *addr)
{
    list->items = xrealloc(list->items, (list->n + 1) * sizeof *list->items);
    list->items[list->n++] = *addr;
}

void config_free(config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->dir);
    free(cfg->data_dir);
    config_strings_free(&cfg->admins);
    config_strings_free(&cfg->dns_servers);
    free(cfg->module_dir);
    free(cfg->pid_file);
    free(cfg->control_socket);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->tls_ca_file);
    free(cfg->tls_priority);
    config_addr_list *lists[] = { &cfg->c2s_listen, &cfg->c2s_tls_listen, &cfg->s2s_listen,
                                  &cfg->http_listen, &cfg->http_tls_listen };
    for (size_t i = 0; i < ARRAY_LEN(lists); i++)
        free(lists[i]->items);
    free(cfg->http_static_dir);
    config_strings_free(&cfg->http_cors_origins);
    config_strings_free(&cfg->s2s_secure_domains);
    config_strings_free(&cfg->s2s_insecure_domains);
    for (size_t i = 0; i < cfg->s2s_routes.n; i++) {
        free(cfg->s2s_routes.items[i].domain);
        free(cfg->s2s_routes.items[i].host);
    }
    free(cfg->s2s_routes.items);
    for (size_t i = 0; i < cfg->n_components; i++) {
        free(cfg->components[i].name);
        free(cfg->components[i].secret);
        free(cfg->components[i].roster);
        free(cfg->components[i].message);
    }
    free(cfg->components);
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        free(cfg->hosts[i].name);
        config_strings_free(&cfg->hosts[i].modules);
        free(cfg->hosts[i].cert);
        free(cfg->hosts[i].key);
        config_settings_free(&cfg->hosts[i].module_settings);
    }
    config_settings_free(&cfg->module_settings);
    free(cfg->hosts);
    free(cfg);
}
