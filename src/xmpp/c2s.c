/* c2s.c — client streams (RFC 6120 §4–§7): the negotiation of one client stream, whatever
 * carries it. One struct c2s per client link (tern/c2s.h: TCP, WebSocket, BOSH).
 *
 * Life of a stream: [direct TLS handshake] → header → features → STARTTLS → restart → header →
 * SASL → restart → header → bind → stanzas. Each restart makes the link expect a new header;
 * the link and this struct live on. A stream error always goes out as the link's stream error
 * and close, after a header of ours if none was sent yet (RFC 6120 §4.9.1.2), and then the
 * transport ends. The session (what the router sees) exists from resource binding until the
 * stream ends. This file never writes stream syntax: the link frames everything. */
#include "xmpp/c2s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/scram.h"
#include "core/util.h"
#include "host/hooks.h"
#include "net/addr_limits.h"
#include "process/server.h"
#include "tern/c2s.h"
#include "xmpp/router.h"
#include "xmpp/sasl.h"
#include "xmpp/session.h"

/* RFC 6120 §6.4.5: at least 2 and at most 5 attempts; the delay slows password guessing. */
#define SASL_MAX_FAILURES 3
#define SASL_FAILURE_DELAY_MS 1000

typedef enum c2s_phase {
    C2S_WAIT_HEADER, /* waiting for the (restarted) stream header; a TLS handshake that comes
                      * first (direct TLS, or after <proceed/>) is the link's business */
    C2S_OPEN,        /* header exchanged: negotiating features or exchanging stanzas */
    C2S_CLOSING,     /* our close is out; waiting for the link to end */
} c2s_phase;

struct c2s {
    uint64_t id;
    const c2s_link *link;
    void *link_ctx;
    c2s_phase phase;
    bool header_sent;
    bool plus_offered;
    bool authenticated;
    char addr_key[ADDR_KEY_LEN]; /* what the address limits count it under; "" if unknown */
    tern_host *host;
    char stream_id[17];
    char *client_from;         /* 'from' of the client's header, echoed as our 'to' */
    sasl_exchange *sasl;
    unsigned sasl_failures;
    char *unbindable_user;     /* sasl_unbindable_user() of a failed attempt on this TLS link */
    const char *delayed_failure; /* SASL condition waiting out the delay */
    char *node;                /* authenticated localpart */
    tern_session *session;
    struct event *login_timer; /* until a resource is bound */
    struct event *delay_timer; /* made at the first failed authentication */
    c2s *prev, *next;
};

/* Per-address counts of every client stream, whatever its transport (addr_limits.h). */
static addr_limits *client_limits;

static addr_limit_settings client_limit_settings(void)
{
    const config *cfg = server.cfg;
    return (addr_limit_settings){
        .max_per_address = cfg->c2s_max_connections_per_address,
        .max_unauthenticated_per_address = cfg->c2s_max_unauthenticated_per_address,
        .max_unauthenticated = cfg->c2s_max_unauthenticated,
        .logins_per_second = cfg->c2s_logins_per_second_per_address,
    };
}

/* ---- writing (everything goes through the link) ---- */

static void send_xml(c2s *c, const tern_xml *x) { c->link->send(c->link_ctx, x); }

static bool link_encrypted(c2s *c) { return c->link->encrypted(c->link_ctx); }

static int link_channel_binding(void *ctx, const char *type, gnutls_datum_t *out)
{
    c2s *c = ctx;
    return c->link->channel_binding(c->link_ctx, type, out);
}

/* What SASL may bind to: nothing before TLS, nor over a link that has no single TLS session. */
static const sasl_channel *link_channel(c2s *c, sasl_channel *storage)
{
    if (!c->link->channel_binding || !link_encrypted(c))
        return NULL;
    *storage = (sasl_channel){ link_channel_binding, c };
    return storage;
}

static void send_header(c2s *c)
{
    random_token(c->stream_id, sizeof c->stream_id - 1);
    c2s_stream_header h = {
        .id = c->stream_id,
        .from = c->host ? c->host->name : NULL,
        .to = c->client_from,
        .version = "1.0",
        .lang = "en",
    };
    c->link->open(c->link_ctx, &h);
    c->header_sent = true;
}

/* The session is gone from the router the moment the stream ends, not when the socket does. */
static void end_session(c2s *c)
{
    if (c->session) {
        session_free(c->session);
        c->session = NULL;
    }
}

