/* test_xml.c — the stanza tree, its serializer (escaping, namespaces, round trips through the
 * stream parser) and RFC 6120 error production. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"
#include "tern/error.h"
#include "tern/ns.h"
#include "tern/xml.h"

/* Serializes and compares, freeing the string. */
#define ck_serialized(node, ctx, expected)                                                         \
    do {                                                                                           \
        char *s_ = xml_to_string((node), (ctx));                                                   \
        ck_assert_str_eq(s_, (expected));                                                          \
        free(s_);                                                                                  \
    } while (0)

/* ---- parsing helper: one stanza through the real stream parser ----------------------------- */

typedef struct parsed {
    tern_xml *stanza;
    int errors;
} parsed;

static void p_open(void *ctx, const tern_xml *h, const char *ns)
{
    (void)ctx;
    (void)h;
    (void)ns;
}
static void p_stanza(void *ctx, tern_xml *s)
{
    parsed *r = ctx;
    if (r->stanza)
        xml_unref(r->stanza);
    r->stanza = s;
}
static void p_close(void *ctx) { (void)ctx; }
static void p_error(void *ctx, tern_stream_error c, const char *t)
{
    (void)c;
    (void)t;
    ((parsed *)ctx)->errors++;
}

/* Parses `xml` as one stanza on a jabber:client stream; NULL on any error. */
static tern_xml *parse_stanza(const char *xml)
{
    static const stream_parser_callbacks cb = { p_open, p_stanza, p_close, p_error };
    parsed r = { NULL, 0 };
    stream_parser *p = stream_parser_new(&cb, &r, 1 << 20, 64);
    const char *head = "<stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams'>";
    stream_parser_feed(p, head, strlen(head));
    stream_parser_feed(p, xml, strlen(xml));
    stream_parser_free(p);
    if (r.errors) {
        xml_unref(r.stanza);
        return NULL;
    }
    return r.stanza;
}

/* Structural equality: names, namespaces, attributes, direct text and child elements. */
static int attr_count(const tern_xml *n)
{
    int c = 0;
    for (const tern_xml_attr *a = xml_first_attr(n); a; a = xml_next_attr(a))
        c++;
    return c;
}

static void assert_same_tree(const tern_xml *a, const tern_xml *b)
{
    ck_assert_str_eq(xml_name(a), xml_name(b));
    ck_assert_str_eq(xml_ns(a), xml_ns(b));
    ck_assert_int_eq(attr_count(a), attr_count(b));
    for (const tern_xml_attr *at = xml_first_attr(a); at; at = xml_next_attr(at)) {
        const char *v = xml_attr_ns(b, xml_attr_xmlns(at), xml_attr_name(at));
        ck_assert_msg(v != NULL, "attribute %s missing", xml_attr_name(at));
        ck_assert_str_eq(v, xml_attr_value(at));
    }
    ck_assert_str_eq(xml_text(a), xml_text(b));
    const tern_xml *ca = xml_first_element(a), *cb = xml_first_element(b);
    for (; ca && cb; ca = xml_next_element(ca), cb = xml_next_element(cb))
        assert_same_tree(ca, cb);
    ck_assert_ptr_null(ca);
    ck_assert_ptr_null(cb);
}

/* Serialize, parse back, compare structure, and check that re-serializing is stable. */
static void assert_round_trip(const tern_xml *tree)
{
    char *s = xml_to_string(tree, NS_CLIENT);
    tern_xml *back = parse_stanza(s);
    ck_assert_msg(back != NULL, "serialized form did not parse: %s", s);
    assert_same_tree(tree, back);
    char *again = xml_to_string(back, NS_CLIENT);
    ck_assert_str_eq(s, again);
    free(again);
    free(s);
    xml_unref(back);
}

/* ---- building and serializing -------------------------------------------------------------- */

