/* Unit tests for parser/classify: the lexical pre-check and the statement classifier. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "parser/classify.h"
#include "tests/unit/unit.h"

static const char *const synced[] = {"stripe", "salesforce"};

static classify_options options(void)
{
    classify_options o = {.schemas = synced, .n_schemas = 2};
    return o;
}

static classify_result *run_with(const char *sql, const classify_options *o)
{
    classify_result *r = NULL;
    if (classify_sql(sql, strlen(sql), o, &r) != 0)
        return NULL;
    return r;
}

static classify_result *run(const char *sql)
{
    classify_options o = options();
    return run_with(sql, &o);
}

/* The verdict of a one-statement text (-1 if it is not one statement). */
static int verdict1(const char *sql)
{
    classify_result *r = run(sql);
    int v = r && r->n_stmts == 1 ? (int)r->stmts[0].verdict : -1;
    classify_result_free(r);
    return v;
}

/* The SQLSTATE of a one-statement refusal ("" otherwise). */
static const char *refusal(const char *sql)
{
    static char code[6];
    classify_result *r = run(sql);
    code[0] = '\0';
    if (r && r->n_stmts == 1 && r->stmts[0].verdict == CLASSIFY_REFUSE) {
        memcpy(code, r->stmts[0].sqlstate, sizeof code);
        if (!r->stmts[0].message || !*r->stmts[0].message)
            code[0] = '\0'; /* a refusal without a message is a bug */
    }
    classify_result_free(r);
    return code;
}

static bool message_has(const char *sql, const char *needle)
{
    classify_result *r = run(sql);
    bool ok = r && r->n_stmts == 1 && r->stmts[0].message &&
              strstr(r->stmts[0].message, needle) != NULL;
    classify_result_free(r);
    return ok;
}

#define MAY(sql) classify_may_write(sql, strlen(sql))

static void test_may_write(void)
{
    CHECK(!MAY("SELECT * FROM stripe.customer"), "pre-check: SELECT is not interesting");
    CHECK(!MAY("  show search_path; SET x = 1; BEGIN; COMMIT"), "pre-check: SHOW/SET/BEGIN/COMMIT");
    CHECK(!MAY(""), "pre-check: empty text");
    CHECK(!MAY("-- UPDATE stripe.customer\nSELECT 1"), "pre-check: a line comment is skipped");
    CHECK(!MAY("/* outer /* UPDATE */ still comment */ SELECT 1"),
          "pre-check: nested block comments are skipped");
    CHECK(MAY("update stripe.customer set name = 'x'"), "pre-check: UPDATE, lower case");
    CHECK(MAY("  /* c */ -- c\n  InSeRt INTO t VALUES (1)"), "pre-check: INSERT after comments");
    CHECK(MAY("((WITH x AS (SELECT 1) SELECT * FROM x))"), "pre-check: WITH after parentheses");
    CHECK(MAY("SELECT 1; DELETE FROM stripe.customer"), "pre-check: the second statement counts");
    CHECK(!MAY("SELECT 'a;UPDATE stripe.customer SET x=1'"),
          "pre-check: a ';' inside a string is no boundary");
    CHECK(!MAY("SELECT \"a;UPDATE\" FROM t"), "pre-check: a ';' inside a quoted identifier");
    CHECK(!MAY("SELECT $$;UPDATE stripe.customer SET x=1;$$"),
          "pre-check: a ';' inside a dollar quote");
    CHECK(!MAY("SELECT $body$ $$; update x $body$"),
          "pre-check: a tagged dollar quote ends only at its own tag");
    CHECK(MAY("SELECT a$b$; UPDATE t SET x = 1; SELECT $b$"),
          "pre-check: '$' inside an identifier does not open a dollar quote");
    CHECK(MAY("SELECT $1; UPDATE t SET x = 1"), "pre-check: $1 is a parameter, not a quote");
    CHECK(!MAY("SELECT E'it\\'s; UPDATE t SET x = 1'"),
          "pre-check: E'' strings take backslash escapes");
    CHECK(MAY("SELECT 'a\\'; UPDATE t SET x = 1; --'"),
          "pre-check: 'a\\' is the whole string with standard_conforming_strings on");
    CHECK(MAY("SELECT 'a\\'; --'; UPDATE t SET x = 1"),
          "pre-check: conservative when standard_conforming_strings is off");
    CHECK(MAY("DO $$ BEGIN END $$"), "pre-check: DO");
    CHECK(MAY("EXPLAIN SELECT 1") && MAY("PREPARE p AS SELECT 1") && MAY("EXECUTE p") &&
              MAY("COPY t TO STDOUT") && MAY("CALL p()") && MAY("TRUNCATE t") &&
              MAY("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE") &&
              MAY("CREATE RULE r AS ON INSERT TO t DO NOTHING") && MAY("ALTER TABLE t ADD c int") &&
              MAY("DROP TABLE t"),
          "pre-check: every interesting first keyword");
    CHECK(!MAY("VALUES (1); TABLE t; LISTEN x; NOTIFY x; DECLARE c CURSOR FOR SELECT 1"),
          "pre-check: VALUES/TABLE/LISTEN/NOTIFY/DECLARE");
    CHECK(!MAY("updates"), "pre-check: a keyword must be a whole word");
    static const char nul[] = "SELECT 1\0; UPDATE t SET x = 1";
    CHECK(!classify_may_write(nul, sizeof nul - 1) && classify_may_write(nul + 9, sizeof nul - 10),
          "pre-check: the text ends at a NUL, as Postgres reads a Query");
    CHECK(MAY("SELECT 1; /* unterminated UPDATE") == false, "pre-check: unterminated comment");
}

