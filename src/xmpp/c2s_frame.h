/* c2s_frame.h — the RFC 6120 stream syntax around what c2s sends over TCP: our header, the
 * features, elements, a stream error and our close, written as bytes into a buffer. Shared by
 * the link on the main loop (c2s_tcp.c) and the relayed one (c2s_relay.c), so a client sees
 * the same bytes whichever loop carries its connection. */
#ifndef TERN_C2S_FRAME_H
#define TERN_C2S_FRAME_H

#include "tern/c2s.h"
#include "tern/xml.h"

/* <?xml?><stream:stream ...> with jabber:client as the default namespace. */
void c2s_frame_open(tern_buf *out, const c2s_stream_header *h);
/* <stream:features>children</stream:features> */
void c2s_frame_features(tern_buf *out, const tern_xml *features);
/* One element, with jabber:client as the default namespace in force (our header declared it). */
void c2s_frame_element(tern_buf *out, const tern_xml *element);
/* <stream:error>children</stream:error></stream:stream> */
void c2s_frame_stream_error(tern_buf *out, const tern_xml *error);
/* </stream:stream> */
void c2s_frame_close(tern_buf *out);

#endif
