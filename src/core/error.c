/* error.c — RFC 6120 stream errors (§4.9) and stanza errors (§8.3), produced in one place so
 * every part of tern names conditions and picks error types the same way. */
#include "tern/error.h"

#include <stddef.h>
#include <string.h>

#include "tern/ns.h"

/* RFC 6120 §4.9.3: the defined stream error conditions. */
static const char *const stream_error_names[] = {
    [STREAM_ERR_BAD_FORMAT] = "bad-format",
    [STREAM_ERR_BAD_NAMESPACE_PREFIX] = "bad-namespace-prefix",
    [STREAM_ERR_CONFLICT] = "conflict",
    [STREAM_ERR_CONNECTION_TIMEOUT] = "connection-timeout",
    [STREAM_ERR_HOST_GONE] = "host-gone",
    [STREAM_ERR_HOST_UNKNOWN] = "host-unknown",
    [STREAM_ERR_IMPROPER_ADDRESSING] = "improper-addressing",
    [STREAM_ERR_INTERNAL_SERVER_ERROR] = "internal-server-error",
    [STREAM_ERR_INVALID_FROM] = "invalid-from",
    [STREAM_ERR_INVALID_NAMESPACE] = "invalid-namespace",
    [STREAM_ERR_INVALID_XML] = "invalid-xml",
    [STREAM_ERR_NOT_AUTHORIZED] = "not-authorized",
    [STREAM_ERR_NOT_WELL_FORMED] = "not-well-formed",
    [STREAM_ERR_POLICY_VIOLATION] = "policy-violation",
    [STREAM_ERR_REMOTE_CONNECTION_FAILED] = "remote-connection-failed",
    [STREAM_ERR_RESET] = "reset",
    [STREAM_ERR_RESOURCE_CONSTRAINT] = "resource-constraint",
    [STREAM_ERR_RESTRICTED_XML] = "restricted-xml",
    [STREAM_ERR_SEE_OTHER_HOST] = "see-other-host",
    [STREAM_ERR_SYSTEM_SHUTDOWN] = "system-shutdown",
    [STREAM_ERR_UNDEFINED_CONDITION] = "undefined-condition",
    [STREAM_ERR_UNSUPPORTED_ENCODING] = "unsupported-encoding",
    [STREAM_ERR_UNSUPPORTED_FEATURE] = "unsupported-feature",
    [STREAM_ERR_UNSUPPORTED_STANZA_TYPE] = "unsupported-stanza-type",
    [STREAM_ERR_UNSUPPORTED_VERSION] = "unsupported-version",
};

/* RFC 6120 §8.3.3: each defined stanza error condition with the error type its definition (and
 * example) gives, used when the caller has no better reason to choose another (§8.3.2). */
