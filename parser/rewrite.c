/*
 * rewrite: the plan SELECT of a write (see rewrite.h).
 *
 * Ownership: the client's statement is the classification's tree (classify_options's
 * keep_trees), or else it is unpacked once, into an arena (parser/tree.h). The plan is a new
 * tree whose own nodes (SelectStmt, ResTargets, ColumnRefs, the locking clause...) come from
 * the arena, and whose expressions, FROM items, WHERE and WITH are borrowed pointers into the
 * statement's tree, which is only read. The plan is packed and deparsed, then the arena goes
 * with everything in it: no node is freed on its own.
 */
#include "parser/rewrite.h"
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

typedef struct ctx {
    arena nodes; /* the unpacked statement and the plan's own nodes */
    bool oom;
    rewrite_result *r;
} ctx;

static void *alloc(ctx *c, size_t size)
{
    void *p = arena_alloc(&c->nodes, size);
    if (!p)
        c->oom = true;
    return p;
}

static char *dup_str(ctx *c, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        c->oom = true;
    return d;
}

/* ---------------------------------------------------------------- results */

static void refuse(ctx *c, const char *sqlstate, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse(ctx *c, const char *sqlstate, const char *hint, const char *fmt, ...)
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
    char *d = dup_str(c, name);
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

static PgQuery__Node *mk_node(ctx *c)
{
    PgQuery__Node *n = alloc(c, sizeof *n);
    if (n)
        *n = (PgQuery__Node)PG_QUERY__NODE__INIT;
    return n;
}

static PgQuery__Node **mk_list(ctx *c, size_t n)
{
    return alloc(c, (n ? n : 1) * sizeof(PgQuery__Node *));
}

static PgQuery__Node *mk_string(ctx *c, const char *s)
{
    PgQuery__Node *n = mk_node(c);
    PgQuery__String *v = alloc(c, sizeof *v);
    if (!n || !v)
        return NULL;
    *v = (PgQuery__String)PG_QUERY__STRING__INIT;
    v->sval = (char *)s;
    n->node_case = PG_QUERY__NODE__NODE_STRING;
    n->string = v;
    return n;
}

/* a.id (qualifier NULL: id) */
static PgQuery__Node *mk_column_ref(ctx *c, const char *qualifier, const char *column)
{
    PgQuery__Node *n = mk_node(c);
    PgQuery__ColumnRef *cr = alloc(c, sizeof *cr);
    PgQuery__Node **fields = mk_list(c, 2);
    if (!n || !cr || !fields)
        return NULL;
    *cr = (PgQuery__ColumnRef)PG_QUERY__COLUMN_REF__INIT;
    cr->location = -1;
    cr->fields = fields;
    if (qualifier && !(fields[cr->n_fields++] = mk_string(c, qualifier)))
        return NULL;
    if (!(fields[cr->n_fields++] = mk_string(c, column)))
        return NULL;
    n->node_case = PG_QUERY__NODE__NODE_COLUMN_REF;
    n->column_ref = cr;
    return n;
}

/* * */
static PgQuery__Node *mk_star(ctx *c)
{
    PgQuery__Node *n = mk_node(c), *star = mk_node(c);
    PgQuery__ColumnRef *cr = alloc(c, sizeof *cr);
    PgQuery__AStar *a = alloc(c, sizeof *a);
    PgQuery__Node **fields = mk_list(c, 1);
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
static PgQuery__Node *mk_res_target(ctx *c, const char *name, PgQuery__Node *val)
{
    PgQuery__Node *n = mk_node(c);
    PgQuery__ResTarget *rt = alloc(c, sizeof *rt);
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

static PgQuery__Node *mk_range_var_node(ctx *c, PgQuery__RangeVar *rv)
{
    PgQuery__Node *n = mk_node(c);
    if (!n)
        return NULL;
    n->node_case = PG_QUERY__NODE__NODE_RANGE_VAR;
    n->range_var = rv;
    return n;
}

/* FOR UPDATE OF name (Postgres wants an unqualified name there: the alias or relname). */
static PgQuery__Node *mk_for_update(ctx *c, const char *name)
{
    PgQuery__Node *n = mk_node(c);
    PgQuery__LockingClause *lc = alloc(c, sizeof *lc);
    PgQuery__RangeVar *rv = alloc(c, sizeof *rv);
    PgQuery__Node **rels = mk_list(c, 1);
    if (!n || !lc || !rv || !rels)
        return NULL;
    *rv = (PgQuery__RangeVar)PG_QUERY__RANGE_VAR__INIT;
    rv->relname = (char *)name;
    rv->inh = true;
    rv->relpersistence = (char *)"p";
    rv->location = -1;
    if (!(rels[0] = mk_range_var_node(c, rv)))
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

static PgQuery__SelectStmt *mk_select(ctx *c)
{
    PgQuery__SelectStmt *s = alloc(c, sizeof *s);
    if (s) {
        *s = (PgQuery__SelectStmt)PG_QUERY__SELECT_STMT__INIT;
        s->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
        s->op = PG_QUERY__SET_OPERATION__SETOP_NONE;
    }
    return s;
}

/* ---------------------------------------------------------------- UPDATE and DELETE */

static const char *ref_name(const PgQuery__RangeVar *rel)
{
    return rel->alias && rel->alias->aliasname ? rel->alias->aliasname : rel->relname;
}

/* FROM target [, extra...] and FOR UPDATE OF target, WHERE as is. */
static void plan_rows(ctx *c, PgQuery__SelectStmt *s, PgQuery__RangeVar *rel,
                      PgQuery__Node **extra, size_t n_extra, PgQuery__Node *where)
{
    s->from_clause = mk_list(c, 1 + n_extra);
    s->locking_clause = mk_list(c, 1);
    if (!s->from_clause || !s->locking_clause)
        return;
    if (!(s->from_clause[0] = mk_range_var_node(c, rel)))
        return;
    s->n_from_clause = 1;
    for (size_t i = 0; i < n_extra; i++)
        s->from_clause[s->n_from_clause++] = extra[i];
    s->where_clause = where;
    if ((s->locking_clause[0] = mk_for_update(c, ref_name(rel))))
        s->n_locking_clause = 1;
}

static const char hint_multi[] =
    "Assign each column on its own: SET a = (SELECT x FROM ...), b = (SELECT y FROM ...).";

/* The value a SET item assigns, or NULL after refusing. */
static PgQuery__Node *set_value(ctx *c, const PgQuery__ResTarget *rt, const char *table)
{
    if (rt->n_indirection > 0) {
        refuse(c, "0A000", "Assign the whole column.",
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
                refuse(c, "0A000", hint_multi,
                       "SET (columns) = (SELECT ...) on synced table %s is not supported", table);
            else
                refuse(c, "0A000", hint_multi,
                       "SET (columns) = ... on synced table %s is supported only with a list "
                       "of values, one per column", table);
            return NULL;
        }
        val = src->row_expr->args[m->colno - 1];
    }
    if (!val || val->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT) {
        refuse(c, "0A000", "Give the value explicitly.",
               "SET %s = DEFAULT on synced table %s is not supported", rt->name, table);
        return NULL;
    }
    return val;
}

static void plan_update(ctx *c, PgQuery__SelectStmt *s, PgQuery__UpdateStmt *upd,
                        const char *table)
{
    const char *ref = ref_name(upd->relation);
    s->target_list = mk_list(c, 1 + upd->n_target_list);
    if (!s->target_list || !(s->target_list[0] = mk_res_target(c, NULL, mk_column_ref(c, ref, "id"))))
        return;
    s->n_target_list = 1;
    for (size_t i = 0; i < upd->n_target_list; i++) {
        const PgQuery__Node *n = upd->target_list[i];
        if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !n->res_target->name) {
            refuse(c, "XX000", NULL, "unexpected SET item in UPDATE of synced table %s", table);
            return;
        }
        const PgQuery__ResTarget *rt = n->res_target;
        if (has_column(c->r, rt->name)) {
            refuse(c, "42601", NULL, "multiple assignments to same column \"%s\"", rt->name);
            return;
        }
        PgQuery__Node *val = set_value(c, rt, table);
        if (!val)
            return;
        PgQuery__Node *t = mk_res_target(c, rt->name, val);
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
    s->target_list = mk_list(c, 1);
    if (!s->target_list ||
        !(s->target_list[0] = mk_res_target(c, NULL, mk_column_ref(c, ref_name(del->relation), "id"))))
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
        refuse(c, "42601", NULL, "INSERT has more expressions than target columns");
    else if (width < n_cols)
        refuse(c, "42601", NULL, "INSERT has more target columns than expressions");
    return width != n_cols;
}

static PgQuery__Node *mk_null(ctx *c)
{
    PgQuery__Node *n = mk_node(c);
    PgQuery__AConst *k = alloc(c, sizeof *k);
    if (!n || !k)
        return NULL;
    *k = (PgQuery__AConst)PG_QUERY__A__CONST__INIT;
    k->isnull = true;
    k->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_A_CONST;
    n->a_const = k;
    return n;
}

/* The VALUES source sel with each DEFAULT replaced by NULL, noting where they were in
 * c->r->defaults; the caller leaves those fields out of the API call. A copy of the lists
 * (the parse tree is libpg_query's and freed as it was built). NULL when out of memory. */
static PgQuery__Node *values_without_defaults(ctx *c, const PgQuery__SelectStmt *sel)
{
    rewrite_result *r = c->r;
    size_t n_rows = sel->n_values_lists, width = r->n_columns;
    PgQuery__Node *node = mk_node(c);
    PgQuery__SelectStmt *copy = alloc(c, sizeof *copy);
    PgQuery__Node **rows = mk_list(c, n_rows);
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
        PgQuery__Node *row_copy = mk_node(c);
        PgQuery__List *list = alloc(c, sizeof *list);
        PgQuery__Node **items = mk_list(c, row->list->n_items);
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
        refuse(c, "0A000", "List the columns and give their values: INSERT INTO t (a, b) "
                           "VALUES (...).",
               "INSERT ... DEFAULT VALUES into synced table %s is not supported", table);
        return;
    }
    if (ins->n_cols == 0) {
        refuse(c, "0A000", "List the columns: INSERT INTO t (a, b) VALUES (...). The API "
                           "assigns the id.",
               "INSERT into synced table %s needs a column list", table);
        return;
    }
    for (size_t i = 0; i < ins->n_cols; i++) {
        const PgQuery__Node *n = ins->cols[i];
        if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !n->res_target->name) {
            refuse(c, "XX000", NULL, "unexpected column in INSERT into synced table %s", table);
            return;
        }
        const PgQuery__ResTarget *rt = n->res_target;
        if (rt->n_indirection > 0) {
            refuse(c, "0A000", "Insert the whole column.",
                   "inserting part of column \"%s\" (an array element or field) of synced "
                   "table %s is not supported", rt->name, table);
            return;
        }
        if (has_column(c->r, rt->name)) {
            refuse(c, "42701", NULL, "column \"%s\" specified more than once", rt->name);
            return;
        }
        add_column(c, rt->name);
        if (c->oom)
            return;
    }
    if (src->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
        refuse(c, "XX000", NULL, "unexpected source of INSERT into synced table %s", table);
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
    PgQuery__Node *from = mk_node(c);
    PgQuery__RangeSubselect *sub = alloc(c, sizeof *sub);
    PgQuery__Alias *alias = alloc(c, sizeof *alias);
    PgQuery__Node **colnames = mk_list(c, ins->n_cols);
    s->target_list = mk_list(c, 1);
    s->from_clause = mk_list(c, 1);
    if (!from || !sub || !alias || !colnames || !s->target_list || !s->from_clause)
        return;
    *alias = (PgQuery__Alias)PG_QUERY__ALIAS__INIT;
    alias->aliasname = (char *)"apigres values";
    alias->colnames = colnames;
    for (size_t i = 0; i < ins->n_cols; i++)
        if (!(colnames[alias->n_colnames++] = mk_string(c, ins->cols[i]->res_target->name)))
            return;
    *sub = (PgQuery__RangeSubselect)PG_QUERY__RANGE_SUBSELECT__INIT;
    sub->subquery = src;
    sub->alias = alias;
    from->node_case = PG_QUERY__NODE__NODE_RANGE_SUBSELECT;
    from->range_subselect = sub;
    s->from_clause[0] = from;
    s->n_from_clause = 1;
    if (!(s->target_list[0] = mk_res_target(c, NULL, mk_star(c))))
        return;
    s->n_target_list = 1;
    s->with_clause = ins->with_clause;
}

/* ---------------------------------------------------------------- RETURNING */

static char *deparse(ctx *c, PgQuery__SelectStmt *s, int32_t version);

/* Builders of the nodes the plan's RETURNING columns need (see rewrite.h). */

static PgQuery__Node **mk_names(ctx *c, const char *schema, const char *name, size_t *n)
{
    PgQuery__Node **names = mk_list(c, 2);
    *n = 0;
    if (!names || !(names[(*n)++] = mk_string(c, schema)) || !(names[(*n)++] = mk_string(c, name)))
        return NULL;
    return names;
}

/* name.* (a whole row, where it is an argument) */
static PgQuery__Node *mk_whole_row(ctx *c, const char *name)
{
    PgQuery__Node *n = mk_star(c);
    PgQuery__Node **fields = mk_list(c, 2);
    if (!n || !fields || !(fields[0] = mk_string(c, name)))
        return NULL;
    fields[1] = n->column_ref->fields[0];
    n->column_ref->fields = fields;
    n->column_ref->n_fields = 2;
    return n;
}

/* CAST(arg AS pg_catalog.text) */
static PgQuery__Node *mk_cast_text(ctx *c, PgQuery__Node *arg)
{
    PgQuery__Node *n = mk_node(c);
    PgQuery__TypeCast *tc = alloc(c, sizeof *tc);
    PgQuery__TypeName *tn = alloc(c, sizeof *tn);
    if (!n || !tc || !tn || !arg)
        return NULL;
    *tn = (PgQuery__TypeName)PG_QUERY__TYPE_NAME__INIT;
    tn->typemod = -1;
    tn->location = -1;
    if (!(tn->names = mk_names(c, "pg_catalog", "text", &tn->n_names)))
        return NULL;
    *tc = (PgQuery__TypeCast)PG_QUERY__TYPE_CAST__INIT;
    tc->arg = arg;
    tc->type_name = tn;
    tc->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_TYPE_CAST;
    n->type_cast = tc;
    return n;
}

/* ROW(<ref>.id, <each entry of list but a bare *>) */
static PgQuery__Node *mk_returning_row(ctx *c, const char *ref, PgQuery__Node **list, size_t n)
{
    PgQuery__Node *node = mk_node(c);
    PgQuery__RowExpr *row = alloc(c, sizeof *row);
    PgQuery__Node **args = mk_list(c, 1 + n);
    if (!node || !row || !args || !(args[0] = mk_column_ref(c, ref, "id")))
        return NULL;
    *row = (PgQuery__RowExpr)PG_QUERY__ROW_EXPR__INIT;
    row->args = args;
    row->n_args = 1;
    for (size_t i = 0; i < n; i++) {
        if (list[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !list[i]->res_target->val)
            continue;
        PgQuery__Node *val = list[i]->res_target->val;
        if (val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF && val->column_ref->n_fields == 1 &&
            val->column_ref->fields[0]->node_case == PG_QUERY__NODE__NODE_A_STAR)
            continue; /* ROW(*) does not parse; a bare * names nothing to check */
        args[row->n_args++] = val;
    }
    row->row_format = PG_QUERY__COERCION_FORM__COERCE_EXPLICIT_CALL;
    row->location = -1;
    node->node_case = PG_QUERY__NODE__NODE_ROW_EXPR;
    node->row_expr = row;
    return node;
}

/* CASE WHEN false THEN result END: Postgres resolves result's names and types, and its
 * planner drops the branch before evaluating anything in it (a 1/0 there raises nothing). */
static PgQuery__Node *mk_never(ctx *c, PgQuery__Node *result)
{
    PgQuery__Node *n = mk_node(c), *when = mk_node(c), *no = mk_node(c);
    PgQuery__CaseExpr *ce = alloc(c, sizeof *ce);
    PgQuery__CaseWhen *cw = alloc(c, sizeof *cw);
    PgQuery__AConst *k = alloc(c, sizeof *k);
    PgQuery__Boolean *b = alloc(c, sizeof *b);
    PgQuery__Node **args = mk_list(c, 1);
    if (!n || !when || !no || !ce || !cw || !k || !b || !args || !result)
        return NULL;
    *b = (PgQuery__Boolean)PG_QUERY__BOOLEAN__INIT;
    *k = (PgQuery__AConst)PG_QUERY__A__CONST__INIT;
    k->val_case = PG_QUERY__A__CONST__VAL_BOOLVAL;
    k->boolval = b;
    k->location = -1;
    no->node_case = PG_QUERY__NODE__NODE_A_CONST;
    no->a_const = k;
    *cw = (PgQuery__CaseWhen)PG_QUERY__CASE_WHEN__INIT;
    cw->expr = no;
    cw->result = result;
    cw->location = -1;
    when->node_case = PG_QUERY__NODE__NODE_CASE_WHEN;
    when->case_when = cw;
    *ce = (PgQuery__CaseExpr)PG_QUERY__CASE_EXPR__INIT;
    args[0] = when;
    ce->args = args;
    ce->n_args = 1;
    ce->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_CASE_EXPR;
    n->case_expr = ce;
    return n;
}

/* (SELECT sel) */
static PgQuery__Node *mk_scalar_sublink(ctx *c, PgQuery__SelectStmt *sel)
{
    PgQuery__Node *n = mk_node(c), *sub = mk_node(c);
    PgQuery__SubLink *sl = alloc(c, sizeof *sl);
    if (!n || !sub || !sl || !sel)
        return NULL;
    sub->node_case = PG_QUERY__NODE__NODE_SELECT_STMT;
    sub->select_stmt = sel;
    *sl = (PgQuery__SubLink)PG_QUERY__SUB_LINK__INIT;
    sl->sub_link_type = PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK;
    sl->subselect = sub;
    sl->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_SUB_LINK;
    n->sub_link = sl;
    return n;
}

static char *arena_str(ctx *c, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = alloc(c, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool add_target(ctx *c, PgQuery__SelectStmt *s, const char *name, PgQuery__Node *val)
{
    PgQuery__Node **grown = mk_list(c, s->n_target_list + 1);
    PgQuery__Node *t = mk_res_target(c, name, val);
    if (!grown || !t)
        return false;
    memcpy(grown, s->target_list, s->n_target_list * sizeof *grown);
    grown[s->n_target_list++] = t;
    s->target_list = grown;
    return true;
}

static const char *const system_columns[] = {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"};

bool rewrite_system_column(const char *name)
{
    for (size_t i = 0; i < sizeof system_columns / sizeof *system_columns; i++)
        if (strcmp(name, system_columns[i]) == 0)
            return true;
    return false;
}

static bool names_cte(const PgQuery__WithClause *with, const PgQuery__RangeVar *rv)
{
    if (!with || (rv->schemaname && *rv->schemaname))
        return false;
    for (size_t i = 0; i < with->n_ctes; i++) {
        const PgQuery__Node *n = with->ctes[i];
        if (n->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR && n->common_table_expr->ctename &&
            strcmp(n->common_table_expr->ctename, rv->relname) == 0)
            return true;
    }
    return false;
}

static void free_from(struct rewrite_from *f)
{
    free(f->name);
    free(f->schema);
    free(f->relname);
    for (size_t k = 0; k < f->n_colnames; k++)
        free(f->colnames[k]);
    free(f->colnames);
}

static void add_from(ctx *c, const PgQuery__RangeVar *rv)
{
    rewrite_result *r = c->r;
    struct rewrite_from *grown = realloc(r->from, (r->n_from + 1) * sizeof *grown);
    if (!grown) {
        c->oom = true;
        return;
    }
    r->from = grown;
    struct rewrite_from *f = &grown[r->n_from];
    *f = (struct rewrite_from){0};
    f->name = dup_str(c, ref_name(rv));
    f->relname = dup_str(c, rv->relname);
    f->schema = rv->schemaname && *rv->schemaname ? dup_str(c, rv->schemaname) : NULL;
    r->n_from++;
    if (c->oom)
        return;
    const PgQuery__Alias *a = rv->alias;
    if (!a || a->n_colnames == 0)
        return;
    if (!(f->colnames = calloc(a->n_colnames, sizeof *f->colnames))) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i < a->n_colnames; i++) {
        const PgQuery__Node *n = a->colnames[i];
        if (n->node_case != PG_QUERY__NODE__NODE_STRING || !(f->colnames[i] = dup_str(c, n->string->sval)))
            return; /* colnames stays short: refused below as opaque */
        f->n_colnames++;
    }
}

/* Notes the FROM item's tables that RETURNING can read after the mirror (rewrite.h);
 * *opaque when part of it cannot be carried. */
static void scan_from(ctx *c, const PgQuery__Node *item, const PgQuery__WithClause *with, bool *opaque)
{
    if (item->node_case == PG_QUERY__NODE__NODE_RANGE_VAR && item->range_var->relname &&
        !names_cte(with, item->range_var)) {
        size_t before = c->r->n_from;
        add_from(c, item->range_var);
        if (!c->oom && c->r->n_from > before && item->range_var->alias &&
            c->r->from[before].n_colnames != item->range_var->alias->n_colnames)
            *opaque = true;
        return;
    }
    if (item->node_case == PG_QUERY__NODE__NODE_JOIN_EXPR) {
        const PgQuery__JoinExpr *j = item->join_expr;
        if (!j->alias && !j->is_natural && j->n_using_clause == 0 && j->larg && j->rarg) {
            scan_from(c, j->larg, with, opaque);
            scan_from(c, j->rarg, with, opaque);
            return;
        }
    }
    *opaque = true;
}

typedef struct returning_scan {
    const char *target;   /* the target's alias or name */
    bool reconstructed;   /* DELETE: the target is read from the plan's copy of its rows */
    bool opaque;          /* a FROM item is not carried */
    bool bare;            /* RETURNING has a bare name or *, which may read any FROM table */
    bool *read;           /* read[k]: RETURNING names from[k] */
    /* schema.table.column references to a table RETURNING reads from the plan's rows,
     * whose alias cannot carry a schema: lent as table.column while RETURNING deparses */
    PgQuery__ColumnRef **qualified;
    size_t n_qualified, cap_qualified;
} returning_scan;

static void note_qualified(ctx *c, returning_scan *w, const PgQuery__ColumnRef *cr)
{
    if (w->n_qualified == w->cap_qualified) {
        size_t cap = w->cap_qualified ? 2 * w->cap_qualified : 8;
        PgQuery__ColumnRef **grown = alloc(c, cap * sizeof *grown);
        if (!grown)
            return;
        if (w->n_qualified)
            memcpy(grown, w->qualified, w->n_qualified * sizeof *grown);
        w->qualified = grown;
        w->cap_qualified = cap;
    }
    w->qualified[w->n_qualified++] = (PgQuery__ColumnRef *)cr; /* changed only while lent */
}

/* Whether name is a carried FROM table (noted as read). */
static bool carried(const ctx *c, returning_scan *w, const char *name)
{
    for (size_t i = 0; i < c->r->n_from; i++)
        if (strcmp(c->r->from[i].name, name) == 0)
            return w->read[i] = true;
    return false;
}

/* Leaves in from[] the tables RETURNING may read: each FROM table costs the plan its rows. */
static void drop_unread(rewrite_result *r, const returning_scan *w)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->n_from; i++) {
        if (w->bare || w->read[i]) {
            r->from[kept++] = r->from[i];
            continue;
        }
        free_from(&r->from[i]);
    }
    r->n_from = kept;
}

static void add_bare(ctx *c, const char *name)
{
    rewrite_result *r = c->r;
    for (size_t i = 0; i < r->n_returning_bare; i++)
        if (strcmp(r->returning_bare[i], name) == 0)
            return;
    char **grown = realloc(r->returning_bare, (r->n_returning_bare + 1) * sizeof *grown);
    if (!grown) {
        c->oom = true;
        return;
    }
    r->returning_bare = grown;
    if ((grown[r->n_returning_bare] = dup_str(c, name)))
        r->n_returning_bare++;
}

static const char hint_returning[] =
    "Name the target's columns as alias.column in RETURNING, read other values with a "
    "table in FROM, or select them after the statement.";

/* What RETURNING reads that the caller could not give it after the mirror. */
static void check_column_ref(ctx *c, returning_scan *w, const PgQuery__ColumnRef *cr, const char *table)
{
    size_t n = cr->n_fields;
    if (n == 0)
        return;
    const PgQuery__Node *last = cr->fields[n - 1];
    bool star = last->node_case == PG_QUERY__NODE__NODE_A_STAR;
    const char *column = last->node_case == PG_QUERY__NODE__NODE_STRING ? last->string->sval : NULL;
    const char *rel = n >= 2 && cr->fields[n - 2]->node_case == PG_QUERY__NODE__NODE_STRING
                          ? cr->fields[n - 2]->string->sval : NULL;
    bool other = rel && strcmp(rel, w->target) != 0; /* qualified by another name */
    bool is_carried = other && carried(c, w, rel);
    w->bare = w->bare || n == 1;
    if (n == 1 && column && w->opaque)
        add_bare(c, column);
    if (n == 1 && star && w->opaque)
        refuse(c, "0A000", hint_returning,
               "RETURNING * of a write to synced table %s is supported only when FROM/USING "
               "names tables, not subqueries, functions, CTEs or JOINs with USING", table);
    else if (other && w->opaque && !is_carried)
        refuse(c, "0A000", hint_returning,
               "RETURNING of a write to synced table %s can read the target and the tables "
               "in FROM/USING, not \"%s\"", table, rel);
    else if (column && rewrite_system_column(column) && (w->reconstructed || other))
        refuse(c, "0A000", hint_returning,
               "RETURNING of a write to synced table %s cannot read system column \"%s\" of "
               "a row that is deleted or joined", table, column);
    else if (n >= 3 && ((w->reconstructed && !other) || is_carried))
        note_qualified(c, w, cr);
    /* anything else the plan's check answers as Postgres would */
}

/* Walks RETURNING's tree: its column references (also inside subqueries, whose own tables
 * make no exception: conservative), and its aggregate and window calls outside subqueries,
 * which Postgres refuses in RETURNING but would run in the caller's SELECT. */
static void scan_returning(ctx *c, returning_scan *w, const ProtobufCMessage *m, bool in_sublink,
                           const char *table)
{
    if (!m || c->oom || c->r->kind == REWRITE_REFUSED)
        return;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &pg_query__column_ref__descriptor) {
        check_column_ref(c, w, (const PgQuery__ColumnRef *)m, table);
        return;
    }
    if (d == &pg_query__func_call__descriptor && !in_sublink) {
        const PgQuery__FuncCall *f = (const PgQuery__FuncCall *)m;
        if (f->over) {
            refuse(c, "42P20", NULL, "window functions are not allowed in RETURNING");
            return;
        }
        if (f->agg_star || f->agg_distinct || f->n_agg_order > 0 || f->agg_filter || f->agg_within_group) {
            refuse(c, "42803", NULL, "aggregate functions are not allowed in RETURNING");
            return;
        }
    }
    if (d == &pg_query__sub_link__descriptor)
        in_sublink = true;
    const char *base = (const char *)m;
    unsigned first, end;
    tree_fields(m, &first, &end);
    for (unsigned i = first; i < end; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                scan_returning(c, w, items[j], in_sublink, table);
        } else {
            scan_returning(c, w, *(const ProtobufCMessage *const *)(base + f->offset), in_sublink, table);
        }
    }
}

/* The plan's RETURNING columns and the caller's RETURNING query (rewrite.h). s is the plan
 * (UPDATE and DELETE: it has the target and FROM in scope; INSERT: its own). */
static void plan_returning(ctx *c, PgQuery__SelectStmt *s, PgQuery__RangeVar *rel,
                           PgQuery__Node **from, size_t n_from, PgQuery__WithClause *with,
                           PgQuery__Node **list, size_t n, const char *table, int32_t version)
{
    rewrite_result *r = c->r;
    const char *ref = ref_name(rel);
    returning_scan w = {.target = ref, .reconstructed = r->kind == REWRITE_DELETE};
    for (size_t i = 0; i < n_from && !c->oom; i++)
        scan_from(c, from[i], with, &w.opaque);
    if (!c->oom && !(w.read = alloc(c, (r->n_from ? r->n_from : 1) * sizeof *w.read)))
        return;
    memset(w.read, 0, (r->n_from ? r->n_from : 1) * sizeof *w.read);
    for (size_t i = 0; i < n && !c->oom && r->kind != REWRITE_REFUSED; i++)
        scan_returning(c, &w, &list[i]->base, false, table);
    if (c->oom || r->kind == REWRITE_REFUSED)
        return;
    drop_unread(r, &w);
    if (!w.opaque) { /* every name is one the caller's query has: nothing to check there */
        for (size_t i = 0; i < r->n_returning_bare; i++)
            free(r->returning_bare[i]);
        free(r->returning_bare);
        r->returning_bare = NULL;
        r->n_returning_bare = 0;
    }

    /* the check, in the statement's own scope (nothing to check in a bare *) */
    PgQuery__Node *row = mk_returning_row(c, ref, list, n);
    if (!row)
        return;
    if (row->row_expr->n_args == 1)
        row = NULL;
    else if (r->kind == REWRITE_INSERT) {
        PgQuery__SelectStmt *sub = mk_select(c);
        if (!sub || !(sub->from_clause = mk_list(c, 1)) || !(sub->from_clause[0] = mk_range_var_node(c, rel)) ||
            !(sub->target_list = mk_list(c, 1)) || !(sub->target_list[0] = mk_res_target(c, NULL, row)))
            return;
        sub->n_from_clause = 1;
        sub->n_target_list = 1;
        row = mk_scalar_sublink(c, sub);
    }
    if (row && !add_target(c, s, "apigres returning", mk_never(c, row)))
        return;

    /* what the caller reads after the mirror */
    if (r->kind == REWRITE_DELETE && !add_target(c, s, "apigres target", mk_cast_text(c, mk_whole_row(c, ref))))
        return;
    for (size_t k = 0; k < r->n_from; k++) {
        char name[40];
        snprintf(name, sizeof name, "apigres from %zu", k + 1);
        if (!add_target(c, s, arena_str(c, name), mk_cast_text(c, mk_whole_row(c, r->from[k].name))))
            return;
    }
    PgQuery__SelectStmt *q = mk_select(c);
    if (!q)
        return;
    if (r->kind != REWRITE_DELETE) {
        if (!(q->from_clause = mk_list(c, 1)) || !(q->from_clause[0] = mk_range_var_node(c, rel)))
            return;
        q->n_from_clause = 1;
    }
    q->target_list = list;
    q->n_target_list = n;
    q->with_clause = with;
    size_t *n_fields = alloc(c, (w.n_qualified ? w.n_qualified : 1) * sizeof *n_fields);
    if (!n_fields)
        return;
    for (size_t i = 0; i < w.n_qualified; i++) { /* lent as table.column */
        PgQuery__ColumnRef *cr = w.qualified[i];
        n_fields[i] = cr->n_fields;
        cr->fields += cr->n_fields - 2;
        cr->n_fields = 2;
    }
    r->returning_sql = deparse(c, q, version);
    for (size_t i = 0; i < w.n_qualified; i++) { /* and given back */
        PgQuery__ColumnRef *cr = w.qualified[i];
        cr->fields -= n_fields[i] - 2;
        cr->n_fields = n_fields[i];
    }
    r->returning_ref = r->returning_sql ? strdup(ref) : NULL;
    if (r->returning_sql && !r->returning_ref)
        c->oom = true;
}

/* ---------------------------------------------------------------- parameters */

/* The lowest and highest $n below m (lo stays INT_MAX without one). The tree is no deeper
 * than the statement classify_sql accepted. */
static void param_range(const ProtobufCMessage *m, int *lo, int *hi)
{
    if (!m)
        return;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &pg_query__param_ref__descriptor) {
        int n = ((const PgQuery__ParamRef *)m)->number;
        *lo = n < *lo ? n : *lo;
        *hi = n > *hi ? n : *hi;
        return;
    }
    const char *base = (const char *)m;
    unsigned first, end;
    tree_fields(m, &first, &end);
    for (unsigned i = first; i < end; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                param_range(items[j], lo, hi);
        } else {
            param_range(*(const ProtobufCMessage *const *)(base + f->offset), lo, hi);
        }
    }
}

