/* inbox.c — see inbox.h. A mutex-protected singly linked list and an eventfd: posting takes the
 * lock for two pointer writes, so the lock is never held while a message runs. */
#include "event/inbox.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/util.h"

struct inbox {
    pthread_mutex_t lock;
    inbox_msg *head, *tail; /* under lock */
    int wake_fd;
    struct event *ev;
};

static inbox_msg *take_all(inbox *ib)
{
    pthread_mutex_lock(&ib->lock);
    inbox_msg *all = ib->head;
    ib->head = ib->tail = NULL;
    pthread_mutex_unlock(&ib->lock);
    return all;
}

void inbox_drain(inbox *ib)
{
    /* Messages may post more to this same inbox (e.g. a reply to ourselves): loop until the
     * queue stays empty. */
    for (inbox_msg *m; (m = take_all(ib)) != NULL;) {
        while (m) {
            inbox_msg *next = m->next;
            m->run(m);
            m = next;
        }
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t count;
    /* Reset the counter before taking the queue: a post that lands after the take writes
     * again and wakes us again, so nothing is left behind. */
    while (read(fd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    inbox_drain(arg);
}

inbox *inbox_new(struct event_base *base)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    inbox *ib = xcalloc(1, sizeof *ib);
    pthread_mutex_init(&ib->lock, NULL);
    ib->wake_fd = fd;
    ib->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_wake, ib);
    event_add(ib->ev, NULL);
    return ib;
}

void inbox_free(inbox *ib)
{
    if (!ib)
        return;
    inbox_drain(ib);
    event_free(ib->ev);
    close(ib->wake_fd);
    pthread_mutex_destroy(&ib->lock);
    free(ib);
}

void inbox_post(inbox *ib, inbox_msg *m)
{
    m->next = NULL;
    inbox_post_chain(ib, m, m);
}

void inbox_post_chain(inbox *ib, inbox_msg *first, inbox_msg *last)
{
    last->next = NULL;
    pthread_mutex_lock(&ib->lock);
    bool was_empty = ib->head == NULL;
    if (ib->tail)
        ib->tail->next = first;
    else
        ib->head = first;
    ib->tail = last;
    pthread_mutex_unlock(&ib->lock);
    if (was_empty) {
        uint64_t one = 1;
        while (write(ib->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}
