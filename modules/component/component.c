/* component — external components (XEP-0114 Jabber Component Protocol): gateways, bots and
 * services that run as their own process, connect to a listener of the server, prove a
 * shared secret, and then serve a domain of their own (gateway.example.org).
 *
 * The components are the configuration's [component DOMAIN] sections, each with its secret
 * (read when the module loads: reload the module to apply a change). Each domain is served
 * from load on (tern_serve_domain()): stanzas to it go to
 * its component's stream while one is connected, and are bounced with <service-unavailable/>
 * (RFC 6120 §8.3.3.19) while none is (nothing is queued: a component that comes back asks
 * its peers again, as after any restart). A component's stanzas must come from its domain or
 * a JID at it (else <invalid-from/>, RFC 6120 §4.9.3.9) and be addressed; they are routed as
 * the host's own, to local users, to other components and, with s2s, to other servers. A
 * second component that authenticates for a domain replaces the first, which is ended with
 * <conflict/>. Streams that have not authenticated are bounded in number and in time.
 *
 * The protocol (XEP-0114 §3): the component opens a jabber:component:accept stream to its
 * domain; the server answers with a header carrying a fresh id; the component sends
 * <handshake>hex(SHA-1(id + secret))</handshake>; the server answers <handshake/> or ends the
 * stream with <not-authorized/>. There is no TLS in this protocol: the listener is on
 * loopback by default, and a component elsewhere should reach it through a tunnel. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <tern/conn.h>
#include <tern/module.h>
#include <tern/privilege.h>
#include <tern/stream.h>
#include <tern/util.h>

#define NS_COMPONENT "jabber:component:accept"
#define NS_PRIVILEGE "urn:xmpp:privilege:2"   /* XEP-0356 */
#define NS_FORWARD   "urn:xmpp:forward:0"     /* XEP-0297 */
#define ID_LEN 16
#define MAX_DEPTH 64

static const tern_setting_def component_settings[] = {
    { "listen", TERN_SETTING_STRING, "127.0.0.1:5347", 0, 0,
      "addresses components connect to (IP:port, several separated by spaces); keep it on "
      "loopback: the protocol has no TLS", NULL },
    { "max_unauthenticated", TERN_SETTING_UINT, "16", 1, 10000,
      "component streams that have not authenticated yet, at most", NULL },
    { "handshake_timeout", TERN_SETTING_UINT, "10", 1, 600,
      "seconds a component has to authenticate", NULL },
    { "max_stanza_size", TERN_SETTING_UINT, "1048576", 1024, 16777216,
      "bytes of one stanza from a component, at most", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

typedef struct component_state component_state;
typedef struct link link;

/* A configured domain: served from load on, with at most one authenticated stream. */
typedef struct component {
    component_state *st;
    char *domain;
    char *secret;
    char *roster;          /* XEP-0356 privileges: none, get, set, both */
    char *message;         /* none, outgoing */
    link *bound;           /* the authenticated stream, or NULL: stanzas to it bounce */
} component;

struct link {
    component_state *st;
    conn *c;
    stream_parser *parser;
    component *comp;       /* the domain its header asked for (set by the header) */
    bool authenticated;
    bool closing;
    char id[ID_LEN + 1];
    tern_timer *timeout;   /* the handshake's deadline, until authenticated */
    link *next;
};

struct component_state {
    tern_host *host;
    component_state *next_loaded;
    component *components;
    size_t n_components;
    link *links;           /* every open stream */
    size_t unauthenticated;
    /* Figures for /metrics (tern_metric_add). */
    unsigned long long stanzas_in, stanzas_out, bounced, refused;
};

/* ---- writing ---- */

static void write_str(link *l, const char *s)
{
    conn_write(l->c, s, strlen(s));
}

static void send_header(link *l, const char *from)
{
    char header[512];
    snprintf(header, sizeof header,
             "<?xml version='1.0'?><stream:stream xmlns='" NS_COMPONENT "' "
             "xmlns:stream='http://etherx.jabber.org/streams'%s%s%s id='%s'>",
             from ? " from='" : "", from ? from : "", from ? "'" : "", l->id);
    write_str(l, header);
}

static void link_free(link *l);

/* Ends the stream with a stream error (RFC 6120 §4.9) and closes it once sent. */
static void stream_error(link *l, tern_stream_error cond, const char *text)
{
    if (l->closing)
        return;
    log_info(conn_id(l->c), "component%s%s: stream error <%s/>: %s", l->comp ? " " : "",
             l->comp ? l->comp->domain : "", stream_error_name(cond), text ? text : "");
    tern_xml *err = stream_error_new(cond, text);
    tern_buf *out = conn_outbuf(l->c);
    buf_append_str(out, "<stream:error>");
    for (const tern_xml *x = xml_first_element(err); x; x = xml_next_element(x))
        xml_serialize(x, NS_COMPONENT, out);
    buf_append_str(out, "</stream:error></stream:stream>");
    xml_unref(err);
    l->closing = true;
    if (l->comp && l->comp->bound == l)
        l->comp->bound = NULL;
    conn_close(l->c); /* flushes, then on_closed */
}

/* A stanza of tern's (jabber:client) onto the component's stream: written with jabber:client
 * as the namespace in force, the stanza's elements carry no xmlns and read as the stream's. */
static void send_stanza(link *l, const tern_xml *stanza)
{
    xml_serialize(stanza, NS_CLIENT, conn_outbuf(l->c));
    conn_flush(l->c);
}

/* ---- stanzas to a component's domain ---- */

static bool is_request(const tern_xml *x)
{
    const char *type = xml_attr(x, "type");
    return xml_is(x, "iq", NS_CLIENT) && type &&
           (!strcmp(type, "get") || !strcmp(type, "set"));
}

static void to_component(const tern_stanza_event *ev, void *data)
{
    component *comp = data;
    if (comp->bound) {
        comp->st->stanzas_out++;
        send_stanza(comp->bound, ev->stanza);
        return;
    }
    comp->st->bounced++;
    /* Down: requests and messages bounce (errors and presence do not). */
    const char *type = xml_attr(ev->stanza, "type");
    bool message = xml_is(ev->stanza, "message", NS_CLIENT);
    if (is_request(ev->stanza) || (message && (!type || strcmp(type, "error") != 0)))
        tern_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE, "the service is not connected");
}

/* ---- the component's stream ---- */

static component *find_component(component_state *st, const char *domain)
{
    for (size_t i = 0; domain && i < st->n_components; i++)
        if (!strcasecmp(st->components[i].domain, domain))
            return &st->components[i];
    return NULL;
}

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    link *l = ctx;
    const char *to = xml_attr(header, "to");
    if (strcmp(default_ns, NS_COMPONENT) != 0) {
        send_header(l, NULL);
        stream_error(l, STREAM_ERR_INVALID_NAMESPACE, "this port serves " NS_COMPONENT);
        return;
    }
    l->comp = find_component(l->st, to);
    if (!l->comp) {
        send_header(l, NULL);
        stream_error(l, STREAM_ERR_HOST_UNKNOWN, "no component is configured for that domain");
        return;
    }
    send_header(l, l->comp->domain);
}

