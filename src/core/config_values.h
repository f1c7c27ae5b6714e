/* config_values.h — checks and parses one configuration value (a number, a boolean, an
 * address, a DNS server, a CORS origin, a module name). For config.c and module_settings.c
 * (module settings are checked with the same words); the rest of the core uses config.h.
 * No state and no messages with file or line: callers say where the value came from. */
#ifndef TERN_CONFIG_VALUES_H
#define TERN_CONFIG_VALUES_H

#include <stdbool.h>

#include "core/config.h"

/* A whole number of decimal digits only (no sign, no space) in min..max. */
bool config_parse_number(const char *s, unsigned long min, unsigned long max,
                         unsigned long *out);
/* yes/true/on/1 or no/false/off/0, any case; 0, or -1 if neither. */
int config_parse_bool(const char *s, bool *out);
/* Like config_parse_addr; on -1, *why says what is wrong with the text. */
int config_parse_addr_why(const char *text, config_addr *out, const char **why);
/* A static s2s route, "domain=host:port" (host a name, an IPv4 address or [IPv6]): fills out
 * (domain prepared, strings malloc'd) and returns true, or false for anything else. */
bool config_parse_route(const char *word, config_route *out);
/* A DNS server for c-ares: "ip", "ip:port", "v6", "[v6]" or "[v6]:port". */
bool config_valid_dns_server(const char *text);
/* A serialized web origin (RFC 6454 §6.2): scheme "://" host [":" port]. */
bool config_valid_origin(const char *text);
/* A module name: a-z, 0-9 and _, not empty. */
bool config_valid_module_name(const char *name);

#endif
