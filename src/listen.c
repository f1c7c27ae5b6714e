/* listen.c — listening sockets via libevent's evconnlistener. IPv6 sockets are v6-only so that
 * "127.0.0.1:5222" and "[::1]:5222" can be bound side by side. */
#include "listen.h"

#include <errno.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c2s.h"
#include "http.h"
#include "s2s.h"
#include "tern/log.h"
#include "util.h"

struct listener {
    struct evconnlistener *ev;
    listen_kind kind;
    char addr[80];
    listener *next;
};

static void on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    listener *l = arg;
    (void)ev;
    (void)sa;
    (void)socklen;
    switch (l->kind) {
    case LISTEN_C2S:
        c2s_accept(fd, false);
        break;
    case LISTEN_C2S_DIRECT:
        c2s_accept(fd, true);
        break;
    case LISTEN_HTTP:
        http_accept(fd, false);
        break;
    case LISTEN_HTTPS:
        http_accept(fd, true);
        break;
    case LISTEN_S2S:
        s2s_accept(fd);
        break;
    }
}

static void on_accept_error(struct evconnlistener *ev, void *arg)
{
    listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)ev;
    /* EMFILE and friends: keep the listener; the connection limit logs separately. */
    log_warn(0, "accept on %s failed: %s", l->addr, evutil_socket_error_to_string(err));
}

int listen_add(listener **list, struct event_base *base, const config_addr_list *addrs,
               listen_kind kind, char *err, size_t err_len)
{
    for (size_t i = 0; i < addrs->n; i++) {
        const config_addr *a = &addrs->items[i];
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
        if (a->ss.ss_family == AF_INET6)
            flags |= LEV_OPT_BIND_IPV6ONLY;
        listener *l = xcalloc(1, sizeof *l);
        l->kind = kind;
        snprintf(l->addr, sizeof l->addr, "%s", a->text);
        l->ev = evconnlistener_new_bind(base, on_accept, l, flags, 511,
                                        (const struct sockaddr *)&a->ss, (int)a->len);
        if (!l->ev) {
            snprintf(err, err_len, "cannot listen on %s: %s", a->text, strerror(errno));
            free(l);
            return -1;
        }
        evconnlistener_set_error_cb(l->ev, on_accept_error);
        l->next = *list;
        *list = l;
        static const char *const labels[] = {
            [LISTEN_C2S] = "c2s, STARTTLS", [LISTEN_C2S_DIRECT] = "c2s, direct TLS",
            [LISTEN_HTTP] = "HTTP", [LISTEN_HTTPS] = "HTTPS",
            [LISTEN_S2S] = "s2s, STARTTLS",
        };
        log_info(0, "listening on %s (%s)", a->text, labels[kind]);
    }
    return 0;
}

void listen_free_all(listener *list)
{
    while (list) {
        listener *next = list->next;
        evconnlistener_free(list->ev);
        free(list);
        list = next;
    }
}
