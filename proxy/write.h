/*
 * write: the write path on a client's session (shared/DESIGN.md §4). A Query message whose
 * statement writes a synced table is not relayed: the session hands it to write_query,
 * which carries it out with queries of its own on the client's backend connection and
 * calls to the API, then answers the client as the database would have.
 *
 * For one INSERT, UPDATE or DELETE on a synced table (simple protocol):
 *  1. plan, on the client's session and transaction (a BEGIN of our own when the client is
 *     not in one): the plan SELECT of parser/rewrite (FOR UPDATE of the target rows),
 *     its values converted to what the API takes. More than write_max_rows rows → 54000,
 *     no call made.
 *  2. probe: the write itself with the plan's rows and values, in a savepoint the same Query
 *     rolls back, so that the database checks privileges, every RLS policy and the
 *     constraints; the guard, a deferred trigger, is dropped with the savepoint, so a probe
 *     that passes ends without an error (a DELETE's RETURNING id names the rows its policies
 *     let it reach). The database's own error (42501, ...) is the statement's.
 *  3. the service connection takes the advisory lock that lets this backend call the
 *     mirror function (sync/load.h), only now that none of the client's code runs any
 *     more; then one API call per row (Stripe, or Salesforce with a read-back); the first
 *     failure stops the statement.
 *  4. the records the API returned are mirrored on the client's session through
 *     apigres."mirror SCHEMA.TABLE"; the lock is released; RETURNING is answered from the
 *     mirrored rows (DELETE: from its rows as the plan carried them, and FROM/USING tables'
 *     rows likewise: parser/rewrite.h); our own transaction commits. A statement with
 *     nothing left to run on the backend is answered while the release is under way; the
 *     client's next message stays unread until it is done.
 * The client gets the original command tag and count, or one ErrorResponse: the database's
 * own for planning errors, or the API's refusal mapped per upstream/error.h, with DETAIL
 * saying how many rows were applied before it. Inside a client transaction a failure
 * aborts that transaction, as a failed statement does.
 *
 * Records mutated inside a client's transaction are kept until it ends, then re-applied
 * through the service connection (DESIGN §4.3): a rollback, a failed transaction or a
 * disconnect cannot leave the mirror behind upstream.
 *
 * Statements are classified per Query (parser/classify); REFUSE verdicts are answered
 * without running anything. A Query of several statements with a write among them runs
 * one statement at a time inside one implicit transaction (unless it has its own BEGIN or
 * COMMIT). The extended protocol is write_ext.c's (see write_batch). An unqualified write
 * target named like a synced table is refused with a hint to qualify it.
 */
#ifndef APIGRES_WRITE_H
#define APIGRES_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/config.h"
#include "proxy/plan_cache.h"
#include "proxy/service.h"
#include "upstream/call.h"
#include "upstream/provider.h"
#include "upstream/ratelimit.h"
#include "upstream/salesforce.h"
#include "upstream/stripe.h"

#define WRITE_DEFAULT_MAX_ROWS 100
/* Service connections taking and releasing mirror locks: each serves its queue one round
 * trip at a time, so several keep them from queueing behind each other under load. */
#define WRITE_LOCK_CONNECTIONS 4

typedef struct session session;

/* One sync as the write path sees it: where its tables live and how to reach its API. */
typedef struct write_sync {
    const sync_config *sc;
    ratelimit limit;
    upstream_target target;
    stripe_client *stripe; /* provider SYNC_STRIPE */
    /* provider SYNC_SALESFORCE: the client and the objects as describe tells them (asked
     * for at start; a table written before its description came is refused with 55000) */
    salesforce_client *sf;
    provider_collection *sf_colls[SYNC_MAX_COLLECTIONS];
    int nsf_colls;
    char *sf_describing[SYNC_MAX_COLLECTIONS]; /* names whose describe is under way */
    int nsf_describing;
} write_sync;

/* Everything the write path shares on one loop. */
typedef struct write_context {
    write_sync syncs[CONFIG_MAX_SYNCS];
    int nsyncs;
    const char *schemas[CONFIG_MAX_SYNCS]; /* for classify */
    /* Service connections: `locks` only try and release the mirror locks (never wait),
     * `repairs` re-applies records and may wait for a client's row locks; sharing one
     * would let a repair stuck behind a client's transaction hold up the unlock that
     * transaction is waiting for. */
    service *locks[WRITE_LOCK_CONNECTIONS]; /* a backend's lock lives on locks[pid % N] */
    service *repairs;
    int max_rows;
    plan_cache *plans; /* classifications and plans by statement text */
} write_context;

/* Sets up the API clients of every sync whose provider the write path supports and the
 * service connection (opened on first use). Returns 0, or -1 (logged). With no syncs the
 * context is empty and write_enabled is false. */
int write_context_init(write_context *w, uv_loop_t *loop, const config *cfg);
void write_context_close(write_context *w);
bool write_enabled(const write_context *w);

/* Looks at one Query message (its text, len bytes without the NUL). Returns false when the
 * session should relay it as is; true when the write path took it: the session must not
 * read the client, and relays backend messages to write_on_backend_message, until the
 * write path calls session_write_done. */
bool write_query(session *s, const char *sql, size_t len);
/* An extended-protocol batch: the client's held messages up to and including the Sync or
 * Flush that ended it. RELAY: it names no write, send it as it is (nothing was kept);
 * BUSY: it does, but earlier answers are still due: hold it and ask again when the backend
 * is idle; TAKEN: as for write_query. */
enum write_batch_verdict { WRITE_BATCH_RELAY, WRITE_BATCH_BUSY, WRITE_BATCH_TAKEN };
enum write_batch_verdict write_batch(session *s, const char *data, size_t len, bool backend_idle);
/* A backend message while the write path owns the session. Returns 0, or -1 when the
 * session cannot go on. */
int write_on_backend_message(session *s, const char *msg, size_t len);
/* The backend said ReadyForQuery with this transaction status outside the write path:
 * records of a finished client transaction are re-applied. */
void write_on_ready(session *s, char status);
/* The client's CancelRequest while the write path is calling the API (the backend is idle
 * then, so cancelling it would do nothing): no further call starts, what went through is
 * mirrored, and the statement fails with 57014. Returns false when the write path is not
 * calling (cancel the backend as usual). */
bool write_cancel(session *s);
/* The session is closing: pending work is detached, kept records re-applied. */
void write_on_session_close(session *s);

#endif
