/* test_stream.c — the incremental stream parser: the same events however the input is split,
 * each restricted-XML and limit rule with its exact RFC 6120 condition, and stream restarts. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"
#include "tern/error.h"
#include "tern/ns.h"
#include "tern/xml.h"

/* ---- recorder ------------------------------------------------------------------------------ */

/* The "release" test cases run every test again with the parser giving its expat parser back
 * at every stanza boundary (see stream.c): nothing a caller sees may change. */
static bool release_always;

static void release_always_on(void) { release_always = true; }
static void release_always_off(void) { release_always = false; }

static stream_parser *parser_new(const stream_parser_callbacks *cb, void *ctx, size_t max_size,
                                 unsigned max_depth)
{
    stream_parser *p = stream_parser_new(cb, ctx, max_size, max_depth);
    if (release_always)
        stream_parser_set_release(p, 1, 0);
    return p;
}

/* Every event becomes one line of `log`, stanzas serialized, so two runs compare as strings. */
typedef struct rec {
    tern_buf log;
    stream_parser *p;
    int opens, stanzas, closes, errors;
    tern_stream_error err;
    const char *reset_on; /* reset the parser from on_stanza when a stanza has this name */
    unsigned long long fed; /* bytes fed so far (maintained by feed helpers) */
    unsigned long long fed_at_error;
} rec;

static void on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    rec *r = ctx;
    r->opens++;
    char *s = xml_to_string(header, NS_STREAMS);
    buf_printf(&r->log, "open [%s] %s\n", default_ns, s);
    free(s);
}

static void on_stanza(void *ctx, tern_xml *stanza)
{
    rec *r = ctx;
    r->stanzas++;
    char *s = xml_to_string(stanza, NS_CLIENT);
    buf_printf(&r->log, "stanza %s\n", s);
    free(s);
    if (r->reset_on && strcmp(xml_name(stanza), r->reset_on) == 0)
        stream_parser_reset(r->p);
    xml_unref(stanza);
}

static void on_close(void *ctx)
{
    rec *r = ctx;
    r->closes++;
    buf_append_str(&r->log, "close\n");
}

static void on_error(void *ctx, tern_stream_error cond, const char *text)
{
    rec *r = ctx;
    ck_assert_ptr_nonnull(text);
    r->errors++;
    r->err = cond;
    r->fed_at_error = r->fed;
    buf_printf(&r->log, "error %s\n", stream_error_name(cond));
}

static const stream_parser_callbacks callbacks = { on_open, on_stanza, on_close, on_error };

static void rec_init(rec *r, size_t max_size, unsigned max_depth)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->log);
    r->p = parser_new(&callbacks, r, max_size, max_depth);
}

static void rec_free(rec *r)
{
    stream_parser_free(r->p);
    buf_free(&r->log);
}

static int feed(rec *r, const char *data, size_t len)
{
    r->fed += len;
    return stream_parser_feed(r->p, data, len);
}

static int feed_str(rec *r, const char *s) { return feed(r, s, strlen(s)); }

/* Feeds in chunks of `chunk` bytes; stops at the first -1. */
static int feed_chunked(rec *r, const char *data, size_t len, size_t chunk)
{
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (feed(r, data + off, n) < 0)
            return -1;
    }
    return 0;
}

/* The whole event log of one parse of `data` split at the given position (len: no split). */
static char *run_split(const char *data, size_t len, size_t split, size_t max, unsigned depth)
{
    rec r;
    rec_init(&r, max, depth);
    if (split < len) {
        if (feed(&r, data, split) == 0)
            feed(&r, data + split, len - split);
    } else {
        feed(&r, data, len);
    }
    char *out = strdup(buf_cstr(&r.log));
    rec_free(&r);
    return out;
}

static char *run_bytewise(const char *data, size_t len, size_t max, unsigned depth)
{
    rec r;
    rec_init(&r, max, depth);
    feed_chunked(&r, data, len, 1);
    char *out = strdup(buf_cstr(&r.log));
    rec_free(&r);
    return out;
}

/* Same log for one feed, every two-chunk split and byte-by-byte feeding. */
static void assert_split_invariant(const char *data, const char *expected, size_t max,
                                   unsigned depth)
{
    size_t len = strlen(data);
    char *whole = run_split(data, len, len, max, depth);
    ck_assert_str_eq(whole, expected);
    for (size_t i = 0; i <= len; i++) {
        char *s = run_split(data, len, i, max, depth);
        ck_assert_msg(strcmp(s, expected) == 0, "split at %zu gave:\n%s", i, s);
        free(s);
    }
    char *b = run_bytewise(data, len, max, depth);
    ck_assert_str_eq(b, expected);
    free(b);
    free(whole);
}

/* Runs `data` as one feed and returns the single error condition it must produce. */
static tern_stream_error expect_error(const char *data, size_t len, size_t max, unsigned depth)
{
    rec r;
    rec_init(&r, max, depth);
    int rc = feed(&r, data, len);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(r.errors, 1);
    /* After an error nothing more is accepted or reported. */
    ck_assert_int_eq(feed_str(&r, "<presence/>"), -1);
    ck_assert_int_eq(r.errors, 1);
    tern_stream_error e = r.err;
    rec_free(&r);
    return e;
}

#define HEADER                                                                                     \
    "<stream:stream to='example.com' xmlns='jabber:client' "                                       \
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

/* Error conditions must not depend on how the input is split either. */
static void assert_error_everywhere(const char *data, tern_stream_error want)
{
    size_t len = strlen(data);
    ck_assert_int_eq(expect_error(data, len, 4096, 16), want);
    for (size_t i = 0; i <= len; i++) {
        char *s = run_split(data, len, i, 4096, 16);
        ck_assert_msg(strstr(s, stream_error_name(want)) != NULL, "split %zu: %s", i, s);
        free(s);
    }
    char *b = run_bytewise(data, len, 4096, 16);
    ck_assert_msg(strstr(b, stream_error_name(want)) != NULL, "bytewise: %s", b);
    free(b);
}

