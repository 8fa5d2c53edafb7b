/* schema: see schema.h. */
#include "sync/schema.h"

#include <stdio.h>
#include <string.h>

int schema_column_name(const char *field, char *out, size_t outlen)
{
    size_t n = strlen(field);
    if (n == 0 || n > 63 || n >= outlen)
        return -1;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)(field[i] >= 'A' && field[i] <= 'Z' ? field[i] + ('a' - 'A') : field[i]);
    return 0;
}

static void put(pgbuf *out, const char *s) { pgbuf_put(out, s, strlen(s)); }

void schema_quote_ident(pgbuf *out, const char *name)
{
    pgbuf_put_byte(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            pgbuf_put_byte(out, '"');
        pgbuf_put_byte(out, (uint8_t)*p);
    }
    pgbuf_put_byte(out, '"');
}

void schema_quote_literal(pgbuf *out, const char *text)
{
    put(out, "E'");
    for (const char *p = text; *p; p++) {
        if (*p == '\'' || *p == '\\')
            pgbuf_put_byte(out, (uint8_t)*p);
        pgbuf_put_byte(out, (uint8_t)*p);
    }
    pgbuf_put_byte(out, '\'');
}

void schema_quote_table(pgbuf *out, const char *schema, const char *table)
{
    schema_quote_ident(out, schema);
    pgbuf_put_byte(out, '.');
    schema_quote_ident(out, table);
}

void schema_tombstone_table(pgbuf *out, const char *schema, const char *table)
{
    char tbl[200];
    snprintf(tbl, sizeof tbl, "%s.%s", schema, table);
    schema_quote_literal(out, tbl);
}

int schema_id_field(const provider_collection *c)
{
    char col[64];
    for (int i = 0; i < c->nfields; i++)
        if (schema_column_name(c->fields[i].name, col, sizeof col) == 0 && strcmp(col, "id") == 0)
            return i;
    return -1;
}

void schema_service_sql(pgbuf *out)
{
    /* current_user inside the trigger is whoever runs the statement (or the definer of a
     * SECURITY DEFINER function that does): only the table's owner passes.
     *
     * The guard is a deferred constraint trigger (schema_collection_sql): a write of any
     * other role is refused at COMMIT, and its whole transaction with it. The write path's
     * probe runs the very write in a savepoint and rolls it back, which drops the guard's
     * pending events with it: the probe meets every check Postgres makes (privileges,
     * row-level security, constraints) and no error, so none lands in the server's log. */
    put(out,
        "CREATE SCHEMA IF NOT EXISTS " SCHEMA_SERVICE ";\n"
        "CREATE OR REPLACE FUNCTION " SCHEMA_SERVICE ".guard_synced_table() RETURNS trigger\n"
        "LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $guard$\n"
        "BEGIN\n"
        "  IF current_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN\n"
        "    RAISE EXCEPTION 'cannot % %.%: it mirrors an API and is written only through apigres',\n"
        "      lower(TG_OP), TG_TABLE_SCHEMA, TG_TABLE_NAME\n"
        "      USING ERRCODE = '42501',\n"
        "            HINT = 'Connect through apigres: INSERT, UPDATE and DELETE on synced tables become API calls.';\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END\n"
        "$guard$;\n"
        /* records the write path deleted: the sync's feed may still hold older versions of
         * them (an event from before the delete) and must not bring them back */
        "CREATE TABLE IF NOT EXISTS " SCHEMA_SERVICE ".tombstones (tbl text NOT NULL, id text NOT NULL,\n"
        "  version timestamptz NOT NULL, PRIMARY KEY (tbl, id));\n"
        /* the syncs' transactions look for tombstones newer than what they wrote (load.h) */
        "CREATE INDEX IF NOT EXISTS tombstones_version ON " SCHEMA_SERVICE ".tombstones (tbl, version);\n"
        /* the mirror functions live here and every client's session calls them (they
         * check who may; sync_state and the rest have no grants to PUBLIC) */
        "GRANT USAGE ON SCHEMA " SCHEMA_SERVICE " TO PUBLIC;\n");
}

