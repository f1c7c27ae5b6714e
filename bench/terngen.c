/* terngen.c — the XMPP load generator behind `make bench` (bench/run, doc/performance.md).
 *
 * One process, one libevent loop, many client connections (gen_conn.c). It logs in users
 * PREFIX1..PREFIXn on a server, over plain TCP or STARTTLS, then runs one workload:
 *   login  log in N sessions and leave (fills the SCRAM key cache; logins/s)
 *   idle   log in N sessions, wait, and report the server's RSS per session (/proc VmRSS)
 *   loop   M pairs exchange 64-byte messages to each other's full JID, K in flight each way
 *          (closed loop: each delivered message is answered by a new one), for T seconds
 *   rate   M pairs, R messages per second in total (open loop), for latency at light load
 *   offline  M senders write to R accounts that are not logged in (the server stores the
 *          messages offline): each sends K messages and a ping, and the next K when the pong
 *          comes (closed loop; a server answers a client's stanzas in order, so the pong says
 *          the K were handled: for tern, stored durably); messages per second count the
 *          messages a pong answered for
 * and prints a report and one machine-readable RESULT line. Server CPU time is read from
 * /proc/PID/stat (utime + stime of all its threads) over the measured window, so
 * "messages per server-core-second" does not depend on how much CPU the generator took on
 * this shared machine. Latency is receive time minus a CLOCK_MONOTONIC timestamp the sender
 * wrote into the body (same process, same clock).
 *
 * Every phase has a time limit; the process always ends by itself. */
#include "gen.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gen_proc.h"

#define HIST_BUCKETS 1000000 /* 1 µs each: up to one second */
#define BODY_LEN 64
#define DRAIN_SECONDS 5.0

static gen G;
static char **to_attr;           /* per connection: its bound JID, escaped for an attribute */
static char **offline_to;        /* offline mode: the recipients' bare JIDs */
static size_t offline_next;      /* offline mode: the recipient of the next message */
static struct event *phase_ev;   /* one-shot timer driving the phases */
static struct event *rate_ev;    /* rate mode: the 1 ms sending tick */
static struct event *deadline_ev;
static int phase_step;
static int exit_code;

/* Figures for the report. */
static uint64_t t_window0, t_window1, cpu_login0, cpu_login1, cpu_window0, cpu_window1;
static uint64_t machine_window0, machine_window1; /* all cores' busy ticks */
static double gen_cpu0, gen_cpu1, gen_cpu_login0, gen_cpu_login1;
static long rss_before, rss_after, server_threads;
static uint64_t window_received0;
static uint64_t drain_start;

static uint64_t gen_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void schedule(double seconds)
{
    struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6) };
    evtimer_add(phase_ev, &tv);
}

static void finish(int code)
{
    exit_code = code;
    event_base_loopbreak(G.base);
}

/* ------------------------------------------------------------ logins */

static void start_logins(void)
{
    while (G.logging_in < (size_t)G.o.concurrency && G.next_login < G.n_conns) {
        size_t i = G.next_login++;
        G.logging_in++;
        G.conns[i] = gen_conn_start(&G, i); /* may fail at once, through G.on.failed */
    }
}

static void login_phase_over(void)
{
    G.t_login_end = gen_now_ns();
    cpu_login1 = proc_cpu_ticks(G.o.server_pid);
    gen_cpu_login1 = proc_self_cpu_seconds();
    schedule(0);
}

static char *escape_attr(const char *s)
{
    tern_buf b;
    buf_init(&b);
    buf_append_escaped(&b, s, strlen(s));
    char *r = strdup(buf_cstr(&b));
    buf_free(&b);
    if (!r)
        abort();
    return r;
}

static void gen_on_online(gen *g, gen_conn *c)
{
    to_attr[gen_conn_index(c)] = escape_attr(gen_conn_jid(c));
    g->logging_in--;
    g->online++;
    if (g->online + g->failed == g->n_conns)
        login_phase_over();
    else
        start_logins();
}

static void gen_on_failed(gen *g, gen_conn *c, const char *why)
{
    if (g->failed < 5)
        fprintf(stderr, "terngen: %s%ld: %s\n", g->o.prefix,
                g->o.first_user + (long)gen_conn_index(c), why);
    if (why != g->last_error)
        snprintf(g->last_error, sizeof g->last_error, "%s", why);
    g->failed++;
    if (!to_attr[gen_conn_index(c)]) { /* it died while logging in */
        g->logging_in--;
        if (g->online + g->failed == g->n_conns)
            login_phase_over();
        else
            start_logins();
    } else if (g->sending || g->in_window) {
        finish(1); /* a session lost while messaging spoils the figures */
    }
}

