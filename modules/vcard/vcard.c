/* vcard — XEP-0054 vcard-temp: each account stores one vCard that anyone may read; and the
 * XEP-0153 avatar hash, which the server puts into its users' available presence as
 * XEP-0398 §4 describes, so that contacts learn of an avatar change without every client
 * having to download its own vCard first.
 *
 * A vCard is stored whole (keyval store "vcard", the serialized <vCard/> element): XEP-0054
 * §3.2 has no partial updates. The SHA-1 of the avatar image is cached per session, so a
 * presence costs no storage read and no Base64 decoding after the first; a vCard update
 * refreshes the cache of every session of the account at once. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <tern/module.h>

#define NS_VCARD        "vcard-temp"
#define NS_VCARD_UPDATE "vcard-temp:x:update" /* XEP-0153 */
#define VCARD_STORE     "vcard"

/* The largest vCard we keep, serialized. XEP-0153 §4.6 asks for avatars under 8 KB; this
 * leaves room for an image several times that, and bounds what every reader of the vCard
 * must download. */
static const tern_setting_def vcard_settings[] = {
    { "max_size", TERN_SETTING_UINT, "65536", 1024, 16777216,
      "bytes of one account's vCard (photo included); a larger one is refused", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

/* Ahead of the presence module (default priority), which claims broadcast presence. */
#define VCARD_PRESENCE_PRIORITY (TERN_PRIORITY_DEFAULT + 100)

typedef struct vcard_state {
    tern_host *host;
} vcard_state;

/* What an account's vCard says about its avatar. */
typedef struct photo_info {
    bool has_photo;
    char sha1_hex[41];
} photo_info;

static const char photo_cache_key; /* its address keys our per-session data */

/* ---- the avatar hash ---- */

/* XEP-0153 §4.6 rule 5: whitespace in the Base64 data MUST be ignored. */
static char *strip_whitespace(const char *text, size_t *len)
{
    size_t n = strlen(text), k = 0;
    char *out = malloc(n + 1);
    if (!out)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)text[i]))
            out[k++] = text[i];
    out[k] = '\0';
    *len = k;
    return out;
}

/* Fills *info from a <vCard/> element (NULL: no vCard). XEP-0153 §3.1: the hash is the SHA-1
 * of the image bytes, not of their Base64 form. A PHOTO without BINVAL, with an empty one or
 * with data that is not Base64 advertises no image. */
static void photo_from_vcard(const tern_xml *vcard, photo_info *info)
{
    memset(info, 0, sizeof *info);
    const tern_xml *photo = vcard ? xml_child(vcard, "PHOTO", NS_VCARD) : NULL;
    const char *binval = photo ? xml_child_text(photo, "BINVAL", NS_VCARD) : NULL;
    if (!binval)
        return;
    size_t len;
    char *b64 = strip_whitespace(binval, &len);
    gnutls_datum_t in = { (unsigned char *)b64, (unsigned)len }, image = { NULL, 0 };
    if (len > 0 && gnutls_base64_decode2(&in, &image) == 0) {
        unsigned char digest[20];
        if (gnutls_hash_fast(GNUTLS_DIG_SHA1, image.data, image.size, digest) == 0) {
            for (size_t i = 0; i < sizeof digest; i++)
                snprintf(info->sha1_hex + 2 * i, 3, "%02x", digest[i]);
            info->has_photo = true;
        }
        gnutls_free(image.data);
    }
    free(b64);
}

/* The stored vCard of `bare`: 1 and a tree (caller unrefs) when there is one, 0 when none,
 * -1 on a storage error or unreadable data. */
static int vcard_load(vcard_state *st, const char *bare, tern_xml **out)
{
    void *value = NULL;
    size_t len = 0;
    *out = NULL;
    int r = storage_kv_get(tern_host_storage(st->host), VCARD_STORE, bare, &value, &len);
    if (r <= 0)
        return r;
    *out = tern_stanza_parse(value, len);
    free(value);
    if (!*out) {
        log_error(0, "vcard: the stored vCard of %s cannot be parsed", bare);
        return -1;
    }
    return 1;
}

