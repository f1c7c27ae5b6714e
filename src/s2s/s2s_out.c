/* s2s_out.c — outgoing server-to-server links: one per (local domain, remote domain) pair.
 *
 * A link goes: DNS (s2s_dns.c) → TCP connect, trying each address in turn → our stream header
 * → STARTTLS (required; or direct TLS for an _xmpps-server target, XEP-0368) → the peer's
 * certificate checked (tls_verify_peer; a peer that must have a valid one per [s2s]
 * require_valid_certificates is dropped here) → stream restart → authentication: SASL
 * EXTERNAL (XEP-0178) when the peer offers it, i.e. when it trusts our certificate, then a
 * stream restart; otherwise, or when EXTERNAL fails, Server Dialback (XEP-0220 §2.1: we send
 * db:result with our key and wait for the peer's verdict) → ready. Stanzas wait in a bounded queue until then and are written in order; when
 * the link fails they bounce to their senders with remote-server-not-found (no address, refused,
 * closed, refused by dialback) or remote-server-timeout (not ready in S2S_HANDSHAKE_SECONDS).
 * The link also carries db:verify requests for incoming streams (s2s_in.c) as soon as its own
 * stream is up, since dialback allows them before the link itself is authenticated. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hashmap.h"
#include "core/stream.h"
#include "core/util.h"
#include "process/server.h"
#include "s2s/s2s.h"
#include "s2s/s2s_dns.h"
#include "tern/log.h"
#include "tern/ns.h"
#include "xmpp/router.h"

#define CONNECT_SECONDS 5 /* per address; then the next one */
#define MAX_DEPTH 64

typedef enum out_state {
    OUT_RESOLVING,
    OUT_CONNECTING,
    OUT_STREAM,    /* header sent; waiting for the peer's header and features */
    OUT_SASL,      /* TLS up, SASL EXTERNAL sent: waiting for success or failure */
    OUT_AUTH,      /* TLS up, db:result sent: waiting for the verdict */
    OUT_READY,
    OUT_CLOSING,   /* our close is being flushed; no longer findable */
} out_state;

typedef struct verify_req {
    char *id, *key;
    uint64_t in_id;
    s2s_verified_fn done;  /* the incoming side's answer (it may not be called by name) */
    bool sent;
    struct verify_req *next;
} verify_req;

typedef struct s2s_out {
    uint64_t id;
    char *local, *remote, *pair; /* pair: "local remote", the key of `links` */
    out_state state;
    s2s_dns_req *dns;
    s2s_addr *addrs;
    size_t n_addrs, next_addr;
    int fd;                      /* while connecting */
    struct event *ev_connect;
    conn *conn;
    stream_parser *parser;
    bool tls, handshaking;
    bool sasl_done;              /* SASL EXTERNAL succeeded: the restarted stream is ready */
    bool sasl_failed;            /* the peer refused it: dialback instead */
    char *stream_id;             /* the id of the peer's header */
    tern_xml **queue;
    size_t n_queue;
    verify_req *verifies;
    struct event *timer;         /* handshake deadline, then idle timeout */
    int feeding;
    bool dead;                   /* freed once the parser returns */
    struct s2s_out *prev, *next; /* every link, closing ones included */
} s2s_out;

static hashmap *links; /* pair -> s2s_out (not the closing ones) */
static s2s_out *all_links;

static void link_free(s2s_out *l);

/* ---- life cycle ---- */

static void unlist(s2s_out *l)
{
    if (links && hashmap_get(links, l->pair) == l)
        hashmap_remove(links, l->pair);
}

static void link_destroy(s2s_out *l)
{
    unlist(l);
    if (l->prev)
        l->prev->next = l->next;
    else if (all_links == l)
        all_links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->prev = l->next = NULL;
    s2s_dns_cancel(l->dns);
    l->dns = NULL;
    if (l->ev_connect) {
        event_free(l->ev_connect);
        l->ev_connect = NULL;
        close(l->fd);
    }
    if (l->timer) {
        event_free(l->timer);
        l->timer = NULL;
    }
    if (l->conn) {
        conn_free(l->conn); /* deferred by conn when inside one of its callbacks */
        l->conn = NULL;
    }
    if (l->feeding)
        l->dead = true;
    else
        link_free(l);
}

static void link_free(s2s_out *l)
{
    for (size_t i = 0; i < l->n_queue; i++)
        xml_unref(l->queue[i]);
    free(l->queue);
    while (l->verifies) {
        verify_req *v = l->verifies;
        l->verifies = v->next;
        free(v->id);
        free(v->key);
        free(v);
    }
    if (l->parser)
        stream_parser_free(l->parser);
    free(l->addrs);
    free(l->stream_id);
    free(l->local);
    free(l->remote);
    free(l->pair);
    free(l);
}

