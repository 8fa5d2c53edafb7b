/*
 * service: the proxy's own connection to the database as the service role (the
 * service_database DSN), driven by the loop with non-blocking libpq. The write path uses it
 * for what a client's session must not do itself (shared/DESIGN.md §2, §4.3):
 *   - authorize a mirror write: it holds the advisory lock (MIRROR_LOCK_CLASS_SQL of sync/load.h,
 *     client backend pid) while the proxy mirrors on that client's session (see sync/schema.h);
 *   - repair the mirror after a client transaction that ended without committing.
 *
 * Queries run in the order given, each in its own implicit transaction; they are pipelined
 * (sent without waiting for the results of those before), so a burst of them costs the
 * backend one wake-up instead of a round trip each. SQL is one statement. The connection opens on first use and
 * again after it was lost; a query that was queued or running when it was lost gets its
 * callback with res NULL and the error. A callback may queue further queries.
 */
#ifndef APIGRES_SERVICE_H
#define APIGRES_SERVICE_H

#include <libpq-fe.h>
#include <uv.h>

typedef struct service service;
/* res: the last result of the query (NULL when the connection failed: error says why,
 * without credentials); owned by the service, valid during the callback. */
typedef void (*service_cb)(void *data, const PGresult *res, const char *error);

/* conninfo is copied. Returns NULL on allocation failure. */
service *service_new(uv_loop_t *loop, const char *conninfo);
/* Closes the connection; queued callbacks run with an error first. The loop must run
 * afterwards for the poll handle to close. */
void service_free(service *sv);
/* Queues sql with text parameters (copied); cb may be NULL. Returns 0 or -1 (no memory). */
int service_query(service *sv, const char *sql, int nparams, const char *const *params,
                  service_cb cb, void *data);
/* Registers a statement that every connection the service opens prepares (a named
 * statement, parameter types from sql) before anything else runs on it, so that
 * service_query_prepared only binds and executes it: for the queries the write path sends
 * for every write, which Postgres would otherwise parse and plan each time. Only before the
 * first query (-1 afterwards, or when out of memory). A Parse that fails is logged, and the
 * queries that name the statement get the database's error. */
int service_prepare(service *sv, const char *name, const char *sql);
/* As service_query, for the statement `name` that service_prepare registered. */
int service_query_prepared(service *sv, const char *name, int nparams, const char *const *params,
                           service_cb cb, void *data);
/* Drops the callbacks of queued queries whose data is `data` (their queries still run). */
void service_forget(service *sv, void *data);

#endif
