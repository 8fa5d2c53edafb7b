/*
 * rewrite: the plan statement of a write to a synced table (shared/DESIGN.md §4.2 step 1).
 *
 * A statement that classify_sql judged CLASSIFY_WRITE is turned into a SELECT that the
 * caller runs on the client's own session, with the client's Bind values, privileges and
 * RLS, so that the proxy never evaluates an SQL expression itself:
 *
 *   UPDATE t [AS a] SET c1 = e1, ... [FROM f, ...] [WHERE w]
 *     -> SELECT a.id, e1 AS c1, ... FROM t a [, f, ...] [WHERE w] FOR UPDATE OF a
 *   DELETE FROM t [AS a] [USING u, ...] [WHERE w]
 *     -> SELECT a.id FROM t a [, u, ...] [WHERE w] FOR UPDATE OF a
 *   INSERT INTO t (c1, c2) VALUES (...), ...     -> SELECT * FROM (VALUES ...) v(c1, c2)
 *                                                   (DEFAULT -> NULL, noted in defaults)
 *   INSERT INTO t (c1, c2) SELECT ...            -> SELECT * FROM (SELECT ...) v(c1, c2)
 *
 * A read-only WITH in front of the write is carried over onto the plan. $n parameters are
 * left as they are. RETURNING is not part of the plan (the caller computes it from the
 * mirrored rows); has_returning says whether there is one.
 *
 * The plan is built by rearranging libpg_query's protobuf tree and deparsing it with
 * pg_query_deparse_protobuf, never by pasting strings: the text of every expression is
 * libpg_query's canonical rendering of what the client wrote.
 *
 * Pure: no globals. libpg_query keeps a memory context per thread (see classify.h).
 */
#ifndef APIGRES_REWRITE_H
#define APIGRES_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "parser/classify.h"

typedef enum rewrite_kind {
    REWRITE_REFUSED, /* no plan: sqlstate, message, hint say why */
    REWRITE_UPDATE,  /* plan columns: id, then columns[0..n_columns) */
    REWRITE_DELETE,  /* plan columns: id */
    REWRITE_INSERT,  /* plan columns: columns[0..n_columns), one row per row to create */
} rewrite_kind;

typedef struct rewrite_result {
    rewrite_kind kind;
    char *plan_sql;    /* NUL-terminated SELECT; NULL when refused */
    char **columns;    /* API fields in the order of the plan's output columns (after id
                          for UPDATE); NULL and 0 for DELETE */
    size_t n_columns;
    /* INSERT ... VALUES with DEFAULT: defaults[row * n_columns + column] is 1 where the
     * client wrote DEFAULT. The plan has NULL there; the field is not sent, so the API's own
     * default applies. NULL (and n_default_rows 0) when no value is DEFAULT. */
    unsigned char *defaults;
    size_t n_default_rows;
    bool has_returning;  /* the statement has a RETURNING list (not part of the plan) */
    size_t n_returning;  /* its number of entries */
    /* With RETURNING: "SELECT <the RETURNING list> FROM <target [AS alias]>", to which the
     * caller appends which rows, naming the target's id column as returning_ref.id
     * (returning_ref is the alias or the table's name, unquoted). It reads the target
     * table only: a RETURNING that names a FROM/USING table fails there (42P01). */
    char *returning_sql;
    char *returning_ref;
    int n_params;        /* highest $n the plan references (0 = none); may be lower than
                            the statement's when a $n appears only in RETURNING, so Parse
                            the plan with the statement's parameter types (all of them) */

    /* REWRITE_REFUSED */
    char sqlstate[6];
    char *message;
    char *hint;          /* may be NULL */
} rewrite_result;

/* Plans statement st of sql[0..len).
 *
 * sql/len must be the very text given to classify_sql and st one of the statements of its
 * result, with verdict CLASSIFY_WRITE: rewrite takes st->tree (classified with keep_trees;
 * it only reads it) or else parses sql[st->offset, st->offset + st->len), and relies on
 * classify_sql having refused texts that are too long or nested too deeply for libpg_query's
 * recursive parser (the stack needs are those of classify.h).
 *
 * Returns 0 and sets *out (caller frees with rewrite_result_free) with either a plan or a
 * refusal (kind REWRITE_REFUSED, SQLSTATE 0A000 for forms the write path cannot carry out,
 * 42601/42701 for mistakes Postgres itself would reject, XX000 if libpg_query fails);
 * returns -1 when out of memory or when st is not a WRITE of this text. */
int rewrite_plan(const char *sql, size_t len, const classify_stmt *st, rewrite_result **out);
void rewrite_result_free(rewrite_result *r);
/* A deep copy of r (free it with rewrite_result_free), or NULL when out of memory. */
rewrite_result *rewrite_result_copy(const rewrite_result *r);

#endif
