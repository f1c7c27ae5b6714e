/* s2s_in.c — incoming server-to-server streams ([s2s] listen).
 *
 * A peer opens a jabber:server stream to one of our domains; we require STARTTLS before
 * anything else (RFC 6120 §5.3.1 lets us), asking for the peer's certificate. Then:
 *   SASL EXTERNAL (XEP-0178), offered when that certificate is valid for the domain in the
 *     stream header's 'from' (tls_verify_peer): success authenticates that domain to the
 *     header's 'to' domain, and the stream restarts.
 * or Server Dialback (XEP-0220), refused for a domain that must present a valid certificate
 * ([s2s] require_valid_certificates and its exceptions) and did not:
 *   db:result from the peer: "I am O, talking to our domain R, with this key". We ask O's
 *     authoritative server over our own outgoing link (s2s_out_verify) and tell the peer the
 *     verdict; once valid, stanzas from O to R are accepted on this stream.
 *   db:verify from the peer: a receiving server checks a key we gave it on another stream;
 *     we compute the key again and answer valid or invalid.
 * Every stanza must come from a domain the stream authenticated (else <invalid-from/>) and go
 * to one of our hosts (else <host-unknown/>); it is then converted to jabber:client and routed
 * like any stanza from outside. Streams are one-way: we never send stanzas back here. */
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/stream.h"
#include "core/util.h"
#include "host/served.h"
#include "net/addr_limits.h"
#include "process/server.h"
#include "s2s/s2s.h"
#include "tern/log.h"
#include "tern/ns.h"
#include "xmpp/router.h"

#define MAX_DEPTH 64
#define STREAM_ID_LEN 16

typedef struct auth_pair {
    char *local, *remote;
    struct auth_pair *next;
} auth_pair;

typedef struct s2s_in {
    uint64_t id;
    conn *conn;
    stream_parser *parser;
    char stream_id[STREAM_ID_LEN + 1];
    bool header_sent, tls, handshaking, closed;
    char *peer, *local;      /* the prepared 'from' and 'to' of the peer's last header */
    bool cert_valid;         /* the peer's certificate is valid for `peer` */
    bool sasl_done;
    int feeding;
    bool dead;
    auth_pair *authed;
    char addr_key[ADDR_KEY_LEN]; /* counted under it by the address limits; "" if unknown */
    struct event *timer;     /* must authenticate within S2S_HANDSHAKE_SECONDS */
    struct s2s_in *prev, *next;
} s2s_in;

/* A domain this server answers for: a host, or a domain one of its modules serves
 * (tern_serve_domain()). */
static bool is_ours(const char *domain)
{
    return server_find_host(domain) || served_find(domain);
}

static s2s_in *streams;
static addr_limits *peer_limits; /* XEP-0205 §3 for incoming streams ([s2s] limits) */

static addr_limit_settings peer_limit_settings(void)
{
    const config *cfg = server.cfg;
    return (addr_limit_settings){
        .max_per_address = cfg->s2s_max_connections_per_address,
        .max_unauthenticated_per_address = cfg->s2s_max_unauthenticated_per_address,
        .max_unauthenticated = cfg->s2s_max_unauthenticated,
        .logins_per_second = 1, /* unused: a server authenticates per domain, not by login */
    };
}

/* ---- life cycle ---- */

static void in_free(s2s_in *s)
{
    while (s->authed) {
        auth_pair *p = s->authed;
        s->authed = p->next;
        free(p->local);
        free(p->remote);
        free(p);
    }
    stream_parser_free(s->parser);
    free(s->peer);
    free(s->local);
    free(s);
}

static void in_destroy(s2s_in *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    addr_limits_release(peer_limits, s->addr_key, s->authed != NULL);
    event_free(s->timer);
    conn_free(s->conn); /* deferred by conn when inside one of its callbacks */
    if (s->feeding)
        s->dead = true;
    else
        in_free(s);
}

static void end_stream(s2s_in *s)
{
    s->closed = true;
    event_del(s->timer);
    conn_close(s->conn);
}

