/* private — XEP-0049 Private XML Storage: an account keeps XML fragments on its server, one
 * per namespace, that only the account itself can read or write (bookmarks under
 * storage:bookmarks, client preferences, roster notes...).
 *
 * Map store "private": owner = the account's bare JID, key = the fragment's namespace, value =
 * a serialized <query xmlns='jabber:iq:private'/> holding the stored elements (XEP-0049 §2.3:
 * a set MAY carry several elements of one namespace, and a get returns them all). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/module.h>

#define NS_PRIVATE    "jabber:iq:private"
#define PRIVATE_STORE "private"

/* Limits per account: the serialized size of one namespace's data, and how many namespaces.
 * Bookmarks of a few hundred rooms fit comfortably in the first. */
static const tern_setting_def private_settings[] = {
    { "max_size", TERN_SETTING_UINT, "65536", 1024, 16777216,
      "bytes of private XML per namespace", NULL },
    { "max_namespaces", TERN_SETTING_UINT, "128", 1, 100000,
      "namespaces of private XML per account", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

typedef struct private_state {
    tern_host *host;
} private_state;

/* XEP-0049 §2.3: "namespaces beginning with 'jabber:' or 'http://jabber.org/', as well as
 * 'vcard-temp'" are reserved; refusing them with not-acceptable is what servers do. An
 * element without a namespace has no key to be stored under. */
static bool reserved_namespace(const char *ns)
{
    return !*ns || strncmp(ns, "jabber:", 7) == 0 ||
           strncmp(ns, "http://jabber.org/", 18) == 0 || strcmp(ns, "vcard-temp") == 0;
}

static tern_event_result reply_error(const tern_stanza_event *ev, tern_stanza_error cond,
                                     const char *text)
{
    tern_reply_error(ev, cond, text);
    return TERN_HANDLED;
}

/* Checks the common rules of get and set. Returns the first child of <query/>, or NULL after
 * answering with an error. */
static const tern_xml *checked_payload(const tern_stanza_event *ev)
{
    /* XEP-0049 §2.3 and §4: another user's data is forbidden (preferred over the historic
     * service-unavailable). */
    if (!jid_equal_bare(ev->from, ev->to)) {
        tern_reply_error(ev, STANZA_ERR_FORBIDDEN, "private XML is only for its own account");
        return NULL;
    }
    const tern_xml *query = xml_child(ev->stanza, "query", NS_PRIVATE);
    const tern_xml *first = xml_first_element(query);
    bool is_get = strcmp(xml_attr(ev->stanza, "type"), "get") == 0;
    if (!first) {
        /* §2.3: a get without a child SHOULD be "Bad Format" (bad-request); a set without
         * one MUST be not-acceptable. */
        tern_reply_error(ev, is_get ? STANZA_ERR_BAD_REQUEST : STANZA_ERR_NOT_ACCEPTABLE,
                         "the query must hold an element in the namespace of the data");
        return NULL;
    }
    const char *ns = xml_ns(first);
    for (const tern_xml *c = xml_next_element(first); c; c = xml_next_element(c)) {
        /* §2.3: a get names one namespace; a set MAY hold several elements of one. */
        if (is_get || strcmp(xml_ns(c), ns) != 0) {
            tern_reply_error(ev, STANZA_ERR_BAD_REQUEST,
                             is_get ? "a get asks for one element"
                                    : "all elements of a set must share one namespace");
            return NULL;
        }
    }
    if (reserved_namespace(ns)) {
        tern_reply_error(ev, STANZA_ERR_NOT_ACCEPTABLE, "that namespace is reserved");
        return NULL;
    }
    return first;
}

static tern_event_result private_get(const tern_stanza_event *ev, void *data)
{
    private_state *st = data;
    const tern_xml *asked = checked_payload(ev);
    if (!asked)
        return TERN_HANDLED;
    void *value = NULL;
    size_t len = 0;
    int r = storage_map_get(tern_host_storage(st->host), PRIVATE_STORE, ev->to->bare,
                            xml_ns(asked), &value, &len);
    if (r < 0)
        return reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    tern_xml *stored = NULL;
    if (r > 0) {
        stored = tern_stanza_parse(value, len);
        free(value);
        if (!stored) {
            log_error(0, "private: the data of %s in %s cannot be parsed", ev->to->bare,
                      xml_ns(asked));
            return reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        }
    }
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", NS_PRIVATE);
    if (stored) {
        for (const tern_xml *c = xml_first_element(stored); c; c = xml_next_element(c))
            xml_add_copy(query, c);
        xml_unref(stored);
    } else {
        /* Nothing stored: the element asked for comes back empty (XEP-0049 §2.3). */
        xml_add_copy(query, asked);
    }
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static int count_key(void *ctx, const char *key, const void *value, size_t len)
{
    (void)key;
    (void)value;
    (void)len;
    (*(size_t *)ctx)++;
    return 0;
}

/* Whether a new namespace still fits under max_namespaces. -1 on a storage error. */
static int room_for_new_namespace(tern_storage *storage, const char *owner, const char *ns,
                                  unsigned long max_namespaces)
{
    void *value = NULL;
    size_t len = 0;
    int r = storage_map_get(storage, PRIVATE_STORE, owner, ns, &value, &len);
    free(value);
    if (r != 0)
        return r < 0 ? -1 : 1; /* replacing costs no room */
    size_t n = 0;
    if (storage_map_each(storage, PRIVATE_STORE, owner, count_key, &n) < 0)
        return -1;
    return n < max_namespaces;
}

/* A set of a single element that is empty (<storage xmlns='storage:bookmarks'/>) clears the
 * namespace: a later get answers exactly the same, and the slot is free again. */
static bool is_clearing(const tern_xml *first)
{
    return !xml_next_element(first) && !xml_first_element(first) && !xml_first_attr(first) &&
           xml_text(first)[0] == '\0';
}

static tern_event_result private_set(const tern_stanza_event *ev, void *data)
{
    private_state *st = data;
    const tern_xml *first = checked_payload(ev);
    if (!first)
        return TERN_HANDLED;
    tern_storage *storage = tern_host_storage(st->host);
    const char *ns = xml_ns(first);
    int r;
    if (is_clearing(first)) {
        r = storage_map_delete(storage, PRIVATE_STORE, ev->to->bare, ns);
    } else {
        tern_xml *wrapper = xml_new("query", NS_PRIVATE);
        for (const tern_xml *c = first; c; c = xml_next_element(c))
            xml_add_copy(wrapper, c);
        tern_buf buf;
        buf_init(&buf);
        xml_serialize(wrapper, NS_CLIENT, &buf);
        xml_unref(wrapper);
        char text[96];
        unsigned long max_size = tern_setting_uint(st->host, "private", "max_size");
        unsigned long max_namespaces = tern_setting_uint(st->host, "private", "max_namespaces");
        bool too_big = buf.len > max_size;
        int room = too_big ? 0
                           : room_for_new_namespace(storage, ev->to->bare, ns, max_namespaces);
        if (room <= 0) {
            buf_free(&buf);
            if (room < 0)
                return reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
            if (too_big)
                snprintf(text, sizeof text, "private XML is limited to %lu bytes per namespace",
                         max_size);
            else
                snprintf(text, sizeof text, "private XML is limited to %lu namespaces",
                         max_namespaces);
            return reply_error(ev, STANZA_ERR_NOT_ACCEPTABLE, text);
        }
        r = storage_map_put(storage, PRIVATE_STORE, ev->to->bare, ns, buf.data, buf.len);
        buf_free(&buf);
    }
    if (r < 0)
        return reply_error(ev, tern_storage_error(r), NULL);
    tern_reply(ev, tern_iq_result_new(ev));
    return TERN_HANDLED;
}

static int private_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    private_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->host = host;
    *state = st;
    tern_hook_iq(host, "get", "bare", NS_PRIVATE, "query", private_get, st);
    tern_hook_iq(host, "set", "bare", NS_PRIVATE, "query", private_set, st);
    tern_disco_add_feature(host, NS_PRIVATE);
    tern_registry_add(host, TERN_REG_DISCO_ACCOUNT_FEATURE, NS_PRIVATE, NULL);
    return 0;
}

static void private_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE_SETTINGS("private", private_load, private_unload, private_settings);
