/* xml.c — the stanza tree (tern/xml.h): element trees living in one arena per root, the
 * growable byte buffer, and the serializer.
 *
 * Why an arena: a stanza is built once (by the stream parser or a handler), read, forwarded and
 * dropped as a whole. Allocating every node and string from chunks owned by the root makes
 * freeing one walk over a handful of chunks and leaves handlers nothing to leak.
 *
 * Text is stored once per element: an element keeps the concatenation of its direct text
 * children in one growable string (so xml_text() is a pure read, safe on a stanza shared between
 * threads), and each text node is a slice (offset, length) of it that keeps its place among the
 * element children for the serializer. Growing that string by doubling keeps building linear
 * even for input like "x<b/>x<b/>x<b/>...".
 *
 * The serializer is written for hostile content: every text and attribute value is escaped, and
 * anything XML 1.0 cannot carry (control characters, invalid UTF-8, U+FFFE/U+FFFF) is replaced
 * by U+FFFD, so what a client wrote can never become markup on another stream (RFC 6120 §11). */
#include "tern/xml.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation ---------------------------------------------------------------------------- */

static void *xml_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static void *xml_xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (!p)
        abort();
    return p;
}

/* ---- arena --------------------------------------------------------------------------------- */

/* Only pointers, sizes and chars live in a tree: pointer alignment is enough, and it keeps the
 * many tiny name strings of a stanza from each taking 16 bytes. */
#define ARENA_ALIGN       (_Alignof(void *))
#define ARENA_FIRST_CHUNK 1024u
#define ARENA_MAX_CHUNK   (64u * 1024u)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    void *data[]; /* typed so that data starts pointer-aligned */
} arena_chunk;

/* Everything a tree shares: the arena and the reference count. */
typedef struct xml_doc {
    atomic_int refs;
    arena_chunk *chunks;     /* the head is the chunk we bump-allocate from */
    size_t next_chunk_size;  /* grows from 1 KiB to 64 KiB: small stanzas stay small */
} xml_doc;

static arena_chunk *chunk_new(size_t cap)
{
    arena_chunk *c = xml_xmalloc(sizeof *c + cap);
    c->next = NULL;
    c->used = 0;
    c->cap = cap;
    return c;
}

static void *arena_alloc(xml_doc *d, size_t n)
{
    if (n > SIZE_MAX - ARENA_ALIGN)
        abort();
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_chunk *c = d->chunks;
    if (c && c->cap - c->used >= n) {
        void *p = (char *)c->data + c->used;
        c->used += n;
        return p;
    }
    if (n > d->next_chunk_size / 4) {
        /* A big string gets a chunk of its own, linked behind the head so the head's free
         * space stays usable for the small allocations that follow. */
        arena_chunk *big = chunk_new(n);
        big->used = n;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            d->chunks = big;
        }
        return big->data;
    }
    arena_chunk *fresh = chunk_new(d->next_chunk_size);
    if (d->next_chunk_size < ARENA_MAX_CHUNK)
        d->next_chunk_size *= 2;
    fresh->next = d->chunks;
    d->chunks = fresh;
    fresh->used = n;
    return fresh->data;
}

