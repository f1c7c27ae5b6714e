/* gen.h — what the parts of the load generator (terngen) share: its options, the run state,
 * one client connection, and the calls from the workload driver (terngen.c: phases, timing,
 * the report) down to the connection layer (gen_conn.c: sockets, GnuTLS, the XMPP login),
 * which answers through the gen_events the driver gives it.
 *
 * Everything runs on one libevent loop in one thread, so no state here is locked. */
#ifndef TERN_BENCH_GEN_H
#define TERN_BENCH_GEN_H

#include <event2/event.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gen_scram.h"
#include "tern/xml.h"

typedef enum gen_mode { MODE_LOGIN, MODE_IDLE, MODE_LOOP, MODE_RATE, MODE_OFFLINE } gen_mode;

typedef struct gen_opts {
    const char *host;      /* server address (IPv4 loopback only) */
    int port;
    const char *domain;    /* XMPP domain of the accounts */
    const char *prefix;    /* user names are prefix + number: u1, u2, ... */
    long first_user;
    const char *password;  /* the same for every account */
    bool tls;              /* STARTTLS before authenticating */
    bool mech_auto;        /* SCRAM-SHA-256 if offered, else PLAIN, else SCRAM-SHA-1 */
    gen_mech mech;
    gen_mode mode;
    long sessions;         /* idle/login: sessions to open */
    long pairs;            /* loop/rate: M pairs (2M sessions) */
    int inflight;          /* loop: K messages in flight each way per pair */
    double seconds;        /* loop/rate: measured time; idle: how long to hold */
    double warmup;         /* loop/rate: messaging before the measured window */
    double rate;           /* rate: messages per second, all pairs together */
    long recipients;       /* offline: accounts written to, never logged in */
    long recipient_first;  /* offline: the first of them is prefix + this number */
    int concurrency;       /* logins in progress at once */
    double login_timeout;  /* the login phase fails after this long */
    double settle;         /* idle: wait before reading the server's RSS */
    pid_t server_pid;      /* 0: no /proc figures */
    const char *key_cache; /* file of derived SCRAM keys kept between runs, or NULL */
    const char *label;     /* copied to the RESULT line */
} gen_opts;

typedef struct gen_conn gen_conn;
typedef struct gen gen;

/* What the connection layer tells the workload driver (terngen.c sets these), so that
 * gen_conn.c never calls up into terngen.c by name. */
typedef struct gen_events {
    void (*online)(gen *g, gen_conn *c);
    /* The connection is dead (login failed, server closed it, I/O error); it stays
     * allocated. */
    void (*failed)(gen *g, gen_conn *c, const char *why);
    /* A <message/> arrived on an online connection. */
    void (*message)(gen *g, gen_conn *c, const tern_xml *msg);
    /* An <iq type='result'/> arrived on an online connection (may be NULL). */
    void (*iq_result)(gen *g, gen_conn *c, const tern_xml *iq);
} gen_events;

struct gen {
    gen_opts o;
    struct event_base *base;
    struct sockaddr_in addr;
    gnutls_certificate_credentials_t xcred;
    gen_key_cache *kc;

    gen_conn **conns;
    size_t n_conns;

    /* Login phase. */
    size_t next_login, logging_in, online, failed;
    uint64_t t_login_start, t_login_end;
    const char *mech_used;     /* the first mechanism chosen; "mixed" if they differ */
    char last_error[256];

    /* Messaging. */
    bool sending;              /* closed loop: answer each message; rate: timer sends */
    bool in_window;
    uint64_t seq;
    uint64_t sent, received, errors;  /* whole run */
    uint64_t window_received;
    uint64_t *hist;            /* latency histogram, 1 µs buckets */
    uint64_t hist_over;        /* latencies at or above the last bucket */
    uint64_t rate_start_ns, rate_sent;
    size_t rate_next_pair;
    gen_events on;
};

/* ------------------------------------------------------------ gen_conn.c */

/* Opens connection number idx (user prefix + (first_user + idx)) and starts logging in.
 * Progress arrives through g->on.online / g->on.failed. */
gen_conn *gen_conn_start(gen *g, size_t idx);
/* Queues bytes; gen_conn_flush writes what the socket takes (the rest when it is writable). */
void gen_conn_send(gen_conn *c, const char *data, size_t len);
void gen_conn_flush(gen_conn *c);
/* Ends the connection at once (TCP RST, so no TIME_WAIT piles up across runs) and frees it. */
void gen_conn_free(gen_conn *c);
const char *gen_conn_jid(const gen_conn *c); /* the bound full JID once online */
size_t gen_conn_index(const gen_conn *c);
bool gen_conn_online(const gen_conn *c);
const char *gen_conn_state(const gen_conn *c); /* "connecting", "authenticating", ... */
/* Sets up GnuTLS credentials: no certificate verification (the servers use test certificates). */
int gen_tls_init(gen *g);
void gen_tls_deinit(gen *g);

#endif
