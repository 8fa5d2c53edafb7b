/*
 * sync/copy_rows against a real PostgreSQL: a backfill page loaded with COPY gives the very
 * rows the JSON upsert of load.h gives, for every Stripe collection and values chosen to be
 * awkward (escapes, surrogate pairs, integers past a double's precision, nested JSON with
 * line breaks, null and missing fields, repeated keys); values the two would convert
 * differently are declined (left to the upsert); the tombstone statement removes only what
 * the loading transaction wrote; and a page whose record is already there is refused with
 * 23505, which is what sends it to the upsert.
 * Usage: 71_copy_rows SERVICE_CONNINFO
 */
#include <stdlib.h>
#include <string.h>

#include "sync/copy_rows.h"
#include "sync/load.h"
#include "sync/schema.h"
#include "tests/integration/itest.h"
#include "upstream/stripe_collections.h"

#define VERSION 1764000000LL

static PGconn *db;

/* Runs sql; returns the SQLSTATE of its error, or "" on success. */
static const char *run(const char *sql)
{
    static char state[6];
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    state[0] = '\0';
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(state, sizeof state, "%s", s ? s : "?????");
        printf("# %s\n", PQresultErrorMessage(r));
    }
    PQclear(r);
    return state;
}

/* COPY of rows with statement copy; "" or the SQLSTATE of the refusal. */
static const char *copy_in(const char *copy, const pgbuf *rows)
{
    static char state[6];
    state[0] = '\0';
    PGresult *r = PQexec(db, copy);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        printf("# %s", PQresultErrorMessage(r));
        PQclear(r);
        return "?????";
    }
    PQclear(r);
    if (PQputCopyData(db, rows->data, (int)rows->len) != 1 || PQputCopyEnd(db, NULL) != 1)
        return "08006";
    while ((r = PQgetResult(db))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !state[0]) {
            const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(state, sizeof state, "%s", s ? s : "?????");
        }
        PQclear(r);
    }
    return state;
}

static const char *upsert(const char *schema, const provider_collection *c, const char *body)
{
    static char state[6];
    pgbuf sql;
    pgbuf_init(&sql, 1u << 20);
    load_upsert_list_sql(&sql, schema, c);
    char version[32];
    snprintf(version, sizeof version, "%lld", VERSION);
    const char *p[] = {body, version};
    PGresult *r = PQexecParams(db, sql.data, 2, NULL, p, NULL, NULL, 0);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s", PQresultStatus(r) == PGRES_COMMAND_OK ? "" : s ? s : "?????");
    if (state[0])
        printf("# %s", PQresultErrorMessage(r));
    PQclear(r);
    pgbuf_free(&sql);
    return state;
}

static void put(pgbuf *b, const char *s) { pgbuf_put(b, s, strlen(s)); }

/* A record of c: every field with the value of its type from values[], as JSON text. */
typedef struct kind_values {
    const char *text, *bigint, *numeric, *boolean, *timestamptz, *jsonb;
} kind_values;

static void put_record(pgbuf *b, const provider_collection *c, const char *id, const kind_values *v, bool pretty)
{
    put(b, pretty ? "{\n    \"id\": " : "{\"id\":");
    put(b, id);
    for (int i = 0; i < c->nfields; i++) {
        const provider_field *f = &c->fields[i];
        const char *x = f->type == FIELD_TEXT          ? v->text
                        : f->type == FIELD_BIGINT      ? v->bigint
                        : f->type == FIELD_NUMERIC     ? v->numeric
                        : f->type == FIELD_BOOLEAN     ? v->boolean
                        : f->type == FIELD_TIMESTAMPTZ ? v->timestamptz
                        : f->type == FIELD_JSONB       ? v->jsonb
                                                       : NULL;
        if (strcmp(f->name, "id") == 0 || !x)
            continue;
        put(b, pretty ? ",\n    \"" : ",\"");
        put(b, f->name);
        put(b, pretty ? "\": " : "\":");
        put(b, x);
    }
    put(b, pretty ? "\n  }" : "}");
}

