/*
 * rewrite: the plan SELECT of a write (see rewrite.h).
 *
 * Ownership: the client's statement is the classification's tree (classify_options's
 * keep_trees), or else it is unpacked once, into an arena (parser/tree.h). The plan is a new
 * tree whose own nodes (SelectStmt, ResTargets, ColumnRefs, the locking clause...) come from
 * the arena, and whose expressions, FROM items, WHERE and WITH are borrowed pointers into the
 * statement's tree, which is only read. The plan is packed and deparsed, then the arena goes
 * with everything in it: no node is freed on its own. RETURNING's part of the plan is
 * rewrite_returning.c's; what the two share is rewrite_internal.h's.
 */
#include "parser/rewrite.h"
#include "parser/rewrite_internal.h"
#include "parser/tree.h"
#include "parser/format.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

/* ---------------------------------------------------------------- context */

void *rw_alloc(ctx *c, size_t size)
{
    void *p = arena_alloc(&c->nodes, size);
    if (!p)
        c->oom = true;
    return p;
}

char *rw_dup_str(ctx *c, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        c->oom = true;
    return d;
}

/* ---------------------------------------------------------------- results */

void rw_refuse(ctx *c, const char *sqlstate, const char *hint, const char *fmt, ...)
{
    rewrite_result *r = c->r;
    r->kind = REWRITE_REFUSED;
    va_list ap;
    va_start(ap, fmt);
    if (format_refusal(r->sqlstate, &r->message, &r->hint, sqlstate, hint, fmt, ap) < 0)
        c->oom = true;
    va_end(ap);
}

static void add_column(ctx *c, const char *name)
{
    rewrite_result *r = c->r;
    char **grown = realloc(r->columns, (r->n_columns + 1) * sizeof *grown);
    if (!grown) {
        c->oom = true;
        return;
    }
    r->columns = grown;
    char *d = rw_dup_str(c, name);
    if (d)
        grown[r->n_columns++] = d;
}

