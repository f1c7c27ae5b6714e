/* roster — the contact list (RFC 6121 §2), roster versioning (RFC 6121 §2.6, XEP-0237) and
 * presence subscriptions (RFC 6121 §3 and the state tables of its Appendix A), and the roster
 * service other modules ask about subscriptions (tern/roster.h).
 *
 * Storage (roster_store.c): map store "roster", owner = the bare JID, one record per contact so a
 * change writes what changed and not the whole roster (with 1,000 contacts, a roster set
 * writes a few hundred bytes instead of ~136 KB: doc/performance.md):
 *   "i <jid>"  one roster item, the element a roster result carries:
 *              <item xmlns='jabber:iq:roster' jid=... name=... subscription=... ask=...
 *               approved=...><group>...</group></item>
 *   "p <jid>"  a pending-in subscription request, the complete presence stanza (§3.1.3)
 *   "meta"     "ver=N epoch=E items=I pending=P": the version, and counts so max_items and
 *              max_pending are checked without reading every record
 * (a contact whose key would be too long for storage is keyed "i #<hash>"; records name
 * their contact, and readers check it). Every change — a roster set or remove, a
 * subscription state change, a request stored or cleared — is ONE storage_map_apply of the
 * changed records, plus "meta" when the version or a count changed, committed before anything
 * is acknowledged (an iq result, a roster push or a routed subscription stanza), so an
 * acknowledged change survives kill -9. The questions asked on every presence (subscription(),
 * has_contact()) read one record; a roster get and each_contact() walk the records with
 * storage_map_each.
 *
 * ver counts changes to the items; pending-in requests are not part of the roster a client
 * sees (RFC 6121 §3.1.3), so they do not change it. The version clients see is "E-N", where
 * the epoch E (the roster's first write) keeps an account that was deleted and created again
 * from ever repeating a version of the old one; an empty roster that was never changed is
 * version "0".
 *
 * Older ternd kept the roster as one XML blob in the keyval store "roster"; an account's blob
 * is converted into these records at its first access, version included (roster_store.c).
 *
 * Rule for re-entrancy: a handler saves, then sends results and pushes, and only then routes
 * stanzas (routing to a local contact may run this module again for the other account, or
 * for this one through an automatic reply). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/module.h>
#include <tern/privilege.h>
#include <tern/roster.h>

#include "roster_store.h"

#define NS_ROSTERVER    "urn:xmpp:features:rosterver"    /* XEP-0237, RFC 6121 §2.6.1 */
#define NS_PREAPPROVAL  "urn:xmpp:features:pre-approval" /* RFC 6121 §3.4.1 */

/* Limits (RFC 6121 §2.3.3 leaves them to the server). */
static const tern_setting_def roster_settings[] = {
    { "max_items", TERN_SETTING_UINT, "1000", 1, 1000000,
      "contacts per roster, however they are added (roster set or outbound subscription)",
      NULL },
    { "max_pending", TERN_SETTING_UINT, "1000", 1, 1000000,
      "subscription requests kept per account until the user answers; later ones are dropped",
      NULL },
    { "max_groups", TERN_SETTING_UINT, "64", 1, 10000, "groups per contact", NULL },
    { "max_text", TERN_SETTING_UINT, "1023", 1, 65535,
      "bytes of a contact's name or of a group name", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

static unsigned long roster_limit(tern_host *host, const char *key)
{
    return tern_setting_uint(host, "roster", key);
}

typedef struct roster_state {
    tern_host *host;
    unsigned long push_seq;
    tern_roster_api api;
} roster_state;

/* Session data: set when the session asked for the roster ("interested resource", §2.2). */
static const char interested_key = 0;

#define ROSTER_FULL_TEXT "the roster is full"

/* Whether another contact would take the roster past max_items. */
static bool roster_full(tern_host *host, const roster_meta *m)
{
    return m->items >= roster_limit(host, "max_items");
}

static const char *const sub_names[] = { "none", "to", "from", "both" };

static tern_subscription item_sub(const tern_xml *item)
{
    const char *s = item ? xml_attr(item, "subscription") : NULL;
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, sub_names[i]) == 0)
            return (tern_subscription)i;
    return TERN_SUB_NONE;
}

static tern_xml *item_new(const char *jid)
{
    tern_xml *item = xml_new("item", NS_ROSTER);
    xml_set_attr(item, "jid", jid);
    xml_set_attr(item, "subscription", "none");
    return item;
}

