/* csi — XEP-0352 Client State Indication: a client tells the server it is inactive (a phone's
 * screen is off), and the server holds back what the user would not look at now, so the radio
 * can sleep: presence updates, chat states, delivery receipts, chat markers, PEP notifications,
 * and carbon copies of those. Anything else — a message with a body, an iq, an error, a
 * subscription request — first flushes what is held, in order, and then goes out: the client
 * never sees stanzas out of order. <active/> flushes too.
 *
 * Held presence and chat states keep only the newest per sender (an older presence of the same
 * full JID says nothing the newer one does not), so the queue stays small; at max_held
 * stanzas it is flushed whatever they are. What is held is lost if the session ends before a
 * flush, like bytes in flight on a dying link: nothing held here is a message a user wrote.
 *
 * A delivery hook at priority CSI_PRIORITY: hooks below it (Stream Management counting, say)
 * see the stanzas when they actually go out. */
#include <stdlib.h>
#include <string.h>

#include <tern/module.h>
#include <tern/util.h>

#define NS_CSI        "urn:xmpp:csi:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_RECEIPTS   "urn:xmpp:receipts"
#define NS_MARKERS    "urn:xmpp:chat-markers:0"
#define NS_PUBSUB_EV  "http://jabber.org/protocol/pubsub#event"
#define NS_CARBONS    "urn:xmpp:carbons:2"
#define NS_FORWARD    "urn:xmpp:forward:0"
#define CSI_PRIORITY  100

