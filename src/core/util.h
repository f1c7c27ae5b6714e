/* util.h — the helpers of tern/util.h (allocation that never fails, random tokens, the
 * monotonic clock), which modules use too. */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H

#include "tern/util.h"

#endif