/* ---- sending ---- */

typedef struct push_ctx {
    roster_state *st;
    const char *owner;
    const tern_xml *item; /* the item to push (a copy of the stored one, or subscription='remove') */
    const char *ver;
} push_ctx;

static void push_to_session(tern_session *s, void *arg)
{
    push_ctx *pc = arg;
    if (!tern_session_get_data(s, &interested_key))
        return;
    char id[32];
    snprintf(id, sizeof id, "push%lu", ++pc->st->push_seq);
    tern_xml *iq = xml_new("iq", NS_CLIENT);
    xml_set_attr(iq, "type", "set");
    xml_set_attr(iq, "id", id);
    xml_set_attr(iq, "from", pc->owner);
    xml_set_attr(iq, "to", tern_session_jid(s)->full);
    tern_xml *query = xml_add_child(iq, "query", NS_ROSTER);
    xml_set_attr(query, "ver", pc->ver);
    xml_add_copy(query, pc->item);
    tern_session_send(s, iq);
    xml_unref(iq);
}

/* XEP-0356 §4.3: the same push to a privileged entity that reads the account's roster. */
static void push_to_reader(void *arg, const char *entity)
{
    push_ctx *pc = arg;
    char id[32];
    snprintf(id, sizeof id, "push%lu", ++pc->st->push_seq);
    tern_xml *iq = xml_new("iq", NS_CLIENT);
    xml_set_attr(iq, "type", "set");
    xml_set_attr(iq, "id", id);
    xml_set_attr(iq, "from", pc->owner);
    xml_set_attr(iq, "to", entity);
    tern_xml *query = xml_add_child(iq, "query", NS_ROSTER);
    xml_set_attr(query, "ver", pc->ver);
    xml_add_copy(query, pc->item);
    tern_route(pc->st->host, iq);
}

/* RFC 6121 §2.1.6: a roster push to every interested resource of the account, and to the
 * privileged entities that read rosters. */
static void push_item(roster_state *st, const char *owner, const roster_meta *m,
                      const tern_xml *item)
{
    push_ctx pc = { st, owner, item, m->ver_text };
    tern_host_each_session(st->host, owner, push_to_session, &pc);
    const tern_privilege_api *privilege = tern_privilege(st->host);
    if (privilege)
        privilege->each_reader(st->host, "roster", push_to_reader, &pc);
}

static void push_removal(roster_state *st, const char *owner, const roster_meta *m,
                         const char *jid)
{
    tern_xml *item = xml_new("item", NS_ROSTER);
    xml_set_attr(item, "jid", jid);
    xml_set_attr(item, "subscription", "remove");
    push_item(st, owner, m, item);
    xml_unref(item);
}

/* A subscription stanza from one bare JID to another, routed as the server. */
static void route_presence(tern_host *host, const char *type, const char *from, const char *to)
{
    tern_xml *p = xml_new("presence", NS_CLIENT);
    xml_set_attr(p, "type", type);
    xml_set_attr(p, "from", from);
    xml_set_attr(p, "to", to);
    tern_route(host, p);
}

typedef struct resources_ctx {
    tern_host *host;
    const char *to;
    bool unavailable;
} resources_ctx;

static void presence_of_session(tern_session *s, void *arg)
{
    resources_ctx *rc = arg;
    const tern_xml *last = tern_session_presence(s);
    if (!tern_session_available(s) || !last)
        return;
    tern_xml *p;
    if (rc->unavailable) {
        p = xml_new("presence", NS_CLIENT);
        xml_set_attr(p, "type", "unavailable");
    } else {
        p = xml_copy(last);
    }
    xml_set_attr(p, "from", tern_session_jid(s)->full);
    xml_set_attr(p, "to", rc->to);
    tern_route(rc->host, p);
}

/* The current presence (or an unavailable one) of each available resource of `owner` to
 * `to`: when a subscription starts (RFC 6121 §3.1.5) or ends (§3.2.2, §3.3.3). */
static void send_presence_of_resources(tern_host *host, const char *owner, const char *to,
                                       bool unavailable)
{
    resources_ctx rc = { host, to, unavailable };
    tern_host_each_session(host, owner, presence_of_session, &rc);
}

