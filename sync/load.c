/* load: see load.h. */
#include "sync/load.h"

#include <stdio.h>
#include <string.h>

#include "sync/schema.h"

static void put(pgbuf *out, const char *s) { pgbuf_put(out, s, strlen(s)); }

/* r->>'Field' (or r->'Field') converted to the column's type. */
static void put_value(pgbuf *out, const provider_collection *c, const provider_field *f)
{
    bool unix_times = strcmp(c->provider, "stripe") == 0;
    if (f->type == FIELD_JSONB) {
        put(out, "nullif(r->");
        schema_quote_literal(out, f->name);
        put(out, ", 'null'::jsonb)");
        return;
    }
    put(out, f->type == FIELD_TIMESTAMPTZ && unix_times ? "to_timestamp((r->>" : "(r->>");
    schema_quote_literal(out, f->name);
    switch (f->type) {
    case FIELD_TEXT:
        put(out, ")");
        break;
    case FIELD_TIMESTAMPTZ:
        put(out, unix_times ? ")::double precision)" : ")::timestamptz");
        break;
    default:
        put(out, ")::");
        put(out, field_type_sql(f->type));
        break;
    }
}

/* The version a record brings: its own version field, or the caller's ($2, unix seconds). */
static void put_version(pgbuf *out, const provider_collection *c)
{
    if (c->version_field) {
        put(out, "coalesce((r->>");
        schema_quote_literal(out, c->version_field);
        put(out, ")::timestamptz, to_timestamp($2::double precision))");
    } else {
        put(out, "to_timestamp($2::double precision)");
    }
}


static int put_upsert(pgbuf *out, const char *schema, const provider_collection *c, const char *records)
{
    char col[64];
    for (int i = 0; i < c->nfields; i++)
        if (schema_column_name(c->fields[i].name, col, sizeof col) < 0)
            return -1;
    int id_index = schema_id_field(c);
    const provider_field *id = id_index >= 0 ? &c->fields[id_index] : NULL;
    put(out, "INSERT INTO ");
    schema_quote_table(out, schema, c->name);
    put(out, " AS t (id");
    for (int i = 0; i < c->nfields; i++) {
        if (&c->fields[i] == id)
            continue;
        schema_column_name(c->fields[i].name, col, sizeof col);
        put(out, ", ");
        schema_quote_ident(out, col);
    }
    put(out, ", " SCHEMA_COL_UPDATED_AT ", " SCHEMA_COL_SYNCED_AT ")\nSELECT r->>");
    schema_quote_literal(out, id ? id->name : "id");
    for (int i = 0; i < c->nfields; i++) {
        if (&c->fields[i] == id)
            continue;
        put(out, ", ");
        put_value(out, c, &c->fields[i]);
    }
    put(out, ", ");
    put_version(out, c);
    put(out, ", clock_timestamp()\nFROM jsonb_array_elements(");
    put(out, records);
    put(out, ") AS r\n"
             "WHERE NOT EXISTS (SELECT FROM " SCHEMA_SERVICE ".tombstones d WHERE d.tbl = ");
    schema_tombstone_table(out, schema, c->name);
    put(out, " AND d.id = r->>");
    schema_quote_literal(out, id ? id->name : "id");
    put(out, " AND d.version >= ");
    put_version(out, c);
    put(out, ")\nON CONFLICT (id) DO UPDATE SET (");
    for (int i = 0; i < c->nfields; i++) {
        if (&c->fields[i] == id)
            continue;
        schema_column_name(c->fields[i].name, col, sizeof col);
        schema_quote_ident(out, col);
        put(out, ", ");
    }
    put(out, SCHEMA_COL_UPDATED_AT ", " SCHEMA_COL_SYNCED_AT ") = ROW(");
    for (int i = 0; i < c->nfields; i++) {
        if (&c->fields[i] == id)
            continue;
        schema_column_name(c->fields[i].name, col, sizeof col);
        put(out, "excluded.");
        schema_quote_ident(out, col);
        put(out, ", ");
    }
    put(out, "excluded." SCHEMA_COL_UPDATED_AT ", excluded." SCHEMA_COL_SYNCED_AT ")\n");
    if (c->version_field) {
        /* A record's own version (Salesforce's SystemModstamp) has whole seconds: at an equal
         * version, rows read ($2) before the row was last written (the write path's mirror,
         * at the time it really ran: clock_timestamp) may be the older state. */
        put(out, "WHERE t." SCHEMA_COL_UPDATED_AT " IS NULL OR t." SCHEMA_COL_UPDATED_AT " < excluded."
                 SCHEMA_COL_UPDATED_AT " OR (t." SCHEMA_COL_UPDATED_AT " = excluded." SCHEMA_COL_UPDATED_AT
                 " AND t." SCHEMA_COL_SYNCED_AT " <= to_timestamp($2::double precision))");
    } else {
        put(out, "WHERE t." SCHEMA_COL_UPDATED_AT " IS NULL OR t." SCHEMA_COL_UPDATED_AT " <= excluded."
                 SCHEMA_COL_UPDATED_AT);
    }
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}