/* ------------------------------------------------------------ messages */

static void send_message(gen_conn *from, size_t to)
{
    char body[BODY_LEN + 1];
    int n = snprintf(body, sizeof body, "%020" PRIu64 " %011" PRIu64 " ", gen_now_ns(), G.seq++);
    memset(body + n, 'x', BODY_LEN - (size_t)n);
    body[BODY_LEN] = '\0';
    char buf[1024];
    n = snprintf(buf, sizeof buf, "<message to='%s' type='chat'><body>%s</body></message>",
                 to_attr[to], body);
    gen_conn_send(from, buf, (size_t)n);
    G.sent++;
}

/* Offline mode: K messages to the next recipients, then the ping that answers for them. */
static void send_offline_batch(gen_conn *c)
{
    for (int k = 0; k < G.o.inflight; k++) {
        char buf[1024];
        char body[BODY_LEN + 1];
        memset(body, 'x', BODY_LEN);
        body[BODY_LEN] = '\0';
        int n = snprintf(buf, sizeof buf, "<message to='%s' type='chat'><body>%s</body></message>",
                         offline_to[offline_next++ % (size_t)G.o.recipients], body);
        gen_conn_send(c, buf, (size_t)n);
        G.sent++;
    }
    char ping[256];
    int n = snprintf(ping, sizeof ping, "<iq type='get' id='batch' to='%s'>"
                     "<ping xmlns='urn:xmpp:ping'/></iq>", G.o.domain);
    gen_conn_send(c, ping, (size_t)n);
}

static void gen_on_iq_result(gen *g, gen_conn *c, const tern_xml *iq)
{
    const char *id = xml_attr(iq, "id");
    if (g->o.mode != MODE_OFFLINE || !id || strcmp(id, "batch") != 0)
        return;
    g->received += (uint64_t)g->o.inflight;
    if (g->in_window)
        g->window_received += (uint64_t)g->o.inflight;
    if (g->sending)
        send_offline_batch(c); /* flushed when the read callback ends */
}

static void gen_on_message(gen *g, gen_conn *c, const tern_xml *msg)
{
    const char *type = xml_attr(msg, "type");
    if (type && strcmp(type, "error") == 0) {
        g->errors++;
        return;
    }
    const char *body = xml_child_text(msg, "body", NULL);
    if (!body || strlen(body) != BODY_LEN)
        return; /* not one of ours (a server announcement, say) */
    g->received++;
    if (g->in_window) {
        g->window_received++;
        uint64_t sent_at = strtoull(body, NULL, 10), now = gen_now_ns();
        uint64_t us = now > sent_at ? (now - sent_at) / 1000 : 0;
        if (us < HIST_BUCKETS)
            g->hist[us]++;
        else
            g->hist_over++;
    }
    if (g->sending && g->o.mode == MODE_LOOP)
        send_message(c, gen_conn_index(c) ^ 1); /* flushed when the read callback ends */
}

static void on_rate_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    uint64_t now = gen_now_ns();
    double due = (double)(now - G.rate_start_ns) * G.o.rate / 1e9 - (double)G.rate_sent;
    size_t pairs = (size_t)G.o.pairs;
    for (long k = 0; k < (long)due; k++) {
        size_t p = G.rate_next_pair % pairs, dir = (G.rate_next_pair / pairs) & 1;
        G.rate_next_pair++;
        size_t from = 2 * p + dir;
        send_message(G.conns[from], from ^ 1);
        gen_conn_flush(G.conns[from]);
        G.rate_sent++;
    }
}

static double percentile(double q)
{
    uint64_t total = G.hist_over;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        total += G.hist[i];
    if (!total)
        return -1;
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    if (want >= total)
        want = total - 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += G.hist[i];
        if (seen > want)
            return (double)i;
    }
    return HIST_BUCKETS;
}

/* ------------------------------------------------------------ the report */