static void deliver_if_available(tern_session *s, void *stanza)
{
    if (tern_session_available(s))
        tern_session_send(s, stanza);
}

/* ---- roster get and set (RFC 6121 §2.1.3, §2.1.5) ---- */

/* Only the account itself may see or change its roster (RFC 6121 §2.1.5 security warning,
 * §2.3.3: forbidden), and an entity the operator granted that privilege (XEP-0356 §4.2: an
 * external component with `roster = get|set|both`), which is then answered as the account
 * would be. `type` is "get" or "set". */
static bool refuse_others(const tern_stanza_event *ev, const char *type)
{
    if (strcmp(ev->from->bare, ev->to->bare) == 0)
        return false;
    const tern_privilege_api *privilege = tern_privilege(ev->host);
    if (privilege && privilege->allows(ev->host, ev->from->bare, "roster", type))
        return false;
    tern_reply_error(ev, STANZA_ERR_FORBIDDEN, "only the account itself may use its roster");
    return true;
}

static int add_item_to_query(void *ctx, tern_xml *item)
{
    xml_add_copy(ctx, item);
    return 0;
}

static tern_event_result roster_get(const tern_stanza_event *ev, void *data)
{
    (void)data;
    if (refuse_others(ev, "get"))
        return TERN_HANDLED;
    roster_meta meta;
    if (roster_meta_load(ev->host, ev->to->bare, &meta) != 0) {
        tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return TERN_HANDLED;
    }
    const char *client_ver = xml_attr(xml_child(ev->stanza, "query", NS_ROSTER), "ver");
    tern_xml *reply = tern_iq_result_new(ev);
    /* RFC 6121 §2.6.3: the client's version is current: an empty result, and any change
     * comes as a push. Otherwise the whole roster with its version. */
    if (!client_ver || strcmp(client_ver, meta.ver_text) != 0) {
        tern_xml *query = xml_add_child(reply, "query", NS_ROSTER);
        xml_set_attr(query, "ver", meta.ver_text);
        if (meta.items &&
            roster_each_record(ev->host, ev->to->bare, 'i', add_item_to_query, query) != 0) {
            xml_unref(reply);
            tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
            return TERN_HANDLED;
        }
    }
    if (ev->origin)
        tern_session_set_data(ev->origin, &interested_key, (void *)&interested_key, NULL);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

/* RFC 6121 §2.3.3: the checks on the item of a roster set other than a removal. NULL when
 * it is acceptable, else the error to answer with. */
static const char *check_item(tern_host *host, const tern_xml *item, tern_stanza_error *cond)
{
    const char *name = xml_attr(item, "name");
    size_t max_text = roster_limit(host, "max_text");
    unsigned long max_groups = roster_limit(host, "max_groups");
    *cond = STANZA_ERR_NOT_ACCEPTABLE;
    if (name && strlen(name) > max_text)
        return "the name is too long";
    size_t n = 0;
    for (tern_xml *g = xml_first_element(item); g; g = xml_next_element(g)) {
        if (!xml_is(g, "group", NS_ROSTER))
            continue;
        const char *text = xml_text(g);
        if (!*text)
            return "a group name is empty";
        if (strlen(text) > max_text)
            return "a group name is too long";
        if (++n > max_groups)
            return "too many groups";
        for (tern_xml *h = xml_first_element(item); h != g; h = xml_next_element(h))
            if (xml_is(h, "group", NS_ROSTER) && strcmp(xml_text(h), text) == 0) {
                *cond = STANZA_ERR_BAD_REQUEST;
                return "a group is listed twice";
            }
    }
    return NULL;
}

/* RFC 6121 §2.5.2: removing an item cancels both directions of the subscription. */
static void roster_remove(roster_state *st, const tern_stanza_event *ev, const char *contact)
{
    const char *owner = ev->to->bare;
    roster_meta meta;
    tern_xml *item = NULL, *pending = NULL;
    int found = -1;
    if (roster_meta_load(st->host, owner, &meta) == 0)
        found = roster_item_get(st->host, owner, contact, &item);
    if (found == 1 && meta.pending &&
        roster_record_get(st->host, owner, 'p', contact, &pending) < 0)
        found = -1;
    if (found != 1) {
        if (found == 0) /* §2.5.3 */
            tern_reply_error(ev, STANZA_ERR_ITEM_NOT_FOUND, "no such item in the roster");
        else
            tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        if (item)
            xml_unref(item);
        return;
    }
    tern_subscription sub = item_sub(item);
    bool pending_out = xml_attr(item, "ask") != NULL, pending_in = pending != NULL;
    xml_unref(item);
    if (pending)
        xml_unref(pending);
    roster_write w;
    roster_write_init(&w);
    roster_write_record(&w, 'i', owner, contact, NULL);
    if (pending_in) {
        roster_write_record(&w, 'p', owner, contact, NULL);
        meta.pending -= meta.pending > 0;
    }
    meta.items -= meta.items > 0;
    meta.ver++;
    roster_write_meta(&w, &meta);
    int rc = roster_write_commit(st->host, owner, &w);
    if (rc != 0) {
        tern_reply_error(ev, tern_storage_error(rc), NULL);
        return;
    }
    tern_reply(ev, tern_iq_result_new(ev));
    push_removal(st, owner, &meta, contact);
    if (TERN_SUB_HAS_TO(sub) || pending_out)
        route_presence(st->host, "unsubscribe", owner, contact);
    if (TERN_SUB_HAS_FROM(sub) || pending_in) {
        route_presence(st->host, "unsubscribed", owner, contact);
        if (TERN_SUB_HAS_FROM(sub))
            send_presence_of_resources(st->host, owner, contact, true);
    }
}

static tern_event_result roster_set(const tern_stanza_event *ev, void *data)
{
    roster_state *st = data;
    if (refuse_others(ev, "set"))
        return TERN_HANDLED;
    const tern_xml *query = xml_child(ev->stanza, "query", NS_ROSTER);
    const tern_xml *item = NULL;
    size_t n = 0;
    for (tern_xml *x = xml_first_element(query); x; x = xml_next_element(x))
        if (xml_is(x, "item", NS_ROSTER)) {
            item = x;
            n++;
        }
    if (n != 1) { /* RFC 6121 §2.1.5 rule 1, §2.3.3 */
        tern_reply_error(ev, STANZA_ERR_BAD_REQUEST, "a roster set carries exactly one item");
        return TERN_HANDLED;
    }
    const char *jid_text = xml_attr(item, "jid"), *why = NULL;
    tern_jid jid;
    if (!jid_text) { /* RFC 6121 §2.1.2.3: the jid is required */
        tern_reply_error(ev, STANZA_ERR_BAD_REQUEST, "the item has no 'jid'");
        return TERN_HANDLED;
    }
    if (jid_parse(jid_text, &jid, &why) != 0) {
        tern_reply_error(ev, STANZA_ERR_JID_MALFORMED, why);
        return TERN_HANDLED;
    }
    /* RFC 6121 §2.1.2.5: in a roster set every 'subscription' value but "remove" is
     * ignored, and so are 'ask' and 'approved' (§2.1.2.1, §2.1.2.2): clients change those
     * with presence stanzas. */
    const char *subscription = xml_attr(item, "subscription");
    if (subscription && strcmp(subscription, "remove") == 0) {
        roster_remove(st, ev, jid.full);
        jid_free(&jid);
        return TERN_HANDLED;
    }
    const char *owner = ev->to->bare;
    tern_stanza_error cond;
    const char *problem = check_item(st->host, item, &cond);
    if (!problem && strcmp(jid.full, owner) == 0) {
        cond = STANZA_ERR_NOT_ALLOWED;
        problem = "the account cannot be its own contact";
    }
    roster_meta meta;
    tern_xml *stored = NULL;
    if (!problem && (roster_meta_load(st->host, owner, &meta) != 0 ||
                     roster_item_get(st->host, owner, jid.full, &stored) < 0)) {
        cond = STANZA_ERR_INTERNAL_SERVER_ERROR;
        problem = "the roster cannot be read";
    }
    if (!problem && !stored && roster_full(st->host, &meta)) {
        cond = STANZA_ERR_NOT_ALLOWED;
        problem = ROSTER_FULL_TEXT;
    }
    if (problem) {
        tern_reply_error(ev, cond, problem);
        jid_free(&jid);
        return TERN_HANDLED;
    }
    if (!stored) {
        stored = item_new(jid.full);
        meta.items++;
    }
    xml_set_attr(stored, "name", xml_attr(item, "name"));
    xml_clear_children(stored);
    for (tern_xml *g = xml_first_element(item); g; g = xml_next_element(g))
        if (xml_is(g, "group", NS_ROSTER))
            tern_xml_add_text_child(stored, "group", NULL, xml_text(g));
    meta.ver++;
    roster_write w;
    roster_write_init(&w);
    roster_write_record(&w, 'i', owner, jid.full, stored);
    roster_write_meta(&w, &meta);
    int rc = roster_write_commit(st->host, owner, &w);
    if (rc != 0) {
        tern_reply_error(ev, tern_storage_error(rc), NULL);
    } else {
        tern_reply(ev, tern_iq_result_new(ev)); /* RFC 6121 §2.3.2 */
        push_item(st, owner, &meta, stored);
    }
    xml_unref(stored);
    jid_free(&jid);
    return TERN_HANDLED;
}

/* ---- subscription states (RFC 6121 Appendix A) ---- */

typedef struct sub_state {
    tern_subscription sub;
    bool out;      /* pending out: ask='subscribe' */
    bool in;       /* pending in: a request kept in a "p" record */
    bool approved; /* pre-approved (RFC 6121 §3.4) */
} sub_state;

/* What the roster of `owner` holds about one contact, read for a state change. */
typedef struct contact_rec {
    const char *owner, *contact;
    roster_meta meta;
    tern_xml *item;  /* NULL: not in the roster */
    bool pending;    /* a pending-in request is stored */
} contact_rec;

static int contact_load(tern_host *host, const char *owner, const char *contact,
                        contact_rec *rec)
{
    tern_xml *pending = NULL;
    *rec = (contact_rec){ .owner = owner, .contact = contact };
    if (roster_meta_load(host, owner, &rec->meta) != 0 ||
        roster_item_get(host, owner, contact, &rec->item) < 0 ||
        (rec->meta.pending && roster_record_get(host, owner, 'p', contact, &pending) < 0)) {
        if (rec->item)
            xml_unref(rec->item);
        rec->item = NULL;
        return -1;
    }
    rec->pending = pending != NULL;
    if (pending)
        xml_unref(pending);
    return 0;
}

static void contact_free(contact_rec *rec)
{
    if (rec->item)
        xml_unref(rec->item);
    rec->item = NULL;
}

static sub_state state_of(const contact_rec *rec)
{
    sub_state s = { item_sub(rec->item), rec->item && xml_attr(rec->item, "ask"), rec->pending,
                    rec->item && xml_attr(rec->item, "approved") };
    return s;
}

/* Adds to w what a new state changes. `request` is the subscribe stanza to keep when
 * pending-in starts. Returns the item when its visible attributes changed (so it needs a push
 * and a new version), else NULL. */
static tern_xml *state_store(roster_write *w, contact_rec *rec, sub_state s,
                             const tern_xml *request)
{
    if (!s.in && rec->pending) {
        roster_write_record(w, 'p', rec->owner, rec->contact, NULL);
        rec->meta.pending -= rec->meta.pending > 0;
        rec->pending = false;
    }
    if (s.in && request) {
        /* §3.1.3: keep the complete stanza; the latest request replaces an earlier one. */
        roster_write_record(w, 'p', rec->owner, rec->contact, request);
        rec->meta.pending += !rec->pending;
        rec->pending = true;
    }
    tern_xml *item = rec->item;
    if (!item) {
        /* A pending-in request alone does not put the contact in the roster (§3.1.3). */
        if (s.sub == TERN_SUB_NONE && !s.out && !s.approved)
            return NULL;
        item = rec->item = item_new(rec->contact);
        rec->meta.items++;
    }
    sub_state old = { item_sub(item), xml_attr(item, "ask") != NULL, false,
                      xml_attr(item, "approved") != NULL };
    const char *stored = xml_attr(item, "subscription");
    if (old.sub == s.sub && old.out == s.out && old.approved == s.approved && stored &&
        strcmp(stored, sub_names[s.sub]) == 0)
        return NULL;
    xml_set_attr(item, "subscription", sub_names[s.sub]);
    xml_set_attr(item, "ask", s.out ? "subscribe" : NULL);
    xml_set_attr(item, "approved", s.approved ? "true" : NULL);
    roster_write_record(w, 'i', rec->owner, rec->contact, item);
    return item;
}

typedef enum sub_type { SUB_SUBSCRIBE, SUB_SUBSCRIBED, SUB_UNSUBSCRIBE, SUB_UNSUBSCRIBED } sub_type;

static int subscription_type(const tern_xml *stanza)
{
    static const char *const names[] = { "subscribe", "subscribed", "unsubscribe",
                                         "unsubscribed" };
    const char *t = xml_attr(stanza, "type");
    for (int i = 0; t && i < 4; i++)
        if (strcmp(t, names[i]) == 0)
            return i;
    return -1;
}

/* Commits a new state for the contact in rec (one apply: the records that changed, and meta
 * when the version or a count did) and pushes the item if it changed. < 0 when storage failed
 * (nothing may be acknowledged then). */
static int commit_state(roster_state *st, contact_rec *rec, sub_state now,
                        const tern_xml *request)
{
    roster_write w;
    roster_write_init(&w);
    roster_meta before = rec->meta;
    tern_xml *changed = state_store(&w, rec, now, request);
    if (changed)
        rec->meta.ver++;
    if (rec->meta.ver != before.ver || rec->meta.items != before.items ||
        rec->meta.pending != before.pending)
        roster_write_meta(&w, &rec->meta);
    int rc = roster_write_commit(st->host, rec->owner, &w);
    if (rc != 0)
        return rc;
    if (changed)
        push_item(st, rec->owner, &rec->meta, changed);
    return 0;
}

/* Outbound subscription stanzas from a local session (RFC 6121 §3.1.2, §3.1.5, §3.2.2,
 * §3.3.2, §3.4.2; Appendix A.2). The stanza leaves stamped with the user's bare JID. */
static tern_event_result subscription_out(const tern_stanza_event *ev, void *data)
{
    roster_state *st = data;
    int type = subscription_type(ev->stanza);
    if (type < 0)
        return TERN_PASS;
    const char *owner = ev->from->bare, *contact = ev->to->bare;
    if (strcmp(owner, contact) == 0)
        return TERN_HANDLED; /* a subscription to oneself means nothing: dropped */
    contact_rec rec;
    if (contact_load(st->host, owner, contact, &rec) != 0) {
        tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, "the roster cannot be read");
        return TERN_HANDLED;
    }
    sub_state was = state_of(&rec), now = was;
    bool route = true;
    switch ((sub_type)type) {
    case SUB_SUBSCRIBE: /* A.2.1: always routed; pending out unless already subscribed */
        if (!TERN_SUB_HAS_TO(was.sub))
            now.out = true;
        break;
    case SUB_SUBSCRIBED: /* A.2.2 */
        if (was.in) {
            now.sub |= TERN_SUB_FROM;
            now.in = false;
            now.approved = false;
        } else {
            /* §3.4.2: without a request it pre-approves one (nothing to approve when the
             * contact is already subscribed), and is not routed. */
            now.approved = !TERN_SUB_HAS_FROM(was.sub);
            route = false;
        }
        break;
    case SUB_UNSUBSCRIBE: /* A.2.3: always routed */
        now.sub &= ~TERN_SUB_TO;
        now.out = false;
        break;
    case SUB_UNSUBSCRIBED: /* A.2.4; it also cancels a pre-approval (§3.4) */
        route = was.in || TERN_SUB_HAS_FROM(was.sub);
        now.sub &= ~TERN_SUB_FROM;
        now.in = false;
        now.approved = false;
        break;
    }
    int rc = 0;
    bool adds_contact = !rec.item && (now.sub != TERN_SUB_NONE || now.out || now.approved);
    if (adds_contact && roster_full(st->host, &rec.meta)) {
        /* The subscription would add a roster item (§3.1.2): the same limit as a roster set. */
        tern_reply_error(ev, STANZA_ERR_NOT_ALLOWED, ROSTER_FULL_TEXT);
    } else if ((rc = commit_state(st, &rec, now, NULL)) != 0) {
        tern_reply_error(ev, tern_storage_error(rc), "the roster cannot be saved");
    } else if (route) {
        tern_xml *out = xml_copy(ev->stanza);
        xml_set_attr(out, "from", owner);
        xml_set_attr(out, "to", contact);
        tern_route(st->host, out);
        if (type == SUB_SUBSCRIBED) /* §3.1.5 */
            send_presence_of_resources(st->host, owner, contact, false);
        else if (type == SUB_UNSUBSCRIBED && TERN_SUB_HAS_FROM(was.sub)) /* §3.2.2 */
            send_presence_of_resources(st->host, owner, contact, true);
    }
    contact_free(&rec);
    return TERN_HANDLED;
}

