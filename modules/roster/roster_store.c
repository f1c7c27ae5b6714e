/* roster_store.c — the roster's records in the map store "roster" (roster_store.h; the
 * layout is in roster.c's header comment), and the conversion of a roster an older ternd
 * stored as one XML blob in the keyval store of the same name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/module.h>

#include "roster_store.h"

/* ---- records ---- */

static void meta_set_ver_text(roster_meta *m)
{
    if (m->ver == 0 || !m->epoch[0])
        snprintf(m->ver_text, sizeof m->ver_text, "%llu", m->ver);
    else
        snprintf(m->ver_text, sizeof m->ver_text, "%s-%llu", m->epoch, m->ver);
}

static void meta_set_epoch(roster_meta *m, const char *epoch)
{
    /* An epoch is a word (hex seconds when ternd writes it): cut at the first space. */
    size_t len = epoch ? strcspn(epoch, " \t\r\n") : 0;
    if (len >= sizeof m->epoch)
        len = sizeof m->epoch - 1;
    memcpy(m->epoch, epoch ? epoch : "", len);
    m->epoch[len] = '\0';
}

static int meta_parse(roster_meta *m, const char *text, size_t len)
{
    char buf[160], epoch[sizeof m->epoch];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (sscanf(buf, "ver=%llu epoch=%24s items=%lu pending=%lu", &m->ver, epoch, &m->items,
               &m->pending) != 4)
        return -1;
    meta_set_epoch(m, strcmp(epoch, "-") == 0 ? "" : epoch);
    meta_set_ver_text(m);
    return 0;
}

/* Storage keys limit their length (LMDB: 511 bytes with the owner); a contact whose key would
 * come close is stored under a hash of its JID instead. The record itself names the contact,
 * so readers check it and a (contrived) collision reads as an error, never as another
 * contact's record. */
static void record_key(char out[RECORD_KEY_BUF], char kind, const char *owner,
                       const char *contact)
{
    size_t len = strlen(contact);
    if (strlen(owner) + len + 3 < RECORD_KEY_BUF) {
        snprintf(out, RECORD_KEY_BUF, "%c %s", kind, contact);
        return;
    }
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)contact[i]) * 1099511628211ULL;
    snprintf(out, RECORD_KEY_BUF, "%c #%016llx", kind, (unsigned long long)h);
}

/* The contact a record is about: an item's jid, a pending request's sender. */
static const char *record_contact(const tern_xml *x, char kind)
{
    return xml_attr(x, kind == 'i' ? "jid" : "from");
}

static tern_xml *record_parse(const char *owner, char kind, const void *data, size_t len)
{
    tern_xml *x = tern_stanza_parse(data, len);
    bool ok = x && record_contact(x, kind) &&
              (kind == 'i' ? xml_is(x, "item", NS_ROSTER) : xml_is(x, "presence", NS_CLIENT));
    if (!ok) {
        log_error(0, "roster: a stored record of %s is unreadable", owner);
        if (x)
            xml_unref(x);
        return NULL;
    }
    return x;
}

/* One record ('i' item, 'p' pending request) of contact: 1 and *out (xml_unref it), 0 when
 * absent, -1 on error. */
int roster_record_get(tern_host *host, const char *owner, char kind, const char *contact,
                      tern_xml **out)
{
    char key[RECORD_KEY_BUF];
    record_key(key, kind, owner, contact);
    void *data;
    size_t len;
    *out = NULL;
    int rc = storage_map_get(tern_host_storage(host), ROSTER_STORE, owner, key, &data, &len);
    if (rc <= 0)
        return rc;
    tern_xml *x = record_parse(owner, kind, data, len);
    free(data);
    if (!x)
        return -1;
    if (strcmp(record_contact(x, kind), contact) != 0) {
        log_error(0, "roster: %s: two contacts share the record key %s", owner, key);
        xml_unref(x);
        return -1;
    }
    *out = x;
    return 1;
}

void roster_write_init(roster_write *w)
{
    w->n = 0;
    for (size_t i = 0; i < WRITE_MAX; i++)
        buf_init(&w->values[i]);
}

static void write_free(roster_write *w)
{
    for (size_t i = 0; i < WRITE_MAX; i++)
        buf_free(&w->values[i]);
}

