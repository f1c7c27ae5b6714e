/* ibr.c — XEP-0077 in-band registration before authentication: a client with no account
 * creates one on its not yet authenticated stream. Offered only where the host says
 * `registration = yes`, and only on a stream where a password may travel (encrypted, unless
 * [c2s] require_tls = no).
 *
 * A rate limit per client address keeps one machine from creating accounts in bulk: one
 * account per address per `interval` seconds (XEP-0077 §8 asks servers to limit
 * registration). The table of recent addresses is pruned as it is used, so it holds only the
 * addresses that registered within the interval, and at most `max_recent` of them: past that,
 * every address waits (many addresses at once are a bulk registration too). */
#include "ibr.h"

#include <stdlib.h>
#include <string.h>
#include <tern/util.h>
#include <time.h>

typedef struct recent {
    char *address;
    time_t when;
    struct recent *next;
} recent;

struct ibr {
    tern_host *host;
    recent *recent; /* newest first */
    size_t n_recent;
};

static bool offered(const tern_preauth *stream)
{
    return stream->secure && tern_host_registration_open(stream->host);
}

static void ibr_features(const tern_preauth *stream, tern_xml *features, void *data)
{
    (void)data;
    if (offered(stream))
        xml_add_child(features, "register", NS_REGISTER_FEATURE);
}

static tern_xml *result_for(const tern_xml *iq)
{
    tern_xml *reply = xml_new("iq", NS_CLIENT);
    xml_set_attr(reply, "type", "result");
    if (xml_attr(iq, "id"))
        xml_set_attr(reply, "id", xml_attr(iq, "id"));
    return reply;
}

static tern_xml *error_for(const tern_xml *iq, tern_stanza_error cond, const char *text)
{
    tern_xml *reply = stanza_error_reply(iq, cond, text);
    return reply ? reply : result_for(iq);
}

/* "1.2.3.4:5678" or "[::1]:5678" → the address part (at most len - 1 bytes). */
static void address_of(const char *peer, char *out, size_t len)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= len)
        n = len - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
}

static bool rate_limited(ibr *r, const char *address, time_t now)
{
    unsigned long interval = tern_setting_uint(r->host, "register", "interval");
    bool found = false;
    for (recent **at = &r->recent; *at;) {
        recent *e = *at;
        if ((unsigned long)(now - e->when) >= interval) { /* expired: drop it */
            *at = e->next;
            free(e->address);
            free(e);
            r->n_recent--;
            continue;
        }
        found = found || strcmp(e->address, address) == 0;
        at = &e->next;
    }
    return found || r->n_recent >= tern_setting_uint(r->host, "register", "max_recent");
}

static void remember(ibr *r, const char *address, time_t now)
{
    recent *e = xmalloc(sizeof *e);
    *e = (recent){ xstrdup(address), now, r->recent };
    r->recent = e;
    r->n_recent++;
}

static tern_xml *registration_form(const tern_xml *iq)
{
    tern_xml *reply = result_for(iq);
    tern_xml *query = xml_add_child(reply, "query", NS_REGISTER);
    tern_xml_add_text_child(query, "instructions", NULL,
                            "Choose a username and password to register with this server.");
    xml_add_child(query, "username", NULL);
    xml_add_child(query, "password", NULL);
    return reply;
}

static tern_xml *create(ibr *r, const tern_preauth *stream, const tern_xml *iq,
                        const tern_xml *query)
{
    const char *username = xml_child_text(query, "username", NS_REGISTER);
    const char *password = xml_child_text(query, "password", NS_REGISTER);
    if (!username || !*username || !password || !*password)
        return error_for(iq, STANZA_ERR_NOT_ACCEPTABLE, "a username and a password are required");
    char *node = NULL;
    if (jid_prep_node(username, &node) != 0)
        return error_for(iq, STANZA_ERR_NOT_ACCEPTABLE, "that username is not allowed");
    free(node);
    char address[64];
    address_of(stream->peer, address, sizeof address);
    time_t now = time(NULL);
    if (rate_limited(r, address, now))
        return error_for(iq, STANZA_ERR_RESOURCE_CONSTRAINT,
                         "too many registrations from your address; try again later");
    switch (tern_account_create(stream->host, username, password)) {
    case ACCOUNT_OK:
        remember(r, address, now);
        return result_for(iq);
    case ACCOUNT_EXISTS:
        return error_for(iq, STANZA_ERR_CONFLICT, "that username is taken");
    case ACCOUNT_BAD_PASSWORD:
        return error_for(iq, STANZA_ERR_NOT_ACCEPTABLE, "that password is not allowed");
    case ACCOUNT_FULL: /* RFC 6120 §8.3.3.18, type wait: try later */
        return error_for(iq, STANZA_ERR_RESOURCE_CONSTRAINT, account_result_text(ACCOUNT_FULL));
    default:
        return error_for(iq, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    }
}

static tern_xml *ibr_iq(const tern_preauth *stream, const tern_xml *iq, void *data)
{
    ibr *r = data;
    if (!offered(stream))
        return error_for(iq, STANZA_ERR_SERVICE_UNAVAILABLE,
                         "registration is not available here");
    const char *type = xml_attr(iq, "type");
    const tern_xml *query = xml_child(iq, "query", NS_REGISTER);
    if (!query)
        return error_for(iq, STANZA_ERR_BAD_REQUEST, NULL);
    if (strcmp(type, "get") == 0)
        return registration_form(iq);
    if (xml_child(query, "remove", NS_REGISTER))
        return error_for(iq, STANZA_ERR_NOT_AUTHORIZED, "log in to remove your account");
    return create(r, stream, iq, query);
}

ibr *ibr_load(tern_host *host)
{
    ibr *r = xcalloc(1, sizeof *r);
    r->host = host;
    tern_hook_preauth_iq(host, NS_REGISTER, ibr_iq, r);
    tern_hook_preauth_features(host, ibr_features, NULL);
    return r;
}

void ibr_unload(ibr *r)
{
    if (!r)
        return;
    while (r->recent) {
        recent *e = r->recent;
        r->recent = e->next;
        free(e->address);
        free(e);
    }
    free(r);
}