int load_upsert_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    return put_upsert(out, schema, c, "$1::jsonb");
}

int load_upsert_list_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    return put_upsert(out, schema, c, "$1::jsonb -> 'data'");
}

int load_delete_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    put(out, "DELETE FROM ");
    schema_quote_table(out, schema, c->name);
    put(out, " WHERE id = $1 AND (" SCHEMA_COL_UPDATED_AT " IS NULL OR " SCHEMA_COL_UPDATED_AT
             " <= to_timestamp($2::double precision))");
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}

int load_delete_listed_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    put(out, "DELETE FROM ");
    schema_quote_table(out, schema, c->name);
    put(out, " AS t USING jsonb_array_elements($1::jsonb) AS d WHERE t.id = d->>'id' AND (t."
             SCHEMA_COL_UPDATED_AT " IS NULL OR t." SCHEMA_COL_UPDATED_AT " <= (d->>'deletedDate')::timestamptz)");
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}

int load_sweep_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    put(out, "DELETE FROM ");
    schema_quote_table(out, schema, c->name);
    put(out, " WHERE " SCHEMA_COL_SYNCED_AT " < $1::timestamptz AND (" SCHEMA_COL_UPDATED_AT " IS NULL OR "
             SCHEMA_COL_UPDATED_AT " < $1::timestamptz)");
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}

int load_backfill_start_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    put(out, "UPDATE " SCHEMA_SERVICE ".sync_state SET backfill_started_at = now(), rows_loaded = 0, "
             "backfill_done_at = NULL, backfill_sweeps = EXISTS (SELECT FROM ");
    schema_quote_table(out, schema, c->name);
    put(out, ") WHERE sync = $1 AND collection = $2 RETURNING backfill_sweeps");
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}

int load_tombstoned_sql(pgbuf *out, const char *schema, const provider_collection *c, const char *oldest)
{
    put(out, "DELETE FROM ");
    schema_quote_table(out, schema, c->name);
    /* The first condition names no row of the table: Postgres tests it once, before any
     * scan. It keeps a generic plan made while the table was empty (a scan of the whole
     * table for the join) from running on every page: only a transaction that a deletion
     * as new as its rows touches pays for it. */
    put(out, " AS t USING " SCHEMA_SERVICE ".tombstones d WHERE (SELECT EXISTS (SELECT FROM " SCHEMA_SERVICE
             ".tombstones g WHERE g.tbl = ");
    schema_tombstone_table(out, schema, c->name);
    if (oldest) {
        put(out, " AND g.version >= to_timestamp(");
        put(out, oldest);
        put(out, ")");
    }
    put(out, ")) AND d.tbl = ");
    schema_tombstone_table(out, schema, c->name);
    if (oldest) {
        /* implied by the last conditions (a row written here is at least that new), and it
         * lets the join start from the few tombstones that new (tombstones_version), not
         * scan the whole table for its rows this transaction wrote */
        put(out, " AND d.version >= to_timestamp(");
        put(out, oldest);
        put(out, ")");
    }
    put(out, " AND d.id = t.id AND d.version >= t." SCHEMA_COL_UPDATED_AT " AND t.xmin = pg_current_xact_id()::xid");
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}

