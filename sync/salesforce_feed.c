/* salesforce_feed: see salesforce_feed.h. */
#include "sync/salesforce_feed.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/log.h"
#include "sync/load.h"
#include "sync/schema.h"
#include "sync/state.h"
#include "upstream/json.h"
#include "upstream/salesforce.h"


/* The describe in progress: which objects, and how far it got (w->current). */
typedef struct sf_objects {
    char *name[SYNC_MAX_COLLECTIONS];
    int n;
} sf_objects;

static sf_objects *objects_of(sync_worker *w) { return (sf_objects *)w->feed; }

/* A SystemModstamp ("2026-12-03T09:00:00.000+0000") in whole unix seconds, rounded down;
 * false for any other form. */
static bool modstamp_seconds(const char *s, double *out)
{
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return false;
    if (*rest == '.')
        while (isdigit((unsigned char)*++rest))
            ;
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+0000") != 0 && strcmp(rest, "+00:00") != 0)
        return false;
    *out = (double)timegm(&tm);
    return true;
}

/* The tombstoned statement's $1 for records upserted at version (load_upsert_sql: a record's
 * own SystemModstamp, else version): the oldest of their versions, or 0 (every tombstone)
 * when one cannot be read. */
static void upserted_oldest(const cJSON *records, double version, char out[32])
{
    double oldest = floor(version);
    const cJSON *r;
    cJSON_ArrayForEach(r, records)
    {
        const char *stamp = json_string(r, "SystemModstamp");
        double t;
        if (!stamp)
            continue;
        if (!modstamp_seconds(stamp, &t)) {
            oldest = 0;
            break;
        }
        if (t < oldest)
            oldest = t;
    }
    snprintf(out, 32, "%.0f", oldest);
}

int salesforce_feed_init(sync_worker *w)
{
    const sync_config *sc = w->sc;
    salesforce_options o;
    sync_config_salesforce_options(sc, &o);
    w->sf = salesforce_client_new(&w->target, &o);
    w->feed = calloc(1, sizeof(sf_objects));
    return w->sf && w->feed ? 0 : -1;
}

static void objects_clear(sf_objects *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->name[i]);
    o->n = 0;
}

void salesforce_feed_free(sync_worker *w)
{
    if (w->feed)
        objects_clear(objects_of(w));
    free(w->feed);
    w->feed = NULL;
    salesforce_client_free(w->sf);
    w->sf = NULL;
}

/* Salesforce's names are letters, digits and underscores; anything else is refused before it
 * reaches a URL or a SOQL statement. */
static bool plain_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Whole seconds (times here are positive). */
static double whole(double t) { return (double)(long long)t; }