static void send_header(s2s_in *s, const char *from, const char *to)
{
    random_token(s->stream_id, STREAM_ID_LEN);
    s2s_write_header(s->conn, from, to, s->stream_id);
    s->header_sent = true;
}

static void stream_error(s2s_in *s, tern_stream_error cond, const char *text)
{
    if (s->closed)
        return;
    log_info(s->id, "s2s: stream error %s: %s", stream_error_name(cond), text ? text : "");
    if (!s->header_sent)
        send_header(s, NULL, NULL); /* RFC 6120 §4.9.1.2: open before the error */
    s2s_write_stream_error(s->conn, cond, text);
    end_stream(s);
}

static bool is_authed(const s2s_in *s, const char *local, const char *remote)
{
    for (const auth_pair *p = s->authed; p; p = p->next)
        if ((!local || !strcmp(p->local, local)) && !strcmp(p->remote, remote))
            return true;
    return false;
}

/* ---- dialback ---- */

/* A domain as the peer wrote it, prepared; NULL when it is none. */
static char *prep_domain(const char *text)
{
    char *out = NULL;
    if (!text || jid_prep_domain(text, &out) != 0)
        return NULL;
    return out;
}

static void add_authed(s2s_in *s, const char *local, const char *remote)
{
    if (!s->authed)
        addr_limits_authenticated(peer_limits, s->addr_key);
    if (!is_authed(s, local, remote)) {
        auth_pair *p = xcalloc(1, sizeof *p);
        p->local = xstrdup(local);
        p->remote = xstrdup(remote);
        p->next = s->authed;
        s->authed = p;
    }
    event_del(s->timer);
}

/* Whether the peer's certificate is valid for `domain`; `why` says why not. */
static bool cert_valid_for(s2s_in *s, const char *domain, char *why, size_t why_len)
{
    gnutls_session_t tls = conn_tls_session(s->conn);
    if (!tls) {
        snprintf(why, why_len, "no TLS");
        return false;
    }
    return tls_verify_peer(tls, domain, why, why_len) == 0;
}

/* ---- SASL EXTERNAL (XEP-0178) ---- */

static void sasl_failure(s2s_in *s, const char *condition)
{
    tern_buf *out = conn_outbuf(s->conn);
    buf_printf(out, "<failure xmlns='" NS_SASL "'><%s/></failure>", condition);
    conn_flush(s->conn);
}

static void on_sasl_auth(s2s_in *s, const tern_xml *x)
{
    const char *mech = xml_attr(x, "mechanism");
    if (!mech || strcmp(mech, "EXTERNAL") != 0) {
        sasl_failure(s, "invalid-mechanism");
        return;
    }
    if (!s->cert_valid || !s->local || s->sasl_done) {
        sasl_failure(s, "not-authorized");
        return;
    }
    /* XEP-0178 §2 step 7: the authorization identity, when given, must be the domain the
     * certificate was checked for ("=" or nothing: that domain). */
    const char *text = xml_text(x);
    if (text && *text && strcmp(text, "=") != 0) {
        gnutls_datum_t in = { (unsigned char *)text, (unsigned)strlen(text) }, authzid;
        if (gnutls_base64_decode2(&in, &authzid) < 0) {
            sasl_failure(s, "incorrect-encoding");
            return;
        }
        char *claimed = xstrndup((const char *)authzid.data, authzid.size);
        gnutls_free(authzid.data);
        char *prepared = prep_domain(claimed);
        bool same = prepared && !strcmp(prepared, s->peer);
        free(claimed);
        free(prepared);
        if (!same) {
            sasl_failure(s, "invalid-authzid");
            return;
        }
    }
    log_info(s->id, "s2s: %s authenticated by certificate (SASL EXTERNAL) for %s", s->peer,
             s->local);
    buf_append_str(conn_outbuf(s->conn), "<success xmlns='" NS_SASL "'/>");
    conn_flush(s->conn);
    add_authed(s, s->local, s->peer);
    s->sasl_done = true;
    /* RFC 6120 §6.4.6: the peer opens a new stream, without the old one's state. */
    stream_parser_reset(s->parser);
}