int load_mirror_function_sql(pgbuf *out, const char *schema, const provider_collection *c)
{
    char name[160];
    snprintf(name, sizeof name, "mirror %s.%s", schema, c->name);
    pgbuf upsert, tombstoned;
    pgbuf_init(&upsert, 1u << 20);
    pgbuf_init(&tombstoned, 1u << 20);
    int rc = load_upsert_sql(&upsert, schema, c) < 0 || load_tombstoned_sql(&tombstoned, schema, c, NULL) < 0 ? -1 : 0;
    if (rc == 0) {
        put(out, "CREATE OR REPLACE FUNCTION " SCHEMA_SERVICE ".");
        schema_quote_ident(out, name);
        put(out, "(jsonb, double precision, text[]) RETURNS void\n"
                 "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $mirror$\n"
                 "BEGIN\n"
                 /* the owner itself (the service connection), or a session whose backend
                  * the owner's own session has marked with the lock right now; the holder's
                  * role comes from its own activity entry alone (pg_stat_activity would
                  * build every backend's: half the cost of a mirror call with 40 clients),
                  * named by the syscache (the pg_roles view is a join planned and run on
                  * every call: 15 µs of the check's 55) */
                 "  IF session_user <> current_user AND (pg_trigger_depth() > 0 OR NOT EXISTS (\n"
                 "      SELECT FROM pg_lock_status() l\n"
                 "      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2\n"
                 "        AND l.classid::bigint = " MIRROR_LOCK_CLASS_SQL " AND l.objid::bigint = pg_backend_pid()\n"
                 "        AND pg_get_userbyid((SELECT s.usesysid FROM pg_stat_get_activity(l.pid) s)) = current_user)) THEN\n"
                 "    RAISE EXCEPTION 'only apigres writes synced tables' USING ERRCODE = '42501',\n"
                 "      HINT = 'Connect through apigres: INSERT, UPDATE and DELETE on synced tables become API calls.';\n"
                 "  END IF;\n"
                 "  IF jsonb_array_length(coalesce($1, '[]')) > 0 THEN\n    ");
        put(out, upsert.data);
        /* The owner's calls are the write path's repairs (records re-applied after the
         * client's transaction ended): no lock of a plan guards their rows, and a client's
         * deletion may have held one while the upsert waited for it (tombstoned, load.h).
         * A client's own mirror call locked its rows in its plan: it pays nothing. */
        put(out, ";\n    IF session_user = current_user THEN\n      ");
        put(out, tombstoned.data);
        put(out, ";\n    END IF;\n  END IF;\n"
                 "  IF cardinality($3) > 0 THEN\n    DELETE FROM ");
        schema_quote_table(out, schema, c->name);
        put(out, " WHERE id = ANY ($3);\n"
                 /* the feed must not bring them back with an older version; a month is
                  * longer than any feed keeps its events */
                 "    INSERT INTO " SCHEMA_SERVICE ".tombstones (tbl, id, version) SELECT ");
        schema_tombstone_table(out, schema, c->name);
        put(out, ", unnest($3), to_timestamp($2)\n"
                 "      ON CONFLICT (tbl, id) DO UPDATE SET version = greatest(tombstones.version, excluded.version);\n"
                 "    DELETE FROM " SCHEMA_SERVICE ".tombstones WHERE tbl = ");
        schema_tombstone_table(out, schema, c->name);
        put(out, " AND version < now() - interval '31 days';\n  END IF;\nEND\n$mirror$;\n");
    }
    pgbuf_free(&upsert);
    pgbuf_free(&tombstoned);
    return rc < 0 || out->failed ? -1 : 0;
}