static bool has_column(const rewrite_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_columns; i++)
        if (strcmp(r->columns[i], name) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- node builders */

/* Nodes of the plan. Strings are borrowed (packing only reads them), hence the casts. */

PgQuery__Node *rw_node(ctx *c)
{
    PgQuery__Node *n = rw_alloc(c, sizeof *n);
    if (n)
        *n = (PgQuery__Node)PG_QUERY__NODE__INIT;
    return n;
}

PgQuery__Node **rw_list(ctx *c, size_t n)
{
    return rw_alloc(c, (n ? n : 1) * sizeof(PgQuery__Node *));
}

PgQuery__Node *rw_string(ctx *c, const char *s)
{
    PgQuery__Node *n = rw_node(c);
    PgQuery__String *v = rw_alloc(c, sizeof *v);
    if (!n || !v)
        return NULL;
    *v = (PgQuery__String)PG_QUERY__STRING__INIT;
    v->sval = (char *)s;
    n->node_case = PG_QUERY__NODE__NODE_STRING;
    n->string = v;
    return n;
}

/* a.id (qualifier NULL: id) */
PgQuery__Node *rw_column_ref(ctx *c, const char *qualifier, const char *column)
{
    PgQuery__Node *n = rw_node(c);
    PgQuery__ColumnRef *cr = rw_alloc(c, sizeof *cr);
    PgQuery__Node **fields = rw_list(c, 2);
    if (!n || !cr || !fields)
        return NULL;
    *cr = (PgQuery__ColumnRef)PG_QUERY__COLUMN_REF__INIT;
    cr->location = -1;
    cr->fields = fields;
    if (qualifier && !(fields[cr->n_fields++] = rw_string(c, qualifier)))
        return NULL;
    if (!(fields[cr->n_fields++] = rw_string(c, column)))
        return NULL;
    n->node_case = PG_QUERY__NODE__NODE_COLUMN_REF;
    n->column_ref = cr;
    return n;
}

/* * */
PgQuery__Node *rw_star(ctx *c)
{
    PgQuery__Node *n = rw_node(c), *star = rw_node(c);
    PgQuery__ColumnRef *cr = rw_alloc(c, sizeof *cr);
    PgQuery__AStar *a = rw_alloc(c, sizeof *a);
    PgQuery__Node **fields = rw_list(c, 1);
    if (!n || !star || !cr || !a || !fields)
        return NULL;
    *a = (PgQuery__AStar)PG_QUERY__A__STAR__INIT;
    star->node_case = PG_QUERY__NODE__NODE_A_STAR;
    star->a_star = a;
    *cr = (PgQuery__ColumnRef)PG_QUERY__COLUMN_REF__INIT;
    cr->location = -1;
    cr->fields = fields;
    cr->n_fields = 1;
    fields[0] = star;
    n->node_case = PG_QUERY__NODE__NODE_COLUMN_REF;
    n->column_ref = cr;
    return n;
}

/* val [AS name] */
PgQuery__Node *rw_res_target(ctx *c, const char *name, PgQuery__Node *val)
{
    PgQuery__Node *n = rw_node(c);
    PgQuery__ResTarget *rt = rw_alloc(c, sizeof *rt);
    if (!n || !rt || !val)
        return NULL;
    *rt = (PgQuery__ResTarget)PG_QUERY__RES_TARGET__INIT;
    rt->name = (char *)name;
    rt->val = val;
    rt->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_RES_TARGET;
    n->res_target = rt;
    return n;
}

PgQuery__Node *rw_range_var_node(ctx *c, PgQuery__RangeVar *rv)
{
    PgQuery__Node *n = rw_node(c);
    if (!n)
        return NULL;
    n->node_case = PG_QUERY__NODE__NODE_RANGE_VAR;
    n->range_var = rv;
    return n;
}

/* FOR UPDATE OF name (Postgres wants an unqualified name there: the alias or relname). */
static PgQuery__Node *mk_for_update(ctx *c, const char *name)
{
    PgQuery__Node *n = rw_node(c);
    PgQuery__LockingClause *lc = rw_alloc(c, sizeof *lc);
    PgQuery__RangeVar *rv = rw_alloc(c, sizeof *rv);
    PgQuery__Node **rels = rw_list(c, 1);
    if (!n || !lc || !rv || !rels)
        return NULL;
    *rv = (PgQuery__RangeVar)PG_QUERY__RANGE_VAR__INIT;
    rv->relname = (char *)name;
    rv->inh = true;
    rv->relpersistence = (char *)"p";
    rv->location = -1;
    if (!(rels[0] = rw_range_var_node(c, rv)))
        return NULL;
    *lc = (PgQuery__LockingClause)PG_QUERY__LOCKING_CLAUSE__INIT;
    lc->locked_rels = rels;
    lc->n_locked_rels = 1;
    lc->strength = PG_QUERY__LOCK_CLAUSE_STRENGTH__LCS_FORUPDATE;
    lc->wait_policy = PG_QUERY__LOCK_WAIT_POLICY__LockWaitBlock;
    n->node_case = PG_QUERY__NODE__NODE_LOCKING_CLAUSE;
    n->locking_clause = lc;
    return n;
}

PgQuery__SelectStmt *rw_select(ctx *c)
{
    PgQuery__SelectStmt *s = rw_alloc(c, sizeof *s);
    if (s) {
        *s = (PgQuery__SelectStmt)PG_QUERY__SELECT_STMT__INIT;
        s->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
        s->op = PG_QUERY__SET_OPERATION__SETOP_NONE;
    }
    return s;
}

/* ---------------------------------------------------------------- UPDATE and DELETE */

const char *rw_ref_name(const PgQuery__RangeVar *rel)
{
    return rel->alias && rel->alias->aliasname ? rel->alias->aliasname : rel->relname;
}

/* FROM target [, extra...] and FOR UPDATE OF target, WHERE as is. */
static void plan_rows(ctx *c, PgQuery__SelectStmt *s, PgQuery__RangeVar *rel,
                      PgQuery__Node **extra, size_t n_extra, PgQuery__Node *where)
{
    s->from_clause = rw_list(c, 1 + n_extra);
    s->locking_clause = rw_list(c, 1);
    if (!s->from_clause || !s->locking_clause)
        return;
    if (!(s->from_clause[0] = rw_range_var_node(c, rel)))
        return;
    s->n_from_clause = 1;
    for (size_t i = 0; i < n_extra; i++)
        s->from_clause[s->n_from_clause++] = extra[i];
    s->where_clause = where;
    if ((s->locking_clause[0] = mk_for_update(c, rw_ref_name(rel))))
        s->n_locking_clause = 1;
}

static const char hint_multi[] =
    "Assign each column on its own: SET a = (SELECT x FROM ...), b = (SELECT y FROM ...).";

/* The value a SET item assigns, or NULL after refusing. */
static PgQuery__Node *set_value(ctx *c, const PgQuery__ResTarget *rt, const char *table)
{
    if (rt->n_indirection > 0) {
        rw_refuse(c, "0A000", "Assign the whole column.",
               "assigning part of column \"%s\" (an array element or field) of synced table %s "
               "is not supported", rt->name, table);
        return NULL;
    }
    PgQuery__Node *val = rt->val;
    if (val && val->node_case == PG_QUERY__NODE__NODE_MULTI_ASSIGN_REF) {
        const PgQuery__MultiAssignRef *m = val->multi_assign_ref;
        const PgQuery__Node *src = m->source;
        if (!src || src->node_case != PG_QUERY__NODE__NODE_ROW_EXPR ||
            src->row_expr->n_args != (size_t)m->ncolumns || m->colno < 1 ||
            m->colno > m->ncolumns) {
            if (src && src->node_case == PG_QUERY__NODE__NODE_SUB_LINK)
                rw_refuse(c, "0A000", hint_multi,
                       "SET (columns) = (SELECT ...) on synced table %s is not supported", table);
            else
                rw_refuse(c, "0A000", hint_multi,
                       "SET (columns) = ... on synced table %s is supported only with a list "
                       "of values, one per column", table);
            return NULL;
        }
        val = src->row_expr->args[m->colno - 1];
    }
    if (!val || val->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT) {
        rw_refuse(c, "0A000", "Give the value explicitly.",
               "SET %s = DEFAULT on synced table %s is not supported", rt->name, table);
        return NULL;
    }
    return val;
}

static void plan_update(ctx *c, PgQuery__SelectStmt *s, PgQuery__UpdateStmt *upd,
                        const char *table)
{
    const char *ref = rw_ref_name(upd->relation);
    s->target_list = rw_list(c, 1 + upd->n_target_list);
    if (!s->target_list || !(s->target_list[0] = rw_res_target(c, NULL, rw_column_ref(c, ref, "id"))))
        return;
    s->n_target_list = 1;
    for (size_t i = 0; i < upd->n_target_list; i++) {
        const PgQuery__Node *n = upd->target_list[i];
        if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !n->res_target->name) {
            rw_refuse(c, "XX000", NULL, "unexpected SET item in UPDATE of synced table %s", table);
            return;
        }
        const PgQuery__ResTarget *rt = n->res_target;
        if (has_column(c->r, rt->name)) {
            rw_refuse(c, "42601", NULL, "multiple assignments to same column \"%s\"", rt->name);
            return;
        }
        PgQuery__Node *val = set_value(c, rt, table);
        if (!val)
            return;
        PgQuery__Node *t = rw_res_target(c, rt->name, val);
        if (!t)
            return;
        s->target_list[s->n_target_list++] = t;
        add_column(c, rt->name);
        if (c->oom)
            return;
    }
    plan_rows(c, s, upd->relation, upd->from_clause, upd->n_from_clause, upd->where_clause);
    s->with_clause = upd->with_clause;
}

