/* gen_conn.c — one client connection of the load generator: a non-blocking TCP socket on the
 * libevent loop, optional STARTTLS with GnuTLS, the project's own stream parser (src/core/stream.c)
 * for what the server sends, and the client half of an XMPP login: stream, STARTTLS (RFC 6120
 * §5), SASL (§6), resource binding (§7), the legacy session request where a server still
 * requires it (RFC 3921 §3), then initial presence (RFC 6121 §4.2).
 *
 * TLS: the generator does not verify the server's certificate. The servers under test run on
 * loopback with throw-away test certificates; the handshake itself (key exchange, the server's
 * CertificateVerify signature) is done in full, which is the cost being measured. */
#include "gen.h"

#include <errno.h>
#include <event2/buffer.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/stream.h"
#include "tern/ns.h"

typedef enum conn_state {
    C_CONNECTING, /* TCP connect in progress */
    C_FEATURES,   /* stream header sent, waiting for <stream:features/> */
    C_STARTTLS,   /* <starttls/> sent, waiting for <proceed/> */
    C_HANDSHAKE,  /* TLS handshake in progress */
    C_AUTH,       /* <auth/> sent: challenges until <success/> */
    C_BIND,       /* bind request sent */
    C_SESSION,    /* legacy session request sent */
    C_ONLINE,     /* presence sent: a usable session */
    C_DEAD,
} conn_state;

struct gen_conn {
    gen *g;
    size_t idx;
    int fd;
    struct event *rev, *wev;
    conn_state state;
    gnutls_session_t tls;
    bool tls_active;     /* handshake done: all I/O goes through GnuTLS */
    size_t tls_pending;  /* size of a record send that returned GNUTLS_E_AGAIN */
    bool authenticated;
    struct evbuffer *out;
    stream_parser *parser;
    gen_scram *scram;
    gen_mech mech;
    char *jid;
    char user[64];
};

static void conn_fail(gen_conn *c, const char *why);

static void send_str(gen_conn *c, const char *s)
{
    gen_conn_send(c, s, strlen(s));
}

static void send_header(gen_conn *c)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>",
             c->g->o.domain);
    send_str(c, buf);
}

/* ------------------------------------------------------------ login steps */

static bool offers_mech(const tern_xml *mechs, const char *name)
{
    for (tern_xml *m = mechs ? xml_first_element(mechs) : NULL; m; m = xml_next_element(m))
        if (xml_is(m, "mechanism", NS_SASL) && strcmp(xml_text(m), name) == 0)
            return true;
    return false;
}

static void start_auth(gen_conn *c, const tern_xml *features)
{
    gen *g = c->g;
    tern_xml *mechs = xml_child(features, "mechanisms", NS_SASL);
    if (g->o.mech_auto) {
        if (offers_mech(mechs, "SCRAM-SHA-256"))
            c->mech = GEN_MECH_SCRAM_SHA256;
        else if (offers_mech(mechs, "PLAIN"))
            c->mech = GEN_MECH_PLAIN;
        else if (offers_mech(mechs, "SCRAM-SHA-1"))
            c->mech = GEN_MECH_SCRAM_SHA1;
        else
            return conn_fail(c, "no usable SASL mechanism offered");
    } else {
        c->mech = g->o.mech;
        if (!offers_mech(mechs, gen_mech_name(c->mech)))
            return conn_fail(c, "the requested SASL mechanism is not offered");
    }
    const char *name = gen_mech_name(c->mech);
    if (!g->mech_used)
        g->mech_used = name;
    else if (strcmp(g->mech_used, name) != 0)
        g->mech_used = "mixed";

    char *initial;
    if (c->mech == GEN_MECH_PLAIN) {
        initial = gen_plain_response(c->user, g->o.password);
    } else {
        c->scram = gen_scram_new(c->mech, c->user, g->o.password, g->kc, c->idx);
        initial = gen_scram_first(c->scram);
    }
    char head[128];
    snprintf(head, sizeof head, "<auth xmlns='%s' mechanism='%s'>", NS_SASL, name);
    send_str(c, head);
    send_str(c, initial);
    send_str(c, "</auth>");
    free(initial);
    c->state = C_AUTH;
}