static void report(void)
{
    const gen_opts *o = &G.o;
    double hz = proc_ticks_per_second();
    double login_s = (double)(G.t_login_end - G.t_login_start) / 1e9;
    double logins_per_s = login_s > 0 ? (double)G.online / login_s : 0;
    double login_cpu = o->server_pid ? (double)(cpu_login1 - cpu_login0) / hz : -1;
    const char *mech = G.mech_used ? G.mech_used : "none";
    /* Logins/s is wall-clock time: the generator's own CPU share says when it was the limit. */
    double login_gen_cpu = gen_cpu_login1 - gen_cpu_login0;
    const char *modes[] = { "login", "idle", "loop", "rate", "offline" };

    printf("terngen %s: %s:%d %s, SASL %s, %zu sessions: %zu logged in, %zu failed\n",
           modes[o->mode], o->host, o->port, o->tls ? "STARTTLS" : "plain TCP", mech, G.n_conns,
           G.online, G.failed);
    printf("  logins: %.3f s, %.0f/s; server CPU %.3f s; generator CPU %.3f s (%.0f%% of a core); "
           "SCRAM key derivations in the generator: %lu\n",
           login_s, logins_per_s, login_cpu, login_gen_cpu,
           login_s > 0 ? 100 * login_gen_cpu / login_s : 0, gen_key_cache_derivations(G.kc));
    printf("RESULT label=%s mode=%s tls=%d mech=%s sessions=%zu online=%zu failed=%zu "
           "login_s=%.4f logins_per_s=%.1f login_server_cpu_s=%.4f login_gen_cpu_s=%.4f",
           o->label ? o->label : "-", modes[o->mode], o->tls, mech, G.n_conns, G.online, G.failed,
           login_s, logins_per_s, login_cpu, login_gen_cpu);
    if (o->mode == MODE_IDLE) {
        double per = G.online ? (double)(rss_after - rss_before) / (double)G.online : 0;
        printf(" rss_before_kib=%ld rss_after_kib=%ld rss_per_session_kib=%.2f server_threads=%ld",
               rss_before, rss_after, per, server_threads);
    }
    if (o->mode == MODE_LOOP || o->mode == MODE_RATE || o->mode == MODE_OFFLINE) {
        double win = (double)(t_window1 - t_window0) / 1e9;
        uint64_t got = G.window_received - window_received0;
        double mps = win > 0 ? (double)got / win : 0;
        double cpu = o->server_pid ? (double)(cpu_window1 - cpu_window0) / hz : -1;
        double per_core = cpu > 0 ? (double)got / cpu : 0;
        int64_t lost = (int64_t)G.sent - (int64_t)G.received - (int64_t)G.errors;
        double machine = (double)(machine_window1 - machine_window0) / hz;
        printf(" sent=%" PRIu64 " received=%" PRIu64 " errors=%" PRIu64 " lost=%" PRId64
               " window_s=%.3f window_msgs=%" PRIu64 " msgs_per_s=%.1f server_cpu_s=%.4f"
               " msgs_per_core_s=%.1f gen_cpu_s=%.4f p50_us=%.0f p99_us=%.0f over_1s=%" PRIu64
               " server_threads=%ld machine_cpu_s=%.4f",
               G.sent, G.received, G.errors, lost, win, got, mps, cpu, per_core, gen_cpu1 - gen_cpu0,
               percentile(0.50), percentile(0.99), G.hist_over, server_threads, machine);
    }
    printf("\n");
    if (o->mode == MODE_IDLE)
        printf("  server RSS: %ld KiB before, %ld KiB with %zu sessions: %.2f KiB per session\n",
               rss_before, rss_after, G.online,
               G.online ? (double)(rss_after - rss_before) / (double)G.online : 0);
    if (o->mode == MODE_LOOP || o->mode == MODE_RATE || o->mode == MODE_OFFLINE) {
        double win = (double)(t_window1 - t_window0) / 1e9;
        uint64_t got = G.window_received - window_received0;
        double cpu = (double)(cpu_window1 - cpu_window0) / hz;
        printf("  messages: sent %" PRIu64 ", received %" PRIu64 ", errors %" PRIu64
               "; in the %.2f s window: %" PRIu64 " (%.0f/s)\n",
               G.sent, G.received, G.errors, win, got, win > 0 ? (double)got / win : 0);
        printf("  server CPU in window %.3f s (%.0f%% of a core, %ld threads): %.0f messages per "
               "server-core-second; generator CPU %.3f s (%.0f%% of a core)\n",
               cpu, win > 0 ? 100 * cpu / win : 0, server_threads, cpu > 0 ? (double)got / cpu : 0,
               gen_cpu1 - gen_cpu0, win > 0 ? 100 * (gen_cpu1 - gen_cpu0) / win : 0);
        /* The rest of the machine's busy time: other processes competing for the cores. */
        double others = (double)(machine_window1 - machine_window0) / hz - cpu -
                        (gen_cpu1 - gen_cpu0);
        printf("  other processes: %.0f%% of a core\n",
               win > 0 && others > 0 ? 100 * others / win : 0);
        printf("  latency: p50 %.0f us, p99 %.0f us\n", percentile(0.5), percentile(0.99));
    }
    if (G.failed)
        printf("  last error: %s\n", G.last_error);
    fflush(stdout);
}

