/* c2s_relay.c — the client link for a TCP connection that a worker thread carries.
 *
 * One `relay` joins the two halves. On the main loop it is the c2s_link (tern/c2s.h) of a c2s:
 * what c2s sends is framed into bytes there (c2s_frame.c) and posted to the worker. On the
 * worker it owns the tcp_stream (socket, TLS, parser): what the client sends is parsed into
 * trees there and posted to the main loop. Each half touches only its own fields; everything
 * crosses in inbox messages (inbox.h), in order, batched per loop turn (worker_post()).
 *
 * Stream restarts: input the client sent before a restart must be dropped (RFC 6120 §5.4.3.3,
 * §6.4.6), but the worker may have parsed some of it before it hears of the restart. So each
 * half counts restarts, every input event carries the worker's count, and the main loop drops
 * events from before its last restart.
 *
 * Back-pressure: the worker stops reading a client whose parsed elements wait, unrun, on the
 * main loop (INPUT_HOLD_AT of them), and the main loop lets it read again once they drained to
 * INPUT_RESUME_AT; a client whose output the worker cannot send gets the main loop's
 * policy-violation (doc/architecture.md, "Back-pressure").
 *
 * Life: the relay is freed when both halves are done with it (two references). The worker is
 * done once it has told the main loop the transport ended (ENDED, sent exactly once) and has
 * received FREE (always the main loop's last message for it); the main loop is done once c2s
 * freed the link and ENDED arrived. From then on neither side has a message for it in flight. */
#include "xmpp/c2s_relay.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "net/conn.h"
#include "net/tcp_stream.h"
#include "process/server.h"
#include "tern/c2s.h"
#include "tern/log.h"
#include "xmpp/c2s.h"
#include "xmpp/c2s_frame.h"
#include "xmpp/sasl.h"

/* The channel-binding types SASL asks for (sasl.c), captured when the handshake finishes: the
 * TLS session itself stays on the worker. */
#define N_BINDINGS SASL_N_BINDING_TYPES

/* Elements parsed on the worker and not yet run on the main loop, per client: enough to keep
 * a busy client's pipeline full, few enough that a flood waits in the client's socket, not in
 * our memory. */
#define INPUT_HOLD_AT 64
#define INPUT_RESUME_AT 16

typedef struct relay_cmd relay_cmd;
typedef struct relay relay;

struct relay {
    atomic_int refs;
    worker *worker;
    uint64_t id;
    /* main loop's half */
    c2s *c2s;
    unsigned restarts;
    bool encrypted;
    bool link_freed;          /* c2s freed the link */
    bool ended_seen;          /* ENDED arrived */
    bool end_queued;          /* our stream error or close is written: nothing more */
    relay_cmd *batch, *batch_tail; /* commands of this loop turn, not posted yet */
    bool listed;              /* in pending_list */
    relay *next_pending;
    gnutls_datum_t bindings[N_BINDINGS];
    char peer[64];
    /* worker's half */
    tcp_stream *stream;       /* NULL once ended */
    unsigned worker_restarts;
    bool ended_sent;
    bool input_held;          /* not reading: the main loop is behind (see the top) */
    /* both halves */
    atomic_uint unrun;        /* elements posted to the main loop and not yet run */
    atomic_int hold_flag;     /* 1: the worker holds input and waits for UNHOLD */
};

static void relay_unref(relay *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (size_t i = 0; i < N_BINDINGS; i++)
        gnutls_free(r->bindings[i].data);
    free(r);
}

/* ==== main loop → worker ====
 *
 * Everything c2s does to a link during one loop turn (say: <success/>, then the restart; or
 * <proceed/>, the TLS handshake, the restart) crosses as one batch, run in one go on the
 * worker. So, as on the main loop's own links, no byte of the client's can be read between
 * them: if the restart came in a later message, the client could answer <success/> with its
 * new header before the worker knew it had to expect one. A burst of stanzas to one client
 * also crosses as one message. */