/* The account's photo from storage. -1 on a storage error. */
static int photo_from_storage(vcard_state *st, const char *bare, photo_info *info)
{
    tern_xml *vcard;
    int r = vcard_load(st, bare, &vcard);
    if (r < 0)
        return -1;
    photo_from_vcard(vcard, info);
    if (vcard)
        xml_unref(vcard);
    return 0;
}

static void cache_photo(tern_session *session, const photo_info *info)
{
    photo_info *copy = malloc(sizeof *copy);
    if (!copy)
        abort();
    *copy = *info;
    tern_session_set_data(session, &photo_cache_key, copy, free);
}

typedef struct find_ctx {
    const char *resource;
    tern_session *found;
} find_ctx;

static void find_resource(tern_session *session, void *arg)
{
    find_ctx *fc = arg;
    if (fc->resource && strcmp(tern_session_jid(session)->resource, fc->resource) == 0)
        fc->found = session;
}

/* The photo of the account that `from` belongs to, from the cache of its session when there
 * is one (`session` may be NULL: then it is looked up by from's resource). */
static int photo_of(vcard_state *st, const tern_jid *from, tern_session *session,
                    photo_info *info)
{
    if (!session) {
        find_ctx fc = { from->resource, NULL };
        tern_host_each_session(st->host, from->bare, find_resource, &fc);
        session = fc.found;
    }
    const photo_info *cached = session ? tern_session_get_data(session, &photo_cache_key) : NULL;
    if (cached) {
        *info = *cached;
        return 0;
    }
    if (photo_from_storage(st, from->bare, info) != 0)
        return -1;
    if (session)
        cache_photo(session, info);
    return 0;
}

static void recache_session(tern_session *session, void *arg)
{
    cache_photo(session, arg);
}

/* ---- presence ---- */

static bool is_available_presence(const tern_xml *stanza)
{
    return strcmp(xml_name(stanza), "presence") == 0 && !xml_attr(stanza, "type");
}

/* XEP-0398 §4: the server includes the hash in every available presence of its user, except
 * one whose update element holds an empty <photo/> (the client says it has no image, or is
 * not ready to tell; XEP-0153 §4.1 rules 2 and 3). An update element without <photo/> MUST be
 * replaced; one with a different hash MAY be, and is: the stored vCard is what contacts will
 * download, so its hash is the one that is true. Without a photo in the vCard the user
 * advertises <photo/> (XEP-0153 §4.1 rule 3). */
static void put_hash(tern_xml *presence, const photo_info *info)
{
    tern_xml *next;
    for (tern_xml *x = xml_first_element(presence); x; x = next) {
        next = xml_next_element(x);
        if (!xml_is(x, "x", NS_VCARD_UPDATE))
            continue;
        const tern_xml *photo = xml_child(x, "photo", NS_VCARD_UPDATE);
        if (photo && xml_first_element(photo) == NULL && xml_text(photo)[0] == '\0')
            return;
        xml_remove_child(presence, x);
    }
    tern_xml *x = xml_add_child(presence, "x", NS_VCARD_UPDATE);
    tern_xml *photo = xml_add_child(x, "photo", NULL);
    if (info->has_photo)
        xml_add_text(photo, info->sha1_hex, strlen(info->sha1_hex));
}

static void put_hash_for(vcard_state *st, const tern_stanza_event *ev, tern_session *session)
{
    photo_info info;
    if (photo_of(st, ev->from, session, &info) == 0)
        put_hash(ev->stanza, &info);
}

/* Broadcast presence from a client (initial, or an update), before the presence module (or
 * the core's echo to the user's other resources) sends it anywhere. The session's recorded
 * presence, which the presence module copies for probe answers and for the user's new
 * resources, gets the hash too. */
static tern_event_result on_broadcast(const tern_stanza_event *ev, void *data)
{
    if (ev->origin && is_available_presence(ev->stanza)) {
        put_hash_for(data, ev, ev->origin);
        tern_session_record_presence(ev->origin, ev->stanza);
    }
    return TERN_PASS;
}

/* Directed presence from a client: XEP-0398 §4 "The hash MUST also be injected into directed
 * presences such as MUC joins". */