static const char *const synced_names[] = {"stripe", "customer", "price", "invoice__c"};
#define NAMES(sql) classify_may_name(sql, strlen(sql), synced_names, sizeof synced_names / sizeof *synced_names)

static void test_may_name(void)
{
    CHECK(!NAMES("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 7"),
          "names: a write to a table of the client's own names nothing synced");
    CHECK(!NAMES("INSERT INTO customers (prices) VALUES ('stripes')"),
          "names: a name must be a whole run of identifier characters");
    CHECK(!NAMES("INSERT INTO customer_log VALUES ($1); DELETE FROM x_customer"),
          "names: '_' belongs to the run");
    CHECK(NAMES("UPDATE stripe.customer SET name = 'x'") && NAMES("update STRIPE.Customer set x = 1") &&
              NAMES("DELETE FROM \"Customer\"") && NAMES("INSERT INTO invoice__c VALUES (1)"),
          "names: schema or table, in any case, quoted or not");
    CHECK(NAMES("UPDATE t SET x = 'a customer'") && NAMES("UPDATE t SET x = 1 -- price"),
          "names: strings and comments count (conservative)");
    CHECK(NAMES("DO $$BEGIN UPDATE stripe.customer SET x = 1; END$$"), "names: a DO block's body");
    CHECK(NAMES("DO $$stripe.customer$$") && NAMES("DO $b$UPDATE customer$b$") && NAMES("SELECT $1customer") &&
              NAMES("UPDATE t SET x = 1price"),
          "names: a name right beside a dollar quote, a parameter or a number (fuzz_classify's find)");
    CHECK(NAMES("DO E'BEGIN UPDATE \\x73tripe.\\x63ustomer SET x = 1; END'") && NAMES("UPDATE t SET x = E'\\n'"),
          "names: any backslash (an E'' escape can spell a name)");
    CHECK(NAMES("UPDATE U&\"\\0063ustomer\" SET x = 1") &&
              NAMES("DO U&'BEGIN UPDATE !0073tripe.t SET x = 1; END' UESCAPE '!'") && NAMES("UPDATE t SET x = u&'a'"),
          "names: any U& (Unicode escapes can spell a name)");
    CHECK(!NAMES("UPDATE t SET x = 'a & b'") && !NAMES("UPDATE t SET x = y & 1"), "names: '&' alone is harmless");
    static const char nul[] = "UPDATE t SET x = 1\0 customer";
    CHECK(!classify_may_name(nul, sizeof nul - 1, synced_names, 4), "names: the text ends at a NUL");
    CHECK(!classify_may_name("UPDATE stripe.customer SET x = 1", 32, synced_names, 0), "names: no names, none named");
}