/* ---- a realistic client stream ------------------------------------------------------------- */

static const char client_stream[] =
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    "<stream:stream to='example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>"
    " \n \r\n\t"
    "<message to='juliet@example.com/balcony' id='m1' type='chat' xml:lang='fr'>\n"
    "  <body>Bonjour &amp; &lt;salut&gt; &#233;t&#xe9; \xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80</body>\n"
    "  <body xml:lang='en'>Hello &quot;there&quot; it&apos;s ]]&gt; <![CDATA[<b>&x</b>]]></body>\n"
    "  <x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value></field>"
    "<y xmlns='jabber:client'/></x>"
    "<ext:thing xmlns:ext='urn:example:ext' ext:attr='v' plain=\"q'uote\"/>"
    "</message>"
    " "
    "<iq type='get' id='i1'><query xmlns='jabber:iq:roster'/></iq>\n"
    "<presence><show>away</show><status>\t  spaced\t </status>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>"
    "<cli:message xmlns:cli='jabber:client' to='a@b'><cli:body>prefixed</cli:body></cli:message>"
    "\n\n"
    "</stream:stream>";

static const char client_expected[] =
    "open [jabber:client] <stream to='example.com' version='1.0' xml:lang='en'/>\n"
    "stanza <message to='juliet@example.com/balcony' id='m1' type='chat' xml:lang='fr'>\n"
    "  <body>Bonjour &amp; &lt;salut&gt; \xc3\xa9t\xc3\xa9 \xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80</body>\n"
    "  <body xml:lang='en'>Hello &quot;there&quot; it&apos;s ]]&gt; &lt;b&gt;&amp;x&lt;/b&gt;</body>\n"
    "  <x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value></field>"
    "<y xmlns='jabber:client'/></x>"
    "<thing xmlns='urn:example:ext' xmlns:ns0='urn:example:ext' ns0:attr='v' plain='q&apos;uote'/>"
    "</message>\n"
    "stanza <iq type='get' id='i1'><query xmlns='jabber:iq:roster'/></iq>\n"
    "stanza <presence><show>away</show><status>\t  spaced\t </status>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>\n"
    "stanza <message to='a@b'><body>prefixed</body></message>\n"
    "close\n";

START_TEST(test_client_stream_any_split)
{
    assert_split_invariant(client_stream, client_expected, 262144, 32);
}
END_TEST

START_TEST(test_stanza_reported_at_its_last_byte)
{
    /* A server answers a stanza as soon as it is complete: the event must come with the feed
     * that carries its last byte, never wait for more input (expat's reparse deferral would
     * hold back a long token fed in small pieces). */
    tern_buf b;
    buf_init(&b);
    buf_append_str(&b, "<message to='a@example.com' id='");
    for (int i = 0; i < 5000; i++)
        buf_append(&b, "0123456789", 10);
    buf_append_str(&b, "'><body>");
    for (int i = 0; i < 5000; i++)
        buf_append(&b, "abcdefghij", 10);
    buf_append_str(&b, "</body></message>");
    for (size_t chunk = 1; chunk <= 4096; chunk *= 4) {
        rec r;
        rec_init(&r, 262144, 16);
        ck_assert_int_eq(feed_str(&r, HEADER), 0);
        ck_assert_int_eq(r.opens, 1);
        for (size_t off = 0; off < b.len; off += chunk) {
            size_t n = b.len - off < chunk ? b.len - off : chunk;
            ck_assert_int_eq(r.stanzas, 0);
            ck_assert_int_eq(feed(&r, b.data + off, n), 0);
        }
        ck_assert_int_eq(r.stanzas, 1);
        rec_free(&r);
    }
    buf_free(&b);
}
END_TEST

/* What a handler sees: namespaces, xml:lang, text. */
typedef struct grab {
    tern_xml *stanzas[8];
    int n;
    tern_xml *header;
    char default_ns[64];
} grab;

static void grab_open(void *ctx, const tern_xml *h, const char *ns)
{
    grab *g = ctx;
    g->header = xml_copy(h); /* the header is borrowed: keep a copy */
    snprintf(g->default_ns, sizeof g->default_ns, "%s", ns);
}
static void grab_stanza(void *ctx, tern_xml *s)
{
    grab *g = ctx;
    ck_assert_int_lt(g->n, 8);
    g->stanzas[g->n++] = s;
}
static void grab_close(void *ctx) { (void)ctx; }
static void grab_error(void *ctx, tern_stream_error c, const char *t)
{
    (void)ctx;
    ck_abort_msg("unexpected error %s: %s", stream_error_name(c), t);
}

