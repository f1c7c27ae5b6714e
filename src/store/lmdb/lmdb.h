/* store/lmdb/lmdb.h — the LMDB backend: one LMDB environment under data_dir, one named
 * database per (kind, store). Its operations table is all store/storage.c sees of it. */
#ifndef TERN_STORE_LMDB_H
#define TERN_STORE_LMDB_H

#include "store/backend.h"

extern const tern_storage_backend storage_lmdb_backend;

#endif