/* SOQL's date-time literal (unquoted), also what getDeleted takes: 2026-11-25T03:30:00Z. */
static void iso_time(double t, char *out, size_t len)
{
    time_t s = (time_t)whole(t);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double server_now(sync_worker *w)
{
    double t = salesforce_server_time(w->sf);
    return t > 0 ? t : worker_now();
}

/* ---- describe: the objects' fields, the tables' columns */

static void describe_next(sync_worker *w);

static char *select_sql_of(const provider_collection *spec)
{
    pgbuf b;
    pgbuf_init(&b, 1u << 20);
    pgbuf_put(&b, "SELECT ", 7);
    for (int i = 0; i < spec->nfields; i++) {
        if (i)
            pgbuf_put(&b, ", ", 2);
        pgbuf_put(&b, spec->fields[i].name, strlen(spec->fields[i].name));
    }
    pgbuf_put(&b, " FROM ", 6);
    pgbuf_put(&b, spec->object, strlen(spec->object));
    pgbuf_put_byte(&b, 0);
    char *s = b.failed ? NULL : strdup(b.data);
    pgbuf_free(&b);
    return s;
}

static void on_describe(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    sync_worker *w = ctx;
    sf_objects *o = objects_of(w);
    const char *name = o->name[w->current];
    w->busy = false;
    if (worker_stop_requested(w)) {
        worker_advance(w);
        return;
    }
    if (err) {
        worker_record_error(w, name, err->message);
        worker_later(w, RETRY_MS);
        return;
    }
    provider_collection *spec = salesforce_collection_from_describe(body);
    const char *problem = NULL;
    if (!spec)
        problem = "describe returned no usable object";
    else if (strcmp(spec->name, name) != 0 || !plain_name(spec->object))
        problem = "describe named another object";
    else if (!spec->version_field)
        problem = "the object has no SystemModstamp, so its changes cannot be followed";
    for (int i = 0; spec && !problem && i < spec->nfields; i++)
        if (!plain_name(spec->fields[i].name))
            problem = "describe lists a field whose name is not a plain identifier";
    collection *c = &w->coll[w->current];
    if (!problem) {
        worker_collection_clear(c);
        c->owned = spec;
        c->spec = spec;
        c->upsert_sql = worker_sql_of(load_upsert_sql, w->sc->schema, spec);
        c->tombstoned_sql = worker_tombstoned_sql(w->sc->schema, spec, "$1::double precision");
        c->delete_sql = worker_sql_of(load_delete_listed_sql, w->sc->schema, spec);
        c->sweep_sql = worker_sql_of(load_sweep_sql, w->sc->schema, spec);
        c->select_sql = select_sql_of(spec);
        if (!c->upsert_sql || !c->tombstoned_sql || !c->delete_sql || !c->sweep_sql || !c->select_sql) {
            worker_collection_clear(c);
            problem = "cannot build its statements";
        }
        spec = NULL;
    }
    if (problem) {
        salesforce_collection_free(spec);
        char msg[300];
        snprintf(msg, sizeof msg, "salesforce object %s: %s", name, problem);
        worker_record_error(w, name, msg);
        worker_later(w, RETRY_MS);
        return;
    }
    w->current++;
    describe_next(w);
}

static void describe_next(sync_worker *w)
{
    sf_objects *o = objects_of(w);
    if (w->current >= o->n) {
        for (int i = o->n; i < w->ncoll; i++)
            worker_collection_clear(&w->coll[i]);
        w->ncoll = o->n;
        w->described = true;
        w->described_at = worker_now();
        log_debug("sync %s: described %d objects", w->sc->name, w->ncoll);
        worker_advance(w);
        return;
    }
    const char *name = o->name[w->current];
    char path[300];
    snprintf(path, sizeof path, "/sobjects/%s/describe", name);
    w->busy = true;
    if (salesforce_request(w->sf, "GET", path, NULL, RATELIMIT_SYNC, on_describe, w) < 0) {
        w->busy = false;
        worker_record_error(w, name, "out of memory starting a describe");
        worker_later(w, RETRY_MS);
    }
}

/* describeGlobal: with no collection_ids, every object that can be replicated. */
static void on_describe_global(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    sync_worker *w = ctx;
    sf_objects *o = objects_of(w);
    w->busy = false;
    if (worker_stop_requested(w)) {
        worker_advance(w);
        return;
    }
    if (err) {
        worker_record_error(w, NULL, err->message);
        worker_later(w, RETRY_MS);
        return;
    }
    objects_clear(o);
    const cJSON *s;
    int skipped = 0;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(body, "sobjects"))
    {
        const char *name = json_string(s, "name");
        if (!plain_name(name) || strlen(name) > 63 || !json_true(s, "queryable") || !json_true(s, "replicateable") ||
            !json_true(s, "retrieveable") || json_true(s, "deprecatedAndHidden") || json_true(s, "customSetting"))
            continue;
        if (o->n == SYNC_MAX_COLLECTIONS) {
            skipped++;
            continue;
        }
        char *lower = strdup(name);
        if (!lower)
            break;
        for (char *p = lower; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + ('a' - 'A') : *p);
        o->name[o->n++] = lower;
    }
    if (skipped)
        log_warn("sync %s: salesforce has %d more replicateable objects than the %d a sync mirrors; list the "
                 "ones you want in collection_ids", w->sc->name, skipped, SYNC_MAX_COLLECTIONS);
    w->current = 0;
    describe_next(w);
}