/* ------------------------------------------------------------ phases */

/* Steps after the login phase, one per timer expiry: the state machine of a run. */
static void on_phase(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    const gen_opts *o = &G.o;
    int step = phase_step++;
    if (step == 0 && (G.failed || o->mode == MODE_LOGIN)) {
        report();
        return finish(G.failed ? 1 : 0);
    }
    if (o->mode == MODE_IDLE) {
        if (step == 0)
            return schedule(o->settle); /* let the server finish its work for the logins */
        rss_after = proc_rss_kib(o->server_pid);
        server_threads = proc_threads(o->server_pid);
        report();
        return finish(0);
    }
    switch (step) {
    case 0: /* start messaging */
        G.sending = true;
        if (o->mode == MODE_OFFLINE) {
            for (size_t i = 0; i < G.n_conns; i++) {
                send_offline_batch(G.conns[i]);
                gen_conn_flush(G.conns[i]);
            }
        } else if (o->mode == MODE_LOOP) {
            for (size_t i = 0; i < G.n_conns; i++) {
                for (int k = 0; k < o->inflight; k++)
                    send_message(G.conns[i], i ^ 1);
                gen_conn_flush(G.conns[i]);
            }
        } else {
            G.rate_start_ns = gen_now_ns();
            struct timeval ms = { 0, 1000 };
            evtimer_add(rate_ev, &ms);
        }
        return schedule(o->warmup);
    case 1: /* the measured window opens */
        G.in_window = true;
        t_window0 = gen_now_ns();
        window_received0 = G.window_received;
        cpu_window0 = proc_cpu_ticks(o->server_pid);
        machine_window0 = proc_machine_busy_ticks();
        gen_cpu0 = proc_self_cpu_seconds();
        return schedule(o->seconds);
    case 2: /* it closes; stop sending and let what is in flight arrive */
        t_window1 = gen_now_ns();
        cpu_window1 = proc_cpu_ticks(o->server_pid);
        machine_window1 = proc_machine_busy_ticks();
        gen_cpu1 = proc_self_cpu_seconds();
        server_threads = proc_threads(o->server_pid);
        G.in_window = false;
        G.sending = false;
        evtimer_del(rate_ev);
        drain_start = gen_now_ns();
        return schedule(0.02);
    default:
        if (G.received + G.errors < G.sent &&
            (double)(gen_now_ns() - drain_start) / 1e9 < DRAIN_SECONDS)
            return schedule(0.02);
        report();
        if (o->mode == MODE_OFFLINE) /* every batch answered, none bounced */
            return finish(G.received == G.sent && !G.errors && !G.failed ? 0 : 1);
        return finish(G.received + G.errors == G.sent && !G.failed ? 0 : 1);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    fprintf(stderr, "terngen: time limit reached (%zu of %zu logged in, %zu failed)\n", G.online,
            G.n_conns, G.failed);
    /* Say where the stragglers are stuck: it tells a slow server from a lost packet. */
    for (size_t i = 0, shown = 0; i < G.n_conns && shown < 5; i++)
        if (G.conns[i] && !gen_conn_online(G.conns[i]) && strcmp(gen_conn_state(G.conns[i]), "dead")) {
            fprintf(stderr, "terngen: %s%ld is %s\n", G.o.prefix, G.o.first_user + (long)i,
                    gen_conn_state(G.conns[i]));
            shown++;
        }
    if (G.t_login_end == 0) {
        G.t_login_end = gen_now_ns();
        cpu_login1 = proc_cpu_ticks(G.o.server_pid);
        gen_cpu_login1 = proc_self_cpu_seconds();
    }
    report();
    finish(2);
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: terngen --mode login|idle|loop|rate|offline [options]\n"
            "  --host IP --port N        server (loopback)        [127.0.0.1 5222]\n"
            "  --domain D                XMPP domain              [localhost]\n"
            "  --prefix P --first N      users P<N>, P<N+1>, ...  [u 1]\n"
            "  --password S              every user's password    [bench]\n"
            "  --tls                     STARTTLS (certificate not verified: test certificates)\n"
            "  --mech M                  auto|SCRAM-SHA-256|SCRAM-SHA-1|PLAIN [auto]\n"
            "  --sessions N              login/idle: sessions     [200]\n"
            "  --pairs M --inflight K    loop/rate: pairs, messages in flight each way [10 10]\n"
            "  --seconds T --warmup W    measured window and warm-up before it [5 1]\n"
            "  --rate R                  rate: messages per second in total [1000]\n"
            "  --recipients R --recipient-first N  offline: users P<N>.. P<N+R-1>, not logged in\n"
            "                            (offline: --pairs senders, --inflight per ping) [10 1000]\n"
            "  --concurrency C           logins in progress at once [100]\n"
            "  --login-timeout S --settle S  [120 2]\n"
            "  --server-pid PID          read the server's CPU time and RSS from /proc\n"
            "  --key-cache FILE          keep derived SCRAM keys between runs\n"
            "  --label TEXT              copied to the RESULT line\n");
}

