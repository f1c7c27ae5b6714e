/* hashmap.h — the string-keyed hash table of tern/hashmap.h. */
#ifndef TERN_HASHMAP_H
#define TERN_HASHMAP_H

#include "tern/hashmap.h"

#endif