static void on_features(gen_conn *c, const tern_xml *f)
{
    if (c->g->o.tls && !c->tls_active) {
        if (!xml_child(f, "starttls", NS_TLS))
            return conn_fail(c, "STARTTLS not offered");
        send_str(c, "<starttls xmlns='" NS_TLS "'/>");
        c->state = C_STARTTLS;
    } else if (!c->authenticated) {
        start_auth(c, f);
    } else {
        if (!xml_child(f, "bind", NS_BIND))
            return conn_fail(c, "resource binding not offered");
        send_str(c, "<iq type='set' id='bind'><bind xmlns='" NS_BIND "'>"
                    "<resource>bench</resource></bind></iq>");
        /* RFC 6121 dropped session establishment; a server that still lists it without
         * <optional/> (RFC 3921 §3) wants the request before the session is usable. */
        tern_xml *sess = xml_child(f, "session", NS_SESSION);
        c->state = C_BIND;
        if (sess && !xml_child(sess, "optional", NULL))
            c->state = C_SESSION; /* send it after the bind result */
    }
}

static void start_tls(gen_conn *c)
{
    gen *g = c->g;
    if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0 ||
        gnutls_set_default_priority(c->tls) < 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, g->xcred) < 0 ||
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, g->o.domain, strlen(g->o.domain)) < 0)
        return conn_fail(c, "TLS setup failed");
    gnutls_transport_set_int(c->tls, c->fd);
    c->state = C_HANDSHAKE;
}

static void handshake(gen_conn *c)
{
    int r = gnutls_handshake(c->tls);
    if (r == 0) {
        c->tls_active = true;
        c->state = C_FEATURES;
        send_header(c);
        gen_conn_flush(c);
        return;
    }
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal(r)) {
        if (gnutls_record_get_direction(c->tls) == 1)
            event_add(c->wev, NULL);
        return;
    }
    snprintf(c->g->last_error, sizeof c->g->last_error, "TLS handshake: %s", gnutls_strerror(r));
    conn_fail(c, c->g->last_error);
}

static void go_online(gen_conn *c)
{
    send_str(c, "<presence/>"); /* initial presence, RFC 6121 §4.2 */
    c->state = C_ONLINE;
    c->g->on.online(c->g, c);
}

static void on_iq_result(gen_conn *c, const tern_xml *iq)
{
    const char *type = xml_attr(iq, "type"), *id = xml_attr(iq, "id");
    if (!type || !id || strcmp(type, "result") != 0)
        return conn_fail(c, "bind or session request refused");
    if (strcmp(id, "bind") == 0) {
        tern_xml *bind = xml_child(iq, "bind", NS_BIND);
        const char *jid = bind ? xml_child_text(bind, "jid", NS_BIND) : NULL;
        if (!jid || !*jid)
            return conn_fail(c, "bind result without a JID");
        c->jid = strdup(jid);
        if (!c->jid)
            abort();
        if (c->state == C_SESSION) {
            send_str(c, "<iq type='set' id='sess'><session xmlns='" NS_SESSION "'/></iq>");
            return;
        }
        return go_online(c);
    }
    if (strcmp(id, "sess") == 0 && c->state == C_SESSION && c->jid)
        return go_online(c);
}

/* An iq the server sends us while online (a ping, a roster push): answer with an empty result
 * as a client does (RFC 6120 §8.2.3: an iq get or set must be answered). */
