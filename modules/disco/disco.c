/* disco — XEP-0030 Service Discovery for the server and its accounts.
 *
 * The features and identities come from the host's registries, which every module fills at
 * load, so disco lists exactly what is loaded whatever the order of the `modules =` line.
 * Account-level queries (to user@host) are answered for the account itself; contacts with a
 * subscription will be added when the roster module exists. */
#include <stdlib.h>
#include <string.h>
#include <tern/module.h>

typedef struct disco_state {
    tern_host *host;
} disco_state;

static void add_feature(void *ctx, const char *var, const void *data)
{
    (void)data;
    xml_set_attr(xml_add_child(ctx, "feature", NULL), "var", var);
}

static void add_identity(void *ctx, const char *item, const void *data)
{
    const char *slash = strchr(item, '/');
    if (!slash)
        return;
    tern_xml *identity = xml_add_child(ctx, "identity", NULL);
    char category[64];
    size_t n = (size_t)(slash - item) < sizeof category - 1 ? (size_t)(slash - item)
                                                            : sizeof category - 1;
    memcpy(category, item, n);
    category[n] = '\0';
    xml_set_attr(identity, "category", category);
    xml_set_attr(identity, "type", slash + 1);
    if (data)
        xml_set_attr(identity, "name", data);
}

/* A query for a node we do not have is item-not-found (XEP-0030 §3.2). */
static bool unknown_node(const tern_stanza_event *ev, const char *xmlns)
{
    const tern_xml *q = xml_child(ev->stanza, "query", xmlns);
    if (q && xml_attr(q, "node")) {
        tern_reply_error(ev, STANZA_ERR_ITEM_NOT_FOUND, NULL);
        return true;
    }
    return false;
}

typedef struct extension_ctx {
    tern_host *host;
    tern_xml *query;
} extension_ctx;

static void add_extension(void *ctx, const char *form_type, const void *data)
{
    (void)form_type;
    extension_ctx *e = ctx;
    const tern_disco_extension *ext = data;
    ext->add(e->host, e->query);
}

/* XEP-0030 §3.1, and XEP-0128 extension forms after the features (XEP-0157 contacts). */
static tern_event_result host_info(const tern_stanza_event *ev, void *data)
{
    disco_state *st = data;
    if (unknown_node(ev, NS_DISCO_INFO))
        return TERN_HANDLED;
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", NS_DISCO_INFO);
    tern_registry_each(st->host, TERN_REG_DISCO_IDENTITY, add_identity, query);
    tern_registry_each(st->host, TERN_REG_DISCO_FEATURE, add_feature, query);
    extension_ctx e = { st->host, query };
    tern_registry_each(st->host, TERN_REG_DISCO_EXTENSION, add_extension, &e);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static void add_item(void *ctx, const char *domain, const char *name)
{
    tern_xml *item = xml_add_child(ctx, "item", NS_DISCO_ITEMS);
    xml_set_attr(item, "jid", domain);
    if (name)
        xml_set_attr(item, "name", name);
}

/* XEP-0030 §4: the host's items are the services at domains of their own its modules serve
 * (tern_serve_domain()). */
static tern_event_result host_items(const tern_stanza_event *ev, void *data)
{
    disco_state *st = data;
    if (unknown_node(ev, NS_DISCO_ITEMS))
        return TERN_HANDLED;
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", NS_DISCO_ITEMS);
    tern_served_each(st->host, add_item, query);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static bool from_account_itself(const tern_stanza_event *ev)
{
    return jid_equal_bare(ev->from, ev->to);
}

static tern_event_result account_info(const tern_stanza_event *ev, void *data)
{
    disco_state *st = data;
    if (!from_account_itself(ev))
        return TERN_PASS; /* the core answers service-unavailable */
    if (unknown_node(ev, NS_DISCO_INFO))
        return TERN_HANDLED;
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", NS_DISCO_INFO);
    add_identity(query, "account/registered", NULL);
    tern_registry_each(st->host, TERN_REG_DISCO_ACCOUNT_FEATURE, add_feature, query);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static tern_event_result account_items(const tern_stanza_event *ev, void *data)
{
    (void)data;
    if (!from_account_itself(ev))
        return TERN_PASS;
    if (unknown_node(ev, NS_DISCO_ITEMS))
        return TERN_HANDLED;
    tern_xml *reply = tern_iq_result_new(ev);
    xml_add_child(reply, "query", NS_DISCO_ITEMS);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static int disco_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    disco_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->host = host;
    *state = st;
    tern_hook_iq(host, "get", "host", NS_DISCO_INFO, "query", host_info, st);
    tern_hook_iq(host, "get", "host", NS_DISCO_ITEMS, "query", host_items, st);
    tern_hook_iq(host, "get", "bare", NS_DISCO_INFO, "query", account_info, st);
    tern_hook_iq(host, "get", "bare", NS_DISCO_ITEMS, "query", account_items, st);
    tern_disco_add_identity(host, "server", "im", "tern");
    tern_disco_add_feature(host, NS_DISCO_INFO);
    tern_disco_add_feature(host, NS_DISCO_ITEMS);
    tern_registry_add(host, TERN_REG_DISCO_ACCOUNT_FEATURE, NS_DISCO_INFO, NULL);
    tern_registry_add(host, TERN_REG_DISCO_ACCOUNT_FEATURE, NS_DISCO_ITEMS, NULL);
    return 0;
}

static void disco_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE("disco", disco_load, disco_unload);
