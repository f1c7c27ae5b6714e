/* sasl.c — SASL mechanisms for client streams (see sasl.h). */
#include "xmpp/sasl.h"

#include <stdlib.h>
#include <string.h>

#include "core/scram.h"
#include "core/util.h"
#include "net/tls.h"
#include "process/server.h"
#include "xmpp/accounts.h"

typedef enum mech_kind { MECH_SCRAM, MECH_PLAIN } mech_kind;

typedef struct mech_info {
    const char *name;
    mech_kind kind;
    scram_hash hash;
    bool plus;
} mech_info;

/* In order of preference, as offered. */
static const mech_info mechanisms[] = {
    { "SCRAM-SHA-256-PLUS", MECH_SCRAM, SCRAM_SHA256, true },
    { "SCRAM-SHA-1-PLUS", MECH_SCRAM, SCRAM_SHA1, true },
    { "SCRAM-SHA-256", MECH_SCRAM, SCRAM_SHA256, false },
    { "SCRAM-SHA-1", MECH_SCRAM, SCRAM_SHA1, false },
    { "PLAIN", MECH_PLAIN, SCRAM_SHA256, false },
};

/* XEP-0440 lists the ones a session can give. slixmpp 1.8 knows only tls-unique. */
const char *const sasl_binding_types[SASL_N_BINDING_TYPES] = {
    "tls-exporter", "tls-server-end-point", "tls-unique",
};
#define N_BINDINGS SASL_N_BINDING_TYPES

struct sasl_exchange {
    const mech_info *mech;
    tern_host *host;
    scram_server *scram;
    gnutls_datum_t binding_data[N_BINDINGS];
    scram_channel_binding bindings[N_BINDINGS];
    size_t n_bindings;
    char *node;
    bool credentials_failure;
};

/* The channel bindings this TLS session can provide (tls-exporter needs TLS 1.3 or the
 * extended master secret, RFC 9266 §3; tls-unique needs TLS 1.2). */
static size_t collect_bindings(const sasl_channel *channel, gnutls_datum_t *data,
                               scram_channel_binding *out)
{
    size_t n = 0;
    if (!channel)
        return 0;
    for (size_t i = 0; i < N_BINDINGS; i++) {
        if (channel->get(channel->ctx, sasl_binding_types[i], &data[n]) != 0)
            continue;
        out[n].type = sasl_binding_types[i];
        out[n].data = data[n].data;
        out[n].len = data[n].size;
        n++;
    }
    return n;
}

bool sasl_offer(tern_xml *features, bool encrypted, const sasl_channel *channel)
{
    gnutls_datum_t data[N_BINDINGS];
    scram_channel_binding bindings[N_BINDINGS];
    size_t n = collect_bindings(channel, data, bindings);
    tern_xml *mechs = xml_add_child(features, "mechanisms", NS_SASL);
    for (size_t i = 0; i < ARRAY_LEN(mechanisms); i++) {
        const mech_info *m = &mechanisms[i];
        if ((m->plus && n == 0) || (m->kind == MECH_PLAIN && !encrypted))
            continue; /* PLAIN only over TLS */
        tern_xml *x = xml_add_child(mechs, "mechanism", NS_SASL);
        xml_add_text(x, m->name, strlen(m->name));
    }
    if (n > 0) {
        /* XEP-0440: which channel-binding types the client may use. */
        tern_xml *cb = xml_add_child(features, "sasl-channel-binding", NS_SASL_CB);
        for (size_t i = 0; i < n; i++)
            xml_set_attr(xml_add_child(cb, "channel-binding", NS_SASL_CB), "type",
                         bindings[i].type);
    }
    for (size_t i = 0; i < n; i++)
        gnutls_free(data[i].data);
    return n > 0;
}

/* username (SASLprep'd by SCRAM) → prepared localpart → credentials. Disabled accounts look
 * like missing ones. */
static int lookup_credentials(void *ctx, const char *username, scram_hash h,
                              scram_credentials *out)
{
    sasl_exchange *ex = ctx;
    char *node = NULL;
    if (jid_prep_node(username, &node) != 0)
        return 0;
    char *bare = xasprintf("%s@%s", node, ex->host->name);
    int found = 0;
    if (!account_is_disabled(server.storage, bare))
        found = account_get_credentials(server.storage, bare, h, out) == 1;
    free(bare);
    free(node);
    return found;
}

static bool has_binding(const sasl_exchange *ex, const char *type)
{
    for (size_t i = 0; i < ex->n_bindings; i++)
        if (strcmp(ex->bindings[i].type, type) == 0)
            return true;
    return false;
}

