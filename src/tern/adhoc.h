/* tern/adhoc.h — ad-hoc commands (XEP-0050): how a module offers a command, and data forms
 * (XEP-0004) helpers to build and read the forms commands exchange.
 *
 * A module describes a command with a tern_adhoc_command that lives as long as the module
 * (usually a static const) and registers it with tern_adhoc_register() from its load(). The
 * registration is an item of the host's TERN_REG_ADHOC_COMMAND registry, so the adhoc module
 * (which lists and runs commands) may load before or after the modules that offer them, and a
 * command disappears with the module that registered it.
 *
 * The adhoc module keeps the command sessions: it lists commands in disco (only those the
 * requester may run), checks access on every request, gives out session ids, keeps the forms
 * a requester has submitted, implements the actions (execute, next, prev, complete, cancel),
 * checks each submitted form against the form that was shown (required fields, JIDs that
 * parse, options of list-single fields, one value where only one is allowed) and expires idle
 * sessions. A command is therefore a function of the forms submitted so far:
 *
 *   run(ctx) with ctx->submitted == NULL: show stage ctx->stage. Add a form of type "form" to
 *       ctx->payload and return TERN_ADHOC_FORM (set ctx->final when it is the last stage), or
 *       do the work at once and return TERN_ADHOC_DONE.
 *   run(ctx) with ctx->submitted != NULL: the requester filled in the form of stage ctx->stage.
 *       Return TERN_ADHOC_REJECT with an error note to show the same form again (filled in with
 *       what was submitted), TERN_ADHOC_NEXT to accept it and go to the next stage (run is
 *       called again with stage + 1 and no submission), or do the work and return
 *       TERN_ADHOC_DONE with notes and/or a form of type "result".
 *   ctx->forms[0 .. stage-1] are the forms accepted at the earlier stages; "prev" drops the
 *   last one and shows that stage again, filled in with what had been submitted.
 * A command keeps no state of its own between calls, so nothing leaks when a session expires
 * or its module is unloaded. */
#ifndef TERN_ADHOC_H
#define TERN_ADHOC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/module.h"

#define NS_COMMANDS "http://jabber.org/protocol/commands" /* XEP-0050 */
#define NS_XDATA    "jabber:x:data"                       /* XEP-0004 */

/* Registry of commands: item = the command's node, data = const tern_adhoc_command *. */
#define TERN_REG_ADHOC_COMMAND "adhoc-command"

/* Who may see and run a command. */
typedef enum tern_adhoc_access {
    TERN_ADHOC_ADMIN = 0,      /* accounts listed in [server] admins */
    TERN_ADHOC_LOCAL_USER = 1, /* any account of the host (admins included) */
} tern_adhoc_access;

typedef enum tern_adhoc_status {
    TERN_ADHOC_FORM,   /* payload holds the form of this stage; wait for the requester */
    TERN_ADHOC_REJECT, /* the submitted form is refused: show it again with payload's notes */
    TERN_ADHOC_NEXT,   /* the submitted form is accepted: go on to the next stage */
    TERN_ADHOC_DONE,   /* completed; payload holds notes and/or a result form */
    TERN_ADHOC_ERROR,  /* answer with the stanza error ctx->error (ctx->error_text) */
} tern_adhoc_status;

typedef struct tern_adhoc_command tern_adhoc_command;

typedef struct tern_adhoc_ctx {
    tern_host *host;
    const tern_jid *requester;          /* the full JID running the command */
    const tern_adhoc_command *command;
    unsigned stage;                     /* 0 for the first form */
    const tern_xml *const *forms;       /* forms[i] (i < stage): accepted submissions */
    const tern_xml *submitted;          /* the form just submitted for `stage`, or NULL */
    tern_xml *payload;                  /* add notes and forms here (a <command/> element) */
    bool final;                         /* with TERN_ADHOC_FORM: the last stage (complete) */
    tern_stanza_error error;            /* with TERN_ADHOC_ERROR */
    const char *error_text;             /* with TERN_ADHOC_ERROR; static or NULL */
} tern_adhoc_ctx;

struct tern_adhoc_command {
    const char *node;                   /* unique on the host, e.g. "...admin#add-user" */
    const char *name;                   /* shown in disco items */
    tern_adhoc_access access;
    tern_adhoc_status (*run)(tern_adhoc_ctx *ctx);
    const void *data;                   /* for run(), as ctx->command->data; may be NULL */
};

/* Registers a command on a host (from a module's load). The command must stay valid until
 * the module unloads; the first command registered for a node wins. */
static inline void tern_adhoc_register(tern_host *host, const tern_adhoc_command *cmd)
{
    tern_registry_add(host, TERN_REG_ADHOC_COMMAND, cmd->node, cmd);
}

/* ---- notes (XEP-0050 §6.3): type "info", "warn" or "error" ---- */