void salesforce_feed_describe(sync_worker *w)
{
    sf_objects *o = objects_of(w);
    objects_clear(o);
    w->current = 0;
    if (w->sc->ncollections == 0) {
        w->busy = true;
        if (salesforce_request(w->sf, "GET", "/sobjects", NULL, RATELIMIT_SYNC, on_describe_global, w) < 0) {
            w->busy = false;
            worker_record_error(w, NULL, "out of memory starting describeGlobal");
            worker_later(w, RETRY_MS);
        }
        return;
    }
    for (int i = 0; i < w->sc->ncollections; i++) {
        if (!plain_name(w->sc->collections[i]) || !(o->name[o->n] = strdup(w->sc->collections[i]))) {
            worker_record_error(w, w->sc->collections[i], "not a salesforce object name");
            worker_later(w, RETRY_MS);
            return;
        }
        o->n++;
    }
    describe_next(w);
}

/* ---- backfill: every record in Id order, a page and its last Id per transaction */

static int on_backfill_records(const cJSON *records, long total, void *ctx)
{
    sync_worker *w = ctx;
    collection *c = &w->coll[w->current];
    int n = cJSON_GetArraySize(records);
    if (n == 0)
        return worker_stop_requested(w);
    const char *last = json_string(cJSON_GetArrayItem(records, n - 1), "Id");
    if (!last || !plain_name(last)) {
        worker_record_error(w, c->spec->name, "a listed record has no usable Id");
        w->poll_failed = true;
        return 1;
    }
    /* totalSize counts what this query (after the cursor) will return */
    char version[32], rows[32], upstream[32];
    /* when the rows were read: the version of a record without SystemModstamp, and what a
     * row written since (by the write path) must not lose to at an equal version (load.c) */
    snprintf(version, sizeof version, "%.3f", w->query_started);
    snprintf(rows, sizeof rows, "%d", n);
    snprintf(upstream, sizeof upstream, "%lld", w->pages == 0 && total >= 0 ? c->st.rows_loaded + total : -1LL);
    char *json = cJSON_PrintUnformatted(records);
    const char *up[] = {json, version};
    char oldest[32];
    upserted_oldest(records, w->query_started, oldest);
    const char *sp[] = {w->sc->name, c->spec->name, last, rows, upstream};
    char err[512];
    if (!json || state_exec(w->db, "BEGIN", 0, NULL, err, sizeof err) < 0 ||
        state_exec(w->db, c->upsert_sql, 2, up, err, sizeof err) < 0 ||
        state_exec(w->db, c->tombstoned_sql, 1, (const char *[]){oldest}, err, sizeof err) < 0 ||
        state_exec(w->db, "UPDATE apigres.sync_state SET cursor = $3, rows_loaded = rows_loaded + $4, "
                          "rows_upstream = coalesce(nullif($5::bigint, -1), rows_upstream), updated_at = now() "
                          "WHERE sync = $1 AND collection = $2",
                   5, sp, err, sizeof err) < 0 ||
        state_exec(w->db, "COMMIT", 0, NULL, err, sizeof err) < 0) {
        worker_db_failed(w, c->spec->name, json ? err : "out of memory");
        free(json);
        w->poll_failed = true;
        return 1;
    }
    free(json);
    c->st.rows_loaded += n;
    snprintf(c->st.cursor, sizeof c->st.cursor, "%s", last);
    w->pages++;
    w->rows += n;
    if (worker_now() - w->last_progress >= PROGRESS_EVERY)
        worker_progress(w, "in progress");
    return worker_stop_requested(w);
}

