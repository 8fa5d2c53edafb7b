/*
 * state: where the sync worker keeps its progress, in the service schema, so that a kill
 * at any moment resumes exactly where the last committed page left off, and so that
 * progress can be read with SQL:
 *
 *   apigres.sync_state  one row per (sync, collection): phase (backfill | incremental),
 *                       the listing's cursor, rows loaded, when the backfill started and
 *                       ended, the last poll and the last error; for Salesforce the
 *                       starts of its change windows (updated_since: SystemModstamp,
 *                       deleted_since: getDeleted), in the server's time
 *   apigres.sync_feed   one row per sync: the change feed's cursor (Stripe's last event)
 *   apigres.sync_status a view of both for people: collection, phase, rows_loaded,
 *                       rows_upstream, last_poll_at, last_error, lag
 *
 * Every function runs on the service connection (blocking; the worker's own thread) and
 * returns 0, or -1 with the database's message in err.
 */
#ifndef APIGRES_STATE_H
#define APIGRES_STATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct state_row {
    bool incremental;   /* phase: the backfill is done */
    char cursor[256];   /* backfill: the last id listed; "" = from the start */
    long long rows_loaded;
} state_row;

/* The tables and the view (idempotent). */
const char *state_schema_sql(void);
/* Runs sql with params (text), expecting no rows. */
int state_exec(PGconn *c, const char *sql, int nparams, const char *const *params, char *err, size_t errlen);
/* Creates the collection's row if missing and reads it. */
int state_load(PGconn *c, const char *sync, const char *collection, state_row *out, char *err, size_t errlen);
/* The feed cursor: 1 found (copied into cursor), 0 none yet, -1 error. */
int state_feed_cursor(PGconn *c, const char *sync, char *cursor, size_t len, char *err, size_t errlen);

#endif