/* Our side is over: what we wrote last (a stream error, our close) is flushed, then the
 * conn reports on_closed and the link goes. */
static void begin_closing(s2s_out *l)
{
    unlist(l);
    l->state = OUT_CLOSING;
    event_del(l->timer);
    conn_close(l->conn);
}

/* The link cannot be used: every queued stanza bounces (RFC 6120 §8.3.3.16/17), every
 * verification it was to carry fails. `conn_gone`: the connection already ended. */
static void link_fail_as(s2s_out *l, tern_stanza_error cond, const char *why, bool conn_gone)
{
    log_info(l->id, "s2s: link %s -> %s failed: %s", l->local, l->remote, why);
    unlist(l);
    tern_xml **queue = l->queue;
    size_t n = l->n_queue;
    l->queue = NULL;
    l->n_queue = 0;
    verify_req *verifies = l->verifies;
    l->verifies = NULL;
    char *local = xstrdup(l->local), *remote = xstrdup(l->remote);
    if (l->conn && !conn_gone)
        begin_closing(l);
    else
        link_destroy(l);
    for (size_t i = 0; i < n; i++) {
        tern_xml *reply = stanza_error_reply(queue[i], cond, why);
        if (reply)
            router_route(reply, NULL);
        xml_unref(queue[i]);
    }
    free(queue);
    while (verifies) {
        verify_req *v = verifies;
        verifies = v->next;
        v->done(v->in_id, local, remote, false);
        free(v->id);
        free(v->key);
        free(v);
    }
    free(local);
    free(remote);
}

static void link_fail(s2s_out *l, tern_stanza_error cond, const char *why)
{
    link_fail_as(l, cond, why, false);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s2s_out *l = arg;
    if (l->state != OUT_READY) {
        link_fail(l, STANZA_ERR_REMOTE_SERVER_TIMEOUT, "the remote server did not answer in time");
        return;
    }
    /* Idle: close our stream; the peer answers with its close and the conn reports it. */
    log_info(l->id, "s2s: closing idle link %s -> %s", l->local, l->remote);
    conn_write(l->conn, "</stream:stream>", 16);
    begin_closing(l);
}

static void arm_timer(s2s_out *l, unsigned seconds)
{
    struct timeval tv = { seconds, 0 };
    event_add(l->timer, &tv);
}

/* ---- writing ---- */

static void write_element(s2s_out *l, const tern_xml *x)
{
    /* The stanza is in jabber:client inside tern; written with that as the context it carries
     * no xmlns and so takes our header's default namespace, jabber:server. */
    xml_serialize(x, NS_CLIENT, conn_outbuf(l->conn));
    conn_flush(l->conn);
}

static void send_verifies(s2s_out *l)
{
    for (verify_req *v = l->verifies; v; v = v->next) {
        if (v->sent)
            continue;
        v->sent = true;
        s2s_write_dialback(l->conn, "verify", l->local, l->remote, v->id, NULL, v->key);
    }
    conn_flush(l->conn);
}

static void become_ready(s2s_out *l, const char *how)
{
    log_info(l->id, "s2s: link %s -> %s is authenticated (%s); sending %zu queued", l->local,
             l->remote, how, l->n_queue);
    l->state = OUT_READY;
    send_verifies(l);
    for (size_t i = 0; i < l->n_queue; i++) {
        write_element(l, l->queue[i]);
        xml_unref(l->queue[i]);
    }
    l->n_queue = 0;
    free(l->queue);
    l->queue = NULL;
    arm_timer(l, S2S_IDLE_SECONDS);
}

/* ---- the peer's stream ---- */

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    s2s_out *l = ctx;
    if (l->state == OUT_CLOSING)
        return;
    if (strcmp(default_ns, NS_SERVER) != 0) {
        s2s_write_stream_error(l->conn, STREAM_ERR_INVALID_NAMESPACE, NULL);
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "the peer does not speak jabber:server");
        return;
    }
    free(l->stream_id);
    const char *id = xml_attr(header, "id");
    l->stream_id = xstrdup(id ? id : "");
}

static void start_dialback(s2s_out *l);
static void open_stream(s2s_out *l);

static bool offers_external(const tern_xml *features)
{
    const tern_xml *mechs = xml_child(features, "mechanisms", NS_SASL);
    for (const tern_xml *m = mechs ? xml_first_element(mechs) : NULL; m;
         m = xml_next_element(m)) {
        const char *name = xml_is(m, "mechanism", NS_SASL) ? xml_text(m) : NULL;
        if (name && !strcmp(name, "EXTERNAL"))
            return true;
    }
    return false;
}