static inline void tern_adhoc_note(tern_adhoc_ctx *ctx, const char *type, const char *text)
{
    tern_xml *note = tern_xml_add_text_child(ctx->payload, "note", NS_COMMANDS, text);
    xml_set_attr(note, "type", type);
}

static inline void tern_adhoc_notef(tern_adhoc_ctx *ctx, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void tern_adhoc_notef(tern_adhoc_ctx *ctx, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *text = malloc((size_t)n + 1);
    if (!text)
        abort();
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tern_adhoc_note(ctx, type, text);
    free(text);
}

/* Adds an error note and returns TERN_ADHOC_REJECT: `return tern_adhoc_reject(ctx, ...);` */
#define tern_adhoc_reject(ctx, ...) \
    (tern_adhoc_notef((ctx), "error", __VA_ARGS__), TERN_ADHOC_REJECT)

/* ---- data forms (XEP-0004) ---- */

/* <x xmlns='jabber:x:data' type=type> with optional title and instructions. */
static inline tern_xml *tern_xdata_form(tern_xml *parent, const char *type, const char *title,
                                        const char *instructions)
{
    tern_xml *x = xml_add_child(parent, "x", NS_XDATA);
    xml_set_attr(x, "type", type);
    if (title)
        tern_xml_add_text_child(x, "title", NS_XDATA, title);
    if (instructions)
        tern_xml_add_text_child(x, "instructions", NS_XDATA, instructions);
    return x;
}

/* A <field/>; type and label may be NULL (XEP-0004 §3.2: the type defaults to text-single). */
static inline tern_xml *tern_xdata_field(tern_xml *form, const char *type, const char *var,
                                         const char *label, bool required)
{
    tern_xml *f = xml_add_child(form, "field", NS_XDATA);
    if (type)
        xml_set_attr(f, "type", type);
    if (var)
        xml_set_attr(f, "var", var);
    if (label)
        xml_set_attr(f, "label", label);
    if (required)
        xml_add_child(f, "required", NS_XDATA);
    return f;
}

static inline void tern_xdata_value(tern_xml *field, const char *value)
{
    tern_xml_add_text_child(field, "value", NS_XDATA, value);
}

/* One <value/> per line of text (text-multi fields, XEP-0004 §3.3). */
static inline void tern_xdata_lines(tern_xml *field, const char *text)
{
    for (const char *line = text; line;) {
        const char *nl = strchr(line, '\n');
        tern_xml *v = xml_add_child(field, "value", NS_XDATA);
        xml_add_text(v, line, nl ? (size_t)(nl - line) : strlen(line));
        line = nl ? nl + 1 : NULL;
    }
}

static inline void tern_xdata_option(tern_xml *field, const char *label, const char *value)
{
    tern_xml *o = xml_add_child(field, "option", NS_XDATA);
    if (label)
        xml_set_attr(o, "label", label);
    tern_xdata_value(o, value);
}

/* The field named var of a form, or NULL (form may be NULL). */
static inline tern_xml *tern_xdata_find(const tern_xml *form, const char *var)
{
    if (!form)
        return NULL;
    for (tern_xml *f = xml_first_element(form); f; f = xml_next_element(f)) {
        const char *v = xml_attr(f, "var");
        if (xml_is(f, "field", NS_XDATA) && v && strcmp(v, var) == 0)
            return f;
    }
    return NULL;
}

/* The first value of a field, or NULL when the field or its value is missing. */
static inline const char *tern_xdata_get(const tern_xml *form, const char *var)
{
    return xml_child_text(tern_xdata_find(form, var), "value", NS_XDATA);
}

/* Iterating the values of a field: for (v = tern_xdata_first_value(f); v; v =
 * tern_xdata_next_value(v)) ... xml_text(v). */
static inline tern_xml *tern_xdata_next_value(const tern_xml *value)
{
    tern_xml *v = xml_next_element(value);
    while (v && !xml_is(v, "value", NS_XDATA))
        v = xml_next_element(v);
    return v;
}

static inline tern_xml *tern_xdata_first_value(const tern_xml *field)
{
    return field ? xml_child(field, "value", NS_XDATA) : NULL;
}

/* The values of a text-multi field joined with newlines (malloc'd; the caller frees), or NULL
 * when the field is missing. */
static inline char *tern_xdata_get_lines(const tern_xml *form, const char *var)
{
    const tern_xml *f = tern_xdata_find(form, var);
    if (!f)
        return NULL;
    tern_buf b;
    buf_init(&b);
    for (const tern_xml *v = tern_xdata_first_value(f); v; v = tern_xdata_next_value(v)) {
        if (b.len)
            buf_append_str(&b, "\n");
        buf_append_str(&b, xml_text(v));
    }
    buf_cstr(&b);
    if (!b.data && !(b.data = calloc(1, 1)))
        abort();
    return b.data;
}

#endif
