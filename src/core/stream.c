/* stream.c — the incremental XMPP stream parser (stream.h): expat in, stanza trees out.
 *
 * Limits are enforced on input bytes, before expat can spend memory on them. The input is seen
 * as a sequence of regions: the stream header (from the first byte), each top-level element
 * (from its '<'), and the gaps between them (from the end of the last stanza or the last
 * whitespace expat reported). No region may grow beyond max_stanza_size. Bytes are handed to
 * expat in slices that never carry the current region past that limit, so a token expat must
 * buffer while waiting for its end (a 10 MB attribute value without a closing quote) is cut off
 * after max_stanza_size bytes, and expat's buffer stays around that size. Whitespace keepalives
 * between stanzas move the gap's start forward, so an idle client can send them forever.
 *
 * Depth counts from the stanza: the top-level element is depth 1, its children depth 2, ...
 *
 * Restricted XML (RFC 6120 §11.1) is refused at the first sign: the DOCTYPE handler fires before
 * any internal subset is read, so entity declarations (billion laughs) are never even parsed.
 *
 * Idle memory: an expat parser that has seen a few stanzas holds 10-12 KiB (its input buffer,
 * name pools, hash tables of element and attribute names, tag and binding free lists), most of
 * the memory of an idle client connection. So when a feed ends at a stanza boundary (in the
 * stream, no stanza or token begun, every byte fed accounted for by an event) the expat parser
 * is freed, and created again when the next bytes come: it is first fed a copy of the root's
 * start tag, exactly as the peer sent it, so it is back inside the root with the same namespace
 * bindings and the same qualified name for </stream:stream> to match. Byte offsets from the new
 * parser are shifted so that limits still count the peer's bytes only. Creating and priming a
 * parser costs a few microseconds, about three stanzas' worth of parsing, so a busy stream must
 * not pay it on every read: releases are rationed per stream (RELEASE_BURST at once, then one
 * per RELEASE_REFILL_MS), which lets a whole login release after each step and bounds what a
 * busy stream spends, while a stream that goes quiet is released at its last boundary or, if
 * the ration was used up just then, at its next keepalive.
 *
 * Stopping: expat may still call a handler or two after XML_StopParser(), so every handler
 * first checks `halted`. A reset requested from a callback is only recorded; it is carried out
 * once XML_Parse() has returned, and the rest of that feed is dropped (RFC 6120 §5.4.3.3, §6.4.6:
 * nothing follows <proceed/> or <success/> on the old stream). */
#include "tern_build.h"
#include "core/stream.h"

#include <expat.h>
#ifndef HAVE_XML_SETREPARSEDEFERRALENABLED
#include <dlfcn.h>
#include <pthread.h>
#endif
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tern/ns.h"

/* Expat reports qualified names as "uri<SEP>local". \x01 cannot occur in XML 1.0 text, so no
 * namespace URI can contain it. */
#define NS_SEP '\x01'

/* The release ration (see the top): a login fits in the burst; a busy stream re-creates its
 * parser at most a few times a second. */
#define RELEASE_BURST 8
#define RELEASE_REFILL_MS 250

struct stream_parser {
    stream_parser_callbacks cb;
    void *ctx;
    size_t max_size;
    unsigned max_depth;
    XML_Parser xp;         /* NULL while released (or before the first byte) */
    long long xp_origin;   /* stream offset of the current expat parser's byte 0 */
    char *root_tag;        /* the root's start tag as received, to prime a new parser; or NULL */
    size_t root_tag_len;
    unsigned release_burst;       /* releases allowed at once; 0: never release */
    unsigned release_refill_ms;   /* one more release per this many ms; 0: unlimited */
    unsigned release_credit;      /* releases left now */
    unsigned long long credit_ms; /* when release_credit was last topped up */
    const char *root_ns, *root_name; /* the root expected (stream_parser_set_root) */
    const char *content_ns;          /* what elements in root_ns are reported as, or NULL */

    unsigned depth;        /* 0: before the header; 1: in the stream; n+1: in a stanza at depth n */
    tern_xml *stanza;      /* stanza being built, or NULL */
    tern_xml *cur;         /* its element that is receiving children */
    tern_buf text;         /* character data not yet added to cur (expat delivers it in pieces) */
    char *default_ns;      /* default namespace declared on the header */