/* XEP-0114 §3: the handshake is hex(SHA-1(stream id + secret)); any case of hex is taken. */
static bool handshake_valid(const link *l, const char *text)
{
    size_t n = strlen(l->id) + strlen(l->comp->secret);
    char *input = xmalloc(n + 1);
    snprintf(input, n + 1, "%s%s", l->id, l->comp->secret);
    unsigned char digest[20];
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA1, input, n, digest);
    free(input);
    if (rc != 0 || strlen(text) != 40)
        return false;
    static const char hex[] = "0123456789abcdef";
    unsigned diff = 0;
    for (int i = 0; i < 20; i++) {
        diff |= (unsigned)(tolower((unsigned char)text[2 * i]) != hex[digest[i] >> 4]);
        diff |= (unsigned)(tolower((unsigned char)text[2 * i + 1]) != hex[digest[i] & 15]);
    }
    return diff == 0;
}

static component *find_component(component_state *st, const char *domain);

/* XEP-0356 §3: the privileges granted, told to the component as soon as it is connected. */
static void advertise_privileges(link *l)
{
    component *comp = l->comp;
    if (!strcmp(comp->roster, "none") && !strcmp(comp->message, "none"))
        return;
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_set_attr(m, "from", tern_host_name(l->st->host));
    xml_set_attr(m, "to", comp->domain);
    char id[ID_LEN + 1];
    random_token(id, ID_LEN);
    xml_set_attr(m, "id", id);
    tern_xml *privilege = xml_add_child(m, "privilege", NS_PRIVILEGE);
    const char *access[] = { "roster", "message" }, *type[] = { comp->roster, comp->message };
    for (int i = 0; i < 2; i++) {
        if (strcmp(type[i], "none") == 0)
            continue;
        tern_xml *perm = xml_add_child(privilege, "perm", NS_PRIVILEGE);
        xml_set_attr(perm, "access", access[i]);
        xml_set_attr(perm, "type", type[i]);
    }
    send_stanza(l, m);
    xml_unref(m);
}

