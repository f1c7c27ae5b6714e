/* carbons — XEP-0280 Message Carbons: every carbons-enabled resource of a user sees both sides
 * of the user's conversations, whichever resource they happen on.
 *
 * A client turns carbons on and off for its own session (§4, §5; remembered as session data,
 * so it ends with the session). Then:
 *   - received carbons (§7): an eligible message arriving for a local account is copied,
 *     wrapped in <received><forwarded>, to each other available carbons-enabled resource of
 *     that account that does not get the message itself by the RFC 6121 §8.5 rules. The copies
 *     are made in "message/bare" and "message/full" at a priority above the default, before the
 *     core (or another module) delivers the original, and the handlers always pass;
 *   - sent carbons (§8): an eligible message a client sends is copied, wrapped in
 *     <sent><forwarded>, to each other available carbons-enabled resource of the sender
 *     ("message/out", below the default priority so that filters such as blocking decide
 *     first whether the message goes anywhere).
 * Copies go straight to the sessions (tern_session_send), never through the router, so a carbon
 * is never itself copied. Messages between resources of one account are not copied: every
 * party to that exchange is the user. */
#include <stdbool.h>
#include <string.h>

#include <tern/module.h>

#define NS_CARBONS    "urn:xmpp:carbons:2"
#define NS_FORWARD    "urn:xmpp:forward:0"
#define NS_HINTS      "urn:xmpp:hints"                          /* XEP-0334 */
#define NS_MUC_USER   "http://jabber.org/protocol/muc#user"     /* XEP-0045 */
#define NS_CONFERENCE "jabber:x:conference"                     /* XEP-0249 */
#define NS_RECEIPTS   "urn:xmpp:receipts"                       /* XEP-0184 */
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"   /* XEP-0085 */
#define NS_MARKERS    "urn:xmpp:chat-markers:0"                 /* XEP-0333 */

/* Received carbons must be made before delivery of the original; sent carbons after the
 * outbound filters (blocking runs at 100) had their say. */
#define CARBONS_RECEIVED_PRIORITY 10
#define CARBONS_SENT_PRIORITY     (-10)

/* Session data key: carbons are enabled for the session. */
static const char enabled_key;

typedef enum direction { RECEIVED, SENT } direction;

/* ---- eligibility (XEP-0280 §6.1, the recommended rules) ---- */

static bool has_child_ns(const tern_xml *m, const char *xmlns)
{
    return xml_child(m, NULL, xmlns) != NULL;
}

/* Payloads clients use in one-to-one IM without a body (§6.1: receipts, chat states,
 * markers). */
static bool has_im_payload(const tern_xml *m)
{
    return xml_child(m, "request", NS_RECEIPTS) || xml_child(m, "received", NS_RECEIPTS) ||
           has_child_ns(m, NS_CHATSTATES) || xml_child(m, "markable", NS_MARKERS) ||
           xml_child(m, "received", NS_MARKERS) || xml_child(m, "displayed", NS_MARKERS) ||
           xml_child(m, "acknowledged", NS_MARKERS);
}

static bool is_eligible(const tern_xml *m, direction dir, const tern_jid *to)
{
    const char *type = tern_message_type(m);
    /* groupchat: the MUC service copies to every joined client itself. error: only as the
     * answer to an eligible message, which would need tracking (§6.1 says this is rarely
     * worth it). headline: notifications, not conversation (RFC 6121 §5.2.2). */
    if (strcmp(type, "groupchat") == 0 || strcmp(type, "error") == 0 ||
        strcmp(type, "headline") == 0)
        return false;
    /* §9 and XEP-0334: the sender asked for no copies. A <received/> or <sent/> inside
     * is a carbon (or a forgery of one): never copied again. */
    if (xml_child(m, "private", NS_CARBONS) || xml_child(m, "no-copy", NS_HINTS) ||
        xml_child(m, "received", NS_CARBONS) || xml_child(m, "sent", NS_CARBONS))
        return false;
    /* §6.1 on MUC: invitations are copied; a private message from the user to an occupant
     * (a full JID) is copied; one from an occupant to the user is not (the MUC service
     * already sends it to every client that joined). */
    const tern_xml *muc = xml_child(m, "x", NS_MUC_USER);
    if (xml_child(m, "x", NS_CONFERENCE) || (muc && xml_child(muc, "invite", NS_MUC_USER)))
        return true;
    if (muc)
        return dir == SENT && to->resource != NULL;
    if (strcmp(type, "chat") == 0)
        return true;
    return xml_child(m, "body", NULL) != NULL || has_im_payload(m);
}

