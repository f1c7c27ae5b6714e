/* tern/log.h — one logging function with levels. A line is one event; it names the session
 * (0 for none) and never carries a password, and never a message body at info or above. */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdint.h>

typedef enum tern_log_level {
    TERN_LOG_ERROR = 0,
    TERN_LOG_WARN = 1,
    TERN_LOG_INFO = 2,
    TERN_LOG_DEBUG = 3,
} tern_log_level;

void tern_log(tern_log_level level, uint64_t session_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tern_log_enabled(tern_log_level level);

#define log_error(sid, ...) tern_log(TERN_LOG_ERROR, (sid), __VA_ARGS__)
#define log_warn(sid, ...)  tern_log(TERN_LOG_WARN, (sid), __VA_ARGS__)
#define log_info(sid, ...)  tern_log(TERN_LOG_INFO, (sid), __VA_ARGS__)
#define log_debug(sid, ...) \
    do { if (tern_log_enabled(TERN_LOG_DEBUG)) tern_log(TERN_LOG_DEBUG, (sid), __VA_ARGS__); } while (0)

#endif