static void test_writes(void)
{
    classify_result *r = run("UPDATE stripe.customer SET name = $1, email = lower($2) "
                             "WHERE id = $3 RETURNING *");
    const classify_stmt *st = r ? &r->stmts[0] : NULL;
    CHECK(st && r->n_stmts == 1 && st->verdict == CLASSIFY_WRITE && st->command == CLASSIFY_CMD_UPDATE,
          "UPDATE of a synced table is a write");
    CHECK(st && st->schema && strcmp(st->schema, "stripe") == 0 && strcmp(st->table, "customer") == 0 &&
              !st->unqualified,
          "UPDATE target schema and table");
    CHECK(st && st->n_columns == 2 && strcmp(st->columns[0], "name") == 0 &&
              strcmp(st->columns[1], "email") == 0,
          "UPDATE assigned columns in SET order");
    CHECK(st && st->returning && st->n_params == 3 && !st->from && !st->with,
          "UPDATE RETURNING, 3 parameters, no FROM, no WITH");
    classify_result_free(r);

    r = run("UPDATE \"stripe\".\"customer\" AS c SET (name, email) = ('a', 'b') FROM t "
            "WHERE t.id = c.id");
    st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && strcmp(st->schema, "stripe") == 0 &&
              st->from && st->n_columns == 2 && strcmp(st->columns[1], "email") == 0 && !st->returning,
          "quoted names, multi-column SET and UPDATE ... FROM");
    classify_result_free(r);

    CHECK(verdict1("UPDATE STRIPE.Customer SET name = 'x'") == CLASSIFY_WRITE,
          "unquoted names are folded to lower case");
    CHECK(verdict1("UPDATE \"Stripe\".customer SET name = 'x'") == CLASSIFY_PASS,
          "a quoted schema name is exact: \"Stripe\" is not stripe");
    CHECK(verdict1("UPDATE public.customer SET name = 'x'") == CLASSIFY_PASS,
          "UPDATE of a table of the client's own passes");

    r = run("INSERT INTO salesforce.contact (first_name, last_name) VALUES ($1, $2), ($3, $4), "
            "('a', 'b')");
    st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && st->command == CLASSIFY_CMD_INSERT &&
              strcmp(st->schema, "salesforce") == 0 && strcmp(st->table, "contact") == 0,
          "INSERT into a synced table is a write");
    CHECK(st && st->source == CLASSIFY_INSERT_VALUES && st->n_rows == 3 && st->n_columns == 2 &&
              strcmp(st->columns[0], "first_name") == 0 && st->n_params == 4 && !st->returning,
          "INSERT VALUES: 3 rows, column list, 4 parameters");
    classify_result_free(r);

    r = run("INSERT INTO stripe.customer SELECT * FROM staging RETURNING id");
    st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && st->source == CLASSIFY_INSERT_SELECT &&
              st->n_columns == 0 && st->returning,
          "INSERT ... SELECT without a column list, RETURNING");
    classify_result_free(r);

    r = run("INSERT INTO stripe.customer DEFAULT VALUES");
    st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && st->source == CLASSIFY_INSERT_DEFAULTS,
          "INSERT DEFAULT VALUES");
    classify_result_free(r);

    r = run("DELETE FROM stripe.customer c USING doomed d WHERE c.id = d.id RETURNING c.id");
    st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && st->command == CLASSIFY_CMD_DELETE && st->from &&
              st->returning && st->n_columns == 0,
          "DELETE ... USING ... RETURNING");
    classify_result_free(r);

    r = run("WITH x AS (SELECT id FROM old) UPDATE stripe.customer SET name = 'n' "
            "WHERE id IN (SELECT id FROM x)");
    st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && st->with,
          "a read-only WITH in front of a synced write: a write with the with flag");
    classify_result_free(r);
}

