/* admin — XEP-0133 Service Administration: the server's administration commands, run from
 * any client with ad-hoc command support (the adhoc module lists and runs them). The commands
 * that send messages to users (announce, message of the day, welcome message) are in the
 * announce module.
 *
 * Accounts change through the module API's tern_account_* functions, the same code ternctl
 * uses from the shell, so both doors behave alike. Only accounts listed in [server] admins may
 * run these commands (XEP-0133 §8), except "Server information", which any local user may.
 *
 * Data kept here, in a keyval store:
 *   "lastlogin" owner: the user   when the user last bound a resource (decimal seconds)
 * The last module stores the last *logout* (XEP-0012); XEP-0133 asks for the last *login*,
 * which is why it is recorded here. */
#include <stdlib.h>
#include <string.h>
#include <tern/adhoc.h>
#include <tern/roster.h>

#define NS_ADMIN "http://jabber.org/protocol/admin"
#define XEP0133(name) NS_ADMIN "#" name
#define TERN_ADMIN(name) "urn:x-tern:admin#" name /* tern's own commands */
#define NS_ROSTER "jabber:iq:roster"

#define LASTLOGIN_STORE "lastlogin"

/* ---- small helpers ---- */

static const char *host_of(const tern_adhoc_ctx *ctx) { return tern_host_name(ctx->host); }

/* XEP-0082 DateTime. */
static void format_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A form with the XEP-0068 FORM_TYPE of XEP-0133 (§9.2). */
static tern_xml *admin_form(tern_adhoc_ctx *ctx, const char *type, const char *title,
                            const char *instructions)
{
    tern_xml *x = tern_xdata_form(ctx->payload, type, title, instructions);
    tern_xdata_value(tern_xdata_field(x, "hidden", "FORM_TYPE", NULL, false), NS_ADMIN);
    return x;
}

static void result_field(tern_xml *form, const char *type, const char *var, const char *label,
                         const char *value)
{
    tern_xdata_value(tern_xdata_field(form, type, var, label, false), value);
}

static void result_number(tern_xml *form, const char *var, const char *label, size_t n)
{
    char text[32];
    snprintf(text, sizeof text, "%zu", n);
    result_field(form, "text-single", var, label, text);
}

static void send_to_session(tern_session *s, void *msg)
{
    xml_set_attr(msg, "to", tern_session_jid(s)->full);
    tern_session_send(s, msg);
}

/* XEP-0133 §4.23: a headline to every session of the host (before a restart or shutdown;
 * the announce module sends the other announcements). */
static void announce_all(tern_host *host, const char *text)
{
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_set_attr(m, "from", tern_host_name(host));
    xml_set_attr(m, "type", "headline");
    tern_xml_add_text_child(m, "subject", NULL, "Announcement");
    tern_xml_add_text_child(m, "body", NULL, text);
    tern_host_each_online(host, send_to_session, m);
    xml_unref(m);
}

/* A JID from a form that must name an account of this host: a valid JID with a localpart on
 * this host, bare unless full_ok, existing when must_exist. false with an error note. */
static bool account_jid(tern_adhoc_ctx *ctx, const char *text, bool full_ok, bool must_exist,
                        tern_jid *jid)
{
    const char *why = NULL;
    if (!text || jid_parse(text, jid, &why) != 0) { /* on failure *jid owns nothing */
        tern_adhoc_notef(ctx, "error", "'%s' is not a valid JID: %s", text ? text : "",
                         why ? why : "it is missing");
        return false;
    }
    if (!jid->node)
        tern_adhoc_notef(ctx, "error", "'%s' is not a user's JID (expected user@%s)", text,
                         host_of(ctx));
    else if (strcmp(jid->domain, host_of(ctx)) != 0)
        tern_adhoc_notef(ctx, "error", "'%s' is not on this server (%s)", text, host_of(ctx));
    else if (jid->resource && !full_ok)
        tern_adhoc_notef(ctx, "error", "'%s' has a resource: give the bare JID %s", text,
                         jid->bare);
    else if (must_exist && !tern_host_account_exists(ctx->host, jid->node))
        tern_adhoc_notef(ctx, "error", "'%s' is not an account of this server", text);
    else
        return true;
    jid_free(jid);
    return false;
}

