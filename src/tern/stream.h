/* tern/stream.h — the XML stream parser's rules for one element on its own, for transport
 * modules whose framing delivers whole elements (RFC 7395 WebSocket messages). */
#ifndef TERN_PUBLIC_STREAM_H
#define TERN_PUBLIC_STREAM_H

#include <stddef.h>

#include "tern/error.h"
#include "tern/xml.h"

/* One standalone element, as XMPP over WebSocket frames them (RFC 7395 §3.3.3: every message
 * is one complete element), read with a stream's limits and restricted-XML rules as if it
 * stood in a stream whose header declared `default_ns` (a trusted constant) as the default
 * namespace. Returns 0 with the element in *out (the caller owns it), 0 with *out NULL for
 * input of white space only, or -1 with the condition and a short reason: what a stream would
 * report, and not-well-formed when the input is not exactly one complete element. */
int stream_parse_element(const char *data, size_t len, const char *default_ns,
                         size_t max_size, unsigned max_depth, tern_xml **out,
                         tern_stream_error *cond, const char **text);

#endif
