/* store/lmdb/lmdb_archive.c — the archive store of the LMDB backend: an append-only,
 * id-ordered log per owner (offline messages, message archives), on the environment of
 * lmdb_env.c.
 *
 * Layouts (see lmdb_env.c for why "owner\0" is a safe prefix):
 *   "arc:<store>"  key:   owner '\0' id (8 bytes, big-endian, so key order is id order)
 *                  value: when (8 bytes BE) | peer length (2 bytes BE) | peer | payload
 *   "meta"         "\0seq:<store>" → last archive id handed out in that store (8 bytes BE)
 *                  "\0cnt:<store>\0<owner>" → how many items the owner has there (8 bytes BE)
 *
 * The item count makes a quota check (max_items) and archive_count O(1) instead of a walk over
 * the owner's items. It is present only when exact: an append writes it (counting the items
 * once when it is missing: an archive written before counts existed), a delete and a clear keep
 * it exact, and an owner whose count key would be too long for LMDB is counted by walking.
 *
 * As everywhere in the storage layer, lmdb_archive_query's callback never runs inside a
 * transaction: matches are copied out in batches and delivered after the read transaction
 * ends, so the callback may call back into storage. */
#include "store/lmdb/lmdb_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "tern/log.h"

/* Bytes before the peer in a stored value: when (8) + peer length (2). */
#define ARCHIVE_HEADER_LEN 10

/* ---- big-endian helpers ---- */

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- append ---- */

static void seq_key(char *buf, size_t size, const char *store, MDB_val *key)
{
    /* The leading NUL keeps counters apart from anything else "meta" might hold later. */
    int n = snprintf(buf, size, "%cseq:%s", '\0', store);
    key->mv_data = buf;
    key->mv_size = (size_t)n < size ? (size_t)n : size - 1;
}

/* The item-count key of k's owner in `store`; false when it would be too long (then there is
 * no count, and counting walks the items). */
static bool count_key(lmdb_db *st, const char *store, const key_buf *k, unsigned char *buf,
                      MDB_val *key)
{
    size_t store_len = strlen(store), owner_len = k->prefix_len - 1;
    size_t len = 5 + store_len + 1 + owner_len;
    if (len >= LMDB_KEY_BUF || len > lmdb_max_key(st))
        return false;
    memcpy(buf, "\0cnt:", 5);
    memcpy(buf + 5, store, store_len);
    buf[5 + store_len] = '\0';
    memcpy(buf + 6 + store_len, k->data, owner_len);
    key->mv_data = buf;
    key->mv_size = len;
    return true;
}

/* Counts k's owner's items by walking them, stopping at max (0: no stop). */
static int walk_count(MDB_txn *txn, MDB_dbi dbi, const key_buf *k, size_t max, uint64_t *n)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    *n = 0;
    MDB_val key = { k->prefix_len, (void *)k->data }, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && lmdb_key_has_prefix(&key, k) && (!max || *n < max);
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        (*n)++;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The owner's item count from its key; *present false when there is none. */
static int read_count(MDB_txn *txn, MDB_dbi meta, const MDB_val *ckey, uint64_t *n,
                      bool *present)
{
    MDB_val val;
    int rc = mdb_get(txn, meta, (MDB_val *)ckey, &val);
    *present = rc == 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && val.mv_size != 8)
        return MDB_CORRUPTED;
    if (rc == 0)
        *n = get_be64(val.mv_data);
    return rc;
}

/* The owner's item count: from its key when there is one (*present), else walked. */
static int item_count(MDB_txn *txn, MDB_dbi dbi, MDB_dbi meta, const MDB_val *ckey,
                      const key_buf *k, uint64_t *n, bool *present)
{
    *present = false;
    if (ckey) {
        int rc = read_count(txn, meta, ckey, n, present);
        if (rc || *present)
            return rc;
    }
    return walk_count(txn, dbi, k, 0, n);
}

static int put_count(MDB_txn *txn, MDB_dbi meta, const MDB_val *ckey, uint64_t n)
{
    unsigned char buf[8];
    put_be64(buf, n);
    MDB_val val = { 8, buf };
    return mdb_put(txn, meta, (MDB_val *)ckey, &val, 0);
}

struct append_arg {
    MDB_dbi dbi, meta;
    const char *store;
    key_buf *k;          /* owner + '\0'; the id is written after the prefix */
    const MDB_val *ckey; /* the owner's item-count key, or NULL */
    unsigned char *value;
    size_t len;
    size_t max_items;    /* 0: no bound */
    uint64_t id;
};

/* Takes the next id from the store's counter and writes counter, item and item count in one
 * transaction, so ids never repeat, even after the newest item was deleted. */
