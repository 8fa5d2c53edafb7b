/* Unit tests for sync/schema: column names, quoting, and what a collection's SQL holds. */
#include <string.h>

#include "sync/schema.h"
#include "tests/unit/unit.h"
#include "upstream/stripe_collections.h"

static const char *sql_of(pgbuf *b)
{
    pgbuf_put_byte(b, 0);
    return b->failed ? "" : b->data;
}

int main(void)
{
    char col[64];
    CHECK(schema_column_name("Email", col, sizeof col) == 0 && strcmp(col, "email") == 0,
          "a Salesforce field name becomes a lower-case column");
    CHECK(schema_column_name("Invoice_Total__c", col, sizeof col) == 0 && strcmp(col, "invoice_total__c") == 0,
          "custom fields keep their __c");
    char long_name[80];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    CHECK(schema_column_name(long_name, col, sizeof col) < 0, "a 64-byte name is refused, not truncated");
    CHECK(schema_column_name("", col, sizeof col) < 0, "an empty name is refused");

    pgbuf b;
    pgbuf_init(&b, 1 << 20);
    schema_quote_ident(&b, "we\"ird");
    CHECK(strcmp(sql_of(&b), "\"we\"\"ird\"") == 0, "identifiers are quoted with embedded quotes doubled");
    pgbuf_reset(&b);
    schema_quote_literal(&b, "it's a \\ test");
    CHECK(strcmp(sql_of(&b), "E'it''s a \\\\ test'") == 0, "literals escape quotes and backslashes");
    pgbuf_reset(&b);

    CHECK(schema_collection_sql(&b, "stripe", &stripe_customer) == 0, "customer's SQL is generated");
    const char *sql = sql_of(&b);
    CHECK(strstr(sql, "CREATE TABLE IF NOT EXISTS \"stripe\".\"customer\" (id text PRIMARY KEY") != NULL,
          "a table with id as its primary key");
    CHECK(strstr(sql, "ADD COLUMN IF NOT EXISTS \"email\" text") != NULL &&
              strstr(sql, "ADD COLUMN IF NOT EXISTS \"metadata\" jsonb") != NULL &&
              strstr(sql, "ADD COLUMN IF NOT EXISTS \"id\"") == NULL,
          "typed columns added if missing, id only once");
    CHECK(strstr(sql, "COMMENT ON COLUMN \"stripe\".\"customer\".\"email\" IS E'") != NULL,
          "columns get the API's descriptions");
    CHECK(strstr(sql, "DECLARE t regclass := E'\"stripe\".\"customer\"'") != NULL &&
              strstr(sql, "CREATE CONSTRAINT TRIGGER apigres_guard AFTER INSERT OR UPDATE OR DELETE ON %s '\n"
                          "      'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (current_user <> %L) '") != NULL &&
              strstr(sql, "tgname IN ('apigres_guard_write', 'apigres_guard_delete')") != NULL &&
              strstr(sql, "BEFORE TRUNCATE ON \"stripe\".\"customer\"") != NULL &&
              strstr(sql, "DROP TRIGGER IF EXISTS apigres_guard ON \"stripe\"") == NULL,
          "the guard is a deferred constraint trigger on every row written (a probe rolled back to its savepoint "
          "drops its events), the owner's rows skip it, the statement guards of earlier versions go, TRUNCATE is "
          "refused before it runs, and the table is not locked to drop a guard that is already right");
    pgbuf_reset(&b);

    provider_field bad_fields[] = {{.name = "ok", .type = FIELD_TEXT}, {.name = "", .type = FIELD_TEXT}};
    provider_collection bad = {.provider = "x", .name = "thing", .fields = bad_fields, .nfields = 2};
    CHECK(schema_collection_sql(&b, "x", &bad) < 0 && b.len == 0, "a field without a usable name: nothing emitted");
    provider_collection upper = {.provider = "x", .name = "Thing", .fields = bad_fields, .nfields = 1};
    CHECK(schema_collection_sql(&b, "x", &upper) < 0 && b.len == 0, "a collection name that is not lower case is refused");
    pgbuf_free(&b);
    return unit_done();
}