START_TEST(test_tree_contents)
{
    static const stream_parser_callbacks cb = { grab_open, grab_stanza, grab_close, grab_error };
    grab g = { .n = 0 };
    stream_parser *p = parser_new(&cb, &g, 262144, 32);
    ck_assert_int_eq(stream_parser_feed(p, client_stream, sizeof client_stream - 1), 0);
    stream_parser_free(p);

    ck_assert(xml_is(g.header, "stream", NS_STREAMS));
    ck_assert_str_eq(g.default_ns, "jabber:client");
    ck_assert_str_eq(xml_attr(g.header, "to"), "example.com");
    ck_assert_str_eq(xml_attr(g.header, "version"), "1.0");
    ck_assert_str_eq(xml_attr_ns(g.header, TERN_XML_NS_XML, "lang"), "en");
    xml_unref(g.header);

    ck_assert_int_eq(g.n, 4);
    tern_xml *m = g.stanzas[0];
    ck_assert(xml_is(m, "message", NS_CLIENT));
    ck_assert_str_eq(xml_attr_ns(m, TERN_XML_NS_XML, "lang"), "fr");
    ck_assert_ptr_null(xml_attr(m, "lang"));
    tern_xml *b1 = xml_child(m, "body", NS_CLIENT);
    ck_assert_str_eq(xml_text(b1), "Bonjour & <salut> \xc3\xa9t\xc3\xa9 \xc3\xa9 \xe2\x98\x83 "
                                   "\xf0\x9f\x98\x80");
    tern_xml *b2 = xml_next_element(b1);
    ck_assert_str_eq(xml_attr_ns(b2, TERN_XML_NS_XML, "lang"), "en");
    ck_assert_str_eq(xml_text(b2), "Hello \"there\" it's ]]> <b>&x</b>");
    tern_xml *x = xml_child(m, "x", "jabber:x:data");
    ck_assert_ptr_nonnull(x);
    ck_assert(xml_is(xml_child(x, "y", NULL), "y", NS_CLIENT));
    ck_assert_str_eq(xml_child_text(xml_child(x, "field", "jabber:x:data"), "value", NULL), "1");
    tern_xml *thing = xml_child(m, "thing", "urn:example:ext");
    ck_assert_str_eq(xml_attr_ns(thing, "urn:example:ext", "attr"), "v");
    ck_assert_ptr_null(xml_attr(thing, "attr"));
    ck_assert_str_eq(xml_attr(thing, "plain"), "q'uote");
    /* Whitespace inside a stanza is content and is kept. */
    ck_assert_str_eq(xml_text(m), "\n  \n  \n  ");

    ck_assert(xml_is(g.stanzas[1], "iq", NS_CLIENT));
    ck_assert(xml_is(xml_child(g.stanzas[1], "query", NULL), "query", "jabber:iq:roster"));
    ck_assert_str_eq(xml_child_text(g.stanzas[2], "status", NULL), "\t  spaced\t ");
    /* <cli:message xmlns:cli='jabber:client'> is the same element as <message/>. */
    ck_assert(xml_is(g.stanzas[3], "message", NS_CLIENT));
    ck_assert_str_eq(xml_child_text(g.stanzas[3], "body", NS_CLIENT), "prefixed");
    for (int i = 0; i < g.n; i++)
        xml_unref(g.stanzas[i]);
}
END_TEST

START_TEST(test_header_namespaces)
{
    rec r;
    rec_init(&r, 4096, 16);
    feed_str(&r, "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/"
                 "streams' xmlns:db='jabber:server:dialback' from='a.example' to='b.example' "
                 "version='1.0'>");
    ck_assert_str_eq(buf_cstr(&r.log),
                     "open [jabber:server] <stream from='a.example' to='b.example' "
                     "version='1.0'/>\n");
    rec_free(&r);

    /* No default namespace at all; stanzas are then in no namespace. */
    rec_init(&r, 4096, 16);
    feed_str(&r, "<s:stream xmlns:s='http://etherx.jabber.org/streams'><a/>");
    ck_assert_str_eq(buf_cstr(&r.log), "open [] <stream/>\nstanza <a xmlns=''/>\n");
    ck_assert_int_eq(r.errors, 0);
    rec_free(&r);
}
END_TEST

START_TEST(test_keepalives_unbounded)
{
    /* Whitespace keepalives are not a region that can overflow: 100 000 of them with a 64-byte
     * limit, fed in one go and in small pieces. */
    size_t n = 100000;
    char *ws = malloc(n);
    for (size_t i = 0; i < n; i++)
        ws[i] = " \n\t\r"[i % 4];
    rec r;
    rec_init(&r, 64, 16);
    ck_assert_int_eq(feed_str(&r, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
                                  " xmlns='jabber:client'>"), -1);
    ck_assert_int_eq(r.err, STREAM_ERR_POLICY_VIOLATION); /* the header alone is > 64 bytes */
    rec_free(&r);

    rec_init(&r, 128, 16);
    ck_assert_int_eq(feed_str(&r, HEADER), 0);
    ck_assert_int_eq(feed(&r, ws, n), 0);
    ck_assert_int_eq(feed_chunked(&r, ws, n, 7), 0);
    ck_assert_int_eq(feed_str(&r, "<presence/>"), 0);
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(r.errors, 0);
    rec_free(&r);
    free(ws);
}
END_TEST

/* ---- restricted XML (RFC 6120 §11.1) and other errors -------------------------------------- */

START_TEST(test_restricted_xml)
{
    assert_error_everywhere("<?xml version='1.0'?><!DOCTYPE stream:stream>" HEADER,
                            STREAM_ERR_RESTRICTED_XML);
    assert_error_everywhere("<!DOCTYPE x SYSTEM 'http://example.com/x.dtd'>" HEADER,
                            STREAM_ERR_RESTRICTED_XML);
    assert_error_everywhere("<!-- hello -->" HEADER, STREAM_ERR_RESTRICTED_XML);
    assert_error_everywhere(HEADER "<!-- between -->", STREAM_ERR_RESTRICTED_XML);
    assert_error_everywhere(HEADER "<message><!-- inside --></message>",
                            STREAM_ERR_RESTRICTED_XML);
    assert_error_everywhere("<?xml-stylesheet href='a'?>" HEADER, STREAM_ERR_RESTRICTED_XML);
    assert_error_everywhere(HEADER "<message><?pi data?></message>", STREAM_ERR_RESTRICTED_XML);
    assert_error_everywhere(HEADER "<?pi data?>", STREAM_ERR_RESTRICTED_XML);
}
END_TEST

START_TEST(test_billion_laughs)
{
    static const char laughs[] =
        "<?xml version='1.0'?>\n"
        "<!DOCTYPE lolz [\n"
        " <!ENTITY lol 'lol'>\n"
        " <!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>\n"
        " <!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>\n"
        " <!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>\n"
        " <!ENTITY lol4 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>\n"
        " <!ENTITY lol5 '&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;'>\n"
        " <!ENTITY lol6 '&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;'>\n"
        " <!ENTITY lol7 '&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;'>\n"
        " <!ENTITY lol8 '&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;'>\n"
        " <!ENTITY lol9 '&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;'>\n"
        "]>\n"
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        "<message><body>&lol9;</body></message>";
    rec r;
    rec_init(&r, 262144, 32);
    ck_assert_int_eq(feed_str(&r, laughs), -1);
    ck_assert_int_eq(r.errors, 1);
    ck_assert_int_eq(r.err, STREAM_ERR_RESTRICTED_XML);
    ck_assert_int_eq(r.opens, 0);
    ck_assert_int_eq(r.stanzas, 0);
    rec_free(&r);
    assert_error_everywhere(laughs, STREAM_ERR_RESTRICTED_XML);
    /* An entity used without any declaration is simply not well-formed. */
    assert_error_everywhere(HEADER "<message><body>&lol9;</body></message>",
                            STREAM_ERR_NOT_WELL_FORMED);
}
END_TEST

