/* tern/module.h — the whole module API (with the other headers in src/tern/).
 *
 * A module is one shared object, loaded per host when that host's `modules =` line names it.
 * It declares itself with TERN_MODULE(); its load() registers hooks, iq handlers, disco items and
 * timers for one host. Everything a module registers — in load() or later, from a hook or a
 * timer — belongs to it (the core tells by the shared object the function or key lives in):
 * when the module unloads, the core first calls unload() (while its timers and hooks still
 * exist, so it may cancel them) and then removes what is left, its per-session data included.
 * unload() only frees the module's own state.
 *
 * Event names are checked: hooking a name that no code fires (a typo, "iq-get/host" without
 * the payload) is refused with -1 and a logged error, and when it happens in load() the load
 * fails with a message naming the event.
 *
 * Stanza events are named "<kind>/<destination>" where kind is message, presence, iq-get, iq-set,
 * iq-result or iq-error and destination is the class of the 'to' address:
 *   host   the server itself (to="example.org" or "example.org/resource")
 *   bare   a local account (to="user@example.org")
 *   full   a local account's resource (to="user@example.org/res")
 *   remote another domain (the s2s module claims these)
 * iq-get and iq-set events also carry the payload: "iq-get/host/urn:xmpp:ping:ping" (namespace,
 * ':' and element name), except remote ones ("iq-get/remote"). Handlers run in descending
 * priority; the first that returns TERN_HANDLED ends the chain. The core's own default behaviour (RFC 6121 §8 delivery, or a
 * service-unavailable error for an iq nobody claims) runs when every handler passed.
 *
 * Around those, for filters that must see every stanza whatever its kind:
 *   "stanza/in"   before the events above, for every stanza to a local account (bare or full);
 *   "message/out", "presence/out", "iq/out"
 *                 for every stanza a local session sends, before it is routed (ev->origin set);
 *   "presence/broadcast"
 *                 presence without 'to' from a session (initial, updated or unavailable
 *                 presence), after the session's own state was updated.
 * A handler that returns TERN_HANDLED from any of them has taken care of the stanza (answered,
 * dropped or routed it itself). Handlers may modify ev->stanza before passing it on.
 *
 * Threads: every handler, timer and session function of this API runs on the main event loop;
 * worker threads (`workers`) only carry client connections' bytes, TLS and XML parsing. So
 * module state needs no locks. A handler must still not keep pointers to sessions beyond the
 * call: the session may end in the meantime. */
#ifndef TERN_MODULE_H
#define TERN_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tern/account.h"
#include "tern/error.h"
#include "tern/jid.h"
#include "tern/log.h"
#include "tern/ns.h"
#include "tern/storage.h"
#include "tern/xml.h"

#define TERN_MODULE_API_VERSION 5 /* 2: settings; 3: delivery and element hooks, ownership;
                                   * 4: hooks before authentication; 5: queued storage calls,
                                   * output slots, domains of their own, storage figures in
                                   * tern_server_stats */

typedef struct tern_host tern_host;
typedef struct tern_session tern_session;

/* ---- settings ----
 * A module declares its settings; operators write them in a [module NAME] section, or for one
 * host as "NAME.key = value" in its [host X] section. ternd -t, every start and every SIGHUP
 * check each value against the declaration (an unknown key is refused and the known ones
 * listed), so a getter never sees a bad value. The getters read the running configuration
 * each time: a module that asks when it needs the value, not once at load, follows SIGHUP. */
typedef enum tern_setting_type {
    TERN_SETTING_UINT,   /* a whole number in min..max */
    TERN_SETTING_BOOL,   /* yes/no, true/false, on/off, 1/0 */
    TERN_SETTING_STRING, /* text (words of a list are separated by spaces), checked by check() */
} tern_setting_type;

typedef struct tern_setting_def {
    const char *key;           /* a-z, 0-9 and _ */
    tern_setting_type type;
    const char *default_value; /* as it would be written in the file */
    unsigned long min, max;    /* TERN_SETTING_UINT */
    const char *doc;           /* one line, for tern.conf(5) and `ternd -s` */
    /* TERN_SETTING_STRING, may be NULL: whether `value` is acceptable; if not, why. */
    bool (*check)(const char *value, char *why, size_t why_len);
} tern_setting_def;