static void plan_delete(ctx *c, PgQuery__SelectStmt *s, PgQuery__DeleteStmt *del)
{
    s->target_list = rw_list(c, 1);
    if (!s->target_list ||
        !(s->target_list[0] = rw_res_target(c, NULL, rw_column_ref(c, rw_ref_name(del->relation), "id"))))
        return;
    s->n_target_list = 1;
    plan_rows(c, s, del->relation, del->using_clause, del->n_using_clause, del->where_clause);
    s->with_clause = del->with_clause;
}

/* ---------------------------------------------------------------- INSERT */

static bool has_star(const PgQuery__SelectStmt *s)
{
    for (size_t i = 0; i < s->n_target_list; i++) {
        const PgQuery__Node *n = s->target_list[i];
        if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !n->res_target->val ||
            n->res_target->val->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
            continue;
        const PgQuery__ColumnRef *cr = n->res_target->val->column_ref;
        if (cr->n_fields > 0 && cr->fields[cr->n_fields - 1]->node_case == PG_QUERY__NODE__NODE_A_STAR)
            return true;
    }
    return false;
}

/* Postgres's own errors for a source whose width is not the column list's (when it can be
 * told from the text; "SELECT *" cannot, and then the plan's RowDescription tells). */
static bool width_mismatch(ctx *c, size_t width, size_t n_cols)
{
    if (width > n_cols)
        rw_refuse(c, "42601", NULL, "INSERT has more expressions than target columns");
    else if (width < n_cols)
        rw_refuse(c, "42601", NULL, "INSERT has more target columns than expressions");
    return width != n_cols;
}