typedef enum cmd_op {
    CMD_OPEN,      /* take the socket (and start direct TLS) */
    CMD_WRITE,     /* bytes */
    CMD_END,       /* end the transport once what is written is out */
    CMD_RESTART,
    CMD_START_TLS,
    CMD_PAUSE,
    CMD_RESUME,
    CMD_UNHOLD,    /* the main loop caught up with the input (see the top) */
    CMD_FREE,      /* the last command, alone in its batch */
} cmd_op;

struct relay_cmd {
    inbox_msg m;    /* used by the first command of a batch */
    relay *r;
    cmd_op op;
    tern_buf bytes; /* WRITE */
    tls_ctx *tls;   /* OPEN (direct TLS), START_TLS: one reference, the command's */
    int fd;         /* OPEN */
    size_t max_stanza_size; /* OPEN */
    conn_send_limits send;  /* OPEN */
    relay_cmd *then; /* the rest of the batch */
};

static void run_batch(inbox_msg *m);

static relay_cmd *cmd_new(relay *r, cmd_op op)
{
    relay_cmd *c = xcalloc(1, sizeof *c);
    c->m.run = run_batch;
    c->r = r;
    c->op = op;
    c->fd = -1;
    return c;
}

static void batch_free(relay_cmd *c)
{
    while (c) {
        relay_cmd *then = c->then;
        buf_free(&c->bytes);
        if (c->tls)
            tls_ctx_unref(c->tls);
        free(c);
        c = then;
    }
}

/* Relays with a batch waiting for the end of this loop turn. */
static relay *pending_list;
static struct event *ev_flush;

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    while (pending_list) {
        relay *r = pending_list;
        pending_list = r->next_pending;
        r->listed = false;
        relay_cmd *batch = r->batch;
        r->batch = r->batch_tail = NULL;
        worker_post(r->worker, &batch->m);
    }
}

static void unlist(relay *r)
{
    if (!r->listed)
        return;
    relay **p = &pending_list;
    while (*p != r)
        p = &(*p)->next_pending;
    *p = r->next_pending;
    r->listed = false;
}

static void add_to_batch(relay *r, relay_cmd *c)
{
    if (r->batch_tail)
        r->batch_tail->then = c;
    else
        r->batch = c;
    r->batch_tail = c;
    if (r->listed)
        return;
    r->listed = true;
    r->next_pending = pending_list;
    pending_list = r;
    if (!ev_flush)
        ev_flush = event_new(server.base, -1, 0, on_flush, NULL);
    event_active(ev_flush, 0, 0);
}

/* Where to frame output, or NULL once the stream is over for us. */
static tern_buf *output(relay *r)
{
    if (r->link_freed || r->end_queued)
        return NULL;
    if (!r->batch_tail || r->batch_tail->op != CMD_WRITE)
        add_to_batch(r, cmd_new(r, CMD_WRITE));
    return &r->batch_tail->bytes;
}

static void relay_open(void *ctx, const c2s_stream_header *h)
{
    tern_buf *out = output(ctx);
    if (out)
        c2s_frame_open(out, h);
}

static void relay_send_features(void *ctx, const tern_xml *features)
{
    tern_buf *out = output(ctx);
    if (out)
        c2s_frame_features(out, features);
}

static void relay_send(void *ctx, const tern_xml *element)
{
    tern_buf *out = output(ctx);
    if (out)
        c2s_frame_element(out, element);
}

static void end_with(relay *r, void (*frame)(tern_buf *out, const tern_xml *x), const tern_xml *x)
{
    tern_buf *out = output(r);
    if (!out)
        return;
    frame(out, x);
    add_to_batch(r, cmd_new(r, CMD_END));
    r->end_queued = true;
}

static void frame_close(tern_buf *out, const tern_xml *unused)
{
    (void)unused;
    c2s_frame_close(out);
}

static void relay_stream_error(void *ctx, const tern_xml *error)
{
    end_with(ctx, c2s_frame_stream_error, error);
}

static void relay_close(void *ctx) { end_with(ctx, frame_close, NULL); }