typedef struct tern_module_def {
    unsigned api_version;
    const char *name; /* the file's name without ".so" */
    /* Called once per host that loads the module. Returns 0, or -1 with a reason in err. */
    int (*load)(tern_host *host, void **state, char *err, size_t err_len);
    void (*unload)(tern_host *host, void *state); /* may be NULL */
    const tern_setting_def *settings; /* ends with an entry whose key is NULL; may be NULL */
} tern_module_def;

#define TERN_MODULE_SYMBOL "tern_module_definition"
#define TERN_MODULE_SETTINGS(name_, load_, unload_, settings_)                               \
    __attribute__((visibility("default"))) const tern_module_def tern_module_definition = { \
        TERN_MODULE_API_VERSION, (name_), (load_), (unload_), (settings_)}
#define TERN_MODULE(name_, load_, unload_) TERN_MODULE_SETTINGS(name_, load_, unload_, NULL)

/* The value of the module's setting `key` for this host: the host's override, else the
 * [module] section's, else the declared default. `module` is the caller's own name; asking
 * for a key the module did not declare is a bug (logged; 0, false or "" is returned). A
 * string stays valid until the handler returns. */
unsigned long tern_setting_uint(tern_host *host, const char *module, const char *key);
bool tern_setting_bool(tern_host *host, const char *module, const char *key);
const char *tern_setting_string(tern_host *host, const char *module, const char *key);

/* ---- stanza events ---- */

typedef enum tern_event_result { TERN_PASS = 0, TERN_HANDLED = 1 } tern_event_result;

typedef struct tern_stanza_event {
    tern_host *host;       /* the local host the stanza is addressed to (or comes from) */
    tern_xml *stanza;      /* borrowed; xml_ref() it to keep it */
    const tern_jid *from;  /* prepared sender address */
    const tern_jid *to;    /* prepared destination (defaulted per RFC 6120 §10.3) */
    tern_session *origin;  /* the local session it came from, or NULL */
} tern_stanza_event;

typedef tern_event_result (*tern_stanza_handler)(const tern_stanza_event *ev, void *data);

#define TERN_PRIORITY_DEFAULT 0

int tern_hook_stanza(tern_host *host, const char *event, int priority, tern_stanza_handler fn,
                     void *data);
/* Shortcut: type "get" or "set", destination "host", "bare" or "full". */
int tern_hook_iq(tern_host *host, const char *type, const char *destination, const char *xmlns,
                 const char *element, tern_stanza_handler fn, void *data);

/* ---- session events ---- */

/* "session/bound"       a resource was bound;
 * "session/available"   the session sent its initial presence;
 * "session/unavailable" the session sent an unavailable presence;
 * "session/closed"      the session is going away; it is still bound, and
 *                       tern_session_available() still says whether it was available (if so,
 *                       no unavailable presence was sent: a presence module sends one for it). */
typedef void (*tern_session_handler)(tern_session *session, void *data);
int tern_hook_session(tern_host *host, const char *event, tern_session_handler fn, void *data);

/* ---- delivery ----
 * Runs just before a stanza reaches a session's client — every stanza the router delivers and
 * every tern_session_send() — in descending priority. A handler that returns TERN_HANDLED has
 * taken the stanza: it dropped it, or holds it (xml_copy() or xml_ref() it; it is shared with
 * other sessions, so never change it) and sends it later with tern_session_send_past(), which
 * runs only the delivery hooks below its own priority. For CSI filtering, Stream Management
 * queueing and archiving of what a client actually received. */
typedef tern_event_result (*tern_deliver_handler)(tern_session *session, const tern_xml *stanza,
                                                  void *data);
int tern_hook_deliver(tern_host *host, int priority, tern_deliver_handler fn, void *data);

/* ---- stream elements ----
 * Elements a bound client sends on its stream that are not stanzas (XEP-0352 <inactive/>,
 * XEP-0198 <enable/> and <r/>): a handler claims a namespace and, unless name is NULL, one
 * element name. One that returns TERN_HANDLED has answered it (tern_session_send_element()); an
 * element nobody handles ends the stream with <unsupported-stanza-type/> (RFC 6120 §4.9.3.22).
 * Advertise the extension with tern_hook_features(). */
typedef tern_event_result (*tern_element_handler)(tern_session *session,
                                                  const tern_xml *element, void *data);
