/* test_inbox.c — handing messages between event loops: every message posted by other threads
 * runs exactly once, on the receiving loop's thread, in each sender's order; a chain runs whole
 * and in order; what is queued at exit still runs. */
#include <check.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "event/inbox.h"

enum { SENDERS = 4, PER_SENDER = 20000 };

typedef struct counted {
    inbox_msg m;
    int sender;
    int seq;
} counted;

typedef struct receiver {
    struct event_base *base;
    inbox *inbox;
    pthread_t thread;
    int next_seq[SENDERS];  /* per sender: the sequence number expected next */
    long received;
    bool out_of_order;
    bool wrong_thread;
} receiver;

static receiver rx;

static void run_counted(inbox_msg *m)
{
    counted *c = (counted *)m;
    if (!pthread_equal(pthread_self(), rx.thread))
        rx.wrong_thread = true;
    if (c->seq != rx.next_seq[c->sender])
        rx.out_of_order = true;
    rx.next_seq[c->sender] = c->seq + 1;
    if (++rx.received == (long)SENDERS * PER_SENDER)
        event_base_loopexit(rx.base, NULL);
    free(c);
}

static void *sender_main(void *arg)
{
    int sender = (int)(long)arg;
    for (int i = 0; i < PER_SENDER; i++) {
        counted *c = calloc(1, sizeof *c);
        c->m.run = run_counted;
        c->sender = sender;
        c->seq = i;
        inbox_post(rx.inbox, &c->m);
    }
    return NULL;
}

static void *receiver_main(void *arg)
{
    (void)arg;
    event_base_dispatch(rx.base);
    return NULL;
}

START_TEST(every_message_runs_once_in_order_on_the_receiving_thread)
{
    rx = (receiver){ 0 };
    rx.base = event_base_new();
    rx.inbox = inbox_new(rx.base);
    ck_assert_ptr_nonnull(rx.inbox);
    /* A timeout so that a lost wake-up fails the test instead of hanging it. */
    struct timeval limit = { 30, 0 };
    event_base_loopexit(rx.base, &limit);
    pthread_create(&rx.thread, NULL, receiver_main, NULL);
    pthread_t senders[SENDERS];
    for (long i = 0; i < SENDERS; i++)
        pthread_create(&senders[i], NULL, sender_main, (void *)i);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(senders[i], NULL);
    pthread_join(rx.thread, NULL);
    ck_assert_int_eq(rx.received, (long)SENDERS * PER_SENDER);
    ck_assert(!rx.out_of_order);
    ck_assert(!rx.wrong_thread);
    inbox_free(rx.inbox);
    event_base_free(rx.base);
}
END_TEST

static int ran;
static void run_plain(inbox_msg *m)
{
    ran++;
    free(m);
}

/* Messages still queued when the receiver stops run in inbox_free(): none leaks. */
START_TEST(queued_messages_run_at_free)
{
    struct event_base *base = event_base_new();
    inbox *ib = inbox_new(base);
    ran = 0;
    for (int i = 0; i < 3; i++) {
        inbox_msg *m = calloc(1, sizeof *m);
        m->run = run_plain;
        inbox_post(ib, m);
    }
    ck_assert_int_eq(ran, 0); /* nothing runs on the sender's side */
    inbox_free(ib);
    ck_assert_int_eq(ran, 3);
    event_base_free(base);
}
END_TEST

typedef struct tagged {
    inbox_msg m;
    int tag;
} tagged;

static int order[8];
static int n_order;

static void run_tagged(inbox_msg *m)
{
    order[n_order++] = ((tagged *)m)->tag;
    free(m);
}

static inbox_msg *tagged_new(int tag)
{
    tagged *t = calloc(1, sizeof *t);
    t->m.run = run_tagged;
    t->tag = tag;
    return &t->m;
}

/* A chain runs whole and in its order, after what was posted before it. */
START_TEST(a_chain_runs_in_order_after_earlier_posts)
{
    struct event_base *base = event_base_new();
    inbox *ib = inbox_new(base);
    n_order = 0;
    inbox_post(ib, tagged_new(1));
    inbox_msg *a = tagged_new(2), *b = tagged_new(3), *c = tagged_new(4);
    a->next = b;
    b->next = c;
    inbox_post_chain(ib, a, c);
    inbox_post(ib, tagged_new(5));
    inbox_drain(ib);
    ck_assert_int_eq(n_order, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(order[i], i + 1);
    inbox_free(ib);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inbox");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_message_runs_once_in_order_on_the_receiving_thread);
    tcase_add_test(tc, queued_messages_run_at_free);
    tcase_add_test(tc, a_chain_runs_in_order_after_earlier_posts);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
