/* listen.c — listening sockets via libevent's evconnlistener. IPv6 sockets are v6-only so that
 * "127.0.0.1:5222" and "[::1]:5222" can be bound side by side. */
#include "net/listen.h"

#include <errno.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "tern/log.h"

struct listener {
    struct evconnlistener *ev;
    listen_accept_fn accept;
    bool tls;
    void *arg;
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
    l->accept(fd, l->tls, l->arg);
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
               listen_accept_fn accept, bool tls, void *arg, const char *label, char *err,
               size_t err_len)
{
    for (size_t i = 0; i < addrs->n; i++) {
        const config_addr *a = &addrs->items[i];
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
        if (a->ss.ss_family == AF_INET6)
            flags |= LEV_OPT_BIND_IPV6ONLY;
        listener *l = xcalloc(1, sizeof *l);
        l->accept = accept;
        l->tls = tls;
        l->arg = arg;
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
        log_info(0, "listening on %s (%s)", a->text, label);
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
