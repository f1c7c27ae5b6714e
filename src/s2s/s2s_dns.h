/* s2s_dns.h — where a remote XMPP domain's server listens: SRV lookups of _xmpps-server._tcp
 * (direct TLS, XEP-0368) and _xmpp-server._tcp (RFC 6120 §3.2.1), then the targets' A/AAAA
 * records, or the domain itself on port 5269 when it has no SRV record (§3.2.2). c-ares does the
 * lookups on the event loop, through [server] dns_servers when set; answers are cached by TTL. */
#ifndef TERN_S2S_DNS_H
#define TERN_S2S_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct s2s_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool direct_tls;   /* from an _xmpps-server record: TLS from the first byte */
    char text[80];     /* "ip:port" for logs */
} s2s_addr;

/* The addresses to try, in order; n == 0 with a short reason when there is none. The array is
 * borrowed for the call. */
typedef void (*s2s_dns_cb)(void *ctx, const s2s_addr *addrs, size_t n, const char *error);

typedef struct s2s_dns_req s2s_dns_req;

/* Starts a lookup; cb is called later from the event loop (never from inside this call). */
s2s_dns_req *s2s_dns_resolve(const char *domain, s2s_dns_cb cb, void *ctx);
/* The callback of a request that has not completed yet will not be called. */
void s2s_dns_cancel(s2s_dns_req *r);
/* At exit: ends every lookup and frees the resolver and the cache. */
void s2s_dns_shutdown(void);

#endif
