/* log.h — logger setup (core only). */
#ifndef TERN_LOG_SETUP_H
#define TERN_LOG_SETUP_H

#include "tern/log.h"

void log_set_level(tern_log_level level);
/* "error", "warn", "info", "debug" → level; -1 when unknown. */
int log_level_from_name(const char *name);
/* Prefix for every line, e.g. "ternd" or "ternctl". */
void log_set_program(const char *name);

#endif