static const tern_setting_def csi_settings[] = {
    { "max_held", TERN_SETTING_UINT, "100", 1, 10000,
      "stanzas held for an inactive client before they are sent anyway", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

/* What a held stanza is, for replacing an older one of the same kind and sender. */
typedef enum held_kind { HELD_PRESENCE, HELD_CHATSTATE, HELD_OTHER } held_kind;

typedef struct held {
    tern_xml *stanza;
    held_kind kind;
    struct held *next;
} held;

typedef struct csi_session {
    bool inactive;
    held *head, **tail;
    size_t count;
} csi_session;

static const char csi_key; /* the session-data key */

static void csi_session_free(void *data)
{
    csi_session *c = data;
    while (c->head) {
        held *h = c->head;
        c->head = h->next;
        xml_unref(h->stanza);
        free(h);
    }
    free(c);
}

static csi_session *csi_of(tern_session *s, bool create)
{
    csi_session *c = tern_session_get_data(s, &csi_key);
    if (!c && create) {
        c = xcalloc(1, sizeof *c);
        c->tail = &c->head;
        tern_session_set_data(s, &csi_key, c, csi_session_free);
    }
    return c;
}

/* Sends everything held, oldest first. */
static void flush(tern_session *s, csi_session *c)
{
    held *h = c->head;
    c->head = NULL;
    c->tail = &c->head;
    c->count = 0;
    while (h) {
        held *next = h->next;
        tern_session_send_past(s, h->stanza, CSI_PRIORITY);
        xml_unref(h->stanza);
        free(h);
        h = next;
    }
}

/* ---- what may wait ---- */

/* Only children in these namespaces (plus <thread/>, which chat states carry; a <body/> or
 * anything unknown makes the message important). */
static bool only_children_in(const tern_xml *msg, const char *const *namespaces)
{
    bool any = false;
    for (const tern_xml *c = xml_first_element(msg); c; c = xml_next_element(c)) {
        if (xml_is(c, "thread", NS_CLIENT) || xml_is(c, "no-store", "urn:xmpp:hints") ||
            xml_is(c, "no-permanent-store", "urn:xmpp:hints"))
            continue;
        bool known = false;
        for (const char *const *ns = namespaces; *ns && !known; ns++)
            known = strcmp(xml_ns(c), *ns) == 0;
        if (!known)
            return false;
        any = true;
    }
    return any;
}

static bool message_may_wait(const tern_xml *msg, held_kind *kind)
{
    const char *type = xml_attr(msg, "type");
    if (type && strcmp(type, "error") == 0)
        return false;
    static const char *const chatstates[] = { NS_CHATSTATES, NULL };
    static const char *const quiet[] = { NS_CHATSTATES, NS_RECEIPTS, NS_MARKERS, NS_PUBSUB_EV,
                                         NULL };
    if (only_children_in(msg, chatstates)) {
        *kind = HELD_CHATSTATE;
        return true;
    }
    if (only_children_in(msg, quiet)) {
        *kind = HELD_OTHER;
        return true;
    }
    /* A carbon copy (XEP-0280) waits when the message it carries would. */
    const tern_xml *carbon = xml_child(msg, "received", NS_CARBONS);
    if (!carbon)
        carbon = xml_child(msg, "sent", NS_CARBONS);
    const tern_xml *fwd = carbon ? xml_child(carbon, "forwarded", NS_FORWARD) : NULL;
    const tern_xml *inner = fwd ? xml_child(fwd, "message", NS_CLIENT) : NULL;
    held_kind inner_kind;
    if (inner && message_may_wait(inner, &inner_kind)) {
        *kind = HELD_OTHER;
        return true;
    }
    return false;
}

static bool may_wait(const tern_xml *stanza, held_kind *kind)
{
    const char *name = xml_name(stanza);
    if (strcmp(name, "presence") == 0) {
        /* Availability can wait; subscription requests and errors are for the user now. */
        const char *type = xml_attr(stanza, "type");
        *kind = HELD_PRESENCE;
        return !type || strcmp(type, "unavailable") == 0;
    }
    if (strcmp(name, "message") == 0)
        return message_may_wait(stanza, kind);
    return false; /* iq: someone waits for the answer */
}

static bool same_sender(const tern_xml *a, const tern_xml *b)
{
    const char *fa = xml_attr(a, "from"), *fb = xml_attr(b, "from");
    return fa && fb && strcmp(fa, fb) == 0;
}

/* Drops a held stanza that `stanza` makes stale (same kind, same sender). */
static void drop_stale(csi_session *c, const tern_xml *stanza, held_kind kind)
{
    if (kind == HELD_OTHER)
        return;
    for (held **at = &c->head; *at; at = &(*at)->next) {
        held *h = *at;
        if (h->kind == kind && same_sender(h->stanza, stanza)) {
            *at = h->next;
            if (c->tail == &h->next)
                c->tail = at;
            xml_unref(h->stanza);
            free(h);
            c->count--;
            return; /* there is at most one: each hold replaces the one before */
        }
    }
}

/* ---- hooks ---- */

static tern_event_result csi_deliver(tern_session *s, const tern_xml *stanza, void *data)
{
    tern_host *host = data;
    csi_session *c = csi_of(s, false);
    if (!c || !c->inactive)
        return TERN_PASS;
    held_kind kind;
    if (!may_wait(stanza, &kind)) {
        flush(s, c);
        return TERN_PASS;
    }
    drop_stale(c, stanza, kind);
    held *h = xmalloc(sizeof *h);
    /* A copy: the caller may reuse its stanza for the next session. */
    *h = (held){ xml_copy(stanza), kind, NULL };
    *c->tail = h;
    c->tail = &h->next;
    if (++c->count >= tern_setting_uint(host, "csi", "max_held"))
        flush(s, c);
    return TERN_HANDLED;
}

static tern_event_result csi_element(tern_session *s, const tern_xml *element, void *data)
{
    (void)data;
    bool inactive = strcmp(xml_name(element), "inactive") == 0;
    if (!inactive && strcmp(xml_name(element), "active") != 0)
        return TERN_PASS; /* unknown element of the namespace: a stream error */
    csi_session *c = csi_of(s, inactive);
    if (!c) /* <active/> from a client that never was inactive */
        return TERN_HANDLED;
    c->inactive = inactive;
    if (!inactive)
        flush(s, c);
    return TERN_HANDLED;
}

static void csi_features(tern_session *session, tern_xml *features, void *data)
{
    (void)session;
    (void)data;
    xml_add_child(features, "csi", NS_CSI);
}

static int csi_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    tern_hook_deliver(host, CSI_PRIORITY, csi_deliver, host);
    tern_hook_element(host, NS_CSI, NULL, csi_element, NULL);
    tern_hook_features(host, csi_features, NULL);
    return 0;
}

TERN_MODULE_SETTINGS("csi", csi_load, NULL, csi_settings);