    unsigned long long fed;          /* bytes given to expat since the last reset */
    unsigned long long region_start; /* stream offset where the current region began */

    bool in_feed;       /* inside stream_parser_feed() (callbacks may run) */
    bool in_parse;      /* inside XML_Parse() */
    bool halted;        /* ignore whatever expat still reports */
    bool failed;        /* on_error was called */
    bool closed;        /* </stream:stream> was seen */
    bool reset_pending; /* stream_parser_reset() was called from a callback */
    bool priming;       /* a new expat parser is reading root_tag: report nothing */
};

static void *stream_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        abort();
    return p;
}

static char *stream_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

/* ---- stopping ------------------------------------------------------------------------------ */

static void halt(stream_parser *p)
{
    p->halted = true;
    if (p->in_parse)
        XML_StopParser(p->xp, XML_FALSE);
}

static void drop_stanza(stream_parser *p)
{
    xml_unref(p->stanza);
    p->stanza = p->cur = NULL;
    buf_reset(&p->text);
}

/* Reports the one error of this stream. */
static void fail(stream_parser *p, tern_stream_error cond, const char *text)
{
    if (p->failed)
        return;
    p->failed = true;
    halt(p);
    drop_stanza(p);
    if (p->cb.on_error)
        p->cb.on_error(p->ctx, cond, text);
}

