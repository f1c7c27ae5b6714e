/* config_query.c — questions the rest of the server asks a loaded configuration (config.h):
 * a host by name, whether a JID is an admin, an s2s peer's route and certificate rule, a
 * module setting. The parsing is config.c's. */
#include "core/config.h"

#include <stdio.h>
#include <string.h>

#include "core/config_lists.h"

const config_host *config_find_host(const config *cfg, const char *domain)
{
    for (size_t i = 0; i < cfg->n_hosts; i++)
        if (strcmp(cfg->hosts[i].name, domain) == 0)
            return &cfg->hosts[i];
    return NULL;
}

bool config_is_admin(const config *cfg, const char *bare_jid)
{
    return config_strings_contain(&cfg->admins, bare_jid);
}

bool config_s2s_route(const config *cfg, const char *domain, char *host, size_t host_len,
                      unsigned *port)
{
    for (size_t i = 0; i < cfg->s2s_routes.n; i++) {
        const config_route *r = &cfg->s2s_routes.items[i];
        if (strcmp(r->domain, domain) == 0) {
            snprintf(host, host_len, "%s", r->host);
            *port = r->port;
            return true;
        }
    }
    return false;
}

bool config_s2s_requires_certificate(const config *cfg, const char *domain)
{
    if (config_strings_contain(&cfg->s2s_secure_domains, domain))
        return true;
    if (config_strings_contain(&cfg->s2s_insecure_domains, domain))
        return false;
    return cfg->s2s_require_valid_certificates;
}

const config_setting *config_module_setting(const config *cfg, const char *host,
                                            const char *module, const char *key)
{
    const config_host *h = host ? config_find_host(cfg, host) : NULL;
    const config_setting *set = h ? config_settings_find(&h->module_settings, module, key) : NULL;
    return set ? set : config_settings_find(&cfg->module_settings, module, key);
}
