/* last — XEP-0012 Last Activity: the server's uptime, and when a local account last logged out
 * and with which status.
 *
 *   to the server (host)       seconds since ternd started (XEP-0012 §5);
 *   to an account (user@host)  answered by the server for the account (XEP-0012 §3): 0 while
 *                              it has an available resource, else the seconds since its last
 *                              logout and the status text of its last unavailable presence;
 *   to a resource              the client's own idle time (XEP-0012 §4): the core delivers the
 *                              request, this module never sees it.
 *
 * The module records a logout itself: an unavailable presence ("session/unavailable"), or an
 * available session that ends without one ("session/closed"). The record lives in the keyval
 * store "last" as "<unix time>\n<status text>", written durably. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/module.h>
#include <tern/roster.h>

#define NS_LAST    "jabber:iq:last"
#define LAST_STORE "last"

typedef struct last_state {
    tern_host *host;
} last_state;

static void reply_seconds(const tern_stanza_event *ev, long long seconds, const char *text)
{
    char value[24];
    snprintf(value, sizeof value, "%lld", seconds < 0 ? 0 : seconds);
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", NS_LAST);
    xml_set_attr(query, "seconds", value);
    if (text && *text)
        xml_add_text(query, text, strlen(text));
    tern_reply(ev, reply);
}

/* ---- the server ---- */

static tern_event_result last_host(const tern_stanza_event *ev, void *data)
{
    (void)data;
    /* XEP-0012 §5: uptime, with no character data. */
    reply_seconds(ev, (long long)(time(NULL) - tern_server_started()), NULL);
    return TERN_HANDLED;
}

/* ---- an account ---- */

/* XEP-0012 §3 and §8: only the account itself and entities allowed to see its presence (a
 * subscription: the account's roster has them with 'from' or 'both') learn anything. Without
 * a roster module nobody has a subscription. */
static bool may_see_presence(tern_host *host, const tern_stanza_event *ev)
{
    if (jid_equal_bare(ev->from, ev->to))
        return true;
    const tern_roster_api *roster = tern_roster(host);
    return roster && TERN_SUB_HAS_FROM(roster->subscription(host, ev->to->bare, ev->from->bare));
}

static void note_available(tern_session *s, void *ctx)
{
    if (tern_session_available(s))
        *(bool *)ctx = true;
}

/* Parses "<unix time>\n<status>"; the status points into value. */
static bool parse_record(const char *value, size_t len, time_t *when, const char **status,
                         size_t *status_len)
{
    const char *nl = memchr(value, '\n', len);
    if (!nl || nl == value)
        return false;
    char digits[24];
    size_t n = (size_t)(nl - value);
    if (n >= sizeof digits)
        return false;
    memcpy(digits, value, n);
    digits[n] = '\0';
    char *end;
    long long t = strtoll(digits, &end, 10);
    if (*end || t < 0)
        return false;
    *when = (time_t)t;
    *status = nl + 1;
    *status_len = len - n - 1;
    return true;
}

static tern_event_result last_account(const tern_stanza_event *ev, void *data)
{
    last_state *st = data;
    if (!may_see_presence(st->host, ev)) {
        /* XEP-0012 §3: MUST return forbidden, whether or not the account is online. */
        tern_reply_error(ev, STANZA_ERR_FORBIDDEN, NULL);
        return TERN_HANDLED;
    }
    bool online = false;
    tern_host_each_session(st->host, ev->to->bare, note_available, &online);
    if (online) {
        /* XEP-0012 §3: an empty query with seconds '0' while a resource is available. */
        reply_seconds(ev, 0, NULL);
        return TERN_HANDLED;
    }
    void *value = NULL;
    size_t len = 0;
    int found = storage_kv_get(tern_host_storage(st->host), LAST_STORE, ev->to->bare, &value,
                               &len);
    if (found < 0) {
        tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return TERN_HANDLED;
    }
    time_t when;
    const char *status;
    size_t status_len;
    if (found == 0 || !parse_record(value, len, &when, &status, &status_len)) {
        /* The XEP has no answer for an account that never logged out; a made-up time would
         * be wrong, so say that nothing is known. */
        free(value);
        tern_reply_error(ev, STANZA_ERR_ITEM_NOT_FOUND, "No last activity is recorded");
        return TERN_HANDLED;
    }
    char *text = malloc(status_len + 1);
    if (!text)
        abort();
    memcpy(text, status, status_len);
    text[status_len] = '\0';
    reply_seconds(ev, (long long)(time(NULL) - when), text);
    free(text);
    free(value);
    return TERN_HANDLED;
}

/* ---- recording logouts ---- */

/* The <status/> of a presence: the one without xml:lang if there is one, else the first
 * (RFC 6121 §4.7.2.2 allows one per language). */
static const char *presence_status(const tern_xml *presence)
{
    const tern_xml *first = NULL;
    for (const tern_xml *c = presence ? xml_first_element(presence) : NULL; c;
         c = xml_next_element(c)) {
        if (!xml_is(c, "status", NS_CLIENT))
            continue;
        if (!xml_attr_ns(c, TERN_XML_NS_XML, "lang"))
            return xml_text(c);
        if (!first)
            first = c;
    }
    return first ? xml_text(first) : "";
}

static void record_logout(last_state *st, tern_session *s, const char *status)
{
    const char *owner = tern_session_jid(s)->bare;
    char head[32];
    int n = snprintf(head, sizeof head, "%lld\n", (long long)time(NULL));
    size_t status_len = strlen(status);
    char *value = malloc((size_t)n + status_len);
    if (!value)
        abort();
    memcpy(value, head, (size_t)n);
    memcpy(value + n, status, status_len);
    if (storage_kv_put(tern_host_storage(st->host), LAST_STORE, owner, value,
                       (size_t)n + status_len) != 0)
        log_error(tern_session_id(s), "last: could not record the logout of %s", owner);
    free(value);
}

/* "session/unavailable": the session sent unavailable presence; it is the session's current
 * presence now. */
static void last_session_unavailable(tern_session *s, void *data)
{
    record_logout(data, s, presence_status(tern_session_presence(s)));
}

/* "session/closed": an available session that ends without unavailable presence logs out
 * too, with no status. One that never sent presence was never visible: nothing to record. */
static void last_session_closed(tern_session *s, void *data)
{
    if (tern_session_available(s))
        record_logout(data, s, "");
}

static void last_account_deleted(tern_host *host, const char *bare, void *data)
{
    (void)data;
    if (storage_kv_delete(tern_host_storage(host), LAST_STORE, bare) != 0)
        log_error(0, "last: could not remove the record of %s", bare);
}

/* ---- loading ---- */

static int last_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    last_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->host = host;
    *state = st;
    tern_hook_iq(host, "get", "host", NS_LAST, "query", last_host, st);
    tern_hook_iq(host, "get", "bare", NS_LAST, "query", last_account, st);
    /* Nothing for "full": a resource answers for itself (XEP-0012 §4), the core delivers. */
    tern_hook_session(host, "session/unavailable", last_session_unavailable, st);
    tern_hook_session(host, "session/closed", last_session_closed, st);
    tern_hook_account(host, "account/deleted", last_account_deleted, st);
    tern_disco_add_feature(host, NS_LAST);
    tern_registry_add(host, TERN_REG_DISCO_ACCOUNT_FEATURE, NS_LAST, NULL);
    return 0;
}

static void last_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE("last", last_load, last_unload);