static void relay_restart(void *ctx)
{
    relay *r = ctx;
    r->restarts++;
    add_to_batch(r, cmd_new(r, CMD_RESTART));
}

static int relay_start_tls(void *ctx)
{
    relay *r = ctx;
    if (!server.tls) { /* the contract: end the transport without a word */
        add_to_batch(r, cmd_new(r, CMD_END));
        r->end_queued = true;
        return -1;
    }
    relay_cmd *c = cmd_new(r, CMD_START_TLS);
    tls_ctx_ref(server.tls);
    c->tls = server.tls;
    add_to_batch(r, c);
    return 0; /* a handshake that cannot start ends the transport: ENDED follows */
}

static void relay_pause_reading(void *ctx, bool paused)
{
    relay *r = ctx;
    add_to_batch(r, cmd_new(r, paused ? CMD_PAUSE : CMD_RESUME));
}

static bool relay_encrypted(void *ctx)
{
    relay *r = ctx;
    return r->encrypted;
}

static int relay_channel_binding(void *ctx, const char *type, gnutls_datum_t *out)
{
    relay *r = ctx;
    for (size_t i = 0; i < N_BINDINGS; i++) {
        const gnutls_datum_t *b = &r->bindings[i];
        if (strcmp(type, sasl_binding_types[i]) != 0 || !b->data)
            continue;
        out->data = gnutls_malloc(b->size);
        if (!out->data)
            return -1;
        memcpy(out->data, b->data, b->size);
        out->size = b->size;
        return 0;
    }
    return -1;
}

static const char *relay_peer(void *ctx)
{
    relay *r = ctx;
    return r->peer;
}

static void relay_free(void *ctx)
{
    relay *r = ctx;
    r->link_freed = true;
    unlist(r);
    batch_free(r->batch); /* output nobody will read any more */
    r->batch = r->batch_tail = NULL;
    relay_cmd *c = cmd_new(r, CMD_FREE);
    worker_post(r->worker, &c->m);
    if (r->ended_seen)
        relay_unref(r);
}

static const c2s_link relay_link_ops = {
    .open = relay_open,
    .send_features = relay_send_features,
    .send = relay_send,
    .stream_error = relay_stream_error,
    .close = relay_close,
    .restart = relay_restart,
    .start_tls = relay_start_tls,
    .pause_reading = relay_pause_reading,
    .encrypted = relay_encrypted,
    .channel_binding = relay_channel_binding,
    .peer = relay_peer,
    .free = relay_free,
};

/* ==== worker → main loop ==== */

typedef enum event_kind {
    EV_HEADER,
    EV_ELEMENT,
    EV_CLIENT_CLOSE,
    EV_PARSE_ERROR,
    EV_TLS_READY,
    EV_ENDED,
    EV_SEND_OVERFLOW, /* the client does not read what we send */
} event_kind;

typedef struct relay_event {
    inbox_msg m;
    relay *r;
    event_kind kind;
    unsigned restarts;       /* the worker's count when the input was parsed */
    tern_xml *tree;          /* HEADER (a copy), ELEMENT */
    char *text;              /* HEADER: default namespace; PARSE_ERROR, ENDED,
                              * SEND_OVERFLOW: the reason */
    tern_stream_error cond;  /* PARSE_ERROR */
    gnutls_datum_t bindings[N_BINDINGS]; /* TLS_READY */
} relay_event;

static void run_event(inbox_msg *m);

static relay_event *event_for(relay *r, event_kind kind)
{
    relay_event *e = xcalloc(1, sizeof *e);
    e->m.run = run_event;
    e->r = r;
    e->kind = kind;
    e->restarts = r->worker_restarts;
    return e;
}

static void post_event(relay_event *e) { worker_post_main(e->r->worker, &e->m); }

static void relay_event_free(relay_event *e)
{
    if (e->tree)
        xml_unref(e->tree);
    free(e->text);
    for (size_t i = 0; i < N_BINDINGS; i++)
        gnutls_free(e->bindings[i].data);
    free(e);
}

