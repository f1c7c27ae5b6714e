/* control_socket.c — the control socket ternctl talks to while ternd runs (see control_socket.h).
 *
 * One request per connection: a line of words, answered with "ok ..." or "error ..." and
 * any further lines, then the connection closes. The socket is a Unix socket of mode 0600 in
 * the data folder, so only the account ternd runs as (and root) can use it — the same people
 * who can read its database. Bounded: CONTROL_MAX_CLIENTS at once, one line of at most
 * CONTROL_MAX_LINE bytes, CONTROL_TIMEOUT seconds to send it. */
#include "control_socket.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/util.h"
#include "host/module.h"
#include "process/server.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_MAX_LINE 1024
#define CONTROL_TIMEOUT 10

static struct evconnlistener *control_listener;
static char *socket_path;
static struct bufferevent *clients[CONTROL_MAX_CLIENTS]; /* NULL: a free slot */

/* ---- requests ---- */

static void add_name(void *out, const char *name)
{
    evbuffer_add_printf(out, "%s\n", name);
}

static const struct { const char *word; tern_module_op op; } module_ops[] = {
    { "load", TERN_MODULE_LOAD }, { "unload", TERN_MODULE_UNLOAD },
    { "reload", TERN_MODULE_RELOAD },
};

/* "module list HOST", "module load|unload|reload HOST NAME". */
static void run_module(char **words, size_t n, struct evbuffer *out)
{
    tern_host *host = n >= 3 ? server_find_host(words[2]) : NULL;
    if (n >= 3 && !host) {
        evbuffer_add_printf(out, "error no host %s here\n", words[2]);
        return;
    }
    if (n == 3 && strcmp(words[1], "list") == 0) {
        evbuffer_add(out, "ok\n", 3);
        tern_module_each(host, add_name, out);
        return;
    }
    for (size_t i = 0; n == 4 && i < sizeof module_ops / sizeof *module_ops; i++) {
        if (strcmp(words[1], module_ops[i].word) != 0)
            continue;
        /* Straight from the event loop: no module code is on the stack, so at once. */
        char text[1200];
        bool ok = module_change_now(host, module_ops[i].op, words[3], text, sizeof text);
        evbuffer_add_printf(out, "%s %s\n", ok ? "ok" : "error", text);
        return;
    }
    evbuffer_add_printf(out, "error usage: module list HOST | module load|unload|reload HOST "
                             "NAME\n");
}

static void run_request(char *line, struct evbuffer *out)
{
    char *words[8];
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(line, " \t", &save); w && n < 8;
         w = strtok_r(NULL, " \t", &save))
        words[n++] = w;
    if (n > 0 && strcmp(words[0], "module") == 0)
        run_module(words, n, out);
    else
        evbuffer_add_printf(out, "error unknown request (this ternd knows: module)\n");
}

/* ---- connections ---- */

static void client_free(struct bufferevent *bev)
{
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (clients[i] == bev)
            clients[i] = NULL;
    bufferevent_free(bev);
}

static void on_written(struct bufferevent *bev, void *arg)
{
    (void)arg;
    client_free(bev); /* the answer is out: one request per connection */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    (void)arg;
    client_free(bev); /* EOF, error or timeout before a whole request */
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
    size_t len;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (!line) {
        if (evbuffer_get_length(in) <= CONTROL_MAX_LINE)
            return; /* wait for the rest of the line */
        evbuffer_add_printf(out, "error request longer than %d bytes\n", CONTROL_MAX_LINE);
    } else if (len > CONTROL_MAX_LINE) {
        evbuffer_add_printf(out, "error request longer than %d bytes\n", CONTROL_MAX_LINE);
    } else {
        run_request(line, out);
    }
    free(line);
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, on_written, on_event, NULL);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    (void)arg;
    size_t slot = 0;
    while (slot < CONTROL_MAX_CLIENTS && clients[slot])
        slot++;
    struct bufferevent *bev = slot < CONTROL_MAX_CLIENTS
                                  ? bufferevent_socket_new(server.base, fd, BEV_OPT_CLOSE_ON_FREE)
                                  : NULL;
    if (!bev) {
        /* Busy: say so (best effort, the socket is new and empty) rather than just close. */
        static const char busy[] = "error busy: other control requests are running\n";
        ssize_t ignored = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
        evutil_closesocket(fd);
        return;
    }
    clients[slot] = bev;
    struct timeval timeout = { CONTROL_TIMEOUT, 0 };
    bufferevent_set_timeouts(bev, &timeout, &timeout);
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ);
}

/* ---- the socket ---- */

int control_open(const char *path, char *err, size_t err_len)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) {
        snprintf(err, err_len, "control_socket %s is longer than %zu bytes; set [server] "
                 "control_socket to a shorter path", path, sizeof addr.sun_path - 1);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    /* The pid file lock says no other ternd runs here: a socket file left is stale. */
    unlink(path);
    mode_t old = umask(0177); /* mode 0600 from the start, no window */
    control_listener = evconnlistener_new_bind(server.base, on_accept, NULL,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                       (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (!control_listener) {
        snprintf(err, err_len, "cannot open the control socket %s: %s", path, strerror(errno));
        return -1;
    }
    socket_path = xstrdup(path);
    return 0;
}

void control_close(void)
{
    if (!control_listener)
        return;
    evconnlistener_free(control_listener);
    control_listener = NULL;
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (clients[i])
            client_free(clients[i]);
    unlink(socket_path);
    free(socket_path);
    socket_path = NULL;
}