/* Inbound subscription stanzas to a local account (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3;
 * Appendix A.3), whether addressed to the bare JID or to a resource. */
static tern_event_result subscription_in(const tern_stanza_event *ev, void *data)
{
    roster_state *st = data;
    int type = subscription_type(ev->stanza);
    if (type < 0)
        return TERN_PASS;
    const char *owner = ev->to->bare, *contact = ev->from->bare;
    if (strcmp(owner, contact) == 0)
        return TERN_HANDLED;
    contact_rec rec;
    if (contact_load(st->host, owner, contact, &rec) != 0)
        return TERN_HANDLED;
    tern_xml *in = xml_copy(ev->stanza);
    xml_set_attr(in, "from", contact);
    xml_set_attr(in, "to", owner);
    sub_state was = state_of(&rec), now = was;
    bool deliver = false, auto_approve = false;
    switch ((sub_type)type) {
    case SUB_SUBSCRIBE: /* A.3.1 */
        if (TERN_SUB_HAS_FROM(was.sub)) {
            auto_approve = true; /* §3.1.3 rule 2: already approved */
        } else if (was.approved) {
            auto_approve = true; /* §3.4.2: pre-approved */
            now.sub |= TERN_SUB_FROM;
            now.approved = false;
        } else {
            if (!was.in && rec.meta.pending >= roster_limit(st->host, "max_pending")) {
                log_warn(0, "roster: too many pending requests for %s; one dropped", owner);
                break;
            }
            deliver = !was.in; /* one request at a time reaches the user (§3.1.3) */
            now.in = true;
        }
        break;
    case SUB_SUBSCRIBED: /* A.3.2: only an answer to our request counts */
        if (was.out) {
            deliver = true;
            now.sub |= TERN_SUB_TO;
            now.out = false;
        }
        break;
    case SUB_UNSUBSCRIBE: /* A.3.3 */
        if (was.in || TERN_SUB_HAS_FROM(was.sub)) {
            deliver = true;
            now.sub &= ~TERN_SUB_FROM;
            now.in = false;
        }
        break;
    case SUB_UNSUBSCRIBED: /* A.3.4 */
        if (was.out || TERN_SUB_HAS_TO(was.sub)) {
            deliver = true;
            now.sub &= ~TERN_SUB_TO;
            now.out = false;
        }
        break;
    }
    if (commit_state(st, &rec, now, type == SUB_SUBSCRIBE ? in : NULL) == 0) {
        if (deliver) /* to every available resource (§3.1.3 rule 3; §8.5.2.1.2) */
            tern_host_each_session(st->host, owner, deliver_if_available, in);
        if (auto_approve) {
            route_presence(st->host, "subscribed", owner, contact);
            send_presence_of_resources(st->host, owner, contact, false);
        }
        if (type == SUB_UNSUBSCRIBE && TERN_SUB_HAS_FROM(was.sub)) /* §3.3.3 */
            send_presence_of_resources(st->host, owner, contact, true);
    }
    xml_unref(in);
    contact_free(&rec);
    return TERN_HANDLED;
}