static char *arena_strndup(xml_doc *d, const char *s, size_t len)
{
    char *p = arena_alloc(d, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static char *arena_strdup(xml_doc *d, const char *s) { return arena_strndup(d, s, strlen(s)); }

static void doc_free(xml_doc *d)
{
    arena_chunk *c = d->chunks;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(d);
}

/* ---- nodes --------------------------------------------------------------------------------- */

enum { NODE_ELEMENT, NODE_TEXT };

struct tern_xml_attr {
    struct tern_xml_attr *next;
    const char *xmlns; /* NULL when the attribute has no namespace */
    const char *name;
    const char *value;
};

/* Attributes are a list in document order; past ATTR_INDEX_MIN of them an open-addressing
 * index (in the arena) keeps xml_set_attr() O(1), so a stanza with thousands of attributes
 * costs linear time to build rather than quadratic. */
#define ATTR_INDEX_MIN 8u

struct tern_xml {
    xml_doc *doc;
    tern_xml *parent;
    tern_xml *next, *prev; /* siblings, elements and text nodes interleaved in order */
    int kind;
    union {
        struct {
            const char *name;
            const char *ns; /* "" when none */
            tern_xml *first, *last;
            tern_xml_attr *attrs, *attrs_last;
            tern_xml_attr **index;
            uint32_t nattrs, index_cap;
            char *text; /* concatenated direct text, NUL-terminated, or NULL */
            size_t text_len, text_cap;
        } el;
        struct {
            size_t off, len; /* slice of parent->el.text */
        } tx;
    } u;
};

/* A text node only ever uses u.tx, so it is allocated without the (much larger) element part:
 * pretty-printed stanzas have as many text nodes as elements. Nothing reads u.el of a node
 * whose kind is NODE_TEXT, and the API never hands out text nodes. */
#define TEXT_NODE_SIZE (offsetof(tern_xml, u) + sizeof(((tern_xml *)0)->u.tx))

static tern_xml *node_alloc(xml_doc *d, int kind)
{
    size_t size = kind == NODE_TEXT ? TEXT_NODE_SIZE : sizeof(tern_xml);
    tern_xml *n = arena_alloc(d, size);
    memset(n, 0, size);
    n->doc = d;
    n->kind = kind;
    return n;
}

static void node_append(tern_xml *parent, tern_xml *child)
{
    child->parent = parent;
    child->next = NULL;
    child->prev = parent->u.el.last;
    if (parent->u.el.last)
        parent->u.el.last->next = child;
    else
        parent->u.el.first = child;
    parent->u.el.last = child;
}

static tern_xml *element_new(xml_doc *d, const char *name, const char *ns, bool copy_ns)
{
    tern_xml *n = node_alloc(d, NODE_ELEMENT);
    n->u.el.name = arena_strdup(d, name ? name : "");
    n->u.el.ns = !ns || !*ns ? "" : copy_ns ? arena_strdup(d, ns) : ns;
    return n;
}

static xml_doc *doc_new(void)
{
    xml_doc *d = xml_xmalloc(sizeof *d);
    atomic_init(&d->refs, 1);
    d->chunks = NULL;
    d->next_chunk_size = ARENA_FIRST_CHUNK;
    return d;
}

tern_xml *xml_new(const char *name, const char *xmlns)
{
    return element_new(doc_new(), name, xmlns, true);
}

void xml_ref(tern_xml *root)
{
    if (root)
        atomic_fetch_add_explicit(&root->doc->refs, 1, memory_order_relaxed);
}

void xml_unref(tern_xml *root)
{
    if (!root)
        return;
    xml_doc *d = root->doc;
    if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1)
        doc_free(d);
}

tern_xml *xml_add_child(tern_xml *parent, const char *name, const char *xmlns)
{
    /* Children that share the parent's namespace share its string too: a stanza with many
     * children in one namespace stores the URI once. */
    bool inherit = !xmlns || strcmp(xmlns, parent->u.el.ns) == 0;
    tern_xml *child = element_new(parent->doc, name, inherit ? parent->u.el.ns : xmlns, !inherit);
    node_append(parent, child);
    return child;
}

void xml_add_text(tern_xml *parent, const char *text, size_t len)
{
    if (!len)
        return;
    xml_doc *d = parent->doc;
    size_t old = parent->u.el.text_len;
    if (len > SIZE_MAX / 2 - old - 1)
        abort();
    if (old + len + 1 > parent->u.el.text_cap) {
        /* First text gets an exact fit (the common <body>hello</body>); later growth doubles. */
        size_t cap = old == 0 ? len + 1 : 2 * (old + len + 1);
        char *bigger = arena_alloc(d, cap);
        if (old)
            memcpy(bigger, parent->u.el.text, old);
        parent->u.el.text = bigger;
        parent->u.el.text_cap = cap;
    }
    memcpy(parent->u.el.text + old, text, len);
    parent->u.el.text[old + len] = '\0';
    parent->u.el.text_len = old + len;

    tern_xml *last = parent->u.el.last;
    if (last && last->kind == NODE_TEXT) {
        last->u.tx.len += len;
        return;
    }
    tern_xml *t = node_alloc(d, NODE_TEXT);
    t->u.tx.off = old;
    t->u.tx.len = len;
    node_append(parent, t);
}

/* ---- attributes ---------------------------------------------------------------------------- */

static bool ns_equal(const char *a, const char *b)
{
    if (!a || !*a)
        return !b || !*b;
    return b && strcmp(a, b) == 0;
}

static size_t attr_hash(const char *xmlns, const char *name)
{
    /* FNV-1a over namespace and name. */
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)(xmlns ? xmlns : ""); *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h;
}