/* ---- the users of the host ---- */

typedef struct user_list {
    char **items;
    size_t n, cap;
    tern_host *host;
    bool disabled_only;
} user_list;

static void list_add(user_list *l, const char *bare)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        if (!l->items)
            abort();
    }
    if (!(l->items[l->n++] = strdup(bare)))
        abort();
}

static void list_free(user_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
}

static bool is_disabled(tern_host *host, const char *bare)
{
    char node[1024];
    size_t n = strcspn(bare, "@");
    if (n >= sizeof node)
        return false;
    memcpy(node, bare, n);
    node[n] = '\0';
    return tern_account_is_disabled(host, node);
}

static int collect_account(void *ctx, const char *bare)
{
    user_list *l = ctx;
    if (!l->disabled_only || is_disabled(l->host, bare))
        list_add(l, bare);
    return 0;
}

static void collect_online(tern_session *s, void *ctx) { list_add(ctx, tern_session_jid(s)->bare); }

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef enum user_set { USERS_REGISTERED, USERS_DISABLED, USERS_ONLINE } user_set;

/* The accounts of a set, sorted, each once. Online users are accounts with a bound resource
 * (RFC 6120); "active" users are the online ones, as tern does not track idleness. */
static void collect_users(tern_host *host, user_set set, user_list *l)
{
    *l = (user_list){ .host = host, .disabled_only = set == USERS_DISABLED };
    if (set != USERS_ONLINE) {
        tern_account_each(host, collect_account, l);
        return;
    }
    tern_host_each_online(host, collect_online, l);
    qsort(l->items, l->n, sizeof *l->items, compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (kept && strcmp(l->items[kept - 1], l->items[i]) == 0)
            free(l->items[i]);
        else
            l->items[kept++] = l->items[i];
    }
    l->n = kept;
}

/* ---- counts and lists (XEP-0133 §4.13 - §4.22) ---- */

typedef struct users_spec {
    user_set set;
    const char *var, *label, *title; /* title NULL: a count, no form */
} users_spec;

static tern_adhoc_status run_users(tern_adhoc_ctx *ctx)
{
    const users_spec *spec = ctx->command->data;
    if (spec->title && !ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form", spec->title,
                                 "Fill out this form to choose how many users to show.");
        tern_xml *f = tern_xdata_field(x, "list-single", "max_items",
                                       "Maximum number of items to show", false);
        static const char *const sizes[] = { "25", "50", "75", "100", "150", "200" };
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
            tern_xdata_option(f, sizes[i], sizes[i]);
        tern_xdata_option(f, "None", "none");
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    user_list l;
    collect_users(ctx->host, spec->set, &l);
    tern_xml *x = admin_form(ctx, "result", NULL, NULL);
    if (!spec->title) {
        result_number(x, spec->var, spec->label, l.n);
    } else {
        const char *max_text = tern_xdata_get(ctx->submitted, "max_items");
        size_t max = max_text && strcmp(max_text, "none") ? strtoul(max_text, NULL, 10) : 0;
        size_t shown = max && max < l.n ? max : l.n;
        tern_xml *f = tern_xdata_field(x, "jid-multi", spec->var, spec->label, false);
        for (size_t i = 0; i < shown; i++)
            tern_xdata_value(f, l.items[i]);
        if (shown < l.n)
            tern_adhoc_notef(ctx, "info", "%zu of %zu shown", shown, l.n);
    }
    list_free(&l);
    return TERN_ADHOC_DONE;
}

/* ---- commands on listed accounts (accountjids) ---- */

typedef struct account_op {
    const char *title, *instructions, *label;
    bool full_ok, must_exist;
    bool result_form;       /* answer with a result form that apply fills */
    /* Does the work for one account; says so in a note or in the result form. */
    void (*apply)(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *result);
} account_op;

static void say(tern_adhoc_ctx *ctx, account_result r, const char *bare, const char *done)
{
    if (r == ACCOUNT_OK)
        tern_adhoc_notef(ctx, "info", "%s %s", bare, done);
    else
        tern_adhoc_notef(ctx, "error", "%s: %s", bare, account_result_text(r));
}

static void apply_delete(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *result)
{
    (void)result;
    say(ctx, tern_account_delete(ctx->host, jid->node), jid->bare, "deleted");
}