PgQuery__Node *rw_const(ctx *c)
{
    PgQuery__Node *n = rw_node(c);
    PgQuery__AConst *k = rw_alloc(c, sizeof *k);
    if (!n || !k)
        return NULL;
    *k = (PgQuery__AConst)PG_QUERY__A__CONST__INIT;
    k->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_A_CONST;
    n->a_const = k;
    return n;
}

static PgQuery__Node *mk_null(ctx *c)
{
    PgQuery__Node *n = rw_const(c);
    if (n)
        n->a_const->isnull = true;
    return n;
}

/* The VALUES source sel with each DEFAULT replaced by NULL, noting where they were in
 * c->r->defaults; the caller leaves those fields out of the API call. A copy of the lists
 * (the parse tree is libpg_query's and freed as it was built). NULL when out of memory. */
static PgQuery__Node *values_without_defaults(ctx *c, const PgQuery__SelectStmt *sel)
{
    rewrite_result *r = c->r;
    size_t n_rows = sel->n_values_lists, width = r->n_columns;
    PgQuery__Node *node = rw_node(c);
    PgQuery__SelectStmt *copy = rw_alloc(c, sizeof *copy);
    PgQuery__Node **rows = rw_list(c, n_rows);
    if (!(r->defaults = calloc(n_rows * width, 1)))
        c->oom = true;
    if (!node || !copy || !rows || !r->defaults)
        return NULL;
    r->n_default_rows = n_rows;
    *copy = *sel;
    copy->values_lists = rows;
    node->node_case = PG_QUERY__NODE__NODE_SELECT_STMT;
    node->select_stmt = copy;
    for (size_t i = 0; i < n_rows; i++) {
        const PgQuery__Node *row = sel->values_lists[i];
        rows[i] = (PgQuery__Node *)row;
        if (row->node_case != PG_QUERY__NODE__NODE_LIST)
            continue;
        PgQuery__Node *row_copy = rw_node(c);
        PgQuery__List *list = rw_alloc(c, sizeof *list);
        PgQuery__Node **items = rw_list(c, row->list->n_items);
        if (!row_copy || !list || !items)
            return NULL;
        *list = *row->list;
        list->items = items;
        *row_copy = *row;
        row_copy->list = list;
        rows[i] = row_copy;
        for (size_t j = 0; j < list->n_items; j++) {
            items[j] = row->list->items[j];
            if (items[j]->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT) {
                r->defaults[i * width + j] = 1;
                if (!(items[j] = mk_null(c)))
                    return NULL;
            }
        }
    }
    return node;
}

