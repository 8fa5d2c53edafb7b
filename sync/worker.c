/* worker: see worker.h. */
#include "sync/worker.h"
#include "sync/worker_internal.h"

#include <cJSON.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <uv.h>

#include "proxy/log.h"
#include "sync/copy_rows.h"
#include "sync/load.h"
#include "sync/schema.h"
#include "sync/state.h"
#include "upstream/call.h"
#include "upstream/json.h"
#include "upstream/salesforce.h"
#include "sync/salesforce_feed.h"
#include "upstream/stripe.h"
#include "upstream/stripe_collections.h"
#include "upstream/stripe_events.h"

#define EVENTS_PER_COMMIT 100

double worker_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

bool worker_stop_requested(sync_worker *w)
{
    pthread_mutex_lock(&w->stop_lock);
    int s = w->stopping;
    pthread_mutex_unlock(&w->stop_lock);
    return s;
}

static void on_timer(uv_timer_t *t) { worker_advance(t->data); }

void worker_later(sync_worker *w, uint64_t ms) { uv_timer_start(&w->timer, on_timer, ms, 0); }

/* Records a failure where SQL can see it (if the database can still be told). */
void worker_record_error(sync_worker *w, const char *coll_name, const char *message)
{
    log_warn("sync %s: %s%s%s", w->sc->name, coll_name ? coll_name : "", coll_name ? ": " : "", message);
    if (!w->db || PQstatus(w->db) != CONNECTION_OK)
        return;
    char err[256];
    const char *p[] = {w->sc->name, coll_name ? coll_name : "", message};
    state_exec(w->db, coll_name ? "UPDATE apigres.sync_state SET last_error = $3, last_error_at = now() "
                                   "WHERE sync = $1 AND collection = $2"
                                 : "UPDATE apigres.sync_state SET last_error = $3, last_error_at = now() "
                                   "WHERE sync = $1 AND $2 = ''",
               3, p, err, sizeof err);
}

/* A failed statement: if the connection itself is gone, start over from connecting. */
void worker_db_failed(sync_worker *w, const char *coll_name, const char *err)
{
    if (w->db && PQtransactionStatus(w->db) != PQTRANS_IDLE && PQstatus(w->db) == CONNECTION_OK)
        PQclear(PQexec(w->db, "ROLLBACK"));
    worker_record_error(w, coll_name, err);
    if (w->db && PQstatus(w->db) != CONNECTION_OK) {
        PQfinish(w->db);
        w->db = NULL;
        w->leased = w->ready = w->feed_ready = false;
    }
}

/* ---- connecting, the lease, the schema */

PGconn *worker_connect(const sync_worker *w, const char *application_name, const char *settings, char *err,
                       size_t errlen)
{
    static const char *const keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {w->dsn, application_name, "10", NULL};
    PGconn *db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect as the service role: %s", PQerrorMessage(db));
        err[strcspn(err, "\n")] = '\0';
        PQfinish(db);
        return NULL;
    }
    PQclear(PQexec(db, settings));
    return db;
}

static bool connect_db(sync_worker *w)
{
    if (w->db && PQstatus(w->db) == CONNECTION_OK)
        return true;
    if (w->db)
        PQfinish(w->db);
    w->leased = w->ready = w->feed_ready = false;
    char msg[300];
    if (!(w->db = worker_connect(w, "apigres sync", "SET client_min_messages = warning", msg, sizeof msg))) {
        log_warn("sync %s: %s", w->sc->name, msg);
        return false;
    }
    return true;
}

static bool take_lease(sync_worker *w)
{
    char key[200];
    snprintf(key, sizeof key, "apigres sync %s", w->sc->name);
    const char *p[] = {key};
    PGresult *r = PQexecParams(w->db, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", 1, NULL, p,
                               NULL, NULL, 0);
    bool got = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        worker_db_failed(w, NULL, PQresultErrorMessage(r));
    PQclear(r);
    if (got) {
        log_info("sync %s: took the lease", w->sc->name);
        w->waiting_logged = false;
    } else if (!w->waiting_logged) {
        log_info("sync %s: another apigres holds the lease; waiting to take over", w->sc->name);
        w->waiting_logged = true;
    }
    return got;
}

