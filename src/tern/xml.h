/* tern/xml.h — the stanza tree: small XML element trees with namespaces, and a serializer.
 *
 * A tree is owned by its root. Every node and string of a tree lives in the root's arena, so a
 * whole stanza is freed in one go and handlers never free individual nodes. A root is
 * reference counted only because one stanza may be fanned out to several sessions: whoever
 * holds a root either passes it on or calls xml_unref(), never both.
 *
 * Names are local names; namespaces are URIs (never prefixes). The serializer writes xmlns
 * declarations where a child's namespace differs from its parent's and escapes every text and
 * attribute value it writes, so client text can never become markup on another stream. */
#ifndef TERN_XML_H
#define TERN_XML_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tern_xml tern_xml;

/* The namespace of xml:lang and friends, as expat reports it. */
#define TERN_XML_NS_XML "http://www.w3.org/XML/1998/namespace"

/* A new root element (refcount 1). xmlns may be NULL (no namespace). Never returns NULL:
 * allocation failure aborts, as everywhere in tern. */
tern_xml *xml_new(const char *name, const char *xmlns);
void xml_ref(tern_xml *root);
void xml_unref(tern_xml *root); /* frees the whole tree when the count reaches 0 */
/* A deep copy of `node` and its subtree as a new root (refcount 1). */
tern_xml *xml_copy(const tern_xml *node);

/* Building. Strings are copied into the tree's arena. xmlns NULL on a child means "the
 * parent's namespace". */
tern_xml *xml_add_child(tern_xml *parent, const char *name, const char *xmlns);
void xml_add_text(tern_xml *parent, const char *text, size_t len);
/* Adds `child` (a separate root) as the last child of `parent` by copying it. */
tern_xml *xml_add_copy(tern_xml *parent, const tern_xml *child);
/* Sets (or replaces) an attribute without namespace; value NULL removes it. */
void xml_set_attr(tern_xml *node, const char *name, const char *value);
/* Sets a namespaced attribute (e.g. TERN_XML_NS_XML, "lang"). */
void xml_set_attr_ns(tern_xml *node, const char *xmlns, const char *name, const char *value);
/* Removes all children (elements and text) of node. */
void xml_clear_children(tern_xml *node);
/* Unlinks `child` from its parent; its memory stays in the arena until the root is freed. */
void xml_remove_child(tern_xml *parent, tern_xml *child);

/* Reading. */
const char *xml_name(const tern_xml *node);
const char *xml_ns(const tern_xml *node);   /* resolved namespace URI, or "" */
const char *xml_attr(const tern_xml *node, const char *name); /* NULL if absent */
const char *xml_attr_ns(const tern_xml *node, const char *xmlns, const char *name);
/* First child element with this name and namespace (either may be NULL: any). */
tern_xml *xml_child(const tern_xml *node, const char *name, const char *xmlns);
tern_xml *xml_first_element(const tern_xml *node);
tern_xml *xml_next_element(const tern_xml *node); /* next sibling element */
tern_xml *xml_parent(const tern_xml *node);
/* Concatenated direct text children of node, in the arena ("" when there is none). */
const char *xml_text(const tern_xml *node);
/* Text of the first child element name/xmlns, or NULL if there is no such child. */
const char *xml_child_text(const tern_xml *node, const char *name, const char *xmlns);
bool xml_is(const tern_xml *node, const char *name, const char *xmlns);

/* Attribute iteration, for code that must copy or inspect every attribute. */
typedef struct tern_xml_attr tern_xml_attr;
const tern_xml_attr *xml_first_attr(const tern_xml *node);
const tern_xml_attr *xml_next_attr(const tern_xml_attr *attr);
const char *xml_attr_name(const tern_xml_attr *attr);
const char *xml_attr_xmlns(const tern_xml_attr *attr); /* NULL when not namespaced */
const char *xml_attr_value(const tern_xml_attr *attr);

/* Growable byte buffer used by the serializer and elsewhere. The buffer owns `data`. */
typedef struct tern_buf {
    char *data;
    size_t len;
    size_t cap;
} tern_buf;
void buf_init(tern_buf *b);
void buf_free(tern_buf *b);
void buf_reset(tern_buf *b); /* len = 0, keeps the memory */
void buf_append(tern_buf *b, const void *data, size_t len);
/* Room for len more bytes at data + len (returned); the caller fills some and adds them to len
 * (reading a file straight into the buffer). */
char *buf_space(tern_buf *b, size_t len);
void buf_append_str(tern_buf *b, const char *s);
void buf_printf(tern_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends text with &, <, >, ", ' escaped (safe in text and in either attribute quote). */
void buf_append_escaped(tern_buf *b, const char *s, size_t len);
const char *buf_cstr(tern_buf *b); /* NUL-terminates and returns data ("" when empty) */

/* Serializes node and its subtree onto out. `context_ns` is the default namespace already in
 * force where the element is written (e.g. "jabber:client" for a stanza on a client stream):
 * an xmlns attribute is written only when the element's namespace differs from it. */
void xml_serialize(const tern_xml *node, const char *context_ns, tern_buf *out);
/* Convenience for logs and tests: a malloc'd string the caller frees. */
char *xml_to_string(const tern_xml *node, const char *context_ns);

#endif
