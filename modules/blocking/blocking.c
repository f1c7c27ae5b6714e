/* blocking — XEP-0191 Blocking Command: a user's list of blocked JIDs, and its enforcement.
 *
 * The list is one keyval value per account (store "blocklist"): the prepared JIDs, one per
 * line (preparation forbids control characters in every part, so a newline can never be part
 * of an item). It is read from storage whenever a stanza is checked: LMDB reads come from a
 * memory map, and one source of truth means a block is in force the moment its iq-result is
 * sent, on every worker.
 *
 * Enforcement (XEP-0191 §3.3; XEP-0016 "Blocked Entity Attempts to Communicate" agrees):
 *   - "stanza/in" (every stanza to a local account): stanzas from a blocked JID never reach
 *     the user. Presence is dropped; a message is answered with service-unavailable (so the
 *     user looks offline), except errors and headlines, which an offline user would not answer
 *     either; an iq get/set gets service-unavailable; iq result/error is dropped.
 *   - "message/out", "iq/out", "presence/out" (what a client sends): a stanza to a blocked JID
 *     is not routed. Messages and iq requests get <not-acceptable/> with
 *     <blocked xmlns='urn:xmpp:blocking:errors'/>; presence is dropped silently (a presence
 *     error would only make the client show the contact as broken), as are iq results and
 *     errors, which cannot be answered with errors.
 *   - Stanzas the server routes on the user's behalf (presence broadcasts and probe answers of
 *     the presence module): dropped when they are addressed to a JID the user blocked, in
 *     "stanza/in" for local contacts and "presence/remote" for remote ones. This is what keeps
 *     a blocked contact from seeing the user's presence changes.
 * Blocking a contact that may see the user's presence (a 'from' or 'both' subscription) sends it
 * unavailable presence from each available resource; unblocking sends the current presence
 * (XEP-0191 §3.3, §3.4). Directed presence is not tracked here.
 *
 * Deleting an account deletes its list with the rest of its data (the core removes every
 * store's data of the owner). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/module.h>
#include <tern/roster.h>

#define NS_BLOCKING        "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"
#define BLOCKLIST_STORE    "blocklist"

/* The filters run before anything else in their chains: a blocked stanza must not reach
 * carbons, offline storage or delivery. */
#define BLOCKING_FILTER_PRIORITY 100

typedef struct blocking_state {
    tern_host *host;
    unsigned push_serial;
    /* True while this module routes stanzas it made itself (unavailable presence to a contact
     * just blocked, errors to a blocked sender), so its own filters let them through. Handlers
     * never run concurrently and routing is synchronous, so a flag is enough. */
    bool routing_own;
} blocking_state;

/* Session data key: the session asked for the blocklist, so it gets pushes (XEP-0191 §3.3). */
static const char requested_key;

/* ---- small helpers ---- */

static void *blocking_alloc(size_t size)
{
    void *p = malloc(size);
    if (!p)
        abort();
    return p;
}

static char *blocking_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(blocking_alloc(n), s, n);
}

static bool attr_is(const tern_xml *x, const char *name, const char *value)
{
    const char *v = xml_attr(x, name);
    return v && strcmp(v, value) == 0;
}

/* ---- the list ---- */

typedef struct blocklist {
    char **jids;
    size_t n, cap;
} blocklist;

static bool blocklist_contains(const blocklist *bl, const char *jid)
{
    for (size_t i = 0; i < bl->n; i++)
        if (strcmp(bl->jids[i], jid) == 0)
            return true;
    return false;
}

/* Adds jid unless present; returns whether it was added. */
static bool blocklist_add(blocklist *bl, const char *jid)
{
    if (blocklist_contains(bl, jid))
        return false;
    if (bl->n == bl->cap) {
        bl->cap = bl->cap ? bl->cap * 2 : 8;
        char **grown = realloc(bl->jids, bl->cap * sizeof *grown);
        if (!grown)
            abort();
        bl->jids = grown;
    }
    bl->jids[bl->n++] = blocking_strdup(jid);
    return true;
}

/* Removes jid if present; returns whether it was there. */
static bool blocklist_remove(blocklist *bl, const char *jid)
{
    for (size_t i = 0; i < bl->n; i++) {
        if (strcmp(bl->jids[i], jid) == 0) {
            free(bl->jids[i]);
            memmove(&bl->jids[i], &bl->jids[i + 1], (bl->n - i - 1) * sizeof *bl->jids);
            bl->n--;
            return true;
        }
    }
    return false;
}

static void blocklist_free(blocklist *bl)
{
    for (size_t i = 0; i < bl->n; i++)
        free(bl->jids[i]);
    free(bl->jids);
    *bl = (blocklist){ 0 };
}