static int append_op(MDB_txn *txn, void *arg)
{
    struct append_arg *a = arg;
    char sbuf[256];
    MDB_val skey, sval;
    int rc;
    uint64_t items = 0;
    bool present = false;
    if (a->ckey) {
        if ((rc = item_count(txn, a->dbi, a->meta, a->ckey, a->k, &items, &present)))
            return rc;
    } else if (a->max_items && (rc = walk_count(txn, a->dbi, a->k, a->max_items, &items))) {
        return rc;
    }
    if (a->max_items && items >= a->max_items)
        return TERN_STORAGE_LIMIT; /* passed on by lmdb_write, unlogged */
    seq_key(sbuf, sizeof sbuf, a->store, &skey);
    rc = mdb_get(txn, a->meta, &skey, &sval);
    uint64_t last = 0;
    if (rc == 0 && sval.mv_size == 8)
        last = get_be64(sval.mv_data);
    else if (rc == 0)
        return MDB_CORRUPTED;
    else if (rc != MDB_NOTFOUND)
        return rc;
    a->id = last + 1;
    unsigned char idbuf[8];
    put_be64(idbuf, a->id);
    sval.mv_data = idbuf;
    sval.mv_size = 8;
    if ((rc = mdb_put(txn, a->meta, &skey, &sval, 0)))
        return rc;
    if (a->ckey && (rc = put_count(txn, a->meta, a->ckey, items + 1)))
        return rc;
    put_be64(a->k->data + a->k->prefix_len, a->id);
    MDB_val key = { a->k->prefix_len + 8, a->k->data }, val = { a->len, a->value };
    /* Ids only grow, so the item always sorts last: MDB_APPEND would do, but a plain put
     * stays correct even if an older file held odd keys. */
    return mdb_put(txn, a->dbi, &key, &val, MDB_NOOVERWRITE);
}

int lmdb_archive_append(void *db, const char *store, const char *owner, time_t when,
                        const char *peer, const void *payload, size_t len, size_t max_items,
                        uint64_t *id_out)
{
    lmdb_db *st = db;
    MDB_dbi dbi, meta;
    key_buf k;
    unsigned char zero[8] = { 0 };
    if (lmdb_get_dbi(st, "arc", store, &dbi) < 0 ||
        lmdb_get_dbi(st, "meta", NULL, &meta) < 0 ||
        lmdb_key_make(st, &k, owner, true, zero, 8) < 0)
        return -1;
    size_t peer_len = peer ? strlen(peer) : 0;
    if (peer_len > 0xffff) {
        log_error(0, "storage: archive append: %s", "peer too long");
        return -1;
    }
    size_t vlen = ARCHIVE_HEADER_LEN + peer_len + len;
    unsigned char *value = xmalloc(vlen);
    put_be64(value, (uint64_t)(int64_t)when);
    value[8] = (unsigned char)(peer_len >> 8);
    value[9] = (unsigned char)peer_len;
    if (peer_len)
        memcpy(value + ARCHIVE_HEADER_LEN, peer, peer_len);
    if (len)
        memcpy(value + ARCHIVE_HEADER_LEN + peer_len, payload, len);
    unsigned char cbuf[LMDB_KEY_BUF];
    MDB_val ckey;
    bool counted = count_key(st, store, &k, cbuf, &ckey);
    struct append_arg a = { dbi, meta, store, &k, counted ? &ckey : NULL, value, vlen, max_items,
                            0 };
    int ret = lmdb_write(st, "archive append", append_op, &a);
    free(value);
    if (ret == 0 && id_out)
        *id_out = a.id;
    return ret;
}

/* ---- query ---- */

/* Decodes a stored item in place (pointers into LMDB's map). peer is not NUL-terminated:
 * *peer_len says how long it is. */
static int archive_decode(const MDB_val *key, const MDB_val *val, size_t prefix_len,
                          storage_archive_item *item, size_t *peer_len)
{
    if (key->mv_size != prefix_len + 8 || val->mv_size < ARCHIVE_HEADER_LEN)
        return -1;
    const unsigned char *v = val->mv_data;
    *peer_len = (size_t)v[8] << 8 | v[9];
    if (val->mv_size < ARCHIVE_HEADER_LEN + *peer_len)
        return -1;
    item->id = get_be64((const unsigned char *)key->mv_data + prefix_len);
    item->when = (time_t)(int64_t)get_be64(v);
    item->peer = *peer_len ? (const char *)v + ARCHIVE_HEADER_LEN : NULL;
    item->payload = v + ARCHIVE_HEADER_LEN + *peer_len;
    item->payload_len = val->mv_size - ARCHIVE_HEADER_LEN - *peer_len;
    return 0;
}