START_TEST(test_build_and_serialize)
{
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_set_attr(m, "to", "juliet@example.com");
    xml_set_attr(m, "type", "chat");
    tern_xml *body = xml_add_child(m, "body", NULL);
    xml_add_text(body, "hi", 2);
    xml_add_child(m, "active", "http://jabber.org/protocol/chatstates");
    xml_add_child(m, "thread", NS_CLIENT);
    ck_serialized(m, NS_CLIENT,
                  "<message to='juliet@example.com' type='chat'><body>hi</body>"
                  "<active xmlns='http://jabber.org/protocol/chatstates'/><thread/></message>");
    /* With no namespace in force the root declares its own. */
    ck_serialized(m, NULL,
                  "<message xmlns='jabber:client' to='juliet@example.com' type='chat'>"
                  "<body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                  "<thread/></message>");
    ck_serialized(m, "jabber:server",
                  "<message xmlns='jabber:client' to='juliet@example.com' type='chat'>"
                  "<body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                  "<thread/></message>");
    ck_serialized(body, NS_CLIENT, "<body>hi</body>");
    xml_unref(m);
}
END_TEST

START_TEST(test_namespaces)
{
    tern_xml *iq = xml_new("iq", NS_CLIENT);
    tern_xml *q = xml_add_child(iq, "query", "jabber:iq:roster");
    tern_xml *item = xml_add_child(q, "item", NULL);            /* inherits jabber:iq:roster */
    tern_xml *back = xml_add_child(item, "x", NS_CLIENT);      /* back to the stanza namespace */
    xml_add_child(back, "y", "jabber:iq:roster");
    xml_add_child(iq, "none", "");                              /* no namespace at all */
    ck_assert_str_eq(xml_ns(item), "jabber:iq:roster");
    ck_assert_str_eq(xml_ns(xml_child(iq, "none", NULL)), "");
    ck_serialized(iq, NS_CLIENT,
                  "<iq><query xmlns='jabber:iq:roster'><item><x xmlns='jabber:client'>"
                  "<y xmlns='jabber:iq:roster'/></x></item></query><none xmlns=''/></iq>");
    assert_round_trip(iq);
    xml_unref(iq);

    /* An element in the XML namespace must keep the xml prefix: binding that namespace as a
     * default is forbidden and the peer would drop the stream. Its children still see the
     * default namespace around it. */
    tern_xml *m = parse_stanza("<message><xml:foo><bar/></xml:foo></message>");
    ck_assert_ptr_nonnull(m);
    tern_xml *foo = xml_child(m, "foo", TERN_XML_NS_XML);
    ck_assert_ptr_nonnull(foo);
    ck_assert_str_eq(xml_ns(xml_first_element(foo)), NS_CLIENT);
    ck_serialized(m, NS_CLIENT, "<message><xml:foo><bar/></xml:foo></message>");
    ck_serialized(foo, "urn:other", "<xml:foo><bar xmlns='jabber:client'/></xml:foo>");
    assert_round_trip(m);
    xml_unref(m);

    tern_xml *plain = xml_new("plain", NULL);
    ck_assert_str_eq(xml_ns(plain), "");
    ck_serialized(plain, NULL, "<plain/>");
    ck_serialized(plain, "", "<plain/>");
    ck_serialized(plain, NS_CLIENT, "<plain xmlns=''/>");
    xml_unref(plain);
}
END_TEST

START_TEST(test_attributes)
{
    tern_xml *e = xml_new("e", "urn:a");
    xml_set_attr(e, "a", "1");
    xml_set_attr(e, "b", "2");
    xml_set_attr(e, "a", "3"); /* replace keeps the position */
    ck_assert_str_eq(xml_attr(e, "a"), "3");
    xml_set_attr_ns(e, TERN_XML_NS_XML, "lang", "de");
    xml_set_attr_ns(e, "urn:x", "foo", "f");
    xml_set_attr_ns(e, "urn:x", "bar", "g");
    xml_set_attr_ns(e, "urn:y", "foo", "h");
    ck_assert_ptr_null(xml_attr(e, "lang"));
    ck_assert_str_eq(xml_attr_ns(e, TERN_XML_NS_XML, "lang"), "de");
    ck_assert_str_eq(xml_attr_ns(e, "urn:x", "foo"), "f");
    ck_assert_str_eq(xml_attr_ns(e, "urn:y", "foo"), "h");
    ck_assert_str_eq(xml_attr_ns(e, NULL, "b"), "2");
    ck_assert_ptr_null(xml_attr_ns(e, "urn:x", "b"));
    ck_serialized(e, "urn:a",
                  "<e a='3' b='2' xml:lang='de' xmlns:ns0='urn:x' ns0:foo='f' ns0:bar='g' "
                  "xmlns:ns1='urn:y' ns1:foo='h'/>");
    assert_round_trip(e);

    const tern_xml_attr *at = xml_first_attr(e);
    ck_assert_str_eq(xml_attr_name(at), "a");
    ck_assert_ptr_null(xml_attr_xmlns(at));
    at = xml_next_attr(xml_next_attr(at));
    ck_assert_str_eq(xml_attr_name(at), "lang");
    ck_assert_str_eq(xml_attr_xmlns(at), TERN_XML_NS_XML);
    ck_assert_str_eq(xml_attr_value(at), "de");

    xml_set_attr(e, "a", NULL);
    xml_set_attr_ns(e, "urn:x", "foo", NULL);
    xml_set_attr(e, "missing", NULL);
    ck_assert_ptr_null(xml_attr(e, "a"));
    ck_serialized(e, "urn:a",
                  "<e b='2' xml:lang='de' xmlns:ns0='urn:x' ns0:bar='g' xmlns:ns1='urn:y' "
                  "ns1:foo='h'/>");
    /* A namespace declaration smuggled in as a plain attribute is not written. */
    xml_set_attr(e, "xmlns", "urn:evil");
    xml_set_attr(e, "xmlns:p", "urn:evil");
    ck_assert_str_eq(xml_attr(e, "xmlns"), "urn:evil");
    ck_serialized(e, "urn:a",
                  "<e b='2' xml:lang='de' xmlns:ns0='urn:x' ns0:bar='g' xmlns:ns1='urn:y' "
                  "ns1:foo='h'/>");
    xml_unref(e);
}
END_TEST

START_TEST(test_many_attributes)
{
    /* Past a few attributes lookups go through an index; it must stay exact under replace and
     * remove. */
    tern_xml *e = xml_new("e", NULL);
    char name[32], value[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "a%d", i);
        snprintf(value, sizeof value, "v%d", i);
        xml_set_attr(e, name, value);
    }
    for (int i = 0; i < 3000; i += 2) {
        snprintf(name, sizeof name, "a%d", i);
        snprintf(value, sizeof value, "w%d", i);
        xml_set_attr(e, name, value);
    }
    for (int i = 0; i < 3000; i += 3) {
        snprintf(name, sizeof name, "a%d", i);
        xml_set_attr(e, name, NULL);
    }
    xml_set_attr(e, "a1", "again"); /* after removals the index is rebuilt */
    int count = 0;
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "a%d", i);
        const char *v = xml_attr(e, name);
        if (i % 3 == 0) {
            ck_assert_ptr_null(v);
            continue;
        }
        count++;
        if (i == 1)
            snprintf(value, sizeof value, "again");
        else
            snprintf(value, sizeof value, "%c%d", i % 2 == 0 ? 'w' : 'v', i);
        ck_assert_str_eq(v, value);
    }
    ck_assert_int_eq(attr_count(e), count);
    ck_assert_ptr_null(xml_attr_ns(e, "urn:x", "a1"));
    assert_round_trip(e);
    xml_unref(e);
}
END_TEST