static void plan_insert(ctx *c, PgQuery__SelectStmt *s, PgQuery__InsertStmt *ins,
                        const char *table)
{
    PgQuery__Node *src = ins->select_stmt;
    if (!src) {
        rw_refuse(c, "0A000", "List the columns and give their values: INSERT INTO t (a, b) "
                           "VALUES (...).",
               "INSERT ... DEFAULT VALUES into synced table %s is not supported", table);
        return;
    }
    if (ins->n_cols == 0) {
        rw_refuse(c, "0A000", "List the columns: INSERT INTO t (a, b) VALUES (...). The API "
                           "assigns the id.",
               "INSERT into synced table %s needs a column list", table);
        return;
    }
    for (size_t i = 0; i < ins->n_cols; i++) {
        const PgQuery__Node *n = ins->cols[i];
        if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !n->res_target->name) {
            rw_refuse(c, "XX000", NULL, "unexpected column in INSERT into synced table %s", table);
            return;
        }
        const PgQuery__ResTarget *rt = n->res_target;
        if (rt->n_indirection > 0) {
            rw_refuse(c, "0A000", "Insert the whole column.",
                   "inserting part of column \"%s\" (an array element or field) of synced "
                   "table %s is not supported", rt->name, table);
            return;
        }
        if (has_column(c->r, rt->name)) {
            rw_refuse(c, "42701", NULL, "column \"%s\" specified more than once", rt->name);
            return;
        }
        add_column(c, rt->name);
        if (c->oom)
            return;
    }
    if (src->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
        rw_refuse(c, "XX000", NULL, "unexpected source of INSERT into synced table %s", table);
        return;
    }
    const PgQuery__SelectStmt *sel = src->select_stmt;
    bool has_default = false;
    if (sel->n_values_lists > 0) {
        for (size_t i = 0; i < sel->n_values_lists; i++) {
            const PgQuery__Node *row = sel->values_lists[i];
            if (row->node_case != PG_QUERY__NODE__NODE_LIST)
                continue;
            if (width_mismatch(c, row->list->n_items, ins->n_cols))
                return;
            for (size_t j = 0; j < row->list->n_items; j++)
                if (row->list->items[j]->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT)
                    has_default = true;
        }
        if (has_default && !(src = values_without_defaults(c, sel)))
            return;
    } else {
        const PgQuery__SelectStmt *left = sel;
        while (left->op != PG_QUERY__SET_OPERATION__SETOP_NONE && left->larg)
            left = left->larg; /* the leftmost branch gives a set operation its width */
        if (left->n_values_lists == 0 && !has_star(left) &&
            width_mismatch(c, left->n_target_list, ins->n_cols))
            return;
    }

    /* SELECT * FROM (<source>) "apigres values"(c1, c2): a name RETURNING cannot mean (its
     * check runs inside this SELECT) */
    PgQuery__Node *from = rw_node(c);
    PgQuery__RangeSubselect *sub = rw_alloc(c, sizeof *sub);
    PgQuery__Alias *alias = rw_alloc(c, sizeof *alias);
    PgQuery__Node **colnames = rw_list(c, ins->n_cols);
    s->target_list = rw_list(c, 1);
    s->from_clause = rw_list(c, 1);
    if (!from || !sub || !alias || !colnames || !s->target_list || !s->from_clause)
        return;
    *alias = (PgQuery__Alias)PG_QUERY__ALIAS__INIT;
    alias->aliasname = (char *)"apigres values";
    alias->colnames = colnames;
    for (size_t i = 0; i < ins->n_cols; i++)
        if (!(colnames[alias->n_colnames++] = rw_string(c, ins->cols[i]->res_target->name)))
            return;
    *sub = (PgQuery__RangeSubselect)PG_QUERY__RANGE_SUBSELECT__INIT;
    sub->subquery = src;
    sub->alias = alias;
    from->node_case = PG_QUERY__NODE__NODE_RANGE_SUBSELECT;
    from->range_subselect = sub;
    s->from_clause[0] = from;
    s->n_from_clause = 1;
    if (!(s->target_list[0] = rw_res_target(c, NULL, rw_star(c))))
        return;
    s->n_target_list = 1;
    s->with_clause = ins->with_clause;
}

