/* tern/error.h — RFC 6120 stream and stanza error conditions, produced in one place. */
#ifndef TERN_ERROR_H
#define TERN_ERROR_H

#include "tern/xml.h"

/* RFC 6120 §4.9.3 */
typedef enum tern_stream_error {
    STREAM_ERR_BAD_FORMAT,
    STREAM_ERR_BAD_NAMESPACE_PREFIX,
    STREAM_ERR_CONFLICT,
    STREAM_ERR_CONNECTION_TIMEOUT,
    STREAM_ERR_HOST_GONE,
    STREAM_ERR_HOST_UNKNOWN,
    STREAM_ERR_IMPROPER_ADDRESSING,
    STREAM_ERR_INTERNAL_SERVER_ERROR,
    STREAM_ERR_INVALID_FROM,
    STREAM_ERR_INVALID_NAMESPACE,
    STREAM_ERR_INVALID_XML,
    STREAM_ERR_NOT_AUTHORIZED,
    STREAM_ERR_NOT_WELL_FORMED,
    STREAM_ERR_POLICY_VIOLATION,
    STREAM_ERR_REMOTE_CONNECTION_FAILED,
    STREAM_ERR_RESET,
    STREAM_ERR_RESOURCE_CONSTRAINT,
    STREAM_ERR_RESTRICTED_XML,
    STREAM_ERR_SEE_OTHER_HOST,
    STREAM_ERR_SYSTEM_SHUTDOWN,
    STREAM_ERR_UNDEFINED_CONDITION,
    STREAM_ERR_UNSUPPORTED_ENCODING,
    STREAM_ERR_UNSUPPORTED_FEATURE,
    STREAM_ERR_UNSUPPORTED_STANZA_TYPE,
    STREAM_ERR_UNSUPPORTED_VERSION,
} tern_stream_error;

/* RFC 6120 §8.3.3 */
typedef enum tern_stanza_error {
    STANZA_ERR_BAD_REQUEST,
    STANZA_ERR_CONFLICT,
    STANZA_ERR_FEATURE_NOT_IMPLEMENTED,
    STANZA_ERR_FORBIDDEN,
    STANZA_ERR_GONE,
    STANZA_ERR_INTERNAL_SERVER_ERROR,
    STANZA_ERR_ITEM_NOT_FOUND,
    STANZA_ERR_JID_MALFORMED,
    STANZA_ERR_NOT_ACCEPTABLE,
    STANZA_ERR_NOT_ALLOWED,
    STANZA_ERR_NOT_AUTHORIZED,
    STANZA_ERR_POLICY_VIOLATION,
    STANZA_ERR_RECIPIENT_UNAVAILABLE,
    STANZA_ERR_REDIRECT,
    STANZA_ERR_REGISTRATION_REQUIRED,
    STANZA_ERR_REMOTE_SERVER_NOT_FOUND,
    STANZA_ERR_REMOTE_SERVER_TIMEOUT,
    STANZA_ERR_RESOURCE_CONSTRAINT,
    STANZA_ERR_SERVICE_UNAVAILABLE,
    STANZA_ERR_SUBSCRIPTION_REQUIRED,
    STANZA_ERR_UNDEFINED_CONDITION,
    STANZA_ERR_UNEXPECTED_REQUEST,
} tern_stanza_error;

const char *stream_error_name(tern_stream_error cond);   /* "not-well-formed" */
const char *stanza_error_name(tern_stanza_error cond);   /* "service-unavailable" */
const char *stanza_error_type(tern_stanza_error cond);   /* "cancel", "modify", "auth", "wait" */

/* <stream:error> element (namespace http://etherx.jabber.org/streams) with the condition and an
 * optional English <text/>. */
tern_xml *stream_error_new(tern_stream_error cond, const char *text);

/* The error reply to `stanza` (RFC 6120 §8.3.1): same kind and id, from/to swapped, type="error",
 * the original payload kept for message/presence (not for iq), plus <error by? type=...>.
 * Returns NULL when `stanza` is itself an error (errors are never answered). */
tern_xml *stanza_error_reply(const tern_xml *stanza, tern_stanza_error cond, const char *text);

#endif
