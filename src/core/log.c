/* log.c — the one logging function. Lines go to stderr, which systemd, a terminal or the -d
 * daemon mode's log file all handle; a line is written with one write() so lines from different
 * threads never interleave. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Read by every event loop's thread, set by the main one on reload. */
static atomic_int current_level = TERN_LOG_INFO;
static const char *program = "tern";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(tern_log_level level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

void log_set_program(const char *name) { program = name; }

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int tern_log_enabled(tern_log_level level)
{
    return (int)level <= atomic_load_explicit(&current_level, memory_order_relaxed);
}

void tern_log(tern_log_level level, uint64_t session_id, const char *fmt, ...)
{
    if (!tern_log_enabled(level))
        return;
    char line[2048];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, now.tv_nsec / 1000000, program, level_names[level]);
    if (session_id)
        n += snprintf(line + n, sizeof line - (size_t)n, "[s%llu] ", (unsigned long long)session_id);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* One event per line: control characters from peers never split a log line. */
    for (size_t i = (size_t)n; i < len; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