/* ---------------------------------------------------------------- parameters */

/* The lowest and highest $n below m (lo stays INT_MAX without one). The tree is no deeper
 * than the statement classify_sql accepted. */
typedef struct param_span {
    int lo, hi;
} param_span;

static void param_range(const ProtobufCMessage *m, void *data)
{
    param_span *p = data;
    if (m->descriptor == &pg_query__param_ref__descriptor) {
        int n = ((const PgQuery__ParamRef *)m)->number;
        p->lo = n < p->lo ? n : p->lo;
        p->hi = n > p->hi ? n : p->hi;
        return;
    }
    tree_children(m, param_range, p);
}

/* ---------------------------------------------------------------- entry points */

void rewrite_result_free(rewrite_result *r)
{
    if (!r)
        return;
    free(r->plan_sql);
    rw_free_returning(r);
    for (size_t i = 0; i < r->n_columns; i++)
        free(r->columns[i]);
    free(r->columns);
    free(r->defaults);
    free(r->message);
    free(r->hint);
    free(r);
}

rewrite_result *rewrite_result_copy(const rewrite_result *r)
{
    rewrite_result *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    bool failed = false;
    *c = *r;
    c->plan_sql = format_dup(r->plan_sql, &failed);
    c->returning_sql = format_dup(r->returning_sql, &failed);
    c->returning_ref = format_dup(r->returning_ref, &failed);
    c->returning_bare = format_dup_strings(r->returning_bare, r->n_returning_bare, &failed);
    c->n_returning_bare = c->returning_bare ? r->n_returning_bare : 0;
    c->from = r->n_from ? calloc(r->n_from, sizeof *c->from) : NULL;
    c->n_from = 0;
    if (r->n_from && !c->from)
        failed = true;
    for (size_t i = 0; c->from && i < r->n_from; i++, c->n_from++) {
        c->from[i].name = format_dup(r->from[i].name, &failed);
        c->from[i].schema = format_dup(r->from[i].schema, &failed);
        c->from[i].relname = format_dup(r->from[i].relname, &failed);
        c->from[i].colnames = format_dup_strings(r->from[i].colnames, r->from[i].n_colnames, &failed);
        c->from[i].n_colnames = c->from[i].colnames ? r->from[i].n_colnames : 0;
    }
    c->message = format_dup(r->message, &failed);
    c->hint = format_dup(r->hint, &failed);
    c->columns = format_dup_strings(r->columns, r->n_columns, &failed);
    c->n_columns = c->columns ? r->n_columns : 0;
    c->defaults = NULL;
    if (r->defaults) {
        size_t n = r->n_default_rows * r->n_columns;
        if ((c->defaults = malloc(n ? n : 1)))
            memcpy(c->defaults, r->defaults, n);
        else
            failed = true;
    }
    if (failed) {
        rewrite_result_free(c);
        return NULL;
    }
    return c;
}

