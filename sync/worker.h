/*
 * worker: the sync worker of shared/DESIGN.md §5 for one sync, in a thread of its own
 * with its own loop, beside the proxy's.
 *
 * It connects as the service role, takes the sync's lease (a Postgres advisory lock: one
 * worker per sync across every apigres instance on the database; the others wait and take
 * over within a second or two when it dies), creates the schema and tables, notes the
 * change feed's position, then backfills every collection page by page (a page's cursor
 * never commits before its rows and every earlier page's, so a kill at any moment resumes
 * with nothing lost or doubled; Stripe's pages load two at a time on connections of their
 * own, pages.c), removes what the listing no longer saw, and from then on follows the change
 * feed every poll_interval seconds. Failures are logged, stored in apigres.sync_state and
 * retried; the proxy is never affected.
 *
 * Stripe's feed (the /v1/events feed) is in worker.c; Salesforce's (describe, SOQL by Id,
 * SystemModstamp windows and getDeleted) in salesforce_feed.c, chosen by the provider.
 */
#ifndef APIGRES_WORKER_H
#define APIGRES_WORKER_H

#include "proxy/sync_config.h"

typedef struct sync_worker sync_worker;

/* sc and the strings stay valid until sync_worker_stop returns (borrowed). service_dsn is
 * a libpq connection string; read_role may be "" (no grants). NULL on failure (logged). */
sync_worker *sync_worker_start(const sync_config *sc, const char *service_dsn, const char *read_role);
/* Asks the worker to stop and waits for it (at most a few seconds; a committed page is
 * never half-written, so leaving earlier loses nothing). */
void sync_worker_stop(sync_worker *w);

#endif
