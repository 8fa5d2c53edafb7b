/*
 * worker_internal: what the sync worker (worker.c: thread, loop, lease, schema, state,
 * errors, the scheduler, Stripe's feed) shares with the provider feeds beside it
 * (salesforce_feed.c). Not for anyone else: the proxy sees only worker.h.
 *
 * Everything here runs on the worker's own thread. Each step of the worker ends either
 * in worker_advance() (go on with the next step now) or worker_later() (a timer), never
 * both; a step that started a request sets busy and its callback ends the step.
 */
#ifndef APIGRES_WORKER_INTERNAL_H
#define APIGRES_WORKER_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/sync_config.h"
#include "sync/state.h"
#include "sync/worker.h"
#include "upstream/call.h"
#include "upstream/provider.h"
#include "upstream/ratelimit.h"

#define RETRY_MS 2000 /* after a failure: database down, API refusing, lease taken */
#define PROGRESS_EVERY 2.0 /* seconds between two backfill progress lines */

struct salesforce_client;

/* Backfill pages loaded at once, each on a connection of its own. One: the database loads
 * a page while the API serves the next and the worker turns that one into COPY rows. Two
 * loaded pages at once at the same rate on two cores (300,000 and 1,000,000 rows, by COPY
 * and by the upsert) but cost the database 25-30% more CPU: each backend faults in the
 * shared buffers the other filled, and waits for the other's lock on the cursor's row. */
#define PAGE_CONNS 1
/* The most a page's body may hold to be loaded with COPY (kept for the upsert meanwhile). */
#define PAGE_MAX_BYTES (64u << 20)

typedef struct page_slot {
    PGconn *db;   /* its own connection as the service role, opened on first use */
    bool pending; /* its transaction is open: the page sent, the cursor not yet committed */
    bool copied;  /* sent as COPY; body holds the page for the upsert, should COPY be refused */
    int rows;
    long long seq; /* listing order */
    char version[32]; /* the version its records take (unix seconds) */
    char cursor[256], prev[256]; /* the cursor after the page, and before it */
    pgbuf body;
} page_slot;

typedef struct collection {
    const provider_collection *spec;
    provider_collection *owned; /* Salesforce: built from describe, freed with the worker */
    char *upsert_sql, *delete_sql, *sweep_sql;
    char *start_sql;            /* Stripe: the backfill's start (load.h) */
    char *page_sql;             /* Stripe backfill: a page and its cursor (pages.c) */
    char *copy_sql;             /* Stripe backfill: the COPY of a page's rows (copy_rows.h), or NULL */
    bool page_prepared[PAGE_CONNS]; /* page_sql is prepared on the page connection [i] */
    bool step_prepared[PAGE_CONNS]; /* a COPY page's cursor step is prepared there (pages.c) */
    char *select_sql;           /* Salesforce: "SELECT <every field> FROM <Object>" */
    state_row st;
    /* Salesforce's change windows (server time, unix seconds): records whose
     * SystemModstamp is at or after updated_since, deletions after deleted_since */
    double updated_since, deleted_since;
} collection;

struct sync_worker {
    const sync_config *sc;
    const char *dsn, *read_role;
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t wake; /* stop requests from the main thread */
    uv_timer_t timer;
    ratelimit limit;
    upstream_target target;
    PGconn *db;
    bool leased, ready, feed_ready, waiting_logged;
    collection coll[SYNC_MAX_COLLECTIONS];
    int ncoll;
    char feed_cursor[256];
    bool busy;     /* a listing or a poll is in flight */
    int stopping;  /* read by the worker thread, set through wake */
    pthread_mutex_t stop_lock;
    /* the backfill in progress */
    int current;
    long long pages, rows;
    double started, last_progress;
    /* its pages in flight (pages.c): each on a connection of its own */
    page_slot page[PAGE_CONNS];
    int page_next;       /* the slot the next page goes to */
    long long page_seq;  /* pages sent in this listing */
    char send_cursor[256]; /* the cursor after the last page sent */
    bool page_failed;    /* a page was refused: the listing ends unfinished */
    pgbuf copy_rows;     /* the rows of the page being sent by COPY */
    long long copy_from;    /* the first page_seq COPY is tried for again (after a refusal) */
    long long copied_pages; /* pages of this listing loaded by COPY */
    /* the poll in progress */
    int uncommitted;
    bool in_tx, poll_failed;
    double next_poll;
    /* Salesforce */
    struct salesforce_client *sf;
    void *feed;          /* the feed's own (salesforce_feed.c) */
    bool described;      /* coll[] holds the objects' current describe */
    double described_at; /* worker_now() of that describe */
    int poll_index;      /* round-robin: the collection polled next */
    double poll_server_time;
    double query_started; /* worker_now() when the running SOQL query was sent: its rows are as of then */
};

double worker_now(void);
bool worker_stop_requested(sync_worker *w);
void worker_advance(sync_worker *w);
void worker_later(sync_worker *w, uint64_t ms);
/* A connection to the database as the service role (w->dsn) named application_name, with
 * settings run on it; NULL when it cannot be had (err: why, one line, no password). */
PGconn *worker_connect(const sync_worker *w, const char *application_name, const char *settings, char *err,
                       size_t errlen);
/* Logs a failure and stores it in sync_state (of coll_name, or of every collection). */
void worker_record_error(sync_worker *w, const char *coll_name, const char *message);
/* A failed statement: rolls back, records it, and drops the connection if it is gone. */
void worker_db_failed(sync_worker *w, const char *coll_name, const char *err);
/* The backfill progress line of w->coll[w->current]. */
void worker_progress(sync_worker *w, const char *what);
/* After a complete listing of c: removes what it did not see (deleted upstream meanwhile)
 * and moves c to the incremental phase, in one transaction. 0, or -1 (recorded). */
int worker_finish_backfill(sync_worker *w, collection *c);
/* One statement generated by gen for c, as a malloc'd string (caller frees); NULL on failure. */
char *worker_sql_of(int (*gen)(pgbuf *, const char *, const provider_collection *), const char *schema,
                    const provider_collection *c);
/* Loads a backfill page of w->coll[w->current] (Stripe's list body as it arrived, the
 * version its records take, the cursor after it, its record count) on the next page
 * connection, after settling the page that connection still carries. 0, or -1 when a
 * page failed (recorded in sync_state; w->page_failed is set). */
int pages_send(sync_worker *w, const char *body, size_t body_len, const char *version, const char *cursor,
               int rows);
/* Waits for the pages in flight and moves the cursor past them, in listing order (not
 * past a failed page, nor any after it). 0, or -1 when one failed. */
int pages_settle_all(sync_worker *w);
/* The statement that loads a page with the upsert (load_upsert_list_sql's, $1 body, $2
 * version) and moves the cursor ($3, $4 rows) of sync $5 and collection $6 from $7
 * (malloc'd, NULL on failure). */
char *pages_upsert_sql(const char *upsert_list_sql);
/* Closes the page connections (an open page rolls back). */
void pages_close(sync_worker *w);
/* Frees a collection's statements (and its spec when owned) and zeroes it. */
void worker_collection_clear(collection *c);

#endif