START_TEST(test_encoding)
{
    assert_error_everywhere("<?xml version='1.0' encoding='ISO-8859-1'?>" HEADER,
                            STREAM_ERR_UNSUPPORTED_ENCODING);
    assert_error_everywhere("<?xml version='1.0' encoding='UTF-16'?>" HEADER,
                            STREAM_ERR_UNSUPPORTED_ENCODING);
    /* UTF-8 in any case is fine. */
    rec r;
    rec_init(&r, 4096, 16);
    ck_assert_int_eq(feed_str(&r, "<?xml version='1.0' encoding='utf-8'?>" HEADER), 0);
    ck_assert_int_eq(r.opens, 1);
    rec_free(&r);
}
END_TEST

START_TEST(test_not_well_formed)
{
    assert_error_everywhere(HEADER "<message></iq>", STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message a='1' a='2'/>", STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message><body>&#1;</body></message>",
                            STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message><body>a < b</body></message>",
                            STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message><<", STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere("<?xml version='1.0'?><?xml version='1.0'?>" HEADER,
                            STREAM_ERR_NOT_WELL_FORMED);
}
END_TEST

START_TEST(test_invalid_utf8)
{
    assert_error_everywhere(HEADER "<message><body>\xff</body></message>",
                            STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message><body>\xc0\xaf</body></message>", /* overlong */
                            STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message><body>\xed\xa0\x80</body></message>", /* surrogate */
                            STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message><body>\xe2\x98</body></message>", /* truncated */
                            STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message to='\xfe'/>", STREAM_ERR_NOT_WELL_FORMED);
    assert_error_everywhere(HEADER "<message>\x01</message>", STREAM_ERR_NOT_WELL_FORMED);
}
END_TEST

START_TEST(test_bad_namespace_prefix)
{
    assert_error_everywhere(HEADER "<foo:message/>", STREAM_ERR_BAD_NAMESPACE_PREFIX);
    assert_error_everywhere(HEADER "<message foo:a='1'/>", STREAM_ERR_BAD_NAMESPACE_PREFIX);
    /* RFC 6120 §4.9.3.2's example: the stream prefix is never declared. */
    assert_error_everywhere("<stream:stream xmlns='jabber:client' to='example.com'>",
                            STREAM_ERR_BAD_NAMESPACE_PREFIX);
}
END_TEST

START_TEST(test_wrong_root)
{
    assert_error_everywhere("<stream:stream xmlns='jabber:client' "
                            "xmlns:stream='http://wrong.example.org/streams'>",
                            STREAM_ERR_INVALID_NAMESPACE);
    assert_error_everywhere("<stream xmlns='jabber:client'>", STREAM_ERR_INVALID_NAMESPACE);
    assert_error_everywhere("<message xmlns='jabber:client'/>", STREAM_ERR_INVALID_NAMESPACE);
    assert_error_everywhere("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>",
                            STREAM_ERR_INVALID_NAMESPACE);
}
END_TEST

START_TEST(test_text_between_stanzas)
{
    assert_error_everywhere(HEADER "hello", STREAM_ERR_BAD_FORMAT);
    assert_error_everywhere(HEADER "<presence/>  x  <presence/>", STREAM_ERR_BAD_FORMAT);
    assert_error_everywhere(HEADER "&amp;", STREAM_ERR_BAD_FORMAT);
    assert_error_everywhere(HEADER "\xc2\xa0", STREAM_ERR_BAD_FORMAT); /* NBSP is not XML space */
}
END_TEST

/* ---- limits -------------------------------------------------------------------------------- */

static char *nested(unsigned depth)
{
    tern_buf b;
    buf_init(&b);
    buf_append_str(&b, HEADER);
    for (unsigned i = 0; i < depth; i++)
        buf_append_str(&b, "<a>");
    for (unsigned i = 0; i < depth; i++)
        buf_append_str(&b, "</a>");
    char *s = strdup(buf_cstr(&b));
    buf_free(&b);
    return s;
}

START_TEST(test_depth)
{
    /* max_depth counts from the stanza: depth 8 passes, depth 9 does not. */
    char *ok = nested(8);
    rec r;
    rec_init(&r, 262144, 8);
    ck_assert_int_eq(feed_str(&r, ok), 0);
    ck_assert_int_eq(r.stanzas, 1);
    rec_free(&r);
    free(ok);

    char *deep = nested(9);
    ck_assert_int_eq(expect_error(deep, strlen(deep), 262144, 8), STREAM_ERR_POLICY_VIOLATION);
    free(deep);

    /* The same with an empty element at the bottom (expat still reports its end). */
    const char *empty = HEADER "<a><a><a><a><a><a><a><a><a/></a></a></a></a></a></a></a></a>";
    ck_assert_int_eq(expect_error(empty, strlen(empty), 262144, 8), STREAM_ERR_POLICY_VIOLATION);

    /* A depth bomb: 80 000 open tags never closed. */
    tern_buf b;
    buf_init(&b);
    buf_append_str(&b, HEADER);
    for (int i = 0; i < 80000; i++)
        buf_append_str(&b, "<a>");
    rec_init(&r, 262144, 32);
    ck_assert_int_eq(feed_chunked(&r, b.data, b.len, 4096), -1);
    ck_assert_int_eq(r.err, STREAM_ERR_POLICY_VIOLATION);
    ck_assert_uint_lt(r.fed_at_error, 8192); /* stopped at the 33rd level, not the 80 000th */
    rec_free(&r);
    buf_free(&b);
}
END_TEST

/* A complete stanza of exactly `size` bytes. */
static char *stanza_of_size(size_t size)
{
    const char *head = "<message><body>", *tail = "</body></message>";
    size_t fixed = strlen(head) + strlen(tail);
    ck_assert_uint_ge(size, fixed);
    char *s = malloc(size + 1);
    strcpy(s, head);
    memset(s + strlen(head), 'x', size - fixed);
    strcpy(s + size - strlen(tail), tail);
    return s;
}

START_TEST(test_size_limit_exact)
{
    /* A stanza of exactly the limit passes; one byte more does not, however it arrives, and
     * whatever whitespace precedes it. */
    size_t limit = 1000;
    char *ok = stanza_of_size(limit), *big = stanza_of_size(limit + 1);
    for (size_t chunk = 1; chunk <= 2048; chunk = chunk * 3 + 1) {
        rec r;
        rec_init(&r, limit, 16);
        ck_assert_int_eq(feed_str(&r, HEADER "\n\n"), 0);
        ck_assert_int_eq(feed_chunked(&r, ok, limit, chunk), 0);
        ck_assert_int_eq(feed_str(&r, "  "), 0);
        ck_assert_int_eq(feed_chunked(&r, ok, limit, chunk), 0);
        ck_assert_int_eq(r.stanzas, 2);
        ck_assert_int_eq(feed_chunked(&r, big, limit + 1, chunk), -1);
        ck_assert_int_eq(r.err, STREAM_ERR_POLICY_VIOLATION);
        ck_assert_int_eq(r.stanzas, 2);
        rec_free(&r);
    }
    /* Several stanzas in one feed are each measured on their own. */
    tern_buf b;
    buf_init(&b);
    buf_append_str(&b, HEADER);
    for (int i = 0; i < 10; i++)
        buf_append(&b, ok, limit);
    rec r;
    rec_init(&r, limit, 16);
    ck_assert_int_eq(feed(&r, b.data, b.len), 0);
    ck_assert_int_eq(r.stanzas, 10);
    rec_free(&r);
    buf_free(&b);
    free(ok);
    free(big);
}
END_TEST

START_TEST(test_size_limit_big_stanza)
{
    /* 1 MiB stanza against a 256 KiB limit, in 4 KiB reads: rejected as soon as the limit is
     * passed, not after the whole megabyte was buffered. */
    size_t limit = 256 * 1024, size = 1024 * 1024;
    char *big = stanza_of_size(size);
    rec r;
    rec_init(&r, limit, 32);
    ck_assert_int_eq(feed_str(&r, HEADER), 0);
    unsigned long long start = r.fed;
    ck_assert_int_eq(feed_chunked(&r, big, size, 4096), -1);
    ck_assert_int_eq(r.err, STREAM_ERR_POLICY_VIOLATION);
    ck_assert_int_eq(r.stanzas, 0);
    ck_assert_uint_gt(r.fed_at_error - start, limit);
    ck_assert_uint_le(r.fed_at_error - start, limit + 4096);
    rec_free(&r);

    /* In one single feed the same. */
    char *all = malloc(strlen(HEADER) + size);
    memcpy(all, HEADER, strlen(HEADER));
    memcpy(all + strlen(HEADER), big, size);
    ck_assert_int_eq(expect_error(all, strlen(HEADER) + size, limit, 32),
                     STREAM_ERR_POLICY_VIOLATION);
    free(all);
    free(big);
}
END_TEST

START_TEST(test_size_limit_unclosed_attribute)
{
    /* A 10 MB attribute value that never closes: expat would buffer it all waiting for the
     * quote. The parser must give up once more than the limit of it arrived. */
    size_t limit = 256 * 1024, chunk = 4096, total = 10 * 1024 * 1024;
    char *junk = malloc(chunk);
    memset(junk, 'a', chunk);
    rec r;
    rec_init(&r, limit, 32);
    ck_assert_int_eq(feed_str(&r, HEADER), 0);
    unsigned long long start = r.fed;
    ck_assert_int_eq(feed_str(&r, "<message to='"), 0);
    int rc = 0;
    for (size_t sent = 0; sent < total && rc == 0; sent += chunk)
        rc = feed(&r, junk, chunk);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(r.errors, 1);
    ck_assert_int_eq(r.err, STREAM_ERR_POLICY_VIOLATION);
    ck_assert_uint_gt(r.fed_at_error - start, limit);
    ck_assert_uint_le(r.fed_at_error - start, limit + chunk);
    rec_free(&r);

    /* The same before any stanza began: an endless stream header. */
    rec_init(&r, limit, 32);
    ck_assert_int_eq(feed_str(&r, "<stream:stream to='"), 0);
    rc = 0;
    for (size_t sent = 0; sent < total && rc == 0; sent += chunk)
        rc = feed(&r, junk, chunk);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(r.err, STREAM_ERR_POLICY_VIOLATION);
    ck_assert_uint_le(r.fed_at_error, limit + chunk);
    rec_free(&r);

    /* And an endless tag name between stanzas. */
    rec_init(&r, limit, 32);
    ck_assert_int_eq(feed_str(&r, HEADER "<presence/><"), 0);
    start = r.fed;
    rc = 0;
    for (size_t sent = 0; sent < total && rc == 0; sent += chunk)
        rc = feed(&r, junk, chunk);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(r.err, STREAM_ERR_POLICY_VIOLATION);
    ck_assert_uint_le(r.fed_at_error - start, limit + chunk);
    rec_free(&r);
    free(junk);
}
END_TEST

/* ---- restart and close --------------------------------------------------------------------- */

START_TEST(test_reset_in_callback)
{
    /* RFC 6120 §5.4.3.3: after <proceed/> the old stream is gone; whatever followed it in the
     * same read is dropped, and the next bytes must start a new stream. */
    rec r;
    rec_init(&r, 4096, 16);
    r.reset_on = "proceed";
    ck_assert_int_eq(feed_str(&r, HEADER "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                         "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                         "<message><body>injected</body></message>"),
                     0);
    ck_assert_int_eq(r.stanzas, 2);
    ck_assert_int_eq(feed_str(&r, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                                  "xmlns:stream='http://etherx.jabber.org/streams'>"
                                  "<presence/>"),
                     0);
    ck_assert_int_eq(r.errors, 0);
    ck_assert_str_eq(buf_cstr(&r.log),
                     "open [jabber:client] <stream to='example.com' version='1.0'/>\n"
                     "stanza <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n"
                     "stanza <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n"
                     "open [jabber:server] <stream/>\n"
                     "stanza <presence xmlns='jabber:server'/>\n");
    rec_free(&r);

    /* The dropped rest may be longer than the size limit (the parser feeds expat in slices). */
    rec_init(&r, 256, 16);
    r.reset_on = "proceed";
    tern_buf big;
    buf_init(&big);
    buf_append_str(&big, HEADER "<proceed/>");
    for (int i = 0; i < 100; i++)
        buf_append_str(&big, "<message><body>dropped</body></message>");
    ck_assert_int_eq(feed(&r, big.data, big.len), 0);
    ck_assert_int_eq(r.errors, 0);
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(feed_str(&r, HEADER "<presence/>"), 0);
    ck_assert_int_eq(r.opens, 2);
    ck_assert_int_eq(r.stanzas, 2);
    ck_assert_int_eq(r.errors, 0);
    buf_free(&big);
    rec_free(&r);

    /* Reset on a stanza whose end is the last byte of the feed, byte by byte. */
    rec_init(&r, 4096, 16);
    r.reset_on = "success";
    const char *s = HEADER "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    ck_assert_int_eq(feed_chunked(&r, s, strlen(s), 1), 0);
    ck_assert_int_eq(feed_chunked(&r, s, strlen(s), 1), 0);
    ck_assert_int_eq(r.opens, 2);
    ck_assert_int_eq(r.stanzas, 2);
    ck_assert_int_eq(r.errors, 0);
    rec_free(&r);

    /* Reset from outside a callback, in the middle of a stanza. */
    rec_init(&r, 4096, 16);
    ck_assert_int_eq(feed_str(&r, HEADER "<message><body>half"), 0);
    stream_parser_reset(r.p);
    ck_assert_int_eq(feed_str(&r, HEADER "<presence/>"), 0);
    ck_assert_int_eq(r.opens, 2);
    ck_assert_int_eq(r.stanzas, 1);
    rec_free(&r);
}
END_TEST

START_TEST(test_reset_restores_limits)
{
    /* Byte counting restarts with the stream: a long-lived stream does not creep to the limit. */
    rec r;
    rec_init(&r, 300, 16);
    r.reset_on = "proceed";
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(feed_str(&r, HEADER "<proceed/>"), 0);
    }
    ck_assert_int_eq(r.opens, 50);
    ck_assert_int_eq(r.errors, 0);
    rec_free(&r);
}
END_TEST

