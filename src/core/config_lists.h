/* config_lists.h — the containers of a configuration (config_lists.c), for config.c. */
#ifndef TERN_CONFIG_LISTS_H
#define TERN_CONFIG_LISTS_H

#include <stdbool.h>

#include "core/config.h"

void config_strings_add(config_strings *list, const char *s);
bool config_strings_contain(const config_strings *list, const char *s);
void config_strings_free(config_strings *list);
void config_addrs_add(config_addr_list *list, const config_addr *addr);
/* The first setting of `module` named `key` (any key when key is NULL), or NULL. */
const config_setting *config_settings_find(const config_settings *list, const char *module,
                                          const char *key);
void config_settings_free(config_settings *list);

#endif