int tern_hook_element(tern_host *host, const char *xmlns, const char *name,
                      tern_element_handler fn, void *data);

/* ---- before authentication ----
 * A client stream that has not authenticated carries only STARTTLS, SASL and what a module
 * claims here: iq requests whose payload is in `xmlns` (XEP-0077 in-band registration). The
 * handler returns the reply, which the core sends (ownership passes). An iq in a namespace no
 * module claims is answered <service-unavailable/> when it is jabber:iq:register (a client
 * asking to register where nobody offers it), else the stream ends with <not-authorized/>
 * (RFC 6120 §4.9.3.12). Features for such a stream come from
 * tern_hook_preauth_features(). */
typedef struct tern_preauth {
    tern_host *host;  /* the host the stream is for */
    const char *peer; /* the client's "address:port" */
    bool secure;      /* encrypted, or [c2s] require_tls = no: a password may travel here */
} tern_preauth;
typedef tern_xml *(*tern_preauth_iq_handler)(const tern_preauth *stream, const tern_xml *iq,
                                             void *data);
int tern_hook_preauth_iq(tern_host *host, const char *xmlns, tern_preauth_iq_handler fn,
                         void *data);
typedef void (*tern_preauth_features_handler)(const tern_preauth *stream, tern_xml *features,
                                              void *data);
int tern_hook_preauth_features(tern_host *host, tern_preauth_features_handler fn, void *data);
/* The host's `registration =` setting: whether clients may create accounts themselves. */
bool tern_host_registration_open(const tern_host *host);

/* ---- stream features ----
 * Called while building <stream:features/> for an authenticated client stream (before resource
 * binding, so `session` is NULL today); a handler adds its feature elements to `features`. */
typedef void (*tern_features_handler)(tern_session *session, tern_xml *features, void *data);
int tern_hook_features(tern_host *host, tern_features_handler fn, void *data);

/* ---- registries ----
 * Named collections that several modules contribute to and one collects from, whatever the
 * load order. Items are strings (a disco feature namespace) with optional data. */
int tern_registry_add(tern_host *host, const char *registry, const char *item, const void *data);
typedef void (*tern_registry_fn)(void *ctx, const char *item, const void *data);
void tern_registry_each(tern_host *host, const char *registry, tern_registry_fn fn, void *ctx);

/* Well-known registries with typed helpers. */
#define TERN_REG_DISCO_FEATURE  "disco-feature"   /* item: feature var */
#define TERN_REG_DISCO_IDENTITY "disco-identity"  /* item: "category/type", data: name */
#define TERN_REG_DISCO_ACCOUNT_FEATURE "disco-account-feature" /* features of user@host */
void tern_disco_add_feature(tern_host *host, const char *var);
/* XEP-0128 service discovery extensions: a data form in the host's disco#info (XEP-0157
 * contact addresses, say), built by `add` for each answer, so that it shows the settings in
 * force. Registered under its FORM_TYPE with tern_disco_add_extension(); `ext` must outlive
 * the registration (a static of the module). */
#define TERN_REG_DISCO_EXTENSION "disco-extension" /* item: FORM_TYPE, data: extension */
typedef struct tern_disco_extension {
    /* Adds one <x xmlns='jabber:x:data' type='result'/> to `query`, or nothing. */
    void (*add)(tern_host *host, tern_xml *query);
} tern_disco_extension;
void tern_disco_add_extension(tern_host *host, const char *form_type,
                              const tern_disco_extension *ext);
void tern_disco_add_identity(tern_host *host, const char *category, const char *type,
                             const char *name);

/* Services: a module that offers an API to other modules provides a struct of function
 * pointers under a name (see tern/roster.h); a user looks it up when it needs it (not at load,
 * since the provider may load later). NULL when no loaded module provides it. */
void tern_service_provide(tern_host *host, const char *name, const void *api);
const void *tern_service_get(tern_host *host, const char *name);

/* ---- domains of their own ----
 * A service at an address of its own (conference.example.org, upload.example.org, an external
 * component's gateway.example.org): every stanza to `domain` or to a JID at it — from local
 * users, from other services — goes to fn (the stanza is borrowed: xml_ref() it to keep it;
 * ev->host is this host), and what the module sends from that domain (tern_route()) is routed
 * as a local host's. The host's disco#items lists it, with `name` (may be NULL). Ends when
 * the module unloads, or with tern_unserve_domain(). -1 (logged) when the domain is not a
 * valid one, is a host, or is served already. With the s2s module loaded on the host, other
 * servers reach it too (its DNS must point at this server): incoming streams and dialback
 * accept it as one of ours, and what it sends out leaves on links of its own. */
