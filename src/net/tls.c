/* tls.c — GnuTLS credentials and session setup (see tls.h). */
#include "net/tls.h"

#include <gnutls/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "tern/log.h"

/* TLS 1.2 and 1.3 only; the operator may override with [tls] priority. */
#define DEFAULT_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

struct tls_ctx {
    atomic_int refs; /* connections on worker threads hold references too */
    gnutls_certificate_credentials_t creds;
    gnutls_priority_t priority;
};

static const char *host_cert(const config *cfg, const config_host *h)
{
    return h->cert ? h->cert : cfg->tls_cert;
}

/* Several hosts may share one certificate file; load each file once. */
static bool loaded_before(const config *cfg, size_t index, const char *cert)
{
    for (size_t i = 0; i < index; i++)
        if (strcmp(host_cert(cfg, &cfg->hosts[i]), cert) == 0)
            return true;
    return false;
}

tls_ctx *tls_ctx_new(const config *cfg, char *err, size_t err_len)
{
    tls_ctx *t = xcalloc(1, sizeof *t);
    atomic_init(&t->refs, 1);
    int rc = gnutls_certificate_allocate_credentials(&t->creds);
    if (rc < 0)
        goto gnutls_fail;
    /* One pair per distinct file, in host order; GnuTLS matches the client SNI against the
     * names of each certificate. */
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        const config_host *h = &cfg->hosts[i];
        const char *cert = host_cert(cfg, h);
        const char *key = h->cert ? h->key : cfg->tls_key;
        if (!cert) {
            snprintf(err, err_len, "%s: host %s has no TLS certificate ([tls] cert or cert in "
                     "[host %s])", cfg->path, h->name, h->name);
            goto fail;
        }
        if (loaded_before(cfg, i, cert))
            continue;
        rc = gnutls_certificate_set_x509_key_file(t->creds, cert, key, GNUTLS_X509_FMT_PEM);
        if (rc < 0) {
            snprintf(err, err_len, "cannot load certificate %s with key %s: %s", cert, key,
                     gnutls_strerror(rc));
            goto fail;
        }
    }
    /* Trust anchors for the certificates of server-to-server peers. */
    if (cfg->tls_ca_file) {
        rc = gnutls_certificate_set_x509_trust_file(t->creds, cfg->tls_ca_file,
                                                    GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            snprintf(err, err_len, "cannot load [tls] ca_file %s: %s", cfg->tls_ca_file,
                     rc < 0 ? gnutls_strerror(rc) : "no certificate in it");
            goto fail;
        }
    } else if ((rc = gnutls_certificate_set_x509_system_trust(t->creds)) < 0) {
        log_warn(0, "tls: cannot load the system's trusted CAs (%s): no s2s peer certificate "
                 "will be valid", gnutls_strerror(rc));
    }
    const char *prio = cfg->tls_priority ? cfg->tls_priority : DEFAULT_PRIORITY;
    const char *where = NULL;
    rc = gnutls_priority_init(&t->priority, prio, &where);
    if (rc < 0) {
        snprintf(err, err_len, "%s: [tls] priority is invalid near \"%s\": %s", cfg->path,
                 where ? where : prio, gnutls_strerror(rc));
        goto fail;
    }
    return t;
gnutls_fail:
    snprintf(err, err_len, "TLS setup failed: %s", gnutls_strerror(rc));
fail:
    if (t->creds)
        gnutls_certificate_free_credentials(t->creds);
    free(t);
    return NULL;
}

void tls_ctx_ref(tls_ctx *t) { atomic_fetch_add(&t->refs, 1); }

void tls_ctx_unref(tls_ctx *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) > 1)
        return;
    gnutls_priority_deinit(t->priority);
    gnutls_certificate_free_credentials(t->creds);
    free(t);
}

gnutls_session_t tls_session_new(tls_ctx *t, int fd, const char *alpn)
{
    gnutls_session_t s;
    int rc = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (rc < 0) {
        log_error(0, "tls: gnutls_init: %s", gnutls_strerror(rc));
        return NULL;
    }
    if ((rc = gnutls_priority_set(s, t->priority)) < 0 ||
        (rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->creds)) < 0) {
        log_error(0, "tls: session setup: %s", gnutls_strerror(rc));
        gnutls_deinit(s);
        return NULL;
    }
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
    if (alpn) {
        gnutls_datum_t proto = { (unsigned char *)alpn, (unsigned)strlen(alpn) };
        gnutls_alpn_set_protocols(s, &proto, 1, 0);
    }
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, 0); /* the connection's own timer bounds the handshake */
    return s;
}