START_TEST(test_close)
{
    rec r;
    rec_init(&r, 4096, 16);
    ck_assert_int_eq(feed_str(&r, HEADER "<presence/></stream:stream><garbage"), 0);
    ck_assert_int_eq(r.closes, 1);
    ck_assert_int_eq(r.errors, 0);
    ck_assert_int_eq(feed_str(&r, "<presence/>"), 0);
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(r.closes, 1);
    rec_free(&r);

    /* A close in the middle of a stanza is not well-formed. */
    assert_error_everywhere(HEADER "<message></stream:stream>", STREAM_ERR_NOT_WELL_FORMED);
}
END_TEST

START_TEST(test_free_mid_stanza)
{
    /* Freeing with a half-built stanza and buffered bytes leaks nothing (LeakSanitizer). */
    rec r;
    rec_init(&r, 4096, 16);
    feed_str(&r, HEADER "<message to='a'><body>text<b");
    rec_free(&r);
}
END_TEST

/* stream_parser_set_root (a BOSH request body, XEP-0206): the root is <body/> in httpbind,
 * elements left in that namespace are reported in jabber:client, elements in other namespaces
 * keep theirs, and the document ends with the root. The same at every split. */
#define NS_HB "http://jabber.org/protocol/httpbind"

static char *run_body(const char *data, size_t len, size_t split)
{
    rec r;
    rec_init(&r, 4096, 16);
    stream_parser_set_root(r.p, NS_HB, "body", NS_CLIENT);
    if (feed(&r, data, split) == 0 && split < len)
        feed(&r, data + split, len - split);
    char *out = strdup(buf_cstr(&r.log));
    rec_free(&r);
    return out;
}