static int send_request(void *ctx, tern_xml *request)
{
    tern_session_send(ctx, request);
    return 0;
}

/* RFC 6121 §3.1.3 rule 4: requests kept while the user was offline are delivered, again, at
 * every initial presence until the user answers them. */
static void deliver_pending(tern_session *s, void *data)
{
    roster_state *st = data;
    const char *owner = tern_session_jid(s)->bare;
    roster_meta meta;
    if (roster_meta_load(st->host, owner, &meta) == 0 && meta.pending)
        roster_each_record(st->host, owner, 'p', send_request, s);
}

/* ---- the roster service (tern/roster.h) ---- */

/* The owner's item for contact, read from storage (one record): its subscription, and
 * whether it exists. */
static tern_subscription lookup(tern_host *host, const char *owner, const char *contact,
                                bool *found)
{
    tern_xml *item = NULL;
    *found = roster_item_get(host, owner, contact, &item) == 1;
    tern_subscription sub = item_sub(item);
    if (item)
        xml_unref(item);
    return sub;
}

static tern_subscription api_subscription(tern_host *host, const char *owner,
                                          const char *contact)
{
    bool found;
    return lookup(host, owner, contact, &found);
}

static bool api_has_contact(tern_host *host, const char *owner, const char *contact)
{
    bool found;
    lookup(host, owner, contact, &found);
    return found;
}