static void test_unqualified(void)
{
    classify_result *r = run("UPDATE customer SET name = 'x'");
    const classify_stmt *st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && st->unqualified && st->schema == NULL &&
              strcmp(st->table, "customer") == 0 && st->n_unresolved == 1 &&
              strcmp(st->unresolved[0], "customer") == 0,
          "an unqualified target is provisional and asks to be resolved");
    classify_result_free(r);

    classify_options o = options();
    classify_resolved res[] = {{"customer", "stripe"}, {"notes", "public"}, {"gone", NULL}};
    o.resolved = res;
    o.n_resolved = 3;
    r = run_with("UPDATE customer SET name = 'x'", &o);
    st = r ? &r->stmts[0] : NULL;
    CHECK(st && st->verdict == CLASSIFY_WRITE && st->unqualified && st->schema &&
              strcmp(st->schema, "stripe") == 0 && st->n_unresolved == 0,
          "a resolved unqualified target takes the schema the session gave");
    classify_result_free(r);
    r = run_with("UPDATE notes SET body = 'x'; DELETE FROM gone", &o);
    CHECK(r && r->n_stmts == 2 && r->stmts[0].verdict == CLASSIFY_PASS &&
              r->stmts[1].verdict == CLASSIFY_PASS && r->stmts[0].n_unresolved == 0,
          "unqualified names resolved to other schemas (or to nothing) pass");
    classify_result_free(r);
    r = run_with("TRUNCATE customer", &o);
    CHECK(r && r->stmts[0].verdict == CLASSIFY_REFUSE && strcmp(r->stmts[0].sqlstate, "0A000") == 0,
          "a resolved name is refused like a qualified one");
    classify_result_free(r);

    r = run("WITH d AS (DELETE FROM things RETURNING *) SELECT * FROM d");
    CHECK(r && r->stmts[0].verdict == CLASSIFY_REFUSE && r->stmts[0].n_unresolved == 1 &&
              strcmp(r->stmts[0].unresolved[0], "things") == 0,
          "an unqualified writable CTE target is provisional too");
    classify_result_free(r);
    CHECK(verdict1("SELECT * FROM customer") == CLASSIFY_PASS,
          "reading an unqualified table needs no resolution");
}