/* The hosts the module is loaded on (one, as documented; the service needs the host's). */
static component_state *loaded;

/* Only a component's own domain speaks for it: its stanzas are from-checked on its stream,
 * and no one else may send from our domains. */
static bool privilege_allows(tern_host *host, const char *entity, const char *access,
                             const char *type)
{
    component *comp = NULL;
    for (component_state *st = loaded; st && !comp; st = st->next_loaded)
        if (st->host == host)
            comp = find_component(st, entity);
    if (!comp || strcmp(access, "roster") != 0)
        return false;
    return !strcmp(comp->roster, "both") || !strcmp(comp->roster, type);
}

/* The connected components that read rosters (get or both): they get the roster pushes
 * ("push" defaults to true for those types, XEP-0356 §4.1). */
static void privilege_each_reader(tern_host *host, const char *access,
                                  void (*fn)(void *ctx, const char *entity), void *ctx)
{
    if (strcmp(access, "roster") != 0)
        return;
    for (component_state *st = loaded; st; st = st->next_loaded) {
        if (st->host != host)
            continue;
        for (size_t i = 0; i < st->n_components; i++) {
            const component *comp = &st->components[i];
            if (comp->bound && (!strcmp(comp->roster, "get") || !strcmp(comp->roster, "both")))
                fn(ctx, comp->domain);
        }
    }
}

static const tern_privilege_api privilege_api = { privilege_allows, privilege_each_reader };

static void authenticated(link *l)
{
    component *comp = l->comp;
    l->authenticated = true;
    l->st->unauthenticated--;
    tern_timer_cancel(l->timeout);
    l->timeout = NULL;
    if (comp->bound) /* the newer stream takes over (XEP-0114 leaves it open; Prosody too) */
        stream_error(comp->bound, STREAM_ERR_CONFLICT, "another component connected for it");
    comp->bound = l;
    write_str(l, "<handshake/>");
    log_info(conn_id(l->c), "component %s connected from %s", comp->domain, conn_peer(l->c));
    advertise_privileges(l);
}

/* The 'from' of a component's stanza must be its domain or a JID at it. */
static bool from_its_domain(const link *l, const char *from)
{
    tern_jid j;
    const char *why;
    if (!from || jid_parse(from, &j, &why) != 0)
        return false;
    bool ok = !strcmp(j.domain, l->comp->domain);
    jid_free(&j);
    return ok;
}

/* A stanza in jabber:component:accept, as the jabber:client tree the rest of tern uses (the
 * input is consumed); NULL when it cannot be converted. */
static tern_xml *import_stanza(tern_xml *x)
{
    return tern_stanza_import(x, NS_COMPONENT);
}

/* XEP-0356 §5: a message to the host wrapping one the component sends for an account. */
static bool is_privileged_message(const link *l, const tern_xml *stanza)
{
    const char *to = xml_attr(stanza, "to");
    return xml_is(stanza, "message", NS_CLIENT) && to &&
           !strcasecmp(to, tern_host_name(l->st->host)) &&
           xml_child(stanza, "privilege", NS_PRIVILEGE);
}

/* The forwarded message goes out as the account's when the component holds the message
 * privilege and the account is one of the host's (a bare JID); otherwise the component gets
 * <forbidden/> or <bad-request/>. Consumes stanza. */
static void privileged_message(link *l, tern_xml *stanza)
{
    const tern_xml *privilege = xml_child(stanza, "privilege", NS_PRIVILEGE);
    const tern_xml *forwarded = xml_child(privilege, "forwarded", NS_FORWARD);
    /* The forwarded message is in jabber:client, or in the stream's namespace when the
     * component wrote it as one of its own stanzas (slixmpp does). */
    const tern_xml *inner = forwarded ? xml_child(forwarded, "message", NS_CLIENT) : NULL;
    if (!inner && forwarded)
        inner = xml_child(forwarded, "message", NS_COMPONENT);
    const char *host = tern_host_name(l->st->host), *from = inner ? xml_attr(inner, "from") : NULL;
    tern_stanza_error cond = STANZA_ERR_FORBIDDEN;
    const char *why = NULL;
    tern_jid j = { 0 };
    const char *bad;
    if (strcmp(l->comp->message, "outgoing") != 0) {
        why = "this component may not send messages for accounts";
    } else if (!inner) {
        cond = STANZA_ERR_BAD_REQUEST;
        why = "a privileged message forwards a <message/>";
    } else if (!from || jid_parse(from, &j, &bad) != 0 || !j.node || j.resource ||
               strcmp(j.domain, host) != 0) {
        why = "the forwarded message must be from the bare JID of an account of this host";
    } else {
        why = NULL;
    }
    jid_free(&j);
    if (why) {
        tern_xml *reply = stanza_error_reply(stanza, cond, why);
        if (reply) {
            xml_set_attr(reply, "from", host);
            xml_set_attr(reply, "to", xml_attr(stanza, "from"));
            send_stanza(l, reply);
            xml_unref(reply);
        }
    } else {
        tern_xml *message = import_stanza(xml_copy(inner)); /* as a jabber:client tree */
        if (message)
            tern_route(l->st->host, message);
    }
    xml_unref(stanza);
}