static void on_db_result(s2s_in *s, const tern_xml *x)
{
    char *remote = prep_domain(xml_attr(x, "from"));
    char *local = prep_domain(xml_attr(x, "to"));
    const char *key = xml_text(x);
    char why[256];
    if (!remote || !local) {
        stream_error(s, STREAM_ERR_IMPROPER_ADDRESSING, "db:result needs 'from' and 'to'");
    } else if (!is_ours(local)) {
        stream_error(s, STREAM_ERR_HOST_UNKNOWN, "we do not serve that domain");
    } else if (is_ours(remote)) {
        stream_error(s, STREAM_ERR_INVALID_FROM, "that domain is ours");
    } else if (!server.cfg->s2s_dialback) {
        stream_error(s, STREAM_ERR_NOT_AUTHORIZED, "dialback is disabled here");
    } else if (!key || !*key) {
        stream_error(s, STREAM_ERR_BAD_FORMAT, "db:result without a key");
    } else if (config_s2s_requires_certificate(server.cfg, remote) &&
               !cert_valid_for(s, remote, why, sizeof why)) {
        log_info(s->id, "s2s: %s needs a valid certificate for dialback, and has none: %s",
                 remote, why);
        stream_error(s, STREAM_ERR_POLICY_VIOLATION, "a valid certificate is required");
    } else {
        log_info(s->id, "s2s: %s claims to be %s (dialback); asking it", conn_peer(s->conn),
                 remote);
        s2s_out_verify(local, remote, s->stream_id, key, s->id, s2s_in_verified);
    }
    free(remote);
    free(local);
}

static void on_db_verify(s2s_in *s, const tern_xml *x)
{
    /* The receiving server (from) asks us, the authoritative server (to), about a key we
     * generated as originating server for its stream `id`. */
    const char *receiving = xml_attr(x, "from"), *ours = xml_attr(x, "to");
    const char *id = xml_attr(x, "id"), *key = xml_text(x);
    if (!receiving || !ours || !id) {
        stream_error(s, STREAM_ERR_IMPROPER_ADDRESSING, "db:verify needs from, to and id");
        return;
    }
    if (!is_ours(ours)) {
        stream_error(s, STREAM_ERR_HOST_UNKNOWN, "we do not serve that domain");
        return;
    }
    char expected[65];
    s2s_dialback_key(receiving, ours, id, expected);
    bool valid = key && strlen(key) == 64 && !strcmp(key, expected);
    log_info(s->id, "s2s: %s asks about our key for %s: %s", receiving, ours,
             valid ? "valid" : "invalid");
    s2s_write_dialback(s->conn, "verify", ours, receiving, id, valid ? "valid" : "invalid", NULL);
}

void s2s_in_verified(uint64_t in_id, const char *local, const char *remote, bool valid)
{
    s2s_in *s = streams;
    while (s && s->id != in_id)
        s = s->next;
    if (!s || s->closed)
        return;
    log_info(s->id, "s2s: dialback for %s -> %s: %s", remote, local, valid ? "valid" : "invalid");
    s2s_write_dialback(s->conn, "result", local, remote, NULL, valid ? "valid" : "invalid", NULL);
    if (valid)
        add_authed(s, local, remote);
}

/* ---- stanzas ---- */