/* Deparses s; returns the text (malloc'd) or NULL with c refused or out of memory. */
char *rw_deparse(ctx *c, PgQuery__SelectStmt *s, int32_t version)
{
    char *text = NULL;
    PgQuery__Node node = PG_QUERY__NODE__INIT;
    node.node_case = PG_QUERY__NODE__NODE_SELECT_STMT;
    node.select_stmt = s;
    PgQuery__RawStmt raw = PG_QUERY__RAW_STMT__INIT;
    raw.stmt = &node;
    PgQuery__RawStmt *stmts[1] = {&raw};
    PgQuery__ParseResult tree = PG_QUERY__PARSE_RESULT__INIT;
    tree.version = version;
    tree.n_stmts = 1;
    tree.stmts = stmts;

    size_t size = pg_query__parse_result__get_packed_size(&tree);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        c->oom = true;
        return NULL;
    }
    PgQueryProtobuf pb = {pg_query__parse_result__pack(&tree, buf), (char *)buf};
    PgQueryDeparseResult d = pg_query_deparse_protobuf(pb);
    free(buf);
    if (d.error)
        rw_refuse(c, "XX000", NULL, "apigres could not build the plan of this write: %s",
               d.error->message ? d.error->message : "deparse failed");
    else if (!(text = strdup(d.query ? d.query : "")))
        c->oom = true;
    pg_query_free_deparse_result(d);
    if (text) {
        /* libpg_query cannot deparse every tree the grammar accepts (e.g. a type with
         * expressions for modifiers, which Postgres refuses later anyway): a plan that does
         * not parse again is refused here rather than sent (fuzz_classify found this) */
        PgQuerySplitResult again = pg_query_split_with_parser(text); /* the grammar, no tree out */
        if (again.error) {
            rw_refuse(c, "42601", NULL, "apigres cannot carry out this write: its rewritten form does not parse (%s)",
                   again.error->message ? again.error->message : "syntax error");
            free(text);
            text = NULL;
        }
        pg_query_free_split_result(again);
    }
    return text;
}

