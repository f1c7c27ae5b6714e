/* test_stream_element.c — stream_parse_element() (src/core/stream.c): one standalone element, as XMPP
 * over WebSocket frames them (RFC 7395 §3.3.3), read with the stream's limits and
 * restricted-XML rules. Exact trees for good input; for bad input the exact RFC 6120 condition;
 * the size and depth limits at their boundary; and no state carried from one call to the next. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"
#include "tern/error.h"
#include "tern/ns.h"
#include "tern/xml.h"

#define MAX_SIZE 4096
#define MAX_DEPTH 8

typedef struct result {
    int rc;
    tern_xml *x;
    tern_stream_error cond;
    const char *text;
} result;

static result parse_sized(const char *data, size_t max_size)
{
    result r = { 0 };
    r.cond = STREAM_ERR_UNDEFINED_CONDITION;
    r.rc = stream_parse_element(data, strlen(data), NS_CLIENT, max_size, MAX_DEPTH, &r.x,
                                &r.cond, &r.text);
    if (r.rc != 0) {
        ck_assert_ptr_null(r.x);
        ck_assert_ptr_nonnull(r.text);
    }
    return r;
}

static result parse(const char *data) { return parse_sized(data, MAX_SIZE); }

/* The element serialized with no namespace in force, or the error condition's name. */
static char *outcome(const char *data)
{
    result r = parse(data);
    if (r.rc != 0)
        return strdup(stream_error_name(r.cond));
    if (!r.x)
        return strdup("(nothing)");
    char *s = xml_to_string(r.x, "");
    xml_unref(r.x);
    return s;
}

#define ck_outcome(input, expected)                 \
    do {                                            \
        char *got_ = outcome(input);                \
        ck_assert_str_eq(got_, expected);           \
        free(got_);                                 \
    } while (0)

START_TEST(test_a_stanza)
{
    result r = parse("<message xmlns='jabber:client' to='bob@example.org' type='chat'>"
                     "<body>hi &amp; bye</body></message>");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(xml_name(r.x), "message");
    ck_assert_str_eq(xml_ns(r.x), NS_CLIENT);
    ck_assert_str_eq(xml_attr(r.x, "to"), "bob@example.org");
    ck_assert_str_eq(xml_child_text(r.x, "body", NS_CLIENT), "hi & bye");
    xml_unref(r.x);
}
END_TEST

