/* config.h — the INI configuration file (doc/architecture.md §6), parsed with libinih.
 *
 * Every error names the file, the line and the reason; unknown sections and keys are errors.
 * Relative paths are resolved against the folder of the config file. A loaded config is
 * immutable: SIGHUP loads a new one and swaps it in. */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct config_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[80];            /* as written, e.g. "127.0.0.1:5222" or "[::1]:5222" */
} config_addr;

typedef struct config_addr_list {
    config_addr *items;
    size_t n;
} config_addr_list;

typedef struct config_strings {
    char **items;
    size_t n;
} config_strings;

/* One "key = value" of a module's settings, as written: in a [module NAME] section, or as
 * "NAME.key = value" in a [host X] section (an override for that host). config.c does not
 * know the modules; module_settings.c checks these against what each module declares. */
typedef struct config_setting {
    char *module, *key, *value;
    int line;
} config_setting;

typedef struct config_settings {
    config_setting *items;
    size_t n;
} config_settings;

/* One [s2s] routes entry: `domain` is reached at host:port instead of through DNS SRV. */
typedef struct config_route {
    char *domain;             /* prepared */
    char *host;               /* a name or an address (IPv6 without brackets) */
    unsigned port;
} config_route;

typedef struct config_routes {
    config_route *items;
    size_t n;
} config_routes;

/* [component DOMAIN]: an external component (the component module) and its secret. */
typedef struct config_component {
    char *name;               /* prepared domain */
    char *secret;
    char *roster;             /* XEP-0356 privilege: none (default), get, set or both */
    char *message;            /* XEP-0356 privilege: none (default) or outgoing */
    int line;                 /* of the section header */
} config_component;

typedef struct config_host {
    char *name;               /* prepared domain (jid_prep_domain) */
    config_strings modules;   /* module names in the order given */
    bool registration;        /* in-band registration allowed (default no) */
    char *cert, *key;         /* absolute paths, or NULL to use [tls] */
    config_settings module_settings; /* "module.key = value" overrides */
    int line;                 /* line of the [host NAME] header */
} config_host;

/* Back-pressure on a peer that does not read (conn.h, conn_send_limits): stop reading its
 * input at high_water bytes waiting to be sent, close it with policy-violation past max or
 * after timeout seconds over high_water. Defaults 512 KiB, 16 MiB, 60 s. */
typedef struct config_send_queue {
    size_t high_water;        /* send_queue_high_water */
    size_t max;               /* max_send_queue */
    unsigned timeout;         /* send_queue_timeout; 0: no time limit */
} config_send_queue;

typedef struct config {
    char *path;               /* absolute path of the file */
    char *dir;                /* its folder */

    /* [server] */
    char *data_dir;           /* absolute; default "<dir>/../var" */
    int log_level;            /* tern_log_level; default info */
    unsigned workers;         /* 0 = auto (one per core) */
    config_strings admins;    /* prepared bare JIDs */
    config_strings dns_servers; /* "ip:port" or "ip" items; empty: system resolver */
    char *module_dir;         /* absolute, or NULL for the built-in default */
    char *pid_file;           /* absolute; default "<data_dir>/ternd.pid" */
    char *control_socket;     /* absolute; default "<data_dir>/ternd.ctl" (control.h) */
    size_t max_storage_size;  /* bytes the data file may grow to; 0 (default): the disk's */
    size_t storage_queue_max; /* bytes of queued storage writes before the main loop waits */

    /* [tls] */
    char *tls_cert, *tls_key; /* absolute, or NULL */
    char *tls_ca_file;        /* absolute, or NULL: system store */
    char *tls_priority;       /* GnuTLS priority string; default in config.c */

    /* [c2s] */
    config_addr_list c2s_listen;      /* STARTTLS */
    config_addr_list c2s_tls_listen;  /* direct TLS */
    size_t c2s_max_stanza_size;       /* default 262144 */
    bool c2s_require_tls;             /* default yes */
    unsigned c2s_max_connections;     /* default 10000 */
    unsigned c2s_login_timeout;       /* seconds to authenticate and bind; default 60 */
    unsigned c2s_max_sessions_per_account; /* bound resources per account; default 10 */
    /* XEP-0205 §3, per address (an IPv4 address or an IPv6 /64) and in all (addr_limits.h) */
    unsigned c2s_max_connections_per_address;     /* default 256 */
    unsigned c2s_max_unauthenticated;             /* default 2000 */
    unsigned c2s_max_unauthenticated_per_address; /* default 32 */
    unsigned c2s_logins_per_second_per_address;   /* default 10 */
    config_send_queue c2s_send_queue;

    /* [s2s] */
    int s2s_section_line;             /* line of the first [s2s] key, 0 when none is set */
    config_addr_list s2s_listen;
    bool s2s_dialback;                /* default yes */
    unsigned s2s_max_connections_per_address;     /* incoming; default 64 */
    unsigned s2s_max_unauthenticated;             /* incoming; default 500 */
    unsigned s2s_max_unauthenticated_per_address; /* incoming; default 16 */
    size_t s2s_max_stanza_size;       /* default 524288 */
    config_send_queue s2s_send_queue;
    /* Peers must authenticate with a certificate valid for their domain (PKIX against [tls]
     * ca_file, RFC 6125 names); dialback alone is not enough. Default no. The lists are the
     * exceptions: secure_domains always need one, insecure_domains never (prepared domains,
     * a domain in at most one of them). */
    bool s2s_require_valid_certificates;
    config_strings s2s_secure_domains;
    config_strings s2s_insecure_domains;
    config_routes s2s_routes;         /* static routes instead of SRV records */

    /* [http] */
    config_addr_list http_listen;
    config_addr_list http_tls_listen;
    char *http_static_dir;            /* absolute, or NULL: no static files */
    config_strings http_cors_origins; /* serialized origins allowed by CORS; "*": any */
    size_t http_max_body_size;        /* largest request body; default 1048576 */
    config_send_queue http_send_queue; /* HTTP, BOSH and WebSocket connections */

    config_settings module_settings;  /* every [module NAME] section's keys */

    config_host *hosts;
    size_t n_hosts;
    config_component *components; /* [component DOMAIN] sections (XEP-0114), in file order */
    size_t n_components;
} config;

/* Loads and validates `path`. On error returns NULL and writes "FILE:LINE: reason" (or
 * "FILE: reason" when no line applies) into err. */
config *config_load(const char *path, char *err, size_t err_len);
void config_free(config *cfg);
const config_host *config_find_host(const config *cfg, const char *domain);
bool config_is_admin(const config *cfg, const char *bare_jid);
/* Whether the peer `domain` (prepared) must present a valid certificate ([s2s]
 * require_valid_certificates with its secure_domains / insecure_domains exceptions). */
bool config_s2s_requires_certificate(const config *cfg, const char *domain);
/* A static route for the prepared `domain` ([s2s] routes): true with the host (a name or an
 * address, IPv6 without brackets) and the port. */
bool config_s2s_route(const config *cfg, const char *domain, char *host, size_t host_len,
                      unsigned *port);

/* The value written for module.key: the host's override if `host` (prepared domain, may be
 * NULL) has one, else the [module] section's, else NULL. */
const config_setting *config_module_setting(const config *cfg, const char *host,
                                            const char *module, const char *key);

/* Parses "127.0.0.1:5222", "[::1]:5222", "*:5222" (all IPv4) into out; -1 if invalid. */
int config_parse_addr(const char *text, config_addr *out);

#endif