static void answer_iq(gen_conn *c, const tern_xml *iq)
{
    const char *type = xml_attr(iq, "type"), *id = xml_attr(iq, "id"), *from = xml_attr(iq, "from");
    if (!type || !id || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return;
    tern_xml *r = xml_new("iq", NS_CLIENT);
    xml_set_attr(r, "type", "result");
    xml_set_attr(r, "id", id);
    if (from)
        xml_set_attr(r, "to", from);
    char *s = xml_to_string(r, NS_CLIENT);
    send_str(c, s);
    free(s);
    xml_unref(r);
}

static void on_stanza(void *ctx, tern_xml *st)
{
    gen_conn *c = ctx;
    if (c->state == C_DEAD)
        goto out;
    if (xml_is(st, "error", NS_STREAMS)) {
        tern_xml *cond = xml_first_element(st);
        snprintf(c->g->last_error, sizeof c->g->last_error, "stream error from server: %s",
                 cond ? xml_name(cond) : "?");
        conn_fail(c, c->g->last_error);
        goto out;
    }
    switch (c->state) {
    case C_FEATURES:
        if (xml_is(st, "features", NS_STREAMS))
            on_features(c, st);
        break;
    case C_STARTTLS:
        if (xml_is(st, "proceed", NS_TLS)) {
            stream_parser_reset(c->parser); /* RFC 6120 §5.4.3.3: a new stream over TLS */
            start_tls(c);
        } else {
            conn_fail(c, "STARTTLS refused");
        }
        break;
    case C_AUTH:
        if (xml_is(st, "challenge", NS_SASL) && c->scram) {
            char *resp = gen_scram_final(c->scram, xml_text(st));
            if (!resp) {
                conn_fail(c, "bad SCRAM challenge");
                break;
            }
            send_str(c, "<response xmlns='" NS_SASL "'>");
            send_str(c, resp);
            send_str(c, "</response>");
            free(resp);
        } else if (xml_is(st, "success", NS_SASL)) {
            if (c->scram && !gen_scram_verify(c->scram, xml_text(st))) {
                conn_fail(c, "the server's SCRAM signature does not match");
                break;
            }
            gen_scram_free(c->scram);
            c->scram = NULL;
            c->authenticated = true;
            stream_parser_reset(c->parser); /* RFC 6120 §6.4.6: restart the stream */
            c->state = C_FEATURES;
            send_header(c);
        } else {
            tern_xml *cond = xml_first_element(st);
            snprintf(c->g->last_error, sizeof c->g->last_error, "SASL %s: %s", xml_name(st),
                     cond ? xml_name(cond) : "?");
            conn_fail(c, c->g->last_error);
        }
        break;
    case C_BIND:
    case C_SESSION:
        if (xml_is(st, "iq", NS_CLIENT))
            on_iq_result(c, st);
        break;
    case C_ONLINE:
        if (xml_is(st, "message", NS_CLIENT))
            c->g->on.message(c->g, c, st);
        else if (xml_is(st, "iq", NS_CLIENT) && c->g->on.iq_result &&
                 strcmp(xml_attr(st, "type") ? xml_attr(st, "type") : "", "result") == 0)
            c->g->on.iq_result(c->g, c, st);
        else if (xml_is(st, "iq", NS_CLIENT))
            answer_iq(c, st);
        break; /* presence and anything else: ignored */
    default:
        break;
    }
out:
    xml_unref(st);
}

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    (void)ctx, (void)header, (void)default_ns;
}

static void on_close(void *ctx)
{
    conn_fail(ctx, "the server closed the stream");
}

static void on_parse_error(void *ctx, tern_stream_error cond, const char *text)
{
    gen_conn *c = ctx;
    snprintf(c->g->last_error, sizeof c->g->last_error, "unparsable input from server: %s", text);
    conn_fail(c, c->g->last_error);
}

static const stream_parser_callbacks parser_cb = { on_open, on_stanza, on_close, on_parse_error };

/* ------------------------------------------------------------ I/O */

static void conn_fail(gen_conn *c, const char *why)
{
    if (c->state == C_DEAD)
        return;
    c->state = C_DEAD;
    event_del(c->rev);
    event_del(c->wev);
    c->g->on.failed(c->g, c, why);
}

void gen_conn_send(gen_conn *c, const char *data, size_t len)
{
    if (c->state != C_DEAD)
        evbuffer_add(c->out, data, len);
}

void gen_conn_flush(gen_conn *c)
{
    if (c->state == C_DEAD || c->state == C_CONNECTING || c->state == C_HANDSHAKE)
        return;
    size_t len;
    while ((len = evbuffer_get_length(c->out)) > 0) {
        if (c->tls_active) {
            ssize_t r;
            if (c->tls_pending) {
                r = gnutls_record_send(c->tls, NULL, 0); /* retry the same record */
            } else {
                size_t n = len < 16384 ? len : 16384;
                r = gnutls_record_send(c->tls, evbuffer_pullup(c->out, (ssize_t)n), n);
                if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
                    c->tls_pending = n;
            }
            if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                event_add(c->wev, NULL);
                return;
            }
            if (r < 0)
                return conn_fail(c, "TLS write failed");
            c->tls_pending = 0;
            evbuffer_drain(c->out, (size_t)r);
        } else {
            int r = evbuffer_write(c->out, c->fd);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                event_add(c->wev, NULL);
                return;
            }
            if (r <= 0)
                return conn_fail(c, "write failed");
        }
    }
}