typedef struct each_contact_ctx {
    bool want_to, want_from;
    void (*fn)(void *ctx, const char *contact);
    void *ctx;
} each_contact_ctx;

static int each_contact_item(void *arg, tern_xml *item)
{
    each_contact_ctx *e = arg;
    tern_subscription sub = item_sub(item);
    if ((e->want_to && TERN_SUB_HAS_TO(sub)) || (e->want_from && TERN_SUB_HAS_FROM(sub)))
        e->fn(e->ctx, xml_attr(item, "jid"));
    return 0;
}

static void api_each_contact(tern_host *host, const char *owner, bool want_to, bool want_from,
                             void (*fn)(void *ctx, const char *contact), void *ctx)
{
    roster_meta meta;
    each_contact_ctx e = { want_to, want_from, fn, ctx };
    if (roster_meta_load(host, owner, &meta) == 0 && meta.items)
        roster_each_record(host, owner, 'i', each_contact_item, &e);
}

/* ---- stream features and loading ---- */

typedef struct cancel_ctx {
    tern_host *host;
    const char *owner;
} cancel_ctx;

static int cancel_item(void *ctx, tern_xml *item)
{
    cancel_ctx *c = ctx;
    const char *contact = xml_attr(item, "jid");
    tern_subscription sub = item_sub(item);
    if (TERN_SUB_HAS_TO(sub) || xml_attr(item, "ask"))
        route_presence(c->host, "unsubscribe", c->owner, contact);
    if (TERN_SUB_HAS_FROM(sub))
        route_presence(c->host, "unsubscribed", c->owner, contact);
    return 0;
}

