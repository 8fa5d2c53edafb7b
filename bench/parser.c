/*
 * Parser benchmark: what the write path's parsing costs per statement, against the floor of
 * any design built on libpg_query's protobuf tree, one bare pg_query_parse_protobuf of the
 * same text, measured in the same run.
 *
 *   make bench-parser        (BENCH_ROUNDS [21], BENCH_ITERATIONS [1000])
 *
 * For each statement it prints the median CPU time (CLOCK_PROCESS_CPUTIME_ID, so another
 * process on the machine does not count) over the rounds of the following, and the median
 * of each round's ratio to the same round's bare parse (the kinds take turns within a round,
 * so a slow phase of a shared machine weighs on all of them alike):
 *   parse     pg_query_parse_protobuf and its free: the baseline
 *   classify  classify_sql as the relay's check runs it (no tree kept)
 *   write     classify_sql with keep_trees, then rewrite_plan from that tree: what a
 *             simple-protocol write to a synced table costs before its plan is sent
 *   reparse   the same, with rewrite_plan parsing the statement again (the extended
 *             protocol's first Execute of a statement)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pg_query.h>

#include "parser/classify.h"
#include "parser/rewrite.h"

static const char *const synced[] = {"stripe", "salesforce"};

static const struct {
    const char *name;
    const char *sql;
} statements[] = {
    {"update, literals", "UPDATE stripe.customer SET name = 'bench ' || 1234 WHERE id = (SELECT id FROM "
                         "public.bench_ids WHERE n = 1234)"},
    {"update, params", "UPDATE stripe.customer SET email = $1, name = $2 WHERE id = $3"},
    {"insert, 3 rows", "INSERT INTO stripe.customer (email, name) VALUES ('a@b.co', 'Ann'), ('c@d.co', 'Cy'), "
                       "('e@f.co', 'Eve') RETURNING id"},
    {"delete using", "DELETE FROM salesforce.contact c USING public.leavers l WHERE c.email = l.email AND "
                     "l.left_on < now() - interval '30 days'"},
};

enum { PARSE, CLASSIFY, WRITE, REPARSE, NKINDS };
static const char *const kind_names[NKINDS] = {"parse", "classify", "write", "reparse"};

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One run of kind over sql; 0, or -1 when something failed (the bench then stops). */
static int run_once(int kind, const char *sql)
{
    size_t len = strlen(sql);
    if (kind == PARSE) {
        PgQueryProtobufParseResult p = pg_query_parse_protobuf(sql);
        int rc = p.error ? -1 : 0;
        pg_query_free_protobuf_parse_result(p);
        return rc;
    }
    classify_options o = {.schemas = synced, .n_schemas = 2, .keep_trees = kind == WRITE};
    classify_result *cr = NULL;
    if (classify_sql(sql, len, &o, &cr) != 0)
        return -1;
    int rc = cr->n_stmts == 1 && cr->stmts[0].verdict == CLASSIFY_WRITE ? 0 : -1;
    if (rc == 0 && kind != CLASSIFY) {
        classify_stmt st = cr->stmts[0];
        if (kind == REPARSE)
            st.tree = NULL;
        rewrite_result *rw = NULL;
        if (rewrite_plan(sql, len, &st, &rw) != 0 || rw->kind == REWRITE_REFUSED)
            rc = -1;
        rewrite_result_free(rw);
    }
    classify_result_free(cr);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : dflt;
}

int main(void)
{
    int rounds = env_int("BENCH_ROUNDS", 21), iterations = env_int("BENCH_ITERATIONS", 1000);
    double *times = calloc((size_t)rounds * NKINDS, sizeof *times), *col = calloc((size_t)rounds, sizeof *col);
    if (!times || !col)
        return 1;
    printf("parser: CPU us per statement, medians over %d rounds of %d (the kinds interleaved in each "
           "round);\nratios: the median of each round's ratio to that round's bare parse\n",
           rounds, iterations);
    printf("%-18s %9s %9s %9s %9s %9s %9s %9s\n", "statement", "parse", "classify", "write", "reparse", "classify",
           "write", "reparse");
    for (size_t s = 0; s < sizeof statements / sizeof *statements; s++) {
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < NKINDS; k++) {
                double t0 = cpu_now();
                for (int i = 0; i < iterations; i++)
                    if (run_once(k, statements[s].sql) < 0) {
                        fprintf(stderr, "bench/parser: %s of \"%s\" failed\n", kind_names[k], statements[s].name);
                        return 1;
                    }
                times[r * NKINDS + k] = (cpu_now() - t0) / iterations * 1e6;
            }
        double median[NKINDS], ratio[NKINDS];
        for (int k = 0; k < NKINDS; k++) {
            for (int r = 0; r < rounds; r++)
                col[r] = times[r * NKINDS + k];
            qsort(col, (size_t)rounds, sizeof *col, cmp_double);
            median[k] = col[rounds / 2];
            for (int r = 0; r < rounds; r++)
                col[r] = times[r * NKINDS + k] / times[r * NKINDS + PARSE];
            qsort(col, (size_t)rounds, sizeof *col, cmp_double);
            ratio[k] = col[rounds / 2];
        }
        printf("%-18s %9.1f %9.1f %9.1f %9.1f %9.2f %9.2f %9.2f\n", statements[s].name, median[PARSE],
               median[CLASSIFY], median[WRITE], median[REPARSE], ratio[CLASSIFY], ratio[WRITE], ratio[REPARSE]);
    }
    free(times);
    free(col);
    pg_query_exit();
    return 0;
}