static void on_features(s2s_out *l, const tern_xml *features)
{
    if (!l->tls) {
        if (!xml_child(features, "starttls", NS_TLS)) {
            s2s_write_stream_error(l->conn, STREAM_ERR_POLICY_VIOLATION, "TLS is required");
            link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "the peer offers no STARTTLS");
            return;
        }
        conn_write(l->conn, "<starttls xmlns='" NS_TLS "'/>", 17 + strlen(NS_TLS) + 3);
        return;
    }
    if (l->sasl_done) {
        become_ready(l, "SASL EXTERNAL");
        return;
    }
    if (!l->sasl_failed && offers_external(features)) {
        /* XEP-0178 §2: the peer offers EXTERNAL only when our certificate is good for it; the
         * authorization identity is our domain. */
        gnutls_datum_t in = { (unsigned char *)l->local, (unsigned)strlen(l->local) }, b64;
        if (gnutls_base64_encode2(&in, &b64) < 0)
            abort();
        tern_buf *out = conn_outbuf(l->conn);
        buf_append_str(out, "<auth xmlns='" NS_SASL "' mechanism='EXTERNAL'>");
        buf_append(out, (const char *)b64.data, b64.size);
        buf_append_str(out, "</auth>");
        conn_flush(l->conn);
        gnutls_free(b64.data);
        l->state = OUT_SASL;
        return;
    }
    start_dialback(l);
}

static void start_dialback(s2s_out *l)
{
    if (!*l->stream_id) {
        s2s_write_stream_error(l->conn, STREAM_ERR_INVALID_XML, "no stream id");
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "the peer's stream has no id");
        return;
    }
    /* XEP-0220 §2.1.1: the key for this stream, from us (originating) to them (receiving). */
    char key[65];
    s2s_dialback_key(l->remote, l->local, l->stream_id, key);
    s2s_write_dialback(l->conn, "result", l->local, l->remote, NULL, NULL, key);
    l->state = OUT_AUTH;
    send_verifies(l);
}

static void on_dialback_result(s2s_out *l, const tern_xml *x)
{
    const char *type = xml_attr(x, "type");
    if (l->state == OUT_AUTH && type && !strcmp(type, "valid")) {
        become_ready(l, "dialback");
        return;
    }
    if (type && (!strcmp(type, "invalid") || !strcmp(type, "error"))) {
        conn_write(l->conn, "</stream:stream>", 16);
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "the remote server refused dialback");
    }
}

static void on_dialback_verify(s2s_out *l, const tern_xml *x)
{
    const char *id = xml_attr(x, "id");
    const char *type = xml_attr(x, "type");
    verify_req **at = &l->verifies;
    while (*at && !((*at)->sent && id && !strcmp((*at)->id, id)))
        at = &(*at)->next;
    if (!*at)
        return;
    verify_req *v = *at;
    *at = v->next;
    v->done(v->in_id, l->local, l->remote, type && !strcmp(type, "valid"));
    free(v->id);
    free(v->key);
    free(v);
}

static void on_stanza(void *ctx, tern_xml *x)
{
    s2s_out *l = ctx;
    if (l->dead || l->state == OUT_CLOSING) {
        xml_unref(x);
        return;
    }
    if (xml_is(x, "features", NS_STREAMS)) {
        on_features(l, x);
    } else if (xml_is(x, "proceed", NS_TLS) && !l->tls) {
        /* RFC 6120 §5.4.3.3: the handshake, then a new stream over it. */
        stream_parser_reset(l->parser);
        l->handshaking = true;
        if (conn_start_tls_client(l->conn, server.tls, l->remote, NULL) != 0)
            link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "cannot start TLS");
    } else if (xml_is(x, "failure", NS_TLS)) {
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "the peer refused STARTTLS");
    } else if (xml_is(x, "success", NS_SASL) && l->state == OUT_SASL) {
        /* RFC 6120 §6.4.6: a new stream, on which the peer's features end the setup. */
        l->sasl_done = true;
        stream_parser_reset(l->parser);
        open_stream(l);
    } else if (xml_is(x, "failure", NS_SASL) && l->state == OUT_SASL) {
        const tern_xml *cond = xml_first_element(x);
        log_info(l->id, "s2s: %s refused SASL EXTERNAL (%s); trying dialback", l->remote,
                 cond ? xml_name(cond) : "?");
        l->sasl_failed = true;
        start_dialback(l);
    } else if (xml_is(x, "result", NS_DIALBACK)) {
        on_dialback_result(l, x);
    } else if (xml_is(x, "verify", NS_DIALBACK)) {
        on_dialback_verify(l, x);
    } else if (xml_is(x, "error", NS_STREAMS)) {
        const tern_xml *cond = xml_first_element(x);
        char why[160];
        snprintf(why, sizeof why, "stream error from the peer: %s", cond ? xml_name(cond) : "?");
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, why);
    } else {
        log_debug(l->id, "s2s: ignoring <%s/> on an outgoing stream", xml_name(x));
    }
    xml_unref(x);
}

