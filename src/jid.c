/* jid.c — parsing and preparation of JIDs (RFC 7622).
 *
 * RFC 7622 prepares the localpart with the PRECIS UsernameCaseMapped profile and the resourcepart
 * with OpaqueString. Debian 12 has no PRECIS library, so we use the stringprep profiles that
 * RFC 3920/6122 defined for the same purpose (libidn's Nodeprep and Resourceprep) and IDNA2008
 * with UTS#46 mapping (libidn2) for the domainpart; doc/jid-and-sasl.md explains where the two
 * disagree and why that is acceptable. Every prepared JID is stored in one allocation so a jid is
 * freed in one go. */
#include "tern/jid.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>
#include <strings.h>

#include "util.h"

static void set_why(const char **why, const char *reason)
{
    if (why)
        *why = reason;
}

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

int jid_prep_node(const char *in, char **out)
{
    return stringprep_part(in, "Nodeprep", out);
}

int jid_prep_resource(const char *in, char **out)
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

int jid_prep_domain(const char *in, char **out)
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

/* Builds a jid from already-prepared parts: one allocation holding
 * "node\0domain\0resource\0bare\0full\0". */
static void jid_build(tern_jid *out, const char *node, const char *domain, const char *resource)
{
    size_t nlen = node ? strlen(node) : 0;
    size_t dlen = strlen(domain);
    size_t rlen = resource ? strlen(resource) : 0;
    size_t bare_len = (node ? nlen + 1 : 0) + dlen;
    size_t full_len = bare_len + (resource ? rlen + 1 : 0);
    char *p = xmalloc((nlen + 1) + (dlen + 1) + (rlen + 1) + (bare_len + 1) + (full_len + 1));
    memset(out, 0, sizeof *out);
    out->storage_ = p;

    if (node) {
        out->node = p;
        memcpy(p, node, nlen + 1);
        p += nlen + 1;
    }
    out->domain = p;
    memcpy(p, domain, dlen + 1);
    p += dlen + 1;
    if (resource) {
        out->resource = p;
        memcpy(p, resource, rlen + 1);
        p += rlen + 1;
    }
    out->bare = p;
    if (node) {
        memcpy(p, node, nlen);
        p[nlen] = '@';
        memcpy(p + nlen + 1, domain, dlen + 1);
    } else {
        memcpy(p, domain, dlen + 1);
    }
    p += bare_len + 1;
    out->full = p;
    memcpy(p, out->bare, bare_len);
    if (resource) {
        p[bare_len] = '/';
        memcpy(p + bare_len + 1, resource, rlen + 1);
    } else {
        p[bare_len] = '\0';
    }
}

int jid_from_parts(const char *node, const char *domain, const char *resource, tern_jid *out,
                   const char **why)
{
    memset(out, 0, sizeof *out);
    char *pnode = NULL, *pdomain = NULL, *presource = NULL;
    int rc = -1;

    if (node && *node == '\0') {
        set_why(why, "empty localpart");
    } else if (node && jid_prep_node(node, &pnode) < 0) {
        set_why(why, "invalid localpart");
    } else if (!domain || *domain == '\0') {
        set_why(why, "empty domainpart");
    } else if (jid_prep_domain(domain, &pdomain) < 0) {
        set_why(why, "invalid domainpart");
    } else if (resource && *resource == '\0') {
        set_why(why, "empty resourcepart");
    } else if (resource && jid_prep_resource(resource, &presource) < 0) {
        set_why(why, "invalid resourcepart");
    } else {
        jid_build(out, pnode, pdomain, presource);
        rc = 0;
    }
    free(pnode);
    free(pdomain);
    free(presource);
    return rc;
}

int jid_parse(const char *text, tern_jid *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (!text) {
        set_why(why, "empty JID");
        return -1;
    }
    /* RFC 7622 §3.1: the resourcepart is everything after the first '/', and the localpart is
     * what precedes the first '@' in the rest. The resourcepart may itself contain '@' and '/'. */
    const char *slash = strchr(text, '/');
    size_t rest_len = slash ? (size_t)(slash - text) : strlen(text);
    const char *at = memchr(text, '@', rest_len);

    char *node = at ? xstrndup(text, (size_t)(at - text)) : NULL;
    const char *domain_start = at ? at + 1 : text;
    char *domain = xstrndup(domain_start, rest_len - (size_t)(domain_start - text));
    int rc = jid_from_parts(node, domain, slash ? slash + 1 : NULL, out, why);
    free(node);
    free(domain);
    return rc;
}

void jid_copy(tern_jid *dst, const tern_jid *src)
{
    if (!src->domain) {
        memset(dst, 0, sizeof *dst);
        return;
    }
    jid_build(dst, src->node, src->domain, src->resource);
}

void jid_bare(tern_jid *dst, const tern_jid *src)
{
    if (!src->domain) {
        memset(dst, 0, sizeof *dst);
        return;
    }
    jid_build(dst, src->node, src->domain, NULL);
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