static int parse_args(int argc, char **argv, gen_opts *o)
{
    static const struct option opts[] = {
        { "host", 1, 0, 'H' },      { "port", 1, 0, 'p' },     { "domain", 1, 0, 'd' },
        { "prefix", 1, 0, 'P' },    { "first", 1, 0, 'f' },    { "password", 1, 0, 'w' },
        { "tls", 0, 0, 't' },       { "mech", 1, 0, 'm' },     { "mode", 1, 0, 'M' },
        { "sessions", 1, 0, 'n' },  { "pairs", 1, 0, 'a' },    { "inflight", 1, 0, 'k' },
        { "seconds", 1, 0, 's' },   { "warmup", 1, 0, 'W' },   { "rate", 1, 0, 'r' },
        { "concurrency", 1, 0, 'c' }, { "login-timeout", 1, 0, 'T' }, { "settle", 1, 0, 'S' },
        { "server-pid", 1, 0, 'i' }, { "key-cache", 1, 0, 'K' }, { "label", 1, 0, 'L' },
        { "recipients", 1, 0, 'R' }, { "recipient-first", 1, 0, 'F' },
        { "help", 0, 0, 'h' },      { 0, 0, 0, 0 },
    };
    *o = (gen_opts){ .host = "127.0.0.1", .port = 5222, .domain = "localhost", .prefix = "u",
                     .first_user = 1, .password = "bench", .mech_auto = true, .mode = MODE_IDLE,
                     .sessions = 200, .pairs = 10, .inflight = 10, .seconds = 5, .warmup = 1,
                     .rate = 1000, .concurrency = 100, .login_timeout = 120, .settle = 2,
                     .recipients = 10, .recipient_first = 1000 };
    bool mode_set = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H': o->host = optarg; break;
        case 'p': o->port = atoi(optarg); break;
        case 'd': o->domain = optarg; break;
        case 'P': o->prefix = optarg; break;
        case 'f': o->first_user = atol(optarg); break;
        case 'w': o->password = optarg; break;
        case 't': o->tls = true; break;
        case 'm':
            o->mech_auto = strcmp(optarg, "auto") == 0;
            if (!o->mech_auto && gen_mech_parse(optarg, &o->mech) < 0)
                return fprintf(stderr, "terngen: unknown mechanism %s\n", optarg), -1;
            break;
        case 'M':
            mode_set = true;
            if (strcmp(optarg, "login") == 0) o->mode = MODE_LOGIN;
            else if (strcmp(optarg, "idle") == 0) o->mode = MODE_IDLE;
            else if (strcmp(optarg, "loop") == 0) o->mode = MODE_LOOP;
            else if (strcmp(optarg, "rate") == 0) o->mode = MODE_RATE;
            else if (strcmp(optarg, "offline") == 0) o->mode = MODE_OFFLINE;
            else return fprintf(stderr, "terngen: unknown mode %s\n", optarg), -1;
            break;
        case 'n': o->sessions = atol(optarg); break;
        case 'a': o->pairs = atol(optarg); break;
        case 'k': o->inflight = atoi(optarg); break;
        case 's': o->seconds = atof(optarg); break;
        case 'W': o->warmup = atof(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'c': o->concurrency = atoi(optarg); break;
        case 'T': o->login_timeout = atof(optarg); break;
        case 'S': o->settle = atof(optarg); break;
        case 'i': o->server_pid = (pid_t)atol(optarg); break;
        case 'K': o->key_cache = optarg; break;
        case 'L': o->label = optarg; break;
        case 'R': o->recipients = atol(optarg); break;
        case 'F': o->recipient_first = atol(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (!mode_set || optind != argc || o->sessions < 1 || o->pairs < 1 || o->inflight < 1 ||
        o->concurrency < 1 || o->seconds <= 0 || o->warmup < 0 || o->rate <= 0 || o->port < 1 ||
        o->recipients < 1)
        return usage(stderr), -1;
    return 0;
}

/* As many descriptors as the hard limit allows (one per session). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    gen_opts *o = &G.o;
    if (parse_args(argc, argv, o) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    G.addr.sin_family = AF_INET;
    G.addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &G.addr.sin_addr) != 1 ||
        (ntohl(G.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "terngen: %s is not an IPv4 loopback address (127.0.0.0/8)\n", o->host);
        return 2;
    }
    G.n_conns = (o->mode == MODE_LOOP || o->mode == MODE_RATE) ? 2 * (size_t)o->pairs
                : o->mode == MODE_OFFLINE                  ? (size_t)o->pairs
                                                           : (size_t)o->sessions;
    if (o->mode == MODE_OFFLINE) {
        offline_to = calloc((size_t)o->recipients, sizeof *offline_to);
        for (long i = 0; offline_to && i < o->recipients; i++) {
            char jid[512];
            snprintf(jid, sizeof jid, "%s%ld@%s", o->prefix, o->recipient_first + i, o->domain);
            offline_to[i] = escape_attr(jid);
        }
    }
    G.conns = calloc(G.n_conns, sizeof *G.conns);
    to_attr = calloc(G.n_conns, sizeof *to_attr);
    G.hist = calloc(HIST_BUCKETS, sizeof *G.hist);
    G.kc = gen_key_cache_new(G.n_conns);
    G.on = (gen_events){ gen_on_online, gen_on_failed, gen_on_message, gen_on_iq_result };
    G.base = event_base_new();
    if (!G.conns || !to_attr || !G.hist || !G.base || gen_tls_init(&G) < 0) {
        fprintf(stderr, "terngen: setup failed\n");
        return 2;
    }
    if (o->key_cache)
        gen_key_cache_load(G.kc, o->key_cache, o->prefix, o->first_user);
    phase_ev = evtimer_new(G.base, on_phase, NULL);
    rate_ev = event_new(G.base, -1, EV_PERSIST, on_rate_tick, NULL);
    deadline_ev = evtimer_new(G.base, on_deadline, NULL);
    double limit = o->login_timeout + o->settle + o->warmup + o->seconds + DRAIN_SECONDS + 5;
    struct timeval dl = { (time_t)limit, 0 };
    evtimer_add(deadline_ev, &dl);

    rss_before = proc_rss_kib(o->server_pid);
    cpu_login0 = proc_cpu_ticks(o->server_pid);
    gen_cpu_login0 = proc_self_cpu_seconds();
    G.t_login_start = gen_now_ns();
    start_logins();
    event_base_dispatch(G.base);

    if (o->key_cache && gen_key_cache_derivations(G.kc) > 0 &&
        gen_key_cache_save(G.kc, o->key_cache, o->prefix, o->first_user) < 0)
        fprintf(stderr, "terngen: cannot write %s: %s\n", o->key_cache, strerror(errno));
    for (size_t i = 0; i < G.n_conns; i++) {
        gen_conn_free(G.conns[i]);
        free(to_attr[i]);
    }
    free(G.conns);
    free(to_attr);
    for (long i = 0; offline_to && i < o->recipients; i++)
        free(offline_to[i]);
    free(offline_to);
    free(G.hist);
    gen_key_cache_free(G.kc);
    event_free(phase_ev);
    event_free(rate_ev);
    event_free(deadline_ev);
    event_base_free(G.base);
    gen_tls_deinit(&G);
    return exit_code;
}