static void test_refusals(void)
{
    CHECK(strcmp(refusal("MERGE INTO stripe.customer c USING src s ON c.id = s.id "
                         "WHEN MATCHED THEN UPDATE SET name = s.name"), "0A000") == 0,
          "MERGE into a synced table: 0A000");
    CHECK(verdict1("MERGE INTO public.local c USING stripe.customer s ON c.id = s.id "
                   "WHEN MATCHED THEN DELETE") == CLASSIFY_PASS,
          "MERGE into a local table from a synced one passes");
    CHECK(strcmp(refusal("INSERT INTO stripe.customer (id, name) VALUES ('a', 'b') "
                         "ON CONFLICT (id) DO UPDATE SET name = excluded.name"), "0A000") == 0,
          "INSERT ... ON CONFLICT on a synced table: 0A000");
    CHECK(message_has("INSERT INTO stripe.customer VALUES (1) ON CONFLICT DO NOTHING", "ON CONFLICT"),
          "the ON CONFLICT message names the construct");
    CHECK(verdict1("INSERT INTO public.mine VALUES (1) ON CONFLICT DO NOTHING") == CLASSIFY_PASS,
          "ON CONFLICT on a local table passes");
    CHECK(strcmp(refusal("TRUNCATE mine, stripe.customer"), "0A000") == 0,
          "TRUNCATE naming a synced table: 0A000");
    CHECK(message_has("TRUNCATE mine, stripe.customer", "stripe.customer"),
          "the TRUNCATE message names the synced table");
    CHECK(verdict1("TRUNCATE public.mine") == CLASSIFY_PASS, "TRUNCATE of a local table passes");
    CHECK(strcmp(refusal("COPY stripe.customer (name) FROM STDIN"), "0A000") == 0,
          "COPY FROM into a synced table: 0A000");
    CHECK(verdict1("COPY stripe.customer TO STDOUT") == CLASSIFY_PASS, "COPY TO passes");
    CHECK(verdict1("COPY (SELECT * FROM stripe.customer) TO STDOUT") == CLASSIFY_PASS,
          "COPY (SELECT) TO passes");
    CHECK(strcmp(refusal("COPY (DELETE FROM stripe.customer RETURNING id) TO STDOUT"), "0A000") == 0,
          "COPY (DELETE ... RETURNING) TO: 0A000");
    CHECK(strcmp(refusal("WITH d AS (DELETE FROM stripe.customer WHERE id = 'x' RETURNING *) "
                         "SELECT * FROM d"), "0A000") == 0,
          "a writable CTE on a synced table: 0A000");
    CHECK(strcmp(refusal("WITH d AS (UPDATE stripe.customer SET name = 'x' RETURNING id) "
                         "INSERT INTO mine SELECT id FROM d"), "0A000") == 0,
          "a writable CTE under a local INSERT: 0A000");
    CHECK(strcmp(refusal("WITH d AS (DELETE FROM mine RETURNING id) "
                         "UPDATE stripe.customer SET name = 'x' WHERE id IN (SELECT id FROM d)"),
                 "0A000") == 0,
          "a synced write with a data-modifying WITH: 0A000");
    CHECK(verdict1("WITH d AS (DELETE FROM public.mine RETURNING id) SELECT * FROM d") == CLASSIFY_PASS,
          "a writable CTE on local tables passes");
    CHECK(strcmp(refusal("EXPLAIN ANALYZE UPDATE stripe.customer SET name = 'x'"), "0A000") == 0,
          "EXPLAIN ANALYZE of a synced write: 0A000");
    CHECK(strcmp(refusal("EXPLAIN (ANALYSE, BUFFERS) DELETE FROM stripe.customer"), "0A000") == 0,
          "EXPLAIN (ANALYSE) of a synced write: 0A000");
    CHECK(verdict1("EXPLAIN UPDATE stripe.customer SET name = 'x'") == CLASSIFY_PASS,
          "plain EXPLAIN of a synced write passes");
    CHECK(verdict1("EXPLAIN (ANALYZE off) UPDATE stripe.customer SET name = 'x'") == CLASSIFY_PASS,
          "EXPLAIN (ANALYZE off) passes");
    CHECK(verdict1("EXPLAIN ANALYZE SELECT * FROM stripe.customer") == CLASSIFY_PASS,
          "EXPLAIN ANALYZE of a read passes");
    CHECK(strcmp(refusal("PREPARE p (text) AS UPDATE stripe.customer SET name = $1"), "0A000") == 0,
          "SQL PREPARE of a synced write: 0A000");
    CHECK(message_has("PREPARE p AS DELETE FROM stripe.customer", "PREPARE") &&
              message_has("PREPARE p AS DELETE FROM stripe.customer", "stripe.customer"),
          "the PREPARE message names the statement and the table");
    classify_result *r = run("PREPARE q AS SELECT * FROM stripe.customer WHERE id = $1");
    CHECK(r && r->stmts[0].verdict == CLASSIFY_PASS && r->stmts[0].command == CLASSIFY_CMD_PREPARE &&
              r->stmts[0].name && strcmp(r->stmts[0].name, "q") == 0,
          "PREPARE of a read passes and names the statement");
    classify_result_free(r);
    r = run("PREPARE p AS UPDATE stripe.customer SET name = 'x'");
    CHECK(r && r->stmts[0].hint && strstr(r->stmts[0].hint, "Parse"),
          "the PREPARE hint points to the protocol's Parse message");
    classify_result_free(r);
    CHECK(strcmp(refusal("CREATE RULE r AS ON UPDATE TO stripe.customer DO ALSO NOTHING"), "0A000") == 0,
          "CREATE RULE on a synced table: 0A000");
    CHECK(strcmp(refusal("CREATE RULE r AS ON INSERT TO mine DO ALSO "
                         "(DELETE FROM stripe.customer; SELECT 1)"), "0A000") == 0,
          "a rule on a local table whose action writes a synced table: 0A000");
    CHECK(strcmp(refusal("CREATE TRIGGER t BEFORE UPDATE ON stripe.customer "
                         "FOR EACH ROW EXECUTE FUNCTION f()"), "0A000") == 0,
          "CREATE TRIGGER on a synced table: 0A000");
    CHECK(verdict1("CREATE TRIGGER t BEFORE UPDATE ON public.mine FOR EACH ROW EXECUTE FUNCTION f()") ==
              CLASSIFY_PASS,
          "CREATE TRIGGER on a local table passes");
    CHECK(strcmp(refusal("UPDATE stripe.customer SET id = 'cus_2' WHERE id = 'cus_1'"), "428C9") == 0,
          "UPDATE of id: 428C9");
    CHECK(message_has("UPDATE stripe.customer SET name = 'x', \"id\" = 'y'", "column \"id\""),
          "the id message names the column");
    CHECK(verdict1("UPDATE stripe.customer SET \"ID\" = 'y'") == CLASSIFY_WRITE,
          "a quoted \"ID\" is another column");
    CHECK(strcmp(refusal("UPDATE stripe.customer SET name = 'x' WHERE CURRENT OF c"), "0A000") == 0,
          "UPDATE ... WHERE CURRENT OF: 0A000");
    CHECK(strcmp(refusal("DELETE FROM stripe.customer WHERE CURRENT OF c"), "0A000") == 0,
          "DELETE ... WHERE CURRENT OF: 0A000");
    CHECK(verdict1("UPDATE public.mine SET x = 1 WHERE CURRENT OF c") == CLASSIFY_PASS,
          "WHERE CURRENT OF on a local table passes");
}

