/* c2s_frame.c — see c2s_frame.h. */
#include "xmpp/c2s_frame.h"

#include <string.h>

#include "tern/ns.h"

void c2s_frame_open(tern_buf *out, const c2s_stream_header *h)
{
    buf_append_str(out, "<?xml version='1.0'?><stream:stream xmlns='" NS_CLIENT
                        "' xmlns:stream='" NS_STREAMS "' id='");
    buf_append_str(out, h->id);
    if (h->from) {
        buf_append_str(out, "' from='");
        buf_append_escaped(out, h->from, strlen(h->from));
    }
    if (h->to) {
        buf_append_str(out, "' to='");
        buf_append_escaped(out, h->to, strlen(h->to));
    }
    buf_append_str(out, "' version='");
    buf_append_escaped(out, h->version, strlen(h->version));
    buf_append_str(out, "' xml:lang='");
    buf_append_escaped(out, h->lang, strlen(h->lang));
    buf_append_str(out, "'>");
}

void c2s_frame_element(tern_buf *out, const tern_xml *element)
{
    xml_serialize(element, NS_CLIENT, out);
}

static void frame_children(tern_buf *out, const tern_xml *x)
{
    for (const tern_xml *child = xml_first_element(x); child; child = xml_next_element(child))
        c2s_frame_element(out, child);
}

void c2s_frame_features(tern_buf *out, const tern_xml *features)
{
    buf_append_str(out, "<stream:features>");
    frame_children(out, features);
    buf_append_str(out, "</stream:features>");
}

void c2s_frame_stream_error(tern_buf *out, const tern_xml *error)
{
    buf_append_str(out, "<stream:error>");
    frame_children(out, error);
    buf_append_str(out, "</stream:error></stream:stream>");
}

void c2s_frame_close(tern_buf *out) { buf_append_str(out, "</stream:stream>"); }