/* After the link's close (or its failure to start TLS): nothing more goes to this client. */
static void stream_closed(c2s *c)
{
    c->phase = C2S_CLOSING;
    if (c->delay_timer)
        evtimer_del(c->delay_timer); /* a pending SASL failure has nobody to go to */
    c->delayed_failure = NULL;
    end_session(c);
}

void c2s_stream_error(c2s *c, tern_stream_error cond, const char *text)
{
    if (c->phase == C2S_CLOSING)
        return;
    if (!c->header_sent)
        send_header(c);
    log_info(c->id, "stream error <%s/>%s%s", stream_error_name(cond), text ? ": " : "",
             text ? text : "");
    tern_xml *err = stream_error_new(cond, text);
    c->link->stream_error(c->link_ctx, err);
    xml_unref(err);
    stream_closed(c);
}

/* ---- session transport ---- */

static void transport_send(void *ctx, const tern_xml *stanza)
{
    c2s *c = ctx;
    if (c->phase != C2S_CLOSING) {
        server.stanzas_out++;
        send_xml(c, stanza);
    }
}

static void transport_close(void *ctx, tern_stream_error cond, const char *text)
{
    c2s *c = ctx;
    /* The session was already unbound by whoever closes it; forget it here. */
    if (c->session) {
        session_free(c->session);
        c->session = NULL;
    }
    c2s_stream_error(c, cond, text);
}

static const session_transport c2s_transport = { transport_send, transport_close };

/* ---- features ---- */

static void send_features(c2s *c)
{
    tern_xml *features = xml_new("features", NS_STREAMS);
    bool tls = link_encrypted(c);
    if (!c->authenticated) {
        if (!tls && server.tls && c->link->start_tls) {
            tern_xml *starttls = xml_add_child(features, "starttls", NS_TLS);
            if (server.cfg->c2s_require_tls)
                xml_add_child(starttls, "required", NS_TLS);
        }
        c->plus_offered = false;
        if (tls || !server.cfg->c2s_require_tls)
            c->plus_offered = sasl_offer(features, tls, link_channel(c, &(sasl_channel){ 0 }));
        if (c->host) {
            tern_preauth stream = { c->host, c->link->peer(c->link_ctx),
                                    tls || !server.cfg->c2s_require_tls };
            hooks_run_preauth_features(&stream, features);
        }
    } else {
        xml_add_child(features, "bind", NS_BIND);
        /* RFC 3921's session establishment, optional per RFC 6121 and
         * draft-cridland-xmpp-session: old clients still send it. */
        xml_add_child(xml_add_child(features, "session", NS_SESSION), "optional", NS_SESSION);
        hooks_run_features(c->host, NULL, features);
    }
    c->link->send_features(c->link_ctx, features);
    xml_unref(features);
}

/* ---- the stream header ---- */

/* RFC 6120 §4.7.5: major version 1 is required; a higher minor is fine (we answer 1.0). */
static bool version_ok(const char *v)
{
    if (!v)
        return false;
    char *end;
    long major = strtol(v, &end, 10);
    return end != v && *end == '.' && major >= 1;
}

void c2s_received_header(c2s *c, const tern_xml *header, const char *default_ns)
{
    if (c->phase == C2S_CLOSING)
        return;
    const char *to = xml_attr(header, "to");
    const char *from = xml_attr(header, "from");
    free(c->client_from);
    c->client_from = NULL;
    tern_jid from_jid;
    const char *why;
    if (from && jid_parse(from, &from_jid, &why) == 0) {
        c->client_from = xstrdup(from_jid.full);
        jid_free(&from_jid);
    }
    char *domain = NULL;
    tern_host *host = NULL;
    if (to && jid_prep_domain(to, &domain) == 0)
        host = server_find_host(domain);
    free(domain);
    if (host && (!c->host || c->host == host))
        c->host = host;
    else
        host = NULL;
    send_header(c);
    c->phase = C2S_OPEN;

    if (strcmp(default_ns, NS_CLIENT) != 0) {
        c2s_stream_error(c, STREAM_ERR_INVALID_NAMESPACE, "the content namespace must be "
                         "jabber:client");
    } else if (!version_ok(xml_attr(header, "version"))) {
        c2s_stream_error(c, STREAM_ERR_UNSUPPORTED_VERSION, "XMPP 1.0 streams only");
    } else if (!host) {
        c2s_stream_error(c, STREAM_ERR_HOST_UNKNOWN, to ? "this server does not serve that "
                         "domain" : "the stream header has no 'to'");
    } else if (from && !c->client_from) {
        c2s_stream_error(c, STREAM_ERR_INVALID_FROM, "the 'from' is not a valid JID");
    } else {
        send_features(c);
    }
}

