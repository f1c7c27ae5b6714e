/* announce — messages from the server to its users, as XEP-0133 Service Administration
 * commands run from any client with ad-hoc command support (the adhoc module lists and runs
 * them): an announcement to everyone online now (§4.23), the message of the day (§4.24 -
 * §4.26) and the welcome message for new accounts (§4.27 - §4.28).
 *
 * Only accounts listed in [server] admins may run these commands (XEP-0133 §8). The admin
 * module offers the other XEP-0133 commands; the two modules work alone or together.
 *
 * Data kept here, in keyval stores (the text, without terminating NUL):
 *   "motd"      owner: the host   the message of the day, sent at each initial presence
 *   "welcome"   owner: the host   the welcome message, sent to each new account */
#include <stdlib.h>
#include <string.h>
#include <tern/adhoc.h>

#define NS_ADMIN "http://jabber.org/protocol/admin"
#define XEP0133(name) NS_ADMIN "#" name

#define MOTD_STORE "motd"
#define WELCOME_STORE "welcome"

/* ---- small helpers ---- */

static const char *host_of(const tern_adhoc_ctx *ctx) { return tern_host_name(ctx->host); }

/* A form with the XEP-0068 FORM_TYPE of XEP-0133 (§9.2). */
static tern_xml *admin_form(tern_adhoc_ctx *ctx, const char *type, const char *title,
                            const char *instructions)
{
    tern_xml *x = tern_xdata_form(ctx->payload, type, title, instructions);
    tern_xdata_value(tern_xdata_field(x, "hidden", "FORM_TYPE", NULL, false), NS_ADMIN);
    return x;
}

/* A text stored under the host, NUL-terminated (malloc'd), or NULL when there is none. */
static char *load_text(tern_host *host, const char *store)
{
    void *value;
    size_t len;
    if (storage_kv_get(tern_host_storage(host), store, tern_host_name(host), &value, &len) != 1)
        return NULL;
    char *text = malloc(len + 1);
    if (!text)
        abort();
    memcpy(text, value, len);
    text[len] = '\0';
    free(value);
    return text;
}

static tern_xml *message_new(const char *from, const char *type, const char *subject,
                             const char *body)
{
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_set_attr(m, "from", from);
    if (type)
        xml_set_attr(m, "type", type);
    tern_xml_add_text_child(m, "subject", NULL, subject);
    tern_xml_add_text_child(m, "body", NULL, body);
    return m;
}

static void send_to_session(tern_session *s, void *msg)
{
    xml_set_attr(msg, "to", tern_session_jid(s)->full);
    tern_session_send(s, msg);
}

/* XEP-0133 §4.23: a headline to every session of the host. */
static void announce_all(tern_host *host, const char *subject, const char *text)
{
    tern_xml *m = message_new(tern_host_name(host), "headline", subject, text);
    tern_host_each_online(host, send_to_session, m);
    xml_unref(m);
}

/* ---- the commands ---- */

typedef struct text_spec {
    const char *var, *label, *title, *instructions;
    const char *store; /* NULL: announce now, keep nothing */
} text_spec;

static tern_adhoc_status run_text(tern_adhoc_ctx *ctx)
{
    const text_spec *spec = ctx->command->data;
    if (!ctx->submitted) {
        tern_xml *x = admin_form(ctx, "form", spec->title, spec->instructions);
        tern_xml *f = tern_xdata_field(x, "text-multi", spec->var, spec->label, true);
        char *current = spec->store ? load_text(ctx->host, spec->store) : NULL;
        if (current) /* XEP-0133 §4.25, §4.27: the form shows the current text */
            tern_xdata_lines(f, current);
        free(current);
        ctx->final = true;
        return TERN_ADHOC_FORM;
    }
    char *text = tern_xdata_get_lines(ctx->submitted, spec->var);
    if (!spec->store) {
        announce_all(ctx->host, "Announcement", text);
        tern_adhoc_notef(ctx, "info", "Announcement sent to %zu session%s",
                         tern_host_session_count(ctx->host),
                         tern_host_session_count(ctx->host) == 1 ? "" : "s");
    } else if (storage_kv_put(tern_host_storage(ctx->host), spec->store, host_of(ctx), text,
                              strlen(text)) != 0) {
        tern_adhoc_note(ctx, "error", "The message could not be stored");
    } else if (strcmp(spec->store, MOTD_STORE) == 0) {
        /* XEP-0133 §4.24: users online now get it at once, the others when they log in. */
        announce_all(ctx->host, "Message of the day", text);
        tern_adhoc_note(ctx, "info", "Message of the day set");
    } else {
        tern_adhoc_note(ctx, "info", "Welcome message set");
    }
    free(text);
    return TERN_ADHOC_DONE;
}

