/* s2s_proto.c — what outgoing and incoming server-to-server streams share: the dialback key,
 * the stream syntax and the namespace of received stanzas. */
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "process/server.h"
#include "s2s/s2s.h"
#include "tern/module.h"
#include "tern/ns.h"

void s2s_dialback_key(const char *receiving, const char *originating, const char *id,
                      char out[65])
{
    /* XEP-0185 §3: the secret is hashed first so that the HMAC key never is the raw secret. */
    unsigned char k[32], mac[32];
    gnutls_hash_fast(GNUTLS_DIG_SHA256, server.secret, sizeof server.secret, k);
    char *text = xasprintf("%s %s %s", receiving, originating, id);
    gnutls_hmac_fast(GNUTLS_MAC_SHA256, k, sizeof k, text, strlen(text), mac);
    free(text);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof mac; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
}

static void attr(tern_buf *out, const char *name, const char *value)
{
    if (!value)
        return;
    buf_printf(out, " %s='", name);
    buf_append_escaped(out, value, strlen(value));
    buf_append_str(out, "'");
}

void s2s_write_header(conn *c, const char *from, const char *to, const char *id)
{
    tern_buf *out = conn_outbuf(c);
    buf_append_str(out, "<?xml version='1.0'?><stream:stream xmlns='" NS_SERVER
                        "' xmlns:stream='" NS_STREAMS "' xmlns:db='" NS_DIALBACK "'");
    attr(out, "from", from);
    attr(out, "to", to);
    attr(out, "id", id);
    buf_append_str(out, " version='1.0'>");
    conn_flush(c);
}

void s2s_write_dialback(conn *c, const char *name, const char *from, const char *to,
                        const char *id, const char *type, const char *key)
{
    tern_buf *out = conn_outbuf(c);
    buf_append_str(out, "<db:");
    buf_append_str(out, name);
    attr(out, "from", from);
    attr(out, "to", to);
    attr(out, "id", id);
    attr(out, "type", type);
    if (key) {
        buf_append_str(out, ">");
        buf_append_escaped(out, key, strlen(key));
        buf_append_str(out, "</db:");
        buf_append_str(out, name);
        buf_append_str(out, ">");
    } else {
        buf_append_str(out, "/>");
    }
    conn_flush(c);
}

void s2s_write_stream_error(conn *c, tern_stream_error cond, const char *text)
{
    tern_xml *err = stream_error_new(cond, text);
    tern_buf *out = conn_outbuf(c);
    buf_append_str(out, "<stream:error>");
    for (const tern_xml *x = xml_first_element(err); x; x = xml_next_element(x))
        xml_serialize(x, NS_SERVER, out);
    buf_append_str(out, "</stream:error></stream:stream>");
    conn_flush(c);
    xml_unref(err);
}

tern_xml *s2s_import_stanza(tern_xml *x)
{
    return tern_stanza_import(x, NS_SERVER);
}