static int setup_schema(sync_worker *w)
{
    pgbuf sql;
    pgbuf_init(&sql, 16u << 20);
    /* Each sync's worker sets up the shared apigres schema too: one at a time (across
     * apigres processes as well), or two CREATE OR REPLACE FUNCTIONs of the same function
     * meet and one fails with "tuple concurrently updated". Held until the COMMIT. */
    static const char serialize[] = "SELECT pg_advisory_xact_lock(hashtextextended('apigres schema setup', 0));\n";
    pgbuf_put(&sql, serialize, strlen(serialize));
    schema_service_sql(&sql);
    pgbuf_put(&sql, state_schema_sql(), strlen(state_schema_sql()));
    for (int i = 0; i < w->ncoll; i++)
        if (schema_collection_sql(&sql, w->sc->schema, w->coll[i].spec) < 0 ||
            load_mirror_function_sql(&sql, w->sc->schema, w->coll[i].spec) < 0)
            break;
    if (w->read_role[0]) {
        /* both names are plain identifiers (sync_config, config); the role is the DBA's to
         * create (apigres setup), so grant only once it exists */
        char grants[1024];
        snprintf(grants, sizeof grants,
                 "DO $grants$ BEGIN\n"
                 "  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN\n"
                 "    GRANT USAGE ON SCHEMA \"%s\" TO \"%s\";\n"
                 "    GRANT SELECT ON ALL TABLES IN SCHEMA \"%s\" TO \"%s\";\n"
                 "    GRANT USAGE ON SCHEMA apigres TO \"%s\";\n"
                 "    GRANT SELECT ON apigres.sync_status TO \"%s\";\n"
                 "  END IF;\n"
                 "END $grants$;\n",
                 w->read_role, w->sc->schema, w->read_role, w->sc->schema, w->read_role, w->read_role, w->read_role);
        pgbuf_put(&sql, grants, strlen(grants));
    }
    pgbuf_put_byte(&sql, 0);
    char err[512];
    int rc = -1;
    if (sql.failed) {
        worker_record_error(w, NULL, "the schema's SQL does not fit");
    } else if (state_exec(w->db, "BEGIN", 0, NULL, err, sizeof err) < 0 ||
               state_exec(w->db, sql.data, 0, NULL, err, sizeof err) < 0 ||
               state_exec(w->db, "COMMIT", 0, NULL, err, sizeof err) < 0) {
        worker_db_failed(w, NULL, err);
    } else {
        rc = 0;
        for (int i = 0; i < w->ncoll && rc == 0; i++)
            if (state_load(w->db, w->sc->name, w->coll[i].spec->name, &w->coll[i].st, err, sizeof err) < 0) {
                worker_db_failed(w, NULL, err);
                rc = -1;
            }
    }
    pgbuf_free(&sql);
    return rc;
}

/* ---- the change feed: where it stands before the first backfill */

static int ignore_event(const cJSON *event, void *ctx) { return 0; }