static void on_close(void *ctx)
{
    s2s_out *l = ctx;
    if (l->state == OUT_CLOSING)
        return;
    if (l->state == OUT_READY) {
        conn_write(l->conn, "</stream:stream>", 16);
        begin_closing(l);
        return;
    }
    link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "the peer closed the stream");
}

static void on_parse_error(void *ctx, tern_stream_error cond, const char *text)
{
    s2s_out *l = ctx;
    if (l->state == OUT_CLOSING)
        return;
    s2s_write_stream_error(l->conn, cond, text);
    link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, text);
}

static const stream_parser_callbacks parser_callbacks = {
    on_open, on_stanza, on_close, on_parse_error,
};

/* ---- the connection ---- */

static void on_data(void *ctx, const char *data, size_t len)
{
    s2s_out *l = ctx;
    if (l->handshaking || l->dead)
        return;
    l->feeding++;
    stream_parser_feed(l->parser, data, len);
    l->feeding--;
    if (l->dead && !l->feeding)
        link_free(l);
}

static void open_stream(s2s_out *l)
{
    l->state = OUT_STREAM;
    s2s_write_header(l->conn, l->local, l->remote, NULL);
}

static void on_tls_ready(void *ctx)
{
    s2s_out *l = ctx;
    l->handshaking = false;
    l->tls = true;
    /* RFC 7590 §3.2: the certificate must name the domain we meant to reach. */
    char why[256];
    bool valid = tls_verify_peer(conn_tls_session(l->conn), l->remote, why, sizeof why) == 0;
    if (valid) {
        log_info(l->id, "s2s: %s presented a valid certificate", l->remote);
    } else if (config_s2s_requires_certificate(server.cfg, l->remote)) {
        char *text = xasprintf("the certificate of %s is not valid: %s", l->remote, why);
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, text);
        free(text);
        return;
    } else {
        log_info(l->id, "s2s: the certificate of %s is not valid (%s); dialback may still "
                 "authenticate the link", l->remote, why);
    }
    open_stream(l);
}

static void on_closed(void *ctx, const char *reason)
{
    s2s_out *l = ctx;
    if (l->state == OUT_CLOSING) {
        link_destroy(l);
        return;
    }
    link_fail_as(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, reason, true);
}

/* The peer does not read what we send: what waits in the socket is lost to it, as on any
 * broken link; the stanzas still queued here bounce. */
static void on_send_overflow(void *ctx, const char *why)
{
    s2s_out *l = ctx;
    if (l->state == OUT_CLOSING)
        return;
    s2s_write_stream_error(l->conn, STREAM_ERR_POLICY_VIOLATION, why);
    link_fail(l, STANZA_ERR_REMOTE_SERVER_TIMEOUT, why);
}

static const conn_handlers conn_callbacks = {
    .on_data = on_data,
    .on_tls_ready = on_tls_ready,
    .on_closed = on_closed,
    .on_send_overflow = on_send_overflow,
};

static void try_next_address(s2s_out *l);

static void on_connected(evutil_socket_t fd, short what, void *arg)
{
    s2s_out *l = arg;
    event_free(l->ev_connect);
    l->ev_connect = NULL;
    int err = 0;
    socklen_t len = sizeof err;
    const s2s_addr *a = &l->addrs[l->next_addr - 1];
    if ((what & EV_TIMEOUT) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
        log_info(l->id, "s2s: %s (%s): %s", l->remote, a->text,
                 (what & EV_TIMEOUT) ? "connect timed out" : strerror(err));
        close(fd);
        try_next_address(l);
        return;
    }
    log_info(l->id, "s2s: connected to %s (%s)%s", l->remote, a->text,
             a->direct_tls ? ", direct TLS" : "");
    l->conn = conn_new(server.base, fd, &conn_callbacks, l, l->id);
    const config_send_queue *q = &server.cfg->s2s_send_queue;
    conn_set_send_limits(l->conn, &(conn_send_limits){ q->high_water, q->max, q->timeout });
    l->parser = stream_parser_new(&parser_callbacks, l, server.cfg->s2s_max_stanza_size,
                                  MAX_DEPTH);
    if (!a->direct_tls) {
        open_stream(l);
        return;
    }
    l->handshaking = true;
    l->state = OUT_STREAM;
    if (conn_start_tls_client(l->conn, server.tls, l->remote, "xmpp-server") != 0)
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "cannot start TLS");
}

