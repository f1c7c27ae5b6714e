/* bosh_link.c — the XEP-0206 client link: an XMPP client stream carried by a BOSH session
 * (bosh_route.c). It maps the c2s operations (tern/c2s.h) onto the session and the session's
 * requests back onto c2s input, so a BOSH client goes through the very same negotiation,
 * SASL, binding and routing as a TCP client.
 *
 *   open           records the header's id and from for the session creation response
 *                  (XEP-0206 §4: 'authid', 'from'); nothing is written.
 *   send_features  queued as <stream:features/> in the next response.
 *   send           queued; bosh_route.c writes it with xmlns='jabber:client'.
 *   stream_error   <body type='terminate' condition='remote-stream-error'> carrying the
 *                  <stream:error/> (XEP-0206 §6), after what was queued before it.
 *   close          <body type='terminate'/>.
 *   restart        the client's next request carries xmpp:restart='true' (XEP-0206 §5); its
 *                  <body/> is then passed to c2s as the new stream header.
 *   start_tls      none: encryption is HTTPS's business (XEP-0206 §4 "the client SHOULD ignore
 *                  any TLS feature").
 *
 * Channel binding: `channel_binding` is NULL, so SASL never offers the -PLUS mechanisms over
 * BOSH. A BOSH session is carried by several HTTP connections, each with its own TLS session
 * (and often ended by a proxy in front of tern), so there is no one channel that both ends see
 * for the whole exchange: a SCRAM exchange may start on one connection and finish on another,
 * and binding to whichever one carried a message would bind nothing the client can rely on.
 * `encrypted` is true when the session was created over HTTPS; bosh_route.c then refuses its
 * requests over plain HTTP (XEP-0124 §16.1), so the whole session is protected. */
#include "bosh_link.h"

#include <stdlib.h>
#include <tern/c2s.h>
#include <tern/ns.h>
#include <tern/util.h>

struct bosh_link {
    c2s *c2s;
    bosh_session *session;
};

/* ---- the link operations (c2s → client) ---- */

static void link_open(void *ctx, const c2s_stream_header *h)
{
    bosh_link *l = ctx;
    bosh_set_stream_info(l->session, h->id, h->from);
}

static void link_send_features(void *ctx, const tern_xml *features)
{
    bosh_link *l = ctx;
    bosh_queue_features(l->session, features);
}

static void link_send(void *ctx, const tern_xml *element)
{
    bosh_link *l = ctx;
    bosh_queue(l->session, element);
}

static void link_stream_error(void *ctx, const tern_xml *error)
{
    bosh_link *l = ctx;
    bosh_terminate(l->session, error);
}

static void link_close(void *ctx)
{
    bosh_link *l = ctx;
    bosh_terminate(l->session, NULL);
}

static void link_restart(void *ctx)
{
    bosh_link *l = ctx;
    bosh_expect_restart(l->session);
}

static void link_pause_reading(void *ctx, bool paused)
{
    bosh_link *l = ctx;
    bosh_pause_input(l->session, paused);
}

static bool link_encrypted(void *ctx)
{
    bosh_link *l = ctx;
    return bosh_secure(l->session);
}

static const char *link_peer(void *ctx)
{
    bosh_link *l = ctx;
    return bosh_peer(l->session);
}

static void link_free(void *ctx)
{
    bosh_link *l = ctx;
    bosh_session_free(l->session);
    free(l);
}

static const c2s_link bosh_c2s_stream = {
    .open = link_open,
    .send_features = link_send_features,
    .send = link_send,
    .stream_error = link_stream_error,
    .close = link_close,
    .restart = link_restart,
    .start_tls = NULL,
    .pause_reading = link_pause_reading,
    .encrypted = link_encrypted,
    .channel_binding = NULL, /* see the top of this file */
    .peer = link_peer,
    .free = link_free,
};

/* ---- the session's input (client → c2s) ---- */

bosh_link *bosh_link_new(bosh_session *s)
{
    bosh_link *l = xcalloc(1, sizeof *l);
    l->session = s;
    l->c2s = c2s_new(&bosh_c2s_stream, l, bosh_peer(s));
    return l;
}

uint64_t bosh_link_id(const bosh_link *l) { return c2s_id(l->c2s); }

static void bosh_link_header(bosh_link *l, const tern_xml *body)
{
    /* The attributes a TCP client puts on <stream:stream/> travel on the <body/> of the
     * creation and restart requests (XEP-0206 §4, §5). xmpp:version defaults to 1.0 (the
     * XEP-0206 schema), since a BOSH client does not send a stream header of its own. */
    tern_xml *header = xml_new("stream", NS_STREAMS);
    const char *to = xml_attr(body, "to");
    const char *from = xml_attr(body, "from");
    const char *version = xml_attr_ns(body, NS_XBOSH, "version");
    const char *lang = xml_attr_ns(body, TERN_XML_NS_XML, "lang");
    if (to)
        xml_set_attr(header, "to", to);
    if (from)
        xml_set_attr(header, "from", from);
    xml_set_attr(header, "version", version ? version : "1.0");
    if (lang)
        xml_set_attr_ns(header, TERN_XML_NS_XML, "lang", lang);
    /* RFC 7395 and XEP-0206 have no stream-level default namespace: the content is
     * jabber:client (bosh_route.c maps payloads left in the body's namespace onto it). */
    c2s_received_header(l->c2s, header, NS_CLIENT);
    xml_unref(header);
}

static void bosh_link_element(bosh_link *l, tern_xml *element) { c2s_received_element(l->c2s, element); }

static void bosh_link_close(bosh_link *l) { c2s_received_close(l->c2s); }

static void bosh_link_error(bosh_link *l, tern_stream_error cond, const char *text)
{
    c2s_stream_error(l->c2s, cond, text);
}

static void bosh_link_ended(bosh_link *l, const char *reason) { c2s_link_ended(l->c2s, reason); }

const bosh_link_ops bosh_c2s_link = {
    .header = bosh_link_header,
    .element = bosh_link_element,
    .close = bosh_link_close,
    .error = bosh_link_error,
    .ended = bosh_link_ended,
};