/* ---- STARTTLS ---- */

static void send_tls_element(c2s *c, const char *name)
{
    tern_xml *x = xml_new(name, NS_TLS);
    send_xml(c, x);
    xml_unref(x);
}

static void handle_starttls(c2s *c)
{
    if (!c->link->start_tls || link_encrypted(c) || !server.tls || c->authenticated) {
        /* RFC 6120 §5.4.2.2: <failure/>, then the stream ends. */
        send_tls_element(c, "failure");
        c->link->close(c->link_ctx);
        stream_closed(c);
        return;
    }
    send_tls_element(c, "proceed");
    if (c->link->start_tls(c->link_ctx) != 0) {
        stream_closed(c); /* the link has ended the transport */
        return;
    }
    c->phase = C2S_WAIT_HEADER;
    c->header_sent = false;
    c->link->restart(c->link_ctx); /* nothing the client sent before TLS is kept */
}

/* ---- SASL ---- */

static void send_sasl_failure(c2s *c, const char *condition)
{
    tern_xml *f = xml_new("failure", NS_SASL);
    xml_add_child(f, condition, NS_SASL);
    send_xml(c, f);
    xml_unref(f);
}

static void send_sasl_data(c2s *c, const char *element, const char *data, size_t len)
{
    tern_xml *x = xml_new(element, NS_SASL);
    if (data) {
        char *b64 = scram_base64_encode((const unsigned char *)data, len);
        xml_add_text(x, b64, strlen(b64));
        free(b64);
    }
    send_xml(c, x);
    xml_unref(x);
}

static void on_failure_delay(evutil_socket_t fd, short what, void *arg)
{
    c2s *c = arg;
    (void)fd;
    (void)what;
    send_sasl_failure(c, c->delayed_failure);
    c->delayed_failure = NULL;
    if (c->sasl_failures >= SASL_MAX_FAILURES) {
        c2s_stream_error(c, STREAM_ERR_POLICY_VIOLATION, "too many failed authentication attempts");
        return;
    }
    c->link->pause_reading(c->link_ctx, false);
}

static void sasl_failed(c2s *c, const char *condition)
{
    bool credentials = c->sasl && sasl_failure_is_credentials(c->sasl);
    const char *unbindable = c->sasl ? sasl_unbindable_user(c->sasl) : NULL;
    if (unbindable) {
        free(c->unbindable_user);
        c->unbindable_user = xstrdup(unbindable);
    }
    if (!credentials && c->sasl)
        log_debug(c->id, "%s refused: %s%s", sasl_mechanism(c->sasl), condition,
                  unbindable ? " (a tls-unique binding over TLS 1.3: cannot be checked)" : "");
    sasl_free(c->sasl);
    c->sasl = NULL;
    if (!credentials) {
        send_sasl_failure(c, condition);
        return;
    }
    c->sasl_failures++;
    server.auth_failures++;
    log_info(c->id, "authentication failed on %s (%u of %d)", c->host->name, c->sasl_failures,
             SASL_MAX_FAILURES);
    /* Answer later and read nothing meanwhile. */
    c->delayed_failure = condition;
    c->link->pause_reading(c->link_ctx, true);
    struct timeval tv = { SASL_FAILURE_DELAY_MS / 1000, (SASL_FAILURE_DELAY_MS % 1000) * 1000 };
    if (!c->delay_timer)
        c->delay_timer = evtimer_new(server.base, on_failure_delay, c);
    evtimer_add(c->delay_timer, &tv);
}

static void sasl_succeeded(c2s *c, const char *final, size_t len)
{
    c->node = xstrdup(sasl_node(c->sasl));
    log_info(c->id, "authenticated as %s@%s with %s", c->node, c->host->name,
             sasl_mechanism(c->sasl));
    sasl_free(c->sasl);
    c->sasl = NULL;
    c->authenticated = true;
    addr_limits_authenticated(client_limits, c->addr_key);
    send_sasl_data(c, "success", final, len);
    c->phase = C2S_WAIT_HEADER;
    c->header_sent = false;
    c->link->restart(c->link_ctx);
}