/* 0 with *bl filled (empty when the account has no list), -1 when storage failed. */
static int blocklist_load(tern_host *host, const char *owner, blocklist *bl)
{
    *bl = (blocklist){ 0 };
    void *value = NULL;
    size_t len = 0;
    int rc = storage_kv_get(tern_host_storage(host), BLOCKLIST_STORE, owner, &value, &len);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    const char *p = value, *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            char *item = blocking_alloc(n + 1);
            memcpy(item, p, n);
            item[n] = '\0';
            blocklist_add(bl, item);
            free(item);
        }
        p += n + 1;
    }
    free(value);
    return 0;
}

/* Durable before it returns (tern/storage.h), so the iq-result that follows is a promise. */
static int blocklist_save(tern_host *host, const char *owner, const blocklist *bl)
{
    tern_storage *storage = tern_host_storage(host);
    if (bl->n == 0)
        return storage_kv_delete(storage, BLOCKLIST_STORE, owner);
    tern_buf buf;
    buf_init(&buf);
    for (size_t i = 0; i < bl->n; i++) {
        buf_append_str(&buf, bl->jids[i]);
        buf_append_str(&buf, "\n");
    }
    int rc = storage_kv_put(storage, BLOCKLIST_STORE, owner, buf.data, buf.len);
    buf_free(&buf);
    return rc;
}

/* XEP-0191 §6 "JID Matching" (the order of XEP-0016 §2.1): an item user@domain/resource
 * matches only that resource; user@domain any of its resources; domain/resource only that
 * JID; a domain matches the domain, everyone at it and its subdomains. `item` is prepared. */
static bool item_matches(const char *item, const tern_jid *who)
{
    if (strcmp(item, who->full) == 0 || strcmp(item, who->bare) == 0 ||
        strcmp(item, who->domain) == 0)
        return true;
    size_t item_len = strlen(item), domain_len = strlen(who->domain);
    return domain_len > item_len + 1 && who->domain[domain_len - item_len - 1] == '.' &&
           strcmp(who->domain + domain_len - item_len, item) == 0;
}

static bool blocklist_matches(const blocklist *bl, const tern_jid *who)
{
    for (size_t i = 0; i < bl->n; i++)
        if (item_matches(bl->jids[i], who))
            return true;
    return false;
}

/* Whether the local account `owner` blocks `peer`. A user never blocks their own account or
 * their own server (through which they manage the list): a domain item naming the user's own
 * domain blocks the other users there, not the service itself. */
static bool is_blocked(blocking_state *st, const char *owner, const tern_jid *peer)
{
    if (strcmp(peer->bare, owner) == 0)
        return false;
    if (!peer->node && strcmp(peer->domain, tern_host_name(st->host)) == 0)
        return false;
    blocklist bl;
    if (blocklist_load(st->host, owner, &bl) != 0) {
        log_warn(0, "blocking: cannot read the blocklist of %s", owner);
        return false;
    }
    bool blocked = blocklist_matches(&bl, peer);
    blocklist_free(&bl);
    return blocked;
}

/* ---- enforcement ---- */

/* Routes a stanza this module made, past its own filters. */
static void route_own(blocking_state *st, tern_xml *stanza)
{
    st->routing_own = true;
    tern_route(st->host, stanza);
    st->routing_own = false;
}

static void reply_error_own(blocking_state *st, const tern_stanza_event *ev,
                            tern_stanza_error cond)
{
    st->routing_own = true;
    tern_reply_error(ev, cond, NULL);
    st->routing_own = false;
}

/* XEP-0191 §3.3: a stanza from a blocked JID to the user. Returns HANDLED (always: it is not
 * delivered). */
static tern_event_result refuse_inbound(blocking_state *st, const tern_stanza_event *ev)
{
    const tern_xml *x = ev->stanza;
    const char *kind = xml_name(x);
    log_debug(0, "blocking: %s from %s to %s blocked", kind, ev->from->full, ev->to->full);
    if (strcmp(kind, "presence") == 0)
        return TERN_HANDLED; /* MUST NOT respond */
    if (strcmp(kind, "message") == 0) {
        /* SHOULD answer service-unavailable, which is what an offline user's server says;
         * headlines and errors are never answered (RFC 6121 §8.5.2.2). */
        if (!attr_is(x, "type", "headline") && !attr_is(x, "type", "error"))
            reply_error_own(st, ev, STANZA_ERR_SERVICE_UNAVAILABLE);
        return TERN_HANDLED;
    }
    if (attr_is(x, "type", "get") || attr_is(x, "type", "set"))
        reply_error_own(st, ev, STANZA_ERR_SERVICE_UNAVAILABLE);
    return TERN_HANDLED; /* iq result and error: silently dropped */
}