static void test_other_statements(void)
{
    classify_result *r = run("EXECUTE p('a', 2)");
    CHECK(r && r->n_stmts == 1 && r->stmts[0].verdict == CLASSIFY_EXECUTE && r->stmts[0].name &&
              strcmp(r->stmts[0].name, "p") == 0,
          "SQL EXECUTE returns the statement name for the caller to look up");
    classify_result_free(r);
    CHECK(strcmp(refusal("DO $$ BEGIN UPDATE stripe.customer SET name = 'x'; END $$"), "0A000") == 0,
          "a DO block writing a synced table: 0A000");
    CHECK(strcmp(refusal("DO $x$ BEGIN DELETE FROM \"salesforce\".contact; END $x$"), "0A000") == 0,
          "a DO block naming a quoted synced schema: 0A000");
    CHECK(verdict1("DO $$ BEGIN PERFORM count(*) FROM stripe.customer; END $$") == CLASSIFY_PASS,
          "a DO block that only reads a synced table passes");
    CHECK(verdict1("DO $$ BEGIN UPDATE mine SET stripe_id = 'x'; END $$") == CLASSIFY_PASS,
          "a DO block writing its own tables passes");
    CHECK(verdict1("CALL do_things()") == CLASSIFY_PASS, "CALL passes (the database guard covers it)");
    CHECK(verdict1("CREATE FUNCTION f() RETURNS void BEGIN ATOMIC; "
                   "UPDATE stripe.customer SET name = 'x'; END") == CLASSIFY_PASS,
          "a function body is not executed by CREATE FUNCTION: passes");
    CHECK(verdict1("ALTER TABLE mine ADD COLUMN c int") == CLASSIFY_PASS, "ALTER TABLE passes");
    CHECK(verdict1("SELECT * FROM stripe.customer WHERE id = $1") == CLASSIFY_PASS, "SELECT passes");

    r = run("SELECT $7");
    CHECK(r && r->stmts[0].n_params == 7, "n_params is the highest $n");
    classify_result_free(r);
}

static void test_multi(void)
{
    const char *sql = "SELECT 1; /* c */ UPDATE stripe.customer SET name = 'a;b' ;\n"
                      "INSERT INTO public.mine VALUES ($$;$$);;TRUNCATE stripe.charge";
    classify_result *r = run(sql);
    CHECK(r && r->n_stmts == 4, "four statements (empty ones do not count)");
    if (r && r->n_stmts == 4) {
        CHECK(r->stmts[0].verdict == CLASSIFY_PASS && r->stmts[0].command == CLASSIFY_CMD_SELECT &&
                  r->stmts[1].verdict == CLASSIFY_WRITE && r->stmts[2].verdict == CLASSIFY_PASS &&
                  r->stmts[3].verdict == CLASSIFY_REFUSE,
              "pass, write, pass, refuse");
        CHECK(r->stmts[0].offset == 0 && r->stmts[0].len == 8, "first statement's bytes");
        const classify_stmt *u = &r->stmts[1];
        CHECK(strncmp(sql + u->offset, "/* c */ UPDATE", 14) == 0 || strncmp(sql + u->offset, " /* c */ UPDATE", 15) == 0,
              "second statement's offset");
        CHECK(sql[u->offset + u->len - 1] == ' ' || sql[u->offset + u->len - 1] == '\'',
              "second statement ends before its ';'");
        const classify_stmt *t = &r->stmts[3];
        CHECK(t->offset + t->len == strlen(sql) &&
                  strstr(sql + t->offset, "TRUNCATE stripe.charge") != NULL,
              "the last statement runs to the end");
    }
    classify_result_free(r);
}

