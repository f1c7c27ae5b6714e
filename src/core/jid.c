/* jid.c — parsing and preparation of JIDs (RFC 7622).
 *
 * RFC 7622 prepares the localpart with the PRECIS UsernameCaseMapped profile and the resourcepart
 * with OpaqueString. Debian 12 has no PRECIS library, so we use the stringprep profiles that
 * RFC 3920/6122 defined for the same purpose (libidn's Nodeprep and Resourceprep) and IDNA2008
 * with UTS#46 mapping (libidn2) for the domainpart; doc/jid-and-sasl.md explains where the two
 * disagree and why that is acceptable. Every prepared JID is stored in one allocation so a jid is
 * freed in one go.
 *
 * The router prepares 'from' and 'to' of every stanza, and libidn converts each part to UCS-4,
 * walks a dozen tables and converts back: a quarter of the server's CPU under load. Nearly
 * every JID is plain ASCII, where those profiles reduce to a few byte rules, so an ASCII fast
 * path answers first and the libraries see only what it is unsure of (see jid_prep.h). */
#include "tern/jid.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>
#include <strings.h>

#include "core/jid_prep.h"
#include "core/util.h"

static void set_why(const char **why, const char *reason)
{
    if (why)
        *why = reason;
}

/* ---- the reference (slow) path: libidn and libidn2 ---- */

/* Runs a libidn stringprep profile. Unassigned code points are allowed (the "query" rule of
 * RFC 3454 §7): we only compare JIDs, and rejecting characters newer than Unicode 3.2 would
 * refuse addresses other servers accept. */
static int stringprep_part(const char *in, const char *profile, char **out)
{
    *out = NULL;
    char *prepped = NULL;
    if (stringprep_profile(in, &prepped, profile, 0) != STRINGPREP_OK) {
        free(prepped);
        return -1;
    }
    size_t len = strlen(prepped);
    if (len == 0 || len > TERN_JID_PART_MAX) {
        free(prepped);
        return -1;
    }
    *out = prepped;
    return 0;
}

int jid_prep_node_slow(const char *in, char **out)
{
    return stringprep_part(in, "Nodeprep", out);
}

int jid_prep_resource_slow(const char *in, char **out)
{
    return stringprep_part(in, "Resourceprep", out);
}

static void ascii_lowercase(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

static bool is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* A domain name in ASCII form (after any IDNA conversion) must be LDH labels (RFC 1123 §2.1,
 * RFC 5891 §4.2.3.1): non-empty, at most 63 octets, no hyphen at either end. libidn2 does not apply
 * these rules unless asked, so they are checked here for both ASCII and converted names. */
static bool valid_ldh_domain(const char *s, bool *has_alabel)
{
    *has_alabel = false;
    if (*s == '\0')
        return false;
    const char *label = s;
    for (;;) {
        const char *end = strchr(label, '.');
        size_t len = end ? (size_t)(end - label) : strlen(label);
        if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
            return false;
        for (size_t i = 0; i < len; i++)
            if (!is_ldh(label[i]))
                return false;
        if (len >= 4 && strncasecmp(label, "xn--", 4) == 0)
            *has_alabel = true;
        if (!end)
            return true;
        label = end + 1;
    }
}

/* RFC 7622 §3.2: IPv4 and bracketed IPv6 literals are domainparts. They are rewritten in their
 * canonical text form so "[0:0::1]" and "[::1]" compare equal. Returns 1 if `in` is an IP literal
 * (and *out is set), 0 if it is not, -1 if it is bracketed but not a valid IPv6 address. */
static int prep_ip_literal(const char *in, char **out)
{
    unsigned char addr[16];
    char text[INET6_ADDRSTRLEN];
    size_t len = strlen(in);
    if (in[0] == '[') {
        if (len < 3 || len - 2 >= sizeof text || in[len - 1] != ']')
            return -1;
        memcpy(text, in + 1, len - 2);
        text[len - 2] = '\0';
        if (inet_pton(AF_INET6, text, addr) != 1 || !inet_ntop(AF_INET6, addr, text, sizeof text))
            return -1;
        size_t tlen = strlen(text);
        *out = xmalloc(tlen + 3);
        (*out)[0] = '[';
        memcpy(*out + 1, text, tlen);
        memcpy(*out + 1 + tlen, "]", 2);
        return 1;
    }
    if (inet_pton(AF_INET, in, addr) == 1 && inet_ntop(AF_INET, addr, text, sizeof text)) {
        *out = xstrndup(text, strlen(text));
        return 1;
    }
    return 0;
}

/* Removes one final label separator (RFC 7622 §3.2). */
static void strip_final_dot(char *s)
{
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '.')
        s[len - 1] = '\0';
}

