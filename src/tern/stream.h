/* tern/stream.h — the XMPP stream parser, for transport modules: incremental, over a stream of
 * bytes (a BOSH request's <body/> framed like a stream), or one element on its own (an RFC 7395
 * WebSocket message). The rules and limits are those of every client stream: the size and
 * depth limits are checked before memory is spent, and DTDs, comments and processing
 * instructions are refused (RFC 6120 §11). */
#ifndef TERN_PUBLIC_STREAM_H
#define TERN_PUBLIC_STREAM_H

#include <stddef.h>

#include "tern/error.h"
#include "tern/xml.h"

typedef struct stream_parser stream_parser;

typedef struct stream_parser_callbacks {
    /* The stream header: an element named "stream" in NS_STREAMS with its attributes (to, from,
     * version, id, xml:lang as {TERN_XML_NS_XML}lang). `default_ns` is the default namespace
     * declared on the header ("jabber:client", "jabber:server", ...) or "" if none. The header
     * is borrowed: valid only during the call. */
    void (*on_open)(void *ctx, const tern_xml *header, const char *default_ns);
    /* A complete top-level element. Ownership passes to the callee (xml_unref when done). */
    void (*on_stanza)(void *ctx, tern_xml *stanza);
    /* </stream:stream> was received. */
    void (*on_close)(void *ctx);
    /* The stream is unusable; `text` is a short English reason for logs and <text/>. */
    void (*on_error)(void *ctx, tern_stream_error cond, const char *text);
} stream_parser_callbacks;

stream_parser *stream_parser_new(const stream_parser_callbacks *cb, void *ctx,
                                 size_t max_stanza_size, unsigned max_depth);
void stream_parser_free(stream_parser *p);
/* Feeds bytes. Callbacks run from inside this call; a callback may call stream_parser_reset()
 * (stream restart after STARTTLS/SASL: the rest of the current chunk is then discarded, which is
 * what RFC 6120 requires since nothing may follow <proceed/> or <success/> before the restart) or
 * stream_parser_free() is NOT allowed from a callback. Returns 0, or -1 once an error was
 * reported (on_error is called exactly once; later feeds return -1 without calling anything). */
int stream_parser_feed(stream_parser *p, const char *data, size_t len);
/* Forget all state and expect a new stream header (stream restart). */
void stream_parser_reset(stream_parser *p);
/* For a document framed like a stream (XEP-0206's <body/> of a BOSH request): expect the root
 * {root_ns}root_name instead of <stream:stream/>, reported through on_open (default_ns is what
 * the root declared) and on_close. Elements below it in root_ns itself are reported in
 * content_ns instead: XEP-0206 §3 lets clients leave <message/> and friends in the body's
 * namespace, "assuming the content of jabber:client is a subset of" it. Kept across resets.
 * The strings must outlive the parser. */
void stream_parser_set_root(stream_parser *p, const char *root_ns, const char *root_name,
                            const char *content_ns);

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
