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

/* How often the parser may give its expat parser back between stanzas (see stream.c): up to
 * `burst` times at once, then once per `refill_ms` milliseconds (0: every time it can, which
 * tests use); burst 0: never. The default suits a client or server stream. */
void stream_parser_set_release(stream_parser *p, unsigned burst, unsigned refill_ms);
/* Whether the expat parser is given back right now (for tests). */
bool stream_parser_released(const stream_parser *p);
#endif
