/* test_config.c — unit tests for the configuration file parser (src/core/config.c).
 *
 * Each test writes real files into a fresh temporary folder and loads them, so relative paths,
 * symlinks and line numbers are exercised exactly as ternd and ternctl see them. Errors are
 * compared as whole strings: the "FILE:LINE: reason" format is part of the contract. */
#include <arpa/inet.h>
#include <check.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

static char tmpdir[PATH_MAX];     /* realpath of the test's folder */
static char conf_path[PATH_MAX + 64];/* the last file written by write_conf */
static char err[PATH_MAX + 1024];

static void setup(void)
{
    char tmpl[] = "/tmp/tern-test-config-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_ptr_nonnull(realpath(tmpl, tmpdir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes `text` to a new file in `folder` (tmpdir when NULL) and returns its path. */
static const char *write_conf_in(const char *folder, const char *text)
{
    snprintf(conf_path, sizeof conf_path, "%s/tern-XXXXXX", folder ? folder : tmpdir);
    int fd = mkstemp(conf_path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return conf_path;
}

static const char *write_conf(const char *text) { return write_conf_in(NULL, text); }

/* Loads `text`, which must fail, and returns the error. */
static const char *load_error(const char *text)
{
    config *cfg = config_load(write_conf(text), err, sizeof err);
    ck_assert_msg(cfg == NULL, "config loaded but should fail:\n%s", text);
    return err;
}

/* The expected error for the last written file: "FILE:LINE: reason", or "FILE: reason" when
 * line is 0. */
static const char *expect(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *expect(int line, const char *fmt, ...)
{
    static char buf[PATH_MAX + 1024];
    int n = line ? snprintf(buf, sizeof buf, "%s:%d: ", conf_path, line)
                 : snprintf(buf, sizeof buf, "%s: ", conf_path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

static config *load_ok(const char *text)
{
    config *cfg = config_load(write_conf(text), err, sizeof err);
    ck_assert_msg(cfg != NULL, "config failed: %s", err);
    return cfg;
}

static const char *in_tmp(const char *rest)
{
    static char buf[2][PATH_MAX + 64];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", tmpdir, rest);
    return buf[which];
}

#define MINIMAL_HOST "[host localhost]\n"

/* The sample configuration of the project's target design: every core section, inline
 * comments and all. */
static const char design_sample[] =
    "[server]\n"
    "data_dir = ../var            ; LMDB lives here\n"
    "log_level = info             ; error|warn|info|debug\n"
    "workers = auto\n"
    "admins = admin@localhost     ; may run XEP-0133 commands\n"
    "dns_servers =                ; empty: system resolver; else e.g. 127.0.1.53:53 (used for SRV lookups)\n"
    "\n"
    "[tls]\n"
    "cert = certs/localhost.crt   ; one pair per host may also be set in [host NAME]\n"
    "key = certs/localhost.key\n"
    "ca_file =                    ; CAs trusted for s2s peers; empty: the system store\n"
    "\n"
    "[c2s]\n"
    "listen = 127.0.0.1:5222 [::1]:5222     ; STARTTLS\n"
    "tls_listen = 127.0.0.1:5223            ; direct TLS (XEP-0368)\n"
    "max_stanza_size = 262144\n"
    "\n"
    "[s2s]\n"
    "listen = 127.0.0.1:5269\n"
    "dialback = yes\n"
    "\n"
    "[http]\n"
    "listen = 127.0.0.1:5280                ; BOSH at /http-bind, WebSocket at /xmpp-websocket\n"
    "\n"
    "[host localhost]\n"
    "modules = roster presence offline disco ping version vcard private blocking carbons adhoc admin s2s bosh websocket\n"
    "registration = no\n";

static void assert_addr4(const config_addr *a, const char *text, const char *ip, int port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
    char buf[INET_ADDRSTRLEN];
    ck_assert_str_eq(a->text, text);
    ck_assert_int_eq(sin->sin_family, AF_INET);
    ck_assert_uint_eq(a->len, sizeof(struct sockaddr_in));
    ck_assert_str_eq(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf), ip);
    ck_assert_int_eq(ntohs(sin->sin_port), port);
}

static void assert_addr6(const config_addr *a, const char *text, const char *ip, int port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
    char buf[INET6_ADDRSTRLEN];
    ck_assert_str_eq(a->text, text);
    ck_assert_int_eq(sin6->sin6_family, AF_INET6);
    ck_assert_uint_eq(a->len, sizeof(struct sockaddr_in6));
    ck_assert_str_eq(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf), ip);
    ck_assert_int_eq(ntohs(sin6->sin6_port), port);
}

START_TEST(test_design_sample)
{
    config *cfg = load_ok(design_sample);
    ck_assert_str_eq(cfg->path, conf_path);
    ck_assert_str_eq(cfg->dir, tmpdir);
    ck_assert_str_eq(cfg->data_dir, in_tmp("../var"));
    ck_assert_int_eq(cfg->log_level, TERN_LOG_INFO);
    ck_assert_uint_eq(cfg->workers, 0);
    ck_assert_uint_eq(cfg->admins.n, 1);
    ck_assert_str_eq(cfg->admins.items[0], "admin@localhost");
    ck_assert_uint_eq(cfg->dns_servers.n, 0);
    ck_assert_ptr_null(cfg->module_dir);
    ck_assert_str_eq(cfg->pid_file, in_tmp("../var/ternd.pid"));

    ck_assert_str_eq(cfg->tls_cert, in_tmp("certs/localhost.crt"));
    ck_assert_str_eq(cfg->tls_key, in_tmp("certs/localhost.key"));
    ck_assert_ptr_null(cfg->tls_ca_file);
    ck_assert_str_eq(cfg->tls_priority,
                     "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE");

    ck_assert_uint_eq(cfg->c2s_listen.n, 2);
    assert_addr4(&cfg->c2s_listen.items[0], "127.0.0.1:5222", "127.0.0.1", 5222);
    assert_addr6(&cfg->c2s_listen.items[1], "[::1]:5222", "::1", 5222);
    ck_assert_uint_eq(cfg->c2s_tls_listen.n, 1);
    assert_addr4(&cfg->c2s_tls_listen.items[0], "127.0.0.1:5223", "127.0.0.1", 5223);
    ck_assert_uint_eq(cfg->c2s_max_stanza_size, 262144);
    ck_assert_uint_eq(cfg->storage_queue_max, 32u << 20);
    ck_assert(cfg->c2s_require_tls);
    ck_assert_uint_eq(cfg->c2s_max_connections, 10000);
    ck_assert_uint_eq(cfg->c2s_login_timeout, 60);

    ck_assert_uint_eq(cfg->s2s_listen.n, 1);
    assert_addr4(&cfg->s2s_listen.items[0], "127.0.0.1:5269", "127.0.0.1", 5269);
    ck_assert(cfg->s2s_dialback);
    ck_assert_uint_eq(cfg->s2s_max_stanza_size, 524288);
    ck_assert(!cfg->s2s_require_valid_certificates);
    ck_assert_uint_eq(cfg->s2s_secure_domains.n, 0);
    ck_assert_uint_eq(cfg->s2s_insecure_domains.n, 0);

    ck_assert_uint_eq(cfg->http_listen.n, 1);
    assert_addr4(&cfg->http_listen.items[0], "127.0.0.1:5280", "127.0.0.1", 5280);
    ck_assert_uint_eq(cfg->http_tls_listen.n, 0);

    ck_assert_uint_eq(cfg->n_hosts, 1);
    const config_host *h = &cfg->hosts[0];
    ck_assert_str_eq(h->name, "localhost");
    ck_assert_int_eq(h->line, 25);
    ck_assert_uint_eq(h->modules.n, 15);
    ck_assert_str_eq(h->modules.items[0], "roster");
    ck_assert_str_eq(h->modules.items[3], "disco");
    ck_assert_str_eq(h->modules.items[14], "websocket");
    ck_assert(!h->registration);
    ck_assert_ptr_null(h->cert);
    ck_assert_ptr_null(h->key);

    ck_assert_ptr_eq(config_find_host(cfg, "localhost"), h);
    ck_assert_ptr_null(config_find_host(cfg, "example.org"));
    ck_assert(config_is_admin(cfg, "admin@localhost"));
    ck_assert(!config_is_admin(cfg, "bob@localhost"));
    ck_assert(!config_is_admin(cfg, "localhost"));
    config_free(cfg);
}
END_TEST

START_TEST(test_every_key)
{
    config *cfg = load_ok(
        "; every key with a value that is not its default\r\n"
        "[server]\r\n"
        "data_dir = /srv/tern\r\n"
        "log_level = debug\r\n"
        "workers = 4\r\n"
        "admins = Admin@LocalHost, bob@example.org\r\n"
        "dns_servers = 127.0.1.53:53 8.8.8.8 [2001:db8::1]:5353 ::1 [::2]\r\n"
        "module_dir = mods\r\n"
        "pid_file = /run/tern/ternd.pid\r\n"
        "[tls]\r\n"
        "priority = SECURE256\r\n"
        "ca_file = ca.pem\r\n"
        "[c2s]\r\n"
        "listen = *:5222, [::]:5222\r\n"
        "tls_listen =\r\n"
        "max_stanza_size = 1024\r\n"
        "require_tls = off\r\n"
        "max_connections = 5\r\n"
        "login_timeout = 10\r\n"
        "[s2s]\r\n"
        "dialback = FALSE\r\n"
        "require_valid_certificates = yes\r\n"
        "insecure_domains = Old.Example, legacy.test\r\n"
        "secure_domains = bank.test\r\n"
        "max_stanza_size = 16777216\r\n"
        "[http]\r\n"
        "listen = 127.0.0.1:5280\r\n"
        "tls_listen = 127.0.0.1:5281\r\n"
        "[host Example.ORG]\r\n"
        "modules = ping,disco\r\n"
        "registration = 1\r\n"
        "cert = example.crt\r\n"
        "key = /etc/ssl/example.key\r\n"
        "[host localhost]\r\n");
    ck_assert_str_eq(cfg->data_dir, "/srv/tern");
    ck_assert_int_eq(cfg->log_level, TERN_LOG_DEBUG);
    ck_assert_uint_eq(cfg->workers, 4);
    ck_assert_uint_eq(cfg->admins.n, 2);
    ck_assert_str_eq(cfg->admins.items[0], "admin@localhost");
    ck_assert_str_eq(cfg->admins.items[1], "bob@example.org");
    ck_assert(config_is_admin(cfg, "admin@localhost"));
    ck_assert_uint_eq(cfg->dns_servers.n, 5);
    ck_assert_str_eq(cfg->dns_servers.items[0], "127.0.1.53:53");
    ck_assert_str_eq(cfg->dns_servers.items[1], "8.8.8.8");
    ck_assert_str_eq(cfg->dns_servers.items[2], "[2001:db8::1]:5353");
    ck_assert_str_eq(cfg->dns_servers.items[3], "::1");
    ck_assert_str_eq(cfg->dns_servers.items[4], "[::2]");
    ck_assert_str_eq(cfg->module_dir, in_tmp("mods"));
    ck_assert_str_eq(cfg->pid_file, "/run/tern/ternd.pid");
    ck_assert_str_eq(cfg->tls_priority, "SECURE256");
    ck_assert_str_eq(cfg->tls_ca_file, in_tmp("ca.pem"));
    ck_assert_ptr_null(cfg->tls_cert);
    ck_assert_ptr_null(cfg->tls_key);
    ck_assert_uint_eq(cfg->c2s_listen.n, 2);
    assert_addr4(&cfg->c2s_listen.items[0], "*:5222", "0.0.0.0", 5222);
    assert_addr6(&cfg->c2s_listen.items[1], "[::]:5222", "::", 5222);
    ck_assert_uint_eq(cfg->c2s_tls_listen.n, 0);
    ck_assert_uint_eq(cfg->c2s_max_stanza_size, 1024);
    ck_assert(!cfg->c2s_require_tls);
    ck_assert_uint_eq(cfg->c2s_max_connections, 5);
    ck_assert_uint_eq(cfg->c2s_login_timeout, 10);
    ck_assert_uint_eq(cfg->s2s_listen.n, 0);
    ck_assert(!cfg->s2s_dialback);
    ck_assert(cfg->s2s_require_valid_certificates);
    ck_assert_uint_eq(cfg->s2s_insecure_domains.n, 2);
    ck_assert_str_eq(cfg->s2s_insecure_domains.items[0], "old.example");
    ck_assert_str_eq(cfg->s2s_insecure_domains.items[1], "legacy.test");
    ck_assert_uint_eq(cfg->s2s_secure_domains.n, 1);
    ck_assert(config_s2s_requires_certificate(cfg, "other.test"));
    ck_assert(!config_s2s_requires_certificate(cfg, "old.example"));
    ck_assert(config_s2s_requires_certificate(cfg, "bank.test"));
    ck_assert_uint_eq(cfg->s2s_max_stanza_size, 16777216);
    ck_assert_uint_eq(cfg->http_tls_listen.n, 1);
    assert_addr4(&cfg->http_tls_listen.items[0], "127.0.0.1:5281", "127.0.0.1", 5281);

    ck_assert_uint_eq(cfg->n_hosts, 2);
    const config_host *h = config_find_host(cfg, "example.org");
    ck_assert_ptr_eq(h, &cfg->hosts[0]);
    ck_assert_int_eq(h->line, 29);
    ck_assert_uint_eq(h->modules.n, 2);
    ck_assert_str_eq(h->modules.items[0], "ping");
    ck_assert_str_eq(h->modules.items[1], "disco");
    ck_assert(h->registration);
    ck_assert_str_eq(h->cert, in_tmp("example.crt"));
    ck_assert_str_eq(h->key, "/etc/ssl/example.key");
    h = config_find_host(cfg, "localhost");
    ck_assert_ptr_eq(h, &cfg->hosts[1]);
    ck_assert_uint_eq(h->modules.n, 0);
    ck_assert(!h->registration);
    config_free(cfg);
}
END_TEST

START_TEST(test_relative_paths)
{
    config *cfg = load_ok("[server]\n"
                          "data_dir = data\n"
                          "module_dir = ../lib/modules\n"
                          "[tls]\n"
                          "cert = ./c.crt\n"
                          "key = /abs/c.key\n"
                          MINIMAL_HOST);
    ck_assert_str_eq(cfg->data_dir, in_tmp("data"));
    ck_assert_str_eq(cfg->pid_file, in_tmp("data/ternd.pid")); /* follows data_dir */
    ck_assert_str_eq(cfg->module_dir, in_tmp("../lib/modules"));
    ck_assert_str_eq(cfg->tls_cert, in_tmp("./c.crt"));
    ck_assert_str_eq(cfg->tls_key, "/abs/c.key");
    config_free(cfg);
}
END_TEST

/* A config reached through a symlink keeps its paths next to the link, not the target. */
START_TEST(test_paths_relative_to_symlink_folder)
{
    const char *other = in_tmp("other");
    ck_assert_int_eq(mkdir(other, 0700), 0);
    write_conf_in(other, "[server]\ndata_dir = db\n" MINIMAL_HOST);
    const char *link = in_tmp("link.conf");
    ck_assert_int_eq(symlink(conf_path, link), 0);

    config *cfg = config_load(link, err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_str_eq(cfg->dir, tmpdir);
    ck_assert_str_eq(cfg->path, link);
    ck_assert_str_eq(cfg->data_dir, in_tmp("db"));
    config_free(cfg);

    /* A relative path to the file is made absolute from the working directory. */
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    cfg = config_load("other/../link.conf", err, sizeof err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_str_eq(cfg->dir, tmpdir);
    ck_assert_str_eq(cfg->data_dir, in_tmp("db"));
    config_free(cfg);
}
END_TEST

START_TEST(test_listen_defaults)
{
    config *cfg = load_ok(MINIMAL_HOST);
    ck_assert_uint_eq(cfg->c2s_listen.n, 1);
    assert_addr4(&cfg->c2s_listen.items[0], "127.0.0.1:5222", "127.0.0.1", 5222);
    ck_assert_uint_eq(cfg->c2s_tls_listen.n, 1);
    assert_addr4(&cfg->c2s_tls_listen.items[0], "127.0.0.1:5223", "127.0.0.1", 5223);
    ck_assert_uint_eq(cfg->s2s_listen.n, 0);
    ck_assert_uint_eq(cfg->http_listen.n, 0);
    ck_assert_uint_eq(cfg->http_tls_listen.n, 0);
    ck_assert_str_eq(cfg->data_dir, in_tmp("../var"));
    config_free(cfg);

    /* Present but empty: no listener at all. */
    cfg = load_ok("[c2s]\nlisten =\ntls_listen = ; none\n" MINIMAL_HOST);
    ck_assert_uint_eq(cfg->c2s_listen.n, 0);
    ck_assert_uint_eq(cfg->c2s_tls_listen.n, 0);
    config_free(cfg);

    /* Setting one keeps the default of the other. */
    cfg = load_ok("[c2s]\nlisten = 127.0.0.2:15222\n" MINIMAL_HOST);
    ck_assert_uint_eq(cfg->c2s_listen.n, 1);
    assert_addr4(&cfg->c2s_listen.items[0], "127.0.0.2:15222", "127.0.0.2", 15222);
    ck_assert_uint_eq(cfg->c2s_tls_listen.n, 1);
    assert_addr4(&cfg->c2s_tls_listen.items[0], "127.0.0.1:5223", "127.0.0.1", 5223);
    config_free(cfg);
}
END_TEST

START_TEST(test_continuation_lines)
{
    config *cfg = load_ok("[host localhost]\n"
                          "modules = roster presence\n"
                          "; a comment does not end the value\n"
                          "    disco ping ; inline comment\n"
                          "\tversion\n"
                          "registration = yes\n");
    const config_host *h = &cfg->hosts[0];
    ck_assert_uint_eq(h->modules.n, 5);
    ck_assert_str_eq(h->modules.items[2], "disco");
    ck_assert_str_eq(h->modules.items[3], "ping");
    ck_assert_str_eq(h->modules.items[4], "version");
    ck_assert(h->registration);
    config_free(cfg);

    /* Indented lines right after a header are ordinary keys. */
    cfg = load_ok("[server]\n  log_level = warn\n" MINIMAL_HOST);
    ck_assert_int_eq(cfg->log_level, TERN_LOG_WARN);
    config_free(cfg);

    ck_assert_str_eq(load_error("[server]\nlog_level = warn\n  workers = 2\n" MINIMAL_HOST),
                     expect(3, "indented line continues log_level, which takes one value "
                               "(remove the indentation)"));
}
END_TEST

/* inih cuts section names at 49 characters; host names may be much longer. */
START_TEST(test_long_host_name)
{
    const char *name = "a-rather-long-label-for-a-host.with-several-labels.example.org";
    char text[256];
    snprintf(text, sizeof text, "[host %s]\nregistration = yes\n", name);
    config *cfg = load_ok(text);
    ck_assert_str_eq(cfg->hosts[0].name, name);
    ck_assert(cfg->hosts[0].registration);
    config_free(cfg);
}
END_TEST

START_TEST(test_error_unknown_key)
{
    ck_assert_str_eq(load_error("[server]\nlog_level = info\nfoo = 1\n" MINIMAL_HOST),
                     expect(3, "unknown key 'foo' in [server]"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "\nmodules = ping\nlisten = 1.2.3.4:5\n"),
                     expect(4, "unknown key 'listen' in [host localhost]"));
    /* A key of another section is unknown here. */
    ck_assert_str_eq(load_error("[tls]\ndata_dir = x\n" MINIMAL_HOST),
                     expect(2, "unknown key 'data_dir' in [tls]"));
    ck_assert_str_eq(load_error("log_level = info\n" MINIMAL_HOST),
                     expect(1, "key 'log_level' is outside any section"));
}
END_TEST

START_TEST(test_error_unknown_section)
{
    ck_assert_str_eq(load_error("[server]\n\n[bogus]\n" MINIMAL_HOST),
                     expect(3, "unknown section [bogus]"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[Server]\n"), expect(2, "unknown section [Server]"));
    ck_assert_str_eq(load_error("[server\n" MINIMAL_HOST),
                     expect(1, "section header without closing ']'"));
    ck_assert_str_eq(load_error("[server] log_level = info\n" MINIMAL_HOST),
                     expect(1, "unexpected text after ']'"));
    ck_assert_str_eq(load_error("[server]\n[host]\n"),
                     expect(2, "[host] needs a name, e.g. [host example.org]"));
}
END_TEST

START_TEST(test_error_log_level)
{
    ck_assert_str_eq(
        load_error("[server]\nworkers = 2\nlog_level = loud ; comment\n" MINIMAL_HOST),
        expect(3, "invalid log_level 'loud' (expected error, warn, info or debug)"));
    ck_assert_str_eq(load_error("[server]\nlog_level =\n" MINIMAL_HOST),
                     expect(2, "log_level needs a value"));
}
END_TEST

START_TEST(test_error_port)
{
    ck_assert_str_eq(load_error("[c2s]\nlisten = 127.0.0.1:5222 127.0.0.1:70000\n" MINIMAL_HOST),
                     expect(2, "invalid address '127.0.0.1:70000' in listen "
                               "(port must be 1..65535)"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[s2s]\n\nlisten = [::1]:0\n"),
                     expect(4, "invalid address '[::1]:0' in listen (port must be 1..65535)"));
    ck_assert_str_eq(load_error("[http]\ntls_listen = *:http\n" MINIMAL_HOST),
                     expect(2, "invalid address '*:http' in tls_listen (port must be 1..65535)"));
}
END_TEST

/* [http] static_dir, cors_origins and max_body_size: values, defaults and errors. */
START_TEST(test_http_keys)
{
    config *cfg = load_ok(MINIMAL_HOST);
    ck_assert_ptr_null(cfg->http_static_dir);
    ck_assert_uint_eq(cfg->http_cors_origins.n, 0);
    ck_assert_uint_eq(cfg->http_max_body_size, 1048576);
    config_free(cfg);

    cfg = load_ok("[http]\nlisten = 127.0.0.1:5280\nstatic_dir = www ; the web client\n"
                  "cors_origins = https://app.example http://localhost:8080,\n"
                  "    https://[::1]:8443 https://app.example\n"
                  "max_body_size = 2048\n" MINIMAL_HOST);
    ck_assert_str_eq(cfg->http_static_dir, in_tmp("www"));
    ck_assert_uint_eq(cfg->http_cors_origins.n, 3); /* the repeated one counts once */
    ck_assert_str_eq(cfg->http_cors_origins.items[0], "https://app.example");
    ck_assert_str_eq(cfg->http_cors_origins.items[1], "http://localhost:8080");
    ck_assert_str_eq(cfg->http_cors_origins.items[2], "https://[::1]:8443");
    ck_assert_uint_eq(cfg->http_max_body_size, 2048);
    config_free(cfg);

    cfg = load_ok("[http]\nstatic_dir = /srv/www\ncors_origins = *\n" MINIMAL_HOST);
    ck_assert_str_eq(cfg->http_static_dir, "/srv/www");
    ck_assert_uint_eq(cfg->http_cors_origins.n, 1);
    ck_assert_str_eq(cfg->http_cors_origins.items[0], "*");
    config_free(cfg);

    /* Empty: not set. */
    cfg = load_ok("[http]\nstatic_dir =\ncors_origins =\n" MINIMAL_HOST);
    ck_assert_ptr_null(cfg->http_static_dir);
    ck_assert_uint_eq(cfg->http_cors_origins.n, 0);
    config_free(cfg);

    static const char *const bad[] = { "app.example", "https://app.example/", "https://",
                                       "https://app.example/path", "https://a.example:0",
                                       "https://a.example:http", "//app.example",
                                       "https://[::1", "https://a%2e", "null" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "[http]\ncors_origins = * %s\n" MINIMAL_HOST, bad[i]);
        char want[512];
        snprintf(want, sizeof want, "invalid origin '%s' in cors_origins (expected * or "
                 "scheme://host[:port], without a path)", bad[i]);
        ck_assert_str_eq(load_error(text), expect(2, "%s", want));
    }
    ck_assert_str_eq(load_error("[http]\nmax_body_size = 100\n" MINIMAL_HOST),
                     expect(2, "invalid max_body_size '100' (expected a whole number in "
                               "1024..1073741824)"));
    ck_assert_str_eq(load_error("[http]\nmax_body_size = 1M\n" MINIMAL_HOST),
                     expect(2, "invalid max_body_size '1M' (expected a whole number in "
                               "1024..1073741824)"));
    ck_assert_str_eq(load_error("[http]\nstatic_dir = a\nstatic_dir = b\n" MINIMAL_HOST),
                     expect(3, "static_dir is already set on line 2"));
}
END_TEST

START_TEST(test_error_address)
{
    static const char *const bad[] = { "localhost:5222", "::1:5222", "127.0.0.1", "[::1]5222",
                                       "[127.0.0.1]:5222", "1.2.3:5222", "[]:5222" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "[c2s]\ntls_listen = %s\n" MINIMAL_HOST, bad[i]);
        char want[512];
        snprintf(want, sizeof want,
                 "invalid address '%s' in tls_listen (expected IP:PORT, [IPv6]:PORT or *:PORT)",
                 bad[i]);
        ck_assert_str_eq(load_error(text), expect(2, "%s", want));
    }
    ck_assert_str_eq(load_error("[server]\ndns_servers = 127.0.0.1:53 dns.example\n" MINIMAL_HOST),
                     expect(2, "invalid DNS server 'dns.example' "
                               "(expected IP, IP:PORT or [IPv6]:PORT)"));
    ck_assert_str_eq(load_error("[server]\ndns_servers = 127.0.0.1:0\n" MINIMAL_HOST),
                     expect(2, "invalid DNS server '127.0.0.1:0' "
                               "(expected IP, IP:PORT or [IPv6]:PORT)"));
}
END_TEST

START_TEST(test_error_bool)
{
    ck_assert_str_eq(load_error("[c2s]\nrequire_tls = maybe\n" MINIMAL_HOST),
                     expect(2, "invalid require_tls 'maybe' (expected yes or no)"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "registration = y\n"),
                     expect(2, "invalid registration 'y' (expected yes or no)"));
}
END_TEST

START_TEST(test_error_numbers)
{
    ck_assert_str_eq(load_error("[server]\nworkers = 0\n" MINIMAL_HOST),
                     expect(2, "invalid workers '0' (expected auto or 1..256)"));
    ck_assert_str_eq(load_error("[server]\nworkers = 257\n" MINIMAL_HOST),
                     expect(2, "invalid workers '257' (expected auto or 1..256)"));
    ck_assert_str_eq(load_error("[server]\nworkers = many\n" MINIMAL_HOST),
                     expect(2, "invalid workers 'many' (expected auto or 1..256)"));
    ck_assert_str_eq(load_error("[server]\nworkers = -1\n" MINIMAL_HOST),
                     expect(2, "invalid workers '-1' (expected auto or 1..256)"));
    ck_assert_str_eq(load_error("[server]\nstorage_queue_max = 1000\n" MINIMAL_HOST),
                     expect(2, "invalid storage_queue_max '1000' "
                               "(expected a whole number in 65536..1099511627776)"));
    ck_assert_str_eq(load_error("[c2s]\nmax_stanza_size = 1023\n" MINIMAL_HOST),
                     expect(2, "invalid max_stanza_size '1023' "
                               "(expected a whole number in 1024..16777216)"));
    ck_assert_str_eq(load_error("[s2s]\nmax_stanza_size = 99999999999999999999999\n" MINIMAL_HOST),
                     expect(2, "invalid max_stanza_size '99999999999999999999999' "
                               "(expected a whole number in 1024..16777216)"));
    ck_assert_str_eq(load_error("[c2s]\nlogin_timeout = 1m\n" MINIMAL_HOST),
                     expect(2, "invalid login_timeout '1m' (expected a whole number in 1..3600)"));
    ck_assert_str_eq(load_error("[c2s]\nmax_connections = 0\n" MINIMAL_HOST),
                     expect(2, "invalid max_connections '0' "
                               "(expected a whole number in 1..1048576)"));
    ck_assert_str_eq(load_error("[s2s]\nrequire_valid_certificates = sometimes\n" MINIMAL_HOST),
                     expect(2, "invalid require_valid_certificates 'sometimes' (expected yes or no)"));
    ck_assert_str_eq(load_error("[s2s]\ninsecure_domains = ok.test bad..test\n" MINIMAL_HOST),
                     expect(2, "invalid domain 'bad..test' in insecure_domains"));
    ck_assert_str_eq(load_error("[s2s]\nsecure_domains = a.test\ninsecure_domains = b.test "
                                "A.test\n" MINIMAL_HOST),
                     expect(3, "domain 'a.test' is in both secure_domains and insecure_domains"));
}
END_TEST

START_TEST(test_error_host_name)
{
    ck_assert_str_eq(load_error("[server]\n[host bad..name]\n"),
                     expect(2, "invalid host name 'bad..name'"));
    ck_assert_str_eq(load_error("[host exa mple.org]\n"),
                     expect(1, "invalid host name 'exa mple.org'"));
    ck_assert_str_eq(load_error("[host user@example.org]\n"),
                     expect(1, "invalid host name 'user@example.org'"));
}
END_TEST

START_TEST(test_error_duplicate_host)
{
    /* Duplicates are found after preparation: case differs, the domain is the same. */
    ck_assert_str_eq(load_error("[host localhost]\nregistration = no\n\n[host LocalHost]\n"),
                     expect(4, "duplicate host 'localhost' (first defined on line 1)"));
}
END_TEST

/* [s2s] routes: domain=host:port, the domain prepared, the host a name, IPv4 or [IPv6]. */
START_TEST(test_s2s_routes)
{
    config *cfg = load_ok("[s2s]\nroutes = Priv.Example=10.0.0.7:5269 v6.example=[::1]:5270\n"
                          "  named.example=xmpp.named.example:5269\n" MINIMAL_HOST);
    char host[256];
    unsigned port = 0;
    ck_assert(config_s2s_route(cfg, "priv.example", host, sizeof host, &port));
    ck_assert_str_eq(host, "10.0.0.7");
    ck_assert_uint_eq(port, 5269);
    ck_assert(config_s2s_route(cfg, "v6.example", host, sizeof host, &port));
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 5270);
    ck_assert(config_s2s_route(cfg, "named.example", host, sizeof host, &port));
    ck_assert_str_eq(host, "xmpp.named.example");
    ck_assert(!config_s2s_route(cfg, "other.example", host, sizeof host, &port));
    config_free(cfg);
    const char *bad[] = { "nodomain", "a.example=host", "a.example=host:0", "a.example=:5269",
                          "a.example=::1:5269", "a.example=host:99999", "=host:5269" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], want[256];
        snprintf(text, sizeof text, "[s2s]\nroutes = %s\n" MINIMAL_HOST, bad[i]);
        snprintf(want, sizeof want, "invalid route '%s' in routes (expected domain=host:port)",
                 bad[i]);
        ck_assert_str_eq(load_error(text), expect(2, "%s", want));
    }
    ck_assert_str_eq(load_error("[s2s]\nroutes = a.example=h:1 A.example=g:2\n" MINIMAL_HOST),
                     expect(2, "domain 'a.example' has two routes"));
}
END_TEST

/* [component DOMAIN] sections: the domain prepared, its secret kept as written; each needs
 * one, is named once and is no host. */
START_TEST(test_component_sections)
{
    config *cfg = load_ok(MINIMAL_HOST "[component IRC.localhost]\nsecret = s3 cr=t\n"
                          "[component sms.localhost]\nsecret = other\n");
    ck_assert_uint_eq(cfg->n_components, 2);
    ck_assert_str_eq(cfg->components[0].name, "irc.localhost");
    ck_assert_str_eq(cfg->components[0].secret, "s3 cr=t");
    ck_assert_str_eq(cfg->components[1].name, "sms.localhost");
    config_free(cfg);
    ck_assert_str_eq(load_error(MINIMAL_HOST "[component irc.localhost]\n"),
                     expect(2, "[component irc.localhost] needs a secret"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[component irc.localhost]\nsecret =\n"),
                     expect(3, "secret needs a value"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[component a.localhost]\nsecret = x\n"
                                "[component A.localhost]\nsecret = y\n"),
                     expect(4, "duplicate component 'a.localhost' (first defined on line 2)"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[component]\n"),
                     expect(2, "[component] needs a domain, e.g. [component irc.example.org]"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[component bad domain]\n"),
                     expect(2, "invalid component domain 'bad domain'"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[component localhost]\nsecret = x\n"),
                     expect(2, "component 'localhost' is also a [host]"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "[component c.localhost]\nsecret = x\nport = 1\n"),
                     expect(4, "unknown key 'port' in [component c.localhost]"));
}
END_TEST

START_TEST(test_error_duplicate_key)
{
    ck_assert_str_eq(load_error("[server]\nworkers = 1\n[c2s]\n[server]\nworkers = 2\n" MINIMAL_HOST),
                     expect(5, "workers is already set on line 2"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "modules = ping\nmodules = disco\n"),
                     expect(3, "modules is already set on line 2"));
    /* Keys of different hosts do not clash. */
    config *cfg = load_ok("[host a.example]\nmodules = ping\n[host b.example]\nmodules = ping\n");
    ck_assert_uint_eq(cfg->n_hosts, 2);
    config_free(cfg);
}
END_TEST

START_TEST(test_error_admin)
{
    ck_assert_str_eq(load_error("[server]\nadmins = admin@localhost admin@localhost/laptop\n"
                                MINIMAL_HOST),
                     expect(2, "admin JID 'admin@localhost/laptop' must be a bare JID "
                               "(user@domain)"));
    ck_assert_str_eq(load_error("[server]\nadmins = localhost\n" MINIMAL_HOST),
                     expect(2, "admin JID 'localhost' must be a bare JID (user@domain)"));
    /* The reason after the colon is jid.c's. */
    const char *e = load_error("[server]\nadmins = @localhost\n" MINIMAL_HOST);
    const char *want_prefix = expect(2, "invalid admin JID '@localhost': ");
    ck_assert_msg(strncmp(e, want_prefix, strlen(want_prefix)) == 0, "got %s", e);
}
END_TEST

START_TEST(test_error_no_hosts)
{
    ck_assert_str_eq(load_error("[server]\nlog_level = info\n"),
                     expect(0, "no [host NAME] section: at least one host is required"));
}
END_TEST

START_TEST(test_error_cert_without_key)
{
    ck_assert_str_eq(load_error("[tls]\ncert = a.crt\n" MINIMAL_HOST),
                     expect(2, "[tls] has cert but no key"));
    ck_assert_str_eq(load_error("[tls]\nca_file = ca.pem\nkey = a.key\ncert =\n" MINIMAL_HOST),
                     expect(3, "[tls] has key but no cert"));
    ck_assert_str_eq(load_error("[host localhost]\ncert = h.crt\n[server]\n"),
                     expect(2, "[host localhost] has cert but no key"));
    ck_assert_str_eq(load_error("[host a.example]\n[host localhost]\nkey = h.key\n"),
                     expect(3, "[host localhost] has key but no cert"));
    /* The pair split between [tls] and a host is not a pair. */
    ck_assert_str_eq(load_error("[tls]\nkey = a.key\n[host localhost]\ncert = h.crt\n"),
                     expect(4, "[host localhost] has cert but no key"));
    /* Files are not opened here: missing files are the TLS layer's to report. */
    config *cfg = load_ok("[tls]\ncert = nonexistent.crt\nkey = nonexistent.key\n" MINIMAL_HOST);
    ck_assert_str_eq(cfg->tls_cert, in_tmp("nonexistent.crt"));
    config_free(cfg);
}
END_TEST

START_TEST(test_error_modules)
{
    ck_assert_str_eq(load_error(MINIMAL_HOST "modules = ping Disco\n"),
                     expect(2, "invalid module name 'Disco' (expected letters a-z, digits and _)"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "modules = ping ../evil\n"),
                     expect(2, "invalid module name '../evil' (expected letters a-z, digits and _)"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "modules = ping disco\n  ping\n"),
                     expect(3, "module 'ping' is listed twice"));
}
END_TEST

START_TEST(test_module_settings)
{
    config *cfg = load_ok("[module offline]\nquota = 3 ; inline comment\n"
                          "[module metrics]\nallow = 127.0.0.1\n  ::1 ; continued\n"
                          "[host localhost]\nmodules = offline metrics\noffline.quota = 5\n"
                          "[host b.example]\nmodules = offline\n");
    ck_assert_uint_eq(cfg->module_settings.n, 2);
    const config_setting *s = config_module_setting(cfg, "localhost", "offline", "quota");
    ck_assert_str_eq(s->value, "5");
    ck_assert_int_eq(s->line, 8);
    ck_assert_str_eq(config_module_setting(cfg, "b.example", "offline", "quota")->value, "3");
    ck_assert_str_eq(config_module_setting(cfg, NULL, "offline", "quota")->value, "3");
    ck_assert_str_eq(config_module_setting(cfg, "b.example", "metrics", "allow")->value,
                     "127.0.0.1 ::1");
    ck_assert_ptr_null(config_module_setting(cfg, "localhost", "offline", "other"));
    config_free(cfg);
    /* Whether a module knows the key is module_settings.c's to say; the syntax is ours. */
    ck_assert_str_eq(load_error("[module]\n" MINIMAL_HOST),
                     expect(1, "[module] needs a module name, e.g. [module offline]"));
    ck_assert_str_eq(load_error("[module Off]\n" MINIMAL_HOST),
                     expect(1, "invalid module name 'Off' (expected letters a-z, digits and _)"));
    ck_assert_str_eq(load_error("[module offline]\nquota = 1\n[module offline]\n" MINIMAL_HOST),
                     expect(3, "duplicate section [module offline] (first on line 1)"));
    ck_assert_str_eq(load_error("[module offline]\nquota = 1\nquota = 2\n" MINIMAL_HOST),
                     expect(3, "quota is already set on line 2"));
    ck_assert_str_eq(load_error("[module offline]\nQuota = 1\n" MINIMAL_HOST),
                     expect(2, "invalid key 'Quota' for module offline (expected letters a-z, "
                               "digits and _)"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "Off.quota = 1\n"),
                     expect(2, "invalid module name 'Off' in 'Off.quota' (expected MODULE.key)"));
    ck_assert_str_eq(load_error(MINIMAL_HOST "offline.quota = 1\noffline.quota = 2\n"),
                     expect(3, "quota is already set on line 2"));
    /* A dotted key is a module override only in a host; elsewhere it is unknown. */
    ck_assert_str_eq(load_error("[c2s]\noffline.quota = 1\n" MINIMAL_HOST),
                     expect(2, "unknown key 'offline.quota' in [c2s]"));
}
END_TEST

START_TEST(test_error_syntax)
{
    ck_assert_str_eq(load_error("[server]\nlog_level info\n" MINIMAL_HOST),
                     expect(2, "syntax error (expected [section] or key = value)"));
    /* The first error in the file wins, whichever part of the parser finds it. */
    ck_assert_str_eq(load_error("[server]\njunk\nlog_level = loud\n" MINIMAL_HOST),
                     expect(2, "syntax error (expected [section] or key = value)"));
    ck_assert_str_eq(load_error("[server]\nlog_level = loud\njunk\n" MINIMAL_HOST),
                     expect(2, "invalid log_level 'loud' (expected error, warn, info or debug)"));

    char text[512];
    char long_value[300];
    memset(long_value, 'a', 190);
    long_value[190] = '\0';
    snprintf(text, sizeof text, "[server]\ndata_dir = %s\n" MINIMAL_HOST, long_value);
    ck_assert_str_eq(load_error(text), expect(2, "line is longer than 197 characters"));
    /* 197 characters fit. */
    memset(long_value, 'a', 186);
    long_value[186] = '\0';
    snprintf(text, sizeof text, "[server]\ndata_dir = %s\n" MINIMAL_HOST, long_value);
    ck_assert_uint_eq(strlen("data_dir = ") + strlen(long_value), 197);
    config *cfg = load_ok(text);
    ck_assert_str_eq(cfg->data_dir, in_tmp(long_value));
    config_free(cfg);
}
END_TEST

START_TEST(test_error_priority)
{
    ck_assert_str_eq(load_error("[tls]\npriority = NORMAL:+NOT-A-THING\n" MINIMAL_HOST),
                     expect(2, "invalid TLS priority string 'NORMAL:+NOT-A-THING' "
                               "(error at '+NOT-A-THING')"));
}
END_TEST

START_TEST(test_error_missing_file)
{
    snprintf(conf_path, sizeof conf_path, "%s/absent.conf", tmpdir);
    ck_assert_ptr_null(config_load(conf_path, err, sizeof err));
    ck_assert_str_eq(err, expect(0, "cannot open: No such file or directory"));
}
END_TEST

START_TEST(test_parse_addr)
{
    config_addr a;
    ck_assert_int_eq(config_parse_addr("*:5222", &a), 0);
    assert_addr4(&a, "*:5222", "0.0.0.0", 5222);
    ck_assert_int_eq(config_parse_addr("[::]:5269", &a), 0);
    assert_addr6(&a, "[::]:5269", "::", 5269);
    ck_assert_int_eq(config_parse_addr("[::1]:1", &a), 0);
    assert_addr6(&a, "[::1]:1", "::1", 1);
    ck_assert_int_eq(config_parse_addr("[2001:db8::7]:65535", &a), 0);
    assert_addr6(&a, "[2001:db8::7]:65535", "2001:db8::7", 65535);
    ck_assert_int_eq(config_parse_addr("10.1.2.3:5280", &a), 0);
    assert_addr4(&a, "10.1.2.3:5280", "10.1.2.3", 5280);

    static const char *const bad[] = {
        "", ":5222", "*", "*:", "*:0", "*:65536", "*:-1", "*:+1", "*: 1", "*:1 ", "[::1]",
        "[::1]:", "[::1]5222", "[*]:5222", "::1:5222", "[1.2.3.4]:5", "1.2.3.4.5:6",
        "host:5222", "[::1:5222",
        /* longer than config_addr.text */
        "[0000:0000:0000:0000:0000:0000:0000:0001]:5222000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(config_parse_addr(bad[i], &a) == -1, "accepted '%s'", bad[i]);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_design_sample);
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_relative_paths);
    tcase_add_test(tc, test_paths_relative_to_symlink_folder);
    tcase_add_test(tc, test_listen_defaults);
    tcase_add_test(tc, test_continuation_lines);
    tcase_add_test(tc, test_long_host_name);
    tcase_add_test(tc, test_error_unknown_key);
    tcase_add_test(tc, test_error_unknown_section);
    tcase_add_test(tc, test_error_log_level);
    tcase_add_test(tc, test_error_port);
    tcase_add_test(tc, test_error_address);
    tcase_add_test(tc, test_http_keys);
    tcase_add_test(tc, test_error_bool);
    tcase_add_test(tc, test_error_numbers);
    tcase_add_test(tc, test_error_host_name);
    tcase_add_test(tc, test_error_duplicate_host);
    tcase_add_test(tc, test_component_sections);
    tcase_add_test(tc, test_s2s_routes);
    tcase_add_test(tc, test_error_duplicate_key);
    tcase_add_test(tc, test_error_admin);
    tcase_add_test(tc, test_error_no_hosts);
    tcase_add_test(tc, test_error_cert_without_key);
    tcase_add_test(tc, test_error_modules);
    tcase_add_test(tc, test_module_settings);
    tcase_add_test(tc, test_error_syntax);
    tcase_add_test(tc, test_error_priority);
    tcase_add_test(tc, test_error_missing_file);
    tcase_add_test(tc, test_parse_addr);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