START_TEST(test_serialized_forms)
{
    ck_outcome("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.org' "
               "version='1.0'/>",
               "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.org' "
               "version='1.0'/>");
    /* No xmlns: the default namespace given (jabber:client). */
    ck_outcome("<iq type='get' id='1'/>", "<iq xmlns='jabber:client' type='get' id='1'/>");
    ck_outcome("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
               "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    /* White space around the element is no content. */
    ck_outcome("\r\n  <presence xmlns='jabber:client'/> \n",
               "<presence xmlns='jabber:client'/>");
    /* Prefixes declared inside the element work; the stream prefix is predeclared. */
    ck_outcome("<a xmlns='urn:x' xmlns:p='urn:p'><p:b/></a>",
               "<a xmlns='urn:x'><b xmlns='urn:p'/></a>");
    ck_outcome("<stream:features/>",
               "<features xmlns='http://etherx.jabber.org/streams'/>");
}
END_TEST

START_TEST(test_white_space_only)
{
    ck_outcome("", "(nothing)");
    ck_outcome(" \t\r\n", "(nothing)");
}
END_TEST

START_TEST(test_not_one_complete_element)
{
    ck_outcome("<a xmlns='jabber:client'/><b xmlns='jabber:client'/>", "not-well-formed");
    ck_outcome("<message xmlns='jabber:client'><body>unclosed</message>", "not-well-formed");
    ck_outcome("<message xmlns='jabber:client'><body>unfinished", "not-well-formed");
    ck_outcome("<message", "not-well-formed");
    ck_outcome("</stream:stream>", "not-well-formed");
    ck_outcome("<a/></stream:stream>", "not-well-formed");
    ck_outcome("<a/></stream:stream><b/>", "not-well-formed");
    ck_outcome("<a>&undefined;</a>", "not-well-formed");
    ck_outcome("<?xml version='1.0'?><a/>", "not-well-formed");
    ck_outcome("<a>\xc3\x28</a>", "not-well-formed");
    ck_outcome("</a>", "not-well-formed");
}
END_TEST

START_TEST(test_what_a_stream_refuses)
{
    ck_outcome("<iq xmlns='jabber:client'/>trailing text", "bad-format");
    ck_outcome("text<iq xmlns='jabber:client'/>", "bad-format");
    ck_outcome("<!-- a comment --><a/>", "restricted-xml");
    ck_outcome("<a><!-- inside --></a>", "restricted-xml");
    ck_outcome("<?pi data?>", "restricted-xml");
    ck_outcome("<a><?pi data?></a>", "restricted-xml");
    ck_outcome("<x:a/>", "bad-namespace-prefix");
}
END_TEST

/* The allowance counts the element's bytes from its '<', like a stanza on a stream. */
START_TEST(test_size_limit)
{
    char *big = malloc(MAX_SIZE + 16);
    const char *head = "<a>", *tail = "</a>";
    size_t fill = MAX_SIZE - strlen(head) - strlen(tail);
    strcpy(big, head);
    memset(big + 3, 'x', fill);
    strcpy(big + 3 + fill, tail);
    ck_assert_uint_eq(strlen(big), MAX_SIZE);
    result r = parse(big);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(strlen(xml_text(r.x)), fill);
    xml_unref(r.x);
    /* One byte more is over. */
    memset(big + 3, 'x', fill + 1);
    strcpy(big + 3 + fill + 1, tail);
    r = parse(big);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.cond, STREAM_ERR_POLICY_VIOLATION);
    free(big);
    /* A limit below the size of the synthetic header still reads small elements. */
    r = parse_sized("<a/>", 8);
    ck_assert_int_eq(r.rc, 0);
    xml_unref(r.x);
}
END_TEST

START_TEST(test_depth_limit)
{
    /* MAX_DEPTH levels are fine, one more is a policy violation (as on a stream). */
    char deep[256] = "", open_tags[128] = "", close_tags[128] = "";
    for (int i = 0; i < MAX_DEPTH; i++) {
        strcat(open_tags, "<a>");
        strcat(close_tags, "</a>");
    }
    strcat(deep, open_tags);
    strcat(deep, close_tags);
    result r = parse(deep);
    ck_assert_int_eq(r.rc, 0);
    xml_unref(r.x);
    snprintf(deep, sizeof deep, "<a>%s</a>", open_tags);
    strcat(deep, close_tags);
    r = parse(deep);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.cond, STREAM_ERR_POLICY_VIOLATION);
}
END_TEST

/* Each call is a document of its own: a prefix declared in one is unknown in the next. */
START_TEST(test_no_state_between_calls)
{
    ck_outcome("<a xmlns:p='urn:p'><p:b/></a>", "<a xmlns='jabber:client'><b xmlns='urn:p'/></a>");
    ck_outcome("<p:b/>", "bad-namespace-prefix");
    ck_outcome("<a/>", "<a xmlns='jabber:client'/>");
}
END_TEST

static Suite *element_suite(void)
{
    Suite *s = suite_create("stream_element");
    TCase *tc = tcase_create("element");
    tcase_add_test(tc, test_a_stanza);
    tcase_add_test(tc, test_serialized_forms);
    tcase_add_test(tc, test_white_space_only);
    tcase_add_test(tc, test_not_one_complete_element);
    tcase_add_test(tc, test_what_a_stream_refuses);
    tcase_add_test(tc, test_size_limit);
    tcase_add_test(tc, test_depth_limit);
    tcase_add_test(tc, test_no_state_between_calls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(element_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