static const kind_values awkward = {
    .text = "\"tab\\there \\\"q\\\" back\\\\slash\\nnew line\\r\\n\\/ \\b\\f "
            "\\u00e9\\u20AC \\ud83d\\ude00 raw \xc3\xa9 \\\\N \\\\t\"",
    .bigint = "9007199254740993",
    .numeric = "-12.3400",
    .boolean = "true",
    .timestamptz = "1700000000",
    .jsonb = "{\n      \"a\": [1, 2.50, 1e3, \"x\\ty\\n\\\\\", null, {\"b\": \"\\u00e9\\\\\"}],\n      \"c\": true,"
             " \"c\": false\n    }",
};
static const kind_values nulls = {"null", "null", "null", "null", "null", "null"};
static const kind_values others = {
    .text = "\"\"", .bigint = "-5", .numeric = "1E-3", .boolean = "false", .timestamptz = "-86400", .jsonb = "\"s\"",
};

/* For every Stripe collection: the same page through COPY and through the upsert. */
static void same_rows_for(const provider_collection *c)
{
    pgbuf body, rows, copy;
    pgbuf_init(&body, 1u << 20);
    pgbuf_init(&rows, 1u << 20);
    pgbuf_init(&copy, 1u << 16);
    put(&body, "{\n  \"object\": \"list\",\n  \"data\": [\n  ");
    put_record(&body, c, "\"x_1\\t\\u00e9\"", &awkward, true);
    put(&body, ",\n  ");
    put_record(&body, c, "\"x_2\"", &nulls, false);
    put(&body, ",\n  {\"id\": \"x_3\", \"unknown\": {\"deep\": [[[]]]}}, ");
    put_record(&body, c, "\"x_4\"", &others, false);
    /* a repeated key: jsonb keeps the last */
    put(&body, ",\n  {\"id\": \"x_5\", \"id\": \"x_6\"}\n  ],\n  \"has_more\": false,\n  \"url\": \"/v1/x\"\n}");
    pgbuf_put_byte(&body, 0);

    int n = copy_rows_of_list(&rows, body.data, body.len - 1, c, VERSION);
    check(n == 5, "%s: the page's 5 records become COPY rows (%d)", c->name, n);
    copy_rows_statement(&copy, "via_copy", c);
    const char *st = n == 5 ? copy_in(copy.data, &rows) : "skip";
    check(!st[0], "%s: COPY loads them (%s)", c->name, st);
    st = upsert("via_upsert", c, body.data);
    check(!st[0], "%s: the upsert loads the same page (%s)", c->name, st);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM via_copy.%s) || ' ' || count(*) FROM ("
             "(SELECT to_jsonb(t) - '_apigres_synced_at' FROM via_copy.%s t EXCEPT ALL "
             " SELECT to_jsonb(t) - '_apigres_synced_at' FROM via_upsert.%s t) UNION ALL "
             "(SELECT to_jsonb(t) - '_apigres_synced_at' FROM via_upsert.%s t EXCEPT ALL "
             " SELECT to_jsonb(t) - '_apigres_synced_at' FROM via_copy.%s t)) d",
             c->name, c->name, c->name, c->name, c->name);
    const char *diff = itest_value(db, sql);
    check(strcmp(diff, "5 0") == 0, "%s: COPY and the upsert give the same rows (rows, differing: %s)", c->name,
          diff);
    pgbuf_free(&body);
    pgbuf_free(&rows);
    pgbuf_free(&copy);
}

/* A customer page holding one member that COPY must not take. */
static void declined(const char *member, const char *why)
{
    char body[4096];
    snprintf(body, sizeof body, "{\"object\": \"list\", \"data\": [{\"id\": \"cus_ok\"}, {%s}], \"has_more\": false}",
             member);
    pgbuf rows;
    pgbuf_init(&rows, 1u << 20);
    int n = copy_rows_of_list(&rows, body, strlen(body), &stripe_customer, VERSION);
    check(n == -1, "declined (left to the upsert): %s (%d)", why, n);
    pgbuf_free(&rows);
}