/* A stanza the server routes for a local account of this host (no origin session): dropped
 * when its destination is blocked by that account. */
static bool server_routed_to_blocked(blocking_state *st, const tern_stanza_event *ev)
{
    if (ev->origin || !ev->from->node || strcmp(ev->from->domain, tern_host_name(st->host)) != 0)
        return false;
    return is_blocked(st, ev->from->bare, ev->to);
}

static tern_event_result filter_inbound(const tern_stanza_event *ev, void *data)
{
    blocking_state *st = data;
    if (st->routing_own || !ev->to->node)
        return TERN_PASS;
    if (is_blocked(st, ev->to->bare, ev->from))
        return refuse_inbound(st, ev);
    if (server_routed_to_blocked(st, ev)) {
        log_debug(0, "blocking: not routing %s from %s to blocked %s", xml_name(ev->stanza),
                  ev->from->full, ev->to->full);
        return TERN_HANDLED;
    }
    return TERN_PASS;
}

static tern_event_result filter_remote_presence(const tern_stanza_event *ev, void *data)
{
    blocking_state *st = data;
    if (st->routing_own || !server_routed_to_blocked(st, ev))
        return TERN_PASS;
    return TERN_HANDLED;
}

/* XEP-0191 §3.3: the user sends to a JID they blocked. The error goes straight to the sending
 * session: routing it would put it through the inbound filter, which drops everything from a
 * blocked JID. */
static tern_event_result filter_outbound(const tern_stanza_event *ev, void *data)
{
    blocking_state *st = data;
    if (!ev->origin || !is_blocked(st, ev->from->bare, ev->to))
        return TERN_PASS;
    const tern_xml *x = ev->stanza;
    log_debug(tern_session_id(ev->origin), "blocking: %s to blocked %s refused", xml_name(x),
              ev->to->full);
    bool answer = strcmp(xml_name(x), "message") == 0
                      ? !attr_is(x, "type", "error")
                      : strcmp(xml_name(x), "iq") == 0 &&
                            (attr_is(x, "type", "get") || attr_is(x, "type", "set"));
    if (!answer)
        return TERN_HANDLED;
    tern_xml *reply = stanza_error_reply(x, STANZA_ERR_NOT_ACCEPTABLE, NULL);
    if (!reply)
        return TERN_HANDLED;
    xml_set_attr(reply, "from", ev->to->full);
    xml_set_attr(reply, "to", ev->from->full);
    /* The error type is XEP-0191's (its example: cancel, since trying again cannot help),
     * not the modify RFC 6120 §8.3.3.9 suggests for not-acceptable in general. */
    tern_xml *error = xml_child(reply, "error", NULL);
    if (error) {
        xml_set_attr(error, "type", "cancel");
        xml_add_child(error, "blocked", NS_BLOCKING_ERRORS);
    }
    tern_session_send(ev->origin, reply);
    xml_unref(reply);
    return TERN_HANDLED;
}

/* ---- presence on block and unblock (XEP-0191 §3.3, §3.4) ---- */

/* Where presence about a changed block goes: roster contacts that may see the user's presence
 * (RFC 6121 §4.2.2: subscription 'from' or 'both') and that a changed item covers. An item for
 * one resource (user@domain/res) covers only that resource, so presence goes to it alone. */
typedef struct presence_targets {
    const blocklist *changed; /* items just blocked or unblocked */
    const blocklist *still;   /* the list after the change: those stay hidden */
    blocklist targets;        /* JIDs to send presence to */
} presence_targets;

static void collect_target(void *ctx, const char *contact)
{
    presence_targets *pt = ctx;
    tern_jid jid, item;
    const char *why;
    if (jid_parse(contact, &jid, &why) != 0)
        return;
    for (size_t i = 0; i < pt->changed->n; i++) {
        if (jid_parse(pt->changed->jids[i], &item, &why) != 0)
            continue;
        /* The whole contact, or just the one resource the item names. */
        const tern_jid *target = NULL;
        if (item_matches(item.full, &jid))
            target = &jid;
        else if (item.resource && strcmp(item.bare, jid.bare) == 0)
            target = &item;
        if (target && (!pt->still || !blocklist_matches(pt->still, target)))
            blocklist_add(&pt->targets, target->full);
        jid_free(&item);
    }
    jid_free(&jid);
}