int rewrite_plan(const char *sql, size_t len, const classify_stmt *st, rewrite_result **out)
{
    ctx c = {0};
    char *text = NULL;
    PgQueryProtobufParseResult parsed = {{0, NULL}, NULL, NULL};
    bool have_parse = false;
    PgQuery__RangeVar *rel = NULL;
    char *client_schema = NULL;

    *out = NULL;
    if (!sql || !st || st->verdict != CLASSIFY_WRITE || st->offset > len ||
        st->len > len - st->offset)
        return -1;
    c.r = calloc(1, sizeof *c.r);
    if (!c.r)
        return -1;

    const PgQuery__Node *stmt = st->tree;
    int32_t version = PG_VERSION_NUM; /* libpg_query's grammar, as its parse results say */
    if (!stmt) {
        text = malloc(st->len + 1); /* libpg_query reads a NUL-terminated string */
        if (!text)
            goto fail;
        memcpy(text, sql + st->offset, st->len);
        text[st->len] = '\0';
        parsed = pg_query_parse_protobuf(text);
        have_parse = true;
        if (parsed.error) {
            rw_refuse(&c, "XX000", NULL, "apigres could not parse this write again: %s",
                   parsed.error->message ? parsed.error->message : "syntax error");
            goto done;
        }
        PgQuery__ParseResult *tree = arena_unpack(&c.nodes, &parsed.parse_tree);
        if (!tree)
            goto fail;
        if (tree->n_stmts != 1 || !tree->stmts[0]->stmt) {
            rw_refuse(&c, "XX000", NULL, "apigres expected one statement to plan, got %zu",
                   tree->n_stmts);
            goto done;
        }
        stmt = tree->stmts[0]->stmt;
        version = tree->version;
    }
    PgQuery__SelectStmt *s = rw_select(&c);
    if (!s)
        goto fail;
    char table[256];
    PgQuery__Node **ret_list = NULL, **from = NULL;
    size_t n_from = 0;
    PgQuery__WithClause *with = NULL;
    switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
        rel = stmt->update_stmt->relation;
        ret_list = stmt->update_stmt->returning_list;
        from = stmt->update_stmt->from_clause;
        n_from = stmt->update_stmt->n_from_clause;
        with = stmt->update_stmt->with_clause;
        break;
    case PG_QUERY__NODE__NODE_DELETE_STMT:
        rel = stmt->delete_stmt->relation;
        ret_list = stmt->delete_stmt->returning_list;
        from = stmt->delete_stmt->using_clause;
        n_from = stmt->delete_stmt->n_using_clause;
        with = stmt->delete_stmt->with_clause;
        break;
    case PG_QUERY__NODE__NODE_INSERT_STMT:
        rel = stmt->insert_stmt->relation;
        ret_list = stmt->insert_stmt->returning_list;
        with = stmt->insert_stmt->with_clause;
        break;
    default: break;
    }
    if (!rel || !rel->relname) {
        rw_refuse(&c, "XX000", NULL, "apigres expected INSERT, UPDATE or DELETE to plan");
        rel = NULL;
        goto done;
    }
    /* a target the session's search_path placed is named by its schema in the plan: the
     * client's tree is lent for that and given back below */
    client_schema = rel->schemaname;
    if (st->unqualified && st->schema)
        rel->schemaname = st->schema;
    if (rel->schemaname && *rel->schemaname)
        snprintf(table, sizeof table, "%s.%s", rel->schemaname, rel->relname);
    else
        snprintf(table, sizeof table, "%s", rel->relname);

    switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
        c.r->kind = REWRITE_UPDATE;
        c.r->n_returning = stmt->update_stmt->n_returning_list;
        plan_update(&c, s, stmt->update_stmt, table);
        break;
    case PG_QUERY__NODE__NODE_DELETE_STMT:
        c.r->kind = REWRITE_DELETE;
        c.r->n_returning = stmt->delete_stmt->n_returning_list;
        plan_delete(&c, s, stmt->delete_stmt);
        break;
    default:
        c.r->kind = REWRITE_INSERT;
        c.r->n_returning = stmt->insert_stmt->n_returning_list;
        plan_insert(&c, s, stmt->insert_stmt, table);
        break;
    }
    c.r->has_returning = c.r->n_returning > 0;
    if (!c.oom && c.r->kind != REWRITE_REFUSED && c.r->has_returning)
        rw_plan_returning(&c, s, rel, from, n_from, with, ret_list, c.r->n_returning, table, version);
    if (c.oom)
        goto fail;
    if (c.r->kind != REWRITE_REFUSED) {
        param_span span = {INT_MAX, 0};
        param_range(&s->base, &span);
        c.r->n_params = span.hi;
        if (span.lo < 1) /* as Postgres answers it (libpg_query would deparse it as "?") */
            rw_refuse(&c, "42P02", NULL, "there is no parameter $%d", span.lo);
        else
            c.r->plan_sql = rw_deparse(&c, s, version);
    }

done:
    if (rel)
        rel->schemaname = client_schema;
    if (c.oom)
        goto fail;
    if (c.r->kind == REWRITE_REFUSED) {
        /* a refusal carries no plan */
        for (size_t i = 0; i < c.r->n_columns; i++)
            free(c.r->columns[i]);
        free(c.r->columns);
        c.r->columns = NULL;
        c.r->n_columns = 0;
        rw_free_returning(c.r);
        c.r->n_params = 0;
    }
    arena_free(&c.nodes);
    if (have_parse)
        pg_query_free_protobuf_parse_result(parsed);
    free(text);
    *out = c.r;
    return 0;

fail:
    if (rel)
        rel->schemaname = client_schema;
    arena_free(&c.nodes);
    if (have_parse)
        pg_query_free_protobuf_parse_result(parsed);
    free(text);
    rewrite_result_free(c.r);
    return -1;
}