typedef void (*tern_domain_handler)(const tern_stanza_event *ev, void *data);
int tern_serve_domain(tern_host *host, const char *domain, const char *name,
                      tern_domain_handler fn, void *data);
void tern_unserve_domain(tern_host *host, const char *domain);
/* The domains this host's modules serve, with their names (for disco#items). */
void tern_served_each(tern_host *host,
                      void (*fn)(void *ctx, const char *domain, const char *name), void *ctx);

/* ---- a module's own figures, for /metrics ----
 * The metrics module exports each as a family of its exposition, one sample per host that
 * loads both modules, labelled host="...". `m` must outlive the registration (a static of the
 * module); value() runs on the main loop at each scrape. */
#define TERN_REG_METRIC "metric" /* item: the family's name, data: tern_metric */
typedef struct tern_metric {
    const char *name;    /* tern_..., with _total for a counter */
    const char *type;    /* "counter" or "gauge" */
    const char *help;    /* one line */
    unsigned long long (*value)(tern_host *host);
} tern_metric;
void tern_metric_add(tern_host *host, const tern_metric *m);

/* The [component DOMAIN] sections of the configuration (XEP-0114 external components, for
 * the component module), in file order. */
typedef struct tern_component_config {
    const char *domain;  /* prepared */
    const char *secret;
    const char *roster;  /* XEP-0356 roster privilege: "none", "get", "set" or "both" */
    const char *message; /* XEP-0356 message privilege: "none" or "outgoing" */
} tern_component_config;
void tern_component_each(void (*fn)(void *ctx, const tern_component_config *c), void *ctx);

/* ---- stanza helpers ---- */

/* Adds <name xmlns?>text</name> to parent and returns it. */
tern_xml *tern_xml_add_text_child(tern_xml *parent, const char *name, const char *xmlns,
                                  const char *text);
/* A message's type per RFC 6121 §5.2.2: "chat", "groupchat", "headline", "error", or "normal"
 * for an absent or unknown type. */
const char *tern_message_type(const tern_xml *message);
/* XEP-0203: adds <delay xmlns='urn:xmpp:delay' from=... stamp=.../> to a stanza. */
void tern_stanza_add_delay(tern_xml *stanza, const char *from, time_t when);
/* Parses one serialized stanza (as written by xml_serialize with context "jabber:client"),
 * e.g. from storage. NULL when it is not one well-formed element. */
tern_xml *tern_stanza_parse(const char *data, size_t len);
/* A stanza read on a stream of another namespace (jabber:server, jabber:component:accept), as
 * the jabber:client tree the rest of tern uses; consumes x. NULL when it cannot be converted. */
tern_xml *tern_stanza_import(tern_xml *x, const char *stream_ns);

/* ---- sending ---- */

/* Routes a stanza as the server (no origin session). Takes ownership. 'from' and 'to' must be
 * set. */
void tern_route(tern_host *host, tern_xml *stanza);
/* A new <iq type='result'/> answering ev (id copied, from/to swapped). Caller adds a payload and
 * passes it to tern_reply(). */
tern_xml *tern_iq_result_new(const tern_stanza_event *ev);
/* Sends `reply` (ownership passes) back to the sender of ev. */
void tern_reply(const tern_stanza_event *ev, tern_xml *reply);
/* Answers ev with a stanza error (RFC 6120 §8.3); does nothing when ev is itself an error. */
void tern_reply_error(const tern_stanza_event *ev, tern_stanza_error cond, const char *text);
/* The error for a failed storage call rc: resource-constraint (type wait: try again later)
 * when storage is full (TERN_STORAGE_FULL), else internal-server-error. */
static inline tern_stanza_error tern_storage_error(int rc)
{
    return rc == TERN_STORAGE_FULL ? STANZA_ERR_RESOURCE_CONSTRAINT
                                   : STANZA_ERR_INTERNAL_SERVER_ERROR;
}

/* ---- hosts and sessions ---- */

