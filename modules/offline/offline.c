/* offline — storage of messages for accounts that are offline, and their delivery at the next
 * available presence (RFC 6121 §8.5.2.1.1 and §8.5.3.2.1, XEP-0160 Best Practices for Handling
 * Offline Messages, XEP-0203 Delayed Delivery).
 *
 * A chat or normal message to a local account with no available resource of non-negative
 * priority reaches "message/bare" (the router re-routes one to an unavailable full JID there
 * too). This module hooks that event at a low priority, so that filters at the default priority
 * (blocking, carbons) have seen the message first, and claims the message only once it is
 * stored. The store is the archive "offline" of the recipient (payload: the serialized stanza;
 * when: receipt time; peer: the sender's bare JID); every append is durable before it returns,
 * so a message the server accepted survives a crash right after.
 *
 * Delivery: when a session becomes available with a non-negative priority (or raises a negative
 * priority to a non-negative one), every stored message goes to that session, oldest first, with
 * a <delay/> stamped with the receipt time, and each is deleted only after it was handed to the
 * session. A crash in between can deliver a message twice; it can never lose one. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/module.h>

#define OFFLINE_STORE "offline"

/* XEP-0160 §2 names a full queue as the reason to refuse a message. A modest bound keeps one
 * account from filling the disk; it is per account, not per sender. */
