/*
 * rewrite_returning: what a write's RETURNING needs from its plan (see rewrite.h, "RETURNING").
 *
 * The plan gets a column that has Postgres check the list in the statement's own scope
 * without evaluating it, and the rows RETURNING will read that the mirror does not hold (a
 * DELETE's target rows, the FROM/USING tables it names) as text; what could not be carried
 * is refused up front. Nodes are the plan's (rewrite_internal.h): from the arena, or
 * borrowed from the client's tree, which is only lent (schema.table.column references, as
 * table.column, while RETURNING's query deparses) and given back as it was.
 */
#include "parser/rewrite.h"
#include "parser/rewrite_internal.h"
#include "parser/tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

/* Builders of the nodes the plan's RETURNING columns need (see rewrite.h). */

static PgQuery__Node **mk_names(ctx *c, const char *schema, const char *name, size_t *n)
{
    PgQuery__Node **names = rw_list(c, 2);
    *n = 0;
    if (!names || !(names[(*n)++] = rw_string(c, schema)) || !(names[(*n)++] = rw_string(c, name)))
        return NULL;
    return names;
}

/* name.* (a whole row, where it is an argument) */
static PgQuery__Node *mk_whole_row(ctx *c, const char *name)
{
    PgQuery__Node *n = rw_star(c);
    PgQuery__Node **fields = rw_list(c, 2);
    if (!n || !fields || !(fields[0] = rw_string(c, name)))
        return NULL;
    fields[1] = n->column_ref->fields[0];
    n->column_ref->fields = fields;
    n->column_ref->n_fields = 2;
    return n;
}

