/* worker.c — see worker.h: threads, their loops and inboxes. */
#include "event/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "net/conn.h"
#include "process/server.h"
#include "tern/log.h"

/* Messages posted during this loop turn, not handed over yet. */
typedef struct outbox {
    inbox_msg *first, *last;
} outbox;

struct worker {
    unsigned index;
    pthread_t thread;
    struct event_base *base;
    inbox *inbox;
    outbox to_worker;       /* the main loop's, for this worker */
    outbox to_main;         /* this worker's own, for the main loop */
    struct event *ev_flush; /* on the worker's loop: hands to_main over */
};

static worker *workers;
static size_t n_workers;
static size_t next_worker;
static inbox *main_box;
static struct event *main_flush; /* on the main loop: hands every to_worker over */

/* Appends m; true when it is the first of this turn (the caller schedules the hand-over). */
static bool outbox_add(outbox *o, inbox_msg *m)
{
    m->next = NULL;
    bool first = o->first == NULL;
    if (first)
        o->first = m;
    else
        o->last->next = m;
    o->last = m;
    return first;
}

static void outbox_flush(outbox *o, inbox *to)
{
    if (!o->first)
        return;
    inbox_post_chain(to, o->first, o->last);
    o->first = o->last = NULL;
}

/* Both run after everything their loop had to do in this turn: event_active() puts them
 * behind the callbacks already pending. */
static void on_main_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    for (size_t i = 0; i < n_workers; i++)
        outbox_flush(&workers[i].to_worker, workers[i].inbox);
}

static void on_worker_flush(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)fd;
    (void)what;
    outbox_flush(&w->to_main, main_box);
}

void worker_post(worker *w, inbox_msg *m)
{
    if (outbox_add(&w->to_worker, m))
        event_active(main_flush, 0, 0);
}

void worker_post_main(worker *w, inbox_msg *m)
{
    if (outbox_add(&w->to_main, m))
        event_active(w->ev_flush, 0, 0);
}

unsigned workers_wanted(unsigned configured)
{
    if (configured > 0)
        return configured;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (unsigned)cpus : 1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "ternd-worker%u", w->index);
    pthread_setname_np(pthread_self(), name); /* what top -H and gdb show */
    event_base_dispatch(w->base);
    /* Stopping: what is still queued (the last frees) runs and what that says to the main
     * loop is handed over; then the sockets we were lingering on are closed: they belong to
     * this thread. */
    inbox_drain(w->inbox);
    outbox_flush(&w->to_main, main_box);
    conn_close_lingering();
    return NULL;
}

typedef struct stop_msg {
    inbox_msg m;
    struct event_base *base;
} stop_msg;

static void run_stop(inbox_msg *m)
{
    stop_msg *s = (stop_msg *)m;
    event_base_loopexit(s->base, NULL);
    free(s);
}

int workers_start(unsigned n, char *err, size_t err_len)
{
    if (n == 0)
        return 0;
    main_box = inbox_new(server.base);
    main_flush = event_new(server.base, -1, 0, on_main_flush, NULL);
    if (!main_box) {
        snprintf(err, err_len, "cannot create the main loop's inbox: %s", strerror(errno));
        return -1;
    }
    workers = xcalloc(n, sizeof *workers);
    /* Signals are the main loop's business: the threads start with them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        worker *w = &workers[i];
        w->index = i + 1;
        w->base = event_base_new();
        w->inbox = w->base ? inbox_new(w->base) : NULL;
        w->ev_flush = w->inbox ? event_new(w->base, -1, 0, on_worker_flush, w) : NULL;
        if (!w->ev_flush) {
            snprintf(err, err_len, "cannot create worker %u's event loop", w->index);
            rc = -1;
        } else if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
            snprintf(err, err_len, "cannot start worker %u: %s", w->index, strerror(rc));
            rc = -1;
        }
        if (rc != 0) {
            if (w->ev_flush)
                event_free(w->ev_flush);
            if (w->inbox)
                inbox_free(w->inbox);
            if (w->base)
                event_base_free(w->base);
            break;
        }
        n_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        log_info(0, "%zu worker thread(s) carry client connections; the main loop routes", n_workers);
    return rc;
}

void workers_stop(void)
{
    if (main_flush)
        on_main_flush(-1, 0, NULL); /* the last frees c2s posted */
    for (size_t i = 0; i < n_workers; i++) {
        stop_msg *s = xcalloc(1, sizeof *s);
        s->m.run = run_stop;
        s->base = workers[i].base;
        inbox_post(workers[i].inbox, &s->m);
    }
    for (size_t i = 0; i < n_workers; i++) {
        pthread_join(workers[i].thread, NULL);
        event_free(workers[i].ev_flush);
        inbox_free(workers[i].inbox);
        event_base_free(workers[i].base);
    }
    free(workers);
    workers = NULL;
    n_workers = 0;
    if (main_box) {
        inbox_free(main_box); /* runs the workers' last messages */
        main_box = NULL;
    }
    if (main_flush) {
        event_free(main_flush);
        main_flush = NULL;
    }
}

size_t workers_count(void) { return n_workers; }

worker *worker_next(void)
{
    if (n_workers == 0)
        return NULL;
    worker *w = &workers[next_worker];
    next_worker = (next_worker + 1) % n_workers;
    return w;
}

struct event_base *worker_base(worker *w) { return w->base; }
