/*
 * plan_cache: what the write path learned from a statement's text, kept by that text
 * (shared/DESIGN.md §3, "cache parse results by statement text").
 *
 * Drivers and ORMs send the same texts again and again (a Parse per Execute, the same
 * UPDATE with new parameters), and libpg_query's parse, its protobuf round trip and the
 * plan's deparse were a fifth of apigres's CPU per write. Two kinds of entry, each keyed by
 * the exact bytes of the text:
 *   - the classification of the whole text (wj_classify's result),
 *   - the plan of one statement of it (rewrite_plan's result, by the statement's offset).
 * Both are pure functions of the text and of the configuration (the synced schemas), which
 * is fixed for the life of a process, so an entry never goes stale.
 *
 * Lookups hand out deep copies, which the caller frees as it would a fresh result: an
 * entry may be evicted while a write that used it is still under way. Bounded: at most
 * PLAN_CACHE_ENTRIES entries of texts of at most PLAN_CACHE_MAX_TEXT bytes (longer texts
 * are not kept), least recently used out first. One cache per event loop; not thread-safe.
 */
#ifndef APIGRES_PLAN_CACHE_H
#define APIGRES_PLAN_CACHE_H

#include <stddef.h>

#include "parser/classify.h"
#include "parser/rewrite.h"

#define PLAN_CACHE_ENTRIES 512
#define PLAN_CACHE_MAX_TEXT 16384

typedef struct plan_cache plan_cache;

plan_cache *plan_cache_new(void);
void plan_cache_free(plan_cache *c);

/* A copy of the classification kept for sql[0..len), or NULL (not kept, or out of memory). */
classify_result *plan_cache_classify(plan_cache *c, const char *sql, size_t len);
/* Keeps a copy of cr as the classification of sql[0..len) (nothing when it does not fit). */
void plan_cache_keep_classify(plan_cache *c, const char *sql, size_t len, const classify_result *cr);

/* The same for the plan of the statement at offset in sql[0..len). */
rewrite_result *plan_cache_rewrite(plan_cache *c, const char *sql, size_t len, size_t offset);
void plan_cache_keep_rewrite(plan_cache *c, const char *sql, size_t len, size_t offset, const rewrite_result *rw);

/* Lookups answered from the cache, and lookups in all. */
void plan_cache_stats(const plan_cache *c, unsigned long long *hits, unsigned long long *lookups);

#endif
