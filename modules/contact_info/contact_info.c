/* contact_info — the server's contact addresses (XEP-0157): where to report abuse, reach the
 * admins, get support, report a security issue, give feedback, buy service, read the status,
 * as URIs (mailto:, xmpp:, https:, tel:, ...) in a XEP-0128 form of the host's disco#info.
 *
 * Each address kind is a setting; an empty one is left out of the form, and with every one
 * empty there is no form. The form is built for each answer, so a SIGHUP shows new values at
 * once. XEP-0157 §5 field vars: abuse-addresses, admin-addresses, feedback-addresses,
 * sales-addresses, security-addresses, status-addresses, support-addresses. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <tern/module.h>
#include <tern/util.h>

#define NS_DATA "jabber:x:data"                         /* XEP-0004 */
#define SERVERINFO "http://jabber.org/network/serverinfo" /* XEP-0157 FORM_TYPE */

static bool check_uris(const char *value, char *why, size_t why_len);

static const tern_setting_def contact_settings[] = {
    { "abuse", TERN_SETTING_STRING, "", 0, 0,
      "URIs to report abuse to (e.g. mailto:abuse@example.org xmpp:abuse@example.org)",
      check_uris },
    { "admin", TERN_SETTING_STRING, "", 0, 0, "URIs of the server's administrators",
      check_uris },
    { "feedback", TERN_SETTING_STRING, "", 0, 0, "URIs for feedback", check_uris },
    { "sales", TERN_SETTING_STRING, "", 0, 0, "URIs for sales", check_uris },
    { "security", TERN_SETTING_STRING, "", 0, 0,
      "URIs to report security issues to", check_uris },
    { "status", TERN_SETTING_STRING, "", 0, 0,
      "URIs where the service's status is published", check_uris },
    { "support", TERN_SETTING_STRING, "", 0, 0, "URIs for user support", check_uris },
    { NULL, 0, NULL, 0, 0, NULL, NULL },
};

/* One URI: a scheme (RFC 3986 §3.1: a letter, then letters, digits, + - .), a ':' and more. */
static bool is_uri(const char *p, size_t len)
{
    size_t i = 0;
    if (len == 0 || !isalpha((unsigned char)p[0]))
        return false;
    while (i < len && (isalnum((unsigned char)p[i]) || p[i] == '+' || p[i] == '-' || p[i] == '.'))
        i++;
    return i < len && p[i] == ':' && i + 1 < len;
}

static bool check_uris(const char *value, char *why, size_t why_len)
{
    for (const char *p = value; *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (len && !is_uri(p, len)) {
            snprintf(why, why_len, "'%.*s' is not a URI (e.g. mailto:abuse@example.org)",
                     (int)len, p);
            return false;
        }
        p += len;
    }
    return true;
}

static void add_field(tern_xml *form, const char *var, const char *uris)
{
    tern_xml *field = NULL;
    for (const char *p = uris; *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (len) {
            if (!field) {
                field = xml_add_child(form, "field", NS_DATA);
                xml_set_attr(field, "var", var);
            }
            tern_xml *value = xml_add_child(field, "value", NS_DATA);
            xml_add_text(value, p, len);
        }
        p += len;
    }
}

static void add_form(tern_host *host, tern_xml *query)
{
    static const char *const kinds[] = { "abuse", "admin", "feedback", "sales", "security",
                                         "status", "support" };
    bool any = false;
    for (size_t i = 0; i < ARRAY_LEN(kinds) && !any; i++)
        any = *tern_setting_string(host, "contact_info", kinds[i]) != '\0';
    if (!any)
        return;
    tern_xml *form = xml_add_child(query, "x", NS_DATA);
    xml_set_attr(form, "type", "result");
    tern_xml *type = xml_add_child(form, "field", NS_DATA);
    xml_set_attr(type, "var", "FORM_TYPE");
    xml_set_attr(type, "type", "hidden");
    tern_xml_add_text_child(type, "value", NS_DATA, SERVERINFO);
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        char var[32];
        snprintf(var, sizeof var, "%s-addresses", kinds[i]);
        add_field(form, var, tern_setting_string(host, "contact_info", kinds[i]));
    }
}

static const tern_disco_extension contact_form = { add_form };

static int contact_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    tern_disco_add_extension(host, SERVERINFO, &contact_form);
    return 0;
}

TERN_MODULE_SETTINGS("contact_info", contact_load, NULL, contact_settings);
