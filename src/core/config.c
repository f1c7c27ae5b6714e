/* config.c — loads and validates the INI configuration file (doc/architecture.md §6; every key in tern.conf(5)).
 *
 * libinih does the tokenising; everything else is ours. Debian's libinih is built without
 * INI_HANDLER_LINENO and without a handler call on section headers, and it cuts section names
 * at 49 characters, so we feed it through our own reader (read_line): the reader counts lines,
 * rejects over-long lines instead of letting inih split them, and handles "[section]" headers
 * itself. The key handler (on_key) then knows the line of every value it sees. Keys are
 * described by one table (config_keys.c), so adding a key is one row plus one field in config.h.
 *
 * Like OpenSMTPD's parse.y, the first error wins and names the file and line; parsing stops
 * there. A value is checked when it is read (the word-level parsers live in config_values.c),
 * and whole-file rules (defaults, cert/key pairs, at least one host) are checked at the end. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_keys.h"
#include "core/config_lists.h"
#include "core/config_values.h"
#include "core/log.h"
#include "core/util.h"
#include "tern/jid.h"

#define DEFAULT_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"
#define DEFAULT_C2S_LISTEN "127.0.0.1:5222"
#define DEFAULT_C2S_TLS_LISTEN "127.0.0.1:5223"
#define LIST_SEPARATORS " \t,"
#define MIN_STORAGE_SIZE 1048576ul /* below it LMDB's own pages leave no room for data */


#define PREV_SETTING K_COUNT

typedef struct parse_state {
    config *cfg;
    const char *file;         /* the path as the user gave it, for messages */
    FILE *fp;
    char *buf;                /* getline buffer */
    size_t cap;
    int lineno;
    bool indented;            /* the current line starts with white space */
    section sec;
    size_t host;              /* index of the current [host] in cfg->hosts */
    size_t component;         /* index of the current [component] in cfg->components */
    int prev_key;             /* key of the last "key = value" line in this section, or -1
                               * (PREV_SETTING: a module setting, prev_setting) */
    char *module;             /* in [module NAME]: NAME */
    config_settings *prev_settings; /* where the last module setting went, and its index */
    size_t prev_setting;
    config_settings sections; /* [module NAME] headers seen (module, line), for duplicates */
    int seen[K_COUNT];        /* line where each key was set, 0 if not (host keys: this host) */
    char *err;
    size_t err_len;
    int err_line;
    bool failed;
} parse_state;

