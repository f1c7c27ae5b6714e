/* offline — storage of messages for accounts that are offline, and their delivery at the next
 * available presence (RFC 6121 §8.5.2.1.1 and §8.5.3.2.1, XEP-0160 Best Practices for Handling
 * Offline Messages, XEP-0203 Delayed Delivery).
 *
 * A chat or normal message to a local account with no available resource of non-negative
 * priority reaches "message/bare" (the router re-routes one to an unavailable full JID there
 * too). This module hooks that event at a low priority, so that filters at the default priority
 * (blocking, carbons) have seen the message first, and claims it. The store is the archive
 * "offline" of the recipient (payload: the serialized stanza; when: receipt time; peer: the
 * sender's bare JID). Appends go to the storage thread (group commit: messages arriving
 * together share one fsync) with the quota checked in their transaction; one that fails is
 * bounced to the sender from its completion. A commit is durable: it survives kill -9.
 *
 * Delivery: when a session becomes available with a non-negative priority (or raises a negative
 * priority to a non-negative one), every stored message goes to that session, oldest first, with
 * a <delay/> stamped with the receipt time, and each is deleted only after it was handed to the
 * session. A crash in between can deliver a message twice; it can never lose one. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/hashmap.h>
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
    hashmap *in_flight; /* bare JID -> the delivery querying its queue (offline_deliver) */
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

/* A message on its way to the storage thread (storage_archive_append_async): what a bounce
 * needs if the append fails. */
typedef struct pending_store {
    offline_state *st;
    tern_xml *stanza;   /* referenced */
    tern_jid from, to;
    tern_output_slot *slot; /* in the sender's output, when it is a local session */
} pending_store;

/* The bounce of a message that was not stored: into the sender's slot (so it comes before
 * whatever the server sent the sender meanwhile), or routed when the sender is not local.
 * The slot also holds back the answer to the sender's next stanza until the append
 * committed: a client that gets its pong knows the message before it is stored. */
static void bounce(pending_store *p, tern_stanza_error cond, const char *text)
{
    tern_session *sender = p->slot ? tern_slot_session(p->slot) : NULL;
    if (!sender) {
        tern_stanza_event ev = { p->st->host, p->stanza, &p->from, &p->to, NULL };
        tern_reply_error(&ev, cond, text);
        return;
    }
    tern_xml *reply = stanza_error_reply(p->stanza, cond, text);
    if (!reply)
        return;
    xml_set_attr(reply, "from", p->to.full);
    xml_set_attr(reply, "to", p->from.full);
    tern_slot_send(p->slot, reply);
    xml_unref(reply);
}

static void offline_stored(void *ctx, int rc, uint64_t id)
{
    pending_store *p = ctx;
    if (rc == 0) {
        log_debug(0, "offline: stored message %llu for %s from %s", (unsigned long long)id,
                  p->to.bare, p->from.bare);
    } else if (rc == TERN_STORAGE_LIMIT) {
        /* XEP-0160 §2: a full queue is answered with service-unavailable. */
        log_info(0, "offline: the queue of %s is full; refusing a message from %s", p->to.bare,
                 p->from.bare);
        bounce(p, STANZA_ERR_SERVICE_UNAVAILABLE, "The recipient's offline mailbox is full");
    } else if (rc == TERN_STORAGE_FULL) {
        /* RFC 6120 §8.3.3.18: the server lacks room now; the sender may try again later. */
        bounce(p, STANZA_ERR_RESOURCE_CONSTRAINT, "The server's storage is full");
    } else {
        /* Logged by storage. RFC 6121 §8.5.2.1.1: not stored, so service-unavailable. */
        bounce(p, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    }
    if (p->slot)
        tern_slot_release(p->slot);
    xml_unref(p->stanza);
    jid_free(&p->from);
    jid_free(&p->to);
    free(p);
}

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

    /* Queued for the storage thread: the loop goes on while the disk works, and messages
     * arriving together share one commit. The quota is checked in the same transaction. */
    pending_store *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->st = st;
    p->stanza = ev->stanza;
    xml_ref(p->stanza);
    jid_copy(&p->from, ev->from);
    jid_copy(&p->to, ev->to);
    if (ev->origin)
        p->slot = tern_session_reserve(ev->origin);
    tern_buf buf;
    buf_init(&buf);
    xml_serialize(ev->stanza, NS_CLIENT, &buf);
    storage_archive_append_async(tern_host_storage(st->host), OFFLINE_STORE, owner, time(NULL),
                                 ev->from->bare, buf.data, buf.len,
                                 tern_setting_uint(st->host, "offline", "quota"), offline_stored,
                                 p);
    buf_free(&buf);
    return TERN_HANDLED;
}

