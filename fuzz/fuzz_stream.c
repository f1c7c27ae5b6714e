/* fuzz_stream.c — libFuzzer target for the stream parser and the serializer.
 *
 * The first input byte picks where the rest is split into two feeds, so the fuzzer also
 * explores chunk boundaries. Every stanza the parser emits is serialized, parsed again on a
 * second stream and serialized again: the two serializations must be equal (the serializer
 * writes only well-formed XML that means the same tree), otherwise we abort so the fuzzer
 * reports the input. A stanza named <proceed/> restarts the stream from its callback. The
 * input also goes through stream_parse_element() (one WebSocket message), with the same check.
 *
 * Build: clang -g -fsanitize=fuzzer,address,undefined -Isrc fuzz/fuzz_stream.c src/core/stream.c \
 *        src/core/xml.c src/core/error.c $(pkg-config --cflags --libs expat) -o fuzz_stream */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"
#include "tern/error.h"
#include "tern/ns.h"
#include "tern/xml.h"

#define FUZZ_MAX_STANZA 65536
#define FUZZ_MAX_DEPTH  32

typedef struct fuzz_ctx {
    stream_parser *p;
    int errors;
    tern_xml *reparsed;
} fuzz_ctx;

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    (void)ctx;
    (void)default_ns;
    char *s = xml_to_string(header, NS_STREAMS);
    free(s);
}

static void on_close(void *ctx) { (void)ctx; }

static void on_error(void *ctx, tern_stream_error cond, const char *text)
{
    (void)cond;
    (void)text;
    fuzz_ctx *f = ctx;
    if (++f->errors > 1)
        abort(); /* on_error must be called at most once per stream */
}

/* The second parser only collects what it reads back. */
static void reparse_stanza(void *ctx, tern_xml *stanza)
{
    fuzz_ctx *f = ctx;
    if (f->reparsed)
        abort(); /* one serialized stanza must read back as exactly one stanza */
    f->reparsed = stanza;
}

static void check_round_trip(const tern_xml *stanza)
{
    /* No default namespace on the checking stream: the serialization declares everything. */
    static const char head[] = "<s:stream xmlns:s='http://etherx.jabber.org/streams'>";
    static const stream_parser_callbacks cb = { NULL, reparse_stanza, on_close, on_error };
    char *first = xml_to_string(stanza, NULL);
    fuzz_ctx f = { NULL, 0, NULL };
    /* Escaping can make a stanza several times larger than its input; depth is unchanged. */
    stream_parser *p = stream_parser_new(&cb, &f, 16 * strlen(first) + 1024, FUZZ_MAX_DEPTH);
    if (stream_parser_feed(p, head, sizeof head - 1) != 0 ||
        stream_parser_feed(p, first, strlen(first)) != 0 || !f.reparsed) {
        fprintf(stderr, "serialized stanza does not parse back: %s\n", first);
        abort();
    }
    char *second = xml_to_string(f.reparsed, NULL);
    if (strcmp(first, second) != 0) {
        fprintf(stderr, "round trip changed the stanza:\n%s\n%s\n", first, second);
        abort();
    }
    free(second);
    xml_unref(f.reparsed);
    stream_parser_free(p);
    free(first);
}

static void on_stanza(void *ctx, tern_xml *stanza)
{
    fuzz_ctx *f = ctx;
    check_round_trip(stanza);
    tern_xml *reply = stanza_error_reply(stanza, STANZA_ERR_SERVICE_UNAVAILABLE, "fuzz");
    if (reply) {
        char *s = xml_to_string(reply, NS_CLIENT);
        free(s);
        xml_unref(reply);
    }
    if (strcmp(xml_name(stanza), "proceed") == 0)
        stream_parser_reset(f->p);
    xml_unref(stanza);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const stream_parser_callbacks cb = { on_open, on_stanza, on_close, on_error };
    fuzz_ctx f = { NULL, 0, NULL };
    f.p = stream_parser_new(&cb, &f, FUZZ_MAX_STANZA, FUZZ_MAX_DEPTH);
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    size_t split = len * data[0] / 255;
    if (stream_parser_feed(f.p, rest, split) == 0)
        stream_parser_feed(f.p, rest + split, len - split);
    stream_parser_free(f.p);
    /* The same bytes as one WebSocket message (RFC 7395): one element or an error, never both,
     * and an element must survive the round trip too. */
    tern_xml *element = NULL;
    tern_stream_error cond;
    const char *text = NULL;
    int rc = stream_parse_element(rest, len, NS_CLIENT, FUZZ_MAX_STANZA, FUZZ_MAX_DEPTH,
                                  &element, &cond, &text);
    if ((rc == 0) == (text != NULL) || (rc != 0 && element))
        abort();
    if (element) {
        check_round_trip(element);
        xml_unref(element);
    }
    return 0;
}