/* Records the first error only: later ones are usually consequences of it. */
static void fail(parse_state *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(parse_state *st, int line, const char *fmt, ...)
{
    if (st->failed)
        return;
    st->failed = true;
    st->err_line = line;
    int n = line > 0 ? snprintf(st->err, st->err_len, "%s:%d: ", st->file, line)
                     : snprintf(st->err, st->err_len, "%s: ", st->file);
    if (n < 0 || (size_t)n >= st->err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err + n, st->err_len - (size_t)n, fmt, ap);
    va_end(ap);
}

/* One [s2s] routes entry; a domain has at most one. 0, or -1 after fail(). */
static int add_route(parse_state *st, config_routes *routes, const char *word)
{
    config_route r;
    if (!config_parse_route(word, &r)) {
        fail(st, st->lineno, "invalid route '%s' in routes (expected domain=host:port)", word);
        return -1;
    }
    for (size_t i = 0; i < routes->n; i++) {
        if (strcmp(routes->items[i].domain, r.domain) == 0) {
            fail(st, st->lineno, "domain '%s' has two routes", r.domain);
            free(r.domain);
            free(r.host);
            return -1;
        }
    }
    routes->items = xrealloc(routes->items, (routes->n + 1) * sizeof *routes->items);
    routes->items[routes->n++] = r;
    return 0;
}

/* Adds one word of a list value to its field; 0 or -1 after fail(). */
static int add_word(parse_state *st, const key_spec *k, void *field, const char *word)
{
    int line = st->lineno;
    switch (k->kind) {
    case V_ADMINS: {
        tern_jid jid;
        const char *why;
        if (jid_parse(word, &jid, &why) < 0) {
            fail(st, line, "invalid admin JID '%s': %s", word, why);
            return -1;
        }
        bool bare_user = jid.node && !jid.resource;
        if (bare_user && !config_strings_contain(field, jid.bare))
            config_strings_add(field, jid.bare);
        jid_free(&jid);
        if (!bare_user) {
            fail(st, line, "admin JID '%s' must be a bare JID (user@domain)", word);
            return -1;
        }
        return 0;
    }
    case V_DNS:
        if (!config_valid_dns_server(word)) {
            fail(st, line, "invalid DNS server '%s' (expected IP, IP:PORT or [IPv6]:PORT)", word);
            return -1;
        }
        config_strings_add(field, word);
        return 0;
    case V_ADDRS: {
        config_addr addr;
        const char *why;
        if (config_parse_addr_why(word, &addr, &why) < 0) {
            fail(st, line, "invalid address '%s' in %s (%s)", word, k->name, why);
            return -1;
        }
        config_addrs_add(field, &addr);
        return 0;
    }
    case V_MODULES:
        if (!config_valid_module_name(word)) {
            fail(st, line, "invalid module name '%s' (expected letters a-z, digits and _)", word);
            return -1;
        }
        if (config_strings_contain(field, word)) {
            fail(st, line, "module '%s' is listed twice", word);
            return -1;
        }
        config_strings_add(field, word);
        return 0;
    case V_ORIGINS:
        if (strcmp(word, "*") != 0 && !config_valid_origin(word)) {
            fail(st, line, "invalid origin '%s' in cors_origins (expected * or "
                 "scheme://host[:port], without a path)", word);
            return -1;
        }
        if (!config_strings_contain(field, word))
            config_strings_add(field, word);
        return 0;
    case V_DOMAINS: {
        char *domain = NULL;
        if (jid_prep_domain(word, &domain) != 0) {
            fail(st, line, "invalid domain '%s' in %s", word, k->name);
            return -1;
        }
        if (!config_strings_contain(field, domain))
            config_strings_add(field, domain);
        free(domain);
        return 0;
    }
    case V_ROUTES:
        return add_route(st, field, word);
    default:
        abort(); /* only list kinds come here */
    }
}

static int add_words(parse_state *st, const key_spec *k, void *field, const char *value)
{
    char *copy = xstrdup(value), *save = NULL;
    int rc = 0;
    for (char *w = strtok_r(copy, LIST_SEPARATORS, &save); w && rc == 0;
         w = strtok_r(NULL, LIST_SEPARATORS, &save))
        rc = add_word(st, k, field, w);
    free(copy);
    return rc;
}

/* ---- setting values ---- */

static char *resolve_path(const config *cfg, const char *value)
{
    return value[0] == '/' ? xstrdup(value) : xasprintf("%s/%s", cfg->dir, value);
}

static bool valid_priority(parse_state *st, const char *value)
{
    gnutls_priority_t prio;
    const char *err_pos = NULL;
    if (gnutls_priority_init(&prio, value, &err_pos) < 0) {
        fail(st, st->lineno, "invalid TLS priority string '%s' (error at '%s')", value,
             err_pos ? err_pos : "");
        return false;
    }
    gnutls_priority_deinit(prio);
    return true;
}

/* Stores `value` for key k; 0, or -1 after fail(). */
static int set_value(parse_state *st, const key_spec *k, const char *value)
{
    char *base = k->sec == SEC_HOST        ? (char *)&st->cfg->hosts[st->host]
                 : k->sec == SEC_COMPONENT ? (char *)&st->cfg->components[st->component]
                                           : (char *)st->cfg;
    void *field = base + k->offset;
    int line = st->lineno;
    unsigned long n;

    if (config_kind_is_list(k->kind))
        return add_words(st, k, field, value); /* empty: an empty list */
    if (*value == '\0' && k->kind != V_PATH_OPT) {
        fail(st, line, "%s needs a value", k->name);
        return -1;
    }
    switch (k->kind) {
    case V_PATH:
    case V_PATH_OPT:
        *(char **)field = *value ? resolve_path(st->cfg, value) : NULL;
        return 0;
    case V_PRIORITY:
        if (!valid_priority(st, value))
            return -1;
        *(char **)field = xstrdup(value);
        return 0;
    case V_SECRET: /* empty values are refused before this, as for every key */
        *(char **)field = xstrdup(value);
        return 0;
    case V_LOG_LEVEL: {
        int level = log_level_from_name(value);
        if (level < 0) {
            fail(st, line, "invalid log_level '%s' (expected error, warn, info or debug)", value);
            return -1;
        }
        *(int *)field = level;
        return 0;
    }
    case V_WORKERS:
        if (strcmp(value, "auto") == 0) {
            *(unsigned *)field = 0;
            return 0;
        }
        if (!config_parse_number(value, k->min, k->max, &n)) {
            fail(st, line, "invalid %s '%s' (expected auto or %lu..%lu)", k->name, value, k->min,
                 k->max);
            return -1;
        }
        *(unsigned *)field = (unsigned)n;
        return 0;
    case V_SIZE:
    case V_UINT:
        if (!config_parse_number(value, k->min, k->max, &n)) {
            fail(st, line, "invalid %s '%s' (expected a whole number in %lu..%lu)", k->name,
                 value, k->min, k->max);
            return -1;
        }
        if (k->kind == V_SIZE)
            *(size_t *)field = n;
        else
            *(unsigned *)field = (unsigned)n;
        return 0;
    case V_BOOL:
        if (config_parse_bool(value, field) < 0) {
            fail(st, line, "invalid %s '%s' (expected yes or no)", k->name, value);
            return -1;
        }
        return 0;
    default:
        abort();
    }
}

/* ---- sections ---- */

static bool one_of(const char *value, const char *const *choices)
{
    for (; *choices; choices++)
        if (strcmp(value, *choices) == 0)
            return true;
    return false;
}

/* The section being left is complete: check what needs the whole section. */
static void finish_section(parse_state *st)
{
    if (st->sec == SEC_COMPONENT && !st->failed) {
        config_component *c = &st->cfg->components[st->component];
        /* XEP-0356 §3: what the component may do on the users' behalf. */
        static const char *const roster[] = { "none", "get", "set", "both", NULL };
        static const char *const message[] = { "none", "outgoing", NULL };
        if (!c->secret)
            fail(st, c->line, "[component %s] needs a secret", c->name);
        else if (c->roster && !one_of(c->roster, roster))
            fail(st, st->seen[K_COMPONENT_ROSTER], "invalid roster '%s' (expected none, get, "
                 "set or both)", c->roster);
        else if (c->message && !one_of(c->message, message))
            fail(st, st->seen[K_COMPONENT_MESSAGE], "invalid message '%s' (expected none or "
                 "outgoing)", c->message);
        if (!c->roster)
            c->roster = xstrdup("none");
        if (!c->message)
            c->message = xstrdup("none");
        return;
    }
    if (st->sec != SEC_HOST || st->failed)
        return;
    const config_host *h = &st->cfg->hosts[st->host];
    if (h->cert && !h->key)
        fail(st, st->seen[K_HOST_CERT], "[host %s] has cert but no key", h->name);
    else if (h->key && !h->cert)
        fail(st, st->seen[K_HOST_KEY], "[host %s] has key but no cert", h->name);
}

static void open_host(parse_state *st, const char *name)
{
    config *cfg = st->cfg;
    char *prepared;
    if (*name == '\0') {
        fail(st, st->lineno, "[host] needs a name, e.g. [host example.org]");
        return;
    }
    if (strpbrk(name, " \t") || jid_prep_domain(name, &prepared) < 0) {
        fail(st, st->lineno, "invalid host name '%s'", name);
        return;
    }
    const config_host *dup = config_find_host(cfg, prepared);
    if (dup) {
        fail(st, st->lineno, "duplicate host '%s' (first defined on line %d)", prepared, dup->line);
        free(prepared);
        return;
    }
    cfg->hosts = xrealloc(cfg->hosts, (cfg->n_hosts + 1) * sizeof *cfg->hosts);
    config_host *h = &cfg->hosts[cfg->n_hosts];
    memset(h, 0, sizeof *h);
    h->name = prepared;
    h->line = st->lineno;
    st->host = cfg->n_hosts++;
    for (int k = K_HOST_MODULES; k < K_COUNT; k++)
        st->seen[k] = 0;
}

/* [component DOMAIN]: an external component (XEP-0114) and its shared secret. */
static void open_component(parse_state *st, const char *name)
{
    config *cfg = st->cfg;
    char *prepared;
    if (*name == '\0') {
        fail(st, st->lineno, "[component] needs a domain, e.g. [component irc.example.org]");
        return;
    }
    if (strpbrk(name, " \t") || jid_prep_domain(name, &prepared) < 0) {
        fail(st, st->lineno, "invalid component domain '%s'", name);
        return;
    }
    for (size_t i = 0; i < cfg->n_components; i++) {
        if (strcmp(cfg->components[i].name, prepared) == 0) {
            fail(st, st->lineno, "duplicate component '%s' (first defined on line %d)",
                 prepared, cfg->components[i].line);
            free(prepared);
            return;
        }
    }
    cfg->components = xrealloc(cfg->components,
                               (cfg->n_components + 1) * sizeof *cfg->components);
    cfg->components[cfg->n_components] = (config_component){ .name = prepared,
                                                             .line = st->lineno };
    st->component = cfg->n_components++;
    for (int k = K_COMPONENT_SECRET; k <= K_COMPONENT_MESSAGE; k++)
        st->seen[k] = 0;
}

static void open_module(parse_state *st, const char *name)
{
    if (*name == '\0') {
        fail(st, st->lineno, "[module] needs a module name, e.g. [module offline]");
        return;
    }
    if (!config_valid_module_name(name)) {
        fail(st, st->lineno, "invalid module name '%s' (expected letters a-z, digits and _)",
             name);
        return;
    }
    const config_setting *dup = config_settings_find(&st->sections, name, NULL);
    if (dup) {
        fail(st, st->lineno, "duplicate section [module %s] (first on line %d)", name, dup->line);
        return;
    }
    st->sections.items = xrealloc(st->sections.items,
                                  (st->sections.n + 1) * sizeof *st->sections.items);
    st->sections.items[st->sections.n++] = (config_setting){
        .module = xstrdup(name), .key = xstrdup(""), .value = xstrdup(""), .line = st->lineno };
    free(st->module);
    st->module = xstrdup(name);
}

/* Handles a "[name]" header line; `start` points at the '['. Mirrors inih's rule for where
 * the header ends (an inline comment needs white space before its ';'). */
static void open_section(parse_state *st, char *start)
{
    char *p = start + 1, *end = NULL;
    for (bool was_space = false; *p && !(was_space && *p == ';'); p++) {
        if (*p == ']') {
            end = p;
            break;
        }
        was_space = isspace((unsigned char)*p);
    }
    if (!end) {
        fail(st, st->lineno, "section header without closing ']'");
        return;
    }
    for (p = end + 1; isspace((unsigned char)*p); p++)
        ;
    if (*p && *p != ';' && *p != '#') {
        fail(st, st->lineno, "unexpected text after ']'");
        return;
    }
    *end = '\0';
    char *name = start + 1;
    while (isspace((unsigned char)*name))
        name++;
    for (p = end; p > name && isspace((unsigned char)p[-1]); p--)
        p[-1] = '\0';

    finish_section(st);
    st->prev_key = -1;
    if (strncmp(name, "host", 4) == 0 && (name[4] == '\0' || isspace((unsigned char)name[4]))) {
        for (name += 4; isspace((unsigned char)*name); name++)
            ;
        st->sec = SEC_HOST;
        open_host(st, name);
        return;
    }
    if (strncmp(name, "module", 6) == 0 &&
        (name[6] == '\0' || isspace((unsigned char)name[6]))) {
        for (name += 6; isspace((unsigned char)*name); name++)
            ;
        st->sec = SEC_MODULE;
        open_module(st, name);
        return;
    }
    if (strncmp(name, "component", 9) == 0 &&
        (name[9] == '\0' || isspace((unsigned char)name[9]))) {
        for (name += 9; isspace((unsigned char)*name); name++)
            ;
        st->sec = SEC_COMPONENT;
        open_component(st, name);
        return;
    }
    for (int s = SEC_SERVER; s < SEC_HOST; s++) {
        if (strcmp(name, config_section_names[s]) == 0) {
            st->sec = (section)s;
            return;
        }
    }
    fail(st, st->lineno, "unknown section [%s]", name);
}

/* ---- the two inih callbacks ---- */

/* ini_reader: hands inih exactly one line per call, so st->lineno is the line inih is about
 * to parse, and handles section headers (inih would not tell us about them). */
static char *read_line(char *str, int num, void *stream)
{
    parse_state *st = stream;
    if (st->failed)
        return NULL;
    ssize_t n = getline(&st->buf, &st->cap, st->fp);
    if (n < 0)
        return NULL;
    st->lineno++;
    size_t len = (size_t)n;
    size_t text_len = len;
    while (text_len > 0 && (st->buf[text_len - 1] == '\n' || st->buf[text_len - 1] == '\r'))
        text_len--;
    if (memchr(st->buf, '\0', len)) {
        fail(st, st->lineno, "line contains a NUL byte");
        return NULL;
    }
    /* inih's line buffer is fixed; it needs room for "\r\n\0" after the text. */
    if (num < 3 || text_len > (size_t)num - 3) {
        fail(st, st->lineno, "line is longer than %d characters", num - 3);
        return NULL;
    }
    memcpy(str, st->buf, len + 1);

    char *start = str;
    if (st->lineno == 1 && memcmp(start, "\xEF\xBB\xBF", 3) == 0)
        start += 3; /* inih skips a UTF-8 BOM too */
    st->indented = isspace((unsigned char)*start);
    while (isspace((unsigned char)*start))
        start++;
    /* Same order of tests as inih: comments, then continuation lines, then headers. */
    if (*start == '\0' || *start == ';' || *start == '#')
        return str;
    if (st->indented && st->prev_key >= 0)
        return str;
    if (*start == '[') {
        char *header = xstrdup(start); /* open_section cuts it up; inih needs the line intact */
        open_section(st, header);
        free(header);
        if (st->failed)
            return NULL;
    }
    return str;
}

/* Strips an inline "; comment" (inih leaves it on continuation lines) and trailing space. */
static void strip_comment(char *s)
{
    for (char *p = s; *p; p++) {
        if (*p == ';' && p > s && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

static int continue_value(parse_state *st, const char *value)
{
    if (st->prev_key == PREV_SETTING) {
        /* Module settings are words to their module: a continuation adds words. */
        config_setting *set = &st->prev_settings->items[st->prev_setting];
        char *copy = xstrdup(value);
        strip_comment(copy);
        char *joined = *set->value ? xasprintf("%s %s", set->value, copy) : xstrdup(copy);
        free(copy);
        free(set->value);
        set->value = joined;
        return 1;
    }
    const key_spec *k = &config_keys[st->prev_key];
    if (!config_kind_is_list(k->kind)) {
        fail(st, st->lineno, "indented line continues %s, which takes one value "
             "(remove the indentation)", k->name);
        return 0;
    }
    char *copy = xstrdup(value);
    strip_comment(copy);
    int rc = set_value(st, k, copy);
    free(copy);
    return rc == 0;
}

static const char *section_label(parse_state *st, char *buf, size_t len)
{
    if (st->sec == SEC_HOST)
        snprintf(buf, len, "[host %s]", st->cfg->hosts[st->host].name);
    else if (st->sec == SEC_COMPONENT)
        snprintf(buf, len, "[component %s]", st->cfg->components[st->component].name);
    else if (st->sec == SEC_MODULE)
        snprintf(buf, len, "[module %s]", st->module);
    else
        snprintf(buf, len, "[%s]", config_section_names[st->sec]);
    return buf;
}

/* A module setting; whether the module declares the key is checked later
 * (module_settings.c), once the modules can be asked. 0, or -1 after fail(). */
static int add_setting(parse_state *st, config_settings *list, const char *module,
                       const char *key, const char *value)
{
    if (!config_valid_module_name(module)) {
        fail(st, st->lineno, "invalid module name '%s' in '%s.%s' (expected MODULE.key)", module,
             module, key);
        return -1;
    }
    if (!config_valid_module_name(key)) {
        fail(st, st->lineno, "invalid key '%s' for module %s (expected letters a-z, digits "
             "and _)", key, module);
        return -1;
    }
    const config_setting *dup = config_settings_find(list, module, key);
    if (dup) {
        fail(st, st->lineno, "%s is already set on line %d", key, dup->line);
        return -1;
    }
    list->items = xrealloc(list->items, (list->n + 1) * sizeof *list->items);
    list->items[list->n] = (config_setting){
        .module = xstrdup(module), .key = xstrdup(key), .value = xstrdup(value),
        .line = st->lineno };
    st->prev_settings = list;
    st->prev_setting = list->n++;
    st->prev_key = PREV_SETTING;
    return 0;
}

/* ini_handler: called for each "key = value" line (and continuation line). The section
 * argument is ignored: ours is not cut at 49 characters. */
static int on_key(void *user, const char *section_unused, const char *name, const char *value)
{
    parse_state *st = user;
    (void)section_unused;
    if (st->failed)
        return 0;
    if (st->indented && st->prev_key >= 0)
        return continue_value(st, value);
    if (st->sec == SEC_NONE) {
        fail(st, st->lineno, "key '%s' is outside any section", name);
        return 0;
    }
    if (st->sec == SEC_MODULE)
        return add_setting(st, &st->cfg->module_settings, st->module, name, value) == 0;
    const char *dot = st->sec == SEC_HOST ? strchr(name, '.') : NULL;
    if (dot) {
        char *module = xstrndup(name, (size_t)(dot - name));
        int rc = add_setting(st, &st->cfg->hosts[st->host].module_settings, module, dot + 1,
                             value);
        free(module);
        return rc == 0;
    }
    int id = -1;
    for (int i = 0; i < K_COUNT && id < 0; i++)
        if (config_keys[i].sec == st->sec && strcmp(config_keys[i].name, name) == 0)
            id = i;
    if (id < 0) {
        char label[300];
        fail(st, st->lineno, "unknown key '%s' in %s", name, section_label(st, label, sizeof label));
        return 0;
    }
    if (st->seen[id]) {
        fail(st, st->lineno, "%s is already set on line %d", name, st->seen[id]);
        return 0;
    }
    st->seen[id] = st->lineno;
    st->prev_key = id;
    return set_value(st, &config_keys[id], value) == 0;
}

/* ---- whole-file rules ---- */

static void default_addr(parse_state *st, config_addr_list *list, key_id id, const char *text)
{
    config_addr addr;
    if (st->seen[id])
        return; /* an explicit empty value means "no listener" */
    if (config_parse_addr(text, &addr) < 0)
        abort(); /* our own constant */
    config_addrs_add(list, &addr);
}

static void check_send_queue(parse_state *st, const char *sec_name, const config_send_queue *q,
                             key_id high, key_id max)
{
    if (q->high_water > q->max)
        fail(st, st->seen[high] ? st->seen[high] : st->seen[max],
             "[%s] send_queue_high_water (%zu) must not be over max_send_queue (%zu)", sec_name,
             q->high_water, q->max);
}

static void finish_config(parse_state *st)
{
    config *cfg = st->cfg;
    if (!cfg->data_dir)
        cfg->data_dir = xasprintf("%s/../var", cfg->dir);
    if (!cfg->pid_file)
        cfg->pid_file = xasprintf("%s/ternd.pid", cfg->data_dir);
    if (!cfg->control_socket)
        cfg->control_socket = xasprintf("%s/ternd.ctl", cfg->data_dir);
    if (!cfg->tls_priority)
        cfg->tls_priority = xstrdup(DEFAULT_TLS_PRIORITY);
    for (int k = 0; k < K_COUNT && !cfg->s2s_section_line; k++)
        if (config_keys[k].sec == SEC_S2S && st->seen[k])
            cfg->s2s_section_line = st->seen[k];
    default_addr(st, &cfg->c2s_listen, K_C2S_LISTEN, DEFAULT_C2S_LISTEN);
    default_addr(st, &cfg->c2s_tls_listen, K_C2S_TLS_LISTEN, DEFAULT_C2S_TLS_LISTEN);

    if (cfg->max_storage_size && cfg->max_storage_size < MIN_STORAGE_SIZE)
        fail(st, st->seen[K_SERVER_MAX_STORAGE_SIZE], "max_storage_size must be 0 (no cap) "
             "or at least %lu bytes", MIN_STORAGE_SIZE);
    if (cfg->tls_cert && !cfg->tls_key)
        fail(st, st->seen[K_TLS_CERT], "[tls] has cert but no key");
    else if (cfg->tls_key && !cfg->tls_cert)
        fail(st, st->seen[K_TLS_KEY], "[tls] has key but no cert");
    for (size_t i = 0; i < cfg->s2s_secure_domains.n; i++)
        if (config_strings_contain(&cfg->s2s_insecure_domains, cfg->s2s_secure_domains.items[i])) {
            fail(st, st->seen[K_S2S_INSECURE_DOMAINS], "domain '%s' is in both secure_domains "
                 "and insecure_domains", cfg->s2s_secure_domains.items[i]);
            break;
        }
    check_send_queue(st, "c2s", &cfg->c2s_send_queue, K_C2S_SEND_HIGH, K_C2S_SEND_MAX);
    check_send_queue(st, "s2s", &cfg->s2s_send_queue, K_S2S_SEND_HIGH, K_S2S_SEND_MAX);
    check_send_queue(st, "http", &cfg->http_send_queue, K_HTTP_SEND_HIGH, K_HTTP_SEND_MAX);
    for (size_t i = 0; i < cfg->n_components; i++)
        if (config_find_host(cfg, cfg->components[i].name))
            fail(st, cfg->components[i].line, "component '%s' is also a [host]",
                 cfg->components[i].name);
    if (cfg->n_hosts == 0)
        fail(st, 0, "no [host NAME] section: at least one host is required");
}

/* cfg->path and cfg->dir: the folder is made absolute with realpath, but the file itself is
 * not resolved, so a symlinked config still finds its paths next to the link. */
static int set_location(config *cfg, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *folder = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
                         : xstrdup(".");
    cfg->dir = realpath(folder, NULL);
    free(folder);
    if (!cfg->dir)
        return -1;
    const char *base = slash ? slash + 1 : path;
    cfg->path = strcmp(cfg->dir, "/") == 0 ? xasprintf("/%s", base)
                                           : xasprintf("%s/%s", cfg->dir, base);
    return 0;
}

config *config_load(const char *path, char *err, size_t err_len)
{
    config *cfg = xcalloc(1, sizeof *cfg);
    parse_state st = { .cfg = cfg, .file = path, .prev_key = -1, .err = err, .err_len = err_len };
    if (err_len)
        err[0] = '\0';

    cfg->log_level = TERN_LOG_INFO;
    cfg->c2s_max_stanza_size = 262144;
    cfg->storage_queue_max = 32u << 20;
    cfg->c2s_require_tls = true;
    cfg->c2s_max_connections = 10000;
    cfg->c2s_login_timeout = 60;
    cfg->c2s_max_sessions_per_account = 10;
    cfg->c2s_max_connections_per_address = 256;
    cfg->c2s_max_unauthenticated = 2000;
    cfg->c2s_max_unauthenticated_per_address = 32;
    cfg->c2s_logins_per_second_per_address = 10;
    cfg->s2s_max_connections_per_address = 64;
    cfg->s2s_max_unauthenticated = 500;
    cfg->s2s_max_unauthenticated_per_address = 16;
    cfg->s2s_dialback = true;
    cfg->s2s_max_stanza_size = 524288;
    cfg->http_max_body_size = 1048576;
    const config_send_queue send_queue = { 512 * 1024, 16 * 1024 * 1024, 60 };
    cfg->c2s_send_queue = send_queue;
    cfg->s2s_send_queue = send_queue;
    cfg->http_send_queue = send_queue;

    st.fp = fopen(path, "r");
    if (!st.fp || set_location(cfg, path) < 0) {
        fail(&st, 0, "cannot open: %s", strerror(errno));
    } else {
        int rc = ini_parse_stream(read_line, &st, on_key, &st);
        if (ferror(st.fp)) {
            st.failed = false;
            fail(&st, 0, "cannot read: %s", strerror(errno));
        } else if (rc > 0 && (!st.failed || rc < st.err_line)) {
            /* inih found a line that is neither a header, a comment nor "key = value". */
            st.failed = false;
            fail(&st, rc, "syntax error (expected [section] or key = value)");
        }
        finish_section(&st);
        if (!st.failed)
            finish_config(&st);
    }
    if (st.fp)
        fclose(st.fp);
    free(st.buf);
    free(st.module);
    config_settings_free(&st.sections);
    if (st.failed) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}