static tern_event_result on_directed(const tern_stanza_event *ev, void *data)
{
    if (ev->origin && is_available_presence(ev->stanza))
        put_hash_for(data, ev, ev->origin);
    return TERN_PASS;
}

/* Presence the server itself sends on behalf of one of this host's users (the presence
 * module's answers to probes and its fan-out to contacts): copies of the user's last
 * presence, whose hash may be older than a vCard set since; this keeps it current. */
static tern_event_result on_server_presence(const tern_stanza_event *ev, void *data)
{
    vcard_state *st = data;
    if (ev->origin || !ev->from->node || !is_available_presence(ev->stanza) ||
        strcmp(ev->from->domain, tern_host_name(st->host)) != 0)
        return TERN_PASS;
    put_hash_for(st, ev, NULL);
    return TERN_PASS;
}

/* ---- iq ---- */

static bool from_account_itself(const tern_stanza_event *ev)
{
    return jid_equal_bare(ev->from, ev->to);
}

/* XEP-0054 §3.1 and §3.3: the server answers for the account; vCards are public.
 *
 * An account without a stored vCard has an empty <vCard/>, for the account itself (§3.1
 * allows that or an error) and for others. §3.3 asks for an error there, the same as for an
 * account that does not exist; but clients take the error for a failure (poezio prints a
 * traceback, mcabber an error) where Prosody answers an empty vCard, and the harvesting
 * §3.3 guards against is open anyway: messages and pings to an account that does not exist
 * get errors, to one that exists they do not. An account that does not exist never reaches
 * this handler: the core answers service-unavailable (RFC 6121 §8.5.1). */
