/* Unit tests for proxy/plan_cache: copies out, keys by exact text (and statement offset),
 * a bound on entries and text size, least recently used out first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/classify.h"
#include "parser/rewrite.h"
#include "proxy/plan_cache.h"
#include "tests/unit/unit.h"

static const char *const SCHEMAS[] = {"stripe"};

static classify_result *classify(const char *sql)
{
    classify_options opt = {.schemas = SCHEMAS, .n_schemas = 1};
    classify_result *cr = NULL;
    return classify_sql(sql, strlen(sql), &opt, &cr) == 0 ? cr : NULL;
}

int main(void)
{
    plan_cache *c = plan_cache_new();
    const char *sql = "SELECT 1; UPDATE stripe.customer SET email = lower($1), name = 'x' WHERE id = $2 RETURNING id";
    size_t len = strlen(sql);
    CHECK(plan_cache_classify(c, sql, len) == NULL, "an empty cache answers nothing");

    classify_result *cr = classify(sql);
    CHECK(cr && cr->n_stmts == 2 && cr->stmts[1].verdict == CLASSIFY_WRITE, "the statement to keep is a write");
    plan_cache_keep_classify(c, sql, len, cr);
    classify_result *hit = plan_cache_classify(c, sql, len);
    CHECK(hit && hit != cr && hit->n_stmts == 2 && hit->stmts[1].verdict == CLASSIFY_WRITE &&
              strcmp(hit->stmts[1].schema, "stripe") == 0 && strcmp(hit->stmts[1].table, "customer") == 0 &&
              hit->stmts[1].n_columns == 2 && strcmp(hit->stmts[1].columns[1], "name") == 0 &&
              hit->stmts[1].columns[1] != cr->stmts[1].columns[1] && hit->stmts[1].n_params == 2 &&
              hit->stmts[1].offset == cr->stmts[1].offset && hit->stmts[1].returning,
          "a hit is a deep copy of what was kept");
    classify_result_free(hit);
    hit = plan_cache_classify(c, sql, len);
    CHECK(hit && strcmp(hit->stmts[1].columns[0], "email") == 0, "freeing a copy leaves the entry whole");
    classify_result_free(hit);
    CHECK(plan_cache_classify(c, sql, len - 1) == NULL, "a text that differs by a byte is another key");

    rewrite_result *rw = NULL;
    CHECK(rewrite_plan(sql, len, &cr->stmts[1], &rw) == 0 && rw && rw->kind == REWRITE_UPDATE, "the plan to keep");
    CHECK(plan_cache_rewrite(c, sql, len, cr->stmts[1].offset) == NULL, "a classification is no plan");
    plan_cache_keep_rewrite(c, sql, len, cr->stmts[1].offset, rw);
    rewrite_result *plan = plan_cache_rewrite(c, sql, len, cr->stmts[1].offset);
    CHECK(plan && plan != rw && plan->plan_sql != rw->plan_sql && strcmp(plan->plan_sql, rw->plan_sql) == 0 &&
              plan->n_columns == 2 && strcmp(plan->columns[0], "email") == 0 && plan->has_returning &&
              strcmp(plan->returning_sql, rw->returning_sql) == 0 && plan->n_params == rw->n_params,
          "a plan comes back as a deep copy: %s", plan ? plan->plan_sql : "(none)");
    rewrite_result_free(plan);
    CHECK(plan_cache_rewrite(c, sql, len, 0) == NULL, "another statement's offset is another key");
    rewrite_result_free(rw);

    const char *ins = "INSERT INTO stripe.customer (email, name) VALUES ('a@b.co', DEFAULT), (DEFAULT, 'n')";
    classify_result *icr = classify(ins);
    rewrite_result *irw = NULL;
    CHECK(icr && rewrite_plan(ins, strlen(ins), &icr->stmts[0], &irw) == 0 && irw->defaults, "an INSERT with DEFAULTs");
    plan_cache_keep_rewrite(c, ins, strlen(ins), 0, irw);
    plan = plan_cache_rewrite(c, ins, strlen(ins), 0);
    CHECK(plan && plan->defaults != irw->defaults && plan->n_default_rows == 2 &&
              memcmp(plan->defaults, irw->defaults, 4) == 0,
          "its DEFAULTs are copied with it");
    rewrite_result_free(plan);
    rewrite_result_free(irw);
    classify_result_free(icr);
    classify_result_free(cr);

    /* a text longer than the bound is not kept */
    char *big = malloc(PLAN_CACHE_MAX_TEXT + 64);
    memset(big, ' ', PLAN_CACHE_MAX_TEXT + 63);
    memcpy(big, "DELETE FROM stripe.customer WHERE id = 'a'", 42);
    big[PLAN_CACHE_MAX_TEXT + 63] = '\0';
    classify_result *bcr = classify(big);
    plan_cache_keep_classify(c, big, strlen(big), bcr);
    CHECK(bcr && plan_cache_classify(c, big, strlen(big)) == NULL, "a text over %d bytes is not kept",
          PLAN_CACHE_MAX_TEXT);
    classify_result_free(bcr);
    free(big);

    /* the bound: the least recently used goes first */
    char text[64];
    classify_result *one = classify("DELETE FROM stripe.customer WHERE id = '0'");
    for (int i = 0; i < PLAN_CACHE_ENTRIES + 10; i++) {
        snprintf(text, sizeof text, "DELETE FROM stripe.customer WHERE id = '%d'", i);
        plan_cache_keep_classify(c, text, strlen(text), one);
        if (i == PLAN_CACHE_ENTRIES / 2) { /* the first text is used again: it stays */
            classify_result_free(hit = plan_cache_classify(c, sql, len));
            CHECK(hit != NULL, "the first text, used again halfway");
        }
    }
    classify_result_free(one);
    hit = plan_cache_classify(c, sql, len);
    CHECK(hit != NULL, "a recently used entry stays when the cache is full");
    classify_result_free(hit);
    snprintf(text, sizeof text, "DELETE FROM stripe.customer WHERE id = '%d'", 0);
    CHECK(plan_cache_classify(c, text, strlen(text)) == NULL, "the least recently used went");
    snprintf(text, sizeof text, "DELETE FROM stripe.customer WHERE id = '%d'", PLAN_CACHE_ENTRIES + 9);
    classify_result_free(hit = plan_cache_classify(c, text, strlen(text)));
    CHECK(hit != NULL, "the newest is there");
    unsigned long long hits, lookups;
    plan_cache_stats(c, &hits, &lookups);
    CHECK(hits == 7 && lookups == 12, "hits and lookups are counted (a text over the bound is not looked up): %llu of %llu",
          hits, lookups);
    plan_cache_free(c);

    CHECK(plan_cache_classify(NULL, sql, len) == NULL, "no cache: nothing kept, nothing found");
    plan_cache_keep_classify(NULL, sql, len, NULL);
    return unit_done();
}
