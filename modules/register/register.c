/* register — XEP-0077 In-Band Registration. For logged-in users (here): see one's
 * registration, change one's password, remove one's account, always allowed whatever
 * `registration =` says. Creating an account before login, where `registration = yes`:
 * ibr.c, on the hooks for unauthenticated streams. */
#include <stdlib.h>
#include <string.h>
#include <tern/module.h>

#include "ibr.h"

static const tern_setting_def register_settings[] = {
    { "interval", TERN_SETTING_UINT, "60", 1, 86400,
      "seconds an address waits after creating an account before it may create another",
      NULL },
    { "max_recent", TERN_SETTING_UINT, "10000", 1, 10000000,
      "addresses that created an account within the interval, at most; past it everyone waits",
      NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

/* XEP-0077 §3.3: clients address these to the server or to their own account. */
static bool from_the_account(const tern_stanza_event *ev)
{
    return ev->from->node && strcmp(ev->from->domain, tern_host_name(ev->host)) == 0 &&
           (!ev->to->node || jid_equal_bare(ev->from, ev->to));
}

static tern_event_result register_get(const tern_stanza_event *ev, void *data)
{
    (void)data;
    if (!from_the_account(ev)) {
        tern_reply_error(ev, STANZA_ERR_FORBIDDEN, NULL);
        return TERN_HANDLED;
    }
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *query = xml_add_child(reply, "query", NS_REGISTER);
    xml_add_child(query, "registered", NS_REGISTER);
    tern_xml_add_text_child(query, "username", NS_REGISTER, ev->from->node);
    xml_add_child(query, "password", NS_REGISTER);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static void change_password(const tern_stanza_event *ev, const tern_xml *query)
{
    const char *username = xml_child_text(query, "username", NS_REGISTER);
    const char *password = xml_child_text(query, "password", NS_REGISTER);
    char *node = NULL;
    bool same_user = username && jid_prep_node(username, &node) == 0 &&
                     strcmp(node, ev->from->node) == 0;
    free(node);
    if (!same_user || !password || !*password) {
        /* XEP-0077 §3.3: the username must be the user's own. */
        tern_reply_error(ev, STANZA_ERR_BAD_REQUEST,
                         "give your own username and a new password");
        return;
    }
    account_result r = tern_account_set_password(ev->host, ev->from->node, password);
    if (r == ACCOUNT_OK)
        tern_reply(ev, tern_iq_result_new(ev));
    else
        tern_reply_error(ev, r == ACCOUNT_BAD_PASSWORD ? STANZA_ERR_NOT_ACCEPTABLE
                             : r == ACCOUNT_FULL   ? STANZA_ERR_RESOURCE_CONSTRAINT
                                                   : STANZA_ERR_INTERNAL_SERVER_ERROR,
                         account_result_text(r));
}

static tern_event_result register_set(const tern_stanza_event *ev, void *data)
{
    (void)data;
    if (!from_the_account(ev)) {
        tern_reply_error(ev, STANZA_ERR_FORBIDDEN, NULL);
        return TERN_HANDLED;
    }
    const tern_xml *query = xml_child(ev->stanza, "query", NS_REGISTER);
    if (!xml_child(query, "remove", NS_REGISTER)) {
        change_password(ev, query);
        return TERN_HANDLED;
    }
    /* XEP-0077 §3.2: answer first, then the account and its sessions go. */
    char *node = strdup(ev->from->node);
    tern_reply(ev, tern_iq_result_new(ev));
    if (node && tern_account_delete(ev->host, node) != ACCOUNT_OK)
        log_error(0, "register: removing %s@%s failed", node, tern_host_name(ev->host));
    free(node);
    return TERN_HANDLED;
}

static int register_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    *state = ibr_load(host);
    static const char *const destinations[] = { "host", "bare" };
    for (size_t i = 0; i < 2; i++) {
        tern_hook_iq(host, "get", destinations[i], NS_REGISTER, "query", register_get, NULL);
        tern_hook_iq(host, "set", destinations[i], NS_REGISTER, "query", register_set, NULL);
    }
    tern_disco_add_feature(host, NS_REGISTER);
    return 0;
}

static void register_unload(tern_host *host, void *state)
{
    (void)host;
    ibr_unload(state);
}

TERN_MODULE_SETTINGS("register", register_load, register_unload, register_settings);