static void on_stanza(void *ctx, tern_xml *x)
{
    link *l = ctx;
    if (l->closing || !l->comp) {
        xml_unref(x);
        return;
    }
    if (!l->authenticated) {
        bool ok = xml_is(x, "handshake", NS_COMPONENT) && handshake_valid(l, xml_text(x));
        xml_unref(x);
        if (ok) {
            authenticated(l);
        } else {
            l->st->refused++;
            stream_error(l, STREAM_ERR_NOT_AUTHORIZED, "the handshake does not match");
        }
        return;
    }
    const char *name = xml_name(x);
    if (strcmp(xml_ns(x), NS_COMPONENT) != 0 ||
        (strcmp(name, "message") && strcmp(name, "presence") && strcmp(name, "iq"))) {
        xml_unref(x);
        stream_error(l, STREAM_ERR_UNSUPPORTED_STANZA_TYPE, "not a stanza");
        return;
    }
    if (!from_its_domain(l, xml_attr(x, "from"))) {
        xml_unref(x);
        stream_error(l, STREAM_ERR_INVALID_FROM, "a component sends from its own domain");
        return;
    }
    if (!xml_attr(x, "to")) {
        xml_unref(x);
        stream_error(l, STREAM_ERR_IMPROPER_ADDRESSING, "a component's stanza needs a 'to'");
        return;
    }
    tern_xml *stanza = import_stanza(x);
    l->st->stanzas_in++;
    if (stanza && is_privileged_message(l, stanza))
        privileged_message(l, stanza);
    else if (stanza)
        tern_route(l->st->host, stanza);
}

static void on_close(void *ctx)
{
    link *l = ctx;
    if (l->closing)
        return;
    l->closing = true;
    if (l->comp && l->comp->bound == l)
        l->comp->bound = NULL;
    write_str(l, "</stream:stream>");
    conn_close(l->c);
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
    link *l = ctx;
    if (!l->closing)
        stream_parser_feed(l->parser, data, len);
}

static void on_closed(void *ctx, const char *reason)
{
    link *l = ctx;
    if (l->authenticated && l->comp)
        log_info(conn_id(l->c), "component %s disconnected: %s", l->comp->domain,
                 reason ? reason : "closed");
    link_free(l);
}

static void on_send_overflow(void *ctx, const char *why)
{
    stream_error(ctx, STREAM_ERR_POLICY_VIOLATION, why);
}

static const conn_handlers conn_callbacks = {
    on_data, NULL, on_closed, on_send_overflow, NULL,
};

static void link_free(link *l)
{
    component_state *st = l->st;
    for (link **at = &st->links; *at; at = &(*at)->next) {
        if (*at == l) {
            *at = l->next;
            break;
        }
    }
    if (!l->authenticated)
        st->unauthenticated--;
    if (l->comp && l->comp->bound == l)
        l->comp->bound = NULL;
    if (l->timeout)
        tern_timer_cancel(l->timeout);
    stream_parser_free(l->parser);
    conn_free(l->c);
    free(l);
}

static void handshake_timeout(void *data)
{
    link *l = data;
    l->timeout = NULL; /* a one-shot timer is gone once it ran */
    stream_error(l, STREAM_ERR_CONNECTION_TIMEOUT, "no handshake in time");
}

static void on_accept(int fd, void *data)
{
    component_state *st = data;
    link *l = xcalloc(1, sizeof *l);
    l->st = st;
    l->c = conn_accept(fd, &conn_callbacks, l, 0);
    random_token(l->id, ID_LEN);
    l->parser = stream_parser_new(&parser_callbacks, l,
                                  tern_setting_uint(st->host, "component", "max_stanza_size"),
                                  MAX_DEPTH);
    l->next = st->links;
    st->links = l;
    st->unauthenticated++;
    if (st->unauthenticated > tern_setting_uint(st->host, "component", "max_unauthenticated")) {
        log_warn(conn_id(l->c), "component: refusing %s: too many streams are authenticating",
                 conn_peer(l->c));
        send_header(l, NULL);
        stream_error(l, STREAM_ERR_POLICY_VIOLATION, "too many unauthenticated streams");
        return;
    }
    l->timeout = tern_timer_add(st->host,
                                1000 * (unsigned)tern_setting_uint(st->host, "component",
                                                                   "handshake_timeout"),
                                false, handshake_timeout, l);
}