static tern_xml_attr **attr_index_slot(const tern_xml *node, const char *xmlns, const char *name)
{
    size_t mask = node->u.el.index_cap - 1;
    size_t i = attr_hash(xmlns, name) & mask;
    for (;;) {
        tern_xml_attr **slot = &node->u.el.index[i];
        if (!*slot || (strcmp((*slot)->name, name) == 0 && ns_equal((*slot)->xmlns, xmlns)))
            return slot;
        i = (i + 1) & mask;
    }
}

static void attr_index_rebuild(tern_xml *node, uint32_t cap)
{
    node->u.el.index = arena_alloc(node->doc, cap * sizeof *node->u.el.index);
    memset(node->u.el.index, 0, cap * sizeof *node->u.el.index);
    node->u.el.index_cap = cap;
    for (tern_xml_attr *a = node->u.el.attrs; a; a = a->next)
        *attr_index_slot(node, a->xmlns, a->name) = a;
}

static tern_xml_attr *attr_find(const tern_xml *node, const char *xmlns, const char *name)
{
    if (!node || node->kind != NODE_ELEMENT || !name)
        return NULL;
    if (node->u.el.index)
        return *attr_index_slot(node, xmlns, name);
    /* Stanza attributes mostly differ in their first byte (to, from, id, type, xml:lang): test it
     * before calling strcmp. */
    for (tern_xml_attr *a = node->u.el.attrs; a; a = a->next)
        if (a->name[0] == name[0] && strcmp(a->name, name) == 0 && ns_equal(a->xmlns, xmlns))
            return a;
    return NULL;
}

static void attr_remove(tern_xml *node, tern_xml_attr *victim)
{
    tern_xml_attr *prev = NULL;
    for (tern_xml_attr *a = node->u.el.attrs; a; prev = a, a = a->next) {
        if (a != victim)
            continue;
        if (prev)
            prev->next = a->next;
        else
            node->u.el.attrs = a->next;
        if (node->u.el.attrs_last == a)
            node->u.el.attrs_last = prev;
        node->u.el.nattrs--;
        /* Open addressing cannot simply delete; drop the index, it is rebuilt on demand. */
        node->u.el.index = NULL;
        node->u.el.index_cap = 0;
        return;
    }
}

void xml_set_attr_ns(tern_xml *node, const char *xmlns, const char *name, const char *value)
{
    if (!node || node->kind != NODE_ELEMENT || !name)
        return;
    if (xmlns && !*xmlns)
        xmlns = NULL;
    tern_xml_attr *a = attr_find(node, xmlns, name);
    if (!value) {
        if (a)
            attr_remove(node, a);
        return;
    }
    xml_doc *d = node->doc;
    if (a) {
        a->value = arena_strdup(d, value);
        return;
    }
    if (node->u.el.nattrs >= UINT32_MAX / 4)
        abort(); /* keeps the index arithmetic below in range; unreachable in practice */
    a = arena_alloc(d, sizeof *a);
    a->next = NULL;
    a->xmlns = xmlns ? arena_strdup(d, xmlns) : NULL;
    a->name = arena_strdup(d, name);
    a->value = arena_strdup(d, value);
    if (node->u.el.attrs_last)
        node->u.el.attrs_last->next = a;
    else
        node->u.el.attrs = a;
    node->u.el.attrs_last = a;
    node->u.el.nattrs++;
    size_t n = node->u.el.nattrs;
    if (n >= ATTR_INDEX_MIN && (!node->u.el.index || 4 * n > 3 * (size_t)node->u.el.index_cap)) {
        uint32_t cap = 16;
        while (cap < 2 * n)
            cap *= 2;
        attr_index_rebuild(node, cap); /* old tables stay in the arena: geometric waste only */
    } else if (node->u.el.index) {
        *attr_index_slot(node, a->xmlns, a->name) = a;
    }
}