sasl_exchange *sasl_start(const char *mech, tern_host *host, bool encrypted,
                          const sasl_channel *channel, bool plus_offered,
                          const char *unbindable_user, const char **failure)
{
    const mech_info *m = NULL;
    for (size_t i = 0; i < ARRAY_LEN(mechanisms); i++)
        if (strcmp(mechanisms[i].name, mech) == 0)
            m = &mechanisms[i];
    if (!m) {
        *failure = "invalid-mechanism";
        return NULL;
    }
    if (m->kind == MECH_PLAIN && !encrypted) {
        *failure = "encryption-required";
        return NULL;
    }
    sasl_exchange *ex = xcalloc(1, sizeof *ex);
    ex->mech = m;
    ex->host = host;
    ex->n_bindings = collect_bindings(channel, ex->binding_data, ex->bindings);
    if (m->plus && ex->n_bindings == 0) {
        sasl_free(ex);
        *failure = "invalid-mechanism";
        return NULL;
    }
    if (m->kind == MECH_SCRAM) {
        ex->scram = scram_server_new(m->hash, m->plus, ex->bindings, ex->n_bindings, plus_offered,
                                     lookup_credentials, ex, server.secret, sizeof server.secret);
        if (channel && !has_binding(ex, "tls-unique"))
            scram_server_set_tls13(ex->scram);
        if (unbindable_user)
            scram_server_allow_y(ex->scram, unbindable_user);
    }
    return ex;
}

/* The authzid, when given, must name the authenticated account (RFC 6120 §6.3.8). */
static bool authzid_ok(sasl_exchange *ex, const char *authzid)
{
    if (!authzid || !*authzid)
        return true;
    tern_jid j;
    const char *why;
    if (jid_parse(authzid, &j, &why) != 0)
        return false;
    bool ok = !j.resource && j.node && strcmp(j.node, ex->node) == 0 &&
              strcmp(j.domain, ex->host->name) == 0;
    jid_free(&j);
    return ok;
}

static sasl_status finish_success(sasl_exchange *ex, const char *username, const char *authzid,
                                  const char **failure)
{
    if (jid_prep_node(username, &ex->node) != 0) {
        *failure = "not-authorized";
        return SASL_FAILURE;
    }
    if (!authzid_ok(ex, authzid)) {
        *failure = "invalid-authzid";
        return SASL_FAILURE;
    }
    return SASL_SUCCESS;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static sasl_status plain_step(sasl_exchange *ex, const unsigned char *in, size_t len,
                              const char **failure)
{
    const char *p = (const char *)in;
    const char *nul1 = memchr(p, '\0', len);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p)) : NULL;
    if (!nul1 || !nul2 || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - p))) {
        *failure = "malformed-request";
        return SASL_FAILURE;
    }
    char *authzid = xstrndup(p, (size_t)(nul1 - p));
    char *authcid = xstrndup(nul1 + 1, (size_t)(nul2 - nul1 - 1));
    char *password = xstrndup(nul2 + 1, len - (size_t)(nul2 + 1 - p));
    char *username = NULL;
    sasl_status st = SASL_FAILURE;
    *failure = "not-authorized";
    ex->credentials_failure = true;
    scram_credentials cred;
    bool known = scram_saslprep(authcid, &username) == 0 &&
                 lookup_credentials(ex, username, SCRAM_SHA256, &cred);
    if (!known) {
        /* Unmatchable credentials, so a missing account costs the same key derivation as a
         * real one and fails the same way. */
        memset(&cred, 0, sizeof cred);
        cred.hash = SCRAM_SHA256;
        cred.iterations = SCRAM_DEFAULT_ITERATIONS;
        cred.salt_len = 16;
        memcpy(cred.salt, server.secret, cred.salt_len);
        random_bytes(cred.stored_key, sizeof cred.stored_key);
    }
    if (scram_check_password(&cred, password) && known) {
        ex->credentials_failure = false;
        st = finish_success(ex, username, authzid, failure);
    }
    explicit_bzero(password, strlen(password));
    free(password);
    free(authzid);
    free(authcid);
    free(username);
    return st;
}

sasl_status sasl_step(sasl_exchange *ex, const unsigned char *in, size_t len, char **out,
                      size_t *out_len, const char **failure)
{
    *out = NULL;
    *out_len = 0;
    if (ex->mech->kind == MECH_PLAIN)
        return plain_step(ex, in, len, failure);
    switch (scram_server_step(ex->scram, (const char *)in, len, out, out_len, failure)) {
    case SCRAM_CONTINUE:
        return SASL_CONTINUE;
    case SCRAM_SUCCESS:
        return finish_success(ex, scram_server_username(ex->scram),
                              scram_server_authzid(ex->scram), failure);
    case SCRAM_FAILURE:
        ex->credentials_failure = !scram_server_failed_on_binding(ex->scram) &&
                                  strcmp(*failure, "not-authorized") == 0;
        return SASL_FAILURE;
    }
    return SASL_FAILURE;
}

const char *sasl_node(const sasl_exchange *ex) { return ex->node; }

const char *sasl_mechanism(const sasl_exchange *ex) { return ex->mech->name; }

bool sasl_failure_is_credentials(const sasl_exchange *ex) { return ex->credentials_failure; }

const char *sasl_unbindable_user(const sasl_exchange *ex)
{
    return ex->scram ? scram_server_unbindable_user(ex->scram) : NULL;
}

void sasl_free(sasl_exchange *ex)
{
    if (!ex)
        return;
    if (ex->scram)
        scram_server_free(ex->scram);
    for (size_t i = 0; i < ex->n_bindings; i++)
        gnutls_free(ex->binding_data[i].data);
    free(ex->node);
    free(ex);
}