static const struct {
    const char *name;
    const char *type;
} stanza_errors[] = {
    [STANZA_ERR_BAD_REQUEST] = { "bad-request", "modify" },                   /* §8.3.3.1 */
    [STANZA_ERR_CONFLICT] = { "conflict", "cancel" },                         /* §8.3.3.2 */
    [STANZA_ERR_FEATURE_NOT_IMPLEMENTED] = { "feature-not-implemented", "cancel" },
    [STANZA_ERR_FORBIDDEN] = { "forbidden", "auth" },                         /* §8.3.3.4 */
    [STANZA_ERR_GONE] = { "gone", "cancel" },                                 /* §8.3.3.5 */
    [STANZA_ERR_INTERNAL_SERVER_ERROR] = { "internal-server-error", "cancel" },
    [STANZA_ERR_ITEM_NOT_FOUND] = { "item-not-found", "cancel" },             /* §8.3.3.7 */
    [STANZA_ERR_JID_MALFORMED] = { "jid-malformed", "modify" },               /* §8.3.3.8 */
    [STANZA_ERR_NOT_ACCEPTABLE] = { "not-acceptable", "modify" },             /* §8.3.3.9 */
    [STANZA_ERR_NOT_ALLOWED] = { "not-allowed", "cancel" },                   /* §8.3.3.10 */
    [STANZA_ERR_NOT_AUTHORIZED] = { "not-authorized", "auth" },               /* §8.3.3.11 */
    [STANZA_ERR_POLICY_VIOLATION] = { "policy-violation", "modify" },         /* §8.3.3.12 */
    [STANZA_ERR_RECIPIENT_UNAVAILABLE] = { "recipient-unavailable", "wait" }, /* §8.3.3.13 */
    [STANZA_ERR_REDIRECT] = { "redirect", "modify" },                         /* §8.3.3.14 */
    [STANZA_ERR_REGISTRATION_REQUIRED] = { "registration-required", "auth" }, /* §8.3.3.15 */
    [STANZA_ERR_REMOTE_SERVER_NOT_FOUND] = { "remote-server-not-found", "cancel" },
    [STANZA_ERR_REMOTE_SERVER_TIMEOUT] = { "remote-server-timeout", "wait" }, /* §8.3.3.17 */
    [STANZA_ERR_RESOURCE_CONSTRAINT] = { "resource-constraint", "wait" },     /* §8.3.3.18 */
    [STANZA_ERR_SERVICE_UNAVAILABLE] = { "service-unavailable", "cancel" },   /* §8.3.3.19 */
    [STANZA_ERR_SUBSCRIPTION_REQUIRED] = { "subscription-required", "auth" }, /* §8.3.3.20 */
    [STANZA_ERR_UNDEFINED_CONDITION] = { "undefined-condition", "modify" },   /* §8.3.3.21 */
    [STANZA_ERR_UNEXPECTED_REQUEST] = { "unexpected-request", "wait" },       /* §8.3.3.22 */
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *stream_error_name(tern_stream_error cond)
{
    if ((size_t)cond >= COUNT(stream_error_names) || !stream_error_names[cond])
        return "undefined-condition";
    return stream_error_names[cond];
}

const char *stanza_error_name(tern_stanza_error cond)
{
    if ((size_t)cond >= COUNT(stanza_errors) || !stanza_errors[cond].name)
        return "undefined-condition";
    return stanza_errors[cond].name;
}

const char *stanza_error_type(tern_stanza_error cond)
{
    if ((size_t)cond >= COUNT(stanza_errors) || !stanza_errors[cond].type)
        return "modify";
    return stanza_errors[cond].type;
}

/* <text xmlns=ns xml:lang='en'>text</text>: RFC 6120 §4.9.2 and §8.3.2 both use this shape. */
static void add_error_text(tern_xml *parent, const char *ns, const char *text)
{
    if (!text || !*text)
        return;
    tern_xml *t = xml_add_child(parent, "text", ns);
    xml_set_attr_ns(t, TERN_XML_NS_XML, "lang", "en");
    xml_add_text(t, text, strlen(text));
}

/* RFC 6120 §4.9.2: <stream:error><COND xmlns=streams-errors/><text/>?</stream:error>. The
 * serializer writes it as <error xmlns='http://etherx.jabber.org/streams'>, which names the same
 * element as the stream:-prefixed form. */
tern_xml *stream_error_new(tern_stream_error cond, const char *text)
{
    tern_xml *err = xml_new("error", NS_STREAMS);
    xml_add_child(err, stream_error_name(cond), NS_STREAM_ERRORS);
    add_error_text(err, NS_STREAM_ERRORS, text);
    return err;
}

/* RFC 6120 §8.3.1: an error stanza keeps the kind and id of what it answers, swaps the
 * addresses, has type='error', and is never itself answered with an error (§8.3.1): that is
 * how error loops between two entities are avoided. */
tern_xml *stanza_error_reply(const tern_xml *stanza, tern_stanza_error cond, const char *text)
{
    const char *type = xml_attr(stanza, "type");
    if (type && strcmp(type, "error") == 0)
        return NULL;

    tern_xml *reply = xml_new(xml_name(stanza), xml_ns(stanza));
    const char *id = xml_attr(stanza, "id");
    const char *from = xml_attr(stanza, "from");
    const char *to = xml_attr(stanza, "to");
    const char *lang = xml_attr_ns(stanza, TERN_XML_NS_XML, "lang");
    if (from)
        xml_set_attr(reply, "to", from);
    if (to)
        xml_set_attr(reply, "from", to);
    xml_set_attr(reply, "type", "error");
    if (id)
        xml_set_attr(reply, "id", id);
    if (lang)
        xml_set_attr_ns(reply, TERN_XML_NS_XML, "lang", lang);

    /* The original payload helps the sender see what failed (§8.3.1 lets the reply include
     * it); an iq error carries none, since the request may be large and the id already
     * identifies it. */
    if (strcmp(xml_name(stanza), "iq") != 0)
        for (const tern_xml *c = xml_first_element(stanza); c; c = xml_next_element(c))
            xml_add_copy(reply, c);

    tern_xml *err = xml_add_child(reply, "error", NULL);
    xml_set_attr(err, "type", stanza_error_type(cond));
    xml_add_child(err, stanza_error_name(cond), NS_STANZA_ERRORS);
    add_error_text(err, NS_STANZA_ERRORS, text);
    return reply;
}
