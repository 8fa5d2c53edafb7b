/* state: see state.h. */
#include "sync/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *state_schema_sql(void)
{
    return "CREATE SCHEMA IF NOT EXISTS apigres;\n"
           "CREATE TABLE IF NOT EXISTS apigres.sync_state (\n"
           "  sync text NOT NULL, collection text NOT NULL,\n"
           "  phase text NOT NULL DEFAULT 'backfill' CHECK (phase IN ('backfill', 'incremental')),\n"
           "  cursor text NOT NULL DEFAULT '', rows_loaded bigint NOT NULL DEFAULT 0, rows_upstream bigint,\n"
           "  backfill_started_at timestamptz, backfill_done_at timestamptz, last_poll_at timestamptz,\n"
           "  last_error text, last_error_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now(),\n"
           "  PRIMARY KEY (sync, collection));\n"
           /* Salesforce: each collection's change windows (server time) */
           "ALTER TABLE apigres.sync_state ADD COLUMN IF NOT EXISTS updated_since timestamptz,\n"
           "  ADD COLUMN IF NOT EXISTS deleted_since timestamptz,\n"
           /* whether the backfill's end removes the rows it did not list (load.h) */
           "  ADD COLUMN IF NOT EXISTS backfill_sweeps boolean NOT NULL DEFAULT true;\n"
           "CREATE TABLE IF NOT EXISTS apigres.sync_feed (\n"
           "  sync text PRIMARY KEY, cursor text NOT NULL, last_event_at timestamptz,\n"
           "  updated_at timestamptz NOT NULL DEFAULT now());\n"
           "CREATE OR REPLACE VIEW apigres.sync_status AS\n"
           "  SELECT s.sync, s.collection, s.phase, s.rows_loaded, s.rows_upstream, s.backfill_started_at,\n"
           "         s.backfill_done_at, s.last_poll_at, s.last_error, s.last_error_at,\n"
           "         CASE WHEN s.phase = 'incremental' THEN now() - s.last_poll_at END AS lag\n"
           "  FROM apigres.sync_state s;\n";
}

static int db_fail(PGconn *c, PGresult *r, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    char *nl = strchr(err, '\n');
    if (nl)
        *nl = '\0';
    PQclear(r);
    return -1;
}

int state_exec(PGconn *c, const char *sql, int nparams, const char *const *params, char *err, size_t errlen)
{
    PGresult *r = nparams ? PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return db_fail(c, r, err, errlen);
    PQclear(r);
    return 0;
}

int state_load(PGconn *c, const char *sync, const char *collection, state_row *out, char *err, size_t errlen)
{
    const char *p[] = {sync, collection};
    if (state_exec(c, "INSERT INTO apigres.sync_state (sync, collection) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                   2, p, err, errlen) < 0)
        return -1;
    PGresult *r = PQexecParams(c, "SELECT phase, cursor, rows_loaded FROM apigres.sync_state "
                                  "WHERE sync = $1 AND collection = $2", 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return db_fail(c, r, err, errlen);
    out->incremental = strcmp(PQgetvalue(r, 0, 0), "incremental") == 0;
    snprintf(out->cursor, sizeof out->cursor, "%s", PQgetvalue(r, 0, 1));
    out->rows_loaded = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    return 0;
}

int state_feed_cursor(PGconn *c, const char *sync, char *cursor, size_t len, char *err, size_t errlen)
{
    const char *p[] = {sync};
    PGresult *r = PQexecParams(c, "SELECT cursor FROM apigres.sync_feed WHERE sync = $1", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return db_fail(c, r, err, errlen);
    int found = PQntuples(r) == 1;
    if (found)
        snprintf(cursor, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return found;
}