/* Converts an internationalised name to its ASCII (A-label) form with UTS#46 non-transitional
 * mapping, which also case-folds and maps the other label separators (U+3002 ...) to '.'. */
static char *domain_to_ascii(const char *in)
{
    char *ascii = NULL;
    if (idn2_to_ascii_8z(in, &ascii, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK) {
        idn2_free(ascii);
        return NULL;
    }
    char *copy = xstrndup(ascii, strlen(ascii));
    idn2_free(ascii);
    return copy;
}

static char *domain_to_unicode(const char *ascii)
{
    char *unicode = NULL;
    if (idn2_to_unicode_8z8z(ascii, &unicode, 0) != IDN2_OK) {
        idn2_free(unicode);
        return NULL;
    }
    char *copy = xstrndup(unicode, strlen(unicode));
    idn2_free(unicode);
    return copy;
}

int jid_prep_domain_slow(const char *in, char **out)
{
    *out = NULL;
    if (!in || *in == '\0')
        return -1;
    int ip = prep_ip_literal(in, out);
    if (ip != 0)
        return ip == 1 ? 0 : -1;

    /* Plain ASCII names without A-labels need no IDNA processing: validate and lowercase. Others
     * go to ASCII through libidn2 (validating the labels) and back, because we keep domains in
     * Unicode so that "jürgen.example" and "xn--jrgen-kva.example" are one domain. */
    char *ascii;
    if (is_ascii(in)) {
        ascii = xstrndup(in, strlen(in));
        ascii_lowercase(ascii);
    } else if (!(ascii = domain_to_ascii(in))) {
        return -1;
    }
    strip_final_dot(ascii);
    bool has_alabel;
    if (!valid_ldh_domain(ascii, &has_alabel)) {
        free(ascii);
        return -1;
    }
    char *result = ascii;
    if (has_alabel) {
        /* libidn2 checks A-labels only loosely: "xn--abc" is refused on the way to ASCII, but
         * "xn--rnkk" decodes to code points IDNA2008 disallows. Require a full round trip
         * (ASCII -> Unicode -> ASCII gives the same name) so only proper A-labels pass and the
         * Unicode form we keep prepares to itself. */
        char *checked = domain_to_ascii(ascii);
        free(ascii);
        if (!checked)
            return -1;
        result = domain_to_unicode(checked);
        char *again = result ? domain_to_ascii(result) : NULL;
        bool round_trip = again && strcmp(again, checked) == 0;
        free(checked);
        free(again);
        if (!round_trip) {
            free(result);
            return -1;
        }
        ascii_lowercase(result);
    }
    if (strlen(result) > TERN_JID_PART_MAX) {
        free(result);
        return -1;
    }
    *out = result;
    return 0;
}


/* ---- the ASCII fast path ---- */

/* Why these rules give exactly the slow path's result for ASCII input:
 * - Mapping: no ASCII character is in RFC 3454 table B.1 (mapped to nothing); B.2 (case folding,
 *   Nodeprep only) maps A-Z to a-z and leaves every other ASCII character alone.
 * - NFKC leaves ASCII unchanged.
 * - Prohibited output: C.1.1 (U+0020, Nodeprep only), C.2.1 (U+0000-U+001F, U+007F), and for
 *   Nodeprep the eight characters " & ' / : < > @ (RFC 6122 Appendix A.5). The other C tables
 *   and the bidi rules concern non-ASCII code points only.
 * - Lengths: each ASCII byte maps to one byte, so the output is as long as the input.
 * A single non-ASCII byte changes everything: NFKC may compose an ASCII character with a
 * following combining mark ("<" + U+0338 becomes U+226E, which Nodeprep allows), and mapping
 * may shorten the string under the length limit. So any byte >= 0x80 means "unsure". */

static bool is_ascii_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }

static char ascii_lower(unsigned char c)
{
    return (char)(is_ascii_upper(c) ? c - 'A' + 'a' : c);
}

static bool node_byte_allowed(unsigned char c)
{
    if (c <= 0x20 || c == 0x7f) /* C.2.1 controls, C.1.1 space */
        return false;
    switch (c) {
    case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
        return false;
    default:
        return true;
    }
}

jid_fast jid_fast_node(const char *in, size_t len, char *out)
{
    /* `ok` starts false for a part too long to keep, so `out` is never overrun; the scan goes on
     * to the end either way, looking for bytes that send the part to the slow path. */
    bool ok = len > 0 && len <= TERN_JID_PART_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            return JID_FAST_UNSURE;
        if (!node_byte_allowed(c))
            ok = false;
        else if (ok)
            out[i] = ascii_lower(c);
    }
    if (!ok)
        return JID_FAST_REJECT;
    out[len] = '\0';
    return JID_FAST_OK;
}

jid_fast jid_fast_resource(const char *in, size_t len)
{
    bool ok = len > 0 && len <= TERN_JID_PART_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            return JID_FAST_UNSURE;
        if (c < 0x20 || c == 0x7f) /* C.2.1; Resourceprep allows the space */
            ok = false;
    }
    return ok ? JID_FAST_OK : JID_FAST_REJECT;
}

/* For domains the slow path's ASCII branch is already plain C (lowercase, strip one final dot,
 * LDH labels) except for IP literals (inet_pton) and A-labels (libidn2): those go to it. It is
 * repeated here in one pass, without its copies and allocations. */
static bool is_alabel_prefix(const char *label)
{
    return (label[0] | 0x20) == 'x' && (label[1] | 0x20) == 'n' && label[2] == '-' &&
           label[3] == '-'; /* strncasecmp(label, "xn--", 4) == 0 for ASCII */
}

jid_fast jid_fast_domain(const char *in, size_t len, char *out, size_t *out_len)
{
    if (len == 0)
        return JID_FAST_REJECT;
    if (in[0] == '[')
        return JID_FAST_UNSURE; /* an IPv6 literal, or invalid: inet_pton decides */
    size_t n = in[len - 1] == '.' ? len - 1 : len; /* strip_final_dot() */
    bool digits_and_dots = true, valid = n > 0, has_alabel = false;
    size_t start = 0; /* of the current label */
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)in[i] : '\0';
        if (c >= 0x80)
            return JID_FAST_UNSURE;
        if (i < n && c != '.') {
            if (c < '0' || c > '9')
                digits_and_dots = false;
            if (!is_ldh((char)c))
                valid = false;
            if (i < TERN_JID_PART_MAX)
                out[i] = ascii_lower(c);
            continue;
        }
        if (i > n) /* the final dot, already stripped */
            continue;
        /* The end of a label (valid_ldh_domain()): 1..63 octets, no hyphen at either end. */
        size_t label = i - start;
        if (label == 0 || label > 63 || in[start] == '-' || in[i - 1] == '-')
            valid = false;
        else if (label >= 4 && is_alabel_prefix(in + start))
            has_alabel = true;
        if (i < n && i < TERN_JID_PART_MAX)
            out[i] = '.';
        start = i + 1;
    }
    if (digits_and_dots)
        return JID_FAST_UNSURE; /* maybe an IPv4 literal: inet_pton accepts nothing else */
    if (!valid)
        return JID_FAST_REJECT;
    if (has_alabel)
        return JID_FAST_UNSURE;
    if (n > TERN_JID_PART_MAX)
        return JID_FAST_REJECT;
    out[n] = '\0';
    *out_len = n;
    return JID_FAST_OK;
}

