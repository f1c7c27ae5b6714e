/* config_keys.h — the table of configuration keys (config_keys.c): their sections, the kind
 * of value each takes and where it is stored. Private to the parser (config.c): adding a key
 * is one row in config_keys.c plus one field in config.h. */
#ifndef TERN_CONFIG_KEYS_H
#define TERN_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

typedef enum section {
    SEC_NONE, /* before the first header */
    SEC_SERVER,
    SEC_TLS,
    SEC_C2S,
    SEC_S2S,
    SEC_HTTP,
    SEC_HOST,
    SEC_MODULE,
    SEC_COMPONENT,
} section;

typedef enum value_kind {
    V_PATH,        /* required path, resolved against the config folder */
    V_PATH_OPT,    /* same, but an empty value means "not set" (NULL) */
    V_PRIORITY,    /* GnuTLS priority string */
    V_LOG_LEVEL,
    V_WORKERS,     /* "auto" (0) or min..max */
    V_SIZE,        /* size_t in min..max */
    V_UINT,        /* unsigned in min..max */
    V_BOOL,
    V_ADMINS,      /* list of bare JIDs */
    V_DNS,         /* list of ip[:port] */
    V_ADDRS,       /* list of listen addresses */
    V_MODULES,     /* list of module names */
    V_ORIGINS,     /* list of web origins (CORS), or "*" */
    V_DOMAINS,     /* list of domains, prepared */
    V_SECRET,      /* a string, kept as written */
    V_ROUTES,      /* list of domain=host:port (config_routes) */
} value_kind;

typedef enum key_id {
    K_SERVER_DATA_DIR, K_SERVER_LOG_LEVEL, K_SERVER_WORKERS, K_SERVER_ADMINS,
    K_SERVER_DNS_SERVERS, K_SERVER_MODULE_DIR, K_SERVER_PID_FILE, K_SERVER_CONTROL_SOCKET,
    K_SERVER_MAX_STORAGE_SIZE, K_SERVER_STORAGE_QUEUE_MAX,
    K_TLS_CERT, K_TLS_KEY, K_TLS_CA_FILE, K_TLS_PRIORITY,
    K_C2S_LISTEN, K_C2S_TLS_LISTEN, K_C2S_MAX_STANZA_SIZE, K_C2S_REQUIRE_TLS,
    K_C2S_MAX_CONNECTIONS, K_C2S_LOGIN_TIMEOUT, K_C2S_MAX_SESSIONS_PER_ACCOUNT,
    K_C2S_MAX_PER_ADDRESS, K_C2S_MAX_UNAUTH, K_C2S_MAX_UNAUTH_PER_ADDRESS, K_C2S_LOGIN_RATE,
    K_C2S_SEND_HIGH, K_C2S_SEND_MAX, K_C2S_SEND_TIMEOUT,
    K_S2S_LISTEN, K_S2S_DIALBACK, K_S2S_MAX_STANZA_SIZE, K_S2S_REQUIRE_VALID_CERTS,
    K_S2S_MAX_PER_ADDRESS, K_S2S_MAX_UNAUTH, K_S2S_MAX_UNAUTH_PER_ADDRESS,
    K_S2S_SECURE_DOMAINS, K_S2S_INSECURE_DOMAINS, K_S2S_ROUTES,
    K_S2S_SEND_HIGH, K_S2S_SEND_MAX, K_S2S_SEND_TIMEOUT,
    K_HTTP_LISTEN, K_HTTP_TLS_LISTEN, K_HTTP_STATIC_DIR, K_HTTP_CORS_ORIGINS,
    K_HTTP_MAX_BODY_SIZE, K_HTTP_SEND_HIGH, K_HTTP_SEND_MAX, K_HTTP_SEND_TIMEOUT,
    K_HOST_MODULES, K_HOST_REGISTRATION, K_HOST_CERT, K_HOST_KEY, /* host keys last */
    K_COMPONENT_SECRET, K_COMPONENT_ROSTER, K_COMPONENT_MESSAGE,
    K_COUNT
} key_id;

typedef struct key_spec {
    section sec;
    const char *name;
    value_kind kind;
    size_t offset;            /* into config, or into config_host for SEC_HOST */
    unsigned long min, max;   /* for numbers */
} key_spec;

extern const char *const config_section_names[];
extern const key_spec config_keys[K_COUNT];

/* Lists may continue on indented lines (inih's multi-line values), so a long modules = line
 * can be wrapped. */
bool config_kind_is_list(value_kind kind);

#endif