static void tombstones(void)
{
    /* cus_old was there before; the page brings cus_t1 (deleted by the write path at a
     * newer version than the page's) and cus_t2 (deleted at an older one, then created
     * again upstream) */
    run("INSERT INTO via_copy.customer (id, _apigres_updated_at) VALUES ('cus_old', to_timestamp(1))");
    run("INSERT INTO apigres.tombstones VALUES ('via_copy.customer', 'cus_old', to_timestamp(2000000000)), "
        "('via_copy.customer', 'cus_t1', to_timestamp(1764000000)), "
        "('via_copy.customer', 'cus_t2', to_timestamp(1763999999))");
    const char *body = "{\"data\": [{\"id\": \"cus_t1\"}, {\"id\": \"cus_t2\"}]}";
    pgbuf rows, copy, del;
    pgbuf_init(&rows, 1u << 20);
    pgbuf_init(&copy, 1u << 16);
    pgbuf_init(&del, 1u << 16);
    check(copy_rows_of_list(&rows, body, strlen(body), &stripe_customer, VERSION) == 2, "tombstones: 2 rows");
    copy_rows_statement(&copy, "via_copy", &stripe_customer);
    char version[32];
    snprintf(version, sizeof version, "%lld", VERSION);
    load_tombstoned_sql(&del, "via_copy", &stripe_customer, version);
    run("BEGIN");
    const char *st = copy_in(copy.data, &rows);
    check(!st[0], "tombstones: COPY in a transaction (%s)", st);
    check(!run(del.data)[0], "tombstones: the tombstone statement runs");
    run("COMMIT");
    check(strcmp(itest_value(db, "SELECT string_agg(id, ',' ORDER BY id) FROM via_copy.customer WHERE id IN "
                       "('cus_old', 'cus_t1', 'cus_t2')"), "cus_old,cus_t2") == 0,
          "tombstones: the record deleted at a newer version stays out; an older deletion and a row the "
          "transaction did not write are untouched");

    /* a page whose record is already in the table */
    run("BEGIN");
    st = copy_in(copy.data, &rows);
    run("ROLLBACK");
    check(strcmp(st, "23505") == 0, "a page with a record already there is refused with 23505 (%s)", st);
    pgbuf_free(&rows);
    pgbuf_free(&copy);
    pgbuf_free(&del);
}

/* With many rows and old tombstones, the statement of a transaction that wrote two rows
 * (one of them deleted by the write path since, at a newer version) reaches them through
 * the recent tombstones and the table's key, not a scan of the whole table. */
