/* ternctl.c — the admin tool: accounts and status (man page ternctl(8)).
 *
 * It reads the same config file as ternd and opens the same LMDB environment, which LMDB lets
 * two processes share, so the account and status commands work whether ternd is running or
 * not; the module commands talk to the running ternd through its control socket. A password may
 * come from standard input ("-") so that it never shows in ps(1). Exit status: 0 on success, 1
 * on any error, with one line on stderr saying what went wrong. */
#ifdef HAVE_CONFIG_H
#include "tern_build.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "process/pidfile.h"
#include "store/storage_env.h"
#include "tern/jid.h"
#include "xmpp/accounts.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
/* The build may point this at $(sysconfdir)/tern/tern.conf. */
#ifndef TERN_CONFIG_FILE
#define TERN_CONFIG_FILE "/etc/tern/tern.conf"
#endif

typedef struct ctl {
    config *cfg;
    tern_storage *st;
} ctl;

/* Prints "ternctl: message" and returns the exit status for errors. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ternctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ternctl [-c FILE] COMMAND\n"
            "\n"
            "commands:\n"
            "  user add JID PASSWORD     create an account (PASSWORD \"-\": read from stdin)\n"
            "  user del JID              delete an account\n"
            "  user passwd JID PASSWORD  change a password (PASSWORD \"-\": read from stdin)\n"
            "  user list DOMAIN          list the accounts of a host\n"
            "  user disable JID          stop an account from logging in (keeps its data)\n"
            "  user enable JID           let a disabled account log in again\n"
            "  status                    whether ternd runs, accounts per host, data size\n"
            "  module list HOST          the modules the running ternd has loaded for HOST\n"
            "  module load HOST NAME     load a module into the running ternd (sessions stay)\n"
            "  module unload HOST NAME   unload one\n"
            "  module reload HOST NAME   unload it and load its file again (a rebuilt one)\n"
            "\n"
            "options:\n"
            "  -c, --config FILE  configuration file (default %s)\n"
            "  -h, --help         show this help\n"
            "      --version      show the version\n",
            TERN_CONFIG_FILE);
}

static int open_storage(ctl *c)
{
    char err[512];
    c->st = storage_open(c->cfg->data_dir, 0, err, sizeof err);
    if (!c->st)
        return fail("%s", err); /* it names the folder */
    storage_set_max_size(c->st, c->cfg->max_storage_size);
    return 0;
}

/* Parses a user's JID: it must be bare, have a localpart and belong to a configured host. */
static int prepare_user(const ctl *c, const char *text, tern_jid *jid)
{
    const char *why;
    if (jid_parse(text, jid, &why) < 0)
        return fail("invalid JID '%s': %s", text, why);
    if (!jid->node || jid->resource) {
        jid_free(jid);
        return fail("'%s' is not a user's bare JID (expected user@domain)", text);
    }
    if (!config_find_host(c->cfg, jid->domain)) {
        int rc = fail("%s is not a host of this server (no [host %s] in %s)", jid->domain,
                      jid->domain, c->cfg->path);
        jid_free(jid);
        return rc;
    }
    return 0;
}

/* The password argument, or the first line of stdin when it is "-". The result is malloc'd;
 * free it with forget_password. */