static void test_limits(void)
{
    classify_options o = options();
    o.max_len = 20;
    classify_result *r = run_with("UPDATE stripe.customer SET name = 'x'", &o);
    CHECK(r && r->n_stmts == 1 && r->stmts[0].verdict == CLASSIFY_REFUSE &&
              strcmp(r->stmts[0].sqlstate, "54000") == 0,
          "a text over max_len is refused with 54000, unparsed");
    classify_result_free(r);

    r = run("SELECT 1 +* FROM");
    CHECK(r && r->parse_error && r->error && r->n_stmts == 1 && r->stmts[0].verdict == CLASSIFY_PASS,
          "a syntax error passes with parse_error (the database answers it)");
    classify_result_free(r);

    size_t n = 40000;
    char *deep = malloc(10 + 2 * n + 1);
    strcpy(deep, "SELECT 1");
    for (size_t i = 0; i < n; i++)
        memcpy(deep + 8 + 2 * i, "+1", 2);
    deep[8 + 2 * n] = '\0';
    r = run(deep);
    CHECK(r && r->n_stmts == 1 && r->stmts[0].verdict == CLASSIFY_REFUSE &&
              strcmp(r->stmts[0].sqlstate, "54001") == 0,
          "a 40000-deep expression is refused with 54001 before libpg_query overflows its stack");
    classify_result_free(r);
    free(deep);

    /* many rows are wide, not deep: the estimate resets at commas */
    size_t rows = 20000;
    char *wide = malloc(64 + rows * 12);
    char *p = wide + sprintf(wide, "INSERT INTO stripe.customer (a, b) VALUES ");
    for (size_t i = 0; i < rows; i++)
        p += sprintf(p, "%s(1, -2)", i ? "," : "");
    r = run(wide);
    CHECK(r && r->n_stmts == 1 && r->stmts[0].verdict == CLASSIFY_WRITE && r->stmts[0].n_rows == rows,
          "a 20000-row VALUES list is classified");
    classify_result_free(r);
    free(wide);

    char *unions = malloc(64 + 20000 * 20);
    p = unions + sprintf(unions, "SELECT 1, 2");
    for (size_t i = 0; i < 20000; i++)
        p += sprintf(p, " UNION SELECT 1, 2");
    r = run(unions);
    CHECK(r && r->stmts[0].verdict == CLASSIFY_REFUSE && strcmp(r->stmts[0].sqlstate, "54001") == 0,
          "a 20000-deep UNION chain is refused even though commas separate its items");
    classify_result_free(r);
    free(unions);
}

/* The deepest statements the default limit admits, classified on a 2 MiB stack. */
static void *deep_on_small_stack(void *arg)
{
    const char *const *sqls = arg;
    size_t ok = 0;
    for (size_t i = 0; sqls[i]; i++) {
        classify_result *r = run(sqls[i]);
        ok += r != NULL;
        classify_result_free(r);
    }
    return (void *)ok;
}

static char *repeat(const char *head, const char *unit, size_t n, const char *mid,
                    const char *close)
{
    size_t hl = strlen(head), ul = strlen(unit), ml = strlen(mid), cl = strlen(close);
    char *s = malloc(hl + (ul + cl) * n + ml + 1);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + ul * i, unit, ul);
    memcpy(s + hl + ul * n, mid, ml);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + ul * n + ml + cl * i, close, cl);
    s[hl + (ul + cl) * n + ml] = '\0';
    return s;
}

