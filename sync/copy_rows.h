/*
 * copy_rows: a Stripe backfill page as rows for COPY ... FROM STDIN (text format), so that
 * a page loads at the speed of COPY rather than through the JSON upsert of load.h, which
 * costs Postgres more than twice as much per page (bench/backfill).
 *
 * The rows hold what the upsert would write: id, one column per field, the page's version
 * in _apigres_updated_at; _apigres_synced_at takes its default (the loading transaction's
 * start, after the listing's). A value is taken only where its conversion is the same
 * either way: a string for text, an integer for bigint and for Stripe's unix-second
 * timestamps, a number for numeric, true or false for boolean, any JSON for jsonb, and JSON
 * null (or a missing field) as SQL NULL for every type. Anything else in a page (a number
 * where text is expected, a string for a boolean, an escaped key, \u0000, nesting deeper
 * than 64) makes the page -1: the caller loads it with the upsert, which converts it as
 * before or refuses it with Postgres's own error.
 *
 * What COPY cannot do stays with the caller (sync/pages.c): a row already in the table
 * (COPY refuses the page with 23505; the upsert then decides by version) and the
 * tombstones of records the write path deleted meanwhile (load_tombstoned_sql).
 */
#ifndef APIGRES_COPY_ROWS_H
#define APIGRES_COPY_ROWS_H

#include <stddef.h>

#include "proxy/pgwire.h"
#include "upstream/provider.h"

/* Appends "COPY schema.table (id, ..., _apigres_updated_at) FROM STDIN" (NUL-terminated).
 * 0, or -1 for a collection whose records carry their own version (Salesforce): those
 * are not loaded this way. */
int copy_rows_statement(pgbuf *out, const char *schema, const provider_collection *c);

/* Appends the rows of a Stripe list response's "data" (body as the API sent it), each at
 * version (unix seconds). Returns the number of rows, or -1 (see above; out is then to be
 * discarded). */
int copy_rows_of_list(pgbuf *out, const char *body, size_t len, const provider_collection *c, long long version);

#endif