/* On the main loop. */
static void deliver(relay *r, relay_event *e)
{
    if (e->kind == EV_ENDED) {
        r->ended_seen = true;
        c2s_link_ended(r->c2s, e->text); /* frees the link: relay_free() */
        return;
    }
    if (e->kind == EV_SEND_OVERFLOW) {
        c2s_stream_error(r->c2s, STREAM_ERR_POLICY_VIOLATION, e->text);
        return;
    }
    if (e->kind == EV_TLS_READY) {
        r->encrypted = true;
        memcpy(r->bindings, e->bindings, sizeof r->bindings);
        memset(e->bindings, 0, sizeof e->bindings);
        return;
    }
    if (e->restarts != r->restarts)
        return; /* sent before a restart: dropped */
    switch (e->kind) {
    case EV_HEADER:
        c2s_received_header(r->c2s, e->tree, e->text);
        break;
    case EV_ELEMENT:
        c2s_received_element(r->c2s, e->tree);
        e->tree = NULL;
        break;
    case EV_CLIENT_CLOSE:
        c2s_received_close(r->c2s);
        break;
    case EV_PARSE_ERROR:
        c2s_stream_error(r->c2s, e->cond, e->text);
        break;
    default:
        break;
    }
}

/* On the main loop: an element of the client's ran. */
static void input_ran(relay *r)
{
    unsigned left = atomic_fetch_sub(&r->unrun, 1) - 1;
    if (left <= INPUT_RESUME_AT && atomic_exchange(&r->hold_flag, 0) == 1 && !r->link_freed)
        add_to_batch(r, cmd_new(r, CMD_UNHOLD));
}

static void run_event(inbox_msg *m)
{
    relay_event *e = (relay_event *)m;
    relay *r = e->r;
    if (e->kind == EV_ELEMENT)
        input_ran(r);
    if (!r->link_freed)
        deliver(r, e);
    else if (e->kind == EV_ENDED) {
        r->ended_seen = true;
        relay_unref(r);
    }
    relay_event_free(e);
}

/* The sink of the worker's tcp_stream. */

static void on_header(void *ctx, const tern_xml *header, const char *default_ns)
{
    relay_event *e = event_for(ctx, EV_HEADER);
    e->tree = xml_copy(header);
    e->text = xstrdup(default_ns);
    post_event(e);
}

/* On the worker. The flag is set after the hold and the count read again after the flag, so
 * either the main loop sees the flag or we see that it caught up (both atomics are seq_cst);
 * the exchange makes exactly one side lift the hold. */
static void hold_if_behind(relay *r, unsigned unrun)
{
    if (unrun < INPUT_HOLD_AT || r->input_held || !r->stream)
        return;
    r->input_held = true;
    tcp_stream_hold_input(r->stream, true);
    atomic_store(&r->hold_flag, 1);
    if (atomic_load(&r->unrun) <= INPUT_RESUME_AT && atomic_exchange(&r->hold_flag, 0) == 1) {
        r->input_held = false;
        tcp_stream_hold_input(r->stream, false);
    }
}

static void on_element(void *ctx, tern_xml *x)
{
    relay *r = ctx;
    relay_event *e = event_for(r, EV_ELEMENT);
    e->tree = x;
    unsigned unrun = atomic_fetch_add(&r->unrun, 1) + 1;
    post_event(e);
    hold_if_behind(r, unrun);
}

static void on_closed_by_client(void *ctx) { post_event(event_for(ctx, EV_CLIENT_CLOSE)); }

static void on_parse_error(void *ctx, tern_stream_error cond, const char *text)
{
    relay_event *e = event_for(ctx, EV_PARSE_ERROR);
    e->cond = cond;
    e->text = text ? xstrdup(text) : NULL;
    post_event(e);
}

static void on_tls_ready(void *ctx, gnutls_session_t tls)
{
    relay *r = ctx;
    relay_event *e = event_for(r, EV_TLS_READY);
    for (size_t i = 0; i < N_BINDINGS; i++)
        if (tls_channel_binding(tls, sasl_binding_types[i], &e->bindings[i]) != 0)
            e->bindings[i] = (gnutls_datum_t){ NULL, 0 };
    post_event(e);
}