static void on_peer_stanza(s2s_in *s, tern_xml *x)
{
    tern_jid from = { 0 }, to = { 0 };
    const char *why;
    const char *from_text = xml_attr(x, "from"), *to_text = xml_attr(x, "to");
    if (!from_text || jid_parse(from_text, &from, &why) != 0 ||
        !is_authed(s, NULL, from.domain)) {
        /* RFC 6120 §4.9.3.9: a 'from' the stream did not authenticate. */
        stream_error(s, STREAM_ERR_INVALID_FROM, "the 'from' domain is not authenticated here");
    } else if (!to_text || jid_parse(to_text, &to, &why) != 0 || !is_ours(to.domain)) {
        stream_error(s, STREAM_ERR_HOST_UNKNOWN, "the 'to' domain is not served here");
    } else if (!is_authed(s, to.domain, from.domain)) {
        stream_error(s, STREAM_ERR_NOT_AUTHORIZED, "dialback was not done for this pair");
    } else {
        log_debug(s->id, "s2s: <%s/> from %s to %s", xml_name(x), from.domain, to.domain);
        tern_xml *stanza = s2s_import_stanza(x);
        x = NULL;
        if (stanza)
            router_route(stanza, NULL);
    }
    jid_free(&from);
    jid_free(&to);
    if (x)
        xml_unref(x);
}

/* ---- the peer's stream ---- */

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    s2s_in *s = ctx;
    const char *to = xml_attr(header, "to");
    const char *from = xml_attr(header, "from");
    if (strcmp(default_ns, NS_SERVER) != 0) {
        stream_error(s, STREAM_ERR_INVALID_NAMESPACE, "this port serves jabber:server");
        return;
    }
    char *local = prep_domain(to);
    if (to && (!local || !is_ours(local))) {
        free(local);
        send_header(s, NULL, from);
        stream_error(s, STREAM_ERR_HOST_UNKNOWN, "we do not serve that domain");
        return;
    }
    send_header(s, local, from);
    free(s->local);
    s->local = local;
    free(s->peer);
    s->peer = prep_domain(from);
    tern_xml *features = xml_new("features", NS_STREAMS);
    if (!s->tls) {
        tern_xml *tls = xml_add_child(features, "starttls", NS_TLS);
        xml_add_child(tls, "required", NS_TLS);
    } else if (!s->sasl_done) {
        char why[256] = "the stream header has no 'from'";
        s->cert_valid = s->peer && cert_valid_for(s, s->peer, why, sizeof why);
        log_info(s->id, "s2s: certificate of %s: %s", s->peer ? s->peer : conn_peer(s->conn),
                 s->cert_valid ? "valid" : why);
        if (s->cert_valid && s->local) {
            tern_xml *mechs = xml_add_child(features, "mechanisms", NS_SASL);
            tern_xml *m = xml_add_child(mechs, "mechanism", NS_SASL);
            xml_add_text(m, "EXTERNAL", 8);
        }
    }
    if (s->tls && server.cfg->s2s_dialback) {
        tern_xml *db = xml_add_child(features, "dialback", NS_DIALBACK_FEATURE);
        xml_add_child(db, "errors", NS_DIALBACK_FEATURE);
    }
    tern_buf *out = conn_outbuf(s->conn);
    buf_append_str(out, "<stream:features>");
    for (const tern_xml *c = xml_first_element(features); c; c = xml_next_element(c))
        xml_serialize(c, NS_SERVER, out);
    buf_append_str(out, "</stream:features>");
    conn_flush(s->conn);
    xml_unref(features);
}