static char *get_password(const char *arg)
{
    if (strcmp(arg, "-") != 0)
        return strdup(arg);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        fail("no password on standard input");
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static void forget_password(char *password)
{
    if (!password)
        return;
    explicit_bzero(password, strlen(password));
    free(password);
}

static int password_result(account_result r, const char *bare, const char *action)
{
    switch (r) {
    case ACCOUNT_OK:
        return 0;
    case ACCOUNT_EXISTS:
        return fail("user %s already exists", bare);
    case ACCOUNT_NOT_FOUND:
        return fail("user %s does not exist", bare);
    case ACCOUNT_BAD_PASSWORD:
        return fail("password refused for %s: it is empty or has characters SASLprep "
                    "(RFC 4013) prohibits", bare);
    default:
        return fail("cannot %s %s: %s", action, bare, account_result_text(r));
    }
}

/* user add / user passwd: they differ only in the account call. */
static int set_password(ctl *c, char **args, bool create)
{
    tern_jid jid;
    if (prepare_user(c, args[0], &jid) != 0)
        return 1;
    int rc = 1;
    char *password = get_password(args[1]);
    if (password && open_storage(c) == 0) {
        account_result r = create ? account_create(c->st, jid.bare, password, 0)
                                  : account_set_password(c->st, jid.bare, password, 0);
        rc = password_result(r, jid.bare, create ? "create" : "change the password of");
    }
    forget_password(password);
    jid_free(&jid);
    return rc;
}

static int cmd_user_add(ctl *c, char **args) { return set_password(c, args, true); }

static int cmd_user_passwd(ctl *c, char **args) { return set_password(c, args, false); }

static int cmd_user_del(ctl *c, char **args)
{
    tern_jid jid;
    if (prepare_user(c, args[0], &jid) != 0)
        return 1;
    int rc = 1;
    if (open_storage(c) == 0)
        rc = password_result(account_delete(c->st, jid.bare), jid.bare, "delete");
    jid_free(&jid);
    return rc;
}

/* user disable / user enable. A running ternd refuses the account's next login; sessions
 * already open stay until they end (the admin module's disable-user ends them at once). */
static int set_disabled(ctl *c, char **args, bool disabled)
{
    tern_jid jid;
    if (prepare_user(c, args[0], &jid) != 0)
        return 1;
    int rc = 1;
    if (open_storage(c) == 0)
        rc = password_result(account_set_disabled(c->st, jid.bare, disabled), jid.bare,
                             disabled ? "disable" : "enable");
    jid_free(&jid);
    return rc;
}

static int cmd_user_disable(ctl *c, char **args) { return set_disabled(c, args, true); }

static int cmd_user_enable(ctl *c, char **args) { return set_disabled(c, args, false); }

static int print_account(void *ctx, const char *bare)
{
    (void)ctx;
    return puts(bare) < 0;
}

static int count_account(void *ctx, const char *bare)
{
    (void)bare;
    (*(size_t *)ctx)++;
    return 0;
}

/* A domain argument as a configured host's prepared name, or NULL after an error. */
static const config_host *find_host(const ctl *c, const char *domain)
{
    char *prepared;
    if (jid_prep_domain(domain, &prepared) < 0) {
        fail("invalid domain '%s'", domain);
        return NULL;
    }
    const config_host *h = config_find_host(c->cfg, prepared);
    if (!h)
        fail("%s is not a host of this server (no [host %s] in %s)", prepared, prepared,
             c->cfg->path);
    free(prepared);
    return h;
}

static int cmd_user_list(ctl *c, char **args)
{
    const config_host *h = find_host(c, args[0]);
    if (!h || open_storage(c) != 0)
        return 1;
    if (account_each(c->st, h->name, print_account, NULL) < 0)
        return fail("cannot list the accounts of %s", h->name);
    if (fflush(stdout) != 0)
        return fail("cannot write the list: %s", strerror(errno));
    return 0;
}

static int cmd_status(ctl *c, char **args)
{
    (void)args;
    long pid;
    int running = pidfile_check(c->cfg->pid_file, &pid);
    if (running < 0)
        return fail("cannot read %s: %s", c->cfg->pid_file, strerror(errno));
    if (running && pid > 0)
        printf("ternd: running (pid %ld)\n", pid);
    else if (running) /* locked, pid not written yet */
        printf("ternd: running\n");
    else
        printf("ternd: stopped\n");
    printf("config: %s\n", c->cfg->path);

    /* Do not create the data folder just to report on it. */
    struct stat sb;
    if (stat(c->cfg->data_dir, &sb) < 0 && errno == ENOENT) {
        printf("data: %s (not created yet)\n", c->cfg->data_dir);
        for (size_t i = 0; i < c->cfg->n_hosts; i++)
            printf("host %s: 0 accounts\n", c->cfg->hosts[i].name);
        return 0;
    }
    if (open_storage(c) != 0)
        return 1;
    printf("data: %s (%lld bytes)\n", c->cfg->data_dir, storage_file_size(c->st));
    for (size_t i = 0; i < c->cfg->n_hosts; i++) {
        size_t n = 0;
        if (account_each(c->st, c->cfg->hosts[i].name, count_account, &n) < 0)
            return fail("cannot count the accounts of %s", c->cfg->hosts[i].name);
        printf("host %s: %zu account%s\n", c->cfg->hosts[i].name, n, n == 1 ? "" : "s");
    }
    return 0;
}

/* ---- the running ternd, through its control socket (control.h) ---- */

/* Sends one request line and copies the answer to stdout ("ok ...") or stderr ("error ...").
 * 0 when it starts with "ok". */
static int control_request(ctl *c, const char *request)
{
    const char *path = c->cfg->control_socket;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path)
        return fail("control_socket %s is too long", path);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            return fail("ternd is not running (nothing listens on %s)", path);
        return fail("cannot reach ternd at %s: %s", path, strerror(e));
    }
    struct timeval timeout = { 30, 0 }; /* loading a module is quick; never hang forever */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    size_t len = strlen(request);
    if (write(fd, request, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
        close(fd);
        return fail("cannot send to ternd: %s", strerror(errno));
    }
    char answer[65536];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof answer - 1 && (n = read(fd, answer + got, sizeof answer - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    answer[got] = '\0';
    if (strncmp(answer, "ok", 2) == 0) {
        const char *rest = answer[2] == ' ' ? answer + 3 : answer + 2;
        fputs(rest[0] == '\n' ? rest + 1 : rest, stdout);
        return 0;
    }
    if (strncmp(answer, "error ", 6) == 0)
        return fail("%.*s", (int)strcspn(answer + 6, "\n"), answer + 6);
    return fail("ternd gave no answer%s", got ? " it could parse" : "");
}

static int cmd_module_list(ctl *c, char **args)
{
    char request[600];
    snprintf(request, sizeof request, "module list %s", args[0]);
    return control_request(c, request);
}

static int module_change(ctl *c, const char *op, char **args)
{
    char request[600];
    snprintf(request, sizeof request, "module %s %s %s", op, args[0], args[1]);
    return control_request(c, request);
}

static int cmd_module_load(ctl *c, char **args) { return module_change(c, "load", args); }
static int cmd_module_unload(ctl *c, char **args) { return module_change(c, "unload", args); }
static int cmd_module_reload(ctl *c, char **args) { return module_change(c, "reload", args); }

typedef struct command {
    const char *name;
    const char *sub;       /* second word ("user add"), or NULL */
    int n_args;
    int (*run)(ctl *c, char **args);
} command;

static const command commands[] = {
    { "user", "add", 2, cmd_user_add },
    { "user", "del", 1, cmd_user_del },
    { "user", "passwd", 2, cmd_user_passwd },
    { "user", "list", 1, cmd_user_list },
    { "user", "disable", 1, cmd_user_disable },
    { "user", "enable", 1, cmd_user_enable },
    { "status", NULL, 0, cmd_status },
    { "module", "list", 1, cmd_module_list },
    { "module", "load", 2, cmd_module_load },
    { "module", "unload", 2, cmd_module_unload },
    { "module", "reload", 2, cmd_module_reload },
};

/* The command whose words start argv, or NULL. */
static const command *find_command(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const command *cmd = &commands[i];
        if (strcmp(argv[0], cmd->name) == 0 &&
            (!cmd->sub || (argc > 1 && strcmp(argv[1], cmd->sub) == 0)))
            return cmd;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_file = TERN_CONFIG_FILE;
    int opt;
    opterr = 0; /* our own one-line message below */
    /* "+": options end at the command, so a password such as "-x" is not taken for one. */
    while ((opt = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("ternctl (tern) %s\n", PACKAGE_VERSION);
            return 0;
        default:
            return fail("unknown option or missing value: %s (see ternctl --help)",
                        argv[optind - 1]);
        }
    }
    argc -= optind;
    argv += optind;
    if (argc == 0) {
        usage(stderr);
        return 1;
    }
    const command *cmd = find_command(argc, argv);
    if (!cmd) {
        bool user = strcmp(argv[0], "user") == 0 || strcmp(argv[0], "module") == 0;
        return fail("unknown command '%s%s%s' (see ternctl --help)", argv[0],
                    user && argc > 1 ? " " : "", user && argc > 1 ? argv[1] : "");
    }
    int n_words = cmd->sub ? 2 : 1;
    if (argc - n_words != cmd->n_args)
        return fail("'%s%s%s' takes %d argument%s (see ternctl --help)", cmd->name,
                    cmd->sub ? " " : "", cmd->sub ? cmd->sub : "", cmd->n_args,
                    cmd->n_args == 1 ? "" : "s");

    log_set_program("ternctl");
    log_set_level(TERN_LOG_WARN); /* the storage layer's warnings and errors only */

    char err[1024];
    ctl c = { .cfg = config_load(config_file, err, sizeof err) };
    if (!c.cfg)
        return fail("%s", err);
    int rc = cmd->run(&c, argv + n_words);
    if (c.st)
        storage_close(c.st);
    config_free(c.cfg);
    return rc;
}