/* ---- escaping ------------------------------------------------------------------------------ */

START_TEST(test_escape_markup_in_text_and_attrs)
{
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_set_attr(m, "id", "</message><message to='x'>");
    xml_set_attr(m, "q", "a\"b'c&d<e>f");
    tern_xml *body = xml_add_child(m, "body", NULL);
    const char *evil = "</body></message><message to='victim@example.com'><body>x]]>&amp;";
    xml_add_text(body, evil, strlen(evil));
    ck_serialized(m, NS_CLIENT,
                  "<message id='&lt;/message&gt;&lt;message to=&apos;x&apos;&gt;' "
                  "q='a&quot;b&apos;c&amp;d&lt;e&gt;f'><body>&lt;/body&gt;&lt;/message&gt;"
                  "&lt;message to=&apos;victim@example.com&apos;&gt;&lt;body&gt;x]]&gt;"
                  "&amp;amp;</body></message>");
    /* The peer reads exactly the same text and attributes back, never markup. */
    assert_round_trip(m);
    char *s = xml_to_string(m, NS_CLIENT);
    tern_xml *back = parse_stanza(s);
    free(s);
    ck_assert_ptr_nonnull(back);
    ck_assert_str_eq(xml_child_text(back, "body", NULL), evil);
    ck_assert_str_eq(xml_attr(back, "id"), "</message><message to='x'>");
    ck_assert_int_eq(attr_count(back), 2);
    xml_unref(back);
    xml_unref(m);
}
END_TEST