/* XEP-0133 §4.26, §4.28. */
static tern_adhoc_status run_delete_text(tern_adhoc_ctx *ctx)
{
    const char *store = ctx->command->data;
    if (storage_kv_delete(tern_host_storage(ctx->host), store, host_of(ctx)) != 0)
        tern_adhoc_note(ctx, "error", "The message could not be deleted");
    else
        tern_adhoc_note(ctx, "info", strcmp(store, MOTD_STORE) == 0
                                         ? "Message of the day deleted"
                                         : "Welcome message deleted");
    return TERN_ADHOC_DONE;
}

static const text_spec announce = { "announcement", "Announcement", "Making an Announcement",
    "Fill out this form to make an announcement to all active users of this service.", NULL };
static const text_spec set_motd = { "motd", "Message of the Day",
    "Setting the Message of the Day", "Fill out this form to set the message of the day.",
    MOTD_STORE };
static const text_spec edit_motd = { "motd", "Message of the Day",
    "Editing the Message of the Day", "Fill out this form to edit the message of the day.",
    MOTD_STORE };
static const text_spec set_welcome = { "welcome", "Welcome Message", "Setting Welcome Message",
    "Fill out this form to set the welcome message for this service.", WELCOME_STORE };

#define ADMIN TERN_ADHOC_ADMIN
static const tern_adhoc_command commands[] = {
    { XEP0133("announce"), "Send Announcement to Online Users", ADMIN, run_text, &announce },
    { XEP0133("set-motd"), "Set Message of the Day", ADMIN, run_text, &set_motd },
    { XEP0133("edit-motd"), "Edit Message of the Day", ADMIN, run_text, &edit_motd },
    { XEP0133("delete-motd"), "Delete Message of the Day", ADMIN, run_delete_text, MOTD_STORE },
    { XEP0133("set-welcome"), "Set Welcome Message", ADMIN, run_text, &set_welcome },
    { XEP0133("delete-welcome"), "Delete Welcome Message", ADMIN, run_delete_text,
      WELCOME_STORE },
};

/* ---- events ---- */

/* XEP-0133 §4.24: the message of the day, at each initial presence. */
static void on_available(tern_session *s, void *data)
{
    (void)data;
    tern_host *host = tern_session_host(s);
    char *motd = load_text(host, MOTD_STORE);
    if (!motd)
        return;
    tern_xml *m = message_new(tern_host_name(host), "headline", "Message of the day", motd);
    send_to_session(s, m);
    xml_unref(m);
    free(motd);
}

/* XEP-0133 §4.27: the welcome message, to each new account (a normal message, so that the
 * offline module keeps it for the first login). */
static void on_created(tern_host *host, const char *bare, void *data)
{
    (void)data;
    char *welcome = load_text(host, WELCOME_STORE);
    if (!welcome)
        return;
    tern_xml *m = message_new(tern_host_name(host), "normal", "Welcome", welcome);
    xml_set_attr(m, "to", bare);
    tern_route(host, m);
    free(welcome);
}

static int announce_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        tern_adhoc_register(host, &commands[i]);
    tern_hook_session(host, "session/available", on_available, NULL);
    tern_hook_account(host, "account/created", on_created, NULL);
    return 0;
}

TERN_MODULE("announce", announce_load, NULL);
