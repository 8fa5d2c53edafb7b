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

/* Backfill pages gathered into one transaction while the one before it loads (pages.c):
 * at most BATCH_PAGES of them, and no page joins once their bodies hold BATCH_BYTES. A
 * transaction's fixed cost (its statements, its commit, the round trip a COPY starts
 * with) was about that of a page's rows: up to 16 pages of 100 customers a transaction
 * loaded 1.3-1.6 times as fast as one (300,000 rows; 8: 1.25 times; 32: no faster than 16).
 * One connection: two, each loading a page, ran at the same rate on two cores for 25-30%
 * more of Postgres's CPU (each backend faulted in the shared buffers the other filled). */
#define BATCH_PAGES 16
#define BATCH_BYTES (2u << 20)
/* The most a page's body may hold to be loaded with COPY (kept for the upsert meanwhile). */
#define PAGE_MAX_BYTES (64u << 20)

/* Pages of a listing that go to the database in one transaction, in listing order. */
typedef struct page_batch {
    int npages, rows;
    long long first_seq; /* the first page's number in the listing */
    bool copied;         /* by COPY (rows in copy_rows); else by the upsert, one page */
    char prev[256];      /* the cursor before its first page */
    struct batch_page {
        int rows;
        long long version;        /* the version its records take (unix seconds) */
        char cursor[256];         /* the cursor after the page */
        size_t body_at, body_len; /* the page as the API sent it, in bodies */
    } page[BATCH_PAGES];
    pgbuf bodies;    /* for the upsert, should Postgres refuse the COPY */
    pgbuf copy_rows; /* the pages' rows as COPY text */
} page_batch;

typedef struct collection {
    const provider_collection *spec;
    provider_collection *owned; /* Salesforce: built from describe, freed with the worker */
    char *upsert_sql, *delete_sql, *sweep_sql;
    char *tombstoned_sql;       /* after upserts, in their transaction (load.h); $1: the oldest
                                 * version they wrote (unix seconds; 0: not known) */
    bool upserted;              /* the feed's open transaction upserted rows here */
    long long upserted_oldest;  /* Stripe: the oldest version among them */
    char *start_sql;            /* Stripe: the backfill's start (load.h) */
    char *page_sql;             /* Stripe backfill: a page and its cursor (pages.c) */
    char *copy_sql;             /* Stripe backfill: the COPY of a page's rows (copy_rows.h), or NULL */
    bool page_prepared; /* page_sql is prepared on the page connection */
    bool step_prepared; /* a COPY transaction's cursor step is prepared there (pages.c) */
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
    /* its pages (pages.c), on a connection of their own as the service role */
    PGconn *page_db;
    page_batch load;     /* the transaction in flight, when loading */
    page_batch gather;   /* the pages that go in the next */
    bool loading;
    struct load_result {
        char err[512], state[6]; /* the first error and its SQLSTATE; err empty: none */
        bool advanced;           /* the cursor moved */
    } result;            /* of load, as far as read */
    long long page_seq;  /* pages of this listing handed to pages_send */
    char send_cursor[256]; /* the cursor after the last of them */
    bool page_failed;    /* a transaction failed: the listing ends unfinished */
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
/* load_tombstoned_sql with oldest (NULL: rows of any version), as a string to free (NULL: out
 * of memory). */
char *worker_tombstoned_sql(const char *schema, const provider_collection *c, const char *oldest);
/* One statement generated by gen for c, as a malloc'd string (caller frees); NULL on failure. */
char *worker_sql_of(int (*gen)(pgbuf *, const char *, const provider_collection *), const char *schema,
                    const provider_collection *c);
/* Loads a backfill page of w->coll[w->current] (Stripe's list body as it arrived, the
 * version its records take, the cursor after it, its record count): sends it, with the
 * pages gathered before it, once the transaction in flight has settled; or, while that
 * loads, keeps it for the next. 0, or -1 when a transaction failed (recorded in
 * sync_state; w->page_failed is set). */
int pages_send(sync_worker *w, const char *body, size_t body_len, const char *version, const char *cursor,
               int rows);
/* Sends the pages kept, and waits until every page is loaded and the cursor past them
 * (not past a failed transaction, nor any after it). 0, or -1 when one failed. */
int pages_settle_all(sync_worker *w);
/* The statement that loads a page with the upsert (load_upsert_list_sql's, $1 body, $2
 * version) and moves the cursor ($3, $4 rows) of sync $5 and collection $6 from $7
 * (malloc'd, NULL on failure). */
char *pages_upsert_sql(const char *upsert_list_sql);
/* Closes the page connection (a transaction in flight rolls back) and drops what is kept. */
void pages_close(sync_worker *w);
/* Frees a collection's statements (and its spec when owned) and zeroes it. */
void worker_collection_clear(collection *c);

#endif
