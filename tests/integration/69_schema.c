/*
 * sync/schema against a real PostgreSQL: every Stripe collection becomes a typed table
 * with comments, applying the SQL again changes nothing, a field new upstream becomes a
 * column without losing rows, and a write that bypasses apigres is refused by the
 * database itself, for a granted role and a superuser alike.
 * Usage: 69_schema SERVICE_CONNINFO SUPERUSER_CONNINFO APP_CONNINFO
 */
#include <stdlib.h>
#include <string.h>

#include "sync/load.h"
#include "sync/schema.h"
#include "tests/integration/itest.h"
#include "upstream/stripe_collections.h"

static PGconn *connect_or_die(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("not ok - 69_schema: connect: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(PQexec(c, "SET client_min_messages = warning")); /* "already exists, skipping" */
    return c;
}

/* Runs sql; returns the SQLSTATE of its error, or "" on success. */
static const char *run(PGconn *c, const char *sql, char *message, size_t len)
{
    static char state[6];
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    state[0] = '\0';
    if (message)
        message[0] = '\0';
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(state, sizeof state, "%s", s ? s : "?????");
        if (message)
            snprintf(message, len, "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
    }
    PQclear(r);
    return state;
}

static int apply_all(PGconn *c, const provider_collection *extra)
{
    pgbuf sql;
    pgbuf_init(&sql, 8u << 20);
    schema_service_sql(&sql);
    int rc = 0;
    for (const provider_collection *const *p = stripe_collections; *p; p++)
        rc |= schema_collection_sql(&sql, "stripe", *p);
    if (extra)
        rc |= schema_collection_sql(&sql, "stripe", extra);
    pgbuf_put_byte(&sql, 0);
    char msg[512];
    const char *state = rc ? "local" : run(c, sql.data, msg, sizeof msg);
    if (state[0])
        printf("# applying the schema: %s %s\n", state, msg);
    pgbuf_free(&sql);
    return state[0] ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s SERVICE SUPERUSER APP\n", argv[0]);
        return 2;
    }
    itest_label = "69_schema";
    PGconn *svc = connect_or_die(argv[1]);
    PGconn *su = connect_or_die(argv[2]);
    PGconn *app = connect_or_die(argv[3]);

    check(apply_all(svc, NULL) == 0, "the service role creates every Stripe collection's table");
    int ncoll = 0;
    for (const provider_collection *const *p = stripe_collections; *p; p++)
        ncoll++;
    char want[64];
    snprintf(want, sizeof want, "%d", ncoll);
    check(strcmp(itest_value(svc, "SELECT count(*) FROM pg_tables WHERE schemaname = 'stripe' "
                            "AND tableowner = 'apigres_service'"), want) == 0,
          "%s tables in schema stripe, owned by the service role", want);
    const char *cols = itest_value(svc, "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_name) "
                                  "FROM information_schema.columns WHERE table_schema = 'stripe' AND table_name = 'customer' "
                                  "AND column_name IN ('id', 'email', 'balance', 'created', 'livemode', 'metadata', "
                                  "'_apigres_synced_at')");
    check(strcmp(cols, "_apigres_synced_at timestamp with time zone, balance bigint, created timestamp with time zone, "
                       "email text, id text, livemode boolean, metadata jsonb") == 0,
          "customer columns are typed from the spec: %s", cols);
    check(strcmp(itest_value(svc, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'stripe.customer'::regclass AND i.indisprimary"),
                 "id") == 0,
          "id is the primary key");
    const char *comment = itest_value(svc, "SELECT col_description('stripe.customer'::regclass, "
                                     "(SELECT attnum FROM pg_attribute WHERE attrelid = 'stripe.customer'::regclass "
                                     "AND attname = 'email'))");
    check(strstr(comment, "email") != NULL || strstr(comment, "Email") != NULL,
          "columns carry the API's description: %.80s", comment);
    check(strcmp(itest_value(svc, "SELECT obj_description('stripe.price'::regclass, 'pg_class') IS NOT NULL"), "t") == 0,
          "tables carry the API's description");

    check(strcmp(run(svc, "INSERT INTO stripe.customer (id, email, metadata) VALUES "
                          "('cus_1', 'a@b.co', '{\"k\": \"v\"}')", NULL, 0), "") == 0,
          "the owner (the service role) writes a row");
    char before[64];
    snprintf(before, sizeof before, "%s", itest_value(svc, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                                                     "'stripe.customer'::regclass AND attnum > 0 AND NOT attisdropped"));
    check(apply_all(svc, NULL) == 0 &&
              strcmp(itest_value(svc, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'stripe.customer'::regclass "
                                "AND attnum > 0 AND NOT attisdropped"), before) == 0,
          "applying it again changes nothing (%s columns)", before);

    /* a field that appeared upstream: the same collection with one more field */
    provider_collection grown = stripe_customer;
    provider_field *fields = calloc((size_t)grown.nfields + 1, sizeof *fields);
    memcpy(fields, grown.fields, sizeof *fields * (size_t)grown.nfields);
    fields[grown.nfields] = (provider_field){.name = "Loyalty_Tier", .type = FIELD_TEXT,
                                             .description = "It's new: \"quotes\" and \\backslashes\\"};
    grown.fields = fields;
    grown.nfields++;
    pgbuf one;
    pgbuf_init(&one, 8u << 20);
    schema_collection_sql(&one, "stripe", &grown);
    pgbuf_put_byte(&one, 0);
    char msg[512];
    const char *st = run(svc, one.data, msg, sizeof msg);
    check(st[0] == '\0' && strcmp(itest_value(svc, "SELECT email || ' ' || coalesce(loyalty_tier, 'null') FROM stripe.customer "
                                             "WHERE id = 'cus_1'"), "a@b.co null") == 0,
          "a new upstream field becomes a column; the rows stay %s", msg);
    check(strcmp(itest_value(svc, "SELECT col_description('stripe.customer'::regclass, (SELECT attnum FROM pg_attribute "
                            "WHERE attrelid = 'stripe.customer'::regclass AND attname = 'loyalty_tier'))"),
                 "It's new: \"quotes\" and \\backslashes\\") == 0,
          "descriptions are quoted faithfully");
    pgbuf_free(&one);
    free(fields);

    /* writes around the proxy */
    run(svc, "GRANT USAGE ON SCHEMA stripe TO PUBLIC; GRANT ALL ON ALL TABLES IN SCHEMA stripe TO PUBLIC", NULL, 0);
    static const char *const bypass[] = {
        "INSERT INTO stripe.customer (id, email) VALUES ('cus_2', 'x@y.co')",
        "UPDATE stripe.customer SET email = 'evil@example.com' WHERE id = 'cus_1'",
        "DELETE FROM stripe.customer WHERE id = 'cus_1'",
        "TRUNCATE stripe.customer",
    };
    PGconn *who[] = {app, su};
    const char *names[] = {"a role with every privilege", "a superuser"};
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < sizeof bypass / sizeof bypass[0]; i++) {
            st = run(who[w], bypass[i], msg, sizeof msg);
            check(strcmp(st, "42501") == 0 && strstr(msg, "only through apigres"),
                  "%s is refused for %s: %s %s", strtok(strdupa(bypass[i]), " "), names[w], st, msg);
        }
    check(strcmp(itest_value(svc, "SELECT count(*) || ' ' || min(email) FROM stripe.customer"), "1 a@b.co") == 0,
          "the mirror is unchanged");
    check(strcmp(itest_value(app, "SELECT email FROM stripe.customer WHERE id = 'cus_1'"), "a@b.co") == 0,
          "reading stays an ordinary grant");

    /* in a transaction the write itself passes and its COMMIT is refused, with everything
     * the transaction did */
    check(strcmp(run(app, "BEGIN; UPDATE stripe.customer SET email = 'later@example.com' WHERE id = 'cus_1'",
                     msg, sizeof msg), "") == 0 &&
              strcmp(itest_value(app, "SELECT email FROM stripe.customer WHERE id = 'cus_1'"), "later@example.com") == 0,
          "a direct UPDATE in a transaction runs (its own transaction sees it) %s", msg);
    st = run(app, "COMMIT", msg, sizeof msg);
    check(strcmp(st, "42501") == 0 && strstr(msg, "cannot update stripe.customer: it mirrors an API"),
          "... and its COMMIT is refused: %s %s", st, msg);
    check(strcmp(itest_value(svc, "SELECT email FROM stripe.customer WHERE id = 'cus_1'"), "a@b.co") == 0,
          "... and nothing of it stays");
    /* SET CONSTRAINTS ALL IMMEDIATE brings the refusal forward, it does not skip it */
    st = run(app, "BEGIN; SET CONSTRAINTS ALL IMMEDIATE; DELETE FROM stripe.customer WHERE id = 'cus_1'", msg, sizeof msg);
    check(strcmp(st, "42501") == 0 && strstr(msg, "cannot delete stripe.customer"),
          "with constraints IMMEDIATE the statement itself is refused: %s %s", st, msg);
    run(app, "ROLLBACK", NULL, 0);
    /* a write that reaches no row changes nothing: nothing to refuse */
    check(strcmp(run(app, "UPDATE stripe.customer SET email = 'x' WHERE id = 'cus_none'", msg, sizeof msg), "") == 0,
          "a direct UPDATE of no row passes %s", msg);

    /* the statement-level guards of earlier versions go when the schema is applied */
    char guard_oid[32];
    snprintf(guard_oid, sizeof guard_oid, "%s",
             itest_value(svc, "SELECT oid FROM pg_trigger WHERE tgname = 'apigres_guard' AND tgrelid = 'stripe.customer'::regclass"));
    check(strcmp(run(svc, "CREATE TRIGGER apigres_guard_write AFTER INSERT OR UPDATE ON stripe.customer FOR EACH STATEMENT "
                          "EXECUTE FUNCTION apigres.guard_synced_table(); CREATE TRIGGER apigres_guard_delete AFTER DELETE "
                          "ON stripe.customer FOR EACH STATEMENT EXECUTE FUNCTION apigres.guard_synced_table()",
                     msg, sizeof msg), "") == 0 && apply_all(svc, NULL) == 0,
          "an earlier version's guards, then the schema applied again %s", msg);

    /* the owner's own rows skip the guard's call; the trigger names the owner */
    const char *defs = itest_value(svc, "SELECT string_agg(tgname || ': ' || substring(pg_get_triggerdef(oid) FROM "
                                   "'DEFERRABLE.* WHEN [(][(][^)]*[)][)]'), '; ' ORDER BY tgname) FROM pg_trigger "
                                   "WHERE tgrelid = 'stripe.customer'::regclass AND tgname LIKE 'apigres_guard%' "
                                   "AND tgname <> 'apigres_guard_truncate'");
    check(strcmp(defs, "apigres_guard: DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((CURRENT_USER <> "
                       "'apigres_service'::name))") == 0,
          "one guard, deferred, on each row, skipping its owner: %s", defs);
    check(strcmp(itest_value(svc, "SELECT oid FROM pg_trigger WHERE tgname = 'apigres_guard' AND "
                                 "tgrelid = 'stripe.customer'::regclass"), guard_oid) == 0,
          "applying the schema again kept the guard (no lock taken to drop it)");
    /* a new owner is named when the schema is applied again (apigres's next start); the
     * former owner is then refused like anyone else, even with every privilege granted */
    char app_user[64];
    snprintf(app_user, sizeof app_user, "%s", itest_value(app, "SELECT current_user"));
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER TABLE stripe.customer OWNER TO %s", app_user);
    check(strcmp(run(su, sql, msg, sizeof msg), "") == 0 && apply_all(su, NULL) == 0, "the table changes owner %s", msg);
    st = run(svc, "UPDATE stripe.customer SET email = 'former@example.com' WHERE id = 'cus_1'", msg, sizeof msg);
    check(strcmp(st, "42501") == 0 && strstr(msg, "only through apigres"),
          "the former owner is refused after the schema is applied again: %s %s", st, msg);
    check(strcmp(run(app, "UPDATE stripe.customer SET email = 'a@b.co' WHERE id = 'cus_1'", msg, sizeof msg), "") == 0,
          "the new owner writes %s", msg);
    check(strcmp(run(su, "ALTER TABLE stripe.customer OWNER TO apigres_service", msg, sizeof msg), "") == 0 &&
              apply_all(svc, NULL) == 0,
          "the service role owns it again %s", msg);

    /* the load statements: versions order the writes, whoever makes them */
    pgbuf up, del;
    pgbuf_init(&up, 4u << 20);
    pgbuf_init(&del, 1u << 16);
    check(load_upsert_sql(&up, "stripe", &stripe_customer) == 0 && load_delete_sql(&del, "stripe", &stripe_customer) == 0,
          "the upsert and delete statements are generated");
    struct {
        const char *json, *version, *want, *what;
    } steps[] = {
        {"[{\"id\": \"cus_v\", \"email\": \"v200@x.co\", \"created\": 1700000000, \"livemode\": false, "
         "\"metadata\": {\"a\": \"b\"}, \"address\": null}]", "200", "v200@x.co 2023-11-14 22:13:20+00 false {\"a\": \"b\"} null",
         "a record is loaded with its types converted (unix time, boolean, jsonb, JSON null as NULL)"},
        {"[{\"id\": \"cus_v\", \"email\": \"v100@x.co\"}]", "100", "v200@x.co",
         "an older version does not overwrite a newer one"},
        {"[{\"id\": \"cus_v\", \"email\": \"v200b@x.co\"}]", "200", "v200b@x.co",
         "the same version, applied later, wins"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const char *params[] = {steps[i].json, steps[i].version};
        PGresult *r = PQexecParams(svc, up.data, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            printf("# %s", PQerrorMessage(svc));
        PQclear(r);
        const char *got = itest_value(svc, i == 0 ? "SELECT email || ' ' || created || ' ' || livemode || ' ' || metadata::text || ' ' "
                                              "|| coalesce(address::text, 'null') FROM stripe.customer WHERE id = 'cus_v'"
                                            : "SELECT email FROM stripe.customer WHERE id = 'cus_v'");
        check(strcmp(got, steps[i].want) == 0, "%s: %s", steps[i].what, got);
    }
    const char *old_delete[] = {"cus_v", "150"};
    PQclear(PQexecParams(svc, del.data, 2, NULL, old_delete, NULL, NULL, 0));
    check(strcmp(itest_value(svc, "SELECT count(*) FROM stripe.customer WHERE id = 'cus_v'"), "1") == 0,
          "a deletion older than the row's version does not remove it");
    const char *new_delete[] = {"cus_v", "250"};
    PQclear(PQexecParams(svc, del.data, 2, NULL, new_delete, NULL, NULL, 0));
    check(strcmp(itest_value(svc, "SELECT count(*) FROM stripe.customer WHERE id = 'cus_v'"), "0") == 0,
          "a newer deletion removes it");
    pgbuf_free(&up);
    pgbuf_free(&del);

    PQfinish(svc);
    PQfinish(su);
    PQfinish(app);
    printf("# %d checks, %d failed\n", itest_checks, itest_failures);
    return itest_failures ? 1 : 0;
}