START_TEST(test_escape_whitespace)
{
    /* Attribute values are normalised by parsers (XML 1.0 §3.3.3), so tab/LF/CR there are
     * character references; in text only CR needs one (§2.11). */
    tern_xml *e = xml_new("e", NULL);
    xml_set_attr(e, "a", "x\ty\nz\rw");
    xml_add_text(e, "l1\nl2\tt\r\nend", 12);
    ck_serialized(e, NULL, "<e a='x&#9;y&#10;z&#13;w'>l1\nl2\tt&#13;\nend</e>");
    tern_xml *wrap = xml_new("message", NS_CLIENT);
    xml_add_copy(wrap, e);
    assert_round_trip(wrap);
    char *s = xml_to_string(wrap, NS_CLIENT);
    tern_xml *back = parse_stanza(s);
    free(s);
    ck_assert_str_eq(xml_attr(xml_child(back, "e", NULL), "a"), "x\ty\nz\rw");
    ck_assert_str_eq(xml_child_text(back, "e", NULL), "l1\nl2\tt\r\nend");
    xml_unref(back);
    xml_unref(wrap);
    xml_unref(e);
}
END_TEST

START_TEST(test_escape_control_and_bad_utf8)
{
    /* Anything XML 1.0 cannot carry becomes U+FFFD so the output stays well-formed. */
    static const char in[] = "a\x01"
                             "b\x00"
                             "c\x1f"
                             "d\x7f"         /* DEL is allowed in XML 1.0 */
                             "\xff"          /* never valid in UTF-8 */
                             "\xc0\xaf"      /* overlong '/' */
                             "\xed\xa0\x80"  /* a UTF-16 surrogate */
                             "\xef\xbf\xbe"  /* U+FFFE */
                             "\xe2\x98"      /* truncated sequence */
                             "\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80"; /* é ☃ 😀 kept */
    tern_xml *e = xml_new("body", NS_CLIENT);
    xml_add_text(e, in, sizeof in - 1);
    xml_set_attr(e, "a", "x\x02y\xff");
#define R "\xef\xbf\xbd"
    ck_serialized(e, NS_CLIENT,
                  "<body a='x" R "y" R "'>a" R "b" R "c" R "d\x7f" R R R R R R R R R R R
                  "\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80</body>");
#undef R
    /* And the result parses. */
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_add_copy(m, e);
    char *s = xml_to_string(m, NS_CLIENT);
    tern_xml *back = parse_stanza(s);
    free(s);
    ck_assert_ptr_nonnull(back);
    xml_unref(back);
    xml_unref(m);
    xml_unref(e);

    tern_buf b;
    buf_init(&b);
    buf_append_escaped(&b, "<&>\"'\n", 6);
    ck_assert_str_eq(buf_cstr(&b), "&lt;&amp;&gt;&quot;&apos;&#10;");
    buf_free(&b);
}
END_TEST

