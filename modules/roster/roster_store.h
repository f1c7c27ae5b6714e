/* roster_store.h — how the roster module stores an account's roster: one record per contact
 * in the map store "roster" (the layout is in roster.c's header comment), read one record at
 * a time, and written as one storage_map_apply per change. Also converts a roster an older
 * ternd stored as one blob. Private to modules/roster/. */
#ifndef TERN_ROSTER_STORE_H
#define TERN_ROSTER_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <tern/module.h>

#define NS_ROSTER       "jabber:iq:roster"
#define NS_RECORD       "urn:tern:roster:1"  /* the old blob's namespace */
#define ROSTER_STORE    "roster"
#define META_KEY        "meta"

/* A record's key: "i <jid>", "p <jid>", or, when that would be too long for storage, the
 * kind and a hash of the JID (roster_store.c). */
#define RECORD_KEY_BUF 320

/* What the roster of one account has to say about itself: its version and how many items and
 * pending requests it holds (so the limits are checked without reading them all). */
typedef struct roster_meta {
    unsigned long long ver;
    char epoch[25];          /* "" until the first write */
    unsigned long items, pending;
    char ver_text[48];       /* what clients see (RFC 6121 §2.1.1: an opaque string) */
} roster_meta;

/* The changes of one roster update, committed by roster_write_commit in one storage_map_apply: the
 * records that changed and, when the version or a count changed, "meta". */
#define WRITE_MAX 3

typedef struct roster_write {
    storage_map_change changes[WRITE_MAX];
    char keys[WRITE_MAX][RECORD_KEY_BUF];
    tern_buf values[WRITE_MAX];
    size_t n;
} roster_write;

/* The account's meta record, converting an old roster first: 0, or -1 on error (logged). An
 * account whose roster was never written has version 0, no epoch and no records. */
int roster_meta_load(tern_host *host, const char *owner, roster_meta *m);

/* One record of contact, kind 'i' (its item) or 'p' (its pending-in request): 1 and *out
 * (xml_unref it), 0 when absent, -1 on error. */
int roster_record_get(tern_host *host, const char *owner, char kind, const char *contact,
                      tern_xml **out);
/* The owner's item for contact, as roster_record_get, converting an old roster when it is not
 * found. One read when the contact is there: this runs on every presence. */
int roster_item_get(tern_host *host, const char *owner, const char *contact, tern_xml **item);
/* Calls fn with each parsed record of `kind` (call roster_meta_load first, so an old roster
 * is converted); fn returns 0 to go on. Records are read in batches outside any storage
 * transaction, so fn may use storage and send stanzas. 0, or -1 on error. */
int roster_each_record(tern_host *host, const char *owner, char kind,
                       int (*fn)(void *ctx, tern_xml *record), void *ctx);

/* One change: init, add the records that changed (x NULL deletes) and meta when the version
 * or a count changed (at most WRITE_MAX in all; roster_write_meta also stamps the epoch at a
 * roster's first write and refreshes m->ver_text), then commit: 0, or what storage said
 * (nothing was written then). commit frees w either way. */
void roster_write_init(roster_write *w);
void roster_write_record(roster_write *w, char kind, const char *owner, const char *contact,
                         const tern_xml *x);
void roster_write_meta(roster_write *w, roster_meta *m);
int roster_write_commit(tern_host *host, const char *owner, roster_write *w);

#endif