/* ---- one part, fast path first ---- */

typedef enum part_kind { PART_NODE, PART_DOMAIN, PART_RESOURCE } part_kind;

/* A prepared part: `s` (`len` bytes, NUL-terminated) points into the caller's buffer, into the
 * input (an unchanged resource), or to `owned` (the slow path's result, freed by the caller). */
typedef struct prepared_part {
    const char *s;
    size_t len;
    char *owned;
} prepared_part;

/* Prepares `len` bytes of `in` (which need not end there). `buf` has TERN_JID_PART_MAX + 1 bytes.
 * Returns 0 or -1. */
static int prepare_part(part_kind kind, const char *in, size_t len, char *buf, prepared_part *p)
{
    p->owned = NULL;
    p->len = len;
    jid_fast fast;
    switch (kind) {
    case PART_NODE:
        fast = jid_fast_node(in, len, buf);
        p->s = buf;
        break;
    case PART_DOMAIN:
        fast = jid_fast_domain(in, len, buf, &p->len);
        p->s = buf;
        break;
    default:
        fast = jid_fast_resource(in, len);
        p->s = in; /* NUL-terminated: a resource always runs to the end of its string */
        break;
    }
    if (fast != JID_FAST_UNSURE)
        return fast == JID_FAST_OK ? 0 : -1;

    char *copy = xstrndup(in, len);
    int rc = kind == PART_NODE     ? jid_prep_node_slow(copy, &p->owned)
             : kind == PART_DOMAIN ? jid_prep_domain_slow(copy, &p->owned)
                                   : jid_prep_resource_slow(copy, &p->owned);
    free(copy);
    if (rc < 0)
        return -1;
    p->s = p->owned;
    p->len = strlen(p->owned);
    return 0;
}

static int prep_single(part_kind kind, const char *in, char **out)
{
    *out = NULL;
    if (!in)
        return -1;
    char buf[TERN_JID_PART_MAX + 1];
    prepared_part p;
    if (prepare_part(kind, in, strlen(in), buf, &p) < 0)
        return -1;
    *out = p.owned ? p.owned : xstrndup(p.s, p.len);
    return 0;
}

int jid_prep_node(const char *in, char **out) { return prep_single(PART_NODE, in, out); }
int jid_prep_domain(const char *in, char **out) { return prep_single(PART_DOMAIN, in, out); }
int jid_prep_resource(const char *in, char **out) { return prep_single(PART_RESOURCE, in, out); }

/* ---- whole JIDs ---- */

/* Builds a jid from already-prepared parts (node and resource may be NULL): one allocation
 * holding "node\0domain\0resource\0bare\0full\0". */
static void jid_build(tern_jid *out, const char *node, size_t nlen, const char *domain,
                      size_t dlen, const char *resource, size_t rlen)
{
    if (!node)
        nlen = 0;
    if (!resource)
        rlen = 0;
    size_t bare_len = (node ? nlen + 1 : 0) + dlen;
    size_t full_len = bare_len + (resource ? rlen + 1 : 0);
    char *p = xmalloc((nlen + 1) + (dlen + 1) + (rlen + 1) + (bare_len + 1) + (full_len + 1));
    memset(out, 0, sizeof *out);
    out->storage_ = p;

    if (node) {
        out->node = p;
        memcpy(p, node, nlen);
        p[nlen] = '\0';
        p += nlen + 1;
    }
    out->domain = p;
    memcpy(p, domain, dlen);
    p[dlen] = '\0';
    p += dlen + 1;
    if (resource) {
        out->resource = p;
        memcpy(p, resource, rlen);
        p[rlen] = '\0';
        p += rlen + 1;
    }
    out->bare = p;
    if (node) {
        memcpy(p, node, nlen);
        p[nlen] = '@';
        memcpy(p + nlen + 1, domain, dlen);
    } else {
        memcpy(p, domain, dlen);
    }
    p[bare_len] = '\0';
    p += bare_len + 1;
    out->full = p;
    memcpy(p, out->bare, bare_len);
    if (resource) {
        p[bare_len] = '/';
        memcpy(p + bare_len + 1, resource, rlen);
    }
    p[full_len] = '\0';
}