/* ---- text, navigation, structure ----------------------------------------------------------- */

START_TEST(test_text_and_navigation)
{
    tern_xml *m = xml_new("message", NS_CLIENT);
    ck_assert_str_eq(xml_text(m), "");
    xml_add_text(m, "one ", 4);
    tern_xml *b = xml_add_child(m, "b", NULL);
    xml_add_text(m, "two", 3);
    xml_add_text(m, " three", 6); /* merges with the previous run */
    tern_xml *c = xml_add_child(m, "c", "urn:c");
    xml_add_text(c, "inner", 5);
    ck_assert_str_eq(xml_text(m), "one two three");
    ck_assert_str_eq(xml_text(c), "inner");
    ck_serialized(m, NS_CLIENT,
                  "<message>one <b/>two three<c xmlns='urn:c'>inner</c></message>");
    ck_assert_ptr_eq(xml_first_element(m), b);
    ck_assert_ptr_eq(xml_next_element(b), c);
    ck_assert_ptr_null(xml_next_element(c));
    ck_assert_ptr_eq(xml_parent(c), m);
    ck_assert_ptr_null(xml_parent(m));
    ck_assert_ptr_eq(xml_child(m, "c", NULL), c);
    ck_assert_ptr_eq(xml_child(m, NULL, "urn:c"), c);
    ck_assert_ptr_null(xml_child(m, "c", NS_CLIENT));
    ck_assert_ptr_eq(xml_child(m, NULL, NULL), b);
    ck_assert_str_eq(xml_child_text(m, "c", "urn:c"), "inner");
    ck_assert_str_eq(xml_child_text(m, "b", NULL), "");
    ck_assert_ptr_null(xml_child_text(m, "zzz", NULL));
    ck_assert(xml_is(c, "c", "urn:c"));
    ck_assert(xml_is(c, NULL, "urn:c"));
    ck_assert(!xml_is(c, "c", NS_CLIENT));
    ck_assert(!xml_is(NULL, "c", NULL));
    assert_round_trip(m);

    xml_remove_child(m, b);
    ck_assert_ptr_null(xml_parent(b));
    ck_serialized(m, NS_CLIENT, "<message>one two three<c xmlns='urn:c'>inner</c></message>");
    xml_remove_child(m, b); /* not a child any more: no effect */
    xml_clear_children(m);
    ck_assert_ptr_null(xml_first_element(m));
    ck_assert_str_eq(xml_text(m), "");
    ck_serialized(m, NS_CLIENT, "<message/>");
    xml_add_text(m, "new", 3);
    ck_serialized(m, NS_CLIENT, "<message>new</message>");
    xml_unref(m);
}
END_TEST

START_TEST(test_large_mixed_content)
{
    /* Many alternating text runs and elements: building stays linear and exact. */
    tern_xml *m = xml_new("message", NS_CLIENT);
    tern_buf expect;
    buf_init(&expect);
    for (int i = 0; i < 20000; i++) {
        xml_add_text(m, "x", 1);
        xml_add_child(m, "b", NULL);
        buf_append(&expect, "x", 1);
    }
    ck_assert_str_eq(xml_text(m), buf_cstr(&expect));
    assert_round_trip(m);
    buf_free(&expect);
    xml_unref(m);
}
END_TEST

