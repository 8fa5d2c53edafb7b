/*
 * load: the statements that write API records into a synced table (sync/schema.h), used
 * by the sync worker for pages and events (and by the write path for the records the API
 * returns).
 *
 * Upsert: $1 is a JSON array of the API's records exactly as the API sent them, $2 the
 * upstream version they reflect (unix seconds, fractional allowed), unless the collection
 * names a version_field: then each record's own (Salesforce's SystemModstamp) is its
 * version and $2 only stands in where a record lacks it. Postgres converts each
 * field to its column's type (Stripe's unix-second timestamps, Salesforce's ISO ones, JSON
 * null as SQL NULL), so a page is one statement and one round trip. A row is only replaced
 * by a version at least as new as the one it has (shared/DESIGN.md §5, ordering).
 *
 * Upsert list: the same, with $1 a whole list response as Stripe sends it, {"data":
 * [records], ...}: a backfill page goes to the database as the API sent it.
 *
 * Delete: $1 the id, $2 the version of the deletion; an older deletion does not remove a
 * row written from a newer version.
 *
 * Delete listed: $1 is a JSON array of deletions as Salesforce's getDeleted lists them,
 * [{"id", "deletedDate"}]; each removes its row unless the row reflects a newer version.
 *
 * Sweep: after a complete listing that started at $1 (timestamptz), removes the rows it did
 * not see and nothing else touched since: records deleted upstream meanwhile.
 *
 * Tombstoned: removes, among the rows the running transaction wrote, those whose record the
 * write path deleted at a version at least as new as the row's. The upsert checks the
 * tombstones itself, but in its statement's snapshot: when the write path's mirror deletes
 * a row and writes its tombstone in a client's transaction, an upsert that meanwhile waits
 * for that row's lock inserts the row again once the client commits (the tombstone came
 * after its snapshot). Run after the upserts (and COPY), in their transaction, it sees the
 * tombstone. oldest is SQL for the oldest of the rows' versions in unix seconds (a number,
 * or a parameter like "$4::bigint"), or NULL when they are not known: Postgres tests first,
 * once, whether any tombstone of the table is that new, and scans nothing when none is;
 * with oldest, the rows are reached from those tombstones by the table's key (the index
 * tombstones_version), without a scan of the table.
 *
 * Backfill start (Stripe): $1 sync, $2 collection; marks the listing's start, and whether the
 * sweep is needed at its end: not when the table was empty, for then every row in it at the
 * end was written after the start (the sweep would read the whole table to find none).
 */
#ifndef APIGRES_LOAD_H
#define APIGRES_LOAD_H

#include "proxy/pgwire.h"
#include "upstream/provider.h"

/* Each appends one statement (no semicolon, NUL-terminated); returns 0 or -1. */
int load_upsert_sql(pgbuf *out, const char *schema, const provider_collection *c);
int load_upsert_list_sql(pgbuf *out, const char *schema, const provider_collection *c);
int load_delete_sql(pgbuf *out, const char *schema, const provider_collection *c);
int load_delete_listed_sql(pgbuf *out, const char *schema, const provider_collection *c);
int load_sweep_sql(pgbuf *out, const char *schema, const provider_collection *c);
int load_backfill_start_sql(pgbuf *out, const char *schema, const provider_collection *c);
int load_tombstoned_sql(pgbuf *out, const char *schema, const provider_collection *c, const char *oldest);

/* The SECURITY DEFINER function apigres."mirror SCHEMA.NAME"(records jsonb, version double
 * precision, deleted text[]) through which the write path mirrors the API's records on a
 * client's own session (DESIGN §4.2 step 3, inside the client's transaction): it upserts
 * records as load_upsert_sql does and deletes the ids in deleted. It runs only for the
 * owner (the service connection, repairing after a rollback) or for a backend whose pid
 * the owner's own session holds the advisory lock (MIRROR_LOCK_CLASS, pid) for: what the
 * proxy's service connection does around each mirror call, and what no client can fake;
 * never from inside a trigger (a client's deferred trigger runs at COMMIT, which the proxy
 * may send while the lock is still held). The owner's calls (the write path's repairs) also
 * run the tombstoned statement after the upsert.
 * Appends a statement with its semicolon; returns 0 or -1. */
#define MIRROR_LOCK_CLASS_SQL "1634757991"
int load_mirror_function_sql(pgbuf *out, const char *schema, const provider_collection *c);

#endif
