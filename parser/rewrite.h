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
 * mirrored rows); has_returning says whether there is one. With RETURNING the plan also
 * checks the list and carries what it will read (see "RETURNING" below), so that a list
 * the database would refuse is refused before any API call.
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
    /* RETURNING. The list is checked in the plan, in the statement's own scope, by a column
     * "apigres returning" that Postgres resolves but never evaluates (CASE WHEN false THEN
     * ROW(<target>.id, <the list>) END): an unknown name or an aggregate fails the plan.
     *
     * returning_sql is "[WITH ...] SELECT <the list> FROM <target [AS alias]>" for UPDATE and
     * INSERT, which read the mirrored rows; for DELETE it ends before FROM: the rows are gone
     * by then, so the plan carries each target row as text (plan column "apigres target")
     * and the caller appends FROM <those rows, cast back to the table's type> AS
     * returning_ref. Then the caller appends one CROSS JOIN LATERAL per entry of from[]
     * (below), and which rows: returning_ref.id, the alias or the table's name, unquoted. */
    char *returning_sql;
    char *returning_ref;
    /* The FROM/USING tables an UPDATE or DELETE with RETURNING carries, in the order of its
     * FROM clause: plan column "apigres from K", K from 1, is the joined row as text (NULL
     * where an outer join found none), which the caller casts back to the table's row type.
     * Tables and views, also inside plain JOINs; a subquery, a function, a CTE or a JOIN
     * with USING, NATURAL or an alias is not carried, and a RETURNING that might read one is
     * refused (0A000); bare names it reads are in returning_bare for the caller to check
     * against the target's columns. A schema.table.column reference to a table read from
     * the plan's rows (a DELETE's target, a FROM table) is table.column in returning_sql. */
    struct rewrite_from {
        char *name;      /* the alias, or the table's name (unquoted) */
        char *schema;    /* the table as the statement names it: schema (or NULL) */
        char *relname;   /* and name (unquoted), which are its row type's */
        char **colnames; /* the alias's column names, if it gives any */
        size_t n_colnames;
    } *from;
    size_t n_from;
    char **returning_bare; /* with a FROM item that is not carried: RETURNING's unqualified */
    size_t n_returning_bare; /* column names, which must be the target's own */
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
/* Whether name is one of Postgres's system columns (ctid, xmin, ...). */
bool rewrite_system_column(const char *name);
/* A deep copy of r (free it with rewrite_result_free), or NULL when out of memory. */
rewrite_result *rewrite_result_copy(const rewrite_result *r);

#endif
