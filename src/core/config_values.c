/* config_values.c — the parsers for single configuration values (see config_values.h).
 * They hold no state and only say whether a word is valid and what it means; config.c turns a
 * failure into a "FILE:LINE: reason" message. */
#include "core/config_values.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "tern/jid.h"

bool config_parse_number(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (*s == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max)
        return false;
    *out = (unsigned long)v;
    return true;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static bool parse_port(const char *s, in_port_t *port)
{
    unsigned long v;
    if (!config_parse_number(s, 1, 65535, &v))
        return false;
    *port = (in_port_t)v;
    return true;
}

/* Splits "host:port" / "[v6]:port" into a NUL-terminated host and a port string. The host of
 * the unbracketed form must not contain ':' (an IPv6 address needs brackets to carry a port). */
static int split_host_port(const char *text, char *host, size_t host_len, const char **port)
{
    const char *h, *end;
    if (text[0] == '[') {
        h = text + 1;
        end = strchr(h, ']');
        if (!end || end[1] != ':')
            return -1;
        *port = end + 2;
    } else {
        h = text;
        end = strrchr(text, ':');
        if (!end || memchr(text, ':', (size_t)(end - text)))
            return -1;
        *port = end + 1;
    }
    if ((size_t)(end - h) >= host_len)
        return -1;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    return 0;
}

int config_parse_addr_why(const char *text, config_addr *out, const char **why)
{
    static const char bad_addr[] = "expected IP:PORT, [IPv6]:PORT or *:PORT";
    memset(out, 0, sizeof *out);
    char host[INET6_ADDRSTRLEN];
    const char *port_text;
    in_port_t port;
    *why = bad_addr;
    if (strlen(text) >= sizeof out->text ||
        split_host_port(text, host, sizeof host, &port_text) < 0)
        return -1;
    if (!parse_port(port_text, &port)) {
        *why = "port must be 1..65535";
        return -1;
    }
    if (text[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        out->len = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
        /* "*" is the IPv4 wildcard; IPv6 listeners say [::] explicitly. */
        if (strcmp(host, "*") == 0)
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        out->len = sizeof *sin;
    }
    strcpy(out->text, text);
    return 0;
}

int config_parse_addr(const char *text, config_addr *out)
{
    const char *why;
    return config_parse_addr_why(text, out, &why);
}

bool config_valid_dns_server(const char *text)
{
    unsigned char addr[sizeof(struct in6_addr)];
    char host[INET6_ADDRSTRLEN];
    size_t len = strlen(text);
    in_port_t port;
    if (inet_pton(AF_INET, text, addr) == 1 || inet_pton(AF_INET6, text, addr) == 1)
        return true;
    if (text[0] == '[' && len > 2 && text[len - 1] == ']' && len - 2 < sizeof host) {
        memcpy(host, text + 1, len - 2);
        host[len - 2] = '\0';
        return inet_pton(AF_INET6, host, addr) == 1;
    }
    const char *port_text;
    if (split_host_port(text, host, sizeof host, &port_text) < 0 || !parse_port(port_text, &port))
        return false;
    return inet_pton(text[0] == '[' ? AF_INET6 : AF_INET, host, addr) == 1;
}

/* RFC 6454 §6.2: nothing may follow the host and port (no path, no trailing slash). */
bool config_valid_origin(const char *text)
{
    const char *p = text;
    if (!isalpha((unsigned char)*p))
        return false;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return false;
    p += 3;
    const char *host = p;
    if (*p == '[') {
        p = strchr(p, ']');
        if (!p)
            return false;
        p++;
    } else {
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_')
            p++;
    }
    if (p == host)
        return false;
    if (*p == ':') {
        in_port_t port;
        return parse_port(p + 1, &port);
    }
    return *p == '\0';
}

bool config_valid_module_name(const char *name)
{
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    return *name != '\0';
}

bool config_parse_route(const char *word, config_route *out)
{
    const char *eq = strchr(word, '=');
    const char *hostport = eq ? eq + 1 : NULL;
    const char *colon = hostport ? strrchr(hostport, ':') : NULL;
    bool bracketed = hostport && hostport[0] == '[';
    unsigned long port = 0;
    if (!colon || colon == hostport || (bracketed && colon[-1] != ']') ||
        !config_parse_number(colon + 1, 1, 65535, &port))
        return false;
    /* The host: brackets around an IPv6 address and nothing that belongs to a URL or a JID. */
    const char *host = bracketed ? hostport + 1 : hostport;
    size_t host_len = (size_t)(colon - host) - (bracketed ? 1 : 0);
    char *h = xstrndup(host, host_len);
    char *dname = xstrndup(word, (size_t)(eq - word)), *domain = NULL;
    bool ok = host_len > 0 && !strpbrk(h, "=/@[]") && (bracketed || !strchr(h, ':')) &&
              jid_prep_domain(dname, &domain) == 0;
    free(dname);
    if (!ok) {
        free(h);
        free(domain);
        return false;
    }
    *out = (config_route){ domain, h, (unsigned)port };
    return true;
}
