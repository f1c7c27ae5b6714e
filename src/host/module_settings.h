/* module_settings.h — module settings: the configuration's [module NAME] sections and
 * "NAME.key" host overrides checked against what each module declares (tern/module.h), the
 * getters of the module API, and the listing `ternd -s` prints. */
#ifndef TERN_MODULE_SETTINGS_H
#define TERN_MODULE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/config.h"
#include "tern/module.h"

/* Every module setting of cfg names a module found in `dir`, a key it declares and a value of
 * the declared type and range; a host override names a module the host loads. 0, or -1 with
 * "FILE:LINE: reason" in err. */
int module_settings_check(const config *cfg, const char *dir, char *err, size_t err_len);

/* Whether `value` is acceptable for `def`; if not, why. */
bool module_setting_valid(const tern_setting_def *def, const char *value, char *why,
                          size_t why_len);

/* Whether the module's own declarations are sound (keys unique, defaults valid). */
bool module_settings_sound(const tern_module_def *mod, char *why, size_t why_len);

/* Writes every setting of every module in `dir` as INI: one [module NAME] section each, with
 * the defaults as values and the range and doc as comments. 0, or -1 if dir is unreadable. */
int module_settings_print(const char *dir, FILE *out);

#endif
