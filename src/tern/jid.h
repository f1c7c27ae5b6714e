/* tern/jid.h — JIDs (RFC 7622): parsing and preparation.
 *
 * Preparation uses libidn's stringprep profiles (Nodeprep, Resourceprep; RFC 3920/6122) for the
 * localpart and resourcepart and libidn2 (IDNA2008, UTS#46 mapping) for the domainpart, which is
 * kept in its Unicode form, lowercased, without a trailing dot. IP literals ("127.0.0.1",
 * "[::1]") are accepted as domains. Each part is 1..1023 bytes after preparation. */
#ifndef TERN_JID_H
#define TERN_JID_H

#include <stdbool.h>

/* A prepared JID. All strings point into `storage_`, which the jid owns. */
typedef struct tern_jid {
    const char *node;     /* NULL when absent */
    const char *domain;
    const char *resource; /* NULL when absent */
    const char *bare;     /* "node@domain" or "domain" */
    const char *full;     /* bare, plus "/resource" when there is one */
    char *storage_;
} tern_jid;

#define TERN_JID_PART_MAX 1023

/* Parses and prepares `text`. Returns 0, or -1 with *why set to a static English reason (the
 * caller answers with jid-malformed). On failure *out is zeroed and owns nothing. */
int jid_parse(const char *text, tern_jid *out, const char **why);
/* Prepares and joins parts (node and resource may be NULL). Same contract as jid_parse. */
int jid_from_parts(const char *node, const char *domain, const char *resource,
                   tern_jid *out, const char **why);
void jid_copy(tern_jid *dst, const tern_jid *src);
/* The bare JID of src as a new jid. */
void jid_bare(tern_jid *dst, const tern_jid *src);
void jid_free(tern_jid *jid); /* frees storage_ and zeroes the struct; safe on a zeroed jid */

/* Single-part preparation; the result is malloc'd and the caller frees it. -1 on failure. */
int jid_prep_node(const char *in, char **out);
int jid_prep_domain(const char *in, char **out);
int jid_prep_resource(const char *in, char **out);

bool jid_equal(const tern_jid *a, const tern_jid *b);      /* full JIDs equal */
bool jid_equal_bare(const tern_jid *a, const tern_jid *b); /* bare parts equal */

#endif