const char *tern_host_name(const tern_host *host);
tern_storage *tern_host_storage(tern_host *host);
bool tern_host_is_admin(const tern_host *host, const char *bare_jid);
bool tern_host_account_exists(tern_host *host, const char *node);
/* Calls fn for each bound session of the account `bare` on this host (any order). */
void tern_host_each_session(tern_host *host, const char *bare,
                            void (*fn)(tern_session *session, void *ctx), void *ctx);
size_t tern_host_session_count(const tern_host *host);

uint64_t tern_session_id(const tern_session *session);
const tern_jid *tern_session_jid(const tern_session *session); /* full JID once bound */
tern_host *tern_session_host(tern_session *session);
bool tern_session_available(const tern_session *session); /* has sent initial presence */
int tern_session_priority(const tern_session *session);
/* The last presence the session broadcast (NULL before initial presence). */
const tern_xml *tern_session_presence(const tern_session *session);
/* Replaces that recorded presence with a copy of `presence` (availability, priority and
 * session events unchanged; nothing happens before initial presence). For a
 * "presence/broadcast" handler that added to the stanza (e.g. the XEP-0153 avatar hash), so
 * that later copies of the presence (probe answers, a new resource of the user) carry it. */
void tern_session_record_presence(tern_session *session, const tern_xml *presence);
/* Per-session data for modules, under a key unique to the module (the address of one of its
 * statics: that is also how the core knows the data is the module's). free_fn (may be NULL)
 * runs when the data is replaced, the session ends, or the module unloads. */
void tern_session_set_data(tern_session *session, const void *key, void *data,
                           void (*free_fn)(void *data));
void *tern_session_get_data(const tern_session *session, const void *key);
/* Queues a stanza for the session's client, through the delivery hooks. The stanza stays owned
 * by the caller. */
void tern_session_send(tern_session *session, const tern_xml *stanza);
/* The same from a delivery hook of `priority` that held the stanza: only the delivery hooks
 * below that priority see it. */
void tern_session_send_past(tern_session *session, const tern_xml *stanza, int priority);
/* ---- output order ----
 * For an answer that waits for work completing on a later loop turn (a queued storage write,
 * tern/storage.h): reserve a slot in the session's output when the work is queued. Stanzas
 * delivered to the session afterwards are held behind it; the completion adds its answer
 * with tern_slot_send() and calls tern_slot_release(), which sends the slot's stanzas and
 * then what was held (through the delivery hooks, in order). So the client sees what it
 * would have seen had the work been instant: the reply to its next stanza comes after the
 * answer to this one. What is sent into a slot with nothing ahead of it goes out at once (a
 * long answer streams). Release every slot (the slot is freed by it: do not use it after); a
 * module's open slots are released when it unloads. After the session ended, the slot stays
 * valid until released, tern_slot_session() returns NULL and tern_slot_send() drops. */
typedef struct tern_output_slot tern_output_slot;
tern_output_slot *tern_session_reserve(tern_session *session);
tern_session *tern_slot_session(const tern_output_slot *slot);
void tern_slot_send(tern_output_slot *slot, const tern_xml *stanza); /* stays the caller's */
void tern_slot_release(tern_output_slot *slot);

/* Queues a stream-level element (not a stanza: no delivery hooks, not counted as one), e.g.
 * the answer to an element hook. */
void tern_session_send_element(tern_session *session, const tern_xml *element);

/* ---- accounts: the same code ternctl uses ---- */

/* `node` is a localpart (prepared here). Results are account_result values (tern/account.h).
 * Deleting or disabling an account ends its sessions (with <not-authorized/>). Deleting fires
 * "account/deleting" while the account's data is still there (to tell its contacts), then
 * removes everything stored under the account, then fires "account/deleted"; creating fires
 * "account/created". */
account_result tern_account_create(tern_host *host, const char *node, const char *password);
account_result tern_account_delete(tern_host *host, const char *node);
account_result tern_account_set_password(tern_host *host, const char *node,
                                         const char *password);
account_result tern_account_set_disabled(tern_host *host, const char *node, bool disabled);
bool tern_account_is_disabled(tern_host *host, const char *node);
/* Calls fn with each account's bare JID, in order; fn returns non-zero to stop. */
int tern_account_each(tern_host *host, int (*fn)(void *ctx, const char *bare), void *ctx);
typedef void (*tern_account_handler)(tern_host *host, const char *bare, void *data);
int tern_hook_account(tern_host *host, const char *event, tern_account_handler fn, void *data);

