/* Unit tests for parser/rewrite: the plan SELECT of a write to a synced table. Every plan
 * is pinned as libpg_query's deparser writes it and parsed again to prove it is SQL. */
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "parser/rewrite.h"
#include "tests/unit/unit.h"

static const char *const synced[] = {"stripe", "salesforce"};

/* Classifies sql and plans its statement number idx (NULL when it is not a WRITE or
 * rewrite_plan fails); with keep_trees from the classification's tree, else by parsing the
 * statement again. */
static rewrite_result *plan_from(const char *sql, size_t idx, bool keep_trees)
{
    classify_options o = {.schemas = synced, .n_schemas = 2, .keep_trees = keep_trees};
    classify_result *cr = NULL;
    rewrite_result *r = NULL;
    if (classify_sql(sql, strlen(sql), &o, &cr) != 0)
        return NULL;
    if (idx < cr->n_stmts && cr->stmts[idx].verdict == CLASSIFY_WRITE) {
        CHECK((cr->stmts[idx].tree != NULL) == keep_trees, "a tree kept exactly with keep_trees: %.80s", sql);
        if (rewrite_plan(sql, strlen(sql), &cr->stmts[idx], &r) != 0)
            r = NULL;
    }
    classify_result_free(cr);
    return r;
}

static bool same_text(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

/* plan_from both ways: the classification's tree must give what parsing again gives. */
static rewrite_result *plan_at(const char *sql, size_t idx)
{
    rewrite_result *r = plan_from(sql, idx, false), *t = plan_from(sql, idx, true);
    bool same = (!r && !t) || (r && t && r->kind == t->kind && same_text(r->plan_sql, t->plan_sql) &&
                               same_text(r->returning_sql, t->returning_sql) && r->n_columns == t->n_columns &&
                               r->n_params == t->n_params && same_text(r->message, t->message));
    for (size_t i = 0; same && r && i < r->n_columns; i++)
        same = strcmp(r->columns[i], t->columns[i]) == 0;
    CHECK(same, "planned from the classification's tree as from the text: %.80s", sql);
    rewrite_result_free(t);
    return r;
}

static bool parses(const char *sql)
{
    PgQueryParseResult p = pg_query_parse(sql);
    bool ok = p.error == NULL;
    pg_query_free_parse_result(p);
    return ok;
}

/* "a,b" from the result's columns. */
static const char *joined(const rewrite_result *r)
{
    static char buf[512];
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_columns; i++) {
        if (i)
            strncat(buf, ",", sizeof buf - strlen(buf) - 1);
        strncat(buf, r->columns[i], sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

/* Asserts the plan of sql's statement idx, its columns and that it parses; returns the
 * result for further checks (caller frees) or NULL. */
static rewrite_result *expect_plan_at(const char *sql, size_t idx, rewrite_kind kind,
                                      const char *plan, const char *columns)
{
    rewrite_result *r = plan_at(sql, idx);
    bool planned = r && r->kind == kind && r->plan_sql;
    CHECK(planned, "planned: %s", sql);
    if (!planned) {
        if (r)
            printf("# kind %d, %s %s\n", r->kind, r->sqlstate, r->message ? r->message : "");
        rewrite_result_free(r);
        return NULL;
    }
    CHECK(strcmp(r->plan_sql, plan) == 0, "plan of: %s", sql);
    if (strcmp(r->plan_sql, plan) != 0)
        printf("# got:  %s\n# want: %s\n", r->plan_sql, plan);
    CHECK(strcmp(joined(r), columns) == 0, "columns [%s] of: %s", columns, sql);
    CHECK(parses(r->plan_sql), "plan parses: %s", r->plan_sql);
    return r;
}

static rewrite_result *expect_plan(const char *sql, rewrite_kind kind, const char *plan,
                                   const char *columns)
{
    return expect_plan_at(sql, 0, kind, plan, columns);
}

static void expect_refusal(const char *sql, const char *sqlstate, const char *needle)
{
    rewrite_result *r = plan_at(sql, 0);
    CHECK(r && r->kind == REWRITE_REFUSED && !r->plan_sql && strcmp(r->sqlstate, sqlstate) == 0 &&
              r->n_columns == 0 && r->message && strstr(r->message, needle),
          "refused %s (%s): %s", sqlstate, needle, sql);
    if (r && r->message)
        printf("# %s %s%s%s\n", r->sqlstate, r->message, r->hint ? " / hint: " : "",
               r->hint ? r->hint : "");
    rewrite_result_free(r);
}

static void test_update(void)
{
    rewrite_result *r;
    r = expect_plan("UPDATE stripe.customer SET name = 'x'", REWRITE_UPDATE,
                    "SELECT customer.id, 'x' AS name FROM stripe.customer FOR UPDATE OF customer",
                    "name");
    CHECK(r && !r->has_returning && r->n_params == 0, "UPDATE simple: no RETURNING, no params");
    rewrite_result_free(r);

    r = expect_plan("UPDATE stripe.customer AS c SET name = 'x', email = 'y' WHERE c.id = 'cus_1'",
                    REWRITE_UPDATE,
                    "SELECT c.id, 'x' AS name, 'y' AS email FROM stripe.customer c "
                    "WHERE c.id = 'cus_1' FOR UPDATE OF c",
                    "name,email");
    rewrite_result_free(r);

    r = expect_plan("UPDATE stripe.customer c SET email = u.email FROM public.users u "
                    "JOIN public.orgs o ON o.id = u.org WHERE u.customer_id = c.id",
                    REWRITE_UPDATE,
                    "SELECT c.id, u.email AS email FROM stripe.customer c, public.users u "
                    "JOIN public.orgs o ON o.id = u.org WHERE u.customer_id = c.id "
                    "FOR UPDATE OF c",
                    "email");
    rewrite_result_free(r);

    r = expect_plan("UPDATE stripe.customer SET name = $1, email = lower($2) WHERE id = $3 "
                    "RETURNING *",
                    REWRITE_UPDATE,
                    "SELECT customer.id, $1 AS name, lower($2) AS email FROM stripe.customer "
                    "WHERE id = $3 FOR UPDATE OF customer",
                    "name,email");
    CHECK(r && r->has_returning && r->n_returning == 1 && r->n_params == 3,
          "UPDATE with params: RETURNING reported, 3 params kept");
    rewrite_result_free(r);

    r = expect_plan("UPDATE ONLY stripe.customer SET balance = balance + 1, "
                    "description = now()::text, "
                    "name = (SELECT max(x) FROM t WHERE t.k = customer.k) "
                    "WHERE id IN (SELECT id FROM t2 WHERE k = $1)",
                    REWRITE_UPDATE,
                    "SELECT customer.id, balance + 1 AS balance, now()::text AS description, "
                    "(SELECT max(x) FROM t WHERE t.k = customer.k) AS name "
                    "FROM ONLY stripe.customer WHERE id IN (SELECT id FROM t2 WHERE k = $1) "
                    "FOR UPDATE OF customer",
                    "balance,description,name");
    rewrite_result_free(r);

    r = expect_plan("WITH ids AS (SELECT id FROM local.t WHERE k = $2) "
                    "UPDATE stripe.customer c SET name = $1 WHERE c.id IN (SELECT id FROM ids) "
                    "RETURNING c.id, c.name",
                    REWRITE_UPDATE,
                    "WITH ids AS (SELECT id FROM local.t WHERE k = $2) SELECT c.id, $1 AS name, "
                    "CASE WHEN false THEN ROW(c.id, c.id, c.name) END AS \"apigres returning\" "
                    "FROM stripe.customer c WHERE c.id IN (SELECT id FROM ids) FOR UPDATE OF c",
                    "name");
    CHECK(r && r->n_returning == 2 && r->n_params == 2, "UPDATE with WITH: 2 RETURNING entries");
    rewrite_result_free(r);

    r = expect_plan("UPDATE stripe.customer SET (name, email) = ($1, lower($2))", REWRITE_UPDATE,
                    "SELECT customer.id, $1 AS name, lower($2) AS email FROM stripe.customer "
                    "FOR UPDATE OF customer",
                    "name,email");
    rewrite_result_free(r);

    r = expect_plan("UPDATE stripe.customer c SET (name, email) = ROW(1, $1) WHERE c.id = $2",
                    REWRITE_UPDATE,
                    "SELECT c.id, 1 AS name, $1 AS email FROM stripe.customer c WHERE c.id = $2 "
                    "FOR UPDATE OF c",
                    "name,email");
    rewrite_result_free(r);

    r = expect_plan("UPDATE stripe.customer SET metadata = '{\"a\": 1}'::jsonb, "
                    "name = CASE WHEN name IS NULL THEN 'n' ELSE name END",
                    REWRITE_UPDATE,
                    "SELECT customer.id, '{\"a\": 1}'::jsonb AS metadata, "
                    "CASE WHEN name IS NULL THEN 'n' ELSE name END AS name "
                    "FROM stripe.customer FOR UPDATE OF customer",
                    "metadata,name");
    rewrite_result_free(r);

    /* unqualified: classify treats it as synced until resolved; the plan keeps the name */
    r = expect_plan("update customer set name = 'x' where id = $1", REWRITE_UPDATE,
                    "SELECT customer.id, 'x' AS name FROM customer WHERE id = $1 "
                    "FOR UPDATE OF customer",
                    "name");
    rewrite_result_free(r);

    /* quoted names survive the deparse */
    r = expect_plan("UPDATE stripe.\"Customer\" AS \"C\" SET \"Name\" = 'x'", REWRITE_UPDATE,
                    "SELECT \"C\".id, 'x' AS \"Name\" FROM stripe.\"Customer\" \"C\" "
                    "FOR UPDATE OF \"C\"",
                    "Name");
    rewrite_result_free(r);
}

/* A target the session placed (classify_resolved) is named by its schema in the plan and
 * in RETURNING, whether planned from the kept tree (lent, and given back as it was) or
 * from the text. */
static void test_resolved_target(void)
{
    static const char sql[] = "UPDATE customer SET name = 'x' WHERE id = $1 RETURNING email";
    classify_resolved res[] = {{"customer", "stripe"}};
    for (int keep = 0; keep < 2; keep++) {
        classify_options o = {.schemas = synced, .n_schemas = 2, .keep_trees = keep, .resolved = res,
                              .n_resolved = 1};
        classify_result *cr = NULL;
        rewrite_result *r = NULL;
        CHECK(classify_sql(sql, strlen(sql), &o, &cr) == 0 && cr->stmts[0].verdict == CLASSIFY_WRITE &&
                  cr->stmts[0].unqualified && strcmp(cr->stmts[0].schema, "stripe") == 0,
              "classified as a write of stripe.customer (keep_trees %d)", keep);
        CHECK(rewrite_plan(sql, strlen(sql), &cr->stmts[0], &r) == 0 && r->plan_sql &&
                  strcmp(r->plan_sql, "SELECT customer.id, 'x' AS name, CASE WHEN false THEN "
                                      "ROW(customer.id, email) END AS \"apigres returning\" FROM "
                                      "stripe.customer WHERE id = $1 FOR UPDATE OF customer") == 0,
              "the plan names the schema the session gave (keep_trees %d): %s", keep, r ? r->plan_sql : "");
        CHECK(r && r->returning_sql && strstr(r->returning_sql, "FROM stripe.customer"),
              "so does RETURNING (keep_trees %d): %s", keep, r && r->returning_sql ? r->returning_sql : "");
        /* planned again as if unresolved: the tree (or text) still names no schema */
        rewrite_result_free(r);
        r = NULL;
        char *schema = cr->stmts[0].schema;
        cr->stmts[0].schema = NULL;
        CHECK(rewrite_plan(sql, strlen(sql), &cr->stmts[0], &r) == 0 && r->plan_sql &&
                  strstr(r->plan_sql, "FROM customer WHERE"),
              "the client's tree is given back as it was (keep_trees %d): %s", keep, r ? r->plan_sql : "");
        cr->stmts[0].schema = schema;
        rewrite_result_free(r);
        classify_result_free(cr);
    }
}

static void test_delete(void)
{
    rewrite_result *r;
    r = expect_plan("DELETE FROM stripe.customer", REWRITE_DELETE,
                    "SELECT customer.id FROM stripe.customer FOR UPDATE OF customer", "");
    CHECK(r && r->n_columns == 0 && !r->columns, "DELETE has no columns");
    rewrite_result_free(r);

    r = expect_plan("DELETE FROM stripe.customer c USING local.gone g, local.more m "
                    "WHERE c.id = g.id AND g.k = m.k",
                    REWRITE_DELETE,
                    "SELECT c.id FROM stripe.customer c, local.gone g, local.more m "
                    "WHERE c.id = g.id AND g.k = m.k FOR UPDATE OF c",
                    "");
    rewrite_result_free(r);

    r = expect_plan("DELETE FROM stripe.customer WHERE id = $1 OR email = $2 RETURNING id",
                    REWRITE_DELETE,
                    "SELECT customer.id, CASE WHEN false THEN ROW(customer.id, id) END AS "
                    "\"apigres returning\", customer.*::pg_catalog.text AS \"apigres target\" "
                    "FROM stripe.customer WHERE id = $1 OR email = $2 FOR UPDATE OF customer",
                    "");
    CHECK(r && r->n_params == 2 && r->has_returning, "DELETE with params and RETURNING");
    rewrite_result_free(r);

    r = expect_plan("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 3) "
                    "DELETE FROM stripe.customer WHERE n IN (SELECT n FROM r)",
                    REWRITE_DELETE,
                    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
                    "SELECT customer.id FROM stripe.customer WHERE n IN (SELECT n FROM r) "
                    "FOR UPDATE OF customer",
                    "");
    rewrite_result_free(r);

    /* the second statement of a Query */
    r = expect_plan_at("SELECT 1; DELETE FROM salesforce.account WHERE id = 'x'", 1,
                       REWRITE_DELETE,
                       "SELECT account.id FROM salesforce.account WHERE id = 'x' "
                       "FOR UPDATE OF account",
                       "");
    rewrite_result_free(r);
}

static void test_insert(void)
{
    rewrite_result *r;
    r = expect_plan("INSERT INTO stripe.customer (email, name) VALUES ($1, 'a'), "
                    "('b', lower($2)) RETURNING *",
                    REWRITE_INSERT,
                    "SELECT * FROM (VALUES ($1, 'a'), ('b', lower($2))) \"apigres values\"(email, name)",
                    "email,name");
    CHECK(r && r->n_params == 2 && r->has_returning, "INSERT VALUES: params and RETURNING");
    rewrite_result_free(r);

    /* DEFAULT leaves the field to the API: NULL in the plan, noted per row and column */
    r = expect_plan("INSERT INTO stripe.customer (id, email, name) VALUES (DEFAULT, 'a', DEFAULT), "
                    "(DEFAULT, 'b', 'B')",
                    REWRITE_INSERT,
                    "SELECT * FROM (VALUES (NULL, 'a', NULL), (NULL, 'b', 'B')) \"apigres values\"(id, email, name)",
                    "id,email,name");
    static const unsigned char want[] = {1, 0, 1, 1, 0, 0};
    CHECK(r && r->n_default_rows == 2 && r->defaults && memcmp(r->defaults, want, sizeof want) == 0,
          "INSERT VALUES with DEFAULT: which values are DEFAULT");
    rewrite_result_free(r);
    r = expect_plan("INSERT INTO stripe.customer (email) VALUES ('x')", REWRITE_INSERT,
                    "SELECT * FROM (VALUES ('x')) \"apigres values\"(email)", "email");
    CHECK(r && !r->defaults && r->n_default_rows == 0, "INSERT VALUES without DEFAULT: no defaults");
    rewrite_result_free(r);

    r = expect_plan("INSERT INTO stripe.customer (email) VALUES ('a@example.com')",
                    REWRITE_INSERT, "SELECT * FROM (VALUES ('a@example.com')) \"apigres values\"(email)", "email");
    rewrite_result_free(r);

    r = expect_plan("INSERT INTO stripe.customer (email, name) SELECT e, n FROM local.people "
                    "WHERE k = $1",
                    REWRITE_INSERT,
                    "SELECT * FROM (SELECT e, n FROM local.people WHERE k = $1) \"apigres values\"(email, name)",
                    "email,name");
    rewrite_result_free(r);

    r = expect_plan("INSERT INTO stripe.customer (email) SELECT x FROM t UNION ALL "
                    "SELECT y FROM u",
                    REWRITE_INSERT,
                    "SELECT * FROM (SELECT x FROM t UNION ALL SELECT y FROM u) \"apigres values\"(email)", "email");
    rewrite_result_free(r);

    r = expect_plan("INSERT INTO stripe.customer (email, name) SELECT * FROM t", REWRITE_INSERT,
                    "SELECT * FROM (SELECT * FROM t) \"apigres values\"(email, name)", "email,name");
    rewrite_result_free(r);

    r = expect_plan("WITH w AS (SELECT $1::text AS e) INSERT INTO stripe.customer (email) "
                    "SELECT e FROM w",
                    REWRITE_INSERT,
                    "WITH w AS (SELECT $1::text AS e) SELECT * FROM (SELECT e FROM w) \"apigres values\"(email)",
                    "email");
    rewrite_result_free(r);
}

static void test_refusals(void)
{
    expect_refusal("UPDATE stripe.customer SET (name, email) = (SELECT n, e FROM t)", "0A000",
                   "SET (columns) = (SELECT ...)");
    expect_refusal("UPDATE stripe.customer SET (name) = (1)", "0A000", "list of values");
    expect_refusal("UPDATE stripe.customer SET (name, email) = (1, 2, 3)", "0A000",
                   "list of values");
    expect_refusal("UPDATE stripe.customer SET (name, email) = (1, DEFAULT)", "0A000", "DEFAULT");
    expect_refusal("UPDATE stripe.customer SET name = DEFAULT", "0A000", "DEFAULT");
    expect_refusal("UPDATE stripe.customer SET tags[1] = 'x'", "0A000", "part of column");
    expect_refusal("UPDATE stripe.customer SET address.city = 'x'", "0A000", "part of column");
    expect_refusal("UPDATE stripe.customer SET name = 'a', name = 'b'", "42601",
                   "multiple assignments");
    expect_refusal("INSERT INTO stripe.customer VALUES ('x')", "0A000", "needs a column list");
    expect_refusal("INSERT INTO stripe.customer DEFAULT VALUES", "0A000", "DEFAULT VALUES");
    /* found by fuzz_classify: $0 deparses as "?", a type with expression modifiers not at all */
    expect_refusal("UPDATE stripe.customer SET name = $0 WHERE id = 'x'", "42P02", "no parameter $0");
    expect_refusal("DELETE FROM stripe.customer c WHERE c.id = 'a' AND c.x / foo(ARRAY[1,2]) 'x'", "42601", "does not parse");

    expect_refusal("INSERT INTO stripe.customer (tags[1]) VALUES ('x')", "0A000",
                   "part of column");
    expect_refusal("INSERT INTO stripe.customer (email, email) VALUES ('a', 'b')", "42701",
                   "specified more than once");
    expect_refusal("INSERT INTO stripe.customer (email, name) VALUES ('a')", "42601",
                   "more target columns");
    expect_refusal("INSERT INTO stripe.customer (email) VALUES ('a'), ('b', 'c')", "42601",
                   "more expressions");
    expect_refusal("INSERT INTO stripe.customer (email, name) SELECT x FROM t", "42601",
                   "more target columns");

    /* not a WRITE: the caller's mistake */
    classify_options o = {.schemas = synced, .n_schemas = 2};
    classify_result *cr = NULL;
    rewrite_result *r = NULL;
    const char *sql = "SELECT * FROM stripe.customer";
    CHECK(classify_sql(sql, strlen(sql), &o, &cr) == 0 &&
              rewrite_plan(sql, strlen(sql), &cr->stmts[0], &r) == -1 && r == NULL,
          "rewrite_plan refuses a statement classify did not call a write");
    classify_result_free(cr);
}

/* A wide VALUES list is not deep: 5000 rows plan like one. */
static void test_wide(void)
{
    enum { ROWS = 5000 };
    static const char head[] = "INSERT INTO stripe.customer (email, name) VALUES ";
    size_t cap = sizeof head + ROWS * 32;
    char *sql = malloc(cap);
    if (!sql) {
        CHECK(false, "wide INSERT: out of memory");
        return;
    }
    size_t n = (size_t)snprintf(sql, cap, "%s", head);
    for (int i = 1; i <= ROWS; i++)
        n += (size_t)snprintf(sql + n, cap - n, "%s($%d, 'n%d')", i > 1 ? ", " : "", i, i);
    rewrite_result *r = plan_at(sql, 0);
    CHECK(r && r->kind == REWRITE_INSERT && r->n_params == ROWS && r->n_columns == 2 &&
              r->plan_sql && strncmp(r->plan_sql, "SELECT * FROM (VALUES ($1, 'n1'), ", 34) == 0 &&
              strstr(r->plan_sql, "($5000, 'n5000')) \"apigres values\"(email, name)") && parses(r->plan_sql),
          "wide INSERT of %d rows plans", ROWS);
    rewrite_result_free(r);
    free(sql);
}

/* RETURNING: the list over the target alone, named so the caller can pick rows by id */
static void test_returning(void)
{
    static const struct {
        const char *sql, *returning, *ref;
    } cases[] = {
        {"UPDATE stripe.customer SET email = 'a@b.co' WHERE id = 'cus_1' RETURNING id, upper(name)",
         "SELECT id, upper(name) FROM stripe.customer", "customer"},
        {"UPDATE stripe.customer c SET name = 'x' FROM orders o WHERE o.cid = c.id RETURNING c.*",
         "SELECT c.* FROM stripe.customer c", "c"},
        {"DELETE FROM stripe.customer AS gone WHERE id = 'cus_1' RETURNING gone.email",
         "SELECT gone.email", "gone"},
        {"WITH w AS (SELECT 1 AS k) UPDATE stripe.customer SET name = 'x' RETURNING (SELECT k FROM w)",
         "WITH w AS (SELECT 1 AS k) SELECT (SELECT k FROM w) FROM stripe.customer", "customer"},
        {"INSERT INTO stripe.customer (email) VALUES ($1) RETURNING id, $2::int",
         "SELECT id, $2::int FROM stripe.customer", "customer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rewrite_result *r = plan_at(cases[i].sql, 0);
        bool ok = r && r->has_returning && r->returning_sql && r->returning_ref &&
                  strcmp(r->returning_sql, cases[i].returning) == 0 &&
                  strcmp(r->returning_ref, cases[i].ref) == 0;
        CHECK(ok, "returning of: %s", cases[i].sql);
        if (!ok && r)
            printf("# got: %s / %s\n", r->returning_sql ? r->returning_sql : "(null)",
                   r->returning_ref ? r->returning_ref : "(null)");
        if (r && r->returning_sql)
            CHECK(parses(r->returning_sql), "returning parses: %s", r->returning_sql);
        rewrite_result_free(r);
    }
    rewrite_result *r = plan_at("UPDATE stripe.customer SET email = 'a@b.co'", 0);
    CHECK(r && !r->has_returning && !r->returning_sql && !r->returning_ref, "no RETURNING, no returning_sql");
    rewrite_result_free(r);
}

/* RETURNING that reads FROM/USING: the tables it can carry, what it refuses up front */
static void test_returning_from(void)
{
    rewrite_result *r = expect_plan(
        "UPDATE stripe.customer c SET name = n.note FROM local.notes n(cid, note) "
        "JOIN local.tags t ON t.k = n.cid WHERE n.cid = c.id RETURNING c.id, n.note, t",
        REWRITE_UPDATE,
        "SELECT c.id, n.note AS name, CASE WHEN false THEN ROW(c.id, c.id, n.note, t) END AS "
        "\"apigres returning\", n.*::pg_catalog.text AS \"apigres from 1\", t.*::pg_catalog.text AS "
        "\"apigres from 2\" FROM stripe.customer c, local.notes n(cid, note) JOIN local.tags t ON "
        "t.k = n.cid WHERE n.cid = c.id FOR UPDATE OF c",
        "name");
    CHECK(r && r->n_from == 2 && strcmp(r->from[0].name, "n") == 0 && strcmp(r->from[0].schema, "local") == 0 &&
              strcmp(r->from[0].relname, "notes") == 0 && r->from[0].n_colnames == 2 &&
              strcmp(r->from[0].colnames[1], "note") == 0 && strcmp(r->from[1].name, "t") == 0 &&
              r->from[1].n_colnames == 0 && r->n_returning_bare == 0,
          "UPDATE ... FROM with RETURNING carries both tables of the JOIN, with n's column names");
    rewrite_result *copy = r ? rewrite_result_copy(r) : NULL;
    CHECK(copy && copy->n_from == 2 && strcmp(copy->from[0].colnames[0], "cid") == 0 &&
              strcmp(copy->from[1].relname, "tags") == 0,
          "a copy keeps the FROM tables");
    rewrite_result_free(copy);
    rewrite_result_free(r);

    r = expect_plan("DELETE FROM stripe.customer USING notes WHERE notes.cid = customer.id "
                    "RETURNING customer.email, notes.note",
                    REWRITE_DELETE,
                    "SELECT customer.id, CASE WHEN false THEN ROW(customer.id, customer.email, "
                    "notes.note) END AS \"apigres returning\", customer.*::pg_catalog.text AS "
                    "\"apigres target\", notes.*::pg_catalog.text AS \"apigres from 1\" FROM "
                    "stripe.customer, notes WHERE notes.cid = customer.id FOR UPDATE OF customer",
                    "");
    CHECK(r && r->n_from == 1 && !r->from[0].schema && r->returning_sql &&
              strcmp(r->returning_sql, "SELECT customer.email, notes.note") == 0,
          "DELETE ... USING: the target's rows and the table's come from the plan");
    rewrite_result_free(r);

    /* schema.table.column of a table read from the plan's rows (as Prisma writes RETURNING):
     * table.column in RETURNING's query, the client's tree given back */
    static const char del_sql[] = "DELETE FROM stripe.customer USING public.orders WHERE orders.k = customer.id "
                                  "RETURNING stripe.customer.id, \"stripe\".\"customer\".email, public.orders.note";
    for (int keep = 0; keep < 2; keep++) {
        rewrite_result *p = plan_from(del_sql, 0, keep);
        CHECK(p && p->kind == REWRITE_DELETE && p->returning_sql &&
                  strcmp(p->returning_sql, "SELECT customer.id, customer.email, orders.note") == 0 && p->plan_sql &&
                  strstr(p->plan_sql, "ROW(customer.id, stripe.customer.id, stripe.customer.email, public.orders.note)"),
              "DELETE ... RETURNING schema.table.column (keep_trees %d): %s / %s", keep,
              p && p->returning_sql ? p->returning_sql : "", p && p->plan_sql ? p->plan_sql : "");
        rewrite_result_free(p);
    }

    /* a subquery in FROM is not carried: bare names are the caller's to check */
    r = plan_at("UPDATE stripe.customer c SET name = v.n FROM (VALUES ('cus_1', 'A')) v(id, n) "
                "WHERE c.id = v.id RETURNING c.id, name, email",
                0);
    CHECK(r && r->kind == REWRITE_UPDATE && r->n_from == 0 && r->n_returning_bare == 2 &&
              strcmp(r->returning_bare[0], "name") == 0 && strcmp(r->returning_bare[1], "email") == 0,
          "FROM (VALUES ...): RETURNING's bare names listed for the caller");
    rewrite_result_free(r);
    r = plan_at("UPDATE stripe.customer c SET name = 'x' FROM notes n, tags t WHERE c.id = n.cid "
                "AND t.k = n.k RETURNING c.id, n.note", 0);
    CHECK(r && r->kind == REWRITE_UPDATE && r->n_from == 1 && strcmp(r->from[0].name, "n") == 0 && r->plan_sql &&
              strstr(r->plan_sql, "\"apigres from 1\"") && !strstr(r->plan_sql, "\"apigres from 2\""),
          "only the FROM tables RETURNING names are carried: %s", r && r->plan_sql ? r->plan_sql : "");
    rewrite_result_free(r);
    r = plan_at("UPDATE stripe.customer c SET name = 'x' FROM notes n WHERE c.id = n.cid RETURNING name", 0);
    CHECK(r && r->kind == REWRITE_UPDATE && r->n_from == 1 && r->n_returning_bare == 0,
          "FROM of tables only: no bare names to check");
    rewrite_result_free(r);
    r = plan_at("INSERT INTO stripe.customer (email) VALUES ('a') RETURNING id, email", 0);
    CHECK(r && r->kind == REWRITE_INSERT && r->plan_sql &&
              strstr(r->plan_sql, "CASE WHEN false THEN (SELECT ROW(customer.id, id, email) FROM "
                                  "stripe.customer) END AS \"apigres returning\""),
          "INSERT: RETURNING checked over the target alone: %s", r && r->plan_sql ? r->plan_sql : "");
    rewrite_result_free(r);

    expect_refusal("UPDATE stripe.customer c SET name = 'x' FROM (SELECT 1 AS k) s RETURNING *", "0A000",
                   "RETURNING *");
    expect_refusal("UPDATE stripe.customer c SET name = 'x' FROM (SELECT 1 AS k) s RETURNING s.k", "0A000",
                   "not \"s\"");
    expect_refusal("WITH w AS (SELECT 'cus_1' AS id) UPDATE stripe.customer c SET name = 'x' FROM w "
                   "WHERE w.id = c.id RETURNING w.id", "0A000", "not \"w\"");
    expect_refusal("UPDATE stripe.customer c SET name = 'x' FROM a JOIN b USING (k) RETURNING a.k", "0A000",
                   "not \"a\"");
    expect_refusal("DELETE FROM stripe.customer WHERE id = 'x' RETURNING xmin", "0A000", "system column");
    expect_refusal("UPDATE stripe.customer c SET name = 'x' FROM notes n RETURNING n.ctid", "0A000",
                   "system column");
    expect_refusal("UPDATE stripe.customer SET name = 'x' RETURNING count(*)", "42803", "aggregate");
    expect_refusal("UPDATE stripe.customer SET name = 'x' RETURNING row_number() OVER ()", "42P20", "window");

    /* allowed: the target's own system column, a schema-qualified target without FROM,
     * an aggregate inside a subquery */
    static const char *const fine[] = {
        "UPDATE stripe.customer c SET name = 'x' FROM notes n WHERE n.cid = c.id RETURNING c.xmin",
        "UPDATE stripe.customer SET name = 'x' RETURNING stripe.customer.name",
        "UPDATE stripe.customer c SET name = 'x' RETURNING (SELECT count(*) FROM notes)",
    };
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        r = plan_at(fine[i], 0);
        CHECK(r && r->kind == REWRITE_UPDATE && r->plan_sql && parses(r->plan_sql), "planned: %s", fine[i]);
        rewrite_result_free(r);
    }
}

int main(void)
{
    test_returning();
    test_returning_from();
    test_update();
    test_resolved_target();
    test_delete();
    test_insert();
    test_refusals();
    test_wide();
    pg_query_exit();
    return unit_done();
}