/* CAST(arg AS pg_catalog.text) */
static PgQuery__Node *mk_cast_text(ctx *c, PgQuery__Node *arg)
{
    PgQuery__Node *n = rw_node(c);
    PgQuery__TypeCast *tc = rw_alloc(c, sizeof *tc);
    PgQuery__TypeName *tn = rw_alloc(c, sizeof *tn);
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
    PgQuery__Node *node = rw_node(c);
    PgQuery__RowExpr *row = rw_alloc(c, sizeof *row);
    PgQuery__Node **args = rw_list(c, 1 + n);
    if (!node || !row || !args || !(args[0] = rw_column_ref(c, ref, "id")))
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
    PgQuery__Node *n = rw_node(c), *when = rw_node(c), *no = rw_const(c);
    PgQuery__CaseExpr *ce = rw_alloc(c, sizeof *ce);
    PgQuery__CaseWhen *cw = rw_alloc(c, sizeof *cw);
    PgQuery__Boolean *b = rw_alloc(c, sizeof *b);
    PgQuery__Node **args = rw_list(c, 1);
    if (!n || !when || !no || !ce || !cw || !b || !args || !result)
        return NULL;
    *b = (PgQuery__Boolean)PG_QUERY__BOOLEAN__INIT; /* false */
    no->a_const->val_case = PG_QUERY__A__CONST__VAL_BOOLVAL;
    no->a_const->boolval = b;
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
    PgQuery__Node *n = rw_node(c), *sub = rw_node(c);
    PgQuery__SubLink *sl = rw_alloc(c, sizeof *sl);
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
    char *d = rw_alloc(c, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool add_target(ctx *c, PgQuery__SelectStmt *s, const char *name, PgQuery__Node *val)
{
    PgQuery__Node **grown = rw_list(c, s->n_target_list + 1);
    PgQuery__Node *t = rw_res_target(c, name, val);
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
    f->name = rw_dup_str(c, rw_ref_name(rv));
    f->relname = rw_dup_str(c, rv->relname);
    f->schema = rv->schemaname && *rv->schemaname ? rw_dup_str(c, rv->schemaname) : NULL;
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
        if (n->node_case != PG_QUERY__NODE__NODE_STRING || !(f->colnames[i] = rw_dup_str(c, n->string->sval)))
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
        PgQuery__ColumnRef **grown = rw_alloc(c, cap * sizeof *grown);
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
    if ((grown[r->n_returning_bare] = rw_dup_str(c, name)))
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
        rw_refuse(c, "0A000", hint_returning,
               "RETURNING * of a write to synced table %s is supported only when FROM/USING "
               "names tables, not subqueries, functions, CTEs or JOINs with USING", table);
    else if (other && w->opaque && !is_carried)
        rw_refuse(c, "0A000", hint_returning,
               "RETURNING of a write to synced table %s can read the target and the tables "
               "in FROM/USING, not \"%s\"", table, rel);
    else if (column && rewrite_system_column(column) && (w->reconstructed || other))
        rw_refuse(c, "0A000", hint_returning,
               "RETURNING of a write to synced table %s cannot read system column \"%s\" of "
               "a row that is deleted or joined", table, column);
    else if (n >= 3 && ((w->reconstructed && !other) || is_carried))
        note_qualified(c, w, cr);
    /* anything else the plan's check answers as Postgres would */
}

/* Walks RETURNING's tree: its column references (also inside subqueries, whose own tables
 * make no exception: conservative), and its aggregate and window calls outside subqueries,
 * which Postgres refuses in RETURNING but would run in the caller's SELECT. */
typedef struct returning_walk {
    ctx *c;
    returning_scan *w;
    const char *table;
    bool in_sublink;
} returning_walk;

static void scan_returning(const ProtobufCMessage *m, void *data)
{
    returning_walk *rw = data;
    ctx *c = rw->c;
    if (c->oom || c->r->kind == REWRITE_REFUSED)
        return;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &pg_query__column_ref__descriptor) {
        check_column_ref(c, rw->w, (const PgQuery__ColumnRef *)m, rw->table);
        return;
    }
    if (d == &pg_query__func_call__descriptor && !rw->in_sublink) {
        const PgQuery__FuncCall *f = (const PgQuery__FuncCall *)m;
        if (f->over) {
            rw_refuse(c, "42P20", NULL, "window functions are not allowed in RETURNING");
            return;
        }
        if (f->agg_star || f->agg_distinct || f->n_agg_order > 0 || f->agg_filter || f->agg_within_group) {
            rw_refuse(c, "42803", NULL, "aggregate functions are not allowed in RETURNING");
            return;
        }
    }
    if (d == &pg_query__sub_link__descriptor && !rw->in_sublink) {
        rw->in_sublink = true;
        tree_children(m, scan_returning, rw);
        rw->in_sublink = false;
        return;
    }
    tree_children(m, scan_returning, rw);
}

/* The plan's RETURNING columns and the caller's RETURNING query (rewrite.h). s is the plan
 * (UPDATE and DELETE: it has the target and FROM in scope; INSERT: its own). */
void rw_plan_returning(ctx *c, PgQuery__SelectStmt *s, PgQuery__RangeVar *rel,
                           PgQuery__Node **from, size_t n_from, PgQuery__WithClause *with,
                           PgQuery__Node **list, size_t n, const char *table, int32_t version)
{
    rewrite_result *r = c->r;
    const char *ref = rw_ref_name(rel);
    returning_scan w = {.target = ref, .reconstructed = r->kind == REWRITE_DELETE};
    for (size_t i = 0; i < n_from && !c->oom; i++)
        scan_from(c, from[i], with, &w.opaque);
    if (!c->oom && !(w.read = rw_alloc(c, (r->n_from ? r->n_from : 1) * sizeof *w.read)))
        return;
    memset(w.read, 0, (r->n_from ? r->n_from : 1) * sizeof *w.read);
    returning_walk walk = {c, &w, table, false};
    for (size_t i = 0; i < n && !c->oom && r->kind != REWRITE_REFUSED; i++)
        scan_returning(&list[i]->base, &walk);
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
        PgQuery__SelectStmt *sub = rw_select(c);
        if (!sub || !(sub->from_clause = rw_list(c, 1)) || !(sub->from_clause[0] = rw_range_var_node(c, rel)) ||
            !(sub->target_list = rw_list(c, 1)) || !(sub->target_list[0] = rw_res_target(c, NULL, row)))
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
    PgQuery__SelectStmt *q = rw_select(c);
    if (!q)
        return;
    if (r->kind != REWRITE_DELETE) {
        if (!(q->from_clause = rw_list(c, 1)) || !(q->from_clause[0] = rw_range_var_node(c, rel)))
            return;
        q->n_from_clause = 1;
    }
    q->target_list = list;
    q->n_target_list = n;
    q->with_clause = with;
    size_t *n_fields = rw_alloc(c, (w.n_qualified ? w.n_qualified : 1) * sizeof *n_fields);
    if (!n_fields)
        return;
    for (size_t i = 0; i < w.n_qualified; i++) { /* lent as table.column */
        PgQuery__ColumnRef *cr = w.qualified[i];
        n_fields[i] = cr->n_fields;
        cr->fields += cr->n_fields - 2;
        cr->n_fields = 2;
    }
    r->returning_sql = rw_deparse(c, q, version);
    for (size_t i = 0; i < w.n_qualified; i++) { /* and given back */
        PgQuery__ColumnRef *cr = w.qualified[i];
        cr->fields -= n_fields[i] - 2;
        cr->n_fields = n_fields[i];
    }
    r->returning_ref = r->returning_sql ? strdup(ref) : NULL;
    if (r->returning_sql && !r->returning_ref)
        c->oom = true;
}

/* RETURNING's part of r (rewrite.h), emptied. */
void rw_free_returning(rewrite_result *r)
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