START_TEST(test_copy)
{
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_set_attr(m, "to", "a@b");
    xml_set_attr_ns(m, TERN_XML_NS_XML, "lang", "en");
    tern_xml *body = xml_add_child(m, "body", NULL);
    xml_add_text(body, "hello ", 6);
    xml_add_child(body, "em", "urn:x");
    xml_add_text(body, "world", 5);
    tern_xml *x = xml_add_child(m, "x", "jabber:x:data");
    xml_add_child(x, "field", NULL);
    char *orig = xml_to_string(m, NS_CLIENT);

    tern_xml *c = xml_copy(m);
    assert_same_tree(m, c);
    ck_serialized(c, NS_CLIENT, orig);
    /* The copy is independent. */
    xml_set_attr(c, "to", "changed");
    xml_add_text(xml_child(c, "body", NULL), "!", 1);
    ck_serialized(m, NS_CLIENT, orig);
    ck_assert_str_eq(xml_child_text(c, "body", NULL), "hello world!");

    /* A subtree copy becomes its own root. */
    tern_xml *xc = xml_copy(x);
    ck_assert_ptr_null(xml_parent(xc));
    ck_serialized(xc, NS_CLIENT, "<x xmlns='jabber:x:data'><field/></x>");
    xml_unref(m); /* the copies outlive the original */
    ck_serialized(xc, "jabber:x:data", "<x><field/></x>");

    /* xml_add_copy into a tree with another namespace context. */
    tern_xml *fwd = xml_new("forwarded", "urn:xmpp:forward:0");
    tern_xml *added = xml_add_copy(fwd, c);
    ck_assert_ptr_eq(xml_parent(added), fwd);
    xml_unref(c);
    ck_serialized(fwd, NULL,
                  "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
                  "to='changed' xml:lang='en'><body>hello <em xmlns='urn:x'/>world!</body>"
                  "<x xmlns='jabber:x:data'><field/></x></message></forwarded>");
    xml_unref(fwd);
    xml_unref(xc);
    free(orig);
}
END_TEST

START_TEST(test_refcount)
{
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_add_text(xml_add_child(m, "body", NULL), "shared", 6);
    xml_ref(m);
    xml_ref(m);
    xml_unref(m);
    xml_unref(m);
    /* Still alive: under ASan a premature free makes this a use-after-free. */
    ck_assert_str_eq(xml_child_text(m, "body", NULL), "shared");
    xml_unref(m); /* LeakSanitizer would report a missed final free */
    xml_unref(NULL);
}
END_TEST

START_TEST(test_big_strings)
{
    /* Strings bigger than an arena chunk get their own chunk. */
    size_t n = 200000;
    char *big = malloc(n + 1);
    memset(big, 'z', n);
    big[n] = '\0';
    tern_xml *m = xml_new("message", NS_CLIENT);
    xml_set_attr(m, "id", big);
    xml_add_text(xml_add_child(m, "body", NULL), big, n);
    xml_add_child(m, "after", NULL);
    ck_assert_uint_eq(strlen(xml_attr(m, "id")), n);
    ck_assert_uint_eq(strlen(xml_child_text(m, "body", NULL)), n);
    ck_assert_ptr_nonnull(xml_child(m, "after", NULL));
    free(big);
    xml_unref(m);
}
END_TEST

