/*
 * salesforce_feed: the Salesforce half of the sync worker (shared/DESIGN.md §5); the
 * generic parts (thread, loop, lease, schema, state, errors) are worker.c's.
 *
 * What it promises, per configured object (salesforce:contact, salesforce:invoice__c, or
 * every replicateable object describeGlobal lists when none are configured):
 *
 * - Schema from describe: one column per field (name lower-cased, typed from the field's
 *   type), comments from the labels, SystemModstamp as the row's version. Describe runs
 *   at every start and again every SALESFORCE_FEED_DESCRIBE_EVERY seconds (or when a query
 *   names a field that is gone): a new field becomes a column; nothing is dropped.
 * - Backfill: SELECT <every field> FROM <Object> [WHERE Id > cursor] ORDER BY Id, 2,000
 *   records per page (the most SOQL returns); each page and the last Id commit in one
 *   transaction, so kill -9 at any moment resumes after the last committed Id with nothing
 *   lost or doubled. Before the first page the change windows are set to the server's
 *   clock (less the overlap): what changes during the backfill is replayed after it. A
 *   complete listing removes the rows it did not see (deleted upstream meanwhile).
 * - Incremental, round-robin over the objects every poll_interval: records whose
 *   SystemModstamp >= updated_since (ORDER BY SystemModstamp, Id; each page commits with
 *   the window's new start), then getDeleted from deleted_since to now, applied in one
 *   transaction with the window's new start (Salesforce's latestDateCovered). The updated
 *   window moves to the server's time at the query less SALESFORCE_FEED_OVERLAP, so a
 *   record written in the same second, or committed a little after its SystemModstamp,
 *   is read again rather than missed. A deleted window older than Salesforce keeps
 *   (15 days; INVALID_REPLICATION_DATE) lists the object again.
 * - Ordering: every row carries its record's SystemModstamp; an older one never
 *   overwrites a newer one (sync/load.h), whichever path brings it.
 * All requests go through the sync's rate limit at sync priority; the OAuth token is
 * never logged (upstream/error masks it in messages).
 */
#ifndef APIGRES_SALESFORCE_FEED_H
#define APIGRES_SALESFORCE_FEED_H

#include "sync/worker_internal.h"

#define SALESFORCE_FEED_OVERLAP 60          /* seconds of SystemModstamp read twice */
#define SALESFORCE_FEED_DESCRIBE_EVERY 600  /* seconds between two describes of an object */

/* The client (OAuth, instance URL) for w->sc. 0, or -1 out of memory. */
int salesforce_feed_init(sync_worker *w);
void salesforce_feed_free(sync_worker *w);
/* Describes every object into w->coll (async); ends in worker_advance with w->described,
 * or in worker_later after a failure (recorded). */
void salesforce_feed_describe(sync_worker *w);
/* Once the schema is ready: the next backfill page run or poll, or a timer until it. */
void salesforce_feed_step(sync_worker *w);

#endif