typedef struct presence_send {
    blocking_state *st;
    const blocklist *targets;
    bool available; /* send current presence (unblock) rather than unavailable (block) */
} presence_send;

static void send_presence_from(tern_session *s, void *ctx)
{
    presence_send *ps = ctx;
    const tern_xml *current = tern_session_presence(s);
    if (!tern_session_available(s) || (ps->available && !current))
        return;
    for (size_t i = 0; i < ps->targets->n; i++) {
        tern_xml *p;
        if (ps->available) {
            p = xml_copy(current);
        } else {
            p = xml_new("presence", NS_CLIENT);
            xml_set_attr(p, "type", "unavailable");
        }
        xml_set_attr(p, "from", tern_session_jid(s)->full);
        xml_set_attr(p, "to", ps->targets->jids[i]);
        route_own(ps->st, p);
    }
}

static void send_block_presence(blocking_state *st, const char *owner, const blocklist *changed,
                                const blocklist *still, bool available)
{
    const tern_roster_api *roster = tern_roster(st->host);
    if (!roster || changed->n == 0)
        return; /* without a roster nobody is subscribed to the user's presence */
    presence_targets pt = { changed, still, { 0 } };
    roster->each_contact(st->host, owner, false, true, collect_target, &pt);
    presence_send ps = { st, &pt.targets, available };
    if (pt.targets.n > 0)
        tern_host_each_session(st->host, owner, send_presence_from, &ps);
    blocklist_free(&pt.targets);
}

/* ---- the protocol (XEP-0191 §3.2 - §3.5) ---- */

typedef struct push_ctx {
    blocking_state *st;
    const tern_xml *payload; /* <block/> or <unblock/> */
    const char *owner;
} push_ctx;

static void push_to_session(tern_session *s, void *ctx)
{
    push_ctx *pc = ctx;
    if (!tern_session_get_data(s, &requested_key))
        return;
    char id[32];
    snprintf(id, sizeof id, "block-push-%u", ++pc->st->push_serial);
    tern_xml *iq = xml_new("iq", NS_CLIENT);
    xml_set_attr(iq, "type", "set");
    xml_set_attr(iq, "id", id);
    xml_set_attr(iq, "from", pc->owner);
    xml_set_attr(iq, "to", tern_session_jid(s)->full);
    xml_add_copy(iq, pc->payload);
    tern_session_send(s, iq);
    xml_unref(iq);
}

/* XEP-0191 §3.3, §3.4: every resource that asked for the list learns of the change. */
static void push_change(blocking_state *st, const char *owner, const char *element,
                        const blocklist *items)
{
    tern_xml *payload = xml_new(element, NS_BLOCKING);
    for (size_t i = 0; items && i < items->n; i++)
        xml_set_attr(xml_add_child(payload, "item", NULL), "jid", items->jids[i]);
    push_ctx pc = { st, payload, owner };
    tern_host_each_session(st->host, owner, push_to_session, &pc);
    xml_unref(payload);
}

/* The list belongs to the account: only its own resources may read or change it. */
static bool from_own_resource(const tern_stanza_event *ev)
{
    return ev->origin && jid_equal_bare(ev->from, ev->to);
}