/* ---------------------------------------------------------------- entry points */

/* RETURNING's part of r (rewrite.h), emptied. */
static void free_returning(rewrite_result *r)
{
    free(r->returning_sql);
    free(r->returning_ref);
    r->returning_sql = r->returning_ref = NULL;
    for (size_t i = 0; i < r->n_from; i++)
        free_from(&r->from[i]);
    free(r->from);
    r->from = NULL;
    r->n_from = 0;
    for (size_t i = 0; i < r->n_returning_bare; i++)
        free(r->returning_bare[i]);
    free(r->returning_bare);
    r->returning_bare = NULL;
    r->n_returning_bare = 0;
}

void rewrite_result_free(rewrite_result *r)
{
    if (!r)
        return;
    free(r->plan_sql);
    free_returning(r);
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
static char *deparse(ctx *c, PgQuery__SelectStmt *s, int32_t version)
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
        refuse(c, "XX000", NULL, "apigres could not build the plan of this write: %s",
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
            refuse(c, "42601", NULL, "apigres cannot carry out this write: its rewritten form does not parse (%s)",
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
            refuse(&c, "XX000", NULL, "apigres could not parse this write again: %s",
                   parsed.error->message ? parsed.error->message : "syntax error");
            goto done;
        }
        PgQuery__ParseResult *tree = arena_unpack(&c.nodes, &parsed.parse_tree);
        if (!tree)
            goto fail;
        if (tree->n_stmts != 1 || !tree->stmts[0]->stmt) {
            refuse(&c, "XX000", NULL, "apigres expected one statement to plan, got %zu",
                   tree->n_stmts);
            goto done;
        }
        stmt = tree->stmts[0]->stmt;
        version = tree->version;
    }
    PgQuery__SelectStmt *s = mk_select(&c);
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
        refuse(&c, "XX000", NULL, "apigres expected INSERT, UPDATE or DELETE to plan");
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
        plan_returning(&c, s, rel, from, n_from, with, ret_list, c.r->n_returning, table, version);
    if (c.oom)
        goto fail;
    if (c.r->kind != REWRITE_REFUSED) {
        int lo = INT_MAX, hi = 0;
        param_range(&s->base, &lo, &hi);
        c.r->n_params = hi;
        if (lo < 1) /* as Postgres answers it (libpg_query would deparse it as "?") */
            refuse(&c, "42P02", NULL, "there is no parameter $%d", lo);
        else
            c.r->plan_sql = deparse(&c, s, version);
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
        free_returning(c.r);
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
