/* tree: see tree.h. */
#include "parser/tree.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Big enough that the tree of a typical statement fits in one or two blocks; an allocation
 * larger than this gets a block of its own size. */
#define ARENA_BLOCK_SIZE 8192

struct arena_block {
    arena_block *next;
    size_t used, size;
    max_align_t data[]; /* size bytes */
};

void *arena_alloc(arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    if (size > SIZE_MAX - align)
        return NULL;
    size = (size + align - 1) & ~(align - 1);
    arena_block *b = a->blocks;
    if (!b || b->size - b->used < size) {
        size_t bsize = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
        if (bsize > SIZE_MAX - sizeof *b || !(b = malloc(sizeof *b + bsize)))
            return NULL;
        b->used = 0;
        b->size = bsize;
        /* a block of its own for a large allocation leaves the current one in front */
        if (bsize > ARENA_BLOCK_SIZE && a->blocks) {
            b->next = a->blocks->next;
            a->blocks->next = b;
        } else {
            b->next = a->blocks;
            a->blocks = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return memset(p, 0, size);
}

void arena_free(arena *a)
{
    while (a->blocks) {
        arena_block *next = a->blocks->next;
        free(a->blocks);
        a->blocks = next;
    }
}

static void *pb_alloc(void *data, size_t size) { return arena_alloc(data, size); }
static void pb_free(void *data, void *p) { (void)data; (void)p; }

PgQuery__ParseResult *arena_unpack(arena *a, const PgQueryProtobuf *pb)
{
    ProtobufCAllocator allocator = {pb_alloc, pb_free, a};
    return pg_query__parse_result__unpack(&allocator, pb->len, (const uint8_t *)pb->data);
}

/* The fields of m's descriptor a walk looks at: [*first, *end). A Node is one oneof of every
 * node type (some 250 members): for it just the member that is set, found by its number,
 * instead of a test of every member; for other messages all their fields. */
static void tree_fields(const ProtobufCMessage *m, unsigned *first, unsigned *end)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    *first = 0;
    *end = d->n_fields;
    if (d != &pg_query__node__descriptor)
        return;
    const PgQuery__Node *n = (const PgQuery__Node *)m;
    const ProtobufCFieldDescriptor *f = n->node_case == PG_QUERY__NODE__NODE__NOT_SET
                                            ? NULL
                                            : protobuf_c_message_descriptor_get_field(d, (unsigned)n->node_case);
    *first = f ? (unsigned)(f - d->fields) : 0;
    *end = f ? *first + 1 : 0;
}

void tree_children(const ProtobufCMessage *m, tree_child_fn each, void *data)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    unsigned first, end;
    tree_fields(m, &first, &end);
    for (unsigned i = first; i < end; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue; /* a member of a oneof that is not set */
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (items[j])
                    each(items[j], data);
        } else {
            const ProtobufCMessage *child = *(const ProtobufCMessage *const *)(base + f->offset);
            if (child)
                each(child, data);
        }
    }
}
