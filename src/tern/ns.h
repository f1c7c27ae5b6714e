/* tern/ns.h — XML namespaces used by the core and modules. */
#ifndef TERN_NS_H
#define TERN_NS_H

#define NS_STREAMS        "http://etherx.jabber.org/streams"
#define NS_CLIENT         "jabber:client"
#define NS_SERVER         "jabber:server"
#define NS_STREAM_ERRORS  "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_STANZA_ERRORS  "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_TLS            "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL           "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND           "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION        "urn:ietf:params:xml:ns:xmpp-session"
#define NS_SASL_CB        "urn:xmpp:sasl-cb:0"            /* XEP-0440 */
#define NS_FRAMING        "urn:ietf:params:xml:ns:xmpp-framing" /* RFC 7395 */
#define NS_DISCO_INFO     "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS    "http://jabber.org/protocol/disco#items"
#define NS_PING           "urn:xmpp:ping"
#define NS_VERSION        "jabber:iq:version"
#define NS_TIME           "urn:xmpp:time"
#define NS_DELAY          "urn:xmpp:delay"
#define NS_REGISTER       "jabber:iq:register"                      /* XEP-0077 */
#define NS_REGISTER_FEATURE "http://jabber.org/features/iq-register"

#endif