static bool archive_matches(const storage_archive_item *item, size_t peer_len,
                            const struct storage_archive_query *q)
{
    if (q->start && item->when < q->start)
        return false;
    if (q->end && item->when > q->end)
        return false;
    if (q->peer && (!item->peer || peer_len != strlen(q->peer) ||
                    memcmp(item->peer, q->peer, peer_len) != 0))
        return false;
    return true;
}

/* Positions the cursor on the first key to look at: the first id > after (forward) or the
 * last id < before (reverse), 0 = unbounded. Returns an MDB code; MDB_NOTFOUND = nothing. */
static int archive_seek(MDB_cursor *cur, key_buf *k, uint64_t after, uint64_t before, int reverse,
                        MDB_val *key, MDB_val *val)
{
    if (!reverse) {
        if (after == UINT64_MAX)
            return MDB_NOTFOUND;
        put_be64(k->data + k->prefix_len, after + 1);
        key->mv_size = k->prefix_len + 8;
        key->mv_data = k->data;
        return mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    }
    /* Reverse: seek to the first key at or past the bound, then step back one. Without an
     * upper bound the bound is owner '\1', which sorts after every owner '\0' <id>. */
    unsigned char seek[LMDB_KEY_BUF];
    memcpy(seek, k->data, k->prefix_len);
    size_t seek_len;
    if (before) {
        put_be64(seek + k->prefix_len, before);
        seek_len = k->prefix_len + 8;
    } else {
        seek[k->prefix_len - 1] = '\1';
        seek_len = k->prefix_len;
    }
    key->mv_size = seek_len;
    key->mv_data = seek;
    int rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    if (rc == 0)
        return mdb_cursor_get(cur, key, val, MDB_PREV);
    if (rc == MDB_NOTFOUND)
        return mdb_cursor_get(cur, key, val, MDB_LAST);
    return rc;
}

struct archive_batch {
    storage_archive_item items[LMDB_BATCH_ITEMS];
    size_t n;
};

static void archive_batch_free(struct archive_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((void *)b->items[i].peer);
        free((void *)b->items[i].payload);
    }
    b->n = 0;
}

/* One read transaction of a query: collects up to `want` matching items with after < id <
 * before. *done is set when nothing is left to look at; *more when a match was seen beyond
 * `want` (the query's max). Returns 0 or an MDB code. */
static int archive_collect(lmdb_db *st, MDB_dbi dbi, key_buf *k,
                           const struct storage_archive_query *q, uint64_t after, uint64_t before,
                           size_t want, struct archive_batch *b, bool *done, bool *more)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = lmdb_txn_begin(st, MDB_RDONLY, &txn, NULL);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, dbi, &cur))) {
        lmdb_read_end(st, txn);
        return rc;
    }
    size_t cap = want < LMDB_BATCH_ITEMS ? want : LMDB_BATCH_ITEMS, bytes = 0;
    MDB_val key, val;
    *done = false;
    for (rc = archive_seek(cur, k, after, before, q->reverse, &key, &val); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, q->reverse ? MDB_PREV : MDB_NEXT)) {
        if (!lmdb_key_has_prefix(&key, k))
            break;
        storage_archive_item item;
        size_t peer_len;
        if (archive_decode(&key, &val, k->prefix_len, &item, &peer_len) < 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        if ((!q->reverse && before && item.id >= before) || (q->reverse && item.id <= after))
            break;
        if (!archive_matches(&item, peer_len, q))
            continue;
        if (b->n == want) {
            *more = true;  /* one match past max is all "more" needs */
            break;
        }
        if (b->n == cap || bytes >= LMDB_BATCH_BYTES)
            goto out;  /* batch full: the caller resumes after the last item */
        storage_archive_item *copy = &b->items[b->n++];
        *copy = item;
        copy->peer = item.peer ? xstrndup(item.peer, peer_len) : NULL;
        void *payload = xmalloc(item.payload_len);
        if (item.payload_len)
            memcpy(payload, item.payload, item.payload_len);
        copy->payload = payload;
        bytes += item.payload_len;
    }
    if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = 0;
        *done = true;
    }
out:
    mdb_cursor_close(cur);
    lmdb_read_end(st, txn);
    return rc;
}