static void on_stanza(void *ctx, tern_xml *x)
{
    s2s_in *s = ctx;
    if (s->closed) {
        xml_unref(x);
        return;
    }
    if (!s->tls) {
        if (xml_is(x, "starttls", NS_TLS)) {
            conn_write(s->conn, "<proceed xmlns='" NS_TLS "'/>", 16 + strlen(NS_TLS) + 3);
            stream_parser_reset(s->parser);
            s->handshaking = true;
            if (conn_start_tls_s2s(s->conn, server.tls) != 0)
                end_stream(s);
        } else {
            stream_error(s, STREAM_ERR_POLICY_VIOLATION, "STARTTLS is required");
        }
    } else if (xml_is(x, "auth", NS_SASL)) {
        on_sasl_auth(s, x);
    } else if (xml_is(x, "result", NS_DIALBACK)) {
        on_db_result(s, x);
    } else if (xml_is(x, "verify", NS_DIALBACK)) {
        on_db_verify(s, x);
    } else if (!strcmp(xml_ns(x), NS_SERVER) &&
               (!strcmp(xml_name(x), "message") || !strcmp(xml_name(x), "presence") ||
                !strcmp(xml_name(x), "iq"))) {
        on_peer_stanza(s, x);
        return;
    } else if (xml_is(x, "error", NS_STREAMS)) {
        const tern_xml *cond = xml_first_element(x);
        log_info(s->id, "s2s: stream error from the peer: %s", cond ? xml_name(cond) : "?");
        end_stream(s);
    } else {
        stream_error(s, STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
    }
    xml_unref(x);
}

static void on_close(void *ctx)
{
    s2s_in *s = ctx;
    if (s->closed)
        return;
    conn_write(s->conn, "</stream:stream>", 16);
    end_stream(s);
}

static void on_parse_error(void *ctx, tern_stream_error cond, const char *text)
{
    stream_error(ctx, cond, text);
}

static const stream_parser_callbacks parser_callbacks = {
    on_open, on_stanza, on_close, on_parse_error,
};

/* ---- the connection ---- */

static void on_data(void *ctx, const char *data, size_t len)
{
    s2s_in *s = ctx;
    if (s->closed || s->handshaking || s->dead)
        return;
    s->feeding++;
    stream_parser_feed(s->parser, data, len);
    s->feeding--;
    if (s->dead && !s->feeding)
        in_free(s);
}

static void on_tls_ready(void *ctx)
{
    s2s_in *s = ctx;
    s->handshaking = false;
    s->tls = true;
}

static void on_closed(void *ctx, const char *reason)
{
    s2s_in *s = ctx;
    log_info(s->id, "s2s: incoming stream from %s ended: %s", conn_peer(s->conn), reason);
    in_destroy(s);
}

static void on_send_overflow(void *ctx, const char *why)
{
    stream_error(ctx, STREAM_ERR_POLICY_VIOLATION, why);
}

static const conn_handlers conn_callbacks = {
    .on_data = on_data,
    .on_tls_ready = on_tls_ready,
    .on_closed = on_closed,
    .on_send_overflow = on_send_overflow,
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s2s_in *s = arg;
    stream_error(s, STREAM_ERR_CONNECTION_TIMEOUT, "not authenticated in time");
}

void s2s_accept(int fd)
{
    if (server.stopping) {
        close(fd);
        return;
    }
    char peer[64], key[ADDR_KEY_LEN];
    socket_peer_name(fd, peer, sizeof peer);
    if (!addr_key_from_peer(peer, key))
        key[0] = '\0';
    if (!peer_limits)
        peer_limits = addr_limits_new();
    addr_limit_settings limits = peer_limit_settings();
    const char *why;
    if (!addr_limits_allow(peer_limits, key, &limits, &why)) {
        addr_limits_log_refusal(peer_limits, "s2s", peer, why);
        close(fd);
        return;
    }
    s2s_in *s = xcalloc(1, sizeof *s);
    memcpy(s->addr_key, key, sizeof key);
    addr_limits_add(peer_limits, key);
    s->id = server_next_id();
    s->conn = conn_new(server.base, fd, &conn_callbacks, s, s->id);
    const config_send_queue *q = &server.cfg->s2s_send_queue;
    conn_set_send_limits(s->conn, &(conn_send_limits){ q->high_water, q->max, q->timeout });
    s->parser = stream_parser_new(&parser_callbacks, s, server.cfg->s2s_max_stanza_size,
                                  MAX_DEPTH);
    s->timer = evtimer_new(server.base, on_timer, s);
    struct timeval tv = { S2S_HANDSHAKE_SECONDS * 2, 0 };
    event_add(s->timer, &tv);
    s->next = streams;
    if (streams)
        streams->prev = s;
    streams = s;
    log_info(s->id, "s2s: incoming connection from %s", conn_peer(s->conn));
}

void s2s_in_free_all(void)
{
    while (streams)
        in_destroy(streams);
    addr_limits_free(peer_limits);
    peer_limits = NULL;
}