int schema_collection_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    char col[64];
    for (int i = 0; i < c->nfields; i++)
        if (schema_column_name(c->fields[i].name, col, sizeof col) < 0)
            return -1;
    if (schema_column_name(c->name, col, sizeof col) < 0 || strcmp(col, c->name) != 0)
        return -1;

    put(out, "CREATE SCHEMA IF NOT EXISTS ");
    schema_quote_ident(out, schema);
    put(out, ";\nCREATE TABLE IF NOT EXISTS ");
    schema_quote_table(out, schema, c->name);
    put(out, " (id text PRIMARY KEY, " SCHEMA_COL_UPDATED_AT " timestamptz, " SCHEMA_COL_SYNCED_AT
             " timestamptz NOT NULL DEFAULT now());\n");

    /* one ALTER for every field: a field that is new upstream becomes a column (and a
     * table made before, by an older version or by hand, gets the metadata columns) */
    put(out, "ALTER TABLE ");
    schema_quote_table(out, schema, c->name);
    put(out, "\n  ADD COLUMN IF NOT EXISTS " SCHEMA_COL_UPDATED_AT " timestamptz,\n  ADD COLUMN IF NOT EXISTS "
             SCHEMA_COL_SYNCED_AT " timestamptz NOT NULL DEFAULT now()");
    for (int i = 0; i < c->nfields; i++) {
        schema_column_name(c->fields[i].name, col, sizeof col);
        if (strcmp(col, "id") == 0)
            continue;
        put(out, ",\n  ADD COLUMN IF NOT EXISTS ");
        schema_quote_ident(out, col);
        pgbuf_put_byte(out, ' ');
        put(out, field_type_sql(c->fields[i].type));
    }
    put(out, ";\n");

    if (c->description) {
        put(out, "COMMENT ON TABLE ");
        schema_quote_table(out, schema, c->name);
        put(out, " IS ");
        schema_quote_literal(out, c->description);
        put(out, ";\n");
    }
    for (int i = 0; i < c->nfields; i++) {
        if (!c->fields[i].description || !c->fields[i].description[0])
            continue;
        schema_column_name(c->fields[i].name, col, sizeof col);
        put(out, "COMMENT ON COLUMN ");
        schema_quote_table(out, schema, c->name);
        pgbuf_put_byte(out, '.');
        schema_quote_ident(out, col);
        put(out, " IS ");
        schema_quote_literal(out, c->fields[i].description);
        put(out, ";\n");
    }
    put(out, "COMMENT ON COLUMN ");
    schema_quote_table(out, schema, c->name);
    put(out, "." SCHEMA_COL_UPDATED_AT " IS 'apigres: the upstream version this row reflects';\n"
             "COMMENT ON COLUMN ");
    schema_quote_table(out, schema, c->name);
    put(out, "." SCHEMA_COL_SYNCED_AT " IS 'apigres: when this row was last written from the API';\n");

    /* The guard (see schema_service_sql) is one constraint trigger per table, deferred to
     * COMMIT, named SCHEMA_GUARD so that the write path's probe can defer it by name even in
     * a transaction that made its constraints IMMEDIATE. The guard's own test, current_user
     * against the owner, is also the trigger's WHEN, with the owner's name as it is when the
     * schema is applied; a constraint trigger evaluates its WHEN as each row is written, so
     * the owner's rows (each sync page, each mirror call) queue nothing, and anyone else's
     * reach the function at COMMIT, which reads the owner afresh. After a change of owner
     * the former owner skips the guard until the schema is applied again (at apigres's next
     * start). The trigger is made again only when it is missing or names another owner:
     * dropping one locks the table against its readers. */
    put(out, "DO $apigres$\nDECLARE t regclass := ");
    pgbuf quoted;
    pgbuf_init(&quoted, 1024);
    schema_quote_table(&quoted, schema, c->name);
    pgbuf_put_byte(&quoted, 0);
    bool fits = !quoted.failed && !strstr(quoted.data, "$apigres$"); /* it sits inside the DO's quotes */
    schema_quote_literal(out, fits ? quoted.data : "");
    pgbuf_free(&quoted);
    if (!fits)
        return -1;
    put(out, ";\n  owner name := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = t);\n"
             "BEGIN\n"
             /* the statement-level guards of earlier versions */
             "  IF EXISTS (SELECT FROM pg_trigger WHERE tgrelid = t AND tgname IN ('apigres_guard_write', 'apigres_guard_delete')) THEN\n"
             "    EXECUTE format('DROP TRIGGER IF EXISTS apigres_guard_write ON %s', t);\n"
             "    EXECUTE format('DROP TRIGGER IF EXISTS apigres_guard_delete ON %s', t);\n"
             "  END IF;\n"
             /* tgtype 29: AFTER, FOR EACH ROW, INSERT, UPDATE and DELETE */
             "  IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = t AND tgname = '" SCHEMA_GUARD "'\n"
             "      AND tgconstraint <> 0 AND tgdeferrable AND tginitdeferred AND tgtype = 29\n"
             "      AND strpos(pg_get_triggerdef(oid), format('WHEN ((CURRENT_USER <> %L::name))', owner)) > 0) THEN\n"
             "    EXECUTE format('DROP TRIGGER IF EXISTS " SCHEMA_GUARD " ON %s', t);\n"
             "    EXECUTE format('CREATE CONSTRAINT TRIGGER " SCHEMA_GUARD " AFTER INSERT OR UPDATE OR DELETE ON %s '\n"
             "      'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (current_user <> %L) '\n"
             "      'EXECUTE FUNCTION " SCHEMA_SERVICE ".guard_synced_table()', t, owner);\n"
             "  END IF;\n"
             "END\n$apigres$;\n"
             "CREATE OR REPLACE TRIGGER apigres_guard_truncate BEFORE TRUNCATE ON ");
    schema_quote_table(out, schema, c->name);
    put(out, " FOR EACH STATEMENT EXECUTE FUNCTION " SCHEMA_SERVICE ".guard_synced_table();\n");
    return out->failed ? -1 : 0;
}