static void try_next_address(s2s_out *l)
{
    while (l->next_addr < l->n_addrs) {
        const s2s_addr *a = &l->addrs[l->next_addr++];
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
            log_info(l->id, "s2s: %s (%s): %s", l->remote, a->text, strerror(errno));
            close(fd);
            continue;
        }
        l->fd = fd;
        l->state = OUT_CONNECTING;
        l->ev_connect = event_new(server.base, fd, EV_WRITE, on_connected, l);
        struct timeval tv = { CONNECT_SECONDS, 0 };
        event_add(l->ev_connect, &tv);
        return;
    }
    link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "cannot connect to the remote server");
}

static void on_resolved(void *ctx, const s2s_addr *addrs, size_t n, const char *error)
{
    s2s_out *l = ctx;
    l->dns = NULL;
    if (n == 0) {
        link_fail(l, STANZA_ERR_REMOTE_SERVER_NOT_FOUND, error ? error : "no address");
        return;
    }
    l->addrs = xmalloc(n * sizeof *addrs);
    memcpy(l->addrs, addrs, n * sizeof *addrs);
    l->n_addrs = n;
    try_next_address(l);
}

/* ---- entry points ---- */

/* The link for the pair, started if there is none. NULL when no lookup can start. */
static s2s_out *link_get(const char *local, const char *remote)
{
    if (!links)
        links = hashmap_new();
    char *pair = xasprintf("%s %s", local, remote);
    s2s_out *l = hashmap_get(links, pair);
    if (l) {
        free(pair);
        return l;
    }
    l = xcalloc(1, sizeof *l);
    l->id = server_next_id();
    l->local = xstrdup(local);
    l->remote = xstrdup(remote);
    l->pair = pair;
    l->fd = -1;
    l->timer = evtimer_new(server.base, on_timer, l);
    hashmap_put(links, pair, l);
    l->next = all_links;
    if (all_links)
        all_links->prev = l;
    all_links = l;
    log_info(l->id, "s2s: new link %s -> %s", local, remote);
    arm_timer(l, S2S_HANDSHAKE_SECONDS);
    l->dns = s2s_dns_resolve(remote, on_resolved, l);
    if (!l->dns) {
        link_destroy(l);
        return NULL;
    }
    return l;
}

void s2s_out_send(const char *local, const char *remote, tern_xml *stanza)
{
    s2s_out *l = server.stopping ? NULL : link_get(local, remote);
    if (!l || l->n_queue >= S2S_MAX_QUEUE) {
        tern_xml *reply = stanza_error_reply(stanza, l ? STANZA_ERR_RESOURCE_CONSTRAINT
                                                       : STANZA_ERR_REMOTE_SERVER_NOT_FOUND,
                                             NULL);
        xml_unref(stanza);
        if (reply)
            router_route(reply, NULL);
        return;
    }
    log_debug(l->id, "s2s: <%s/> %s -> %s %s", xml_name(stanza), local, remote,
              l->state == OUT_READY ? "sent" : "queued");
    if (l->state == OUT_READY) {
        write_element(l, stanza);
        xml_unref(stanza);
        arm_timer(l, S2S_IDLE_SECONDS);
        return;
    }
    l->queue = xrealloc(l->queue, (l->n_queue + 1) * sizeof *l->queue);
    l->queue[l->n_queue++] = stanza;
}

void s2s_out_verify(const char *local, const char *remote, const char *id, const char *key,
                    uint64_t in_id, s2s_verified_fn done)
{
    s2s_out *l = server.stopping ? NULL : link_get(local, remote);
    if (!l) {
        done(in_id, local, remote, false);
        return;
    }
    verify_req *v = xcalloc(1, sizeof *v);
    v->id = xstrdup(id);
    v->key = xstrdup(key);
    v->in_id = in_id;
    v->done = done;
    verify_req **at = &l->verifies;
    while (*at)
        at = &(*at)->next;
    *at = v;
    if (l->state == OUT_AUTH || l->state == OUT_READY)
        send_verifies(l);
}

void s2s_out_free_all(void)
{
    while (all_links)
        link_destroy(all_links);
    if (links)
        hashmap_free(links);
    links = NULL;
}