gnutls_session_t tls_s2s_session_new(tls_ctx *t, int fd)
{
    gnutls_session_t s = tls_session_new(t, fd, NULL);
    if (s) {
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
        /* Listing every trusted CA would make a peer whose CA is not among them send no
         * certificate at all; with none listed it sends its own, and we judge it. */
        gnutls_certificate_send_x509_rdn_sequence(s, 1);
    }
    return s;
}

gnutls_session_t tls_client_session_new(tls_ctx *t, int fd, const char *server_name,
                                        const char *alpn)
{
    gnutls_session_t s;
    int rc = gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (rc < 0) {
        log_error(0, "tls: gnutls_init: %s", gnutls_strerror(rc));
        return NULL;
    }
    if ((rc = gnutls_priority_set(s, t->priority)) < 0 ||
        (rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->creds)) < 0 ||
        (rc = gnutls_server_name_set(s, GNUTLS_NAME_DNS, server_name, strlen(server_name))) < 0) {
        log_error(0, "tls: client session setup: %s", gnutls_strerror(rc));
        gnutls_deinit(s);
        return NULL;
    }
    if (alpn) {
        gnutls_datum_t proto = { (unsigned char *)alpn, (unsigned)strlen(alpn) };
        gnutls_alpn_set_protocols(s, &proto, 1, 0);
    }
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, 0);
    return s;
}

/* RFC 6120 §13.7.1.4: an XmppAddr subjectAltName equal to the domain also names a server. */
static bool has_xmpp_addr(gnutls_session_t s, const char *domain)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    gnutls_x509_crt_t crt;
    if (!certs || n == 0 || gnutls_x509_crt_init(&crt) < 0)
        return false;
    bool found = false;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0) {
        for (unsigned i = 0; !found; i++) {
            char name[1024];
            size_t len = sizeof name - 1;
            int type = gnutls_x509_crt_get_subject_alt_name(crt, i, name, &len, NULL);
            if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                break;
            if (type == GNUTLS_SAN_OTHERNAME_XMPP) {
                name[len] = '\0';
                found = strcasecmp(name, domain) == 0;
            }
        }
    }
    gnutls_x509_crt_deinit(crt);
    return found;
}

int tls_verify_peer(gnutls_session_t s, const char *domain, char *why, size_t why_len)
{
    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
        !gnutls_certificate_get_peers(s, &(unsigned){ 0 })) {
        snprintf(why, why_len, "no certificate");
        return -1;
    }
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers3(s, domain, &status);
    if (rc < 0) {
        snprintf(why, why_len, "%s", gnutls_strerror(rc));
        return -1;
    }
    if (status == (GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER) &&
        has_xmpp_addr(s, domain))
        status = 0; /* the chain is good and an XmppAddr names the domain */
    if (status == 0)
        return 0;
    gnutls_datum_t text;
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0) {
        snprintf(why, why_len, "%s", (const char *)text.data);
        gnutls_free(text.data);
    } else {
        snprintf(why, why_len, "invalid certificate");
    }
    return -1;
}

int tls_channel_binding(gnutls_session_t s, const char *type, gnutls_datum_t *out)
{
    gnutls_channel_binding_t cb;
    if (strcmp(type, "tls-exporter") == 0)
        cb = GNUTLS_CB_TLS_EXPORTER;
    else if (strcmp(type, "tls-server-end-point") == 0)
        cb = GNUTLS_CB_TLS_SERVER_END_POINT;
    else if (strcmp(type, "tls-unique") == 0 && gnutls_protocol_get_version(s) != GNUTLS_TLS1_3)
        cb = GNUTLS_CB_TLS_UNIQUE; /* RFC 5929 §3; not defined for TLS 1.3 (RFC 9266) */
    else
        return -1;
    return gnutls_session_channel_binding(s, cb, out) < 0 ? -1 : 0;
}
