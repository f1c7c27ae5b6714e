/* jid_prep.h — internal to src/core/jid.c and its unit test: the two ways a JID part is prepared.
 *
 * The slow path is the reference: libidn's Nodeprep and Resourceprep, and libidn2 (IDNA2008)
 * for domains. The fast path handles the common all-ASCII part without them and must give
 * exactly the slow path's answer; when it cannot be sure (any byte >= 0x80, an IP literal, an
 * A-label) it says so and the caller takes the slow path. tests/unit/test_jid.c checks the two
 * agree. */
#ifndef TERN_JID_PREP_H
#define TERN_JID_PREP_H

#include <stddef.h>

#include "tern/jid.h"

typedef enum jid_fast {
    JID_FAST_REJECT = -1, /* the slow path would refuse it */
    JID_FAST_UNSURE = 0,  /* take the slow path */
    JID_FAST_OK = 1,      /* prepared: the slow path would give the same bytes */
} jid_fast;

/* `in` is `len` bytes (no NUL among them). `out` has room for TERN_JID_PART_MAX + 1 bytes and
 * receives the prepared part, NUL-terminated, when the answer is JID_FAST_OK. */
jid_fast jid_fast_node(const char *in, size_t len, char *out);
jid_fast jid_fast_domain(const char *in, size_t len, char *out, size_t *out_len);
/* Resourceprep leaves an accepted ASCII resource unchanged, so there is no output. */
jid_fast jid_fast_resource(const char *in, size_t len);

/* The reference path; same contract as jid_prep_node() and friends in tern/jid.h. */
int jid_prep_node_slow(const char *in, char **out);
int jid_prep_domain_slow(const char *in, char **out);
int jid_prep_resource_slow(const char *in, char **out);

#endif