static void apply_disable(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *result)
{
    (void)result;
    say(ctx, tern_account_set_disabled(ctx->host, jid->node, true), jid->bare, "disabled");
}

static void apply_reenable(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *result)
{
    (void)result;
    say(ctx, tern_account_set_disabled(ctx->host, jid->node, false), jid->bare, "re-enabled");
}

typedef struct end_ctx {
    const tern_jid *jid;
    size_t ended;
} end_ctx;

static void end_one(tern_session *s, void *vctx)
{
    end_ctx *e = vctx;
    /* XEP-0133 §4.5: a bare JID ends every session of the user, a full JID only that one. */
    if (e->jid->resource && strcmp(tern_session_jid(s)->full, e->jid->full) != 0)
        return;
    tern_session_close(s, STREAM_ERR_POLICY_VIOLATION, "Session ended by an administrator");
    e->ended++;
}

static void apply_end_session(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *result)
{
    (void)result;
    end_ctx e = { jid, 0 };
    tern_host_each_session(ctx->host, jid->bare, end_one, &e);
    tern_adhoc_notef(ctx, "info", "%s: %zu session%s ended", jid->full, e.ended,
                     e.ended == 1 ? "" : "s");
}

/* When the account last bound a resource (XEP-0082), or "never". */
static void last_login(tern_host *host, const char *bare, char stamp[32])
{
    void *value;
    size_t len;
    char text[32];
    if (storage_kv_get(tern_host_storage(host), LASTLOGIN_STORE, bare, &value, &len) != 1) {
        strcpy(stamp, "never");
        return;
    }
    snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1),
             (const char *)value); /* stored without a NUL */
    free(value);
    format_time((time_t)strtoll(text, NULL, 10), stamp);
}

static void apply_lastlogin(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *result)
{
    char stamp[32];
    last_login(ctx->host, jid->bare, stamp);
    /* One value per account, in the order of accountjids. */
    tern_xml *f = tern_xdata_find(result, "lastlogin");
    if (!f)
        f = tern_xdata_field(result, "text-multi", "lastlogin", "Last login", false);
    tern_xdata_value(f, stamp);
}

typedef struct roster_ctx {
    tern_host *host;
    const tern_roster_api *api;
    const char *owner;
    tern_xml *query;
    size_t n;
} roster_ctx;

static void add_roster_item(void *vctx, const char *contact)
{
    static const char *const names[] = { "none", "to", "from", "both" };
    roster_ctx *r = vctx;
    tern_xml *item = xml_add_child(r->query, "item", NS_ROSTER);
    xml_set_attr(item, "jid", contact);
    tern_subscription sub = r->api->subscription(r->host, r->owner, contact);
    xml_set_attr(item, "subscription", names[sub & 3]);
    r->n++;
}

static void count_contact(void *vctx, const char *contact)
{
    (void)contact;
    ((roster_ctx *)vctx)->n++;
}

/* XEP-0133 §4.8: the roster as a jabber:iq:roster query inside the result form, one query
 * per account in the order of accountjids. The roster service tells only contacts with a
 * subscription (to, from or both). */
static void apply_roster(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *result)
{
    const tern_roster_api *api = tern_roster(ctx->host);
    if (!api) {
        tern_adhoc_notef(ctx, "error", "%s: the roster module is not loaded", jid->bare);
        return;
    }
    roster_ctx r = { ctx->host, api, jid->bare, xml_add_child(result, "query", NS_ROSTER), 0 };
    api->each_contact(ctx->host, jid->bare, true, true, add_roster_item, &r);
}

