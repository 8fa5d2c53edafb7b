/*
 * rewrite_internal: what rewrite.c (the plans) and rewrite_returning.c (RETURNING's part of
 * them) share. Not for other modules: see rewrite.h.
 *
 * A ctx is one rewrite_plan call: the arena every node of the plan comes from (and the
 * unpacked statement, when it was parsed again), and the result being built. Node builders
 * return NULL and set oom when the arena is out of memory; strings they take are borrowed
 * (packing only reads them). rw_refuse turns the result into a refusal.
 */
#ifndef APIGRES_REWRITE_INTERNAL_H
#define APIGRES_REWRITE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pg_query/pg_query.pb-c.h>

#include "parser/rewrite.h"
#include "parser/tree.h"

typedef struct ctx {
    arena nodes; /* the unpacked statement and the plan's own nodes */
    bool oom;
    rewrite_result *r;
} ctx;

void *rw_alloc(ctx *c, size_t size);
char *rw_dup_str(ctx *c, const char *s); /* malloc'd (the result's), not the arena's */
void rw_refuse(ctx *c, const char *sqlstate, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

PgQuery__Node *rw_node(ctx *c);
PgQuery__Node **rw_list(ctx *c, size_t n);
PgQuery__Node *rw_string(ctx *c, const char *s);
PgQuery__Node *rw_column_ref(ctx *c, const char *qualifier, const char *column); /* a.id */
PgQuery__Node *rw_star(ctx *c);                                                   /* * */
PgQuery__Node *rw_res_target(ctx *c, const char *name, PgQuery__Node *val);       /* val [AS name] */
PgQuery__Node *rw_range_var_node(ctx *c, PgQuery__RangeVar *rv);
PgQuery__Node *rw_const(ctx *c); /* an A_Const with no value set: the caller sets one */
PgQuery__SelectStmt *rw_select(ctx *c);
/* The alias of rel, or its name. */
const char *rw_ref_name(const PgQuery__RangeVar *rel);
/* s deparsed (malloc'd), or NULL with c refused or out of memory. */
char *rw_deparse(ctx *c, PgQuery__SelectStmt *s, int32_t version);

/* RETURNING (rewrite_returning.c): adds its columns to plan s (UPDATE and DELETE: with the
 * target and FROM/USING in scope; INSERT: its VALUES) and sets the result's returning_sql,
 * returning_ref, from[] and returning_bare[], or refuses. */
void rw_plan_returning(ctx *c, PgQuery__SelectStmt *s, PgQuery__RangeVar *rel, PgQuery__Node **from,
                       size_t n_from, PgQuery__WithClause *with, PgQuery__Node **list, size_t n,
                       const char *table, int32_t version);
/* RETURNING's part of r, emptied. */
void rw_free_returning(rewrite_result *r);

#endif