/* A change to contact's record of `kind`: its new content x, or NULL to delete it. */
void roster_write_record(roster_write *w, char kind, const char *owner, const char *contact,
                         const tern_xml *x)
{
    if (w->n == WRITE_MAX)
        abort();  /* a change touches at most item, request and meta */
    size_t i = w->n++;
    record_key(w->keys[i], kind, owner, contact);
    w->changes[i].key = w->keys[i];
    w->changes[i].value = NULL;
    w->changes[i].len = 0;
    if (x) {
        xml_serialize(x, NS_CLIENT, &w->values[i]);
        w->changes[i].value = buf_cstr(&w->values[i]);
        w->changes[i].len = w->values[i].len;
    }
}

void roster_write_meta(roster_write *w, roster_meta *m)
{
    if (!m->epoch[0]) {
        /* The roster's first write: the epoch that keeps versions of an account deleted and
         * created again from repeating. */
        char epoch[24];
        snprintf(epoch, sizeof epoch, "%llx", (unsigned long long)time(NULL));
        meta_set_epoch(m, epoch);
    }
    meta_set_ver_text(m);
    if (w->n == WRITE_MAX)
        abort();
    size_t i = w->n++;
    snprintf(w->keys[i], RECORD_KEY_BUF, "%s", META_KEY);
    buf_printf(&w->values[i], "ver=%llu epoch=%s items=%lu pending=%lu", m->ver, m->epoch,
               m->items, m->pending);
    w->changes[i] = (storage_map_change){ w->keys[i], buf_cstr(&w->values[i]),
                                          w->values[i].len };
}

/* 0, or what storage said (nothing was written then). */
int roster_write_commit(tern_host *host, const char *owner, roster_write *w)
{
    int rc = w->n ? storage_map_apply(tern_host_storage(host), ROSTER_STORE, owner, w->changes,
                                      w->n)
                  : 0;
    write_free(w);
    return rc < 0 ? rc : 0;
}

/* ---- the old format ---- */

/* Up to this version the roster was one XML blob per account in the keyval store "roster":
 *   <roster xmlns='urn:tern:roster:1' ver='N' epoch='E'>
 *     <item xmlns='jabber:iq:roster' jid=... .../>...
 *     <pending jid='contact'><presence .../></pending>...
 *   </roster>
 * At an account's first access it becomes per-contact records in one apply (version, epoch
 * and every item and request kept), then the blob is deleted. 1 when converted, 0 when there
 * was nothing to convert, -1 on error. */