static tern_event_result vcard_get(const tern_stanza_event *ev, void *data)
{
    vcard_state *st = data;
    tern_xml *vcard;
    if (vcard_load(st, ev->to->bare, &vcard) < 0) {
        tern_reply_error(ev, STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return TERN_HANDLED;
    }
    tern_xml *reply = tern_iq_result_new(ev);
    if (vcard) {
        xml_add_copy(reply, vcard);
        xml_unref(vcard);
    } else {
        xml_add_child(reply, "vCard", NS_VCARD);
    }
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

/* A vCard change on its way to the storage thread. The answer waits for the commit in a
 * slot of the sender's output (tern_session_reserve()), so a get the client sends right
 * after is answered after it, and sees the new vCard. */
typedef struct pending_set {
    vcard_state *st;
    tern_output_slot *slot;
    tern_xml *request;   /* referenced: the answer's id and addresses */
    char *owner;
    photo_info info;     /* what the new vCard says about the avatar */
} pending_set;

/* The answer to the request, from the account to the session that sent it. */
static void answer(pending_set *p, tern_xml *reply)
{
    if (!reply)
        return;
    const char *from = xml_attr(p->request, "to"), *to = xml_attr(p->request, "from");
    xml_set_attr(reply, "from", from ? from : p->owner);
    if (to)
        xml_set_attr(reply, "to", to);
    tern_slot_send(p->slot, reply);
    xml_unref(reply);
}

static void vcard_stored(void *ctx, int rc, uint64_t id)
{
    (void)id;
    pending_set *p = ctx;
    tern_session *s = tern_slot_session(p->slot);
    if (rc < 0) {
        answer(p, stanza_error_reply(p->request, tern_storage_error(rc), NULL));
    } else {
        /* Every session of the account advertises the new hash from its next presence on;
         * XEP-0153 §4.2 leaves re-sending presence to the client. */
        tern_host_each_session(p->st->host, p->owner, recache_session, &p->info);
        log_debug(s ? tern_session_id(s) : 0, "vcard: %s updated its vCard%s", p->owner,
                  p->info.has_photo ? " (with a photo)" : "");
        tern_xml *result = xml_new("iq", NS_CLIENT);
        xml_set_attr(result, "type", "result");
        const char *req_id = xml_attr(p->request, "id");
        if (req_id)
            xml_set_attr(result, "id", req_id);
        answer(p, result);
    }
    tern_slot_release(p->slot);
    xml_unref(p->request);
    free(p->owner);
    free(p);
}

/* XEP-0054 §3.2: the account replaces its whole vCard. */
static tern_event_result vcard_set(const tern_stanza_event *ev, void *data)
{
    vcard_state *st = data;
    if (!from_account_itself(ev) || !ev->origin) {
        /* §3.2: "the server MUST return a stanza error, which SHOULD be <forbidden/>". */
        tern_reply_error(ev, STANZA_ERR_FORBIDDEN,
                         "only the account itself may change its vCard");
        return TERN_HANDLED;
    }
    const tern_xml *vcard = xml_child(ev->stanza, "vCard", NS_VCARD);
    tern_storage *storage = tern_host_storage(st->host);
    pending_set *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->st = st;
    p->request = ev->stanza;
    xml_ref(p->request);
    p->owner = strdup(ev->to->bare);
    if (!p->owner)
        abort();
    photo_from_vcard(vcard, &p->info);
    if (!xml_first_element(vcard) && !xml_first_attr(vcard)) {
        /* An empty vCard is no vCard: nothing is stored, as if never set. */
        p->slot = tern_session_reserve(ev->origin);
        storage_kv_delete_async(storage, VCARD_STORE, ev->to->bare, vcard_stored, p);
        return TERN_HANDLED;
    }
    tern_buf buf;
    buf_init(&buf);
    xml_serialize(vcard, NS_CLIENT, &buf);
    unsigned long max_size = tern_setting_uint(st->host, "vcard", "max_size");
    if (buf.len > max_size) {
        buf_free(&buf);
        xml_unref(p->request);
        free(p->owner);
        free(p);
        char text[96];
        snprintf(text, sizeof text, "the vCard is larger than %lu bytes", max_size);
        tern_reply_error(ev, STANZA_ERR_NOT_ACCEPTABLE, text);
        return TERN_HANDLED;
    }
    p->slot = tern_session_reserve(ev->origin);
    storage_kv_put_async(storage, VCARD_STORE, ev->to->bare, buf.data, buf.len, vcard_stored, p);
    buf_free(&buf);
    return TERN_HANDLED;
}

/* The server has no vCard of its own (XEP-0054 §3.3 allows one; nobody configures it yet),
 * and nobody may write one. */
static tern_event_result host_vcard_get(const tern_stanza_event *ev, void *data)
{
    (void)data;
    tern_reply_error(ev, STANZA_ERR_ITEM_NOT_FOUND, NULL);
    return TERN_HANDLED;
}

static tern_event_result host_vcard_set(const tern_stanza_event *ev, void *data)
{
    (void)data;
    tern_reply_error(ev, STANZA_ERR_FORBIDDEN, "the server's vCard cannot be changed");
    return TERN_HANDLED;
}

static int vcard_module_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    vcard_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->host = host;
    *state = st;
    tern_hook_iq(host, "get", "bare", NS_VCARD, "vCard", vcard_get, st);
    tern_hook_iq(host, "set", "bare", NS_VCARD, "vCard", vcard_set, st);
    tern_hook_iq(host, "get", "host", NS_VCARD, "vCard", host_vcard_get, st);
    tern_hook_iq(host, "set", "host", NS_VCARD, "vCard", host_vcard_set, st);
    tern_hook_stanza(host, "presence/broadcast", VCARD_PRESENCE_PRIORITY, on_broadcast, st);
    tern_hook_stanza(host, "presence/out", VCARD_PRESENCE_PRIORITY, on_directed, st);
    tern_hook_stanza(host, "stanza/in", VCARD_PRESENCE_PRIORITY, on_server_presence, st);
    tern_hook_stanza(host, "presence/remote", VCARD_PRESENCE_PRIORITY, on_server_presence, st);
    tern_disco_add_feature(host, NS_VCARD);
    tern_registry_add(host, TERN_REG_DISCO_ACCOUNT_FEATURE, NS_VCARD, NULL);
    return 0;
}

static void vcard_module_unload(tern_host *host, void *state)
{
    (void)host;
    free(state);
}

TERN_MODULE_SETTINGS("vcard", vcard_module_load, vcard_module_unload, vcard_settings);