void xml_set_attr(tern_xml *node, const char *name, const char *value)
{
    xml_set_attr_ns(node, NULL, name, value);
}

const char *xml_attr(const tern_xml *node, const char *name)
{
    tern_xml_attr *a = attr_find(node, NULL, name);
    return a ? a->value : NULL;
}

const char *xml_attr_ns(const tern_xml *node, const char *xmlns, const char *name)
{
    tern_xml_attr *a = attr_find(node, xmlns && *xmlns ? xmlns : NULL, name);
    return a ? a->value : NULL;
}

const tern_xml_attr *xml_first_attr(const tern_xml *node)
{
    return node && node->kind == NODE_ELEMENT ? node->u.el.attrs : NULL;
}

const tern_xml_attr *xml_next_attr(const tern_xml_attr *attr) { return attr ? attr->next : NULL; }
const char *xml_attr_name(const tern_xml_attr *attr) { return attr->name; }
const char *xml_attr_xmlns(const tern_xml_attr *attr) { return attr->xmlns; }
const char *xml_attr_value(const tern_xml_attr *attr) { return attr->value; }

/* ---- structure ----------------------------------------------------------------------------- */

void xml_clear_children(tern_xml *node)
{
    if (!node || node->kind != NODE_ELEMENT)
        return;
    for (tern_xml *c = node->u.el.first; c; c = c->next)
        c->parent = NULL;
    node->u.el.first = node->u.el.last = NULL;
    node->u.el.text_len = 0;
    if (node->u.el.text)
        node->u.el.text[0] = '\0';
}

void xml_remove_child(tern_xml *parent, tern_xml *child)
{
    if (!parent || !child || child->parent != parent || child->kind != NODE_ELEMENT)
        return;
    if (child->prev)
        child->prev->next = child->next;
    else
        parent->u.el.first = child->next;
    if (child->next)
        child->next->prev = child->prev;
    else
        parent->u.el.last = child->prev;
    /* Two text nodes may now be neighbours; that is harmless: the serializer writes them one
     * after the other and a parser reads them back as one run. */
    child->parent = child->next = child->prev = NULL;
}

/* A copy of one node (not its children) appended to dst_parent (NULL: a new root in d). */
static tern_xml *clone_node(xml_doc *d, tern_xml *dst_parent, const tern_xml *src)
{
    if (src->kind == NODE_TEXT) {
        tern_xml *t = node_alloc(d, NODE_TEXT);
        t->u.tx = src->u.tx;
        node_append(dst_parent, t);
        return t;
    }
    tern_xml *e;
    if (dst_parent && strcmp(src->u.el.ns, dst_parent->u.el.ns) == 0)
        e = element_new(d, src->u.el.name, dst_parent->u.el.ns, false);
    else
        e = element_new(d, src->u.el.name, src->u.el.ns, true);
    for (tern_xml_attr *a = src->u.el.attrs; a; a = a->next)
        xml_set_attr_ns(e, a->xmlns, a->name, a->value);
    if (src->u.el.text_len) {
        e->u.el.text = arena_strndup(d, src->u.el.text, src->u.el.text_len);
        e->u.el.text_len = src->u.el.text_len;
        e->u.el.text_cap = src->u.el.text_len + 1;
    }
    if (dst_parent)
        node_append(dst_parent, e);
    return e;
}