static int convert_old(tern_host *host, const char *owner)
{
    tern_storage *storage = tern_host_storage(host);
    void *data = NULL, *meta = NULL;
    size_t len = 0, meta_len;
    int rc = storage_kv_get(storage, ROSTER_STORE, owner, &data, &len);
    if (rc <= 0)
        return rc;
    /* A blob beside per-contact records: ternd stopped between converting and deleting it.
     * The records are newer; the blob is what is left to delete. */
    rc = storage_map_get(storage, ROSTER_STORE, owner, META_KEY, &meta, &meta_len);
    free(meta);
    if (rc != 0) {
        free(data);
        if (rc < 0)
            return -1;
        return storage_kv_delete(storage, ROSTER_STORE, owner) < 0 ? -1 : 0;
    }
    tern_xml *root = tern_stanza_parse(data, len);
    free(data);
    if (!root || !xml_is(root, "roster", NS_RECORD)) {
        log_error(0, "roster: the stored roster of %s is unreadable", owner);
        if (root)
            xml_unref(root);
        return -1;
    }
    roster_meta m = { 0 };
    const char *ver = xml_attr(root, "ver");
    m.ver = ver ? strtoull(ver, NULL, 10) : 0;
    meta_set_epoch(&m, xml_attr(root, "epoch"));
    size_t cap = 1, n = 0;
    for (tern_xml *x = xml_first_element(root); x; x = xml_next_element(x))
        cap++;
    storage_map_change *changes = calloc(cap, sizeof *changes);
    char (*keys)[RECORD_KEY_BUF] = calloc(cap, sizeof *keys);
    tern_buf *values = calloc(cap, sizeof *values);
    if (!changes || !keys || !values)
        abort();
    for (tern_xml *x = xml_first_element(root); x; x = xml_next_element(x)) {
        const char *jid = xml_attr(x, "jid");
        const tern_xml *record = NULL;
        char kind = 0;
        if (jid && xml_is(x, "item", NS_ROSTER)) {
            record = x;
            kind = 'i';
            m.items++;
        } else if (jid && xml_is(x, "pending", NS_RECORD) && xml_first_element(x)) {
            record = xml_first_element(x);
            kind = 'p';
            m.pending++;
        } else {
            continue;
        }
        record_key(keys[n], kind, owner, jid);
        buf_init(&values[n]);
        xml_serialize(record, NS_CLIENT, &values[n]);
        changes[n] = (storage_map_change){ keys[n], buf_cstr(&values[n]), values[n].len };
        n++;
    }
    xml_unref(root);
    tern_buf meta_text;
    buf_init(&meta_text);
    buf_printf(&meta_text, "ver=%llu epoch=%s items=%lu pending=%lu", m.ver,
               m.epoch[0] ? m.epoch : "-", m.items, m.pending);
    changes[n++] = (storage_map_change){ META_KEY, buf_cstr(&meta_text), meta_text.len };
    rc = storage_map_apply(storage, ROSTER_STORE, owner, changes, n);
    for (size_t i = 0; i + 1 < n; i++)
        buf_free(&values[i]);
    buf_free(&meta_text);
    free(changes);
    free(keys);
    free(values);
    if (rc != 0)
        return -1;
    log_info(0, "roster: converted the stored roster of %s to per-contact records", owner);
    if (storage_kv_delete(storage, ROSTER_STORE, owner) < 0)
        return -1;  /* converted all the same: the leftover blob goes at the next access */
    return 1;
}

/* The meta record: 1 (and *m), 0 when absent, -1 on error. */
static int meta_read(tern_host *host, const char *owner, roster_meta *m)
{
    void *data;
    size_t len;
    int rc = storage_map_get(tern_host_storage(host), ROSTER_STORE, owner, META_KEY, &data,
                             &len);
    if (rc <= 0)
        return rc;
    rc = meta_parse(m, data, len);
    free(data);
    if (rc < 0) {
        log_error(0, "roster: the stored roster of %s is unreadable", owner);
        return -1;
    }
    return 1;
}

int roster_meta_load(tern_host *host, const char *owner, roster_meta *m)
{
    *m = (roster_meta){ 0 };
    int rc = meta_read(host, owner, m);
    if (rc == 0 && (rc = convert_old(host, owner)) == 1)
        rc = meta_read(host, owner, m);
    if (rc < 0)
        return -1;
    meta_set_ver_text(m);
    return 0;
}

/* A miss may be an account whose roster is still a blob: convert it and look again. */
int roster_item_get(tern_host *host, const char *owner, const char *contact, tern_xml **item)
{
    int rc = roster_record_get(host, owner, 'i', contact, item);
    if (rc != 0)
        return rc;
    rc = convert_old(host, owner);
    return rc <= 0 ? rc : roster_record_get(host, owner, 'i', contact, item);
}

/* roster_each_record: the records of one kind, parsed, outside any storage transaction. */
typedef struct each_record_ctx {
    const char *owner;
    char kind;
    int (*fn)(void *ctx, tern_xml *record);
    void *ctx;
} each_record_ctx;

static int each_record_cb(void *arg, const char *key, const void *value, size_t len)
{
    each_record_ctx *e = arg;
    if (key[0] != e->kind || key[1] != ' ')
        return 0;
    tern_xml *x = record_parse(e->owner, e->kind, value, len);
    if (!x)
        return 0;  /* logged; the rest of the roster is still worth having */
    int stop = e->fn(e->ctx, x);
    xml_unref(x);
    return stop;
}

int roster_each_record(tern_host *host, const char *owner, char kind,
                       int (*fn)(void *ctx, tern_xml *record), void *ctx)
{
    each_record_ctx e = { owner, kind, fn, ctx };
    return storage_map_each(tern_host_storage(host), ROSTER_STORE, owner, each_record_cb, &e);
}