static void on_feed_start(const upstream_error *err, bool expired, const char *cursor, int count, void *ctx)
{
    sync_worker *w = ctx;
    w->busy = false;
    if (err) {
        worker_record_error(w, NULL, err->message);
        worker_later(w, RETRY_MS);
        return;
    }
    char e[256];
    const char *p[] = {w->sc->name, cursor};
    if (state_exec(w->db, "INSERT INTO apigres.sync_feed (sync, cursor) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                   2, p, e, sizeof e) < 0) {
        worker_db_failed(w, NULL, e);
        worker_later(w, RETRY_MS);
        return;
    }
    worker_advance(w);
}

/* ---- backfill */

void worker_progress(sync_worker *w, const char *what)
{
    collection *c = &w->coll[w->current];
    double t = worker_now() - w->started;
    log_info("sync %s: %s backfill %s: %lld rows in %lld pages (%lld by COPY, %.0f rows/s), %lld loaded in all",
             w->sc->name, c->spec->name, what, w->rows, w->pages, w->copied_pages, t > 0 ? (double)w->rows / t : 0.0,
             c->st.rows_loaded);
    w->last_progress = worker_now();
}

int worker_finish_backfill(sync_worker *w, collection *c)
{
    const char *p[] = {w->sc->name, c->spec->name};
    char e[512];
    PGresult *r = PQexecParams(w->db, "SELECT backfill_started_at, backfill_sweeps FROM apigres.sync_state "
                                      "WHERE sync = $1 AND collection = $2", 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        worker_db_failed(w, c->spec->name, PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    const char *sweep[] = {PQgetvalue(r, 0, 0)};
    bool sweeps = strcmp(PQgetvalue(r, 0, 1), "f") != 0;
    if (state_exec(w->db, "BEGIN", 0, NULL, e, sizeof e) < 0 ||
        (sweeps && state_exec(w->db, c->sweep_sql, 1, sweep, e, sizeof e) < 0) ||
        state_exec(w->db, "UPDATE apigres.sync_state SET phase = 'incremental', backfill_done_at = now(), "
                          "last_error = NULL, updated_at = now() WHERE sync = $1 AND collection = $2",
                   2, p, e, sizeof e) < 0 ||
        state_exec(w->db, "COMMIT", 0, NULL, e, sizeof e) < 0) {
        PQclear(r);
        worker_db_failed(w, c->spec->name, e);
        return -1;
    }
    PQclear(r);
    c->st.incremental = true;
    return 0;
}

/* A page goes to the database as it arrives (pages.c): the database loads the pages in
 * flight while the API serves the next. */
static int on_backfill_page(stripe_list *l, const cJSON *data, void *ctx)
{
    sync_worker *w = ctx;
    int n = stripe_list_page_count(l);
    if (n == 0)
        return pages_settle_all(w) < 0 ? 1 : worker_stop_requested(w);
    /* A page reflects upstream as of its arrival; versions are whole seconds (Stripe's
     * events are), and a page counts as one second older, so that an event from the same
     * second always wins over it (applied in order, the feed ends on the latest state). */
    char version[32];
    snprintf(version, sizeof version, "%.0f", floor(worker_now()) - 1);
    size_t body_len;
    const char *body = stripe_list_page_body(l, &body_len);
    if (pages_send(w, body, body_len, version, stripe_list_cursor(l), n) < 0)
        return 1;
    return worker_stop_requested(w);
}

static void on_backfill_done(stripe_list *l, const upstream_error *err, int pages, void *ctx)
{
    sync_worker *w = ctx;
    collection *c = &w->coll[w->current];
    w->busy = false;
    pages_settle_all(w);
    pages_close(w); /* no idle backend until the next listing */
    if (worker_stop_requested(w) || !w->db) {
        worker_advance(w);
        return;
    }
    if (w->page_failed) {
        /* the listing stopped at a page the database refused: it is not complete */
        worker_later(w, RETRY_MS);
        return;
    }
    if (err) {
        if (err->not_found) {
            /* the record the cursor named was deleted meanwhile: list again from the start */
            const char *p[] = {w->sc->name, c->spec->name};
            char e[256];
            state_exec(w->db, "UPDATE apigres.sync_state SET cursor = '' WHERE sync = $1 AND collection = $2",
                       2, p, e, sizeof e);
            c->st.cursor[0] = '\0';
            log_warn("sync %s: %s: the backfill's cursor no longer exists upstream; listing again",
                     w->sc->name, c->spec->name);
            worker_advance(w);
            return;
        }
        worker_record_error(w, c->spec->name, err->message);
        worker_later(w, RETRY_MS);
        return;
    }
    if (worker_finish_backfill(w, c) < 0) {
        worker_later(w, RETRY_MS);
        return;
    }
    worker_progress(w, "done");
    worker_advance(w);
}

static void start_backfill(sync_worker *w, int i)
{
    collection *c = &w->coll[i];
    const char *p[] = {w->sc->name, c->spec->name};
    /* a listing that started on rows already there (a re-list: the feed's cursor expired)
     * loads every page by the upsert: its COPYs would mostly meet those rows, and each
     * refusal is an ERROR in the database's log before its pages are loaded again */
    PGresult *r = PQexecParams(w->db,
                               c->st.cursor[0] ? "SELECT backfill_sweeps FROM apigres.sync_state "
                                                 "WHERE sync = $1 AND collection = $2"
                                               : c->start_sql,
                               2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        worker_db_failed(w, c->spec->name, PQresultErrorMessage(r));
        PQclear(r);
        worker_later(w, RETRY_MS);
        return;
    }
    bool over_rows = strcmp(PQgetvalue(r, 0, 0), "f") != 0;
    PQclear(r);
    if (!c->st.cursor[0])
        c->st.rows_loaded = 0;
    w->current = i;
    w->pages = w->rows = w->page_seq = w->copied_pages = w->copy_from = 0;
    if (over_rows)
        w->copy_from = LLONG_MAX;
    w->page_failed = false;
    snprintf(w->send_cursor, sizeof w->send_cursor, "%s", c->st.cursor);
    w->started = w->last_progress = worker_now();
    log_info("sync %s: %s backfill %s%s", w->sc->name, c->spec->name,
             c->st.cursor[0] ? "resumes from its cursor" : "starts",
             over_rows ? " over the rows already there, by the upsert" : "");
    /* Stripe lists only live subscriptions unless asked for every status */
    char path[256];
    snprintf(path, sizeof path, "%s%s", c->spec->list_path,
             strcmp(c->spec->name, "subscription") == 0 ? "?status=all" : "");
    stripe_list_options o = {.base = w->sc->api_base, .path = path, .secret_key = w->sc->secret_key,
                             .starting_after = c->st.cursor[0] ? c->st.cursor : NULL,
                             .priority = RATELIMIT_SYNC, .unparsed = true};
    w->busy = true;
    if (!stripe_list_start(&w->target, &o, on_backfill_page, on_backfill_done, w)) {
        w->busy = false;
        worker_record_error(w, c->spec->name, "out of memory starting a listing");
        worker_later(w, RETRY_MS);
    }
}

/* ---- incremental: the change feed */

static collection *collection_of(sync_worker *w, const char *object)
{
    for (int i = 0; i < w->ncoll; i++)
        if (object && strcmp(w->coll[i].spec->object, object) == 0)
            return &w->coll[i];
    return NULL;
}

static bool commit_events(sync_worker *w, const char *cursor)
{
    if (!w->in_tx)
        return true;
    char e[256];
    const char *p[] = {w->sc->name, cursor};
    w->in_tx = false;
    w->uncommitted = 0;
    int rc = 0;
    /* what the upserts brought back of records the write path deleted meanwhile (load.h) */
    for (int i = 0; i < w->ncoll; i++) {
        if (w->coll[i].upserted && rc == 0) {
            char oldest[32];
            snprintf(oldest, sizeof oldest, "%lld", w->coll[i].upserted_oldest);
            const char *op[] = {oldest};
            rc = state_exec(w->db, w->coll[i].tombstoned_sql, 1, op, e, sizeof e);
        }
        w->coll[i].upserted = false;
    }
    if (rc < 0 ||
        state_exec(w->db, "UPDATE apigres.sync_feed SET cursor = $2, updated_at = now() WHERE sync = $1", 2, p, e,
                   sizeof e) < 0 ||
        state_exec(w->db, "COMMIT", 0, NULL, e, sizeof e) < 0) {
        worker_db_failed(w, NULL, e);
        return false;
    }
    snprintf(w->feed_cursor, sizeof w->feed_cursor, "%s", cursor);
    return true;
}

static int on_event(const cJSON *event, void *ctx)
{
    sync_worker *w = ctx;
    const char *id = json_string(event, "id"), *type = json_string(event, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(event, "data"), "object");
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(event, "created");
    collection *c = collection_of(w, json_string(obj, "object"));
    char e[512];
    if (!w->in_tx) {
        if (state_exec(w->db, "BEGIN", 0, NULL, e, sizeof e) < 0) {
            worker_db_failed(w, NULL, e);
            w->poll_failed = true;
            return 1;
        }
        w->in_tx = true;
    }
    if (c && id && type && cJSON_IsObject(obj) && cJSON_IsNumber(created)) {
        char version[32];
        snprintf(version, sizeof version, "%.0f", created->valuedouble);
        size_t tl = strlen(type);
        /* a canceled subscription still exists (customer.subscription.deleted): only
         * objects that are really gone leave the mirror */
        bool gone = tl > 8 && strcmp(type + tl - 8, ".deleted") == 0 && strcmp(c->spec->name, "subscription") != 0;
        int rc;
        if (gone) {
            const char *p[] = {json_string(obj, "id"), version};
            rc = p[0] ? state_exec(w->db, c->delete_sql, 2, p, e, sizeof e) : 0;
        } else {
            cJSON *one = cJSON_CreateArray();
            cJSON_AddItemReferenceToArray(one, (cJSON *)obj);
            char *json = cJSON_PrintUnformatted(one);
            cJSON_Delete(one);
            const char *p[] = {json, version};
            rc = json ? state_exec(w->db, c->upsert_sql, 2, p, e, sizeof e) : -1;
            long long v = (long long)created->valuedouble;
            if (!c->upserted || v < c->upserted_oldest)
                c->upserted_oldest = v;
            c->upserted = true;
            free(json);
        }
        if (rc < 0) {
            w->in_tx = false;
            worker_db_failed(w, c->spec->name, e);
            w->poll_failed = true;
            return 1;
        }
    }
    if (++w->uncommitted >= EVENTS_PER_COMMIT && !commit_events(w, id)) {
        w->poll_failed = true;
        return 1;
    }
    return worker_stop_requested(w);
}

/* Every collection back to a full listing: the feed cannot say what changed. */
static void relist(sync_worker *w)
{
    char e[256];
    const char *p[] = {w->sc->name};
    if (state_exec(w->db, "BEGIN", 0, NULL, e, sizeof e) < 0 ||
        state_exec(w->db, "UPDATE apigres.sync_state SET phase = 'backfill', cursor = '' WHERE sync = $1", 1, p, e,
                   sizeof e) < 0 ||
        state_exec(w->db, "DELETE FROM apigres.sync_feed WHERE sync = $1", 1, p, e, sizeof e) < 0 ||
        state_exec(w->db, "COMMIT", 0, NULL, e, sizeof e) < 0) {
        worker_db_failed(w, NULL, e);
        return;
    }
    for (int i = 0; i < w->ncoll; i++) {
        w->coll[i].st.incremental = false;
        w->coll[i].st.cursor[0] = '\0';
    }
    w->feed_ready = false;
}

static void on_poll_done(const upstream_error *err, bool expired, const char *cursor, int count, void *ctx)
{
    sync_worker *w = ctx;
    w->busy = false;
    if (!w->poll_failed && w->db)
        commit_events(w, cursor);
    if (w->in_tx && w->db)
        PQclear(PQexec(w->db, "ROLLBACK"));
    w->in_tx = false; /* also when the connection died with the transaction */
    for (int i = 0; i < w->ncoll; i++)
        w->coll[i].upserted = false;
    w->next_poll = worker_now() + w->sc->poll_interval;
    if (worker_stop_requested(w) || !w->db) {
        worker_advance(w);
        return;
    }
    if (expired) {
        log_warn("sync %s: the change feed's cursor is older than Stripe keeps events; listing every "
                 "collection again", w->sc->name);
        relist(w);
    } else if (err) {
        worker_record_error(w, NULL, err->message);
    } else if (!w->poll_failed) {
        char e[256];
        const char *p[] = {w->sc->name};
        state_exec(w->db, "UPDATE apigres.sync_state SET last_poll_at = now(), last_error = NULL WHERE sync = $1",
                   1, p, e, sizeof e);
        if (count)
            log_info("sync %s: %d change%s applied", w->sc->name, count, count == 1 ? "" : "s");
    }
    worker_advance(w);
}

static void start_poll(sync_worker *w)
{
    stripe_events_options o = {.base = w->sc->api_base, .secret_key = w->sc->secret_key,
                               .after = w->feed_cursor, .priority = RATELIMIT_SYNC};
    w->busy = true;
    w->poll_failed = false;
    w->uncommitted = 0;
    stripe_events_poll(&w->target, &o, on_event, on_poll_done, w);
}

/* ---- the scheduler: one step at a time, each ending in worker_advance() or a timer */

static void close_handles(sync_worker *w)
{
    uv_close((uv_handle_t *)&w->timer, NULL);
    uv_close((uv_handle_t *)&w->wake, NULL);
    upstream_target_close(&w->target);
    ratelimit_close(&w->limit);
}

void worker_advance(sync_worker *w)
{
    if (w->busy)
        return;
    if (worker_stop_requested(w)) {
        if (!uv_is_closing((uv_handle_t *)&w->timer))
            close_handles(w);
        return;
    }
    if (!connect_db(w)) {
        worker_later(w, RETRY_MS);
        return;
    }
    if (!w->leased && !(w->leased = take_lease(w))) {
        worker_later(w, w->db ? 1000 : RETRY_MS);
        return;
    }
    if (!w->ready) {
        if (w->sc->provider == SYNC_SALESFORCE && !w->described) {
            /* its collections are whatever describe says the objects are */
            salesforce_feed_describe(w);
            return;
        }
        if (setup_schema(w) < 0) {
            worker_later(w, RETRY_MS);
            return;
        }
        w->ready = true;
    }
    if (w->sc->provider == SYNC_SALESFORCE) {
        salesforce_feed_step(w);
        return;
    }
    if (!w->feed_ready) {
        char e[256];
        int found = state_feed_cursor(w->db, w->sc->name, w->feed_cursor, sizeof w->feed_cursor, e, sizeof e);
        if (found < 0) {
            worker_db_failed(w, NULL, e);
            worker_later(w, RETRY_MS);
            return;
        }
        if (found == 0) {
            /* before any listing: events from now on are replayed after it */
            stripe_events_options o = {.base = w->sc->api_base, .secret_key = w->sc->secret_key, .after = NULL,
                                       .priority = RATELIMIT_SYNC};
            w->busy = true;
            stripe_events_poll(&w->target, &o, ignore_event, on_feed_start, w);
            return;
        }
        w->feed_ready = true;
    }
    for (int i = 0; i < w->ncoll; i++)
        if (!w->coll[i].st.incremental) {
            start_backfill(w, i);
            return;
        }
    double wait = w->next_poll - worker_now();
    if (wait > 0) {
        worker_later(w, (uint64_t)(wait * 1000) + 1);
        return;
    }
    start_poll(w);
}

static void on_wake(uv_async_t *a)
{
    sync_worker *w = a->data;
    uv_timer_stop(&w->timer);
    worker_advance(w);
}

static void *worker_main(void *arg)
{
    sync_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    pages_close(w);
    if (w->db)
        PQfinish(w->db);
    w->db = NULL;
    return NULL;
}

void worker_collection_clear(collection *c)
{
    free(c->upsert_sql);
    free(c->tombstoned_sql);
    free(c->delete_sql);
    free(c->sweep_sql);
    free(c->start_sql);
    free(c->page_sql);
    free(c->copy_sql);
    free(c->select_sql);
    salesforce_collection_free(c->owned);
    memset(c, 0, sizeof *c);
}

static void free_worker(sync_worker *w)
{
    for (int i = 0; i < w->ncoll; i++)
        worker_collection_clear(&w->coll[i]);
    salesforce_feed_free(w);
    pages_close(w);
    pthread_mutex_destroy(&w->stop_lock);
    free(w);
}

char *worker_sql_of(int (*gen)(pgbuf *, const char *, const provider_collection *), const char *schema,
                    const provider_collection *c)
{
    pgbuf b;
    pgbuf_init(&b, 4u << 20);
    char *s = gen(&b, schema, c) == 0 ? strdup(b.data) : NULL;
    pgbuf_free(&b);
    return s;
}

char *worker_tombstoned_sql(const char *schema, const provider_collection *c, const char *oldest)
{
    pgbuf b;
    pgbuf_init(&b, 1u << 20);
    char *s = load_tombstoned_sql(&b, schema, c, oldest) == 0 ? strdup(b.data) : NULL;
    pgbuf_free(&b);
    return s;
}

sync_worker *sync_worker_start(const sync_config *sc, const char *service_dsn, const char *read_role)
{
    sync_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->sc = sc;
    w->dsn = service_dsn;
    w->read_role = read_role;
    pthread_mutex_init(&w->stop_lock, NULL);
    page_batch *batches[] = {&w->gather, &w->load};
    for (int i = 0; i < 2; i++) {
        pgbuf_init(&batches[i]->bodies, PAGE_MAX_BYTES);
        pgbuf_init(&batches[i]->copy_rows, PAGE_MAX_BYTES);
    }
    for (const provider_collection *const *p = stripe_collections; sc->provider == SYNC_STRIPE && *p; p++) {
        if (!sync_config_has_collection(sc, (*p)->name))
            continue;
        collection *c = &w->coll[w->ncoll++];
        c->spec = *p;
        c->upsert_sql = worker_sql_of(load_upsert_sql, sc->schema, *p);
        c->tombstoned_sql = worker_tombstoned_sql(sc->schema, *p, "$1::bigint");
        c->delete_sql = worker_sql_of(load_delete_sql, sc->schema, *p);
        c->sweep_sql = worker_sql_of(load_sweep_sql, sc->schema, *p);
        c->start_sql = worker_sql_of(load_backfill_start_sql, sc->schema, *p);
        char *list_sql = worker_sql_of(load_upsert_list_sql, sc->schema, *p);
        c->page_sql = list_sql ? pages_upsert_sql(list_sql) : NULL;
        free(list_sql);
        c->copy_sql = worker_sql_of(copy_rows_statement, sc->schema, *p); /* NULL: pages are upserted */
        if (!c->upsert_sql || !c->tombstoned_sql || !c->delete_sql || !c->sweep_sql || !c->start_sql ||
            !c->page_sql) {
            log_error("sync %s: cannot build the statements for %s", sc->name, (*p)->name);
            free_worker(w);
            return NULL;
        }
    }
    if (uv_loop_init(&w->loop) < 0) {
        free_worker(w);
        return NULL;
    }
    uv_timer_init(&w->loop, &w->timer);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->timer.data = w->wake.data = w;
    if (ratelimit_init_shared(&w->limit, &w->loop, sc->name, sc->allowed_requests, sc->interval, sc->max_concurrent) < 0 ||
        upstream_target_init(&w->target, &w->loop, &w->limit) < 0) {
        log_error("sync %s: cannot set up its HTTP client", sc->name);
        uv_close((uv_handle_t *)&w->timer, NULL);
        uv_close((uv_handle_t *)&w->wake, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        free_worker(w);
        return NULL;
    }
    if (sc->provider == SYNC_SALESFORCE && salesforce_feed_init(w) < 0) {
        log_error("sync %s: cannot set up its salesforce client", sc->name);
        close_handles(w);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        free_worker(w);
        return NULL;
    }
    w->target.timeout_ms = (long)(sc->request_timeout * 1000);
    w->target.connect_timeout_ms = (long)(sc->connect_timeout * 1000);
    worker_later(w, 0);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        log_error("sync %s: cannot start its thread", sc->name);
        close_handles(w);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        free_worker(w);
        return NULL;
    }
    if (sc->provider == SYNC_SALESFORCE)
        log_info("sync %s: worker started (%s into schema %s)", sc->name,
                 sc->ncollections ? "the configured objects" : "every replicateable object", sc->schema);
    else
        log_info("sync %s: worker started (%d collections into schema %s)", sc->name, w->ncoll, sc->schema);
    return w;
}

void sync_worker_stop(sync_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->stop_lock);
    w->stopping = 1;
    pthread_mutex_unlock(&w->stop_lock);
    uv_async_send(&w->wake);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    if (pthread_timedjoin_np(w->thread, NULL, &deadline) != 0) {
        /* a request stuck in its timeout: the process is leaving anyway, and every page
         * the worker committed is whole */
        log_warn("sync %s: the worker did not stop in time; leaving it", w->sc->name);
        return;
    }
    log_info("sync %s: worker stopped", w->sc->name);
    uv_loop_close(&w->loop);
    free_worker(w);
}