/* Prepares and joins parts given as (pointer, length); NULL node or resource means absent.
 * The checks run in this order so each input gets the same reason it always got. */
static int jid_prepare(const char *node, size_t nlen, const char *domain, size_t dlen,
                       const char *resource, size_t rlen, tern_jid *out, const char **why)
{
    memset(out, 0, sizeof *out);
    char node_buf[TERN_JID_PART_MAX + 1], domain_buf[TERN_JID_PART_MAX + 1];
    prepared_part pn = { 0 }, pd = { 0 }, pr = { 0 };
    int rc = -1;

    if (node && nlen == 0) {
        set_why(why, "empty localpart");
    } else if (node && prepare_part(PART_NODE, node, nlen, node_buf, &pn) < 0) {
        set_why(why, "invalid localpart");
    } else if (!domain || dlen == 0) {
        set_why(why, "empty domainpart");
    } else if (prepare_part(PART_DOMAIN, domain, dlen, domain_buf, &pd) < 0) {
        set_why(why, "invalid domainpart");
    } else if (resource && rlen == 0) {
        set_why(why, "empty resourcepart");
    } else if (resource && prepare_part(PART_RESOURCE, resource, rlen, NULL, &pr) < 0) {
        set_why(why, "invalid resourcepart");
    } else {
        jid_build(out, node ? pn.s : NULL, pn.len, pd.s, pd.len, resource ? pr.s : NULL, pr.len);
        rc = 0;
    }
    free(pn.owned);
    free(pd.owned);
    free(pr.owned);
    return rc;
}

int jid_from_parts(const char *node, const char *domain, const char *resource, tern_jid *out,
                   const char **why)
{
    return jid_prepare(node, node ? strlen(node) : 0, domain, domain ? strlen(domain) : 0,
                       resource, resource ? strlen(resource) : 0, out, why);
}

int jid_parse(const char *text, tern_jid *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (!text) {
        set_why(why, "empty JID");
        return -1;
    }
    /* RFC 7622 §3.1: the resourcepart is everything after the first '/', and the localpart is
     * what precedes the first '@' in the rest. The resourcepart may itself contain '@' and '/'.
     * The parts are prepared in place, without copies. */
    const char *slash = strchr(text, '/');
    size_t rest_len = slash ? (size_t)(slash - text) : strlen(text);
    const char *at = memchr(text, '@', rest_len);
    const char *domain = at ? at + 1 : text;
    return jid_prepare(at ? text : NULL, at ? (size_t)(at - text) : 0, domain,
                       rest_len - (size_t)(domain - text), slash ? slash + 1 : NULL,
                       slash ? strlen(slash + 1) : 0, out, why);
}

void jid_copy(tern_jid *dst, const tern_jid *src)
{
    if (!src->domain) {
        memset(dst, 0, sizeof *dst);
        return;
    }
    jid_build(dst, src->node, src->node ? strlen(src->node) : 0, src->domain,
              strlen(src->domain), src->resource, src->resource ? strlen(src->resource) : 0);
}

void jid_bare(tern_jid *dst, const tern_jid *src)
{
    if (!src->domain) {
        memset(dst, 0, sizeof *dst);
        return;
    }
    jid_build(dst, src->node, src->node ? strlen(src->node) : 0, src->domain,
              strlen(src->domain), NULL, 0);
}

void jid_free(tern_jid *jid)
{
    free(jid->storage_);
    memset(jid, 0, sizeof *jid);
}

/* Prepared JIDs compare octet for octet (RFC 7622 §3: comparison happens after preparation). */
bool jid_equal(const tern_jid *a, const tern_jid *b)
{
    if (!a->full || !b->full)
        return a->full == b->full;
    return strcmp(a->full, b->full) == 0;
}

bool jid_equal_bare(const tern_jid *a, const tern_jid *b)
{
    if (!a->bare || !b->bare)
        return a->bare == b->bare;
    return strcmp(a->bare, b->bare) == 0;
}