/* ---- copies ---- */

typedef struct copy_ctx {
    const tern_xml *original;
    direction dir;
    const char *bare;          /* the account: the carbon's 'from' (§7, §8) */
    const tern_session *skip;  /* the origin (sent) or the one addressed resource (received) */
    int best;                  /* received for a bare JID: who got the original by priority */
    bool to_bare;
} copy_ctx;

/* RFC 6121 §8.5.2.1.1, as the core's deliver_to_highest: a chat or normal message to the
 * bare JID goes to the available resources with the highest non-negative priority. */
static void find_best_priority(tern_session *s, void *ctx)
{
    copy_ctx *cc = ctx;
    if (tern_session_available(s) && tern_session_priority(s) >= 0 &&
        tern_session_priority(s) > cc->best)
        cc->best = tern_session_priority(s);
}

static bool gets_original(const copy_ctx *cc, const tern_session *s)
{
    if (s == cc->skip)
        return true;
    return cc->dir == RECEIVED && cc->to_bare && cc->best >= 0 &&
           tern_session_available(s) && tern_session_priority(s) == cc->best;
}

static void send_copy(tern_session *s, void *ctx)
{
    copy_ctx *cc = ctx;
    if (!tern_session_available(s) || !tern_session_get_data(s, &enabled_key) ||
        gets_original(cc, s))
        return;
    tern_xml *wrapper = xml_new("message", NS_CLIENT);
    xml_set_attr(wrapper, "from", cc->bare);
    xml_set_attr(wrapper, "to", tern_session_jid(s)->full);
    /* §7, §8: the wrapper SHOULD keep the original's type. */
    const char *type = xml_attr(cc->original, "type");
    if (type)
        xml_set_attr(wrapper, "type", type);
    tern_xml *kind = xml_add_child(wrapper, cc->dir == SENT ? "sent" : "received", NS_CARBONS);
    tern_xml *forwarded = xml_add_child(kind, "forwarded", NS_FORWARD);
    xml_add_copy(forwarded, cc->original);
    tern_session_send(s, wrapper);
    xml_unref(wrapper);
}

typedef struct find_resource {
    const char *resource;
    const tern_session *found;
} find_resource;

static void match_resource(tern_session *s, void *ctx)
{
    find_resource *fr = ctx;
    if (strcmp(tern_session_jid(s)->resource, fr->resource) == 0)
        fr->found = s;
}

/* Whether a session of `bare` other than `skip` takes copies at all. Most accounts have no
 * carbons-enabled client, and then the eligibility rules need not be worked out for every
 * message: send_copy() would send nothing anyway, and is_eligible() only reads. */
typedef struct any_enabled {
    const tern_session *skip;
    bool found;
} any_enabled;

static void find_enabled(tern_session *s, void *ctx)
{
    any_enabled *ae = ctx;
    if (s != ae->skip && tern_session_available(s) && tern_session_get_data(s, &enabled_key))
        ae->found = true;
}

static bool anyone_wants_copies(tern_host *host, const char *bare, const tern_session *skip)
{
    any_enabled ae = { skip, false };
    tern_host_each_session(host, bare, find_enabled, &ae);
    return ae.found;
}

