/*
 * tree: libpg_query's protobuf parse trees as the parser modules hold and walk them.
 *
 * An arena holds a tree and the nodes built around it, freed at once. protobuf-c's unpack
 * makes one malloc per message, string and array of the tree, and free_unpacked walks the
 * whole tree again through its descriptors to free them: for the short statement of a write
 * that was half the time of unpacking it. Unpacked into an arena, a tree costs a few blocks
 * and one pass over them to free.
 *
 * Allocations are aligned for any type and zeroed. Nothing is freed on its own: memory
 * comes back only with arena_free, which leaves the arena empty and usable again.
 */
#ifndef APIGRES_TREE_H
#define APIGRES_TREE_H

#include <stddef.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

typedef struct arena_block arena_block;

typedef struct arena {
    arena_block *blocks; /* the newest first; allocations come from it */
} arena;

#define ARENA_INIT {NULL}

/* size zeroed bytes, or NULL when out of memory. */
void *arena_alloc(arena *a, size_t size);
void arena_free(arena *a);

/* libpg_query's protobuf parse tree unpacked into a (NULL when the bytes do not unpack or
 * memory ran out). It lives until arena_free; never pass it to free_unpacked. */
PgQuery__ParseResult *arena_unpack(arena *a, const PgQueryProtobuf *pb);

/* Calls each(child, data) for every message directly below m that is set, in the order of
 * m's fields (a repeated field's items one by one): the step of a generic walk of the tree.
 * For a Node, just the member that is set, found by its number (a Node is a oneof of some
 * 250 node types). */
typedef void (*tree_child_fn)(const ProtobufCMessage *child, void *data);
void tree_children(const ProtobufCMessage *m, tree_child_fn each, void *data);

#endif