START_TEST(test_buf)
{
    tern_buf b;
    buf_init(&b);
    ck_assert_str_eq(buf_cstr(&b), "");
    buf_append_str(&b, "abc");
    buf_printf(&b, "-%d-%s", 42, "x");
    ck_assert_str_eq(buf_cstr(&b), "abc-42-x");
    ck_assert_uint_eq(b.len, 8);
    buf_reset(&b);
    ck_assert_str_eq(buf_cstr(&b), "");
    for (int i = 0; i < 1000; i++)
        buf_append(&b, "0123456789", 10);
    ck_assert_uint_eq(b.len, 10000);
    ck_assert_uint_eq(strlen(buf_cstr(&b)), 10000);
    buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

START_TEST(test_stanza_error_table)
{
    /* RFC 6120 §8.3.3: condition names and the type each definition gives. */
    static const struct {
        tern_stanza_error c;
        const char *name, *type;
    } want[] = {
        { STANZA_ERR_BAD_REQUEST, "bad-request", "modify" },
        { STANZA_ERR_CONFLICT, "conflict", "cancel" },
        { STANZA_ERR_FEATURE_NOT_IMPLEMENTED, "feature-not-implemented", "cancel" },
        { STANZA_ERR_FORBIDDEN, "forbidden", "auth" },
        { STANZA_ERR_GONE, "gone", "cancel" },
        { STANZA_ERR_INTERNAL_SERVER_ERROR, "internal-server-error", "cancel" },
        { STANZA_ERR_ITEM_NOT_FOUND, "item-not-found", "cancel" },
        { STANZA_ERR_JID_MALFORMED, "jid-malformed", "modify" },
        { STANZA_ERR_NOT_ACCEPTABLE, "not-acceptable", "modify" },
        { STANZA_ERR_NOT_ALLOWED, "not-allowed", "cancel" },
        { STANZA_ERR_NOT_AUTHORIZED, "not-authorized", "auth" },
        { STANZA_ERR_POLICY_VIOLATION, "policy-violation", "modify" },
        { STANZA_ERR_RECIPIENT_UNAVAILABLE, "recipient-unavailable", "wait" },
        { STANZA_ERR_REDIRECT, "redirect", "modify" },
        { STANZA_ERR_REGISTRATION_REQUIRED, "registration-required", "auth" },
        { STANZA_ERR_REMOTE_SERVER_NOT_FOUND, "remote-server-not-found", "cancel" },
        { STANZA_ERR_REMOTE_SERVER_TIMEOUT, "remote-server-timeout", "wait" },
        { STANZA_ERR_RESOURCE_CONSTRAINT, "resource-constraint", "wait" },
        { STANZA_ERR_SERVICE_UNAVAILABLE, "service-unavailable", "cancel" },
        { STANZA_ERR_SUBSCRIPTION_REQUIRED, "subscription-required", "auth" },
        { STANZA_ERR_UNDEFINED_CONDITION, "undefined-condition", "modify" },
        { STANZA_ERR_UNEXPECTED_REQUEST, "unexpected-request", "wait" },
    };
    ck_assert_int_eq(sizeof want / sizeof want[0], STANZA_ERR_UNEXPECTED_REQUEST + 1);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_str_eq(stanza_error_name(want[i].c), want[i].name);
        ck_assert_str_eq(stanza_error_type(want[i].c), want[i].type);
    }
}
END_TEST

START_TEST(test_stream_error_table)
{
    /* RFC 6120 §4.9.3, in the order of its subsections. */
    static const char *const want[] = {
        "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
        "host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
        "invalid-namespace", "invalid-xml", "not-authorized", "not-well-formed",
        "policy-violation", "remote-connection-failed", "reset", "resource-constraint",
        "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
        "unsupported-encoding", "unsupported-feature", "unsupported-stanza-type",
        "unsupported-version",
    };
    ck_assert_int_eq(sizeof want / sizeof want[0], STREAM_ERR_UNSUPPORTED_VERSION + 1);
    for (int i = 0; i <= STREAM_ERR_UNSUPPORTED_VERSION; i++)
        ck_assert_str_eq(stream_error_name((tern_stream_error)i), want[i]);
}
END_TEST