/* ---- handlers ---- */

/* §9: the receiving server SHOULD remove <private/> before delivering the message. */
static void strip_private(tern_xml *m)
{
    tern_xml *priv;
    while ((priv = xml_child(m, "private", NS_CARBONS)) != NULL)
        xml_remove_child(m, priv);
}

static tern_event_result copy_received(const tern_stanza_event *ev, void *data)
{
    tern_host *host = data;
    if (!anyone_wants_copies(host, ev->to->bare, NULL)) {
        strip_private(ev->stanza);
        return TERN_PASS;
    }
    bool eligible = is_eligible(ev->stanza, RECEIVED, ev->to);
    strip_private(ev->stanza);
    if (!eligible || jid_equal_bare(ev->from, ev->to))
        return TERN_PASS;
    copy_ctx cc = { ev->stanza, RECEIVED, ev->to->bare, NULL, -1, ev->to->resource == NULL };
    if (ev->to->resource) {
        find_resource fr = { ev->to->resource, NULL };
        tern_host_each_session(host, ev->to->bare, match_resource, &fr);
        /* A resource that is not bound: the core re-routes a chat or normal message to the
         * bare JID, and "message/bare" copies it then. */
        if (!fr.found)
            return TERN_PASS;
        cc.skip = fr.found;
    } else {
        tern_host_each_session(host, ev->to->bare, find_best_priority, &cc);
    }
    tern_host_each_session(host, ev->to->bare, send_copy, &cc);
    return TERN_PASS;
}

static tern_event_result copy_sent(const tern_stanza_event *ev, void *data)
{
    tern_host *host = data;
    if (!ev->origin || jid_equal_bare(ev->from, ev->to) ||
        !anyone_wants_copies(host, ev->from->bare, ev->origin) ||
        !is_eligible(ev->stanza, SENT, ev->to))
        return TERN_PASS;
    copy_ctx cc = { ev->stanza, SENT, ev->from->bare, ev->origin, -1, false };
    tern_host_each_session(host, ev->from->bare, send_copy, &cc);
    return TERN_PASS;
}

/* §4, §5: a client switches carbons for its own session. Repeating either is not an error
 * (§10.1). Another entity cannot switch them (§4.1, §5.1: not-allowed). */
static tern_event_result switch_carbons(const tern_stanza_event *ev, bool enable)
{
    if (!ev->origin || !jid_equal_bare(ev->from, ev->to)) {
        tern_reply_error(ev, STANZA_ERR_NOT_ALLOWED, NULL);
        return TERN_HANDLED;
    }
    tern_session_set_data(ev->origin, &enabled_key, enable ? (void *)&enabled_key : NULL, NULL);
    log_debug(tern_session_id(ev->origin), "carbons: %s", enable ? "enabled" : "disabled");
    tern_reply(ev, tern_iq_result_new(ev));
    return TERN_HANDLED;
}

static tern_event_result carbons_enable(const tern_stanza_event *ev, void *data)
{
    (void)data;
    return switch_carbons(ev, true);
}

static tern_event_result carbons_disable(const tern_stanza_event *ev, void *data)
{
    (void)data;
    return switch_carbons(ev, false);
}

static int carbons_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    tern_hook_iq(host, "set", "bare", NS_CARBONS, "enable", carbons_enable, NULL);
    tern_hook_iq(host, "set", "bare", NS_CARBONS, "disable", carbons_disable, NULL);
    tern_hook_stanza(host, "message/bare", CARBONS_RECEIVED_PRIORITY, copy_received, host);
    tern_hook_stanza(host, "message/full", CARBONS_RECEIVED_PRIORITY, copy_received, host);
    tern_hook_stanza(host, "message/out", CARBONS_SENT_PRIORITY, copy_sent, host);
    tern_disco_add_feature(host, NS_CARBONS);
    return 0;
}

TERN_MODULE("carbons", carbons_load, NULL);