/* ---- delivering ----
 *
 * A delivery reads the stored messages on the storage thread (after every append queued
 * before it), a page at a time, into a slot of the session's output (tern_session_reserve()),
 * so they come before anything the session was sent meanwhile, and queues their deletes. One delivery per account
 * runs at a time: a second session that becomes available meanwhile waits for the first to
 * finish (and its deletes to be queued), then gets only what was stored since, as it would
 * have had the first been instant. */

/* The address keys the mark of a session whose delivery is under way. */
static const char delivery_key;
static char delivery_mark;

/* Stored messages read per query: a long queue is delivered page by page, so memory holds one
 * page at a time whatever the quota. */
#define OFFLINE_PAGE 64

typedef struct delivery delivery;
struct delivery {
    offline_state *st;
    tern_output_slot *slot;
    char *owner;
    size_t sent;
    uint64_t last_id;   /* the last item read: the next page starts after it */
    delivery *next; /* the account's deliveries waiting for this one */
};

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
    tern_session *s = tern_slot_session(d->slot);
    if (!s)
        return 1; /* the session ended: what is stored stays for the next one */
    d->last_id = item->id;
    tern_storage *storage = tern_host_storage(d->st->host);
    tern_xml *x = tern_stanza_parse(item->payload, item->payload_len);
    if (!x) {
        /* Stored data that is not one stanza can never be delivered; keeping it would only
         * count against the quota forever. */
        log_error(tern_session_id(s), "offline: item %llu of %s is not a stanza; removing it",
                  (unsigned long long)item->id, d->owner);
        storage_archive_delete_async(storage, OFFLINE_STORE, d->owner, item->id, NULL, NULL);
        return 0;
    }
    add_delay(x, tern_host_name(d->st->host), item->when);
    tern_slot_send(d->slot, x);
    xml_unref(x);
    d->sent++;
    /* Deleted once handed to the session (the slot is released in this same completion): a
     * crash before the delete commits means a duplicate at the next login, never a loss. */
    storage_archive_delete_async(storage, OFFLINE_STORE, d->owner, item->id, NULL, NULL);
    return 0;
}

static void start_query(delivery *d);

static void delivery_done(void *ctx, int rc)
{
    delivery *d = ctx;
    offline_state *st = d->st;
    tern_session *s = tern_slot_session(d->slot);
    if (rc == 1 && s) {
        start_query(d); /* the next page */
        return;
    }
    if (rc < 0)
        log_error(s ? tern_session_id(s) : 0, "offline: could not read the queue of %s",
                  d->owner);
    if (s) {
        if (d->sent)
            log_info(tern_session_id(s), "offline: delivered %zu stored message%s", d->sent,
                     d->sent == 1 ? "" : "s");
        tern_session_set_data(s, &delivery_key, NULL, NULL);
    }
    tern_slot_release(d->slot);
    /* The next waiting delivery of the account queries after this one's deletes. */
    delivery *next = d->next;
    if (next) {
        hashmap_put(st->in_flight, d->owner, next);
        start_query(next);
    } else {
        hashmap_remove(st->in_flight, d->owner);
    }
    free(d->owner);
    free(d);
}

static void start_query(delivery *d)
{
    /* Id order is arrival order: oldest first (XEP-0160 §2). */
    struct storage_archive_query q = { .after_id = d->last_id, .max = OFFLINE_PAGE };
    storage_archive_query_async(tern_host_storage(d->st->host), OFFLINE_STORE, d->owner, &q,
                                deliver_one, delivery_done, d);
}

static void offline_deliver(offline_state *st, tern_session *s)
{
    tern_session_set_data(s, &delivery_owed_key, NULL, NULL);
    if (tern_session_get_data(s, &delivery_key))
        return; /* one is under way */
    tern_session_set_data(s, &delivery_key, &delivery_mark, NULL);
    delivery *d = calloc(1, sizeof *d);
    if (!d)
        abort();
    d->st = st;
    d->slot = tern_session_reserve(s);
    d->owner = strdup(tern_session_jid(s)->bare);
    if (!d->owner)
        abort();
    delivery *running = hashmap_get(st->in_flight, d->owner);
    if (running) {
        while (running->next)
            running = running->next;
        running->next = d;
        return;
    }
    hashmap_put(st->in_flight, d->owner, d);
    start_query(d);
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
    st->in_flight = hashmap_new();
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
    offline_state *st = state;
    hashmap_free(st->in_flight); /* empty: queued storage work completed before unload */
    free(st);
}

TERN_MODULE_SETTINGS("offline", offline_load, offline_unload, offline_settings);