static void fail_from_expat(stream_parser *p)
{
    enum XML_Error code = XML_GetErrorCode(p->xp);
    const char *text = XML_ErrorString(code);
    switch (code) {
    case XML_ERROR_UNBOUND_PREFIX:
    case XML_ERROR_UNDECLARING_PREFIX:
    case XML_ERROR_RESERVED_PREFIX_XML:
    case XML_ERROR_RESERVED_PREFIX_XMLNS:
    case XML_ERROR_RESERVED_NAMESPACE_URI:
        fail(p, STREAM_ERR_BAD_NAMESPACE_PREFIX, text ? text : "bad namespace prefix");
        break;
    case XML_ERROR_NO_MEMORY:
        fail(p, STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
        break;
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
        fail(p, STREAM_ERR_UNSUPPORTED_ENCODING, "only UTF-8 is supported");
        break;
    default:
        fail(p, STREAM_ERR_NOT_WELL_FORMED, text ? text : "not well-formed");
        break;
    }
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* Stream offset just after the event expat is reporting. */
static unsigned long long event_end(stream_parser *p)
{
    XML_Index at = XML_GetCurrentByteIndex(p->xp);
    int count = XML_GetCurrentByteCount(p->xp);
    return (unsigned long long)(p->xp_origin + (at < 0 ? 0 : at) + (count < 0 ? 0 : count));
}

static unsigned long long event_start(stream_parser *p)
{
    XML_Index at = XML_GetCurrentByteIndex(p->xp);
    return (unsigned long long)(p->xp_origin + (at < 0 ? 0 : at));
}

/* Splits expat's "uri<SEP>local" (or plain "local") without copying: *uri_len is 0 when the
 * name has no namespace. */
static const char *split_name(const char *qname, const char **uri, size_t *uri_len)
{
    const char *sep = strchr(qname, NS_SEP);
    if (!sep) {
        *uri = "";
        *uri_len = 0;
        return qname;
    }
    *uri = qname;
    *uri_len = (size_t)(sep - qname);
    return sep + 1;
}

static bool ns_is(const char *uri, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(uri, want, len) == 0;
}

static void set_attrs(tern_xml *node, const XML_Char **atts)
{
    tern_buf ns;
    buf_init(&ns);
    for (size_t i = 0; atts[i]; i += 2) {
        const char *uri;
        size_t uri_len;
        const char *local = split_name(atts[i], &uri, &uri_len);
        if (uri_len == 0) {
            xml_set_attr(node, local, atts[i + 1]);
        } else {
            buf_reset(&ns);
            buf_append(&ns, uri, uri_len);
            xml_set_attr_ns(node, buf_cstr(&ns), local, atts[i + 1]);
        }
    }
    buf_free(&ns);
}

/* A new element named by expat's qname; parent NULL makes a new root. */
static tern_xml *element_for(stream_parser *p, tern_xml *parent, const char *qname)
{
    const char *uri;
    size_t uri_len;
    const char *local = split_name(qname, &uri, &uri_len);
    tern_buf ns;
    buf_init(&ns);
    if (p->content_ns && ns_is(uri, uri_len, p->root_ns))
        buf_append_str(&ns, p->content_ns);
    else
        buf_append(&ns, uri, uri_len);
    tern_xml *e = parent ? xml_add_child(parent, local, buf_cstr(&ns)) : xml_new(local, buf_cstr(&ns));
    buf_free(&ns);
    return e;
}

static void flush_text(stream_parser *p)
{
    if (p->text.len && p->cur)
        xml_add_text(p->cur, p->text.data, p->text.len);
    buf_reset(&p->text);
}

/* ---- expat handlers ------------------------------------------------------------------------ */

/* Copies the root's start tag, as the peer sent it, for priming a re-created parser. Without
 * expat's input context (XML_CONTEXT_BYTES) there is no copy, and the parser is never
 * released. */
static void keep_root_tag(stream_parser *p)
{
    int offset = 0, size = 0;
    const char *buf = XML_GetInputContext(p->xp, &offset, &size);
    int count = XML_GetCurrentByteCount(p->xp);
    free(p->root_tag);
    p->root_tag = NULL;
    p->root_tag_len = 0;
    if (!buf || count <= 0 || offset < 0 || offset > size || count > size - offset)
        return;
    p->root_tag = malloc((size_t)count);
    if (!p->root_tag)
        abort();
    memcpy(p->root_tag, buf + offset, (size_t)count);
    p->root_tag_len = (size_t)count;
}

static void open_stream(stream_parser *p, const char *qname, const XML_Char **atts)
{
    const char *uri;
    size_t uri_len;
    const char *local = split_name(qname, &uri, &uri_len);
    /* RFC 6120 §4.8.1: the root must be {http://etherx.jabber.org/streams}stream (or what
     * stream_parser_set_root asked for). */
    if (!ns_is(uri, uri_len, p->root_ns) || strcmp(local, p->root_name) != 0) {
        fail(p, STREAM_ERR_INVALID_NAMESPACE, strcmp(p->root_ns, NS_STREAMS) == 0
                                                  ? "the root element must be <stream:stream/>"
                                                  : "unexpected root element");
        return;
    }
    keep_root_tag(p);
    tern_xml *header = xml_new(p->root_name, p->root_ns);
    set_attrs(header, atts);
    p->depth = 1;
    p->region_start = event_end(p);
    if (p->cb.on_open)
        p->cb.on_open(p->ctx, header, p->default_ns ? p->default_ns : "");
    xml_unref(header);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    stream_parser *p = ud;
    if (p->halted || p->priming)
        return;
    if (p->depth == 0) {
        open_stream(p, name, atts);
        return;
    }
    flush_text(p);
    if (p->depth == 1) {
        p->region_start = event_start(p); /* the stanza's bytes count from its '<' */
        p->stanza = p->cur = element_for(p, NULL, name);
    } else {
        if (p->depth > p->max_depth) { /* the new element would be at stanza depth p->depth */
            fail(p, STREAM_ERR_POLICY_VIOLATION, "stanza nested too deeply");
            return;
        }
        p->cur = element_for(p, p->cur, name);
    }
    set_attrs(p->cur, atts);
    p->depth++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name; /* expat has checked that it matches the start tag */
    stream_parser *p = ud;
    if (p->halted)
        return;
    if (p->depth == 1) {
        /* </stream:stream>: nothing may follow on this stream (RFC 6120 §4.4). */
        p->depth = 0;
        p->closed = true;
        halt(p);
        if (p->cb.on_close)
            p->cb.on_close(p->ctx);
        return;
    }
    flush_text(p);
    p->depth--;
    if (p->depth > 1) {
        p->cur = xml_parent(p->cur);
        return;
    }
    tern_xml *stanza = p->stanza;
    p->stanza = p->cur = NULL;
    p->region_start = event_end(p);
    if (p->cb.on_stanza)
        p->cb.on_stanza(p->ctx, stanza);
    else
        xml_unref(stanza);
}

static bool all_whitespace(const char *s, int len)
{
    for (int i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    stream_parser *p = ud;
    if (p->halted || len <= 0)
        return;
    if (p->depth >= 2) {
        buf_append(&p->text, s, (size_t)len);
        return;
    }
    /* Between stanzas only whitespace (keepalives) is allowed; RFC 6120 §4.9.3.1 names text
     * there bad-format. Reported whitespace is consumed, so the gap region restarts after it. */
    if (!all_whitespace(s, len)) {
        fail(p, STREAM_ERR_BAD_FORMAT, "text is not allowed between stanzas");
        return;
    }
    p->region_start = event_end(p);
}

static void XMLCALL on_ns_start(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    stream_parser *p = ud;
    if (p->halted || p->priming || p->depth != 0 || prefix)
        return;
    /* The header's default namespace says which kind of stream this is (RFC 6120 §4.8.2). */
    free(p->default_ns);
    p->default_ns = stream_xstrdup(uri ? uri : "");
}

static void XMLCALL on_xml_decl(void *ud, const XML_Char *version, const XML_Char *encoding,
                                int standalone)
{
    (void)version;
    (void)standalone;
    stream_parser *p = ud;
    if (p->halted)
        return;
    /* RFC 6120 §11.6: XMPP is UTF-8 only. */
    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        fail(p, STREAM_ERR_UNSUPPORTED_ENCODING, "only UTF-8 is supported");
}

/* RFC 6120 §11.1: no DTD, no entity declarations, no comments, no processing instructions. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    fail(ud, STREAM_ERR_RESTRICTED_XML, "DTDs are not allowed");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    fail(ud, STREAM_ERR_RESTRICTED_XML, "entity declarations are not allowed");
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
    (void)data;
    fail(ud, STREAM_ERR_RESTRICTED_XML, "comments are not allowed");
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
    (void)target;
    (void)data;
    fail(ud, STREAM_ERR_RESTRICTED_XML, "processing instructions are not allowed");
}

/* ---- life cycle ---------------------------------------------------------------------------- */

/* Reparse deferral (expat 2.6, backported to Debian's 2.5.0-1+deb12u2) would hold back a
 * complete stanza until more bytes arrive; our own size limit already bounds the rescanning it
 * guards against, and a server must answer a stanza as soon as its last byte is in.
 * Built against a header without the call (configure checks), the library loaded at run time
 * may still have it, on by default, if libexpat1 was updated after the build: look it up. */
#ifdef HAVE_XML_SETREPARSEDEFERRALENABLED
static void expat_disable_reparse_deferral(XML_Parser xp)
{
    XML_SetReparseDeferralEnabled(xp, XML_FALSE);
}
#else
typedef XML_Bool (*set_reparse_deferral_fn)(XML_Parser, XML_Bool);
static set_reparse_deferral_fn set_reparse_deferral;
static pthread_once_t reparse_deferral_lookup = PTHREAD_ONCE_INIT;

static void look_up_reparse_deferral(void)
{
    set_reparse_deferral = (set_reparse_deferral_fn)dlsym(RTLD_DEFAULT,
                                                          "XML_SetReparseDeferralEnabled");
}

static void expat_disable_reparse_deferral(XML_Parser xp)
{
    pthread_once(&reparse_deferral_lookup, look_up_reparse_deferral);
    if (set_reparse_deferral)
        set_reparse_deferral(xp, XML_FALSE);
}
#endif

static XML_Parser expat_new(stream_parser *p)
{
    XML_Parser xp = XML_ParserCreateNS("UTF-8", NS_SEP);
    if (!xp)
        abort();
    XML_SetUserData(xp, p);
    XML_SetElementHandler(xp, on_start, on_end);
    XML_SetCharacterDataHandler(xp, on_text);
    XML_SetStartNamespaceDeclHandler(xp, on_ns_start);
    XML_SetXmlDeclHandler(xp, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(xp, on_doctype);
    XML_SetEntityDeclHandler(xp, on_entity_decl);
    XML_SetCommentHandler(xp, on_comment);
    XML_SetProcessingInstructionHandler(xp, on_pi);
    XML_SetParamEntityParsing(xp, XML_PARAM_ENTITY_PARSING_NEVER);
    expat_disable_reparse_deferral(xp);
    return xp;
}

static void expat_free(stream_parser *p)
{
    if (p->xp)
        XML_ParserFree(p->xp);
    p->xp = NULL;
    p->xp_origin = 0;
}

static void parser_clear(stream_parser *p)
{
    drop_stanza(p);
    free(p->default_ns);
    p->default_ns = NULL;
    free(p->root_tag);
    p->root_tag = NULL;
    p->root_tag_len = 0;
    p->depth = 0;
    p->fed = p->region_start = 0;
    p->halted = p->failed = p->closed = p->reset_pending = p->priming = false;
}

/* A parser for the next bytes: a fresh one before the header; after a release, one primed with
 * the root's start tag, whose byte 0 is placed so that the tag ends where the stream is now. */
static int expat_ensure(stream_parser *p)
{
    if (p->xp)
        return 0;
    p->xp = expat_new(p);
    if (p->depth == 0)
        return 0;
    p->xp_origin = (long long)p->fed - (long long)p->root_tag_len;
    p->priming = true;
    enum XML_Status st = XML_Parse(p->xp, p->root_tag, (int)p->root_tag_len, XML_FALSE);
    p->priming = false;
    if (st != XML_STATUS_OK) {
        fail_from_expat(p); /* it parsed before: only memory can fail it now */
        return -1;
    }
    return 0;
}

static unsigned long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

/* One release from the ration, if there is one left (see the top). */
static bool take_release_credit(stream_parser *p)
{
    if (p->release_burst == 0)
        return false;
    if (p->release_refill_ms == 0)
        return true;
    unsigned long long now = monotonic_ms();
    unsigned long long earned = (now - p->credit_ms) / p->release_refill_ms;
    if (earned >= p->release_burst - p->release_credit) {
        p->release_credit = p->release_burst; /* full: the refill clock restarts from now */
        p->credit_ms = now;
    } else {
        p->release_credit += (unsigned)earned;
        p->credit_ms += earned * p->release_refill_ms;
    }
    if (p->release_credit == 0)
        return false;
    p->release_credit--;
    return true;
}

/* After a feed: frees the expat parser if the stream is between stanzas with nothing pending,
 * so an idle stream holds only this struct and the root tag. */
static void maybe_release(stream_parser *p)
{
    if (!p->xp || !p->root_tag || p->depth != 1 || p->stanza || p->failed || p->closed ||
        p->halted || p->region_start != p->fed || p->text.len)
        return;
    if (!take_release_credit(p))
        return;
    expat_free(p);
    buf_free(&p->text); /* its capacity is the largest text seen: give it back too */
    buf_init(&p->text);
}

stream_parser *stream_parser_new(const stream_parser_callbacks *cb, void *ctx,
                                 size_t max_stanza_size, unsigned max_depth)
{
    stream_parser *p = stream_xcalloc(1, sizeof *p);
    p->cb = *cb;
    p->ctx = ctx;
    p->max_size = max_stanza_size ? max_stanza_size : 1;
    p->max_depth = max_depth ? max_depth : 1;
    p->root_ns = NS_STREAMS;
    p->root_name = "stream";
    p->release_burst = p->release_credit = RELEASE_BURST;
    p->release_refill_ms = RELEASE_REFILL_MS;
    buf_init(&p->text);
    return p;
}

void stream_parser_free(stream_parser *p)
{
    if (!p)
        return;
    parser_clear(p);
    buf_free(&p->text);
    expat_free(p);
    free(p);
}

static void do_reset(stream_parser *p)
{
    /* A fresh expat parser (made when the new stream's first bytes come) rather than
     * XML_ParserReset(): nothing of the old stream (bindings, buffered bytes, settings) can
     * leak into the new one. */
    expat_free(p);
    parser_clear(p);
}

void stream_parser_set_root(stream_parser *p, const char *root_ns, const char *root_name,
                            const char *content_ns)
{
    p->root_ns = root_ns;
    p->root_name = root_name;
    p->content_ns = content_ns;
}

void stream_parser_set_release(stream_parser *p, unsigned burst, unsigned refill_ms)
{
    p->release_burst = p->release_credit = burst;
    p->release_refill_ms = refill_ms;
}

bool stream_parser_released(const stream_parser *p) { return p->xp == NULL; }

void stream_parser_reset(stream_parser *p)
{
    if (p->in_feed) {
        p->reset_pending = true;
        halt(p);
        return;
    }
    do_reset(p);
}

int stream_parser_feed(stream_parser *p, const char *data, size_t len)
{
    if (p->in_feed || p->failed)
        return -1;
    if (p->closed)
        return 0;
    p->in_feed = true;
    while (len > 0) {
        unsigned long long used = p->fed - p->region_start;
        if (used >= p->max_size) {
            fail(p, STREAM_ERR_POLICY_VIOLATION,
                 p->depth == 0 ? "stream header too large" : "stanza too large");
            break;
        }
        /* Never let expat see bytes beyond the current region's allowance. */
        unsigned long long room = p->max_size - used;
        size_t n = len;
        if (n > room)
            n = (size_t)room;
        if (n > INT_MAX / 2)
            n = INT_MAX / 2;
        if (expat_ensure(p) != 0)
            break;
        p->fed += n;
        p->in_parse = true;
        enum XML_Status st = XML_Parse(p->xp, data, (int)n, XML_FALSE);
        p->in_parse = false;
        data += n;
        len -= n;
        if (p->reset_pending) {
            do_reset(p); /* the rest of this feed belonged to the old stream */
            break;
        }
        if (st == XML_STATUS_ERROR && !p->halted)
            fail_from_expat(p);
        if (p->failed || p->closed)
            break;
    }
    p->in_feed = false;
    maybe_release(p);
    return p->failed ? -1 : 0;
}

/* ---- one standalone element ---------------------------------------------------------------- */

/* The element goes through a whole stream: a synthetic header, the input, and a synthetic end
 * tag. The end tag proves the element complete (an unfinished one makes it mismatched); the
 * input may not end the synthetic stream itself, nor hold a second element. */
typedef struct element_parse {
    tern_xml *element;  /* the first element */
    unsigned elements;
    bool in_end_tag;    /* feeding our synthetic end tag */
    bool ended_early;   /* the input itself closed the stream */
    bool failed;
    tern_stream_error cond;
    const char *text;
} element_parse;

static void element_on_open(void *ctx, const tern_xml *header, const char *default_ns)
{
    (void)ctx;
    (void)header;
    (void)default_ns;
}

static void element_on_stanza(void *ctx, tern_xml *x)
{
    element_parse *e = ctx;
    if (e->elements++ == 0)
        e->element = x;
    else
        xml_unref(x);
}

static void element_on_close(void *ctx)
{
    element_parse *e = ctx;
    if (!e->in_end_tag)
        e->ended_early = true;
}

static void element_on_error(void *ctx, tern_stream_error cond, const char *text)
{
    element_parse *e = ctx;
    e->failed = true;
    e->cond = cond;
    e->text = text;
}

static const stream_parser_callbacks element_callbacks = {
    element_on_open, element_on_stanza, element_on_close, element_on_error,
};

int stream_parse_element(const char *data, size_t len, const char *default_ns,
                         size_t max_size, unsigned max_depth, tern_xml **out,
                         tern_stream_error *cond, const char **text)
{
    static const char end_tag[] = "</stream:stream>";
    tern_buf header;
    buf_init(&header);
    buf_append_str(&header, "<stream:stream xmlns='");
    buf_append_escaped(&header, default_ns, strlen(default_ns));
    buf_append_str(&header, "' xmlns:stream='" NS_STREAMS "'>");
    /* The header is ours and must always fit, whatever the limit. */
    if (max_size < header.len)
        max_size = header.len;
    element_parse e = { 0 };
    stream_parser *p = stream_parser_new(&element_callbacks, &e, max_size, max_depth);
    stream_parser_set_release(p, 0, 0); /* it lives for three feeds: keep the one parser */
    stream_parser_feed(p, header.data, header.len);
    stream_parser_feed(p, data, len);
    if (!e.failed && !e.ended_early) {
        e.in_end_tag = true;
        stream_parser_feed(p, end_tag, sizeof end_tag - 1);
    }
    stream_parser_free(p);
    buf_free(&header);
    *out = NULL;
    if (e.failed) {
        *cond = e.cond;
        *text = e.text;
    } else if (e.ended_early) {
        *cond = STREAM_ERR_NOT_WELL_FORMED;
        *text = "an end tag without its start tag";
    } else if (e.elements > 1) {
        *cond = STREAM_ERR_NOT_WELL_FORMED;
        *text = "more than one element";
    } else {
        *out = e.element;
        return 0;
    }
    if (e.element)
        xml_unref(e.element);
    return -1;
}
