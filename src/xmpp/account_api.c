/* account_api.c — accounts and sessions in the module API: the operations ternctl offers from
 * the shell (accounts.c underneath, the same code), plus what only a running server can do —
 * end the sessions of an account that was deleted or disabled, and tell modules about it. */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "host/hooks.h"
#include "process/server.h"
#include "xmpp/accounts.h"
#include "xmpp/session.h"

/* node → prepared bare JID on this host; NULL when the localpart is not valid. */
static char *bare_of(tern_host *host, const char *node)
{
    char *prepared = NULL;
    if (!node || jid_prep_node(node, &prepared) != 0)
        return NULL;
    char *bare = xasprintf("%s@%s", prepared, host->name);
    free(prepared);
    return bare;
}

static void close_with_not_authorized(tern_session *s, void *ctx)
{
    tern_session_close(s, STREAM_ERR_NOT_AUTHORIZED, ctx);
}

account_result tern_account_create(tern_host *host, const char *node, const char *password)
{
    char *bare = bare_of(host, node);
    if (!bare)
        return ACCOUNT_ERROR;
    account_result r = account_create(server.storage, bare, password, 0);
    if (r == ACCOUNT_OK) {
        log_info(0, "account %s created", bare);
        hooks_run_account(host, "account/created", bare);
    }
    free(bare);
    return r;
}

account_result tern_account_delete(tern_host *host, const char *node)
{
    char *bare = bare_of(host, node);
    if (!bare)
        return ACCOUNT_NOT_FOUND;
    if (!account_exists(server.storage, bare)) {
        free(bare);
        return ACCOUNT_NOT_FOUND;
    }
    /* Sessions end first (their unavailable presence goes out while the roster still says to
     * whom), then modules act on the data that is about to go, then everything goes. */
    tern_host_each_session(host, bare, close_with_not_authorized, "account deleted");
    hooks_run_account(host, "account/deleting", bare);
    account_result r = account_delete(server.storage, bare);
    if (r == ACCOUNT_OK) {
        log_info(0, "account %s deleted", bare);
        hooks_run_account(host, "account/deleted", bare);
    }
    free(bare);
    return r;
}

account_result tern_account_set_password(tern_host *host, const char *node,
                                         const char *password)
{
    char *bare = bare_of(host, node);
    if (!bare)
        return ACCOUNT_NOT_FOUND;
    account_result r = account_set_password(server.storage, bare, password, 0);
    if (r == ACCOUNT_OK)
        log_info(0, "password of %s changed", bare);
    free(bare);
    return r;
}

account_result tern_account_set_disabled(tern_host *host, const char *node, bool disabled)
{
    char *bare = bare_of(host, node);
    if (!bare)
        return ACCOUNT_NOT_FOUND;
    account_result r = account_set_disabled(server.storage, bare, disabled);
    if (r == ACCOUNT_OK) {
        log_info(0, "account %s %s", bare, disabled ? "disabled" : "enabled");
        if (disabled)
            tern_host_each_session(host, bare, close_with_not_authorized, "account disabled");
    }
    free(bare);
    return r;
}

bool tern_account_is_disabled(tern_host *host, const char *node)
{
    char *bare = bare_of(host, node);
    bool disabled = bare && account_is_disabled(server.storage, bare);
    free(bare);
    return disabled;
}

int tern_account_each(tern_host *host, int (*fn)(void *ctx, const char *bare), void *ctx)
{
    return account_each(server.storage, host->name, fn, ctx);
}

void tern_session_close(tern_session *s, tern_stream_error cond, const char *text)
{
    s->transport->close(s->transport_ctx, cond, text);
}

typedef struct session_list {
    tern_session **items;
    size_t n, cap;
} session_list;

static void collect_user(void *ctx, const char *key, void *value)
{
    session_list *list = ctx;
    (void)key;
    for (tern_session *s = ((user_sessions *)value)->head; s; s = s->next_of_user) {
        if (list->n == list->cap) {
            list->cap = list->cap ? list->cap * 2 : 16;
            list->items = xrealloc(list->items, list->cap * sizeof *list->items);
        }
        list->items[list->n++] = s;
    }
}

void tern_host_each_online(tern_host *host, void (*fn)(tern_session *session, void *ctx),
                           void *ctx)
{
    /* A snapshot, so fn may close (and free) the session it is given. */
    session_list list = { 0 };
    hashmap_each(host->users, collect_user, &list);
    for (size_t i = 0; i < list.n; i++)
        fn(list.items[i], ctx);
    free(list.items);
}

bool tern_host_account_exists(tern_host *host, const char *node)
{
    char *bare = xasprintf("%s@%s", node, host->name);
    bool exists = account_exists(server.storage, bare);
    free(bare);
    return exists;
}
