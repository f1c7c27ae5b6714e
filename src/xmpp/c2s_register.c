/* c2s_register.c — XEP-0077 in-band registration before authentication (see c2s_register.h).
 *
 * A rate limit per client address keeps one machine from creating accounts in bulk: one
 * account per address per REGISTER_INTERVAL seconds (XEP-0077 §8 asks servers to limit
 * registration). The table of recent addresses is pruned as it is used. */
#include "xmpp/c2s_register.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "process/server.h"

#define REGISTER_INTERVAL 60

static hashmap *recent; /* address → (time_t) last successful registration, boxed */

bool register_allowed(const tern_host *host, bool encrypted)
{
    return host && host->cfg->registration && (encrypted || !server.cfg->c2s_require_tls);
}

void register_add_feature(tern_xml *features)
{
    xml_add_child(features, "register", NS_REGISTER_FEATURE);
}

bool register_is_request(const tern_xml *x)
{
    return strcmp(xml_name(x), "iq") == 0 && strcmp(xml_ns(x), NS_CLIENT) == 0 &&
           xml_child(x, "query", NS_REGISTER) != NULL;
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

/* "1.2.3.4:5678" or "[::1]:5678" → the address part. */
static char *address_of(const char *peer)
{
    const char *colon = strrchr(peer, ':');
    return xstrndup(peer, colon ? (size_t)(colon - peer) : strlen(peer));
}

static void forget_old(void *ctx, const char *key, void *value)
{
    (void)key;
    time_t *when = value;
    if (*when + REGISTER_INTERVAL <= *(time_t *)ctx)
        *when = 0; /* expired; removed below */
}

typedef struct expired_list {
    char **keys;
    size_t n;
} expired_list;

static void collect_expired(void *ctx, const char *key, void *value)
{
    expired_list *l = ctx;
    if (*(time_t *)value == 0) {
        l->keys = xrealloc(l->keys, (l->n + 1) * sizeof *l->keys);
        l->keys[l->n++] = xstrdup(key);
    }
}

static void prune(time_t now)
{
    hashmap_each(recent, forget_old, &now);
    expired_list l = { NULL, 0 };
    hashmap_each(recent, collect_expired, &l);
    for (size_t i = 0; i < l.n; i++) {
        free(hashmap_remove(recent, l.keys[i]));
        free(l.keys[i]);
    }
    free(l.keys);
}

static bool rate_limited(const char *address, time_t now)
{
    if (!recent)
        recent = hashmap_new();
    prune(now);
    return hashmap_get(recent, address) != NULL;
}

static void remember(const char *address, time_t now)
{
    time_t *when = xmalloc(sizeof *when);
    *when = now;
    free(hashmap_put(recent, address, when));
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

tern_xml *register_handle(tern_host *host, const char *peer, const tern_xml *iq)
{
    const char *type = xml_attr(iq, "type");
    if (type && strcmp(type, "get") == 0)
        return registration_form(iq);
    if (!type || strcmp(type, "set") != 0)
        return error_for(iq, STANZA_ERR_BAD_REQUEST, NULL);
    const tern_xml *query = xml_child(iq, "query", NS_REGISTER);
    if (xml_child(query, "remove", NS_REGISTER))
        return error_for(iq, STANZA_ERR_NOT_AUTHORIZED, "log in to remove your account");
    const char *username = xml_child_text(query, "username", NS_REGISTER);
    const char *password = xml_child_text(query, "password", NS_REGISTER);
    if (!username || !*username || !password || !*password)
        return error_for(iq, STANZA_ERR_NOT_ACCEPTABLE, "a username and a password are required");
    char *node = NULL;
    if (jid_prep_node(username, &node) != 0)
        return error_for(iq, STANZA_ERR_NOT_ACCEPTABLE, "that username is not allowed");
    free(node);
    char *address = address_of(peer);
    time_t now = time(NULL);
    tern_xml *reply;
    if (rate_limited(address, now)) {
        reply = error_for(iq, STANZA_ERR_RESOURCE_CONSTRAINT,
                          "too many registrations from your address; try again later");
    } else {
        switch (tern_account_create(host, username, password)) {
        case ACCOUNT_OK:
            remember(address, now);
            reply = result_for(iq);
            break;
        case ACCOUNT_EXISTS:
            reply = error_for(iq, STANZA_ERR_CONFLICT, "that username is taken");
            break;
        case ACCOUNT_BAD_PASSWORD:
            reply = error_for(iq, STANZA_ERR_NOT_ACCEPTABLE, "that password is not allowed");
            break;
        default:
            reply = error_for(iq, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
            break;
        }
    }
    free(address);
    return reply;
}

static void free_value(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

void register_release(void)
{
    if (!recent)
        return;
    hashmap_each(recent, free_value, NULL);
    hashmap_free(recent);
    recent = NULL;
}