static void send_ended(relay *r, const char *reason)
{
    if (r->ended_sent)
        return;
    r->ended_sent = true;
    relay_event *e = event_for(r, EV_ENDED);
    e->text = xstrdup(reason ? reason : "done");
    post_event(e);
}

static void on_ended(void *ctx, const char *reason)
{
    relay *r = ctx;
    send_ended(r, reason);
    tcp_stream_free(r->stream);
    r->stream = NULL;
}

static void on_send_overflow(void *ctx, const char *why)
{
    relay_event *e = event_for(ctx, EV_SEND_OVERFLOW);
    e->text = xstrdup(why);
    post_event(e);
}

static const tcp_stream_sink relay_sink = {
    on_header, on_element, on_closed_by_client, on_parse_error, on_tls_ready, on_ended,
    on_send_overflow,
};

/* On the worker. */
static void run_cmd(relay *r, relay_cmd *c)
{
    if (c->op == CMD_OPEN) {
        tcp_stream_limits limits = { c->max_stanza_size, c->send };
        r->stream = tcp_stream_new(worker_base(r->worker), c->fd, &relay_sink, r, r->id,
                                   &limits, c->tls);
        return;
    }
    if (c->op == CMD_FREE) {
        if (r->stream) { /* c2s went first (the server is exiting): drop the connection */
            tcp_stream_free(r->stream);
            r->stream = NULL;
        }
        send_ended(r, "closed");
        relay_unref(r);
        return;
    }
    tcp_stream *s = r->stream;
    if (!s)
        return; /* the transport ended: ENDED is on its way to the main loop */
    switch (c->op) {
    case CMD_WRITE:
        if (!tcp_stream_is_over(s)) {
            buf_append(tcp_stream_outbuf(s), c->bytes.data, c->bytes.len);
            tcp_stream_flush(s);
        }
        break;
    case CMD_END:
        tcp_stream_end(s);
        break;
    case CMD_RESTART:
        r->worker_restarts++;
        tcp_stream_restart(s);
        break;
    case CMD_START_TLS:
        tcp_stream_start_tls(s, c->tls); /* on failure the stream ends: ENDED follows */
        break;
    case CMD_PAUSE:
    case CMD_RESUME:
        tcp_stream_pause_reading(s, c->op == CMD_PAUSE);
        break;
    case CMD_UNHOLD:
        r->input_held = false;
        tcp_stream_hold_input(s, false);
        break;
    default:
        break;
    }
}

static void run_batch(inbox_msg *m)
{
    relay_cmd *batch = (relay_cmd *)m;
    for (relay_cmd *c = batch; c; c = c->then)
        run_cmd(c->r, c);
    batch_free(batch);
}

void c2s_relay_accept(worker *w, int fd, bool direct_tls)
{
    relay *r = xcalloc(1, sizeof *r);
    atomic_init(&r->refs, 2);
    atomic_init(&r->unrun, 0);
    atomic_init(&r->hold_flag, 0);
    r->worker = w;
    socket_peer_name(fd, r->peer, sizeof r->peer);
    r->c2s = c2s_new(&relay_link_ops, r, r->peer);
    r->id = c2s_id(r->c2s);
    log_info(r->id, "client connection from %s%s", r->peer, direct_tls ? " (direct TLS)" : "");
    relay_cmd *c = cmd_new(r, CMD_OPEN);
    c->fd = fd;
    c->max_stanza_size = server.cfg->c2s_max_stanza_size;
    const config_send_queue *q = &server.cfg->c2s_send_queue;
    c->send = (conn_send_limits){ q->high_water, q->max, q->timeout };
    if (direct_tls) {
        tls_ctx_ref(server.tls);
        c->tls = server.tls;
    }
    worker_post(w, &c->m);
}

void c2s_relay_release(void)
{
    if (ev_flush)
        event_free(ev_flush);
    ev_flush = NULL;
}