START_TEST(test_custom_root)
{
    const char *body = "<body rid='7' xmlns='" NS_HB "' xmlns:xmpp='urn:xmpp:xbosh' "
                       "xmpp:restart='true'><message to='a@b'><body>hi</body></message>"
                       "<iq xmlns='jabber:client' type='get' id='1'><q xmlns='urn:x'/></iq>"
                       "</body>";
    const char *expected =
        "open [" NS_HB "] <body xmlns='" NS_HB "' rid='7' xmlns:ns0='urn:xmpp:xbosh' "
        "ns0:restart='true'/>\n"
        "stanza <message to='a@b'><body>hi</body></message>\n"
        "stanza <iq type='get' id='1'><q xmlns='urn:x'/></iq>\n"
        "close\n";
    size_t len = strlen(body);
    char *whole = run_body(body, len, len);
    ck_assert_str_eq(whole, expected);
    free(whole);
    for (size_t i = 0; i < len; i++) {
        char *split = run_body(body, len, i);
        ck_assert_msg(strcmp(split, expected) == 0, "split at %zu gave:\n%s", i, split);
        free(split);
    }
    /* Anything else as the root, <stream:stream/> included, is not such a document. */
    const char *wrong[] = {
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        "<body xmlns='jabber:client'/>",
        "<bodyx xmlns='" NS_HB "'/>",
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char *log = run_body(wrong[i], strlen(wrong[i]), strlen(wrong[i]));
        ck_assert_str_eq(log, "error invalid-namespace\n");
        free(log);
    }
    /* The restricted-XML rules hold as for a stream. */
    const char *dtd = "<!DOCTYPE body [<!ENTITY x 'y'>]><body xmlns='" NS_HB "'>&x;</body>";
    char *log = run_body(dtd, strlen(dtd), strlen(dtd));
    ck_assert_str_eq(log, "error restricted-xml\n");
    free(log);
}
END_TEST


