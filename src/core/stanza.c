/* stanza.c — small stanza helpers of the module API: text children, XEP-0203 delay stamps,
 * and parsing a stored stanza back into a tree. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/stream.h"
#include "tern/module.h"

tern_xml *tern_xml_add_text_child(tern_xml *parent, const char *name, const char *xmlns,
                                  const char *text)
{
    tern_xml *child = xml_add_child(parent, name, xmlns);
    xml_add_text(child, text, strlen(text));
    return child;
}

const char *tern_message_type(const tern_xml *message)
{
    static const char *const known[] = { "chat", "groupchat", "headline", "error" };
    const char *t = xml_attr(message, "type");
    for (size_t i = 0; t && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(t, known[i]) == 0)
            return known[i];
    return "normal";
}

void tern_stanza_add_delay(tern_xml *stanza, const char *from, time_t when)
{
    struct tm tm;
    char stamp[32];
    gmtime_r(&when, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm); /* XEP-0082 DateTime */
    tern_xml *delay = xml_add_child(stanza, "delay", NS_DELAY);
    if (from)
        xml_set_attr(delay, "from", from);
    xml_set_attr(delay, "stamp", stamp);
}

/* Parsing goes through the stream parser, so stored data meets the same limits and
 * restrictions as data from the network. */
typedef struct parse_result {
    tern_xml *stanza;
    int count;
} parse_result;

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    (void)ctx;
    (void)header;
    (void)default_ns;
}

static void on_stanza(void *ctx, tern_xml *stanza)
{
    parse_result *r = ctx;
    if (r->count++ == 0)
        r->stanza = stanza;
    else
        xml_unref(stanza);
}

static void on_close(void *ctx) { (void)ctx; }

static void on_error(void *ctx, tern_stream_error cond, const char *text)
{
    (void)ctx;
    (void)cond;
    (void)text;
}

static const stream_parser_callbacks parse_callbacks = { on_open, on_stanza, on_close, on_error };

#define PARSE_HEADER "<s:stream xmlns='" NS_CLIENT "' xmlns:s='" NS_STREAMS "'>"
#define PARSE_MAX_DEPTH 64

tern_xml *tern_stanza_parse(const char *data, size_t len)
{
    parse_result r = { NULL, 0 };
    /* The limit covers the header as well as the stanza. */
    stream_parser *p = stream_parser_new(&parse_callbacks, &r, len + sizeof PARSE_HEADER,
                                         PARSE_MAX_DEPTH);
    bool ok = stream_parser_feed(p, PARSE_HEADER, strlen(PARSE_HEADER)) == 0 &&
              stream_parser_feed(p, data, len) == 0;
    stream_parser_free(p);
    if (!ok || r.count != 1) {
        if (r.stanza)
            xml_unref(r.stanza);
        return NULL;
    }
    return r.stanza;
}

tern_xml *tern_stanza_import(tern_xml *x, const char *stream_ns)
{
    /* Written with the stream's namespace in force, every element of the stanza's own
     * namespace comes out without an xmlns; read back, they land in jabber:client. Payload
     * namespaces are untouched. */
    tern_buf buf;
    buf_init(&buf);
    xml_serialize(x, stream_ns, &buf);
    xml_unref(x);
    tern_xml *converted = tern_stanza_parse(buf.data, buf.len);
    buf_free(&buf);
    return converted;
}