static void test_stack(void)
{
    size_t lim = CLASSIFY_DEFAULT_MAX_NESTING;
    char *sqls[] = {
        repeat("SELECT 1", "+1", lim / 2 - 4, "", ""),
        repeat("SELECT 1", " UNION SELECT 1, 2", lim - 4, "", ""),
        repeat("SELECT * FROM a", " JOIN b ON x AND y", lim / 6 - 2, "", ""),
        repeat("SELECT 1", "::int", lim / 2 - 4, "", ""),
        repeat("SELECT 1", " IS NULL", lim / 2 - 4, "", ""),
        repeat("SELECT ", "- ", lim - 10, "1", ""),
        repeat("SELECT ", "NOT ", lim - 10, "true", ""),
        repeat("SELECT ", "(", lim / 2 - 10, "1", ")"),
        repeat("SELECT ", "f(", lim / 2 - 10, "1", ")"),
        repeat("SELECT ", "ARRAY[", lim / 2 - 10, "1", "]"),
        repeat("SELECT * FROM ", "(SELECT * FROM ", lim / 4 - 10, "t", ") x"),
        repeat("WITH d AS (DELETE FROM stripe.customer RETURNING 1) SELECT 1", "+1",
               lim / 2 - 40, "", ""),
        NULL,
    };
    size_t n = sizeof sqls / sizeof sqls[0] - 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 3u << 20);
    pthread_t th;
    void *ok = NULL;
    int rc = pthread_create(&th, &attr, deep_on_small_stack, sqls);
    if (rc == 0)
        pthread_join(th, &ok);
    CHECK(rc == 0 && (size_t)ok == n,
          "the deepest statements under the nesting limit classify on a 3 MiB stack");
    size_t parsed = 0;
    for (size_t i = 0; i < n; i++) {
        classify_result *r = run(sqls[i]);
        parsed += r && !r->parse_error && r->stmts[0].verdict != CLASSIFY_REFUSE;
        if (i == n - 1)
            CHECK(r && r->stmts[0].verdict == CLASSIFY_REFUSE &&
                      strcmp(r->stmts[0].sqlstate, "0A000") == 0,
                  "a writable CTE ahead of a deep expression is still found");
        classify_result_free(r);
    }
    CHECK(parsed == n - 1, "statements just under the limit are parsed, not refused (%zu of %zu)",
          parsed, n - 1);
    pthread_attr_destroy(&attr);
    for (size_t i = 0; sqls[i]; i++)
        free(sqls[i]);
}

static void test_transaction(void)
{
    static const struct {
        const char *sql;
        classify_tx want;
    } cases[] = {
        {"BEGIN", CLASSIFY_TX_BEGINS},
        {"  /* c */ start transaction isolation level serializable", CLASSIFY_TX_BEGINS},
        {"COMMIT", CLASSIFY_TX_ENDS},
        {"end", CLASSIFY_TX_ENDS},
        {"ROLLBACK", CLASSIFY_TX_ENDS},
        {"abort", CLASSIFY_TX_ENDS},
        {"PREPARE TRANSACTION 'x'", CLASSIFY_TX_ENDS},
        {"COMMIT AND CHAIN", CLASSIFY_TX_KEEPS},
        {"ROLLBACK AND CHAIN", CLASSIFY_TX_KEEPS},
        {"ROLLBACK TO SAVEPOINT s", CLASSIFY_TX_KEEPS},
        {"rollback to s", CLASSIFY_TX_KEEPS},
        {"SAVEPOINT s", CLASSIFY_TX_KEEPS},
        {"RELEASE s", CLASSIFY_TX_KEEPS},
        {"COMMIT PREPARED 'x'", CLASSIFY_TX_NONE},
        {"PREPARE p AS SELECT 1", CLASSIFY_TX_NONE},
        {"SELECT 'BEGIN'", CLASSIFY_TX_NONE},
        {"BEGIN; COMMIT", CLASSIFY_TX_NONE},
        {"BEGIN garbage", CLASSIFY_TX_NONE},
        {"", CLASSIFY_TX_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(classify_transaction(cases[i].sql, strlen(cases[i].sql)) == cases[i].want,
              "classify_transaction: %s", cases[i].sql);
    char long_begin[2048];
    memset(long_begin, ' ', sizeof long_begin);
    memcpy(long_begin + sizeof long_begin - 6, "BEGIN", 6);
    CHECK(classify_transaction(long_begin, strlen(long_begin)) == CLASSIFY_TX_NONE,
          "classify_transaction: a text over 1 KiB is not parsed");
}

int main(void)
{
    test_transaction();
    test_may_write();
    test_may_name();
    test_writes();
    test_unqualified();
    test_refusals();
    test_other_statements();
    test_multi();
    test_limits();
    test_stack();
    return unit_done();
}