/* Iterative deep copy (no recursion: depth is bounded by the parser, but not by callers). */
static tern_xml *copy_into(xml_doc *d, tern_xml *dst_parent, const tern_xml *src)
{
    tern_xml *top = clone_node(d, dst_parent, src);
    const tern_xml *s = src;
    tern_xml *dst = top;
    for (;;) {
        if (s->kind == NODE_ELEMENT && s->u.el.first) {
            s = s->u.el.first;
            dst = clone_node(d, dst, s);
            continue;
        }
        while (s != src && !s->next) {
            s = s->parent;
            dst = dst->parent;
        }
        if (s == src)
            return top;
        s = s->next;
        dst = clone_node(d, dst->parent, s);
    }
}

tern_xml *xml_copy(const tern_xml *node)
{
    /* Copies are what gets kept (a session's last presence, a queued stanza): the first chunk
     * is sized to what the source's tree uses rather than 1 KiB, which the copy never needs
     * more than (its strings and nodes are the same, without the source's growth slack). */
    size_t used = 0;
    for (const arena_chunk *c = node->doc->chunks; c; c = c->next)
        used += c->used;
    xml_doc *d = doc_new();
    if (used > 0 && used < ARENA_FIRST_CHUNK)
        d->chunks = chunk_new(used);
    return copy_into(d, NULL, node);
}

tern_xml *xml_add_copy(tern_xml *parent, const tern_xml *child)
{
    return copy_into(parent->doc, parent, child);
}

/* ---- reading ------------------------------------------------------------------------------- */

const char *xml_name(const tern_xml *node) { return node->u.el.name; }
const char *xml_ns(const tern_xml *node) { return node->u.el.ns; }
tern_xml *xml_parent(const tern_xml *node) { return node ? node->parent : NULL; }

bool xml_is(const tern_xml *node, const char *name, const char *xmlns)
{
    if (!node || node->kind != NODE_ELEMENT)
        return false;
    if (name && strcmp(node->u.el.name, name) != 0)
        return false;
    if (xmlns && strcmp(node->u.el.ns, xmlns) != 0)
        return false;
    return true;
}

static tern_xml *element_from(tern_xml *n)
{
    while (n && n->kind != NODE_ELEMENT)
        n = n->next;
    return n;
}

tern_xml *xml_first_element(const tern_xml *node)
{
    return node && node->kind == NODE_ELEMENT ? element_from(node->u.el.first) : NULL;
}

tern_xml *xml_next_element(const tern_xml *node) { return node ? element_from(node->next) : NULL; }

tern_xml *xml_child(const tern_xml *node, const char *name, const char *xmlns)
{
    for (tern_xml *c = xml_first_element(node); c; c = xml_next_element(c))
        if (xml_is(c, name, xmlns))
            return c;
    return NULL;
}

const char *xml_text(const tern_xml *node)
{
    if (!node || node->kind != NODE_ELEMENT || !node->u.el.text)
        return "";
    return node->u.el.text;
}

const char *xml_child_text(const tern_xml *node, const char *name, const char *xmlns)
{
    tern_xml *c = xml_child(node, name, xmlns);
    return c ? xml_text(c) : NULL;
}

/* ---- tern_buf ------------------------------------------------------------------------------ */

