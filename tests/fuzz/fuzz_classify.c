/*
 * libFuzzer target for the statement classifier and the rewriter: every Query text a client sends that the
 * pre-check lets through reaches libpg_query and the tree walk. Besides "no crash, no
 * sanitizer report, no leak" it checks the contract a caller relies on: statements lie
 * inside the input, in order, and do not overlap; a refusal carries a SQLSTATE and a
 * message; a write names its table; the pre-check and the classifier agree that a text
 * the pre-check calls harmless holds no write (a WRITE or REFUSE there would mean the fast
 * path forwards what the write path must handle), and so do the name scan and the
 * classifier: a text that names no synced schema or table holds no write and no refusal
 * once its unqualified names are taken as the client's own (as the write path does). Each
 * WRITE then goes through rewrite_plan:
 * a plan is a SELECT that libpg_query parses again, a refusal carries a SQLSTATE and a
 * message, and a plan made from the classification's tree (keep_trees, every other pair of
 * input sizes) is the one made by parsing the statement again. classify_transaction sees
 * every input too.
 *
 *   make fuzz            (60 s per target; FUZZ_SECONDS=N to change)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "parser/classify.h"
#include "parser/rewrite.h"

static const char *const synced[] = {"stripe", "salesforce"};
/* the synced schemas and the one synced table an unqualified name resolves to below */
static const char *const synced_names[] = {"stripe", "salesforce", "customer"};

/* For a text classify_may_name calls harmless: classified again with every unqualified
 * name taken as the client's own, pass after pass as the write path does (a pass may find
 * names the one before it did not reach), nothing may be left for the write path but the
 * refusals of the text as a whole (54000/54001). */
static void check_unnamed(const char *sql, size_t size, const classify_options *o, classify_result *r)
{
    classify_resolved resolved[64];
    classify_result *passes[8] = {r};
    size_t n = 0, npasses = 1;
    for (size_t i = 0; i < o->n_resolved; i++)
        resolved[n++] = o->resolved[i];
    for (;;) {
        const classify_result *last = passes[npasses - 1];
        size_t known = n;
        for (size_t i = 0; i < last->n_stmts; i++)
            for (size_t u = 0; u < last->stmts[i].n_unresolved && n < sizeof resolved / sizeof *resolved; u++)
                resolved[n++] = (classify_resolved){last->stmts[i].unresolved[u], NULL};
        if (n == known || npasses == sizeof passes / sizeof *passes)
            break;
        classify_options again = *o;
        again.resolved = resolved;
        again.n_resolved = n;
        if (classify_sql(sql, size, &again, &passes[npasses]) != 0)
            break;
        npasses++;
    }
    const classify_result *last = passes[npasses - 1];
    bool settled = true;
    for (size_t i = 0; i < last->n_stmts; i++)
        settled = settled && last->stmts[i].n_unresolved == 0;
    for (size_t i = 0; i < last->n_stmts && settled; i++) {
        const classify_stmt *st = &last->stmts[i];
        if (st->verdict == CLASSIFY_WRITE || (st->verdict == CLASSIFY_REFUSE && strncmp(st->sqlstate, "54", 2) != 0))
            abort();
    }
    for (size_t i = 1; i < npasses; i++)
        classify_result_free(passes[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sql = (const char *)data;
    bool may = classify_may_write(sql, size);

    classify_resolved resolved[] = {{"customer", "stripe"}, {"mine", "public"}, {"gone", NULL}};
    classify_options o = {.schemas = synced, .n_schemas = 2, .max_len = 8192, .max_nesting = 0,
                          .resolved = resolved, .n_resolved = size % 2 ? 3 : 0, .keep_trees = size % 4 >= 2};
    classify_result *r = NULL;
    if (classify_sql(sql, size, &o, &r) != 0)
        return 0; /* out of memory */
    size_t end = 0;
    for (size_t i = 0; i < r->n_stmts; i++) {
        const classify_stmt *st = &r->stmts[i];
        if (st->offset < end || st->offset + st->len > size)
            abort(); /* statements out of order or outside the input */
        end = st->offset + st->len;
        if (st->verdict == CLASSIFY_REFUSE && (strlen(st->sqlstate) != 5 || !st->message))
            abort();
        if (st->verdict == CLASSIFY_WRITE && (!st->table || st->command < CLASSIFY_CMD_INSERT ||
                                              st->command > CLASSIFY_CMD_DELETE))
            abort();
        if (st->verdict == CLASSIFY_EXECUTE && !st->name)
            abort();
        rewrite_result *rw = NULL;
        if (st->verdict == CLASSIFY_WRITE && rewrite_plan(sql, size, st, &rw) == 0) {
            if (rw->kind == REWRITE_REFUSED && (strlen(rw->sqlstate) != 5 || !rw->message))
                abort();
            if (rw->kind != REWRITE_REFUSED) {
                if (!rw->plan_sql)
                    abort();
                PgQueryParseResult again = pg_query_parse(rw->plan_sql);
                bool bad = again.error != NULL;
                pg_query_free_parse_result(again);
                if (bad)
                    abort(); /* the plan must be valid SQL */
                if (rw->returning_sql) { /* and so must RETURNING's start */
                    again = pg_query_parse(rw->returning_sql);
                    bad = again.error != NULL || !rw->returning_ref;
                    pg_query_free_parse_result(again);
                    if (bad)
                        abort();
                }
                rewrite_result *copy = rewrite_result_copy(rw);
                if (copy && (copy->n_from != rw->n_from || copy->n_returning_bare != rw->n_returning_bare))
                    abort();
                rewrite_result_free(copy);
            }
            if (st->tree) { /* the classification's tree plans as parsing the text again does */
                classify_stmt reparsed = *st;
                reparsed.tree = NULL;
                rewrite_result *rw2 = NULL;
                if (rewrite_plan(sql, size, &reparsed, &rw2) == 0) {
                    if (rw2->kind != rw->kind || (rw->plan_sql == NULL) != (rw2->plan_sql == NULL) ||
                        (rw->plan_sql && strcmp(rw->plan_sql, rw2->plan_sql) != 0))
                        abort();
                    rewrite_result_free(rw2);
                }
            }
            rewrite_result_free(rw);
        }
        /* the fast path must never skip what the classifier would act on (54000/54001 are
         * refusals of the text as a whole, decided before parsing) */
        if (!may && !r->parse_error && (st->verdict == CLASSIFY_WRITE ||
                                        st->verdict == CLASSIFY_EXECUTE ||
                                        (st->verdict == CLASSIFY_REFUSE &&
                                         strncmp(st->sqlstate, "54", 2) != 0)))
            abort();
    }
    if (!r->parse_error && !classify_may_name(sql, size, synced_names, 3))
        check_unnamed(sql, size, &o, r);
    classify_result_free(r);
    (void)classify_transaction(sql, size);
    return 0;
}