static void feed(gen_conn *c, const char *buf, size_t n)
{
    if (stream_parser_feed(c->parser, buf, n) < 0)
        conn_fail(c, c->g->last_error[0] ? c->g->last_error : "parse error");
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    gen_conn *c = arg;
    char buf[16384];
    (void)what;
    if (c->state == C_HANDSHAKE) {
        handshake(c);
        return;
    }
    for (;;) {
        ssize_t n;
        if (c->tls_active) {
            n = gnutls_record_recv(c->tls, buf, sizeof buf);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                break;
            if (n <= 0)
                return conn_fail(c, n == 0 ? "connection closed" : "TLS read failed");
        } else {
            n = recv(fd, buf, sizeof buf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (n <= 0)
                return conn_fail(c, n == 0 ? "connection closed" : "read failed");
        }
        feed(c, buf, (size_t)n);
        if (c->state == C_DEAD)
            return;
        if (c->state == C_HANDSHAKE) { /* <proceed/> arrived: TLS starts now */
            handshake(c);
            return;
        }
        /* Level-triggered: one plain read per wake-up is enough; GnuTLS may hold decrypted
         * data the socket no longer signals. */
        if (!c->tls_active || gnutls_record_check_pending(c->tls) == 0)
            break;
    }
    gen_conn_flush(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    gen_conn *c = arg;
    (void)what;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            snprintf(c->g->last_error, sizeof c->g->last_error, "connect: %s", strerror(err));
            return conn_fail(c, c->g->last_error);
        }
        c->state = C_FEATURES;
        event_add(c->rev, NULL);
        send_header(c);
    } else if (c->state == C_HANDSHAKE) {
        handshake(c);
        return;
    }
    gen_conn_flush(c);
}

gen_conn *gen_conn_start(gen *g, size_t idx)
{
    gen_conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->g = g;
    c->idx = idx;
    snprintf(c->user, sizeof c->user, "%s%ld", g->o.prefix, g->o.first_user + (long)idx);
    c->out = evbuffer_new();
    c->parser = stream_parser_new(&parser_cb, c, 1 << 20, 64);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!c->out || !c->parser)
        abort();
    c->rev = event_new(g->base, c->fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(g->base, c->fd, EV_WRITE, on_writable, c);
    c->state = C_CONNECTING;
    if (c->fd < 0) {
        snprintf(g->last_error, sizeof g->last_error, "socket: %s", strerror(errno));
        conn_fail(c, g->last_error);
        return c;
    }
    int one = 1; /* stanzas are small and latency is measured: no Nagle delay */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g->addr, sizeof g->addr) < 0 && errno != EINPROGRESS) {
        snprintf(g->last_error, sizeof g->last_error, "connect: %s", strerror(errno));
        conn_fail(c, g->last_error);
        return c;
    }
    event_add(c->wev, NULL);
    return c;
}

void gen_conn_free(gen_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        /* An abortive close: the generator opens tens of thousands of connections per run and
         * must not leave them in TIME_WAIT for the next run. */
        struct linger lg = { 1, 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(c->fd);
    }
    event_free(c->rev);
    event_free(c->wev);
    if (c->tls)
        gnutls_deinit(c->tls);
    stream_parser_free(c->parser);
    evbuffer_free(c->out);
    gen_scram_free(c->scram);
    free(c->jid);
    free(c);
}

const char *gen_conn_jid(const gen_conn *c)
{
    return c->jid;
}

size_t gen_conn_index(const gen_conn *c)
{
    return c->idx;
}

bool gen_conn_online(const gen_conn *c)
{
    return c->state == C_ONLINE;
}

const char *gen_conn_state(const gen_conn *c)
{
    static const char *names[] = { "connecting", "waiting for features", "waiting for <proceed/>",
                                   "in the TLS handshake", "authenticating", "binding",
                                   "requesting a session", "online", "dead" };
    return names[c->state];
}

int gen_tls_init(gen *g)
{
    if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&g->xcred) < 0)
        return -1;
    return 0; /* no trust store and no gnutls_session_set_verify_cert: nothing is verified */
}

void gen_tls_deinit(gen *g)
{
    if (g->xcred)
        gnutls_certificate_free_credentials(g->xcred);
    gnutls_global_deinit();
}