int lmdb_archive_query(void *db, const char *store, const char *owner,
                       const struct storage_archive_query *q,
                       int (*fn)(void *ctx, const storage_archive_item *item), void *ctx)
{
    lmdb_db *st = db;
    static const struct storage_archive_query all;
    MDB_dbi dbi;
    key_buf k;
    unsigned char zero[8] = { 0 };
    if (!q)
        q = &all;
    if (lmdb_get_dbi(st, "arc", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, true, zero, 8) < 0)
        return -1;
    uint64_t after = q->after_id, before = q->before_id;
    size_t delivered = 0;
    struct archive_batch *b = xcalloc(1, sizeof *b);
    int ret;
    for (;;) {
        bool done = false, more = false;
        size_t want = q->max ? q->max - delivered : SIZE_MAX;
        int rc = archive_collect(st, dbi, &k, q, after, before, want, b, &done, &more);
        if (rc) {
            log_error(0, "storage: archive query: %s", mdb_strerror(rc));
            archive_batch_free(b);
            ret = -1;
            break;
        }
        bool stop = false;
        for (size_t i = 0; i < b->n && !stop; i++)
            stop = fn(ctx, &b->items[i]) != 0;
        if (b->n) {
            if (q->reverse)
                before = b->items[b->n - 1].id;
            else
                after = b->items[b->n - 1].id;
        }
        delivered += b->n;
        archive_batch_free(b);
        if (stop || done) {
            ret = !stop && more ? 1 : 0;
            break;
        }
    }
    free(b);
    return ret;
}

/* ---- delete, clear, count ---- */

struct remove_arg {
    MDB_dbi dbi, meta;
    const key_buf *k;    /* owner '\0' id for a delete; owner '\0' for a clear */
    const MDB_val *ckey; /* the owner's item-count key, or NULL */
};

/* One item, and the count down by one when it was there. */
static int delete_op(MDB_txn *txn, void *arg)
{
    struct remove_arg *a = arg;
    MDB_val key = { a->k->len, (void *)a->k->data };
    int rc = mdb_del(txn, a->dbi, &key, NULL);
    if (rc == MDB_NOTFOUND)
        return 0; /* deleting what is absent is not an error */
    if (rc || !a->ckey)
        return rc;
    uint64_t n = 0;
    bool present;
    if ((rc = read_count(txn, a->meta, a->ckey, &n, &present)) || !present)
        return rc; /* no count yet: the next append walks and writes one */
    return put_count(txn, a->meta, a->ckey, n ? n - 1 : 0);
}

/* Every item of the owner, and its count. */
static int clear_op(MDB_txn *txn, void *arg)
{
    struct remove_arg *a = arg;
    int rc = lmdb_delete_prefix_in(txn, a->dbi, a->k);
    if (rc == 0 && a->ckey) {
        rc = mdb_del(txn, a->meta, (MDB_val *)a->ckey, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    return rc;
}

/* The dbis and keys of a delete (id given) or a clear of owner's items in store. */
static int remove_prepare(lmdb_db *st, const char *store, const char *owner, const uint64_t *id,
                          struct remove_arg *a, key_buf *k, unsigned char *cbuf, MDB_val *ckey)
{
    unsigned char idbuf[8];
    if (id)
        put_be64(idbuf, *id);
    if (lmdb_get_dbi(st, "arc", store, &a->dbi) < 0 ||
        lmdb_get_dbi(st, "meta", NULL, &a->meta) < 0 ||
        lmdb_key_make(st, k, owner, true, id ? idbuf : NULL, id ? 8 : 0) < 0)
        return -1;
    a->k = k;
    a->ckey = count_key(st, store, k, cbuf, ckey) ? ckey : NULL;
    return 0;
}

int lmdb_archive_delete(void *db, const char *store, const char *owner, uint64_t id)
{
    lmdb_db *st = db;
    struct remove_arg a;
    key_buf k;
    unsigned char cbuf[LMDB_KEY_BUF];
    MDB_val ckey;
    if (remove_prepare(st, store, owner, &id, &a, &k, cbuf, &ckey) < 0)
        return -1;
    return lmdb_write(st, "archive delete", delete_op, &a);
}

/* Leaves the store's id counter alone: ids stay unique across a clear. */
int lmdb_archive_clear(void *db, const char *store, const char *owner)
{
    lmdb_db *st = db;
    struct remove_arg a;
    key_buf k;
    unsigned char cbuf[LMDB_KEY_BUF];
    MDB_val ckey;
    if (remove_prepare(st, store, owner, NULL, &a, &k, cbuf, &ckey) < 0)
        return -1;
    return lmdb_write(st, "archive clear", clear_op, &a);
}

int lmdb_archive_count(void *db, const char *store, const char *owner, size_t *count)
{
    lmdb_db *st = db;
    struct remove_arg a;
    key_buf k;
    unsigned char cbuf[LMDB_KEY_BUF];
    MDB_val ckey;
    if (remove_prepare(st, store, owner, NULL, &a, &k, cbuf, &ckey) < 0)
        return -1;
    MDB_txn *txn;
    if (lmdb_read_begin(st, &txn, "archive count") < 0)
        return -1;
    uint64_t n = 0;
    bool present;
    int rc = item_count(txn, a.dbi, a.meta, a.ckey, &k, &n, &present);
    lmdb_read_end(st, txn);
    if (rc) {
        log_error(0, "storage: archive count: %s", mdb_strerror(rc));
        return -1;
    }
    *count = (size_t)n;
    return 0;
}