static tern_event_result blocklist_get(const tern_stanza_event *ev, void *data)
{
    blocking_state *st = data;
    if (!from_own_resource(ev))
        return TERN_PASS; /* the core answers service-unavailable */
    blocklist bl;
    if (blocklist_load(st->host, ev->to->bare, &bl) != 0) {
        tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return TERN_HANDLED;
    }
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *list = xml_add_child(reply, "blocklist", NS_BLOCKING);
    for (size_t i = 0; i < bl.n; i++)
        xml_set_attr(xml_add_child(list, "item", NULL), "jid", bl.jids[i]);
    blocklist_free(&bl);
    tern_session_set_data(ev->origin, &requested_key, (void *)&requested_key, NULL);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

/* Reads the <item jid=.../> children of <block/> or <unblock/> into items, prepared. On a bad
 * item answers the iq and returns -1 (XEP-0191 §3.3: a JID that cannot be prepared is
 * jid-malformed, RFC 6120 §8.3.3.8). */
static int read_items(const tern_stanza_event *ev, const char *element, blocklist *items)
{
    *items = (blocklist){ 0 };
    const tern_xml *command = xml_child(ev->stanza, element, NS_BLOCKING);
    for (const tern_xml *c = xml_first_element(command); c; c = xml_next_element(c)) {
        if (!xml_is(c, "item", NS_BLOCKING))
            continue;
        const char *text = xml_attr(c, "jid");
        tern_jid jid;
        const char *why = NULL;
        if (!text) {
            tern_reply_error(ev, STANZA_ERR_BAD_REQUEST, "an item needs a 'jid' attribute");
            blocklist_free(items);
            return -1;
        }
        if (jid_parse(text, &jid, &why) != 0) {
            tern_reply_error(ev, STANZA_ERR_JID_MALFORMED, why);
            blocklist_free(items);
            return -1;
        }
        blocklist_add(items, jid.full);
        jid_free(&jid);
    }
    return 0;
}

static tern_event_result block_set(const tern_stanza_event *ev, void *data)
{
    blocking_state *st = data;
    if (!from_own_resource(ev))
        return TERN_PASS;
    const char *owner = ev->to->bare;
    blocklist items, list, added = { 0 };
    if (read_items(ev, "block", &items) != 0)
        return TERN_HANDLED;
    if (items.n == 0) {
        /* XEP-0191 §3.3: at least one item. */
        tern_reply_error(ev, STANZA_ERR_BAD_REQUEST, "nothing to block");
        return TERN_HANDLED;
    }
    if (blocklist_load(st->host, owner, &list) != 0) {
        tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        blocklist_free(&items);
        return TERN_HANDLED;
    }
    for (size_t i = 0; i < items.n; i++)
        if (blocklist_add(&list, items.jids[i]))
            blocklist_add(&added, items.jids[i]);
    int rc = added.n > 0 ? blocklist_save(st->host, owner, &list) : 0;
    if (rc != 0) {
        tern_reply_error(ev, tern_storage_error(rc), NULL);
    } else {
        log_info(tern_session_id(ev->origin), "blocking: %s blocked %zu JID(s)", owner, added.n);
        tern_reply(ev, tern_iq_result_new(ev));
        send_block_presence(st, owner, &added, NULL, false);
        push_change(st, owner, "block", &items);
    }
    blocklist_free(&added);
    blocklist_free(&list);
    blocklist_free(&items);
    return TERN_HANDLED;
}

static tern_event_result unblock_set(const tern_stanza_event *ev, void *data)
{
    blocking_state *st = data;
    if (!from_own_resource(ev))
        return TERN_PASS;
    const char *owner = ev->to->bare;
    blocklist items, list, removed = { 0 };
    if (read_items(ev, "unblock", &items) != 0)
        return TERN_HANDLED;
    if (blocklist_load(st->host, owner, &list) != 0) {
        tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        blocklist_free(&items);
        return TERN_HANDLED;
    }
    if (items.n == 0) {
        /* XEP-0191 §3.5: an empty <unblock/> unblocks everyone. */
        removed = list;
        list = (blocklist){ 0 };
    } else {
        for (size_t i = 0; i < items.n; i++)
            if (blocklist_remove(&list, items.jids[i]))
                blocklist_add(&removed, items.jids[i]);
    }
    int rc = removed.n > 0 ? blocklist_save(st->host, owner, &list) : 0;
    if (rc != 0) {
        tern_reply_error(ev, tern_storage_error(rc), NULL);
    } else {
        log_info(tern_session_id(ev->origin), "blocking: %s unblocked %zu JID(s)", owner,
                 removed.n);
        tern_reply(ev, tern_iq_result_new(ev));
        send_block_presence(st, owner, &removed, &list, true);
        push_change(st, owner, "unblock", items.n ? &items : NULL);
    }
    blocklist_free(&removed);
    blocklist_free(&list);
    blocklist_free(&items);
    return TERN_HANDLED;
}

/* ---- module ---- */

static int blocking_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    blocking_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->host = host;
    *state = st;
    tern_hook_iq(host, "get", "bare", NS_BLOCKING, "blocklist", blocklist_get, st);
    tern_hook_iq(host, "set", "bare", NS_BLOCKING, "block", block_set, st);
    tern_hook_iq(host, "set", "bare", NS_BLOCKING, "unblock", unblock_set, st);
    tern_hook_stanza(host, "stanza/in", BLOCKING_FILTER_PRIORITY, filter_inbound, st);
    tern_hook_stanza(host, "message/out", BLOCKING_FILTER_PRIORITY, filter_outbound, st);
    tern_hook_stanza(host, "presence/out", BLOCKING_FILTER_PRIORITY, filter_outbound, st);
    tern_hook_stanza(host, "iq/out", BLOCKING_FILTER_PRIORITY, filter_outbound, st);
    tern_hook_stanza(host, "presence/remote", BLOCKING_FILTER_PRIORITY, filter_remote_presence,
                     st);
    tern_disco_add_feature(host, NS_BLOCKING);
    return 0;
}

static void blocking_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE("blocking", blocking_load, blocking_unload);