/* Ends a session's stream with a stream error (e.g. an admin ending it). */
void tern_session_close(tern_session *session, tern_stream_error cond, const char *text);
/* Calls fn for every bound session of the host. fn may close the session it is given. */
void tern_host_each_online(tern_host *host, void (*fn)(tern_session *session, void *ctx),
                           void *ctx);

/* ---- listeners ----
 * Listens on `addresses` (IP:port or [IPv6]:port, several separated by spaces, as in the
 * configuration) for the module: XEP-0114 components, say. Each accepted socket goes to
 * fn(fd, data), which owns it: it makes a connection of it with conn_accept() (tern/conn.h)
 * or closes it. `label` names the listener in the log. The listener belongs to the module and
 * closes when it unloads (its connections are the module's to end). 0, or -1 with the reason
 * in err (a bad address, or one in use). */
int tern_listen(tern_host *host, const char *addresses, const char *label,
                void (*fn)(int fd, void *data), void *data, char *err, size_t err_len);

/* ---- timers ---- */
typedef struct tern_timer tern_timer;
/* Runs fn after `ms` milliseconds (every `ms` when repeat). Removed automatically when the
 * module unloads. */
tern_timer *tern_timer_add(tern_host *host, unsigned ms, bool repeat, void (*fn)(void *data),
                           void *data);
void tern_timer_cancel(tern_timer *timer);

/* ---- modules at run time ----
 * Loads, unloads or reloads (unloads, then loads the file again: a rebuilt module) module
 * `name` on this host while it runs, without ending sessions. The change is made on the next
 * turn of the event loop — never under the caller's feet, as the caller may be the module
 * itself — and its outcome is logged and, when notify is a JID, sent to it as a headline
 * message from the host. Returns 0 when the change is scheduled, or -1 with the reason in err:
 * not a module name, no such module file, already loaded or not loaded, a change of it under
 * way. Unloading drops the module's per-session data (its sessions go on without it); what it
 * stored stays. The `modules =` line is not changed: a restart loads what it says. A module
 * other modules use (a service such as roster) leaves them without it until it is back. */
typedef enum tern_module_op { TERN_MODULE_LOAD, TERN_MODULE_UNLOAD, TERN_MODULE_RELOAD }
    tern_module_op;
int tern_module_change(tern_host *host, tern_module_op op, const char *name, const char *notify,
                       char *err, size_t err_len);
/* Calls fn with the name of each module loaded on the host, in load order. */
void tern_module_each(tern_host *host, void (*fn)(void *ctx, const char *name), void *ctx);

/* ---- server ---- */
struct event_base;
/* The main event loop (libevent), for a module's own events (timers of a protocol, deferred
 * work); everything of the module API runs on it. */
struct event_base *tern_event_base(void);
/* The host serving `domain` (prepared, e.g. by jid_prep_domain()), or NULL. */
tern_host *tern_server_host(const char *domain);
/* The server is stopping (SIGTERM, an admin's shutdown): take no new sessions. */
bool tern_server_stopping(void);
const char *tern_server_version(void); /* e.g. "0.1.0" */
const char *tern_server_name(void);    /* "tern" */
time_t tern_server_started(void);      /* when this ternd started */
/* Reloads the configuration and certificates, as SIGHUP does. 0, or -1 with a reason. */
int tern_server_reload(char *err, size_t err_len);
/* Stops the server gracefully, as SIGTERM does. */
void tern_server_stop(void);

/* Counters since start, for statistics and /metrics. */
typedef struct tern_server_stats {
    uint64_t c2s_connections;   /* client connections open now (any stage) */
    uint64_t c2s_sessions;      /* bound client sessions now, all hosts */
    uint64_t stanzas_in;        /* stanzas received from clients */
    uint64_t stanzas_out;       /* stanzas queued to clients */
    uint64_t auth_failures;     /* failed authentication attempts */
    long long storage_bytes;    /* size of the storage file */
    uint64_t storage_writes;    /* storage writes committed since start */
    uint64_t storage_written_bytes; /* owner + key + value bytes of those writes */
    uint64_t storage_commits;   /* durable transactions: a group commit is one */
    uint64_t storage_queued;    /* queued storage work not yet completed */
} tern_server_stats;
void tern_server_get_stats(tern_server_stats *out);

#endif