void buf_init(tern_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_free(tern_buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(tern_buf *b) { b->len = 0; }

static void buf_grow(tern_buf *b, size_t extra);

/* The serializer appends a few bytes at a time: the check that they fit stays inline, and
 * growing is out of line. */
static inline void buf_reserve(tern_buf *b, size_t extra)
{
    if (b->cap > b->len && extra < b->cap - b->len) /* room for extra and buf_cstr's NUL */
        return;
    buf_grow(b, extra);
}

static void buf_grow(tern_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        abort();
    size_t need = b->len + extra + 1; /* +1: room for buf_cstr's NUL */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xml_xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(tern_buf *b, const void *data, size_t len)
{
    if (!len)
        return;
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

char *buf_space(tern_buf *b, size_t len)
{
    buf_reserve(b, len);
    return b->data + b->len;
}

void buf_append_str(tern_buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_printf(tern_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *buf_cstr(tern_buf *b)
{
    if (!b->data)
        return "";
    buf_reserve(b, 0);
    b->data[b->len] = '\0';
    return b->data;
}

/* ---- escaping ------------------------------------------------------------------------------ */

static const char replacement_char[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Length of the valid UTF-8 sequence at p that XML 1.0 §2.2 allows as a Char, or 0. Rejects
 * overlong forms, surrogates, U+FFFE, U+FFFF and anything above U+10FFFF. */
static size_t utf8_xml_char_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* UTF-16 surrogates */
        if (c == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
            return 0; /* U+FFFE, U+FFFF */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* in_attr: also escape tab, LF (and CR everywhere), which a parser would otherwise normalise
 * (XML 1.0 §3.3.3 attribute-value normalisation, §2.11 end-of-line handling), so the peer reads
 * back exactly the value we hold. */
static void append_escaped(tern_buf *b, const char *s, size_t len, bool in_attr)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '&' && c != '<' && c != '>' && c != '"' && c != '\'') {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_xml_char_len(p, end);
            if (n) {
                p += n;
                continue;
            }
        }
        buf_append(b, run, (size_t)(p - run));
        switch (c) {
        case '&': buf_append(b, "&amp;", 5); break;
        case '<': buf_append(b, "&lt;", 4); break;
        case '>': buf_append(b, "&gt;", 4); break; /* also keeps "]]>" out of text */
        case '"': buf_append(b, "&quot;", 6); break;
        case '\'': buf_append(b, "&apos;", 6); break;
        case '\r': buf_append(b, "&#13;", 5); break;
        case '\n':
            if (in_attr)
                buf_append(b, "&#10;", 5);
            else
                buf_append(b, "\n", 1);
            break;
        case '\t':
            if (in_attr)
                buf_append(b, "&#9;", 4);
            else
                buf_append(b, "\t", 1);
            break;
        default: /* a control character or a byte that is not valid UTF-8 */
            buf_append(b, replacement_char, 3);
            break;
        }
        p++;
        run = p;
    }
    buf_append(b, run, (size_t)(p - run));
}

void buf_append_escaped(tern_buf *b, const char *s, size_t len) { append_escaped(b, s, len, true); }

/* ---- serializer ---------------------------------------------------------------------------- */

#define XMLNS_NS "http://www.w3.org/2000/xmlns/"

static void write_attr_value(tern_buf *out, const char *v)
{
    buf_append(out, "='", 2);
    append_escaped(out, v, strlen(v), true);
    buf_append(out, "'", 1);
}

/* Namespaced attributes other than xml:* get generated prefixes declared on their element.
 * A few recent (namespace, prefix) pairs are remembered so that the usual case (several
 * attributes in one namespace) declares it once; beyond that a namespace may simply be
 * declared again under a new prefix, which XML allows. */
#define PREFIX_CACHE 8

/* An element in the XML namespace (<xml:foo/>, legal input) can only be written with the xml
 * prefix: binding that namespace as a default namespace is forbidden (Namespaces in XML §3),
 * and a peer would reject the whole stream. */
static bool in_xml_ns(const tern_xml *n)
{
    /* Checked twice per element written: the first byte settles it for every usual namespace. */
    return n->u.el.ns[0] == TERN_XML_NS_XML[0] && strcmp(n->u.el.ns, TERN_XML_NS_XML) == 0;
}

static void write_name(const tern_xml *n, tern_buf *out)
{
    if (in_xml_ns(n))
        buf_append(out, "xml:", 4);
    buf_append_str(out, n->u.el.name);
}

static void write_start_tag(const tern_xml *n, const char *context_ns, tern_buf *out)
{
    buf_append(out, "<", 1);
    write_name(n, out);
    if (!in_xml_ns(n) && strcmp(n->u.el.ns, context_ns) != 0) {
        buf_append(out, " xmlns", 6);
        write_attr_value(out, n->u.el.ns);
    }
    const char *cache_ns[PREFIX_CACHE];
    unsigned cache_id[PREFIX_CACHE];
    unsigned cached = 0, next_id = 0;
    for (tern_xml_attr *a = n->u.el.attrs; a; a = a->next) {
        if (!a->xmlns) {
            /* Namespace declarations are the serializer's business; one set as a plain
             * attribute would change what the element means. */
            if (strncmp(a->name, "xmlns", 5) == 0 && (a->name[5] == '\0' || a->name[5] == ':'))
                continue;
            buf_append(out, " ", 1);
            buf_append_str(out, a->name);
        } else if (strcmp(a->xmlns, TERN_XML_NS_XML) == 0) {
            buf_append(out, " xml:", 5);
            buf_append_str(out, a->name);
        } else if (strcmp(a->xmlns, XMLNS_NS) == 0) {
            continue;
        } else {
            unsigned id = 0;
            bool found = false;
            for (unsigned i = 0; i < cached && i < PREFIX_CACHE; i++) {
                if (strcmp(cache_ns[i], a->xmlns) == 0) {
                    id = cache_id[i];
                    found = true;
                    break;
                }
            }
            if (!found) {
                id = next_id++;
                cache_ns[cached % PREFIX_CACHE] = a->xmlns;
                cache_id[cached % PREFIX_CACHE] = id;
                cached++;
                buf_printf(out, " xmlns:ns%u", id);
                write_attr_value(out, a->xmlns);
            }
            buf_printf(out, " ns%u:", id);
            buf_append_str(out, a->name);
        }
        write_attr_value(out, a->value);
    }
}

static void write_end_tag(const tern_xml *n, tern_buf *out)
{
    buf_append(out, "</", 2);
    write_name(n, out);
    buf_append(out, ">", 1);
}

/* The default namespace in force inside element n (the top element being `top`, written in
 * context `top_ctx`): its own namespace, unless it was written with the xml prefix. */
static const char *default_ns_inside(const tern_xml *n, const tern_xml *top, const char *top_ctx)
{
    for (;;) {
        if (!in_xml_ns(n))
            return n->u.el.ns;
        if (n == top)
            return top_ctx;
        n = n->parent;
    }
}

/* Iterative walk: the tree's depth never becomes stack depth. */
void xml_serialize(const tern_xml *node, const char *context_ns, tern_buf *out)
{
    if (!node)
        return;
    if (node->kind == NODE_TEXT) {
        append_escaped(out, node->parent->u.el.text + node->u.tx.off, node->u.tx.len, false);
        return;
    }
    const tern_xml *n = node;
    const char *ctx = context_ns ? context_ns : "";
    for (;;) {
        if (n->kind == NODE_TEXT) {
            append_escaped(out, n->parent->u.el.text + n->u.tx.off, n->u.tx.len, false);
        } else {
            write_start_tag(n, n == node ? ctx : default_ns_inside(n->parent, node, ctx), out);
            if (n->u.el.first) {
                buf_append(out, ">", 1);
                n = n->u.el.first;
                continue;
            }
            buf_append(out, "/>", 2);
        }
        /* n is finished: close ancestors that have no further children. */
        while (n != node && !n->next) {
            n = n->parent;
            write_end_tag(n, out);
        }
        if (n == node)
            return;
        n = n->next;
    }
}

char *xml_to_string(const tern_xml *node, const char *context_ns)
{
    tern_buf b;
    buf_init(&b);
    xml_serialize(node, context_ns, &b);
    buf_cstr(&b);
    if (!b.data) {
        char *empty = xml_xmalloc(1);
        empty[0] = '\0';
        return empty;
    }
    return b.data;
}
