#include "proxy/plan_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A power of two, twice the entries: chains stay short. */
#define BUCKETS (PLAN_CACHE_ENTRIES * 2)

enum kind { KIND_CLASSIFY, KIND_REWRITE };

typedef struct entry {
    uint64_t hash;
    enum kind kind;
    size_t offset; /* KIND_REWRITE: the statement's offset in the text */
    char *text;
    size_t len;
    void *value; /* classify_result or rewrite_result */
    struct entry *chain; /* next in the bucket */
    struct entry *newer, *older; /* recency list */
} entry;

struct plan_cache {
    entry *buckets[BUCKETS];
    entry *newest, *oldest;
    size_t n;
    unsigned long long hits, lookups;
};

/* FNV-1a over the text, the kind and the offset. */
static uint64_t hash_of(const char *sql, size_t len, enum kind kind, size_t offset)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)sql[i]) * 1099511628211ull;
    h = (h ^ (uint64_t)kind) * 1099511628211ull;
    return (h ^ (uint64_t)offset) * 1099511628211ull;
}

static void free_value(entry *e)
{
    if (e->kind == KIND_CLASSIFY)
        classify_result_free(e->value);
    else
        rewrite_result_free(e->value);
}

plan_cache *plan_cache_new(void) { return calloc(1, sizeof(plan_cache)); }

void plan_cache_free(plan_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->newest, *next; e; e = next) {
        next = e->older;
        free_value(e);
        free(e->text);
        free(e);
    }
    free(c);
}

static void unlink_recency(plan_cache *c, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest(plan_cache *c, entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (!c->oldest)
        c->oldest = e;
}

static entry *find(plan_cache *c, const char *sql, size_t len, enum kind kind, size_t offset, uint64_t h)
{
    for (entry *e = c->buckets[h & (BUCKETS - 1)]; e; e = e->chain)
        if (e->hash == h && e->kind == kind && e->offset == offset && e->len == len && memcmp(e->text, sql, len) == 0)
            return e;
    return NULL;
}

static void evict_oldest(plan_cache *c)
{
    entry *e = c->oldest;
    entry **p = &c->buckets[e->hash & (BUCKETS - 1)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    unlink_recency(c, e);
    free_value(e);
    free(e->text);
    free(e);
    c->n--;
}

/* The value kept for the key, moved to the front, or NULL. */
static const void *lookup(plan_cache *c, const char *sql, size_t len, enum kind kind, size_t offset)
{
    if (!c || len > PLAN_CACHE_MAX_TEXT)
        return NULL;
    c->lookups++;
    entry *e = find(c, sql, len, kind, offset, hash_of(sql, len, kind, offset));
    if (!e)
        return NULL;
    c->hits++;
    unlink_recency(c, e);
    push_newest(c, e);
    return e->value;
}

/* Takes value (freed here when it cannot be kept). */
static void keep(plan_cache *c, const char *sql, size_t len, enum kind kind, size_t offset, void *value)
{
    uint64_t h = hash_of(sql, len, kind, offset);
    entry *e = NULL;
    if (!c || len > PLAN_CACHE_MAX_TEXT || find(c, sql, len, kind, offset, h) || !(e = calloc(1, sizeof *e)) ||
        !(e->text = malloc(len ? len : 1))) {
        free(e);
        entry tmp = {.kind = kind, .value = value};
        free_value(&tmp);
        return;
    }
    if (c->n == PLAN_CACHE_ENTRIES)
        evict_oldest(c);
    memcpy(e->text, sql, len);
    e->len = len;
    e->hash = h;
    e->kind = kind;
    e->offset = offset;
    e->value = value;
    e->chain = c->buckets[h & (BUCKETS - 1)];
    c->buckets[h & (BUCKETS - 1)] = e;
    push_newest(c, e);
    c->n++;
}

classify_result *plan_cache_classify(plan_cache *c, const char *sql, size_t len)
{
    const classify_result *kept = lookup(c, sql, len, KIND_CLASSIFY, 0);
    return kept ? classify_result_copy(kept) : NULL;
}

void plan_cache_keep_classify(plan_cache *c, const char *sql, size_t len, const classify_result *cr)
{
    if (c && len <= PLAN_CACHE_MAX_TEXT) {
        classify_result *copy = classify_result_copy(cr);
        if (copy)
            keep(c, sql, len, KIND_CLASSIFY, 0, copy);
    }
}

rewrite_result *plan_cache_rewrite(plan_cache *c, const char *sql, size_t len, size_t offset)
{
    const rewrite_result *kept = lookup(c, sql, len, KIND_REWRITE, offset);
    return kept ? rewrite_result_copy(kept) : NULL;
}

void plan_cache_keep_rewrite(plan_cache *c, const char *sql, size_t len, size_t offset, const rewrite_result *rw)
{
    if (c && len <= PLAN_CACHE_MAX_TEXT) {
        rewrite_result *copy = rewrite_result_copy(rw);
        if (copy)
            keep(c, sql, len, KIND_REWRITE, offset, copy);
    }
}

void plan_cache_stats(const plan_cache *c, unsigned long long *hits, unsigned long long *lookups)
{
    *hits = c ? c->hits : 0;
    *lookups = c ? c->lookups : 0;
}