static void tombstones_at_scale(void)
{
    run("INSERT INTO via_upsert.customer (id, _apigres_updated_at) "
        "SELECT 'cus_s' || i, to_timestamp(1) FROM generate_series(1, 20000) i");
    run("INSERT INTO apigres.tombstones SELECT 'via_upsert.customer', 'cus_gone' || i, to_timestamp(1000 + i) "
        "FROM generate_series(1, 5000) i");
    run("ANALYZE via_upsert.customer; ANALYZE apigres.tombstones");
    pgbuf del;
    pgbuf_init(&del, 1u << 16);
    char version[32], explain[1024] = "";
    snprintf(version, sizeof version, "%lld", VERSION);
    load_tombstoned_sql(&del, "via_upsert", &stripe_customer, version);
    run("BEGIN");
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE via_upsert.customer SET _apigres_updated_at = to_timestamp(%lld) "
                              "WHERE id IN ('cus_s1', 'cus_s2')", VERSION);
    run(sql);
    snprintf(sql, sizeof sql, "INSERT INTO apigres.tombstones VALUES ('via_upsert.customer', 'cus_s2', "
                              "to_timestamp(%lld))", VERSION + 5);
    run(sql);
    pgbuf ex;
    pgbuf_init(&ex, 1u << 16);
    pgbuf_put(&ex, "EXPLAIN (COSTS OFF) ", 20);
    pgbuf_put(&ex, del.data, strlen(del.data) + 1);
    PGresult *r = PQexec(db, ex.data);
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        size_t at = strlen(explain);
        snprintf(explain + at, sizeof explain - at, "# %s\n", PQgetvalue(r, i, 0));
    }
    PQclear(r);
    if (!check(strstr(explain, "tombstones_version") && !strstr(explain, "Seq Scan on customer"),
               "tombstones: with 20,000 rows and 5,000 older tombstones, no scan of the table"))
        printf("%s", explain);
    check(!run(del.data)[0], "tombstones: the statement runs at scale");
    check(strcmp(itest_value(db, "SELECT string_agg(id, ',') FROM via_upsert.customer WHERE id IN ('cus_s1', "
                                 "'cus_s2')"), "cus_s1") == 0,
          "tombstones: at scale, the row deleted at a newer version goes, the other stays");
    run("ROLLBACK");
    pgbuf_free(&ex);
    pgbuf_free(&del);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SERVICE\n", argv[0]);
        return 2;
    }
    itest_label = "71_copy_rows";
    db = PQconnectdb(argv[1]);
    if (PQstatus(db) != CONNECTION_OK) {
        printf("not ok - 71_copy_rows: connect: %s", PQerrorMessage(db));
        return 1;
    }
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    pgbuf sql;
    pgbuf_init(&sql, 8u << 20);
    schema_service_sql(&sql);
    int rc = 0;
    for (const provider_collection *const *p = stripe_collections; *p; p++)
        rc |= schema_collection_sql(&sql, "via_copy", *p) | schema_collection_sql(&sql, "via_upsert", *p);
    pgbuf_put_byte(&sql, 0);
    if (!check(rc == 0 && !run(sql.data)[0], "the tables of every Stripe collection, twice"))
        return 1;
    pgbuf_free(&sql);
    /* COPY's input must not depend on the session's settings */
    run("SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Pacific/Chatham'");

    for (const provider_collection *const *p = stripe_collections; *p; p++)
        same_rows_for(*p);

    declined("\"id\": \"cus_1\", \"email\": 5", "a number for a text column");
    declined("\"id\": \"cus_1\", \"livemode\": \"true\"", "a string for a boolean");
    declined("\"id\": \"cus_1\", \"balance\": 1.5", "a fraction for a bigint");
    declined("\"id\": \"cus_1\", \"created\": 1.5", "a fractional unix time");
    declined("\"id\": \"cus_1\", \"created\": 1000000000000000", "a unix time past the year 9999");
    declined("\"id\": \"cus_1\", \"name\": \"a\\u0000b\"", "\\u0000, which jsonb refuses");
    declined("\"id\": \"cus_1\", \"name\": \"\\ud800x\"", "a lone surrogate");
    declined("\"id\": \"cus_1\", \"name\": \"\\x\"", "an escape JSON does not have");
    declined("\"id\": \"cus_1\", \"em\\u0061il\": \"a@b.co\"", "an escaped key");
    declined("\"id\": 7", "an id that is not a string");
    declined("\"name\": \"no id\"", "a record without an id");
    char deep[400] = "\"id\": \"cus_1\", \"metadata\": ";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    declined(deep, "nesting deeper than 64");
    const char *bad[] = {"{\"object\": \"list\"}",
                         "{\"data\": [{\"id\": \"cus_1\"}]",
                         "{\"data\": [{\"id\": \"cus_1\"}]} x",
                         "{\"data\": [], \"data\": [{\"id\": \"cus_1\"}]}",
                         "[]",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pgbuf rows;
        pgbuf_init(&rows, 1u << 20);
        check(copy_rows_of_list(&rows, bad[i], strlen(bad[i]), &stripe_customer, VERSION) == -1,
              "declined: a body that is not one whole list: '%s'", bad[i]);
        pgbuf_free(&rows);
    }
    tombstones();
    tombstones_at_scale();
    PQfinish(db);
    printf("# 71_copy_rows: %d checks, %d failed\n", itest_checks, itest_failures);
    return itest_failures ? 1 : 0;
}