static const tern_setting_def offline_settings[] = {
    { "quota", TERN_SETTING_UINT, "100", 1, 100000,
      "messages kept per offline account; past it a message bounces with service-unavailable",
      NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

/* Handlers run at -100: after anything registered at the default priority (blocking, carbons),
 * so those see, and may claim, a message before it is stored. */
#define OFFLINE_MESSAGE_PRIORITY (-100)
/* Presence broadcasts are only observed (never claimed), before the presence module claims
 * them at the default priority. */
#define OFFLINE_PRESENCE_PRIORITY 100

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates" /* XEP-0085 */
#define NS_HINTS      "urn:xmpp:hints"                        /* XEP-0334 */
#define NS_SID        "urn:xmpp:sid:0"                        /* XEP-0359 */

typedef struct offline_state {
    tern_host *host;
} offline_state;

/* The address of this static keys the per-session "delivery still owed" mark: set while the
 * session is available with a negative priority, so raising the priority later triggers the
 * delivery XEP-0160 §2 ties to non-negative available presence. */
static const char delivery_owed_key;
static char delivery_owed_mark; /* any non-NULL pointer will do as the mark's value */

/* ---- which messages are stored ---- */

/* XEP-0160 §3: a message that carries nothing but XEP-0085 chat state content is not stored.
 * Thread ids, processing hints and stanza ids travel with such notifications and do not make
 * them content. */
static bool only_chat_states(const tern_xml *x)
{
    bool has_state = false;
    for (const tern_xml *c = xml_first_element(x); c; c = xml_next_element(c)) {
        const char *ns = xml_ns(c);
        if (!strcmp(ns, NS_CHATSTATES))
            has_state = true;
        else if (!xml_is(c, "thread", NS_CLIENT) && strcmp(ns, NS_HINTS) && strcmp(ns, NS_SID))
            return false;
    }
    return has_state;
}

typedef struct availability {
    bool reachable; /* an available resource with priority >= 0 */
} availability;

static void check_available(tern_session *s, void *ctx)
{
    availability *a = ctx;
    if (tern_session_available(s) && tern_session_priority(s) >= 0)
        a->reachable = true;
}

/* RFC 6121 §8.5.2.1.1: only when no resource would receive the message is it stored. */
static bool account_reachable(tern_host *host, const char *bare)
{
    availability a = { false };
    tern_host_each_session(host, bare, check_available, &a);
    return a.reachable;
}

/* ---- storing ---- */

static tern_event_result offline_store_message(const tern_stanza_event *ev, void *data)
{
    offline_state *st = data;
    const char *type = tern_message_type(ev->stanza);
    /* XEP-0160 §3: groupchat, headline and error messages are never stored; the core's own
     * rules apply to them (RFC 6121 §8.5.2.1.1). */
    if (strcmp(type, "chat") && strcmp(type, "normal"))
        return TERN_PASS;
    const char *owner = ev->to->bare;
    if (account_reachable(st->host, owner))
        return TERN_PASS; /* the core delivers it */
    if (only_chat_states(ev->stanza))
        return TERN_HANDLED; /* XEP-0160 §3: dropped, and a typing notice is no error */
    if (xml_child(ev->stanza, "no-store", NS_HINTS))
        return TERN_PASS; /* XEP-0334: the sender asked for no storage: the core bounces it */

    tern_storage *storage = tern_host_storage(st->host);
    size_t queued = 0;
    if (storage_archive_count(storage, OFFLINE_STORE, owner, &queued) != 0)
        return TERN_PASS; /* not stored: the core answers service-unavailable */
    if (queued >= tern_setting_uint(st->host, "offline", "quota")) {
        /* XEP-0160 §2: a full queue is answered with service-unavailable. */
        log_info(0, "offline: the queue of %s is full (%zu messages); refusing a message from %s",
                 owner, queued, ev->from->bare);
        tern_reply_error(ev, STANZA_ERR_SERVICE_UNAVAILABLE,
                         "The recipient's offline mailbox is full");
        return TERN_HANDLED;
    }

    tern_buf buf;
    buf_init(&buf);
    xml_serialize(ev->stanza, NS_CLIENT, &buf);
    uint64_t id = 0;
    int rc = storage_archive_append(storage, OFFLINE_STORE, owner, time(NULL), ev->from->bare,
                                    buf.data, buf.len, &id);
    buf_free(&buf);
    if (rc == TERN_STORAGE_FULL) {
        /* RFC 6120 §8.3.3.18: the server lacks room now; the sender may try again later. */
        tern_reply_error(ev, STANZA_ERR_RESOURCE_CONSTRAINT, "The server's storage is full");
        return TERN_HANDLED;
    }
    if (rc != 0)
        return TERN_PASS; /* logged by storage; the sender gets service-unavailable */
    log_debug(0, "offline: stored message %llu for %s from %s", (unsigned long long)id, owner,
              ev->from->bare);
    return TERN_HANDLED;
}

/* ---- delivering ---- */

typedef struct delivery {
    offline_state *st;
    tern_session *session;
    const char *owner;
    size_t sent;
} delivery;

/* The <delay/> just added is the last one (a message may already carry others, e.g. from a
 * relay); XEP-0160 §2 shows it with a short reason text. */
static void add_delay(tern_xml *x, const char *host, time_t when)
{
    tern_stanza_add_delay(x, host, when);
    tern_xml *last = NULL;
    for (tern_xml *c = xml_first_element(x); c; c = xml_next_element(c))
        if (xml_is(c, "delay", NS_DELAY))
            last = c;
    if (last)
        xml_add_text(last, "Offline Storage", strlen("Offline Storage"));
}

static int deliver_one(void *ctx, const storage_archive_item *item)
{
    delivery *d = ctx;
    tern_storage *storage = tern_host_storage(d->st->host);
    tern_xml *x = tern_stanza_parse(item->payload, item->payload_len);
    if (!x) {
        /* Stored data that is not one stanza can never be delivered; keeping it would only
         * count against the quota forever. */
        log_error(tern_session_id(d->session), "offline: item %llu of %s is not a stanza; "
                  "removing it", (unsigned long long)item->id, d->owner);
        storage_archive_delete(storage, OFFLINE_STORE, d->owner, item->id);
        return 0;
    }
    add_delay(x, tern_host_name(d->st->host), item->when);
    tern_session_send(d->session, x);
    xml_unref(x);
    d->sent++;
    /* Deleted only once handed to the session: a crash before this line means a duplicate at
     * the next login, never a loss. A failed delete (logged) has the same effect. */
    storage_archive_delete(storage, OFFLINE_STORE, d->owner, item->id);
    return 0;
}

static void offline_deliver(offline_state *st, tern_session *s)
{
    tern_session_set_data(s, &delivery_owed_key, NULL, NULL);
    delivery d = { st, s, tern_session_jid(s)->bare, 0 };
    /* Id order is arrival order: oldest first (XEP-0160 §2). The storage layer runs the
     * callback outside its transactions, so it may delete as it goes. */
    struct storage_archive_query q = { 0 };
    if (storage_archive_query(tern_host_storage(st->host), OFFLINE_STORE, d.owner, &q,
                              deliver_one, &d) < 0)
        log_error(tern_session_id(s), "offline: could not read the queue of %s", d.owner);
    if (d.sent)
        log_info(tern_session_id(s), "offline: delivered %zu stored message%s", d.sent,
                 d.sent == 1 ? "" : "s");
}

/* "session/available": initial presence. XEP-0160 §2: deliver when the presence has a
 * non-negative priority; a negative one (RFC 6121 §8.5.2.1.1: never a target of bare-JID
 * messages) gets nothing until it raises its priority. */
static void offline_session_available(tern_session *s, void *data)
{
    if (tern_session_priority(s) >= 0)
        offline_deliver(data, s);
    else
        tern_session_set_data(s, &delivery_owed_key, &delivery_owed_mark, NULL);
}

/* A later broadcast presence: a session going from a negative to a non-negative priority gets
 * what was stored meanwhile. Always passes the presence on. */
static tern_event_result offline_presence_changed(const tern_stanza_event *ev, void *data)
{
    tern_session *s = ev->origin;
    if (!s || !tern_session_available(s))
        return TERN_PASS;
    if (tern_session_priority(s) < 0)
        tern_session_set_data(s, &delivery_owed_key, &delivery_owed_mark, NULL);
    else if (tern_session_get_data(s, &delivery_owed_key))
        offline_deliver(data, s);
    return TERN_PASS;
}

/* ---- account removal ---- */

static void offline_account_deleted(tern_host *host, const char *bare, void *data)
{
    (void)data;
    if (storage_archive_clear(tern_host_storage(host), OFFLINE_STORE, bare) != 0)
        log_error(0, "offline: could not remove the stored messages of %s", bare);
}

/* ---- loading ---- */

static int offline_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    offline_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->host = host;
    *state = st;
    tern_hook_stanza(host, "message/bare", OFFLINE_MESSAGE_PRIORITY, offline_store_message, st);
    tern_hook_stanza(host, "presence/broadcast", OFFLINE_PRESENCE_PRIORITY,
                     offline_presence_changed, st);
    tern_hook_session(host, "session/available", offline_session_available, st);
    tern_hook_account(host, "account/deleted", offline_account_deleted, st);
    tern_disco_add_feature(host, "msgoffline"); /* XEP-0160 §4 */
    return 0;
}

static void offline_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE_SETTINGS("offline", offline_load, offline_unload, offline_settings);