START_TEST(test_stream_error_new)
{
    tern_xml *e = stream_error_new(STREAM_ERR_NOT_WELL_FORMED, NULL);
    ck_assert(xml_is(e, "error", NS_STREAMS));
    ck_serialized(e, NS_CLIENT,
                  "<error xmlns='http://etherx.jabber.org/streams'><not-well-formed "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>");
    xml_unref(e);

    e = stream_error_new(STREAM_ERR_POLICY_VIOLATION, "stanza too <large>");
    ck_serialized(e, NS_CLIENT,
                  "<error xmlns='http://etherx.jabber.org/streams'><policy-violation "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>stanza too "
                  "&lt;large&gt;</text></error>");
    ck_assert_ptr_nonnull(xml_child(e, "policy-violation", NS_STREAM_ERRORS));
    ck_assert_str_eq(xml_child_text(e, "text", NS_STREAM_ERRORS), "stanza too <large>");
    xml_unref(e);
}
END_TEST

START_TEST(test_stanza_error_reply_message)
{
    tern_xml *m = parse_stanza("<message from='romeo@example.net/orchard' "
                               "to='juliet@example.com/balcony' id='m1' type='chat' "
                               "xml:lang='en'><body>Wherefore art thou?</body>"
                               "<thread>t</thread></message>");
    ck_assert_ptr_nonnull(m);
    tern_xml *r = stanza_error_reply(m, STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    ck_serialized(r, NS_CLIENT,
                  "<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' "
                  "type='error' id='m1' xml:lang='en'><body>Wherefore art thou?</body>"
                  "<thread>t</thread><error type='cancel'><service-unavailable "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    /* Errors are never answered (RFC 6120 §8.3.1). */
    ck_assert_ptr_null(stanza_error_reply(r, STANZA_ERR_BAD_REQUEST, NULL));
    xml_unref(r);
    xml_unref(m);
}
END_TEST

START_TEST(test_stanza_error_reply_iq)
{
    tern_xml *iq = parse_stanza("<iq from='juliet@example.com/balcony' id='rg1' type='get'>"
                                "<query xmlns='jabber:iq:roster'/></iq>");
    tern_xml *r = stanza_error_reply(iq, STANZA_ERR_FEATURE_NOT_IMPLEMENTED, "no roster here");
    ck_serialized(r, NS_CLIENT,
                  "<iq to='juliet@example.com/balcony' type='error' id='rg1'><error "
                  "type='cancel'><feature-not-implemented "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no roster "
                  "here</text></error></iq>");
    ck_assert(xml_is(r, "iq", NS_CLIENT));
    xml_unref(r);
    xml_unref(iq);

    /* A server-stream stanza keeps its namespace. */
    tern_xml *s = xml_new("iq", NS_SERVER);
    xml_set_attr(s, "type", "set");
    xml_set_attr(s, "to", "example.com");
    r = stanza_error_reply(s, STANZA_ERR_FORBIDDEN, NULL);
    ck_serialized(r, NS_SERVER,
                  "<iq from='example.com' type='error'><error type='auth'><forbidden "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    xml_unref(r);
    xml_set_attr(s, "type", "error");
    ck_assert_ptr_null(stanza_error_reply(s, STANZA_ERR_FORBIDDEN, NULL));
    xml_unref(s);
}
END_TEST

START_TEST(test_stanza_error_reply_presence)
{
    tern_xml *p = parse_stanza("<presence to='room@muc.example.com/nick' type='subscribe'>"
                               "<x xmlns='http://jabber.org/protocol/muc'/></presence>");
    tern_xml *r = stanza_error_reply(p, STANZA_ERR_REMOTE_SERVER_TIMEOUT, NULL);
    ck_serialized(r, NS_CLIENT,
                  "<presence from='room@muc.example.com/nick' type='error'><x "
                  "xmlns='http://jabber.org/protocol/muc'/><error type='wait'>"
                  "<remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                  "</error></presence>");
    assert_round_trip(r);
    xml_unref(r);
    xml_unref(p);
}
END_TEST

static Suite *xml_suite(void)
{
    Suite *s = suite_create("xml");
    TCase *tc = tcase_create("tree");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_build_and_serialize);
    tcase_add_test(tc, test_namespaces);
    tcase_add_test(tc, test_attributes);
    tcase_add_test(tc, test_many_attributes);
    tcase_add_test(tc, test_escape_markup_in_text_and_attrs);
    tcase_add_test(tc, test_escape_whitespace);
    tcase_add_test(tc, test_escape_control_and_bad_utf8);
    tcase_add_test(tc, test_text_and_navigation);
    tcase_add_test(tc, test_large_mixed_content);
    tcase_add_test(tc, test_copy);
    tcase_add_test(tc, test_refcount);
    tcase_add_test(tc, test_big_strings);
    tcase_add_test(tc, test_buf);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, test_stanza_error_table);
    tcase_add_test(te, test_stream_error_table);
    tcase_add_test(te, test_stream_error_new);
    tcase_add_test(te, test_stanza_error_reply_message);
    tcase_add_test(te, test_stanza_error_reply_iq);
    tcase_add_test(te, test_stanza_error_reply_presence);
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(xml_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
