/*
 * schema: the SQL that makes a provider's collections into Postgres tables
 * (shared/DESIGN.md §2 and §5), run by the service role, which then owns them.
 *
 * A collection becomes SCHEMA.NAME with one typed column per API field (the field's name
 * lower-cased: Salesforce's Email is column email), `id` text as the primary key, and two
 * metadata columns: _apigres_updated_at (the upstream version the row reflects) and
 * _apigres_synced_at (when it was last written here). The API's descriptions become
 * COMMENTs. Everything is idempotent: applying it again adds the columns of fields that
 * appeared upstream since and never drops or retypes anything.
 *
 * Synced tables mirror the API, so only their owner (the service role, working for the
 * proxy and the sync worker) may write them: a trigger refuses INSERT, UPDATE, DELETE and
 * TRUNCATE by anyone else, superusers included, with 42501 and a hint to go through
 * apigres. Reading is governed by ordinary GRANTs.
 */
#ifndef APIGRES_SCHEMA_H
#define APIGRES_SCHEMA_H

#include <stddef.h>

#include "proxy/pgwire.h"
#include "upstream/provider.h"

#define SCHEMA_SERVICE "apigres"
#define SCHEMA_COL_UPDATED_AT "_apigres_updated_at"
#define SCHEMA_COL_SYNCED_AT "_apigres_synced_at"
/* the constraint trigger on every synced table that refuses writes of anyone but the owner */
#define SCHEMA_GUARD "apigres_guard"

/* The column for an API field: the name lower-cased. Returns 0, or -1 when it is empty or
 * longer than Postgres's 63-byte identifiers (it would be truncated into a clash). */
int schema_column_name(const char *field, char *out, size_t outlen);
/* Appends "name" with embedded quotes doubled. */
void schema_quote_ident(pgbuf *out, const char *name);
/* Appends E'text' with quotes and backslashes escaped (safe whatever
 * standard_conforming_strings says). */
void schema_quote_literal(pgbuf *out, const char *text);

/* Appends "schema"."table". */
void schema_quote_table(pgbuf *out, const char *schema, const char *table);
/* Appends E'schema.table': how apigres.tombstones names a table. */
void schema_tombstone_table(pgbuf *out, const char *schema, const char *table);
/* The index of c's field whose column is id, or -1. */
int schema_id_field(const provider_collection *c);

/* The service schema and the guard function the synced tables' triggers call. */
void schema_service_sql(pgbuf *out);
/* Schema, table, columns, comments and guard triggers for one collection. Returns 0, or
 * -1 when a field has no usable column name (nothing appended then) or out failed. */
int schema_collection_sql(pgbuf *out, const char *schema, const provider_collection *c);

#endif