/* ---- giving expat back between stanzas ---------------------------------------------------- */

START_TEST(test_release_at_boundaries)
{
    rec r;
    rec_init(&r, 4096, 16);
    ck_assert(stream_parser_released(r.p)); /* nothing is made before the first byte */
    ck_assert_int_eq(feed_str(&r, "<?xml version='1.0'?>" HEADER), 0);
    ck_assert(stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "<presence/>"), 0);
    ck_assert(stream_parser_released(r.p));
    /* Half a stanza, half a tag, an unread CR: expat holds state, so it is kept. */
    ck_assert_int_eq(feed_str(&r, "<message to='a@b'><bo"), 0);
    ck_assert(!stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "dy>hi</body></message>"), 0);
    ck_assert(stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "<iq"), 0);
    ck_assert(!stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, " type='get' id='1'/>"), 0);
    ck_assert(stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, " \n"), 0); /* a keepalive */
    ck_assert(stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "\r"), 0); /* expat waits to see whether \n follows */
    ck_assert(!stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "\n</stream:stream>"), 0);
    ck_assert_str_eq(buf_cstr(&r.log),
                     "open [jabber:client] <stream to='example.com' version='1.0'/>\n"
                     "stanza <presence/>\n"
                     "stanza <message to='a@b'><body>hi</body></message>\n"
                     "stanza <iq type='get' id='1'/>\n"
                     "close\n");
    rec_free(&r);
}
END_TEST

/* Runs `data` fed in the given pieces (NULL-terminated) and returns the log; `release` says
 * whether the parser gives expat back at every boundary, or never. */
static char *run_pieces(const char *const *pieces, bool release, size_t max)
{
    rec r;
    rec_init(&r, max, 16);
    stream_parser_set_release(r.p, release ? 1 : 0, 0);
    for (size_t i = 0; pieces[i]; i++)
        if (feed_str(&r, pieces[i]) < 0)
            break;
    char *out = strdup(buf_cstr(&r.log));
    rec_free(&r);
    return out;
}

static void assert_release_invisible(const char *const *pieces, const char *expected)
{
    char *kept = run_pieces(pieces, false, 4096);
    char *released = run_pieces(pieces, true, 4096);
    ck_assert_str_eq(kept, expected);
    ck_assert_str_eq(released, expected);
    free(kept);
    free(released);
}

START_TEST(test_release_stanza_split_across)
{
    /* The parser is given back after the header and after the first stanza; the next stanza
     * then arrives in pieces, starting with whitespace and ending with the next one's start. */
    const char *pieces[] = {
        HEADER, "<presence/>", " \n<mess", "age to='a@b' type='chat'><body>one &amp; ",
        "two</body></message><iq type='get' id='7'><query xmlns='jabber:iq:roster'",
        "/></iq>", "</stream:stream>", NULL,
    };
    assert_release_invisible(pieces,
                             "open [jabber:client] <stream to='example.com' version='1.0'/>\n"
                             "stanza <presence/>\n"
                             "stanza <message to='a@b' type='chat'><body>one &amp; two</body>"
                             "</message>\n"
                             "stanza <iq type='get' id='7'><query xmlns='jabber:iq:roster'/>"
                             "</iq>\n"
                             "close\n");
}
END_TEST

START_TEST(test_release_root_prefixes)
{
    /* Prefixes declared on the root, the root's own prefix not "stream", another default
     * namespace: a re-created parser must know them all, and the end tag must match. */
    const char *header = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
                         "xmlns='jabber:server' xmlns:x='urn:example:x' xmlns:y='urn:example:y' "
                         "to='example.com' version='1.0'>";
    const char *pieces[] = {
        header, "<x:ping x:a='1' y:b='2'><y:pong/><plain/></x:ping>",
        "<message from='a@b' to='c@d'><y:thing/></message>", "</s:stream>", NULL,
    };
    rec r;
    rec_init(&r, 4096, 16);
    stream_parser_set_release(r.p, 1, 0);
    for (size_t i = 0; pieces[i]; i++) {
        ck_assert_int_eq(feed_str(&r, pieces[i]), 0);
        if (pieces[i + 1])
            ck_assert(stream_parser_released(r.p));
    }
    ck_assert_int_eq(r.closes, 1);
    ck_assert_int_eq(r.errors, 0);
    rec_free(&r);
    char *kept = run_pieces(pieces, false, 4096);
    char *released = run_pieces(pieces, true, 4096);
    ck_assert_str_eq(released, kept);
    ck_assert_ptr_nonnull(strstr(kept, "open [jabber:server]"));
    ck_assert_ptr_nonnull(strstr(kept, "urn:example:x"));
    free(kept);
    free(released);

    /* The root was <s:stream>: </stream:stream> does not close it, released or not; nor does
     * a prefix that was never declared become usable. */
    const char *wrong_end[] = { header, "<x:ping/>", "</stream:stream>", NULL };
    assert_release_invisible(wrong_end,
                             "open [jabber:server] <stream to='example.com' version='1.0'/>\n"
                             "stanza <ping xmlns='urn:example:x'/>\n"
                             "error not-well-formed\n");
    const char *undeclared[] = { header, "<x:ping/>", "<z:ping/>", NULL };
    assert_release_invisible(undeclared,
                             "open [jabber:server] <stream to='example.com' version='1.0'/>\n"
                             "stanza <ping xmlns='urn:example:x'/>\n"
                             "error bad-namespace-prefix\n");
}
END_TEST

