/* store/lmdb/lmdb_archive.c — the archive store of the LMDB backend: an append-only,
 * id-ordered log per owner (offline messages, message archives), on the environment of
 * lmdb_env.c.
 *
 * Layouts (see lmdb_env.c for why "owner\0" is a safe prefix):
 *   "arc:<store>"  key:   owner '\0' id (8 bytes, big-endian, so key order is id order)
 *                  value: when (8 bytes BE) | peer length (2 bytes BE) | peer | payload
 *   "meta"         "\0seq:<store>" → last archive id handed out in that store (8 bytes BE)
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

struct append_arg {
    MDB_dbi dbi, meta;
    const char *store;
    key_buf *k;          /* owner + '\0'; the id is written after the prefix */
    unsigned char *value;
    size_t len;
    size_t max_items;    /* 0: no bound */
    uint64_t id;
};

/* Whether the owner of k has max items or more, counted in txn (stops counting at max). */
static int owner_has(MDB_txn *txn, MDB_dbi dbi, const key_buf *k, size_t max, bool *full)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    size_t n = 0;
    MDB_val key = { k->prefix_len, (void *)k->data }, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && lmdb_key_has_prefix(&key, k) && n < max;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        n++;
    mdb_cursor_close(cur);
    *full = n >= max;
    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* Takes the next id from the store's counter and writes counter and item in one transaction,
 * so ids never repeat, even after the newest item was deleted. */
static int append_op(MDB_txn *txn, void *arg)
{
    struct append_arg *a = arg;
    char sbuf[256];
    MDB_val skey, sval;
    int rc;
    if (a->max_items) {
        bool full;
        if ((rc = owner_has(txn, a->dbi, a->k, a->max_items, &full)))
            return rc;
        if (full)
            return TERN_STORAGE_LIMIT; /* passed on by lmdb_write, unlogged */
    }
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
    struct append_arg a = { dbi, meta, store, &k, value, vlen, max_items, 0 };
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

int lmdb_archive_delete(void *db, const char *store, const char *owner, uint64_t id)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    unsigned char idbuf[8];
    put_be64(idbuf, id);
    if (lmdb_get_dbi(st, "arc", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, true, idbuf, 8) < 0)
        return -1;
    return lmdb_delete_key(st, dbi, &k, "archive delete");
}

/* Leaves the store's id counter alone: ids stay unique across a clear. */
int lmdb_archive_clear(void *db, const char *store, const char *owner)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "arc", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, true, NULL, 0) < 0)
        return -1;
    return lmdb_delete_prefix(st, dbi, &k, "archive clear");
}

int lmdb_archive_count(void *db, const char *store, const char *owner, size_t *count)
{
    lmdb_db *st = db;
    MDB_dbi dbi;
    key_buf k;
    if (lmdb_get_dbi(st, "arc", store, &dbi) < 0 ||
        lmdb_key_make(st, &k, owner, true, NULL, 0) < 0)
        return -1;
    MDB_txn *txn;
    MDB_cursor *cur;
    if (lmdb_read_begin(st, &txn, "archive count") < 0)
        return -1;
    size_t n = 0;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc == 0) {
        MDB_val key = { k.prefix_len, k.data }, val;
        for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
             rc == 0 && lmdb_key_has_prefix(&key, &k);
             rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
            n++;
        if (rc == MDB_NOTFOUND || rc == 0)
            rc = 0;
        mdb_cursor_close(cur);
    }
    lmdb_read_end(st, txn);
    if (rc) {
        log_error(0, "storage: archive count: %s", mdb_strerror(rc));
        return -1;
    }
    *count = n;
    return 0;
}