static void on_backfill_done(const upstream_error *err, int pages, void *ctx)
{
    sync_worker *w = ctx;
    collection *c = &w->coll[w->current];
    w->busy = false;
    if (worker_stop_requested(w) || !w->db) {
        worker_advance(w);
        return;
    }
    if (w->poll_failed) {
        worker_later(w, RETRY_MS);
        return;
    }
    if (err) {
        if (strstr(err->detail, "INVALID_QUERY_LOCATOR")) {
            /* the query's cursor expired upstream: query again after the last committed Id */
            log_warn("sync %s: %s: the listing's query locator expired; resuming from the last page",
                     w->sc->name, c->spec->name);
            worker_advance(w);
            return;
        }
        if (strcmp(err->sqlstate, "42703") == 0) /* a field went away: describe again */
            w->described = w->ready = false;
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
    char e[256];
    const char *p[] = {w->sc->name, c->spec->name, NULL};
    if (!c->st.cursor[0]) {
        /* The change windows start before the listing does (server time, less the
         * overlap): whatever changes while it runs is read again after it. */
        char since[32];
        snprintf(since, sizeof since, "%.0f", whole(server_now(w)) - SALESFORCE_FEED_OVERLAP);
        p[2] = since;
        if (state_exec(w->db, "UPDATE apigres.sync_state SET backfill_started_at = now(), rows_loaded = 0, "
                              "rows_upstream = NULL, backfill_done_at = NULL, "
                              "updated_since = to_timestamp($3::double precision), "
                              "deleted_since = to_timestamp($3::double precision) "
                              "WHERE sync = $1 AND collection = $2",
                       3, p, e, sizeof e) < 0) {
            worker_db_failed(w, c->spec->name, e);
            worker_later(w, RETRY_MS);
            return;
        }
        c->st.rows_loaded = 0;
    }
    if (c->st.cursor[0] && !plain_name(c->st.cursor)) {
        worker_record_error(w, c->spec->name, "the stored cursor is not a record id; listing again");
        c->st.cursor[0] = '\0';
        worker_later(w, RETRY_MS);
        return;
    }
    char *soql = malloc(strlen(c->select_sql) + 300);
    if (!soql) {
        worker_later(w, RETRY_MS);
        return;
    }
    sprintf(soql, "%s%s%s%s ORDER BY Id", c->select_sql, c->st.cursor[0] ? " WHERE Id > '" : "", c->st.cursor,
            c->st.cursor[0] ? "'" : "");
    w->current = i;
    w->pages = w->rows = 0;
    w->started = w->last_progress = worker_now();
    w->poll_failed = false;
    log_info("sync %s: %s backfill %s", w->sc->name, c->spec->name,
             c->st.cursor[0] ? "resumes from its cursor" : "starts");
    w->busy = true;
    w->query_started = worker_now();
    if (salesforce_query(w->sf, soql, false, RATELIMIT_SYNC, on_backfill_records, on_backfill_done, w) < 0) {
        w->busy = false;
        worker_record_error(w, c->spec->name, "out of memory starting a listing");
        worker_later(w, RETRY_MS);
    }
    free(soql);
}

/* ---- incremental: SystemModstamp windows, then getDeleted */

static void poll_done(sync_worker *w)
{
    if (++w->poll_index >= w->ncoll) {
        w->poll_index = 0;
        w->next_poll = worker_now() + w->sc->poll_interval;
    }
}

/* One object back to a full listing: its changes can no longer be read as changes. */
static void relist(sync_worker *w, collection *c)
{
    char e[256];
    const char *p[] = {w->sc->name, c->spec->name};
    if (state_exec(w->db, "UPDATE apigres.sync_state SET phase = 'backfill', cursor = '' "
                          "WHERE sync = $1 AND collection = $2",
                   2, p, e, sizeof e) < 0) {
        worker_db_failed(w, c->spec->name, e);
        return;
    }
    c->st.incremental = false;
    c->st.cursor[0] = '\0';
}

static int on_updated_records(const cJSON *records, long total, void *ctx)
{
    sync_worker *w = ctx;
    collection *c = &w->coll[w->current];
    int n = cJSON_GetArraySize(records);
    if (n == 0)
        return worker_stop_requested(w);
    const char *last = json_string(cJSON_GetArrayItem(records, n - 1), "SystemModstamp");
    char version[32], settled[32];
    snprintf(version, sizeof version, "%.3f", w->query_started); /* see on_backfill_records */
    snprintf(settled, sizeof settled, "%.0f", whole(w->poll_server_time) - SALESFORCE_FEED_OVERLAP);
    char *json = cJSON_PrintUnformatted(records);
    const char *up[] = {json, version};
    char oldest[32];
    upserted_oldest(records, w->query_started, oldest);
    /* Ordered by SystemModstamp: everything before the last one's second has been read, so
     * the window may start there (not past what has surely settled). */
    const char *sp[] = {w->sc->name, c->spec->name, last, settled};
    char err[512];
    if (!json || !last || state_exec(w->db, "BEGIN", 0, NULL, err, sizeof err) < 0 ||
        state_exec(w->db, c->upsert_sql, 2, up, err, sizeof err) < 0 ||
        state_exec(w->db, c->tombstoned_sql, 1, (const char *[]){oldest}, err, sizeof err) < 0 ||
        state_exec(w->db, "UPDATE apigres.sync_state SET updated_since = greatest(updated_since, "
                          "least($3::timestamptz, to_timestamp($4::double precision))), updated_at = now() "
                          "WHERE sync = $1 AND collection = $2",
                   4, sp, err, sizeof err) < 0 ||
        state_exec(w->db, "COMMIT", 0, NULL, err, sizeof err) < 0) {
        worker_db_failed(w, c->spec->name, !json ? "out of memory" : !last ? "a record without SystemModstamp" : err);
        free(json);
        w->poll_failed = true;
        return 1;
    }
    free(json);
    w->rows += n;
    return worker_stop_requested(w);
}

static void on_deleted(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    sync_worker *w = ctx;
    collection *c = &w->coll[w->current];
    w->busy = false;
    if (worker_stop_requested(w) || !w->db) {
        worker_advance(w);
        return;
    }
    if (err) {
        if (strstr(err->detail, "INVALID_REPLICATION_DATE")) {
            log_warn("sync %s: %s: its deletions since the last poll are no longer available (%s); listing it "
                     "again", w->sc->name, c->spec->name, err->message);
            relist(w, c);
            worker_advance(w);
            return;
        }
        worker_record_error(w, c->spec->name, err->message);
        poll_done(w);
        worker_later(w, RETRY_MS);
        return;
    }
    const cJSON *deleted = cJSON_GetObjectItemCaseSensitive(body, "deletedRecords");
    const char *latest = json_string(body, "latestDateCovered");
    int n = cJSON_GetArraySize(deleted);
    char *json = n > 0 ? cJSON_PrintUnformatted(deleted) : NULL;
    const char *dp[] = {json};
    const char *sp[] = {w->sc->name, c->spec->name, latest};
    char e[512];
    if (!cJSON_IsArray(deleted) || !latest) {
        worker_record_error(w, c->spec->name, "getDeleted answered without deletedRecords or latestDateCovered");
        free(json);
        poll_done(w);
        worker_later(w, RETRY_MS);
        return;
    }
    if ((n > 0 && !json) || state_exec(w->db, "BEGIN", 0, NULL, e, sizeof e) < 0 ||
        (n > 0 && state_exec(w->db, c->delete_sql, 1, dp, e, sizeof e) < 0) ||
        state_exec(w->db, "UPDATE apigres.sync_state SET deleted_since = greatest(deleted_since, $3::timestamptz), "
                          "last_poll_at = now(), last_error = NULL, updated_at = now() "
                          "WHERE sync = $1 AND collection = $2",
                   3, sp, e, sizeof e) < 0 ||
        state_exec(w->db, "COMMIT", 0, NULL, e, sizeof e) < 0) {
        worker_db_failed(w, c->spec->name, json || n == 0 ? e : "out of memory");
        free(json);
        poll_done(w);
        worker_later(w, RETRY_MS);
        return;
    }
    free(json);
    if (w->rows || n)
        log_debug("sync %s: %s: %lld records with a recent SystemModstamp read, %d deletions", w->sc->name,
                  c->spec->name, w->rows, n);
    if (n)
        log_info("sync %s: %s: %d deletion%s applied", w->sc->name, c->spec->name, n, n == 1 ? "" : "s");
    poll_done(w);
    worker_advance(w);
}

static void start_deleted(sync_worker *w, collection *c)
{
    char start[32], end[32];
    double now = server_now(w);
    iso_time(c->deleted_since, start, sizeof start);
    iso_time(now > c->deleted_since ? now : c->deleted_since, end, sizeof end);
    w->busy = true;
    if (salesforce_changes(w->sf, c->spec->object, true, start, end, RATELIMIT_SYNC, on_deleted, w) < 0) {
        w->busy = false;
        worker_record_error(w, c->spec->name, "out of memory starting getDeleted");
        poll_done(w);
        worker_later(w, RETRY_MS);
    }
}

static void on_updated_done(const upstream_error *err, int pages, void *ctx)
{
    sync_worker *w = ctx;
    collection *c = &w->coll[w->current];
    w->busy = false;
    if (worker_stop_requested(w) || !w->db) {
        worker_advance(w);
        return;
    }
    if (w->poll_failed) {
        poll_done(w);
        worker_later(w, RETRY_MS);
        return;
    }
    if (err) {
        if (strcmp(err->sqlstate, "42703") == 0) /* a field went away: describe again */
            w->described = w->ready = false;
        worker_record_error(w, c->spec->name, err->message);
        poll_done(w);
        worker_later(w, RETRY_MS);
        return;
    }
    /* Every record written before the query's time (less the overlap) has been read. */
    char settled[32], e[256];
    snprintf(settled, sizeof settled, "%.0f", whole(w->poll_server_time) - SALESFORCE_FEED_OVERLAP);
    const char *p[] = {w->sc->name, c->spec->name, settled};
    if (state_exec(w->db, "UPDATE apigres.sync_state SET updated_since = greatest(updated_since, "
                          "to_timestamp($3::double precision)) WHERE sync = $1 AND collection = $2",
                   3, p, e, sizeof e) < 0) {
        worker_db_failed(w, c->spec->name, e);
        poll_done(w);
        worker_later(w, RETRY_MS);
        return;
    }
    start_deleted(w, c);
}

/* Reads c's windows from sync_state (what a restart or another instance left). */
static int load_windows(sync_worker *w, collection *c)
{
    const char *p[] = {w->sc->name, c->spec->name};
    PGresult *r = PQexecParams(w->db, "SELECT extract(epoch FROM updated_since), extract(epoch FROM deleted_since) "
                                      "FROM apigres.sync_state WHERE sync = $1 AND collection = $2",
                               2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        worker_db_failed(w, c->spec->name, PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    /* none yet (state from before windows were kept): from now on */
    double fallback = whole(server_now(w)) - SALESFORCE_FEED_OVERLAP;
    c->updated_since = PQgetisnull(r, 0, 0) ? fallback : atof(PQgetvalue(r, 0, 0));
    c->deleted_since = PQgetisnull(r, 0, 1) ? fallback : atof(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

static void start_updated(sync_worker *w, int i)
{
    collection *c = &w->coll[i];
    if (load_windows(w, c) < 0) {
        worker_later(w, RETRY_MS);
        return;
    }
    char since[32];
    iso_time(c->updated_since, since, sizeof since);
    char *soql = malloc(strlen(c->select_sql) + 200);
    if (!soql) {
        worker_later(w, RETRY_MS);
        return;
    }
    sprintf(soql, "%s WHERE SystemModstamp >= %s ORDER BY SystemModstamp, Id", c->select_sql, since);
    w->current = i;
    w->rows = 0;
    w->poll_failed = false;
    w->poll_server_time = server_now(w);
    w->busy = true;
    w->query_started = worker_now();
    if (salesforce_query(w->sf, soql, false, RATELIMIT_SYNC, on_updated_records, on_updated_done, w) < 0) {
        w->busy = false;
        worker_record_error(w, c->spec->name, "out of memory starting a query");
        poll_done(w);
        worker_later(w, RETRY_MS);
    }
    free(soql);
}

void salesforce_feed_step(sync_worker *w)
{
    for (int i = 0; i < w->ncoll; i++)
        if (!w->coll[i].st.incremental) {
            start_backfill(w, i);
            return;
        }
    if (w->poll_index == 0 || w->poll_index >= w->ncoll) {
        w->poll_index = 0;
        if (worker_now() - w->described_at >= SALESFORCE_FEED_DESCRIBE_EVERY) {
            /* a field may have appeared upstream: describe again, then add its column */
            w->described = w->ready = false;
            worker_advance(w);
            return;
        }
        double wait = w->next_poll - worker_now();
        if (wait > 0 || w->ncoll == 0) {
            worker_later(w, (uint64_t)((wait > 0 ? wait : w->sc->poll_interval) * 1000) + 1);
            return;
        }
    }
    start_updated(w, w->poll_index);
}