/* ---- figures for /metrics ---- */

static component_state *state_of(tern_host *host)
{
    for (component_state *st = loaded; st; st = st->next_loaded)
        if (st->host == host)
            return st;
    return NULL;
}

static unsigned long long connected_count(tern_host *host)
{
    component_state *st = state_of(host);
    unsigned long long n = 0;
    for (size_t i = 0; st && i < st->n_components; i++)
        n += st->components[i].bound != NULL;
    return n;
}

static unsigned long long in_count(tern_host *host)
{
    component_state *st = state_of(host);
    return st ? st->stanzas_in : 0;
}

static unsigned long long out_count(tern_host *host)
{
    component_state *st = state_of(host);
    return st ? st->stanzas_out : 0;
}

static unsigned long long bounced_count(tern_host *host)
{
    component_state *st = state_of(host);
    return st ? st->bounced : 0;
}

static unsigned long long refused_count(tern_host *host)
{
    component_state *st = state_of(host);
    return st ? st->refused : 0;
}

static const tern_metric component_metrics[] = {
    { "tern_components_connected", "gauge", "External components connected now.",
      connected_count },
    { "tern_component_stanzas_in_total", "counter", "Stanzas received from components.",
      in_count },
    { "tern_component_stanzas_out_total", "counter", "Stanzas sent to components.",
      out_count },
    { "tern_component_bounced_total", "counter",
      "Stanzas to a component that was not connected, bounced or dropped.", bounced_count },
    { "tern_component_handshake_failures_total", "counter",
      "Component handshakes refused (wrong secret).", refused_count },
};

/* ---- loading ---- */

static void free_components(component_state *st)
{
    for (size_t i = 0; i < st->n_components; i++) {
        free(st->components[i].domain);
        free(st->components[i].secret);
        free(st->components[i].roster);
        free(st->components[i].message);
    }
    free(st->components);
}

static void add_component(void *ctx, const tern_component_config *c)
{
    component_state *st = ctx;
    st->components = xrealloc(st->components, (st->n_components + 1) * sizeof *st->components);
    st->components[st->n_components++] = (component){ st, xstrdup(c->domain),
                                                      xstrdup(c->secret), xstrdup(c->roster),
                                                      xstrdup(c->message), NULL };
}

/* The [component DOMAIN] sections (the configuration rejects duplicates), each domain
 * served once the array stops moving: the handlers keep pointers into it. */
static int add_components(component_state *st, char *err, size_t err_len)
{
    tern_component_each(add_component, st);
    for (size_t i = 0; i < st->n_components; i++) {
        if (tern_serve_domain(st->host, st->components[i].domain, NULL, to_component,
                              &st->components[i]) != 0) {
            snprintf(err, err_len, "cannot serve component %s (a host, or served already)",
                     st->components[i].domain);
            return -1;
        }
    }
    return 0;
}

static int component_load(tern_host *host, void **state, char *err, size_t err_len)
{
    component_state *st = xcalloc(1, sizeof *st);
    st->host = host;
    *state = st;
    st->next_loaded = loaded;
    loaded = st;
    tern_service_provide(host, TERN_SERVICE_PRIVILEGE, &privilege_api);
    for (size_t i = 0; i < ARRAY_LEN(component_metrics); i++)
        tern_metric_add(host, &component_metrics[i]);
    if (add_components(st, err, err_len) != 0)
        return -1;
    if (st->n_components == 0) {
        log_warn(0, "%s: component: no [component DOMAIN] section, so no listener",
                 tern_host_name(host));
        return 0;
    }
    return tern_listen(host, tern_setting_string(host, "component", "listen"),
                       "XEP-0114 components", on_accept, st, err, err_len);
}

static void component_unload(tern_host *host, void *state)
{
    (void)host;
    component_state *st = state;
    while (st->links) {
        link *l = st->links;
        if (!l->closing) {
            /* Said, then closed at once: the module's code goes with this call. */
            stream_error(l, STREAM_ERR_SYSTEM_SHUTDOWN, "the component service is unloaded");
        }
        link_free(l);
    }
    for (component_state **at = &loaded; *at; at = &(*at)->next_loaded) {
        if (*at == st) {
            *at = st->next_loaded;
            break;
        }
    }
    free_components(st);
    free(st);
}

TERN_MODULE_SETTINGS("component", component_load, component_unload, component_settings);