START_TEST(test_release_keeps_limits)
{
    /* Limits count the peer's bytes, not the root tag a re-created parser is primed with:
     * the largest stanza that fits without releases fits with them, one byte more does not. */
    const char *stanza_fmt = "<message><body>%.*s</body></message>";
    size_t limit = 200;
    static char filler[400];
    memset(filler, 'a', sizeof filler - 1);
    char stanza[512];
    int fits = -1;
    for (int n = 0; n < 300; n++) {
        snprintf(stanza, sizeof stanza, stanza_fmt, n, filler);
        const char *pieces[] = { HEADER, "<presence/>", stanza, "<presence/>", NULL };
        char *kept = run_pieces(pieces, false, limit);
        char *released = run_pieces(pieces, true, limit);
        ck_assert_str_eq(released, kept);
        bool ok = strstr(kept, "error") == NULL;
        free(kept);
        free(released);
        if (!ok)
            break;
        fits = n;
    }
    ck_assert_int_gt(fits, 100); /* the limit was reached, and well past the root tag's size */
    ck_assert_int_lt(fits, 200);
}
END_TEST

START_TEST(test_release_and_reset)
{
    rec r;
    rec_init(&r, 4096, 16);
    ck_assert_int_eq(feed_str(&r, HEADER "<presence/>"), 0);
    ck_assert(stream_parser_released(r.p));
    stream_parser_reset(r.p); /* a restart while released */
    ck_assert_int_eq(feed_str(&r, "<stream:stream xmlns='jabber:server' "
                                  "xmlns:stream='http://etherx.jabber.org/streams'>"), 0);
    ck_assert_int_eq(feed_str(&r, "<iq type='get' id='1'/>"), 0);
    ck_assert_int_eq(r.opens, 2);
    ck_assert_int_eq(r.stanzas, 2);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&r.log), "open [jabber:server]"));
    /* The new stream's root is the one a re-created parser is primed with. */
    ck_assert(stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "</stream:stream>"), 0);
    ck_assert_int_eq(r.closes, 1);
    ck_assert_int_eq(r.errors, 0);
    rec_free(&r);
}
END_TEST

START_TEST(test_release_ration)
{
    /* Three releases at once, the next one an hour later: the fourth boundary keeps expat. */
    rec r;
    rec_init(&r, 4096, 16);
    stream_parser_set_release(r.p, 3, 3600 * 1000);
    ck_assert_int_eq(feed_str(&r, HEADER), 0);
    ck_assert(stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "<presence/>"), 0);
    ck_assert(stream_parser_released(r.p));
    ck_assert_int_eq(feed_str(&r, "<presence/>"), 0);
    ck_assert(stream_parser_released(r.p));
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(feed_str(&r, "<presence/>"), 0);
        ck_assert(!stream_parser_released(r.p));
    }
    ck_assert_int_eq(r.stanzas, 7);
    rec_free(&r);
    /* Never: burst 0. */
    rec_init(&r, 4096, 16);
    stream_parser_set_release(r.p, 0, 0);
    ck_assert_int_eq(feed_str(&r, HEADER "<presence/>"), 0);
    ck_assert(!stream_parser_released(r.p));
    rec_free(&r);
}
END_TEST

/* Every test, once as is and once with releases at every boundary. */
static void add_cases(Suite *s, bool release)
{
    TCase *tc = tcase_create(release ? "release-always-parse" : "parse");
    TCase *te = tcase_create(release ? "release-always-errors" : "errors");
    TCase *tl = tcase_create(release ? "release-always-limits" : "limits");
    TCase *tr = tcase_create(release ? "release-always-restart" : "restart");
    TCase *all[] = { tc, te, tl, tr };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        tcase_set_timeout(all[i], 120);
        tcase_add_checked_fixture(all[i], release ? release_always_on : release_always_off,
                                  release_always_off);
    }
    tcase_add_test(tc, test_client_stream_any_split);
    tcase_add_test(tc, test_stanza_reported_at_its_last_byte);
    tcase_add_test(tc, test_tree_contents);
    tcase_add_test(tc, test_header_namespaces);
    tcase_add_test(tc, test_keepalives_unbounded);
    tcase_add_test(tc, test_custom_root);
    tcase_add_test(te, test_restricted_xml);
    tcase_add_test(te, test_billion_laughs);
    tcase_add_test(te, test_encoding);
    tcase_add_test(te, test_not_well_formed);
    tcase_add_test(te, test_invalid_utf8);
    tcase_add_test(te, test_bad_namespace_prefix);
    tcase_add_test(te, test_wrong_root);
    tcase_add_test(te, test_text_between_stanzas);
    tcase_add_test(tl, test_depth);
    tcase_add_test(tl, test_size_limit_exact);
    tcase_add_test(tl, test_size_limit_big_stanza);
    tcase_add_test(tl, test_size_limit_unclosed_attribute);
    tcase_add_test(tr, test_reset_in_callback);
    tcase_add_test(tr, test_reset_restores_limits);
    tcase_add_test(tr, test_close);
    tcase_add_test(tr, test_free_mid_stanza);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        suite_add_tcase(s, all[i]);
}

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    add_cases(s, false);
    add_cases(s, true);
    TCase *tx = tcase_create("release");
    tcase_add_checked_fixture(tx, release_always_off, release_always_off);
    tcase_add_test(tx, test_release_at_boundaries);
    tcase_add_test(tx, test_release_stanza_split_across);
    tcase_add_test(tx, test_release_root_prefixes);
    tcase_add_test(tx, test_release_keeps_limits);
    tcase_add_test(tx, test_release_and_reset);
    tcase_add_test(tx, test_release_ration);
    suite_add_tcase(s, tx);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