static int cancel_request(void *ctx, tern_xml *request)
{
    cancel_ctx *c = ctx;
    route_presence(c->host, "unsubscribed", c->owner, xml_attr(request, "from"));
    return 0;
}

/* An account that goes away cancels every subscription it had, as removing each contact
 * would (RFC 6121 §2.5.2), so contacts' rosters do not keep a subscription to nobody. Runs
 * before the account's data is deleted. */
static void on_account_deleting(tern_host *host, const char *owner, void *data)
{
    (void)data;
    roster_meta meta;
    if (roster_meta_load(host, owner, &meta) != 0)
        return;
    cancel_ctx c = { host, owner };
    if (meta.pending)
        roster_each_record(host, owner, 'p', cancel_request, &c);
    if (meta.items)
        roster_each_record(host, owner, 'i', cancel_item, &c);
}

static void add_features(tern_session *session, tern_xml *features, void *data)
{
    (void)session;
    (void)data;
    xml_add_child(features, "ver", NS_ROSTERVER);
    xml_add_child(features, "sub", NS_PREAPPROVAL);
}

static int roster_module_load(tern_host *host, void **state, char *err, size_t err_len)
{
    roster_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    st->host = host;
    st->api = (tern_roster_api){ api_subscription, api_has_contact, api_each_contact };
    *state = st;
    tern_hook_iq(host, "get", "bare", NS_ROSTER, "query", roster_get, st);
    tern_hook_iq(host, "set", "bare", NS_ROSTER, "query", roster_set, st);
    tern_hook_stanza(host, "presence/out", TERN_PRIORITY_DEFAULT, subscription_out, st);
    tern_hook_stanza(host, "presence/bare", TERN_PRIORITY_DEFAULT, subscription_in, st);
    tern_hook_stanza(host, "presence/full", TERN_PRIORITY_DEFAULT, subscription_in, st);
    tern_hook_session(host, "session/available", deliver_pending, st);
    tern_hook_features(host, add_features, st);
    tern_hook_account(host, "account/deleting", on_account_deleting, st);
    tern_disco_add_feature(host, NS_ROSTER);
    tern_registry_add(host, TERN_REG_DISCO_ACCOUNT_FEATURE, NS_ROSTER, NULL);
    tern_service_provide(host, TERN_SERVICE_ROSTER, &st->api);
    return 0;
}

static void roster_module_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE_SETTINGS("roster", roster_module_load, roster_module_unload, roster_settings);
