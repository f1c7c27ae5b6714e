/* stream.h — incremental XMPP stream parser (expat) that emits complete stanzas as trees.
 *
 * One parser per connection. Bytes are fed as they arrive, in chunks of any size; the parser
 * reports the stream header, each complete top-level element (a "stanza", which also covers
 * <starttls/>, <auth/>, ... at depth 1), the closing </stream:stream>, or one error, after which
 * it accepts nothing more. Limits are enforced before memory is spent: a top-level element larger
 * than max_stanza_size (counted in bytes of input, including an element that never closes) is a
 * policy-violation; nesting deeper than max_depth is a policy-violation. Restricted XML (RFC 6120
 * §11.1): a DOCTYPE, entity declaration, comment or processing instruction is restricted-xml;
 * malformed XML or bad UTF-8 is not-well-formed; a declared encoding other than UTF-8 is
 * unsupported-encoding; a root element that is not {http://etherx.jabber.org/streams}stream is
 * invalid-namespace; non-whitespace text between stanzas is bad-format. Whitespace between
 * stanzas (keepalives) is ignored.
 *
 * Memory: between stanzas, when a feed has left nothing half-read, the parser gives its expat
 * parser back and makes a new one when the next bytes come (stream.c says how); callers see no
 * difference, except that an idle stream costs a few hundred bytes instead of 10+ KiB. */
#ifndef TERN_STREAM_H
#define TERN_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "tern/error.h"
#include "tern/stream.h"
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
/* How often the parser may give its expat parser back between stanzas (see stream.c): up to
 * `burst` times at once, then once per `refill_ms` milliseconds (0: every time it can, which
 * tests use); burst 0: never. The default suits a client or server stream. */
void stream_parser_set_release(stream_parser *p, unsigned burst, unsigned refill_ms);
/* Whether the expat parser is given back right now (for tests). */
bool stream_parser_released(const stream_parser *p);
/* For a document framed like a stream (XEP-0206's <body/> of a BOSH request): expect the root
 * {root_ns}root_name instead of <stream:stream/>, reported through on_open (default_ns is what
 * the root declared) and on_close. Elements below it in root_ns itself are reported in
 * content_ns instead: XEP-0206 §3 lets clients leave <message/> and friends in the body's
 * namespace, "assuming the content of jabber:client is a subset of" it. Kept across resets.
 * The strings must outlive the parser. */
void stream_parser_set_root(stream_parser *p, const char *root_ns, const char *root_name,
                            const char *content_ns);

#endif