static tern_adhoc_status run_account_op(tern_adhoc_ctx *ctx)
{
    const account_op *op = ctx->command->data;
    if (!ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form", op->title, op->instructions);
        tern_xdata_field(x, "jid-multi", "accountjids", op->label, true);
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    /* Every JID is checked before any account is touched. */
    const tern_xml *field = tern_xdata_find(ctx->submitted, "accountjids");
    for (const tern_xml *v = tern_xdata_first_value(field); v; v = tern_xdata_next_value(v)) {
        tern_jid jid;
        if (!*xml_text(v))
            continue;
        if (!account_jid(ctx, xml_text(v), op->full_ok, op->must_exist, &jid))
            return TERN_ADHOC_REJECT;
        jid_free(&jid);
    }
    tern_xml *result = NULL;
    if (op->result_form) {
        result = admin_form(ctx, "result", NULL, NULL);
        tern_xml *jids = tern_xdata_field(result, "jid-multi", "accountjids", NULL, false);
        for (const tern_xml *v = tern_xdata_first_value(field); v; v = tern_xdata_next_value(v))
            tern_xdata_value(jids, xml_text(v));
    }
    for (const tern_xml *v = tern_xdata_first_value(field); v; v = tern_xdata_next_value(v)) {
        tern_jid jid;
        if (!*xml_text(v) || !account_jid(ctx, xml_text(v), op->full_ok, false, &jid))
            continue;
        op->apply(ctx, &jid, result);
        jid_free(&jid);
    }
    return TERN_ADHOC_DONE;
}

/* ---- add-user, change-user-password, user-stats ---- */

static tern_adhoc_status run_add_user(tern_adhoc_ctx *ctx)
{
    if (!ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form", "Adding a User",
                                 "Fill out this form to add a user.");
        tern_xdata_field(x, "jid-single", "accountjid",
                         "The Jabber ID for the account to be added", true);
        tern_xdata_field(x, "text-private", "password", "The password for this account", true);
        tern_xdata_field(x, "text-private", "password-verify", "Retype password", true);
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    tern_jid jid;
    if (!account_jid(ctx, tern_xdata_get(ctx->submitted, "accountjid"), false, false, &jid))
        return TERN_ADHOC_REJECT;
    const char *password = tern_xdata_get(ctx->submitted, "password");
    const char *verify = tern_xdata_get(ctx->submitted, "password-verify");
    tern_adhoc_status status = TERN_ADHOC_DONE;
    account_result r = ACCOUNT_OK;
    if (!password || !verify || strcmp(password, verify) != 0)
        status = tern_adhoc_reject(ctx, "The two passwords do not match");
    else if ((r = tern_account_create(ctx->host, jid.node, password)) == ACCOUNT_EXISTS ||
             r == ACCOUNT_BAD_PASSWORD)
        status = tern_adhoc_reject(ctx, "%s: %s", jid.bare, account_result_text(r));
    else
        say(ctx, r, jid.bare, "created");
    jid_free(&jid);
    return status;
}

static tern_adhoc_status run_change_password(tern_adhoc_ctx *ctx)
{
    if (!ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form", "Changing a User Password",
                                 "Fill out this form to change a user's password.");
        tern_xdata_field(x, "jid-single", "accountjid", "The Jabber ID for this account", true);
        tern_xdata_field(x, "text-private", "password", "The password for this account", true);
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    tern_jid jid;
    if (!account_jid(ctx, tern_xdata_get(ctx->submitted, "accountjid"), false, true, &jid))
        return TERN_ADHOC_REJECT;
    account_result r = tern_account_set_password(ctx->host, jid.node,
                                                 tern_xdata_get(ctx->submitted, "password"));
    tern_adhoc_status status = TERN_ADHOC_DONE;
    if (r == ACCOUNT_BAD_PASSWORD)
        status = tern_adhoc_reject(ctx, "%s", account_result_text(r));
    else
        say(ctx, r, jid.bare, "has a new password");
    jid_free(&jid);
    return status;
}

static void add_resource(tern_session *s, void *field)
{
    tern_xdata_value(field, tern_session_jid(s)->resource);
}

/* What is known about one account: its roster size, online resources, last login and state. */
static void describe_account(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *x)
{
    const tern_roster_api *api = tern_roster(ctx->host);
    if (api) {
        roster_ctx r = { ctx->host, api, jid->bare, NULL, 0 };
        api->each_contact(ctx->host, jid->bare, true, true, count_contact, &r);
        result_number(x, "rostersize", "Contacts with a subscription", r.n);
    }
    tern_xml *res = tern_xdata_field(x, "text-multi", "onlineresources", "Online resources",
                                     false);
    tern_host_each_session(ctx->host, jid->bare, add_resource, res);
    char stamp[32];
    last_login(ctx->host, jid->bare, stamp);
    result_field(x, "text-single", "lastlogin", "Last login", stamp);
    result_field(x, "boolean", "disabled", "Disabled",
                 tern_account_is_disabled(ctx->host, jid->node) ? "1" : "0");
}

/* The same facts as read-only lines of a form ("fixed" fields, XEP-0004 §3.3). */
static void describe_account_fixed(tern_adhoc_ctx *ctx, const tern_jid *jid, tern_xml *form)
{
    tern_xml *facts = xml_new("x", NS_XDATA);
    describe_account(ctx, jid, facts);
    for (const tern_xml *f = xml_first_element(facts); f; f = xml_next_element(f)) {
        tern_buf line;
        buf_init(&line);
        buf_printf(&line, "%s:", xml_attr(f, "label"));
        bool boolean = strcmp(xml_attr(f, "type"), "boolean") == 0;
        for (const tern_xml *v = tern_xdata_first_value(f); v; v = tern_xdata_next_value(v))
            buf_printf(&line, " %s", boolean ? (strcmp(xml_text(v), "1") ? "no" : "yes")
                                             : xml_text(v));
        tern_xdata_value(tern_xdata_field(form, "fixed", NULL, NULL, false), buf_cstr(&line));
        buf_free(&line);
    }
    xml_unref(facts);
}

static tern_adhoc_status run_user_stats(tern_adhoc_ctx *ctx)
{
    if (!ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form", "Get User Statistics",
                                 "Fill out this form to gather user statistics.");
        tern_xdata_field(x, "jid-single", "accountjid", "The Jabber ID for statistics", true);
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    tern_jid jid;
    if (!account_jid(ctx, tern_xdata_get(ctx->submitted, "accountjid"), false, true, &jid))
        return TERN_ADHOC_REJECT;
    tern_xml *x = admin_form(ctx, "result", NULL, NULL);
    result_field(x, "jid-single", "accountjid", NULL, jid.bare);
    describe_account(ctx, &jid, x);
    jid_free(&jid);
    return TERN_ADHOC_DONE;
}

/* ---- restart, shutdown, reload, statistics ---- */

static bool stop_scheduled; /* one stop per process */

static void stop_now(void *data)
{
    (void)data;
    tern_server_stop();
}

static tern_adhoc_status run_stop(tern_adhoc_ctx *ctx)
{
    bool restart = ctx->command->data != NULL;
    if (!ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form",
                                 restart ? "Restarting the Service" : "Shutting Down the Service",
                                 restart ? "Fill out this form to restart the service."
                                         : "Fill out this form to shut down the service.");
        tern_xml *f = tern_xdata_field(x, "list-single", "delay",
                                       restart ? "Time delay before restarting"
                                               : "Time delay before shutting down", false);
        static const char *const labels[] = { "Now", "30 seconds", "60 seconds", "90 seconds",
                                              "2 minutes", "3 minutes", "4 minutes", "5 minutes" };
        static const char *const values[] = { "0", "30", "60", "90", "120", "180", "240", "300" };
        for (size_t i = 0; i < sizeof values / sizeof *values; i++)
            tern_xdata_option(f, labels[i], values[i]);
        tern_xdata_field(x, "text-multi", "announcement", "Announcement", false);
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    if (stop_scheduled)
        return tern_adhoc_reject(ctx, "ternd is already stopping");
    const char *delay_text = tern_xdata_get(ctx->submitted, "delay");
    unsigned delay = delay_text ? (unsigned)strtoul(delay_text, NULL, 10) : 0;
    char *text = tern_xdata_get_lines(ctx->submitted, "announcement");
    if (text && *text)
        announce_all(ctx->host, text);
    free(text);
    log_warn(0, "%s asked for a %s in %u s", ctx->requester->full,
             restart ? "restart" : "shutdown", delay);
    stop_scheduled = true;
    /* Even "now" waits a moment, so the answer to this command leaves first. */
    tern_timer_add(ctx->host, delay ? delay * 1000u : 200u, false, stop_now, NULL);
    tern_adhoc_notef(ctx, "info", "ternd stops in %u s.%s", delay,
                     restart ? " It does not start itself again: the service manager that runs "
                               "it does (e.g. systemd with Restart=always)."
                             : "");
    return TERN_ADHOC_DONE;
}

static tern_adhoc_status run_reload(tern_adhoc_ctx *ctx)
{
    char err[512];
    if (tern_server_reload(err, sizeof err) != 0) {
        tern_adhoc_notef(ctx, "error", "Reload failed, the running configuration stays: %s",
                         err);
        return TERN_ADHOC_DONE;
    }
    log_info(0, "%s reloaded the configuration", ctx->requester->full);
    tern_adhoc_note(ctx, "info", "Configuration and certificates reloaded (listeners, hosts "
                                 "and modules change on restart)");
    return TERN_ADHOC_DONE;
}

/* ---- modules at run time (tern's own commands) ---- */

static void add_module_value(void *field, const char *name) { tern_xdata_value(field, name); }

/* Labelled with the name too: some clients show only labels. */
static void add_module_option(void *field, const char *name)
{
    tern_xdata_option(field, name, name);
}

static tern_adhoc_status run_list_modules(tern_adhoc_ctx *ctx)
{
    tern_xml *x = tern_xdata_form(ctx->payload, "result", "Loaded Modules", NULL);
    tern_xml *f = tern_xdata_field(x, "text-multi", "modules", "Modules (in load order)", false);
    tern_module_each(ctx->host, add_module_value, f);
    return TERN_ADHOC_DONE;
}

static const tern_module_op op_load = TERN_MODULE_LOAD, op_unload = TERN_MODULE_UNLOAD,
                            op_reload = TERN_MODULE_RELOAD;

static tern_adhoc_status run_module_change(tern_adhoc_ctx *ctx)
{
    tern_module_op op = *(const tern_module_op *)ctx->command->data;
    static const char *const verbs[] = { "loaded", "unloaded", "reloaded" };
    if (!ctx->submitted) {
        tern_xml *x = tern_xdata_form(ctx->payload, "form", ctx->command->name,
                                      op == TERN_MODULE_LOAD
                                          ? "The name of an installed module, e.g. csi."
                                          : "Sessions stay; the module's per-session state "
                                            "(e.g. carbons enabled) is dropped.");
        tern_xml *f = tern_xdata_field(x, op == TERN_MODULE_LOAD ? "text-single" : "list-single",
                                       "module", "Module", true);
        if (op != TERN_MODULE_LOAD)
            tern_module_each(ctx->host, add_module_option, f);
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    const char *name = tern_xdata_get(ctx->submitted, "module");
    char err[512];
    if (!name || tern_module_change(ctx->host, op, name, ctx->requester->full, err,
                                    sizeof err) != 0)
        return tern_adhoc_reject(ctx, "%s", name ? err : "name a module");
    log_info(0, "%s asked for module %s to be %s on %s", ctx->requester->full, name, verbs[op],
             host_of(ctx));
    tern_adhoc_notef(ctx, "info", "Module %s will be %s on %s in a moment; a message will tell "
                     "you how it went. The modules line of the configuration is unchanged.",
                     name, verbs[op], host_of(ctx));
    return TERN_ADHOC_DONE;
}

static void add_version_and_uptime(tern_xml *x)
{
    char text[64], stamp[32];
    snprintf(text, sizeof text, "%s %s", tern_server_name(), tern_server_version());
    result_field(x, "text-single", "version", "Server version", text);
    format_time(tern_server_started(), stamp);
    result_field(x, "text-single", "started", "Started", stamp);
    snprintf(text, sizeof text, "%lld", (long long)(time(NULL) - tern_server_started()));
    result_field(x, "text-single", "uptime", "Uptime (seconds)", text);
}

static tern_adhoc_status run_stats(tern_adhoc_ctx *ctx)
{
    tern_xml *x = tern_xdata_form(ctx->payload, "result", "Server statistics", NULL);
    add_version_and_uptime(x);
    result_number(x, "sessions", "Sessions on this host", tern_host_session_count(ctx->host));
    user_list l;
    collect_users(ctx->host, USERS_ONLINE, &l);
    result_number(x, "onlineusers", "Online users", l.n);
    list_free(&l);
    collect_users(ctx->host, USERS_REGISTERED, &l);
    result_number(x, "registeredusers", "Registered users", l.n);
    list_free(&l);
    return TERN_ADHOC_DONE;
}

static tern_adhoc_status run_server_info(tern_adhoc_ctx *ctx)
{
    add_version_and_uptime(tern_xdata_form(ctx->payload, "result", "Server information", NULL));
    return TERN_ADHOC_DONE;
}

/* ---- manage a user: a two-stage wizard (choose the account, then what to do) ---- */

static tern_adhoc_status run_manage_user(tern_adhoc_ctx *ctx)
{
    if (ctx->stage == 0 && !ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form", "Managing a User", "Which account?");
        tern_xdata_field(x, "jid-single", "accountjid", "The Jabber ID of the account", true);
        return TERN_ADHOC_FORM;
    }
    tern_jid jid;
    const tern_xml *chosen = ctx->stage == 0 ? ctx->submitted : ctx->forms[0];
    if (!account_jid(ctx, tern_xdata_get(chosen, "accountjid"), false, true, &jid))
        return ctx->stage == 0 ? TERN_ADHOC_REJECT : TERN_ADHOC_DONE;
    tern_adhoc_status status = TERN_ADHOC_NEXT;
    if (ctx->stage == 1 && !ctx->submitted) {
        char title[1100];
        snprintf(title, sizeof title, "Managing %s", jid.bare);
        tern_xml *x = admin_form(ctx, "form", title, "What should be done with this account?");
        describe_account_fixed(ctx, &jid, x);
        tern_xml *f = tern_xdata_field(x, "list-single", "action", "Action", true);
        tern_xdata_option(f, "End all its sessions", "end-sessions");
        if (tern_account_is_disabled(ctx->host, jid.node))
            tern_xdata_option(f, "Re-enable the account", "reenable");
        else
            tern_xdata_option(f, "Disable the account", "disable");
        tern_xdata_option(f, "Delete the account", "delete");
        ctx->final = true;
        status = TERN_ADHOC_FORM;
    } else if (ctx->stage == 1) {
        const char *action = tern_xdata_get(ctx->submitted, "action");
        if (strcmp(action, "end-sessions") == 0)
            apply_end_session(ctx, &jid, NULL);
        else if (strcmp(action, "disable") == 0)
            apply_disable(ctx, &jid, NULL);
        else if (strcmp(action, "reenable") == 0)
            apply_reenable(ctx, &jid, NULL);
        else
            apply_delete(ctx, &jid, NULL);
        status = TERN_ADHOC_DONE;
    }
    jid_free(&jid);
    return status;
}

/* ---- the command table ---- */

static const account_op op_delete = { "Deleting a User", "Fill out this form to delete a user.",
    "The Jabber ID(s) to delete", false, true, false, apply_delete };
static const account_op op_disable = { "Disabling a User",
    "Fill out this form to disable a user.", "The Jabber ID(s) to disable", false, true, false,
    apply_disable };
static const account_op op_reenable = { "Re-Enable a User",
    "Fill out this form to re-enable a user.", "The Jabber ID(s) to re-enable", false, true,
    false, apply_reenable };
static const account_op op_end_session = { "Ending a User Session",
    "Fill out this form to end a user's session.", "The Jabber ID(s) for which to end sessions",
    true, true, false, apply_end_session };
static const account_op op_roster = { "Getting a User's Roster",
    "Fill out this form to get a user's roster.",
    "The Jabber ID(s) for which to retrieve the roster", false, true, true, apply_roster };
static const account_op op_lastlogin = { "Getting a User's Last Login Time",
    "Fill out this form to get a user's last login time.",
    "The Jabber ID(s) for which to retrieve the last login time", false, true, true,
    apply_lastlogin };

static const users_spec registered_num = { USERS_REGISTERED, "registeredusersnum",
                                           "The number of registered users", NULL };
static const users_spec disabled_num = { USERS_DISABLED, "disabledusersnum",
                                         "The number of disabled users", NULL };
static const users_spec online_num = { USERS_ONLINE, "onlineusersnum",
                                       "The number of online users", NULL };
static const users_spec active_num = { USERS_ONLINE, "activeusersnum",
                                       "The number of active users", NULL };
static const users_spec registered_list = { USERS_REGISTERED, "registereduserjids",
    "The list of all users", "Requesting List of Registered Users" };
static const users_spec disabled_list = { USERS_DISABLED, "disableduserjids",
    "The list of all disabled users", "Requesting List of Disabled Users" };
static const users_spec online_list = { USERS_ONLINE, "onlineuserjids",
    "The list of all online users", "Requesting List of Online Users" };
static const users_spec active_list = { USERS_ONLINE, "activeuserjids",
    "The list of active users", "Requesting List of Active Users" };

#define ADMIN TERN_ADHOC_ADMIN
static const tern_adhoc_command commands[] = {
    { XEP0133("add-user"), "Add User", ADMIN, run_add_user, NULL },
    { XEP0133("delete-user"), "Delete User", ADMIN, run_account_op, &op_delete },
    { XEP0133("disable-user"), "Disable User", ADMIN, run_account_op, &op_disable },
    { XEP0133("reenable-user"), "Re-Enable User", ADMIN, run_account_op, &op_reenable },
    { XEP0133("end-user-session"), "End User Session", ADMIN, run_account_op, &op_end_session },
    { XEP0133("change-user-password"), "Change User Password", ADMIN, run_change_password,
      NULL },
    { XEP0133("get-user-roster"), "Get User Roster", ADMIN, run_account_op, &op_roster },
    { XEP0133("get-user-lastlogin"), "Get User Last Login Time", ADMIN, run_account_op,
      &op_lastlogin },
    { XEP0133("user-stats"), "Get User Statistics", ADMIN, run_user_stats, NULL },
    { XEP0133("get-registered-users-num"), "Get Number of Registered Users", ADMIN, run_users,
      &registered_num },
    { XEP0133("get-disabled-users-num"), "Get Number of Disabled Users", ADMIN, run_users,
      &disabled_num },
    { XEP0133("get-online-users-num"), "Get Number of Online Users", ADMIN, run_users,
      &online_num },
    { XEP0133("get-active-users-num"), "Get Number of Active Users", ADMIN, run_users,
      &active_num },
    { XEP0133("get-registered-users-list"), "Get List of Registered Users", ADMIN, run_users,
      &registered_list },
    { XEP0133("get-disabled-users-list"), "Get List of Disabled Users", ADMIN, run_users,
      &disabled_list },
    { XEP0133("get-online-users-list"), "Get List of Online Users", ADMIN, run_users,
      &online_list },
    { XEP0133("get-active-users"), "Get List of Active Users", ADMIN, run_users, &active_list },
    { XEP0133("restart"), "Restart Service", ADMIN, run_stop, "restart" },
    { XEP0133("shutdown"), "Shut Down Service", ADMIN, run_stop, NULL },
    { TERN_ADMIN("reload"), "Reload Configuration", ADMIN, run_reload, NULL },
    { TERN_ADMIN("stats"), "Server Statistics", ADMIN, run_stats, NULL },
    { TERN_ADMIN("modules"), "List Modules", ADMIN, run_list_modules, NULL },
    { TERN_ADMIN("load-module"), "Load Module", ADMIN, run_module_change, &op_load },
    { TERN_ADMIN("unload-module"), "Unload Module", ADMIN, run_module_change, &op_unload },
    { TERN_ADMIN("reload-module"), "Reload Module", ADMIN, run_module_change, &op_reload },
    { TERN_ADMIN("manage-user"), "Manage a User", ADMIN, run_manage_user, NULL },
    { "urn:x-tern:user#server-info", "Server Information", TERN_ADHOC_LOCAL_USER,
      run_server_info, NULL },
};

/* ---- events ---- */

static void on_bound(tern_session *s, void *data)
{
    (void)data;
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", (long long)time(NULL));
    storage_kv_put(tern_host_storage(tern_session_host(s)), LASTLOGIN_STORE,
                   tern_session_jid(s)->bare, text, (size_t)n);
}

static void on_deleted(tern_host *host, const char *bare, void *data)
{
    (void)data;
    storage_kv_delete(tern_host_storage(host), LASTLOGIN_STORE, bare);
}

static int admin_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        tern_adhoc_register(host, &commands[i]);
    tern_hook_session(host, "session/bound", on_bound, NULL);
    tern_hook_account(host, "account/deleted", on_deleted, NULL);
    return 0;
}

TERN_MODULE("admin", admin_load, NULL);