static void sasl_advance(c2s *c, const tern_xml *x)
{
    const char *text = xml_text(x);
    unsigned char *data = NULL;
    size_t len = 0;
    /* RFC 6120 §6.4.2: "=" is an empty response; an empty element means "no data". */
    if (*text && strcmp(text, "=") != 0 &&
        scram_base64_decode(text, strlen(text), &data, &len) != 0) {
        sasl_free(c->sasl);
        c->sasl = NULL;
        send_sasl_failure(c, "incorrect-encoding");
        return;
    }
    char *out = NULL;
    size_t out_len = 0;
    const char *failure = "not-authorized";
    switch (sasl_step(c->sasl, data ? data : (const unsigned char *)"", len, &out, &out_len,
                      &failure)) {
    case SASL_CONTINUE:
        send_sasl_data(c, "challenge", out, out_len);
        break;
    case SASL_SUCCESS:
        sasl_succeeded(c, out, out_len);
        break;
    case SASL_FAILURE:
        sasl_failed(c, failure);
        break;
    }
    free(out);
    free(data);
}

static void handle_sasl(c2s *c, const tern_xml *x)
{
    const char *name = xml_name(x);
    if (c->authenticated) {
        c2s_stream_error(c, STREAM_ERR_POLICY_VIOLATION, "already authenticated");
        return;
    }
    if (strcmp(name, "auth") == 0) {
        sasl_free(c->sasl);
        c->sasl = NULL;
        if (server.cfg->c2s_require_tls && !link_encrypted(c)) {
            send_sasl_failure(c, "encryption-required");
            return;
        }
        addr_limit_settings limits = client_limit_settings();
        if (!addr_limits_login(client_limits, c->addr_key, &limits)) {
            /* RFC 6120 §6.5.12; XEP-0205 §3: login attempts per address are rate-limited. */
            log_info(c->id, "too many logins from %s; refusing this one for now", c->addr_key);
            send_sasl_failure(c, "temporary-auth-failure");
            return;
        }
        const char *mech = xml_attr(x, "mechanism");
        const char *failure = "invalid-mechanism";
        if (mech)
            c->sasl = sasl_start(mech, c->host, link_encrypted(c),
                                 link_channel(c, &(sasl_channel){ 0 }),
                                 c->plus_offered, c->unbindable_user, &failure);
        if (!c->sasl) {
            send_sasl_failure(c, failure);
            return;
        }
        sasl_advance(c, x);
    } else if (strcmp(name, "response") == 0) {
        if (!c->sasl) {
            send_sasl_failure(c, "malformed-request");
            return;
        }
        sasl_advance(c, x);
    } else if (strcmp(name, "abort") == 0) {
        sasl_free(c->sasl);
        c->sasl = NULL;
        send_sasl_failure(c, "aborted");
    } else {
        c2s_stream_error(c, STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
    }
}

/* ---- before authentication: what modules claim (in-band registration) ---- */

static bool is_iq_request(const tern_xml *x)
{
    const char *type = xml_attr(x, "type");
    return strcmp(xml_name(x), "iq") == 0 && strcmp(xml_ns(x), NS_CLIENT) == 0 && type &&
           (!strcmp(type, "get") || !strcmp(type, "set"));
}

/* Answers an iq before authentication; false when nobody may (the stream then ends). */
static bool handle_preauth_iq(c2s *c, const tern_xml *iq)
{
    if (!c->host)
        return false;
    tern_preauth stream = { c->host, c->link->peer(c->link_ctx),
                            link_encrypted(c) || !server.cfg->c2s_require_tls };
    bool claimed;
    tern_xml *reply = hooks_run_preauth_iq(&stream, iq, &claimed);
    if (!reply && xml_child(iq, "query", NS_REGISTER))
        reply = stanza_error_reply(iq, STANZA_ERR_SERVICE_UNAVAILABLE,
                                   "registration is not available here");
    else if (!reply)
        return false;
    send_xml(c, reply);
    xml_unref(reply);
    return true;
}

/* ---- resource binding ---- */

static void send_iq_error(c2s *c, const tern_xml *iq, tern_stanza_error cond, const char *text)
{
    tern_xml *reply = stanza_error_reply(iq, cond, text);
    if (reply) {
        send_xml(c, reply);
        xml_unref(reply);
    }
}

static void handle_bind(c2s *c, const tern_xml *iq, const tern_xml *bind)
{
    const char *type = xml_attr(iq, "type");
    if (!type || strcmp(type, "set") != 0) {
        send_iq_error(c, iq, STANZA_ERR_BAD_REQUEST, NULL);
        return;
    }
    if (c->session) {
        /* One resource per stream (RFC 6120 §7.7.2.1 leaves more to extensions). */
        send_iq_error(c, iq, STANZA_ERR_NOT_ALLOWED, "a resource is already bound");
        return;
    }
    const char *resource = xml_child_text(bind, "resource", NS_BIND);
    tern_session *s = session_new(c->host, c->id, &c2s_transport, c);
    const char *why = NULL;
    tern_stanza_error cond;
    if (session_bind(s, c->node, resource, server.cfg->c2s_max_sessions_per_account, &cond,
                     &why) != 0) {
        session_free(s);
        send_iq_error(c, iq, cond, why);
        return;
    }
    c->session = s;
    /* Idle sessions are most of a server's sessions: they keep no timer they do not need. */
    event_free(c->login_timer);
    c->login_timer = NULL;
    log_info(c->id, "bound %s", s->jid.full);
    tern_xml *reply = xml_new("iq", NS_CLIENT);
    xml_set_attr(reply, "type", "result");
    if (xml_attr(iq, "id"))
        xml_set_attr(reply, "id", xml_attr(iq, "id"));
    tern_xml *jid = xml_add_child(xml_add_child(reply, "bind", NS_BIND), "jid", NS_BIND);
    xml_add_text(jid, s->jid.full, strlen(s->jid.full));
    send_xml(c, reply);
    xml_unref(reply);
}

/* The legacy session iq (RFC 3921 §3): a plain success. */
static void handle_session_iq(c2s *c, const tern_xml *iq)
{
    tern_xml *reply = xml_new("iq", NS_CLIENT);
    xml_set_attr(reply, "type", "result");
    if (xml_attr(iq, "id"))
        xml_set_attr(reply, "id", xml_attr(iq, "id"));
    send_xml(c, reply);
    xml_unref(reply);
}

/* ---- stanzas ---- */

static bool is_stanza(const tern_xml *x)
{
    const char *name = xml_name(x);
    return strcmp(xml_ns(x), NS_CLIENT) == 0 &&
           (!strcmp(name, "message") || !strcmp(name, "presence") || !strcmp(name, "iq"));
}

/* RFC 6120 §8.1.2.1: the server stamps the full JID; a 'from' naming anyone else is an error. */
static bool stamp_from(c2s *c, tern_xml *x)
{
    const char *from = xml_attr(x, "from");
    if (from) {
        tern_jid j;
        const char *why;
        if (jid_parse(from, &j, &why) != 0)
            return false;
        bool ok = jid_equal_bare(&j, &c->session->jid) &&
                  (!j.resource || strcmp(j.resource, c->session->jid.resource) == 0);
        jid_free(&j);
        if (!ok)
            return false;
    }
    xml_set_attr(x, "from", c->session->jid.full);
    return true;
}

static void handle_bound_stanza(c2s *c, tern_xml *x)
{
    if (strcmp(xml_name(x), "iq") == 0) {
        const tern_xml *bind = xml_child(x, "bind", NS_BIND);
        if (bind) {
            handle_bind(c, x, bind);
            xml_unref(x);
            return;
        }
        if (xml_child(x, "session", NS_SESSION) && !xml_attr(x, "to")) {
            handle_session_iq(c, x);
            xml_unref(x);
            return;
        }
    }
    if (!stamp_from(c, x)) {
        xml_unref(x);
        c2s_stream_error(c, STREAM_ERR_INVALID_FROM, "'from' does not match the session");
        return;
    }
    server.stanzas_in++;
    router_route(x, c->session);
}

void c2s_received_element(c2s *c, tern_xml *x)
{
    if (c->phase != C2S_OPEN) {
        xml_unref(x);
        return;
    }
    const char *ns = xml_ns(x);
    if (c->delayed_failure) {
        /* Reading is paused during the delay, but a client may have pipelined more in the
         * same read: another attempt now would turn the delay and the retry limit into
         * nothing (RFC 6120 §6.4.5). Nothing may come before our answer. */
        c2s_stream_error(c, STREAM_ERR_POLICY_VIOLATION,
                         "wait for the answer to the last authentication attempt");
    } else if (strcmp(ns, NS_TLS) == 0 && strcmp(xml_name(x), "starttls") == 0) {
        handle_starttls(c);
    } else if (strcmp(ns, NS_SASL) == 0) {
        handle_sasl(c, x);
    } else if (!c->authenticated) {
        /* RFC 6120 §4.9.3.12 */
        if (!is_iq_request(x) || !handle_preauth_iq(c, x))
            c2s_stream_error(c, STREAM_ERR_NOT_AUTHORIZED, "authenticate first");
    } else if (!is_stanza(x)) {
        /* Stream-level elements of extensions (XEP-0352 <inactive/>, XEP-0198 <r/>) go to the
         * modules that claim them once a resource is bound. */
        if (!c->session || !c->session->bound ||
            hooks_run_element(c->session->host, c->session, x) != TERN_HANDLED)
            c2s_stream_error(c, STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
    } else if (!c->session) {
        const tern_xml *bind = strcmp(xml_name(x), "iq") == 0 ? xml_child(x, "bind", NS_BIND)
                                                               : NULL;
        if (bind)
            handle_bind(c, x, bind);
        else
            c2s_stream_error(c, STREAM_ERR_NOT_AUTHORIZED, "bind a resource first");
    } else {
        handle_bound_stanza(c, x); /* takes x */
        return;
    }
    xml_unref(x);
}

void c2s_received_close(c2s *c)
{
    if (c->phase == C2S_CLOSING)
        return;
    log_debug(c->id, "client closed its stream");
    if (!c->header_sent)
        send_header(c);
    c->link->close(c->link_ctx);
    stream_closed(c);
}

/* ---- life of a c2s ---- */

static void on_login_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    c2s_stream_error(arg, STREAM_ERR_CONNECTION_TIMEOUT, "no resource was bound in time");
}

bool c2s_accepting(const char *peer, const char **why)
{
    if (server.stopping) {
        *why = "shutting down";
        return false;
    }
    if (!client_limits)
        client_limits = addr_limits_new();
    char key[ADDR_KEY_LEN];
    if (!addr_key_from_peer(peer, key))
        key[0] = '\0';
    addr_limit_settings limits = client_limit_settings();
    if (server.n_clients >= server.cfg->c2s_max_connections)
        *why = "c2s max_connections reached";
    else if (addr_limits_allow(client_limits, key, &limits, why))
        return true;
    addr_limits_log_refusal(client_limits, "client", peer, *why);
    return false;
}

c2s *c2s_new(const c2s_link *link, void *link_ctx, const char *peer)
{
    c2s *c = xcalloc(1, sizeof *c);
    c->id = server_next_id();
    c->link = link;
    c->link_ctx = link_ctx;
    if (!client_limits)
        client_limits = addr_limits_new();
    if (!addr_key_from_peer(peer, c->addr_key))
        c->addr_key[0] = '\0';
    addr_limits_add(client_limits, c->addr_key);
    c->phase = C2S_WAIT_HEADER;
    c->login_timer = evtimer_new(server.base, on_login_timeout, c);
    struct timeval tv = { server.cfg->c2s_login_timeout, 0 };
    evtimer_add(c->login_timer, &tv);
    c->next = server.clients;
    if (c->next)
        c->next->prev = c;
    server.clients = c;
    server.n_clients++;
    return c;
}

uint64_t c2s_id(const c2s *c) { return c->id; }

static void c2s_destroy(c2s *c)
{
    end_session(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        server.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    server.n_clients--;
    addr_limits_release(client_limits, c->addr_key, c->authenticated);
    if (c->login_timer)
        event_free(c->login_timer);
    if (c->delay_timer)
        event_free(c->delay_timer);
    sasl_free(c->sasl);
    c->link->free(c->link_ctx);
    free(c->unbindable_user);
    free(c->client_from);
    free(c->node);
    free(c);
}

void c2s_link_ended(c2s *c, const char *reason)
{
    log_info(c->id, "connection closed: %s", reason ? reason : "done");
    c2s_destroy(c);
}

void c2s_free_all(void)
{
    while (server.clients)
        c2s_destroy(server.clients);
    addr_limits_free(client_limits);
    client_limits = NULL;
}

void c2s_shutdown_all(void)
{
    for (c2s *c = server.clients; c; c = c->next)
        c2s_stream_error(c, STREAM_ERR_SYSTEM_SHUTDOWN, "the server is stopping");
}

size_t tern_c2s_max_stanza_size(void) { return server.cfg->c2s_max_stanza_size; }
