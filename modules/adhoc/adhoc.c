/* adhoc — XEP-0050 Ad-Hoc Commands: lists and runs the commands other modules register
 * (tern/adhoc.h), for the server's own address.
 *
 * The module owns the command sessions. A session belongs to the full JID that started it
 * (XEP-0050 §4.3: valid only between one requester/responder pair) and holds the forms that
 * requester has submitted so far, so that commands themselves keep no state: each call to a
 * command's run() sees the accepted forms of the earlier stages. Before a command sees a
 * submitted form, the form is checked against the one that was shown (XEP-0004 §3.2: required
 * fields, JIDs, options, single values); a mistake is answered with the same form and an error
 * note, so a client can correct it without starting over.
 *
 * Sessions that stay idle for `timeout` seconds end. An ended session (completed, canceled or
 * expired) is remembered for a while longer so that using its id again is answered with
 * <session-expired/> rather than <bad-sessionid/> (XEP-0050 §6.4). */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <tern/adhoc.h>

static const tern_setting_def adhoc_settings[] = {
    { "timeout", TERN_SETTING_UINT, "600", 1, 86400,
      "seconds a command session may stay idle before it ends", NULL },
    { "max_per_requester", TERN_SETTING_UINT, "8", 1, 1000,
      "command sessions open at once per full JID", NULL },
    { "max_open", TERN_SETTING_UINT, "1024", 1, 1000000,
      "command sessions open at once on the host", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

#define ADHOC_ENDED_KEEP_S 600       /* how long an ended session id is remembered */
#define ADHOC_MAX_ENDED 256          /* ... and how many of them at most */
#define ADHOC_MAX_STAGES 8           /* a bound on what one session holds, not a policy */

typedef struct adhoc_state adhoc_state;

typedef struct adhoc_session {
    char id[33];
    char *owner;          /* full JID of the requester */
    char *node;
    bool ended;           /* completed, canceled or expired: kept only to say so */
    tern_xml *forms[ADHOC_MAX_STAGES]; /* accepted <x/> of the earlier stages */
    unsigned n_forms;
    tern_xml *shown;      /* the form of the current stage as it was shown, or NULL */
    bool final;           /* the current stage completes the command */
    bool running;         /* a command of this session is running now */
    bool doomed;          /* its requester went away meanwhile: remove after the run */
    tern_timer *timer;
    adhoc_state *st;
    struct adhoc_session *next;
} adhoc_session;

struct adhoc_state {
    tern_host *host;
    adhoc_session *sessions; /* newest first */
};

static unsigned timeout_ms(const adhoc_state *st)
{
    return (unsigned)tern_setting_uint(st->host, "adhoc", "timeout") * 1000u;
}

typedef enum adhoc_action {
    ACT_EXECUTE, ACT_NEXT, ACT_PREV, ACT_COMPLETE, ACT_CANCEL
} adhoc_action;

static const char *const action_names[] = { "execute", "next", "prev", "complete", "cancel" };

/* ---- commands and access ---- */

typedef struct command_lookup {
    const char *node;
    const tern_adhoc_command *found;
} command_lookup;

static void match_command(void *ctx, const char *item, const void *data)
{
    command_lookup *l = ctx;
    if (!l->found && strcmp(item, l->node) == 0)
        l->found = data;
}

static const tern_adhoc_command *find_command(tern_host *host, const char *node)
{
    command_lookup l = { node, NULL };
    tern_registry_each(host, TERN_REG_ADHOC_COMMAND, match_command, &l);
    return l.found;
}

static bool may_run(tern_host *host, const tern_adhoc_command *c, const tern_jid *who)
{
    if (!who->node)
        return false;
    if (tern_host_is_admin(host, who->bare))
        return true;
    return c->access == TERN_ADHOC_LOCAL_USER && strcmp(who->domain, tern_host_name(host)) == 0;
}

/* ---- sessions ---- */

static void free_forms(adhoc_session *s)
{
    for (unsigned i = 0; i < s->n_forms; i++)
        xml_unref(s->forms[i]);
    s->n_forms = 0;
    if (s->shown)
        xml_unref(s->shown);
    s->shown = NULL;
}

static void free_session(adhoc_session *s)
{
    free_forms(s);
    free(s->owner);
    free(s->node);
    free(s);
}

static void unlink_session(adhoc_session *s)
{
    for (adhoc_session **at = &s->st->sessions; *at; at = &(*at)->next)
        if (*at == s) {
            *at = s->next;
            return;
        }
}

static void remove_session(adhoc_session *s)
{
    tern_timer_cancel(s->timer);
    unlink_session(s);
    free_session(s);
}

static void on_session_timer(void *data);

static void arm_timer(adhoc_session *s, unsigned ms)
{
    tern_timer_cancel(s->timer);
    s->timer = tern_timer_add(s->st->host, ms, false, on_session_timer, s);
}

/* Ends a session but remembers its id; forgets the oldest ended ones beyond the limit. */
static void end_session(adhoc_session *s)
{
    free_forms(s);
    s->ended = true;
    arm_timer(s, ADHOC_ENDED_KEEP_S * 1000u);
    unsigned n = 0;
    adhoc_session *oldest = NULL;
    for (adhoc_session *it = s->st->sessions; it; it = it->next)
        if (it->ended) {
            n++;
            oldest = it; /* the list is newest first */
        }
    if (n > ADHOC_MAX_ENDED && oldest != s)
        remove_session(oldest);
}

static void on_session_timer(void *data)
{
    adhoc_session *s = data;
    s->timer = NULL; /* one-shot timers are gone before they run */
    if (s->ended) {
        remove_session(s);
        return;
    }
    log_debug(0, "ad-hoc session %s of %s expired", s->id, s->owner);
    end_session(s);
}

static size_t open_sessions(const adhoc_state *st, const char *owner)
{
    size_t n = 0;
    for (const adhoc_session *s = st->sessions; s; s = s->next)
        if (!s->ended && (!owner || strcmp(s->owner, owner) == 0))
            n++;
    return n;
}

static adhoc_session *find_session(adhoc_state *st, const char *id)
{
    for (adhoc_session *s = st->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static adhoc_session *session_new(adhoc_state *st, const char *owner, const char *node)
{
    adhoc_session *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    /* Session ids must never repeat (XEP-0050 §4.3) nor be guessable by another requester. */
    do {
        unsigned char raw[16];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            abort();
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
    } while (find_session(st, s->id));
    s->owner = strdup(owner);
    s->node = strdup(node);
    if (!s->owner || !s->node)
        abort();
    s->st = st;
    s->next = st->sessions;
    st->sessions = s;
    arm_timer(s, timeout_ms(st));
    return s;
}

/* ---- errors ---- */

/* A stanza error with a XEP-0050 §6.4 application condition (NULL: none). */
static void reply_error(const tern_stanza_event *ev, tern_stanza_error cond, const char *app,
                        const char *text)
{
    tern_xml *reply = stanza_error_reply(ev->stanza, cond, text);
    if (!reply)
        return;
    if (app)
        xml_add_child(xml_child(reply, "error", NULL), app, NS_COMMANDS);
    tern_reply(ev, reply);
}

/* ---- checking a submitted form against the shown one (XEP-0004 §3.2, §3.3) ---- */

static bool is_single_valued(const char *type)
{
    return strcmp(type, "jid-multi") != 0 && strcmp(type, "list-multi") != 0 &&
           strcmp(type, "text-multi") != 0;
}

static bool has_option(const tern_xml *field, const char *value)
{
    for (const tern_xml *o = xml_first_element(field); o; o = xml_next_element(o))
        if (xml_is(o, "option", NS_XDATA)) {
            const char *v = xml_child_text(o, "value", NS_XDATA);
            if (v && strcmp(v, value) == 0)
                return true;
        }
    return false;
}

/* Checks one submitted value of a shown field; false with a note when it is wrong. */
static bool check_value(tern_adhoc_ctx *ctx, const tern_xml *shown, const char *type,
                        const char *label, const char *value)
{
    if (!*value)
        return true;
    if (strncmp(type, "jid-", 4) == 0) {
        tern_jid jid;
        const char *why;
        if (jid_parse(value, &jid, &why) != 0) {
            tern_adhoc_notef(ctx, "error", "'%s' in '%s' is not a valid JID: %s", value, label,
                             why);
            return false;
        }
        jid_free(&jid);
    } else if (strcmp(type, "boolean") == 0) {
        if (strcmp(value, "0") && strcmp(value, "1") && strcmp(value, "true") &&
            strcmp(value, "false")) {
            tern_adhoc_notef(ctx, "error", "'%s' takes true or false", label);
            return false;
        }
    } else if (strncmp(type, "list-", 5) == 0 && xml_child(shown, "option", NS_XDATA) &&
               !has_option(shown, value)) {
        tern_adhoc_notef(ctx, "error", "'%s' is not one of the choices of '%s'", value, label);
        return false;
    }
    return true;
}

static bool check_form(tern_adhoc_ctx *ctx, const tern_xml *shown, const tern_xml *submitted)
{
    for (const tern_xml *f = xml_first_element(shown); f; f = xml_next_element(f)) {
        const char *var = xml_attr(f, "var");
        if (!xml_is(f, "field", NS_XDATA) || !var)
            continue;
        const char *type = xml_attr(f, "type") ? xml_attr(f, "type") : "text-single";
        const char *label = xml_attr(f, "label") ? xml_attr(f, "label") : var;
        if (strcmp(type, "fixed") == 0 || strcmp(type, "hidden") == 0)
            continue;
        const tern_xml *sub = tern_xdata_find(submitted, var);
        unsigned n = 0, filled = 0;
        for (const tern_xml *v = tern_xdata_first_value(sub); v; v = tern_xdata_next_value(v)) {
            n++;
            filled += *xml_text(v) != '\0';
            if (!check_value(ctx, f, type, label, xml_text(v)))
                return false;
        }
        if (xml_child(f, "required", NS_XDATA) && filled == 0) {
            tern_adhoc_notef(ctx, "error", "'%s' is required", label);
            return false;
        }
        if (n > 1 && is_single_valued(type)) {
            tern_adhoc_notef(ctx, "error", "'%s' takes a single value", label);
            return false;
        }
    }
    return true;
}

/* Puts the values of `values` into the matching fields of `form` (passwords excepted), so a
 * form shown again keeps what the requester had typed. */
static void fill_form(tern_xml *form, const tern_xml *values)
{
    for (tern_xml *f = xml_first_element(form); f; f = xml_next_element(f)) {
        const char *var = xml_attr(f, "var");
        const char *type = xml_attr(f, "type") ? xml_attr(f, "type") : "text-single";
        const tern_xml *src = var ? tern_xdata_find(values, var) : NULL;
        if (!xml_is(f, "field", NS_XDATA) || !src || !strcmp(type, "text-private") ||
            !strcmp(type, "hidden") || !strcmp(type, "fixed"))
            continue;
        tern_xml *v = tern_xdata_first_value(f);
        while (v) {
            tern_xml *next = tern_xdata_next_value(v);
            xml_remove_child(f, v);
            v = next;
        }
        for (const tern_xml *sv = tern_xdata_first_value(src); sv; sv = tern_xdata_next_value(sv))
            tern_xdata_value(f, xml_text(sv));
    }
}

/* ---- replies ---- */

static tern_xml *command_reply(const tern_stanza_event *ev, const adhoc_session *s,
                               const char *status, tern_xml **command)
{
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *c = xml_add_child(reply, "command", NS_COMMANDS);
    xml_set_attr(c, "node", s->node);
    xml_set_attr(c, "sessionid", s->id);
    xml_set_attr(c, "status", status);
    *command = c;
    return reply;
}

static void copy_children(tern_xml *to, const tern_xml *from, bool notes)
{
    for (const tern_xml *c = xml_first_element(from); c; c = xml_next_element(c))
        if (xml_is(c, "note", NS_COMMANDS) == notes)
            xml_add_copy(to, c);
}

/* status='executing': the allowed actions (XEP-0050 §4.4), the notes, then the form. */
static void reply_executing(const tern_stanza_event *ev, const adhoc_session *s,
                            const tern_xml *notes, const tern_xml *form)
{
    tern_xml *c;
    tern_xml *reply = command_reply(ev, s, "executing", &c);
    tern_xml *actions = xml_add_child(c, "actions", NS_COMMANDS);
    xml_set_attr(actions, "execute", s->final ? "complete" : "next");
    if (s->n_forms > 0)
        xml_add_child(actions, "prev", NS_COMMANDS);
    xml_add_child(actions, s->final ? "complete" : "next", NS_COMMANDS);
    if (notes)
        copy_children(c, notes, true);
    xml_add_copy(c, form);
    tern_reply(ev, reply);
}

static void reply_completed(const tern_stanza_event *ev, adhoc_session *s,
                            const tern_xml *payload)
{
    tern_xml *c;
    tern_xml *reply = command_reply(ev, s, "completed", &c);
    copy_children(c, payload, true);
    copy_children(c, payload, false);
    tern_reply(ev, reply);
    end_session(s);
}

static void internal_error(const tern_stanza_event *ev, adhoc_session *s, const char *why)
{
    log_error(0, "ad-hoc command %s: %s", s->node, why);
    reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, "the command failed");
    end_session(s);
}

/* The first <x type='form'/> a command put in its payload. */
static const tern_xml *payload_form(const tern_xml *payload)
{
    for (const tern_xml *x = xml_first_element(payload); x; x = xml_next_element(x)) {
        const char *type = xml_attr(x, "type");
        if (xml_is(x, "x", NS_XDATA) && type && strcmp(type, "form") == 0)
            return x;
    }
    return NULL;
}

/* ---- running a stage ---- */

/* Calls the command for the session's current stage, with the form just submitted (or NULL
 * to show the stage) and answers. `prefill` fills a form shown after "prev". */
static void run_stage(const tern_stanza_event *ev, adhoc_session *s,
                      const tern_adhoc_command *cmd, const tern_xml *submitted,
                      const tern_xml *prefill)
{
    for (;;) {
        tern_xml *payload = xml_new("command", NS_COMMANDS);
        tern_adhoc_ctx ctx = {
            .host = s->st->host, .requester = ev->from, .command = cmd, .stage = s->n_forms,
            .forms = (const tern_xml *const *)s->forms, .submitted = submitted,
            .payload = payload,
        };
        if (submitted && s->shown && !check_form(&ctx, s->shown, submitted)) {
            tern_xml *again = xml_copy(s->shown);
            fill_form(again, submitted);
            reply_executing(ev, s, payload, again);
            xml_unref(again);
            xml_unref(payload);
            return;
        }
        tern_adhoc_status r = cmd->run(&ctx);
        const tern_xml *form = payload_form(payload);
        if (r == TERN_ADHOC_FORM && form) {
            if (s->shown)
                xml_unref(s->shown);
            s->shown = xml_copy(form);
            if (prefill)
                fill_form(s->shown, prefill);
            s->final = ctx.final;
            reply_executing(ev, s, payload, s->shown);
        } else if (r == TERN_ADHOC_REJECT && submitted && s->shown) {
            tern_xml *again = xml_copy(s->shown);
            fill_form(again, submitted);
            reply_executing(ev, s, payload, again);
            xml_unref(again);
        } else if (r == TERN_ADHOC_NEXT && submitted && s->n_forms < ADHOC_MAX_STAGES) {
            s->forms[s->n_forms++] = xml_copy(submitted);
            if (s->shown)
                xml_unref(s->shown);
            s->shown = NULL;
            submitted = prefill = NULL;
            xml_unref(payload);
            continue;
        } else if (r == TERN_ADHOC_DONE) {
            reply_completed(ev, s, payload);
        } else if (r == TERN_ADHOC_ERROR) {
            reply_error(ev, ctx.error, NULL, ctx.error_text);
            end_session(s);
        } else {
            internal_error(ev, s, "the command answered out of turn (a bug in its module)");
        }
        xml_unref(payload);
        return;
    }
}

/* The <x/> of a request: a submitted form (XEP-0050 §4.5: type 'cancel' counts as 'submit'),
 * an empty one when the request has none, NULL (after an error reply) when it is not one. */
static tern_xml *submitted_form(const tern_stanza_event *ev, const tern_xml *command)
{
    const tern_xml *x = xml_child(command, "x", NS_XDATA);
    if (!x)
        return xml_new("x", NS_XDATA);
    const char *type = xml_attr(x, "type");
    if (!type || (strcmp(type, "submit") != 0 && strcmp(type, "cancel") != 0)) {
        reply_error(ev, STANZA_ERR_BAD_REQUEST, "bad-payload",
                    "a data form sent to a command must be of type 'submit'");
        return NULL;
    }
    return xml_copy(x);
}

/* Continues an open session with the requested action. */
static void continue_session(const tern_stanza_event *ev, adhoc_session *s,
                             const tern_adhoc_command *cmd, adhoc_action action,
                             const tern_xml *command)
{
    arm_timer(s, timeout_ms(s->st)); /* activity keeps the session alive */
    if (action == ACT_CANCEL) {
        tern_xml *c;
        tern_reply(ev, command_reply(ev, s, "canceled", &c));
        end_session(s);
        return;
    }
    if (action == ACT_EXECUTE) /* XEP-0050 §4.4: execute is the stage's default action */
        action = s->final ? ACT_COMPLETE : ACT_NEXT;
    if (action == ACT_PREV) {
        if (s->n_forms == 0) {
            reply_error(ev, STANZA_ERR_BAD_REQUEST, "bad-action", "there is no previous stage");
            return;
        }
        tern_xml *previous = s->forms[--s->n_forms];
        run_stage(ev, s, cmd, NULL, previous);
        xml_unref(previous);
        return;
    }
    if (!s->shown || (action == ACT_NEXT && s->final) ||
        (action == ACT_COMPLETE && !s->final)) {
        reply_error(ev, STANZA_ERR_BAD_REQUEST, "bad-action",
                    action == ACT_NEXT ? "this is the last stage: complete it"
                                       : "this stage is not the last: go on with next");
        return;
    }
    tern_xml *form = submitted_form(ev, command);
    if (!form)
        return;
    run_stage(ev, s, cmd, form, NULL);
    xml_unref(form);
}

static void finish_run(adhoc_session *s)
{
    s->running = false;
    if (s->doomed)
        remove_session(s);
}

static tern_event_result on_command(const tern_stanza_event *ev, void *data)
{
    adhoc_state *st = data;
    const tern_xml *command = xml_child(ev->stanza, "command", NS_COMMANDS);
    const char *node = xml_attr(command, "node");
    if (!node || !*node) {
        reply_error(ev, STANZA_ERR_BAD_REQUEST, NULL, "the command has no node");
        return TERN_HANDLED;
    }
    const tern_adhoc_command *cmd = find_command(st->host, node);
    if (!cmd) {
        reply_error(ev, STANZA_ERR_ITEM_NOT_FOUND, NULL, "no such command");
        return TERN_HANDLED;
    }
    if (!may_run(st->host, cmd, ev->from)) { /* XEP-0133 §5 */
        log_info(0, "%s may not run the command %s", ev->from->full, node);
        reply_error(ev, STANZA_ERR_FORBIDDEN, NULL, "you may not run this command");
        return TERN_HANDLED;
    }
    const char *action_name = xml_attr(command, "action");
    adhoc_action action = ACT_EXECUTE;
    if (action_name) {
        size_t i = 0;
        while (i < sizeof action_names / sizeof *action_names &&
               strcmp(action_names[i], action_name) != 0)
            i++;
        if (i == sizeof action_names / sizeof *action_names) {
            reply_error(ev, STANZA_ERR_BAD_REQUEST, "malformed-action", "unknown action");
            return TERN_HANDLED;
        }
        action = (adhoc_action)i;
    }

    const char *sid = xml_attr(command, "sessionid");
    if (!sid || !*sid) {
        if (action != ACT_EXECUTE) {
            reply_error(ev, STANZA_ERR_BAD_REQUEST, "bad-sessionid",
                        "only 'execute' starts a command; other actions need its sessionid");
            return TERN_HANDLED;
        }
        if (open_sessions(st, ev->from->full) >=
                tern_setting_uint(st->host, "adhoc", "max_per_requester") ||
            open_sessions(st, NULL) >= tern_setting_uint(st->host, "adhoc", "max_open")) {
            reply_error(ev, STANZA_ERR_RESOURCE_CONSTRAINT, NULL,
                        "too many open command sessions: complete or cancel one first");
            return TERN_HANDLED;
        }
        adhoc_session *s = session_new(st, ev->from->full, node);
        log_info(0, "%s runs the command %s (session %s)", ev->from->full, node, s->id);
        s->running = true;
        run_stage(ev, s, cmd, NULL, NULL);
        finish_run(s);
        return TERN_HANDLED;
    }
    /* Someone else's session is as unknown to this requester as one that never existed. */
    adhoc_session *s = find_session(st, sid);
    if (!s || strcmp(s->owner, ev->from->full) != 0 || strcmp(s->node, node) != 0) {
        reply_error(ev, STANZA_ERR_BAD_REQUEST, "bad-sessionid", "no such session");
        return TERN_HANDLED;
    }
    if (s->ended) {
        reply_error(ev, STANZA_ERR_NOT_ALLOWED, "session-expired",
                    "the session has ended (completed, canceled or timed out)");
        return TERN_HANDLED;
    }
    s->running = true;
    continue_session(ev, s, cmd, action, command);
    finish_run(s);
    return TERN_HANDLED;
}

/* ---- discovery (XEP-0050 §2) ---- */

typedef struct list_ctx {
    tern_host *host;
    const tern_jid *who;
    tern_xml *query;
} list_ctx;

static void add_item(void *vctx, const char *node, const void *data)
{
    list_ctx *l = vctx;
    const tern_adhoc_command *cmd = data;
    if (find_command(l->host, node) != cmd || !may_run(l->host, cmd, l->who))
        return; /* a second command with the same node, or one this requester may not run */
    tern_xml *item = xml_add_child(l->query, "item", NULL);
    xml_set_attr(item, "jid", tern_host_name(l->host));
    xml_set_attr(item, "node", node);
    xml_set_attr(item, "name", cmd->name);
}

static void add_identity(tern_xml *query, const char *type, const char *name)
{
    tern_xml *identity = xml_add_child(query, "identity", NULL);
    xml_set_attr(identity, "category", "automation");
    xml_set_attr(identity, "type", type);
    xml_set_attr(identity, "name", name);
}

/* Answers disco#info or disco#items for the commands node and each command's node; any other
 * query passes on to the disco module. */
static tern_event_result on_disco(const tern_stanza_event *ev, adhoc_state *st, bool info)
{
    const char *xmlns = info ? NS_DISCO_INFO : NS_DISCO_ITEMS;
    const char *node = xml_attr(xml_child(ev->stanza, "query", xmlns), "node");
    if (!node)
        return TERN_PASS;
    const tern_adhoc_command *cmd = NULL;
    if (strcmp(node, NS_COMMANDS) != 0) {
        cmd = find_command(st->host, node);
        if (!cmd)
            return TERN_PASS;
        if (!may_run(st->host, cmd, ev->from)) { /* XEP-0050 §2.2: SHOULD be forbidden */
            reply_error(ev, STANZA_ERR_FORBIDDEN, NULL, NULL);
            return TERN_HANDLED;
        }
    }
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", xmlns);
    xml_set_attr(query, "node", node);
    if (info && !cmd) {
        add_identity(query, "command-list", "Commands");
    } else if (info) {
        add_identity(query, "command-node", cmd->name);
        xml_set_attr(xml_add_child(query, "feature", NULL), "var", NS_COMMANDS);
        xml_set_attr(xml_add_child(query, "feature", NULL), "var", NS_XDATA);
    } else if (!cmd) {
        list_ctx l = { st->host, ev->from, query };
        tern_registry_each(st->host, TERN_REG_ADHOC_COMMAND, add_item, &l);
    }
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static tern_event_result on_disco_info(const tern_stanza_event *ev, void *data)
{
    return on_disco(ev, data, true);
}

static tern_event_result on_disco_items(const tern_stanza_event *ev, void *data)
{
    return on_disco(ev, data, false);
}

/* A requester that goes away takes its sessions with it. */
static void on_session_closed(tern_session *session, void *data)
{
    adhoc_state *st = data;
    const char *full = tern_session_jid(session)->full;
    adhoc_session *s = st->sessions;
    while (s) {
        adhoc_session *next = s->next;
        if (strcmp(s->owner, full) != 0)
            ; /* someone else's */
        else if (s->running)
            s->doomed = true; /* e.g. an admin ending their own session from a command */
        else
            remove_session(s);
        s = next;
    }
}

/* ---- module ---- */

/* Above the disco module (priority 0), which answers item-not-found for every node. */
#define ADHOC_DISCO_PRIORITY 10

static int adhoc_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    adhoc_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->host = host;
    *state = st;
    tern_hook_iq(host, "set", "host", NS_COMMANDS, "command", on_command, st);
    tern_hook_stanza(host, "iq-get/host/" NS_DISCO_INFO ":query", ADHOC_DISCO_PRIORITY,
                     on_disco_info, st);
    tern_hook_stanza(host, "iq-get/host/" NS_DISCO_ITEMS ":query", ADHOC_DISCO_PRIORITY,
                     on_disco_items, st);
    tern_hook_session(host, "session/closed", on_session_closed, st);
    tern_disco_add_feature(host, NS_COMMANDS);
    return 0;
}

/* The core has already removed this module's timers, so sessions are freed without them. */
static void adhoc_unload(tern_host *host, void *state)
{
    (void)host;
    adhoc_state *st = state;
    while (st->sessions) {
        adhoc_session *s = st->sessions;
        st->sessions = s->next;
        free_session(s);
    }
    free(st);
}

TERN_MODULE_SETTINGS("adhoc", adhoc_load, adhoc_unload, adhoc_settings);
