/* write: see write.h. */
#include "proxy/write.h"
#include "proxy/write_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "parser/classify.h"
#include "parser/rewrite.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "sync/load.h"
#include "sync/schema.h"
#include "upstream/json.h"
#include "upstream/salesforce_records.h"
#include "upstream/stripe_collections.h"

/* ---------------------------------------------------------------- context */

/* Classifications of one text at most (see wj_classify). */
#define WJ_CLASSIFY_PASSES 8

/* The mirror lock's queries, prepared on each lock connection: two of them every write. */
#define LOCK_STATEMENT "apigres_mirror_lock"
#define UNLOCK_STATEMENT "apigres_mirror_unlock"

int write_context_init(write_context *w, uv_loop_t *loop, const config *cfg)
{
    memset(w, 0, sizeof *w);
    w->max_rows = WRITE_DEFAULT_MAX_ROWS;
    if (!(w->plans = plan_cache_new()))
        goto fail;
    for (int i = 0; i < cfg->nsyncs; i++) {
        const sync_config *sc = &cfg->syncs[i];
        write_sync *ws = &w->syncs[w->nsyncs];
        ws->sc = sc;
        if (ratelimit_init_shared(&ws->limit, loop, sc->name, sc->allowed_requests, sc->interval, sc->max_concurrent) < 0)
            goto fail;
        if (upstream_target_init(&ws->target, loop, &ws->limit) < 0) {
            ratelimit_close(&ws->limit);
            goto fail;
        }
        ws->target.timeout_ms = (long)(sc->request_timeout * 1000);
        ws->target.connect_timeout_ms = (long)(sc->connect_timeout * 1000);
        if ((sc->provider == SYNC_STRIPE && !(ws->stripe = stripe_client_new(&ws->target, sc->api_base, sc->secret_key))) ||
            (sc->provider == SYNC_SALESFORCE && wsf_init(ws) < 0)) {
            upstream_target_close(&ws->target);
            wsf_close(ws);
            stripe_client_free(ws->stripe);
            ratelimit_close(&ws->limit);
            goto fail;
        }
        w->schemas[w->nsyncs] = sc->schema;
        w->nsyncs++;
    }
    if (w->nsyncs > 0) {
        const char *dsn = cfg->service_database ? cfg->service_database : cfg->database;
        for (int i = 0; i < WRITE_LOCK_CONNECTIONS; i++)
            if (!(w->locks[i] = service_new(loop, dsn)) ||
                service_prepare(w->locks[i], LOCK_STATEMENT, "SELECT pg_try_advisory_lock(" MIRROR_LOCK_CLASS_SQL ", $1::int)") < 0 ||
                service_prepare(w->locks[i], UNLOCK_STATEMENT, "SELECT pg_advisory_unlock(" MIRROR_LOCK_CLASS_SQL ", $1::int)") < 0)
                goto fail;
        if (!(w->repairs = service_new(loop, dsn)))
            goto fail;
    }
    return 0;
fail:
    log_error("write path: cannot set up the API clients");
    write_context_close(w);
    return -1;
}

void write_context_close(write_context *w)
{
    for (int i = 0; i < w->nsyncs; i++) {
        /* the target first: calls still under way end (their callbacks run) while the
         * clients they belong to are alive */
        upstream_target_close(&w->syncs[i].target);
        stripe_client_free(w->syncs[i].stripe);
        wsf_close(&w->syncs[i]);
        ratelimit_close(&w->syncs[i].limit);
    }
    w->nsyncs = 0;
    for (int i = 0; i < WRITE_LOCK_CONNECTIONS; i++) {
        service_free(w->locks[i]);
        w->locks[i] = NULL;
    }
    service_free(w->repairs);
    w->repairs = NULL;
    unsigned long long hits, lookups;
    plan_cache_stats(w->plans, &hits, &lookups);
    if (lookups > 0)
        log_info("write path: the plan cache answered %llu of %llu lookups", hits, lookups);
    plan_cache_free(w->plans);
    w->plans = NULL;
}

bool write_enabled(const write_context *w) { return w->nsyncs > 0; }

/* The sync and collection of schema.table, if the write path serves it. */
static write_sync *find_table(write_context *w, const char *schema, const char *table,
                              const provider_collection **coll, bool *pending)
{
    *pending = false;
    for (int i = 0; i < w->nsyncs; i++) {
        write_sync *ws = &w->syncs[i];
        if (strcmp(ws->sc->schema, schema) != 0)
            continue;
        if (ws->sc->provider == SYNC_STRIPE && sync_config_has_collection(ws->sc, table))
            *coll = provider_find(stripe_collections, table);
        else if (ws->sc->provider == SYNC_SALESFORCE)
            *coll = wsf_collection(ws, table, pending);
        else
            *coll = NULL;
        return ws;
    }
    return NULL;
}

static bool is_synced_name(const write_context *w, const char *table)
{
    for (int i = 0; i < w->nsyncs; i++)
        if ((w->syncs[i].sc->provider == SYNC_STRIPE && sync_config_has_collection(w->syncs[i].sc, table) &&
             provider_find(stripe_collections, table)) ||
            (w->syncs[i].sc->provider == SYNC_SALESFORCE && wsf_known(&w->syncs[i], table)))
            return true;
    return false;
}

bool wj_may_name_synced(const write_context *w, const char *sql, size_t len)
{
    const char *names[CONFIG_MAX_SYNCS * (SYNC_MAX_COLLECTIONS + 1)];
    size_t n = 0, cap = sizeof names / sizeof *names;
    for (int i = 0; i < w->nsyncs && n < cap; i++) {
        const write_sync *ws = &w->syncs[i];
        names[n++] = ws->sc->schema;
        for (const provider_collection *const *c = stripe_collections; ws->sc->provider == SYNC_STRIPE && *c && n < cap;
             c++)
            if (sync_config_has_collection(ws->sc, (*c)->name))
                names[n++] = (*c)->name;
        for (int k = 0; k < ws->nsf_colls && n < cap; k++)
            names[n++] = ws->sf_colls[k]->name;
    }
    return n == cap || classify_may_name(sql, len, names, n);
}

/* Adds the unqualified names of cr not yet in res[0..*nres) that name no synced table, as
 * the client's own tables (the others are the session's to place). */
static void add_local_names(const write_context *wc, const classify_result *cr, classify_resolved *res,
                            size_t *nres, size_t cap)
{
    for (size_t i = 0; i < cr->n_stmts; i++) {
        const classify_stmt *st = &cr->stmts[i];
        for (size_t u = 0; u < st->n_unresolved; u++) {
            if (!is_synced_name(wc, st->unresolved[u]) && *nres < cap)
                res[(*nres)++] = (classify_resolved){st->unresolved[u], NULL};
        }
    }
}

/* classify_sql with res[0..nres) resolved, again while passes find more unqualified names
 * of the client's own tables (the classifier stops at a statement's first refusal: a rule
 * on such a table hides the tables its actions write). The names point into the earlier
 * passes' results, kept until the end. */
static int classify_passes(const write_context *wc, const char *sql, size_t len, bool keep_trees,
                           classify_resolved *res, size_t nres, size_t cap, classify_result **out)
{
    classify_options opt = {.schemas = wc->schemas, .n_schemas = (size_t)wc->nsyncs, .keep_trees = keep_trees};
    classify_result *earlier[WJ_CLASSIFY_PASSES] = {0};
    int nearlier = 0, rc = 0;
    classify_result *cr = NULL;
    for (;;) {
        opt.resolved = res;
        opt.n_resolved = nres;
        if (classify_sql(sql, len, &opt, &cr) < 0) {
            rc = -1;
            break;
        }
        size_t known = nres;
        add_local_names(wc, cr, res, &nres, cap);
        if (nres == known || nearlier == WJ_CLASSIFY_PASSES)
            break;
        earlier[nearlier++] = cr;
    }
    for (int i = 0; i < nearlier; i++)
        classify_result_free(earlier[i]);
    *out = rc < 0 ? NULL : cr;
    return rc;
}

/* Whether st names a synced table's name without its schema. */
static bool names_synced_unqualified(const write_context *wc, const classify_stmt *st)
{
    for (size_t u = 0; u < st->n_unresolved; u++)
        if (is_synced_name(wc, st->unresolved[u]))
            return true;
    return false;
}

/* Whether the session can be asked where st's unqualified names live when its turn comes
 * (in a Query of several statements, or at an Execute): any statement but a COPY, whose
 * CopyData would have to come from the client while a job of ours holds the session. */
bool wj_asked_in_turn(const write_context *wc, const classify_stmt *st)
{
    return st->command != CLASSIFY_CMD_COPY && names_synced_unqualified(wc, st);
}

/* Refuses (0A000) the statements of cr that name a synced table's name without its schema
 * and that the session is not to be asked about (in_turn: those of wj_asked_in_turn are). 0,
 * or -1 when out of memory. */
static int refuse_unresolved(const write_context *wc, classify_result *cr, bool in_turn)
{
    for (size_t i = 0; i < cr->n_stmts; i++) {
        classify_stmt *st = &cr->stmts[i];
        if (!names_synced_unqualified(wc, st) || (in_turn && wj_asked_in_turn(wc, st)))
            continue;
        const char *name = NULL;
        for (size_t u = 0; u < st->n_unresolved && !name; u++)
            if (is_synced_name(wc, st->unresolved[u]))
                name = st->unresolved[u];
        char msg[256];
        snprintf(msg, sizeof msg, "apigres needs the schema of table \"%s\" to write it", name);
        free(st->message);
        free(st->hint);
        st->verdict = CLASSIFY_REFUSE;
        memcpy(st->sqlstate, "0A000", 6);
        st->message = strdup(msg);
        st->hint = strdup("Qualify the table with its schema, e.g. stripe.customer.");
        if (!st->message || !st->hint)
            return -1;
    }
    return 0;
}

int wj_classify(const write_context *wc, const char *sql, size_t len, bool keep_trees, bool *ask,
                classify_result **out)
{
    classify_result *cr = plan_cache_classify(wc->plans, sql, len);
    if (!cr) {
        classify_resolved res[64];
        if (classify_passes(wc, sql, len, keep_trees, res, 0, sizeof res / sizeof *res, &cr) < 0)
            return -1;
        plan_cache_keep_classify(wc->plans, sql, len, cr);
    }
    bool one = cr->n_stmts == 1;
    if (ask)
        *ask = one && names_synced_unqualified(wc, &cr->stmts[0]);
    int rc = 0;
    if (!ask || !*ask)
        rc = refuse_unresolved(wc, cr, ask != NULL && !one);
    if (rc < 0) {
        classify_result_free(cr);
        return -1;
    }
    *out = cr;
    return 0;
}

/* The field a column stands for: columns are the field names lower-cased. */
static const provider_field *field_of_column(const provider_collection *c, const char *column)
{
    for (int i = 0; i < c->nfields; i++)
        if (strcasecmp(c->fields[i].name, column) == 0)
            return &c->fields[i];
    return NULL;
}

/* A bare name RETURNING reads (rewrite.h: returning_bare) that is not a column of the
 * target; NULL when they all are. */
static const char *foreign_bare_name(const rewrite_result *rw, const provider_collection *coll)
{
    for (size_t i = 0; i < rw->n_returning_bare; i++) {
        const char *name = rw->returning_bare[i];
        if (strcmp(name, "id") != 0 && strcmp(name, SCHEMA_COL_UPDATED_AT) != 0 &&
            strcmp(name, SCHEMA_COL_SYNCED_AT) != 0 && !field_of_column(coll, name) &&
            !rewrite_system_column(name))
            return name;
    }
    return NULL;
}

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- SQL text helpers */

static void put(pgbuf *b, const char *s) { pgbuf_put(b, s, strlen(s)); }

/* {"a","b"}: a text[] literal's text. */
static void put_array_text(pgbuf *b, char *const *ids, size_t n)
{
    pgbuf_put_byte(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            pgbuf_put_byte(b, ',');
        pgbuf_put_byte(b, '"');
        for (const char *p = ids[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                pgbuf_put_byte(b, '\\');
            pgbuf_put_byte(b, (uint8_t)*p);
        }
        pgbuf_put_byte(b, '"');
    }
    pgbuf_put_byte(b, '}');
}

static void put_array_literal(pgbuf *b, char *const *ids, size_t n)
{
    pgbuf text;
    pgbuf_init(&text, 1u << 20);
    put_array_text(&text, ids, n);
    pgbuf_put_byte(&text, 0);
    if (text.failed)
        b->failed = true;
    else
        schema_quote_literal(b, text.data);
    pgbuf_free(&text);
    put(b, "::text[]");
}

static void put_mirror_function(pgbuf *b, const char *schema, const char *table)
{
    char name[160];
    snprintf(name, sizeof name, "mirror %s.%s", schema, table);
    put(b, SCHEMA_SERVICE ".");
    schema_quote_ident(b, name);
}

/* ---------------------------------------------------------------- re-applying records */

/* Records mutated inside a client transaction, re-applied when it ends (DESIGN §4.3). */
typedef struct repair {
    struct repair *next;
    char schema[64], table[64];
    char *records; /* JSON array */
    char *gone;    /* text[] literal text */
    char version[32];
} repair;

static void repair_send(write_context *wc, repair *r)
{
    pgbuf sql;
    pgbuf_init(&sql, 4096);
    put(&sql, "SELECT ");
    put_mirror_function(&sql, r->schema, r->table);
    put(&sql, "($1::jsonb, $2::double precision, $3::text[])");
    pgbuf_put_byte(&sql, 0);
    const char *params[] = {r->records, r->version, r->gone};
    if (sql.failed || service_query(wc->repairs, sql.data, 3, params, NULL, NULL) < 0)
        log_error("write path: cannot re-apply records of %s.%s", r->schema, r->table);
    pgbuf_free(&sql);
    free(r->records);
    free(r->gone);
    free(r);
}

static repair *repair_new(const char *schema, const char *table, const cJSON *records,
                          char *const *gone, size_t ngone, double version)
{
    repair *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->schema, sizeof r->schema, "%s", schema);
    snprintf(r->table, sizeof r->table, "%s", table);
    snprintf(r->version, sizeof r->version, "%.6f", version);
    r->records = cJSON_PrintUnformatted(records);
    pgbuf g;
    pgbuf_init(&g, 1u << 20);
    put_array_text(&g, gone, ngone);
    pgbuf_put_byte(&g, 0);
    r->gone = g.failed ? NULL : strdup(g.data);
    pgbuf_free(&g);
    if (!r->records || !r->gone) {
        free(r->records);
        free(r->gone);
        free(r);
        return NULL;
    }
    return r;
}

void write_on_ready(session *s, char status)
{
    if (status != 'I' || !s->repairs)
        return;
    while (s->repairs) {
        repair *r = s->repairs;
        s->repairs = r->next;
        repair_send(&s->srv->writes, r);
    }
}

/* ---------------------------------------------------------------- the job */

/* A Query of several statements with a write among them: run one statement at a time,
 * as the database would, inside one implicit transaction unless the Query manages its
 * own (shared/DESIGN.md §4.1: "several statements in one Query message"). */
typedef struct query_run {
    char *sql;
    size_t len;
    classify_result *cr;
    size_t next;
    bool wrap;     /* we opened the implicit transaction */
    bool closing;  /* its COMMIT/ROLLBACK is under way */
    bool failed;   /* a statement failed: the rest do not run */
} query_run;

static void run_continue(session *s, bool failed);
static void start_statement(session *s);
static void start_one_write(session *s, const char *sql, size_t len, const classify_stmt *write);
static void start_run(session *s, const char *sql, size_t len, classify_result *cr);
static void start_job(session *s, const char *sql, enum step step);

static void step_done(write_job *j);
static void resolved(write_job *j);
static void next_call(write_job *j);
static void unlock(write_job *j, service_cb cb);
static void after_mirror(write_job *j);
static void repair_now(write_job *j);

static void free_rows(write_job *j)
{
    for (size_t i = 0; i < j->nrows; i++) {
        for (int c = 0; c < j->ncols; c++)
            free(j->rows[i][c]);
        free(j->rows[i]);
    }
    free(j->rows);
    j->rows = NULL;
    j->nrows = 0;
}

void wj_free(write_job *j)
{
    for (size_t i = 0; j->slots && i < j->nrows; i++)
        cJSON_Delete(j->slots[i].record);
    free(j->slots);
    free(j->reached);
    for (size_t i = 0; j->fields && i < j->nrows; i++)
        cJSON_Delete(j->fields[i]);
    free(j->fields);
    free_rows(j);
    for (size_t i = 0; i < j->nids; i++)
        free(j->ids[i]);
    free(j->ids);
    for (size_t i = 0; i < j->ngone; i++)
        free(j->gone[i]);
    free(j->gone);
    cJSON_Delete(j->records);
    rewrite_result_free(j->rw);
    pgbuf_free(&j->db_error);
    pgbuf_free(&j->our_error);
    pgbuf_free(&j->ext_params);
    pgbuf_free(&j->ext_results);
    pgbuf_free(&j->parse_ahead);
    pgbuf_free(&j->ext_execute);
    free(j->ext_stmt);
    free(j->param_types);
    free(j->resolve_sql);
    for (size_t i = 0; i < j->n_resolve; i++) {
        free(j->resolve_names[i]);
        free(j->resolve_schemas[i]);
    }
    free(j->resolve_names);
    free(j->resolve_schemas);
    free(j);
}

write_job *wj_new(session *s)
{
    write_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    if (!(j->rw = calloc(1, sizeof *j->rw))) {
        free(j);
        return NULL;
    }
    j->s = s;
    j->wc = &s->srv->writes;
    j->status = s->tx_status;
    j->pid = s->backend_pid;
    pgbuf_init(&j->db_error, 1u << 20);
    pgbuf_init(&j->our_error, 1u << 20);
    pgbuf_init(&j->ext_params, (size_t)1 << 30);
    pgbuf_init(&j->ext_results, 1u << 20);
    pgbuf_init(&j->parse_ahead, (size_t)1 << 30);
    pgbuf_init(&j->ext_execute, 1u << 20);
    return j;
}

static int push_id(char ***list, size_t *n, const char *id)
{
    char **grown = realloc(*list, (*n + 1) * sizeof **list);
    if (!grown)
        return -1;
    *list = grown;
    if (!(grown[*n] = strdup(id)))
        return -1;
    (*n)++;
    return 0;
}

/* ---- talking to the backend and the client */

void wj_inject(write_job *j, const char *sql, enum step next)
{
    log_debug("client %llu: write path step %d: %.80s", (unsigned long long)j->s->id, (int)next, sql);
    j->step = next;
    j->have_db_error = false;
    pgbuf_reset(&j->db_error);
    pgbuf q;
    pgbuf_init(&q, (size_t)1 << 30);
    size_t start = pgbuf_begin_message(&q, 'Q');
    pgbuf_put_string(&q, sql);
    pgbuf_end_message(&q, start);
    if (q.failed || session_send_backend(j->s, q.data, q.len) < 0)
        log_warn("client %llu: could not send to the database", (unsigned long long)j->s->id);
    pgbuf_free(&q);
}

void wj_put_describe_statement(pgbuf *b, const char *name)
{
    size_t at = pgbuf_begin_message(b, 'D');
    pgbuf_put_byte(b, 'S');
    pgbuf_put_string(b, name);
    pgbuf_end_message(b, at);
}

void wj_inject_raw(write_job *j, const char *data, size_t len, enum step next)
{
    j->step = next;
    j->have_db_error = false;
    pgbuf_reset(&j->db_error);
    if (session_send_backend(j->s, data, len) < 0)
        log_warn("client %llu: could not send to the database", (unsigned long long)j->s->id);
}

/* Parse, Bind and Execute of sql as the unnamed statement and portal: bind is the Bind's
 * parameter formats and values, results its result formats (as the protocol lays them out). */
static void put_unnamed(pgbuf *m, const char *sql, int ntypes, const uint32_t *types, const char *bind,
                        size_t bind_len, const char *results, size_t results_len)
{
    size_t at = pgbuf_begin_message(m, 'P');
    pgbuf_put_string(m, "");
    pgbuf_put_string(m, sql);
    pgbuf_put_int16(m, (uint16_t)ntypes);
    for (int i = 0; i < ntypes; i++)
        pgbuf_put_int32(m, types[i]);
    pgbuf_end_message(m, at);
    at = pgbuf_begin_message(m, 'B');
    pgbuf_put_string(m, "");
    pgbuf_put_string(m, "");
    pgbuf_put(m, bind, bind_len);
    pgbuf_put(m, results, results_len);
    pgbuf_end_message(m, at);
    at = pgbuf_begin_message(m, 'E');
    pgbuf_put_string(m, "");
    pgbuf_put_int32(m, 0);
    pgbuf_end_message(m, at);
}

/* Parse/Bind/Execute/Sync of sql with the client's parameters (extended protocol); the
 * result columns in the client's formats or all text. With begin, a BEGIN runs first in
 * the same batch (one ReadyForQuery: no round trip of its own). A client's Parse held for
 * this round trip goes first, with a Describe that checks the types assumed for it. */
static void inject_extended(write_job *j, const char *sql, bool client_results, bool begin, enum step next)
{
    static const char none[4] = {0}; /* no formats, no values */
    pgbuf m;
    pgbuf_init(&m, (size_t)1 << 30);
    if (j->parse_ahead.len > 0) {
        pgbuf_put(&m, j->parse_ahead.data, j->parse_ahead.len);
        wj_put_describe_statement(&m, j->ext_stmt);
        pgbuf_reset(&j->parse_ahead);
        j->ahead = true;
    }
    if (begin)
        put_unnamed(&m, "BEGIN", 0, NULL, none, 4, none, 2);
    put_unnamed(&m, sql, j->nparam_types, j->param_types, j->ext_params.data, j->ext_params.len,
                client_results ? j->ext_results.data : none, client_results ? j->ext_results.len : 2);
    pgbuf_put(&m, "S\0\0\0\4", 5);
    log_debug("client %llu: write path step %d (extended): %.80s", (unsigned long long)j->s->id, (int)next, sql);
    if (m.failed)
        log_error("client %llu: write path: statement too large", (unsigned long long)j->s->id);
    wj_inject_raw(j, m.data, m.failed ? 0 : m.len, next);
    pgbuf_free(&m);
}

static void send_ready(session *s, char status)
{
    char z[6] = {'Z', 0, 0, 0, 5, status ? status : 'I'};
    session_send_client(s, z, sizeof z);
}

void wj_send_error(write_job *j, const pgbuf *msg)
{
    session_send_client(j->s, msg->data, msg->len);
    j->failed = true;
}

/* One statement is answered: the next of its Query or batch, or ReadyForQuery (unless the
 * job sent it already: see answer_before_unlock). */
static void statement_answered(session *s, bool failed, bool ready_sent)
{
    if (s->brun) {
        ext_continue(s, failed);
        return;
    }
    if (s->run) {
        run_continue(s, failed);
        return;
    }
    if (!ready_sent)
        send_ready(s, s->tx_status);
    write_on_ready(s, s->tx_status);
    session_write_done(s, true);
}

/* The statement is answered: ReadyForQuery (unless more statements of the Query follow),
 * the lock released, our transaction's outcome settled. */
static void on_finish_unlocked(void *data, const PGresult *res, const char *error)
{
    write_job *j = data;
    if (!j->s) {
        wj_free(j);
        return;
    }
    wj_finish(j);
}

void wj_finish(write_job *j)
{
    session *s = j->s;
    if (j->lock_pending) {
        /* the lock may be granted any moment: it must be released before the client
         * hears more, or its next statement could mirror under it */
        j->finish_pending = true;
        return;
    }
    if (j->lock_held) {
        /* the client hears nothing more before its backend has lost the right to mirror */
        j->step = STEP_UNLOCKING;
        unlock(j, on_finish_unlocked);
        return;
    }
    if (j->own_tx && !j->committed)
        repair_now(j); /* our transaction did not keep the mirror: the service does */
    s->tx_status = j->status ? j->status : s->tx_status;
    bool failed = j->failed, answered = j->answered;
    s->job = NULL;
    wj_free(j);
    statement_answered(s, failed, answered);
}

/* Our own error for the statement: kept until the transaction is sorted out. */
static void set_error(write_job *j, const char *sqlstate, const char *message, const char *detail,
                      const char *hint)
{
    pgbuf_reset(&j->our_error);
    pgwire_put_error_detail(&j->our_error, "ERROR", sqlstate, message, detail, hint);
    j->have_our_error = true;
}

/* Ends the statement with our error: our transaction rolls back (or commits what was
 * mirrored), the client's is made to fail as a failed statement makes it. */
static void fail_statement(write_job *j)
{
    if (j->own_tx && j->committed) { /* the mirror of what went through is committed */
        wj_send_error(j, &j->our_error);
        wj_finish(j);
        return;
    }
    if (j->own_tx) {
        wj_inject(j, j->applied > 0 || j->ngone > 0 ? "COMMIT" : "ROLLBACK", STEP_ABORT);
        return;
    }
    char sql[160];
    const char *state = pgwire_error_field(j->our_error.data + 5, j->our_error.len - 5, 'C');
    snprintf(sql, sizeof sql,
             "DO $apigres$BEGIN RAISE EXCEPTION 'apigres: the statement failed' USING ERRCODE = '%.5s'; END$apigres$",
             state && strspn(state, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 ? state : "XX000");
    wj_inject(j, sql, STEP_ABORT);
}

static void fail_with(write_job *j, const char *sqlstate, const char *message, const char *detail,
                      const char *hint)
{
    set_error(j, sqlstate, message, detail, hint);
    fail_statement(j);
}

/* ---- after the plan */

static const char *command_name(const write_job *j)
{
    return j->rw->kind == REWRITE_INSERT ? "INSERT" : j->rw->kind == REWRITE_UPDATE ? "UPDATE" : "DELETE";
}

/* The values of plan row `row` as the API's fields (a DEFAULT of the client's is left out). */
static cJSON *row_fields(write_job *j, char **vals, size_t row)
{
    cJSON *f = cJSON_CreateObject();
    if (!f)
        return NULL;
    int first = j->rw->kind == REWRITE_UPDATE ? 1 : 0;
    for (size_t c = 0; c < j->rw->n_columns; c++) {
        const char *col = j->rw->columns[c];
        if (row < j->rw->n_default_rows && j->rw->defaults[row * j->rw->n_columns + c])
            continue;
        const provider_field *pf = field_of_column(j->coll, col);
        const char *v = vals[first + (int)c];
        const char *name = pf ? pf->name : col;
        cJSON *item;
        if (!v)
            item = cJSON_CreateNull();
        else if (pf && pf->type == FIELD_BOOLEAN)
            item = cJSON_CreateBool(v[0] == 't');
        else if (pf && pf->type == FIELD_JSONB)
            item = cJSON_Parse(v);
        else if (pf && (pf->type == FIELD_BIGINT || pf->type == FIELD_NUMERIC) && j->ws->sf)
            item = cJSON_CreateRaw(v); /* Salesforce takes JSON numbers; v is a number's text */
        else
            item = cJSON_CreateString(v);
        if (!item || !cJSON_AddItemToObject(f, name, item)) {
            cJSON_Delete(item);
            cJSON_Delete(f);
            return NULL;
        }
    }
    return f;
}

/* The plan is done and the lock's answer is in: the calls start. */
static void start_calls(write_job *j)
{
    if (j->lock_busy) {
        fail_with(j, "55P03", "apigres cannot write synced tables on this connection right now: another session "
                  "holds its mirror lock", NULL,
                  "A session that is not apigres's holds the advisory lock (" MIRROR_LOCK_CLASS_SQL
                  ", this backend's pid); see pg_locks.");
        return;
    }
    if (j->lock_failed) {
        fail_with(j, "58000", "apigres cannot write synced tables right now: its service connection failed",
                  NULL, "See apigres's log; service_database must reach the database as the service role.");
        return;
    }
    j->step = STEP_CALLING;
    next_call(j);
}

static void on_locked(void *data, const PGresult *res, const char *error)
{
    write_job *j = data;
    bool answered = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    bool granted = answered && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    j->lock_pending = false;
    if (!j->s) {
        /* the statement ended (or the session went away) meanwhile: nothing was called */
        if (granted)
            unlock(j, NULL);
        wj_free(j);
        return;
    }
    if (granted) {
        j->lock_held = true;
        log_debug("client %llu: write path: mirror lock taken", (unsigned long long)j->s->id);
    } else if (answered) {
        log_warn("client %llu: write path: another session holds the mirror lock of backend %u",
                 (unsigned long long)j->s->id, j->pid);
        j->lock_busy = true;
    } else {
        log_error("client %llu: write path: %s", (unsigned long long)j->s->id,
                  error ? error : PQresultErrorMessage(res));
        j->lock_failed = true;
    }
    if (j->finish_pending) { /* the statement ended meanwhile: release, then answer */
        wj_finish(j);
        return;
    }
    if (j->step == STEP_LOCKING) /* the plan waits for us */
        start_calls(j);
}

/* Queues the lock's statement `name` (LOCK_STATEMENT, UNLOCK_STATEMENT) for j's backend, on
 * the lock connection that backend's locks live on. 0, or -1 when out of memory. */
static int lock_query(write_job *j, const char *name, service_cb cb)
{
    char pid[16];
    snprintf(pid, sizeof pid, "%u", j->pid);
    const char *params[] = {pid};
    return service_query_prepared(j->wc->locks[j->pid % WRITE_LOCK_CONNECTIONS], name, 1, params, cb, j);
}

/* Asks for the mirror lock. Only once the plan has run: the plan evaluates the client's
 * expressions, and a function of the client's running while the lock is held could call
 * the mirror function with a record of its own making. It is asked for as the probe is
 * sent: the probe runs no expression of the client's but policy and default expressions,
 * and whatever they do is undone with the probe's savepoint, before any mirror call.
 * Tried, not waited for: any role may take an advisory lock, and a request that waited
 * would hold up every query queued behind it on that service connection. */
static void request_lock(write_job *j)
{
    if (lock_query(j, LOCK_STATEMENT, on_locked) == 0)
        j->lock_pending = true;
    else
        j->lock_failed = true;
}

/* ---- the probe: the write itself, in a savepoint, to learn what the database allows */

#define PROBE_SAVEPOINT "apigres_probe"
#define PROBE_END_SQL "ROLLBACK TO SAVEPOINT " PROBE_SAVEPOINT "; RELEASE SAVEPOINT " PROBE_SAVEPOINT

/* The plan row's value of column c as the probe writes it (NULL stays NULL). */
static void put_probe_value(write_job *j, pgbuf *sql, size_t row, size_t c)
{
    int first = j->rw->kind == REWRITE_UPDATE ? 1 : 0;
    const char *raw = j->rows[row][first + (int)j->rw->n_columns + (int)c];
    const provider_field *pf = field_of_column(j->coll, j->rw->columns[c]);
    if (row < j->rw->n_default_rows && j->rw->defaults[row * j->rw->n_columns + c]) {
        put(sql, "DEFAULT");
        return;
    }
    put(sql, "CAST(");
    if (raw)
        schema_quote_literal(sql, raw);
    else
        put(sql, "NULL");
    put(sql, " AS ");
    put(sql, field_type_sql(pf ? pf->type : FIELD_TEXT));
    put(sql, ")");
}

/* The statement the client asked for, with the plan's rows and values, in a savepoint that
 * the same Query rolls back: the database checks its privileges and row-level security
 * (USING and WITH CHECK, the DELETE policies, which a DELETE's RETURNING id tells apart),
 * its column types and constraints. The guard (sync/schema.c) is deferred to COMMIT here
 * even when the client's transaction made constraints IMMEDIATE, so the rollback drops its
 * events: a probe that passes ends without an error. An error skips the rest of the Query
 * and is the statement's. Nothing of the client's runs in it but policy and default
 * expressions, and whatever they did is rolled back before any mirror call. */
static void probe_sql(write_job *j, pgbuf *sql)
{
    put(sql, "SAVEPOINT " PROBE_SAVEPOINT "; SET CONSTRAINTS ");
    schema_quote_ident(sql, j->schema);
    put(sql, "." SCHEMA_GUARD " DEFERRED; ");
    switch (j->rw->kind) {
    case REWRITE_UPDATE:
        put(sql, "UPDATE ONLY ");
        schema_quote_table(sql, j->schema, j->table);
        put(sql, " AS t SET ");
        for (size_t c = 0; c < j->rw->n_columns; c++) {
            if (c)
                put(sql, ", ");
            schema_quote_ident(sql, j->rw->columns[c]);
            put(sql, " = v.");
            schema_quote_ident(sql, j->rw->columns[c]);
        }
        put(sql, " FROM (VALUES ");
        for (size_t r = 0; r < j->nrows; r++) {
            put(sql, r ? ", (" : "(");
            schema_quote_literal(sql, j->rows[r][0]);
            for (size_t c = 0; c < j->rw->n_columns; c++) {
                put(sql, ", ");
                put_probe_value(j, sql, r, c);
            }
            put(sql, ")");
        }
        put(sql, ") AS v(\"apigres id\"");
        for (size_t c = 0; c < j->rw->n_columns; c++) {
            put(sql, ", ");
            schema_quote_ident(sql, j->rw->columns[c]);
        }
        put(sql, ") WHERE t.id = v.\"apigres id\"");
        break;
    case REWRITE_INSERT:
        put(sql, "INSERT INTO ");
        schema_quote_table(sql, j->schema, j->table);
        put(sql, " (id");
        for (size_t c = 0; c < j->rw->n_columns; c++) {
            if (strcmp(j->rw->columns[c], "id") == 0)
                continue; /* DEFAULT: the API's to choose; the probe has its own */
            put(sql, ", ");
            schema_quote_ident(sql, j->rw->columns[c]);
        }
        put(sql, ") VALUES ");
        for (size_t r = 0; r < j->nrows; r++) {
            char id[48];
            snprintf(id, sizeof id, "%s'apigres probe %zu'", r ? ", (" : "(", r);
            put(sql, id);
            for (size_t c = 0; c < j->rw->n_columns; c++) {
                if (strcmp(j->rw->columns[c], "id") == 0)
                    continue;
                put(sql, ", ");
                put_probe_value(j, sql, r, c);
            }
            put(sql, ")");
        }
        break;
    default:
        put(sql, "DELETE FROM ONLY ");
        schema_quote_table(sql, j->schema, j->table);
        put(sql, " WHERE id IN (");
        for (size_t r = 0; r < j->nrows; r++) {
            if (r)
                put(sql, ", ");
            schema_quote_literal(sql, j->rows[r][0]);
        }
        put(sql, ") RETURNING id");
        break;
    }
    put(sql, "; " PROBE_END_SQL);
}

static void probe(write_job *j)
{
    pgbuf q;
    pgbuf_init(&q, (size_t)1 << 30);
    probe_sql(j, &q);
    pgbuf_put_byte(&q, 0);
    if (q.failed) {
        fail_with(j, "54000", "the probe of this write is too large", NULL, NULL);
    } else {
        request_lock(j); /* its round trip on the service connection overlaps the probe's */
        wj_inject(j, q.data, STEP_PROBE);
    }
    pgbuf_free(&q);
}

/* The probe's RETURNING id of a DELETE: a row the database let it reach. */
static int take_reached_row(write_job *j, const char *msg, size_t len)
{
    pgread r;
    pgread_init(&r, msg + 5, len - 5);
    pgread_int16(&r); /* one column */
    uint32_t vlen = pgread_int32(&r);
    if (r.failed || vlen == 0xffffffffu || vlen > pgread_remaining(&r))
        return -1;
    for (size_t i = 0; i < j->nrows; i++)
        if (j->rows[i][0] && strlen(j->rows[i][0]) == vlen && memcmp(j->rows[i][0], r.data + r.pos, vlen) == 0)
            j->reached[i] = true;
    return 0;
}

/* A DELETE goes only to the rows the database let it reach (the DELETE policies). */
static void keep_reached_rows(write_job *j)
{
    size_t kept = 0;
    for (size_t i = 0; i < j->nrows; i++) {
        if (!j->reached[i]) {
            for (int c = 0; c < j->ncols; c++)
                free(j->rows[i][c]);
            free(j->rows[i]);
            cJSON_Delete(j->fields[i]);
            continue;
        }
        j->rows[kept] = j->rows[i];
        j->fields[kept] = j->fields[i];
        kept++;
    }
    j->nrows = kept;
}

static void after_plan(write_job *j)
{
    char msg[256];
    if (j->rows_seen > (size_t)j->wc->max_rows) {
        snprintf(msg, sizeof msg, "%s of %zu rows of %s.%s exceeds write.max_rows (%d)", command_name(j),
                 j->rows_seen, j->schema, j->table, j->wc->max_rows);
        fail_with(j, "54000", msg, NULL,
                  "Each row is one API call: narrow the WHERE clause, or write in smaller batches.");
        return;
    }
    j->fields = calloc(j->nrows ? j->nrows : 1, sizeof *j->fields);
    j->slots = calloc(j->nrows ? j->nrows : 1, sizeof *j->slots);
    j->reached = calloc(j->nrows ? j->nrows : 1, sizeof *j->reached);
    if (!j->fields || !j->slots || !j->reached) {
        fail_with(j, "53200", "out of memory", NULL, NULL);
        return;
    }
    for (size_t i = 0; i < j->nrows; i++) {
        upstream_error err;
        if (!(j->fields[i] = row_fields(j, j->rows[i], i))) {
            fail_with(j, "22P02", "a value of this write is not valid JSON for the API", NULL, NULL);
            return;
        }
        if (provider_check_fields(j->coll, j->fields[i], j->rw->kind == REWRITE_INSERT, &err) < 0) {
            fail_with(j, err.sqlstate, err.message, err.detail[0] ? err.detail : NULL, NULL);
            return;
        }
    }
    if (j->nrows == 0) {
        after_mirror(j); /* nothing to call: straight to RETURNING and COMMIT */
        return;
    }
    probe(j);
}

/* ---- calls */

static void unlock(write_job *j, service_cb cb)
{
    j->lock_held = false;
    if (lock_query(j, UNLOCK_STATEMENT, cb) < 0 && cb)
        cb(j, NULL, "out of memory");
}

static void mirror(write_job *j);

/* The session is gone while calls were under way: what the API did reaches the mirror
 * through the service connection. */
static void repair_now(write_job *j)
{
    if (cJSON_GetArraySize(j->records) == 0 && j->ngone == 0)
        return;
    repair *r = repair_new(j->schema, j->table, j->records, j->gone, j->ngone, j->version);
    if (r)
        repair_send(j->wc, r);
    else
        log_error("write path: out of memory re-applying records of %s.%s", j->schema, j->table);
}

static void detached_done(write_job *j)
{
    if (j->lock_held)
        unlock(j, NULL);
    repair_now(j);
    wj_free(j);
}

/* The calls' outcomes in row order: what the tag counts, RETURNING reads and the mirror
 * writes. */
static void collect_results(write_job *j)
{
    for (size_t i = 0; i < j->nrows; i++) {
        call_slot *c = &j->slots[i];
        const char *id = j->rw->kind == REWRITE_INSERT ? NULL : j->rows[i][0];
        if (c->state == CALL_GONE && id) {
            push_id(&j->gone, &j->ngone, id); /* no longer there: not counted, not mirrored */
        } else if (c->state == CALL_UNREAD) {
            j->applied++;
            j->unread++;
        } else if (c->state == CALL_DONE) {
            const char *rid = json_string(c->record, "id");
            if (!rid)
                rid = json_string(c->record, "Id"); /* Salesforce's */
            if (j->rw->kind == REWRITE_DELETE) {
                push_id(&j->gone, &j->ngone, id);
            } else if (c->record) {
                cJSON_AddItemToArray(j->records, c->record);
                c->record = NULL;
            }
            if (rid || id)
                push_id(&j->ids, &j->nids, rid ? rid : id);
            j->applied++;
        }
    }
}

static void on_record(const cJSON *record, const upstream_error *err, void *ctx)
{
    call_slot *c = ctx;
    write_job *j = c->j;
    j->inflight--;
    if (err && err->not_found && j->rw->kind != REWRITE_INSERT) {
        c->state = CALL_GONE;
    } else if (err) {
        c->state = err->applied ? CALL_UNREAD : CALL_FAILED;
        if (!j->upstream_failed) { /* the first failure is the statement's */
            j->upstream_failed = true;
            j->uerr = *err;
        }
    } else {
        c->state = CALL_DONE;
        c->record = j->rw->kind == REWRITE_DELETE ? cJSON_CreateObject() : cJSON_Duplicate(record, 1);
        if (c->record && j->rw->kind == REWRITE_DELETE)
            cJSON_AddStringToObject(c->record, "id", j->rows[c->row][0]);
    }
    j->version = wall_now();
    if (!j->s) {
        if (j->inflight == 0) {
            collect_results(j);
            detached_done(j);
        }
        return;
    }
    next_call(j);
}

/* Starts calls while fewer than the statement's share are in flight. Creates go one at a
 * time, in order (the ids come back in the order of the VALUES, and the first failure
 * stops the rest); updates and deletes of different records are independent, so several
 * run at once within the sync's rate limit. When the last one is back, the mirror. */
static void next_call(write_job *j)
{
    size_t at_once = j->rw->kind == REWRITE_INSERT ? 1 : WRITE_CALLS_AT_ONCE;
    while (j->inflight < at_once && j->next < j->nrows && !j->upstream_failed && !j->cancel_requested) {
        call_slot *c = &j->slots[j->next];
        c->j = j;
        c->row = j->next++;
        j->inflight++;
        const char *id = j->rows[c->row][0];
        if (j->ws->sf) {
            if (j->rw->kind == REWRITE_INSERT)
                salesforce_create(j->ws->sf, j->coll, j->fields[c->row], RATELIMIT_WRITE, on_record, c);
            else if (j->rw->kind == REWRITE_UPDATE)
                salesforce_update(j->ws->sf, j->coll, id, j->fields[c->row], RATELIMIT_WRITE, on_record, c);
            else
                salesforce_delete(j->ws->sf, j->coll, id, RATELIMIT_WRITE, on_record, c);
        } else if (j->rw->kind == REWRITE_INSERT) {
            stripe_create(j->ws->stripe, j->coll, j->fields[c->row], RATELIMIT_WRITE, on_record, c);
        } else if (j->rw->kind == REWRITE_UPDATE) {
            stripe_update(j->ws->stripe, j->coll, id, j->fields[c->row], RATELIMIT_WRITE, on_record, c);
        } else {
            stripe_delete(j->ws->stripe, j->coll, id, RATELIMIT_WRITE, on_record, c);
        }
        /* on -1 the callback has already run with the error, and next_call from it */
        if (!j->s || j->inflight == 0)
            return;
    }
    if (j->inflight > 0)
        return;
    if (j->cancel_requested && j->next < j->nrows && !j->upstream_failed) {
        /* as the database answers a cancelled statement; what went through is mirrored */
        j->upstream_failed = true;
        upstream_error_set(&j->uerr, "57014", "canceling statement due to user request", "");
    }
    if (j->collected)
        return;
    j->collected = true;
    collect_results(j);
    mirror(j);
}

/* ---- mirror, RETURNING, the end */

/* Where the plan's rows keep what RETURNING reads after the mirror (wrapped_plan). */
static int returning_column(const write_job *j)
{
    return j->rw->kind == REWRITE_UPDATE ? 1 + 2 * (int)j->rw->n_columns : 1;
}

/* (VALUES ('<id>', '<column col of the row>'), ...) AS r(i, v): the plan's rows */
static void put_plan_values(write_job *j, pgbuf *sql, int col)
{
    if (j->nrows == 0) { /* RETURNING nothing, but its columns all the same */
        put(sql, "(SELECT CAST(NULL AS text), CAST(NULL AS text) WHERE false) AS r(i, v)");
        return;
    }
    put(sql, "(VALUES ");
    for (size_t r = 0; r < j->nrows; r++) {
        put(sql, r ? ", (" : "(");
        schema_quote_literal(sql, j->rows[r][0]);
        put(sql, ", ");
        if (j->rows[r][col])
            schema_quote_literal(sql, j->rows[r][col]);
        else
            put(sql, "NULL");
        put(sql, ")");
    }
    put(sql, ") AS r(i, v)");
}

/* The rows RETURNING reads that are not in the table (rewrite.h): a DELETE's target rows
 * and the FROM/USING rows each target row was joined with, as the plan saw them. */
static void put_returning_from(write_job *j, pgbuf *sql)
{
    const rewrite_result *rw = j->rw;
    int col = returning_column(j);
    if (rw->kind == REWRITE_DELETE) {
        put(sql, " FROM (SELECT (CAST(r.v AS ");
        schema_quote_table(sql, j->schema, j->table);
        put(sql, ")).* FROM ");
        put_plan_values(j, sql, col++);
        put(sql, ") AS ");
        schema_quote_ident(sql, rw->returning_ref);
    }
    for (size_t k = 0; k < rw->n_from; k++, col++) {
        put(sql, " CROSS JOIN LATERAL (SELECT (CAST(r.v AS ");
        if (rw->from[k].schema)
            schema_quote_table(sql, rw->from[k].schema, rw->from[k].relname);
        else
            schema_quote_ident(sql, rw->from[k].relname);
        put(sql, ")).* FROM ");
        put_plan_values(j, sql, col);
        put(sql, " WHERE r.i = ");
        schema_quote_ident(sql, rw->returning_ref);
        put(sql, ".id) AS ");
        schema_quote_ident(sql, rw->from[k].name);
        for (size_t c = 0; c < rw->from[k].n_colnames; c++) {
            put(sql, c ? ", " : "(");
            schema_quote_ident(sql, rw->from[k].colnames[c]);
        }
        if (rw->from[k].n_colnames)
            put(sql, ")");
    }
}

static void put_returning(write_job *j, pgbuf *sql)
{
    put(sql, j->rw->returning_sql);
    put_returning_from(j, sql);
    put(sql, " WHERE ");
    schema_quote_ident(sql, j->rw->returning_ref);
    put(sql, ".id = ANY (");
    put_array_literal(sql, j->ids, j->nids);
    put(sql, ") ORDER BY array_position(");
    put_array_literal(sql, j->ids, j->nids);
    put(sql, ", ");
    schema_quote_ident(sql, j->rw->returning_ref);
    put(sql, ".id)");
    pgbuf_put_byte(sql, 0);
}

static void run_returning(write_job *j, enum step next)
{
    pgbuf sql;
    pgbuf_init(&sql, (size_t)1 << 30);
    put_returning(j, &sql);
    j->returning_done = true;
    if (sql.failed)
        fail_with(j, "53200", "out of memory", NULL, NULL);
    else if (j->ext)
        inject_extended(j, sql.data, true, false, next);
    else
        wj_inject(j, sql.data, next);
    pgbuf_free(&sql);
}

static void mirror(write_job *j)
{
    pgbuf sql;
    pgbuf_init(&sql, (size_t)1 << 30);
    char *json = cJSON_PrintUnformatted(j->records);
    char version[32];
    snprintf(version, sizeof version, "%.6f", j->version);
    put(&sql, "SELECT ");
    put_mirror_function(&sql, j->schema, j->table);
    put(&sql, "(");
    schema_quote_literal(&sql, json ? json : "[]");
    put(&sql, "::jsonb, ");
    put(&sql, version);
    put(&sql, ", ");
    put_array_literal(&sql, j->gone, j->ngone);
    put(&sql, ")");
    /* Our own transaction commits in the same round trip unless RETURNING must still read
     * the mirrored rows. No client code runs at this COMMIT while the lock is held: the
     * mirror function refuses callers inside triggers (deferred ones run at COMMIT). */
    j->commit_with_mirror = j->own_tx && !(j->rw->has_returning && !j->returning_done);
    if (j->commit_with_mirror)
        put(&sql, "; COMMIT");
    pgbuf_put_byte(&sql, 0);
    free(json);
    if (sql.failed)
        fail_with(j, "53200", "out of memory", NULL, NULL);
    else
        wj_inject(j, sql.data, STEP_MIRROR);
    pgbuf_free(&sql);
}

/* CommandComplete, and ReadyForQuery with it when ready is a status (one write: the client
 * wakes once). */
static void send_tag(write_job *j, char ready)
{
    char tag[64];
    snprintf(tag, sizeof tag, "%s%s %zu", command_name(j), j->rw->kind == REWRITE_INSERT ? " 0" : "", j->nids);
    pgbuf m;
    pgbuf_init(&m, 256);
    size_t start = pgbuf_begin_message(&m, 'C');
    pgbuf_put_string(&m, tag);
    pgbuf_end_message(&m, start);
    if (ready)
        pgbuf_put(&m, (char[]){'Z', 0, 0, 0, 5, ready}, 6);
    session_send_client(j->s, m.data, m.len);
    pgbuf_free(&m);
}

/* Whether nothing of the client's follows the statement: the Query's one statement, or a
 * batch with only its Sync left (which ext_answer_sync then takes: it is not sent on). */
static bool nothing_follows(session *s)
{
    return !s->run && (!s->brun || ext_answer_sync(s));
}

/* The statement's tag, with ReadyForQuery when nothing follows it: one write to the client,
 * and no round trip for a Sync. */
static void answer_last(write_job *j)
{
    bool ready = nothing_follows(j->s);
    send_tag(j, ready ? (j->status ? j->status : j->s->tx_status) : 0);
    j->answered = ready;
}

/* The upstream failure as the client reads it, with how many rows went through. */
static void set_upstream_error(write_job *j)
{
    char detail[700];
    size_t total = j->nrows;
    if (j->unread > 0)
        snprintf(detail, sizeof detail,
                 "%s%s%zu of %zu rows were applied upstream; %zu of them could not be read back and reach the "
                 "mirror with the sync's next poll, the others are mirrored.",
                 j->uerr.detail, j->uerr.detail[0] ? " " : "", j->applied, total, j->unread);
    else if (j->applied > 0)
        snprintf(detail, sizeof detail, "%s%s%zu of %zu rows were applied upstream and mirrored before this failure.",
                 j->uerr.detail, j->uerr.detail[0] ? " " : "", j->applied, total);
    else
        snprintf(detail, sizeof detail, "%s", j->uerr.detail);
    set_error(j, j->uerr.sqlstate, j->uerr.message, detail[0] ? detail : NULL, NULL);
}

/* RETURNING failed on the API's records (its list was checked with the plan: an expression
 * such as 1 / 0 fails only when evaluated): the database's error, with DETAIL saying what
 * the API applied, which the mirror keeps. */
static void returning_failed(write_job *j)
{
    const char *body = j->db_error.data + 5;
    size_t len = j->db_error.len - 5;
    const char *state = pgwire_error_field(body, len, 'C'), *message = pgwire_error_field(body, len, 'M');
    const char *detail = pgwire_error_field(body, len, 'D'), *hint = pgwire_error_field(body, len, 'H');
    char full[700];
    snprintf(full, sizeof full, "%s%s%zu of %zu rows were applied upstream and mirrored before RETURNING failed.",
             detail ? detail : "", detail ? " " : "", j->nids, j->nrows);
    set_error(j, state ? state : "XX000", message ? message : "RETURNING failed", full, hint);
}

static void after_mirror(write_job *j)
{
    if (j->upstream_failed)
        set_upstream_error(j);
    if (j->upstream_failed || j->have_our_error) { /* the API's error, or the mirror's */
        fail_statement(j);
        return;
    }
    if (j->rw->has_returning && !j->returning_done) {
        run_returning(j, STEP_RETURNING);
        return;
    }
    if (j->own_tx && !j->committed) {
        wj_inject(j, "COMMIT", STEP_COMMIT);
        return;
    }
    if (!j->answered)
        answer_last(j);
    wj_finish(j);
}

/* The mirror step is done and the lock's release is under way. When nothing more of the
 * statement runs on the client's backend (no RETURNING, no COMMIT, no error to settle), and it
 * is the Query's one statement (extended protocol: nothing but the Sync follows it in the
 * batch), the client is answered now instead of after the release's round trip: its next
 * message stays unread until the job ends (session.c reads nothing while s->job is set), so
 * nothing of the client's runs on its backend while the lock is held. */
static void answer_before_unlock(write_job *j)
{
    session *s = j->s;
    if (j->upstream_failed || j->have_our_error || (j->rw->has_returning && !j->returning_done) ||
        (j->own_tx && !j->committed) || !nothing_follows(s))
        return;
    send_tag(j, j->status ? j->status : s->tx_status);
    session_flush_client(s); /* with the ParseComplete ... a Parse sent ahead left held */
    j->answered = true;
}

static void on_unlocked(void *data, const PGresult *res, const char *error)
{
    write_job *j = data;
    if (!j->s) {
        wj_free(j);
        return;
    }
    if (!res)
        log_warn("client %llu: write path: the mirror lock's release failed: %s", (unsigned long long)j->s->id,
                 error ? error : "?");
    after_mirror(j);
}

/* Keeps what was mirrored inside the client's transaction for when it ends. (Our own
 * transaction's fate is known in finish.) */
static void keep_for_repair(write_job *j)
{
    if (j->own_tx || (cJSON_GetArraySize(j->records) == 0 && j->ngone == 0))
        return;
    repair *r = repair_new(j->schema, j->table, j->records, j->gone, j->ngone, j->version);
    if (!r) {
        log_error("client %llu: write path: out of memory keeping records to re-apply", (unsigned long long)j->s->id);
        return;
    }
    r->next = j->s->repairs;
    j->s->repairs = r;
}

/* The database's error of this step is what the statement ends with. */
static void take_db_error(write_job *j)
{
    pgbuf_reset(&j->our_error);
    pgbuf_put(&j->our_error, j->db_error.data, j->db_error.len);
    j->have_our_error = true;
}

/* The database refused a step before any call: its error is the statement's (our own
 * transaction rolled back first; the client's is left aborted, as by any failed statement). */
static void db_error_ends_statement(write_job *j)
{
    if (j->own_tx) {
        take_db_error(j);
        wj_inject(j, "ROLLBACK", STEP_ABORT);
        return;
    }
    wj_send_error(j, &j->db_error);
    wj_finish(j);
}

/* A ReadyForQuery ended the current step. */
static void step_done(write_job *j)
{
    switch (j->step) {
    case STEP_RESOLVE:
        resolved(j);
        return;
    case STEP_PLAN:
        if (j->ahead_failed) {
            ext_ahead_failed(j);
            return;
        }
        if (j->types_wrong) {
            /* rows planned with other types are not the statement's: ours to forget (our own
             * transaction: the Parse is held back only outside the client's) */
            j->types_wrong = false;
            free_rows(j);
            j->ncols = 0;
            j->rows_seen = 0;
            wj_inject(j, "ROLLBACK", STEP_REPLAN);
            return;
        }
        if (j->have_db_error) {
            db_error_ends_statement(j);
            return;
        }
        after_plan(j);
        return;
    case STEP_REPLAN:
        wj_plan_ready(j);
        return;
    case STEP_PROBE:
        if (j->have_db_error) {
            /* the database refuses the write itself (42501, 23514, 22P02, ...): so do we */
            db_error_ends_statement(j);
            return;
        }
        if (j->rw->kind == REWRITE_DELETE)
            keep_reached_rows(j);
        if (j->nrows == 0) {
            after_mirror(j);
            return;
        }
        j->step = STEP_LOCKING;
        if (!j->lock_pending)
            start_calls(j);
        return;
    case STEP_MIRROR:
        if (j->commit_with_mirror && !j->have_db_error)
            j->committed = true;
        keep_for_repair(j);
        if (j->have_db_error && !j->have_our_error)
            take_db_error(j);
        j->step = STEP_UNLOCKING;
        unlock(j, on_unlocked);
        answer_before_unlock(j);
        return;
    case STEP_RETURNING:
        if (j->have_db_error) {
            returning_failed(j);
            fail_statement(j);
            return;
        }
        after_mirror(j);
        return;
    case STEP_COMMIT:
        if (j->have_db_error) {
            wj_send_error(j, &j->db_error);
        } else {
            j->committed = true;
            answer_last(j);
        }
        wj_finish(j);
        return;
    case STEP_ABORT:
        wj_send_error(j, &j->our_error);
        wj_finish(j);
        return;
    case STEP_PASS:
    case STEP_SILENT:
        j->failed = j->have_db_error;
        if (j->have_db_error && j->step == STEP_SILENT)
            wj_send_error(j, &j->db_error);
        wj_finish(j);
        return;
    default:
        return;
    }
}

/* ---- backend messages */

static int take_row(write_job *j, const char *msg, size_t len)
{
    j->rows_seen++;
    if (j->rows_seen > (size_t)j->wc->max_rows)
        return 0; /* only counted: the statement will be refused */
    pgread r;
    pgread_init(&r, msg + 5, len - 5);
    int n = pgread_int16(&r);
    if (j->ncols == 0)
        j->ncols = n;
    if (n != j->ncols)
        return -1;
    char **vals = calloc((size_t)n, sizeof *vals);
    char ***grown = realloc(j->rows, (j->nrows + 1) * sizeof *j->rows);
    if (!vals || !grown) {
        free(vals);
        return -1;
    }
    j->rows = grown;
    j->rows[j->nrows++] = vals;
    for (int c = 0; c < n; c++) {
        uint32_t vlen = pgread_int32(&r);
        if (vlen == 0xffffffffu)
            continue;
        if (r.failed || vlen > pgread_remaining(&r))
            return -1;
        if (!(vals[c] = malloc(vlen + 1)))
            return -1;
        memcpy(vals[c], r.data + r.pos, vlen);
        vals[c][vlen] = '\0';
        r.pos += vlen;
    }
    if (r.failed)
        return -1;
    /* UPDATE ... FROM / DELETE ... USING may join a target row more than once: the
     * database would change it once (with one of the joined rows), so does the API */
    if (j->rw->kind != REWRITE_INSERT && vals[0]) {
        for (size_t i = 0; i + 1 < j->nrows; i++) {
            if (j->rows[i][0] && strcmp(j->rows[i][0], vals[0]) == 0) {
                for (int c = 0; c < n; c++)
                    free(vals[c]);
                free(vals);
                j->nrows--;
                j->rows_seen--;
                break;
            }
        }
    }
    return 0;
}

int write_on_backend_message(session *s, const char *msg, size_t len)
{
    write_job *j = s->job;
    if (j->step == STEP_EXT_RELAY || j->step == STEP_DESCRIBE || j->step == STEP_EXT_RESOLVE)
        return ext_on_backend_message(j, msg, len);
    if (j->ahead && msg[0] != 'Z')
        return ext_ahead_message(j, msg, len);
    if (j->step == STEP_PASS && msg[0] != 'Z') {
        if (msg[0] == 'E')
            j->have_db_error = true;
        return session_send_client(s, msg, len);
    }
    switch (msg[0]) {
    case 'Z':
        j->status = len >= 6 ? msg[5] : 'I';
        step_done(j);
        return 0;
    case 'E':
        if (!j->have_db_error) {
            pgbuf_reset(&j->db_error);
            pgbuf_put(&j->db_error, msg, len);
            j->have_db_error = true;
        }
        return 0;
    case 'D':
        if (j->step == STEP_RESOLVE)
            return wj_take_resolved(j, msg, len);
        if (j->step == STEP_PLAN)
            return j->types_wrong ? 0 : take_row(j, msg, len);
        if (j->step == STEP_PROBE && j->rw->kind == REWRITE_DELETE)
            return take_reached_row(j, msg, len);
        if (j->step == STEP_RETURNING)
            return session_send_client(s, msg, len);
        return 0;
    case 'T': /* the extended protocol describes only when asked (Describe) */
        if (j->step == STEP_RETURNING && !j->ext)
            return session_send_client(s, msg, len);
        return 0;
    case 'S': /* a setting changed: the client keeps track of these */
    case 'A': /* notifications belong to the client */
        return session_send_client(s, msg, len);
    default: /* CommandComplete, EmptyQuery, notices of our own statements */
        return 0;
    }
}

/* ---------------------------------------------------------------- taking a Query */

/* A statement of ours that is not a write: relayed (STEP_PASS) or swallowed (STEP_SILENT). */
static void start_job(session *s, const char *sql, enum step step)
{
    write_job *j = wj_new(s);
    if (!j) {
        wj_refuse_now(s, "53200", "out of memory", NULL);
        return;
    }
    s->job = j;
    wj_inject(j, sql, step);
}

/* An ErrorResponse and ReadyForQuery answered without running anything. */
void wj_refuse_now(session *s, const char *sqlstate, const char *message, const char *hint)
{
    if (s->tx_status == 'T') {
        /* a failed statement aborts the client's transaction: let the database do that */
        write_job *j = wj_new(s);
        if (j) {
            s->job = j;
            fail_with(j, sqlstate, message, NULL, hint);
            return;
        }
    }
    pgbuf m;
    pgbuf_init(&m, 1u << 20);
    pgwire_put_error_detail(&m, "ERROR", sqlstate, message, NULL, hint);
    session_send_client(s, m.data, m.len);
    pgbuf_free(&m);
    s->job = NULL;
    statement_answered(s, true, false);
}

/* The plan wrapped so that each value comes out as the API takes it. */
static int wrapped_plan(write_job *j, pgbuf *sql)
{
    bool stripe = j->ws->sc->provider == SYNC_STRIPE;
    put(sql, "SELECT ");
    if (j->rw->kind == REWRITE_UPDATE || j->rw->kind == REWRITE_DELETE)
        put(sql, "p.id");
    for (size_t c = 0; c < j->rw->n_columns; c++) {
        const provider_field *pf = field_of_column(j->coll, j->rw->columns[c]);
        if (c > 0 || j->rw->kind != REWRITE_INSERT)
            put(sql, ", ");
        pgbuf col;
        pgbuf_init(&col, 256);
        put(&col, "p.");
        schema_quote_ident(&col, j->rw->columns[c]);
        pgbuf_put_byte(&col, 0);
        enum field_type t = pf ? pf->type : FIELD_TEXT;
        switch (t) {
        case FIELD_TIMESTAMPTZ:
            if (stripe) {
                put(sql, "CAST(extract(epoch FROM CAST(");
                put(sql, col.data);
                put(sql, " AS timestamptz)) AS bigint)");
            } else {
                put(sql, "to_char(CAST(");
                put(sql, col.data);
                put(sql, " AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')");
            }
            break;
        case FIELD_DATE:
            put(sql, "to_char(CAST(");
            put(sql, col.data);
            put(sql, " AS date), 'YYYY-MM-DD')");
            break;
        default:
            put(sql, "CAST(");
            put(sql, col.data);
            put(sql, " AS ");
            put(sql, field_type_sql(t));
            put(sql, ")");
            break;
        }
        pgbuf_free(&col);
    }
    /* and each value as text, for the probe (which writes it as the column's type) */
    for (size_t c = 0; c < j->rw->n_columns && j->rw->kind != REWRITE_DELETE; c++) {
        put(sql, ", CAST(p.");
        schema_quote_ident(sql, j->rw->columns[c]);
        put(sql, " AS text)");
    }
    /* and what RETURNING reads after the mirror (rewrite.h) */
    if (j->rw->has_returning && j->rw->kind == REWRITE_DELETE)
        put(sql, ", p.\"apigres target\"");
    for (size_t k = 0; k < j->rw->n_from; k++) {
        char col[40];
        snprintf(col, sizeof col, ", p.\"apigres from %zu\"", k + 1);
        put(sql, col);
    }
    put(sql, " FROM (");
    put(sql, j->rw->plan_sql);
    put(sql, ") p");
    return sql->failed ? -1 : 0;
}

static void start_write(session *s, const char *sql, size_t len, const classify_stmt *st,
                        write_sync *ws, const provider_collection *coll, write_job *j)
{
    plan_cache *plans = s->srv->writes.plans;
    /* a target the session's search_path placed is written into the plan by its schema:
     * the text alone does not say which */
    bool keep = !st->unqualified;
    rewrite_result *rw = j && keep ? plan_cache_rewrite(plans, sql, len, st->offset) : NULL;
    if (j && !rw) {
        if (rewrite_plan(sql, len, st, &rw) != 0)
            rw = NULL; /* out of memory */
        else if (keep)
            plan_cache_keep_rewrite(plans, sql, len, st->offset, rw);
    }
    if (!j || !rw) {
        if (j)
            wj_free(j);
        wj_refuse_now(s, "53200", "out of memory", NULL);
        return;
    }
    if (rw->kind == REWRITE_REFUSED) {
        wj_refuse_now(s, rw->sqlstate, rw->message, rw->hint);
        rewrite_result_free(rw);
        wj_free(j);
        return;
    }
    const char *bare = foreign_bare_name(rw, coll);
    if (bare) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "RETURNING of a write to synced table %s.%s reads \"%s\", which is not a column "
                 "of the table: with a subquery, function, CTE or JOIN ... USING in FROM/USING, "
                 "RETURNING can read the table's columns and the other tables' in FROM/USING",
                 st->schema, st->table, bare);
        wj_refuse_now(s, "0A000", msg, "Name the value through a table in FROM, or select it after the statement.");
        rewrite_result_free(rw);
        wj_free(j);
        return;
    }
    rewrite_result_free(j->rw);
    j->ws = ws;
    j->coll = coll;
    j->rw = rw;
    snprintf(j->schema, sizeof j->schema, "%s", st->schema);
    snprintf(j->table, sizeof j->table, "%s", st->table);
    j->own_tx = s->tx_status != 'T';
    j->pid = s->backend_pid;
    j->status = s->tx_status;
    j->records = cJSON_CreateArray();
    if (!j->records) {
        wj_free(j);
        wj_refuse_now(s, "53200", "out of memory", NULL);
        return;
    }
    s->job = j;
    log_debug("client %llu: %s on %s.%s: planning", (unsigned long long)s->id, command_name(j), j->schema,
              j->table);
    if (j->ext && j->types_known) { /* asked with the statement's Parse */
        wj_plan_ready(j);
        return;
    }
    if (j->ext) {
        /* the plan needs the parameters' types: the backend knows the client's statement */
        pgbuf m;
        pgbuf_init(&m, 1u << 20);
        wj_put_describe_statement(&m, j->ext_stmt);
        pgbuf_put(&m, "H\0\0\0\4", 5);
        wj_inject_raw(j, m.data, m.len, STEP_DESCRIBE);
        pgbuf_free(&m);
        return;
    }
    pgbuf q;
    pgbuf_init(&q, (size_t)1 << 30);
    if (j->own_tx)
        put(&q, "BEGIN; ");
    wrapped_plan(j, &q);
    pgbuf_put_byte(&q, 0);
    if (q.failed) {
        fail_with(j, "54000", "the plan of this write is too large", NULL, NULL);
    } else {
        wj_inject(j, q.data, STEP_PLAN);
    }
    pgbuf_free(&q);
}

/* Extended protocol, after Describe: the plan with the parameters, in our own transaction
 * begun in the same batch unless the client's is open. */
void wj_plan_ready(write_job *j)
{
    pgbuf q;
    pgbuf_init(&q, (size_t)1 << 30);
    wrapped_plan(j, &q);
    pgbuf_put_byte(&q, 0);
    if (q.failed) {
        fail_with(j, "54000", "the plan of this write is too large", NULL, NULL);
    } else {
        ext_note_planned(j);
        inject_extended(j, q.data, false, j->own_tx, STEP_PLAN);
    }
    pgbuf_free(&q);
}

/* Carries out the classified Query sql[0..len) (taking cr): refused, run statement by
 * statement, or its one write. False when it writes no synced table: it is the client's to
 * relay. */
static bool take_query(session *s, const char *sql, size_t len, classify_result *cr)
{
    size_t writes = 0;
    const classify_stmt *write = NULL;
    for (size_t i = 0; i < cr->n_stmts; i++) {
        const classify_stmt *st = &cr->stmts[i];
        if (cr->n_stmts > 1 && wj_asked_in_turn(&s->srv->writes, st)) {
            writes++; /* a write of a synced table or not: the session says in its turn */
            continue;
        }
        if (st->verdict == CLASSIFY_REFUSE) {
            wj_refuse_now(s, st->sqlstate, st->message, st->hint);
            classify_result_free(cr);
            return true;
        }
        if (st->verdict == CLASSIFY_WRITE) {
            writes++;
            write = st;
        }
    }
    if (writes == 0) {
        classify_result_free(cr);
        return false;
    }
    if (cr->n_stmts > 1) {
        start_run(s, sql, len, cr);
        return true;
    }
    start_one_write(s, sql, len, write);
    classify_result_free(cr);
    return true;
}

/* to_regclass of name, as an identifier (its case kept), in an E'' literal: whatever
 * standard_conforming_strings says */
static void put_regclass_of(pgbuf *q, const char *name)
{
    put(q, "pg_catalog.to_regclass(E'\"");
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            put(q, "\"\"");
        else if (*p == '\'')
            put(q, "''");
        else if (*p == '\\')
            put(q, "\\\\");
        else
            pgbuf_put_byte(q, (uint8_t)*p);
    }
    put(q, "\"')");
}

int wj_resolve_query(write_job *j, const classify_stmt *st, pgbuf *q)
{
    if (!(j->resolve_names = calloc(st->n_unresolved, sizeof *j->resolve_names)) ||
        !(j->resolve_schemas = calloc(st->n_unresolved, sizeof *j->resolve_schemas)))
        return -1;
    put(q, "SELECT ");
    for (size_t u = 0; u < st->n_unresolved; u++) {
        if (!is_synced_name(j->wc, st->unresolved[u]))
            continue;
        if (!(j->resolve_names[j->n_resolve] = strdup(st->unresolved[u])))
            return -1;
        if (j->n_resolve++ > 0)
            put(q, ", ");
        put(q, "(SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid "
               "OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid OPERATOR(pg_catalog.=) ");
        put_regclass_of(q, st->unresolved[u]);
        put(q, ")");
    }
    pgbuf_put_byte(q, 0);
    return q->failed ? -1 : 0;
}

/* sql[0..len), one statement (st), names synced tables' names without a schema: asks the
 * client's session where they are; resolved() goes on. */
static void ask_where(session *s, const char *sql, size_t len, const classify_stmt *st)
{
    write_job *j = wj_new(s);
    pgbuf q;
    pgbuf_init(&q, 1u << 20);
    if (!j || !(j->resolve_sql = strndup(sql, len)) || wj_resolve_query(j, st, &q) < 0) {
        if (j)
            wj_free(j);
        pgbuf_free(&q);
        wj_refuse_now(s, "53200", "out of memory", NULL);
        return;
    }
    j->resolve_len = len;
    s->job = j;
    wj_inject(j, q.data, STEP_RESOLVE);
    pgbuf_free(&q);
}

int wj_take_resolved(write_job *j, const char *msg, size_t len)
{
    pgread r;
    pgread_init(&r, msg + 5, len - 5);
    if ((size_t)pgread_int16(&r) != j->n_resolve)
        return -1;
    for (size_t i = 0; i < j->n_resolve; i++) {
        uint32_t vlen = pgread_int32(&r);
        if (vlen == 0xffffffffu)
            continue;
        if (r.failed || vlen > pgread_remaining(&r))
            return -1;
        free(j->resolve_schemas[i]);
        if (!(j->resolve_schemas[i] = strndup(r.data + r.pos, vlen)))
            return -1;
        r.pos += vlen;
    }
    return r.failed ? -1 : 0;
}

int wj_classify_resolved(const write_job *j, const char *sql, size_t len, bool keep_trees, classify_result **out)
{
    classify_resolved res[64];
    size_t n = 0;
    for (size_t i = 0; i < j->n_resolve && n < sizeof res / sizeof *res; i++)
        res[n++] = (classify_resolved){j->resolve_names[i], j->resolve_schemas[i]};
    if (classify_passes(j->wc, sql, len, keep_trees, res, n, sizeof res / sizeof *res, out) < 0)
        return -1;
    log_debug("client %llu: unqualified names placed by the session's search_path",
              (unsigned long long)(j->s ? j->s->id : 0));
    if (refuse_unresolved(j->wc, *out, false) < 0) { /* a name the passes found only now */
        classify_result_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* The session placed the names: the statement classified with them (not kept in the plan
 * cache: another session's search_path may place them elsewhere) is carried out; when it
 * writes no synced table after all, the client's Query is relayed as it came (or, in a
 * Query of several statements, the statement runs as its others do). */
static void resolved(write_job *j)
{
    session *s = j->s;
    if (j->have_db_error) {
        wj_send_error(j, &j->db_error);
        wj_finish(j);
        return;
    }
    s->tx_status = j->status;
    classify_result *cr = NULL;
    int rc = wj_classify_resolved(j, j->resolve_sql, j->resolve_len, true, &cr);
    char *sql = j->resolve_sql;
    size_t len = j->resolve_len;
    j->resolve_sql = NULL;
    s->job = NULL;
    wj_free(j);
    if (rc < 0) {
        wj_refuse_now(s, "53200", "out of memory", NULL);
    } else if (!s->run) {
        if (!take_query(s, sql, len, cr))
            session_relay_query(s, sql, len);
    } else {
        const classify_stmt *st = &cr->stmts[0];
        if (st->verdict == CLASSIFY_REFUSE)
            wj_refuse_now(s, st->sqlstate, st->message, st->hint);
        else if (st->verdict == CLASSIFY_WRITE)
            start_one_write(s, sql, len, st);
        else
            start_job(s, sql, STEP_PASS);
        classify_result_free(cr);
    }
    free(sql);
}

bool write_query(session *s, const char *sql, size_t len)
{
    write_context *wc = &s->srv->writes;
    if (!write_enabled(wc) || s->tx_status == 'E' || !classify_may_write(sql, len) ||
        !wj_may_name_synced(wc, sql, len))
        return false;
    classify_result *cr = NULL;
    bool ask = false;
    if (wj_classify(wc, sql, len, true, &ask, &cr) < 0) {
        wj_refuse_now(s, "53200", "out of memory", NULL);
        return true;
    }
    if (ask) {
        ask_where(s, sql, len, &cr->stmts[0]);
        classify_result_free(cr);
        return true;
    }
    return take_query(s, sql, len, cr);
}

/* A WRITE statement of sql: to its sync, or refused when apigres cannot write there. */
static void start_one_write(session *s, const char *sql, size_t len, const classify_stmt *write)
{
    wj_start_write(s, sql, len, write, NULL);
}

void wj_start_write(session *s, const char *sql, size_t len, const classify_stmt *write, write_job *ext)
{
    write_context *wc = &s->srv->writes;
    const provider_collection *coll = NULL;
    bool pending = false;
    write_sync *ws = write->schema ? find_table(wc, write->schema, write->table, &coll, &pending) : NULL;
    if (pending) {
        char msg[256];
        snprintf(msg, sizeof msg, "apigres is still reading the description of %s.%s from the API", write->schema,
                 write->table);
        if (ext)
            wj_free(ext);
        wj_refuse_now(s, "55000", msg, "Try again in a moment.");
        return;
    }
    if (!ws || !coll) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s.%s is not a table apigres can write: the sync does not mirror this collection",
                 write->schema ? write->schema : "?", write->table);
        if (ext)
            wj_free(ext);
        wj_refuse_now(s, "0A000", msg, NULL);
        return;
    }
    start_write(s, sql, len, write, ws, coll, ext ? ext : wj_new(s));
}

/* ---- several statements in one Query */

static void start_run(session *s, const char *sql, size_t len, classify_result *cr)
{
    query_run *run = calloc(1, sizeof *run);
    if (!run || !(run->sql = malloc(len + 1))) {
        free(run);
        classify_result_free(cr);
        wj_refuse_now(s, "53200", "out of memory", NULL);
        return;
    }
    memcpy(run->sql, sql, len);
    run->sql[len] = '\0';
    run->len = len;
    run->cr = cr;
    bool own_control = false;
    for (size_t i = 0; i < cr->n_stmts; i++)
        own_control |= classify_transaction(sql + cr->stmts[i].offset, cr->stmts[i].len) != CLASSIFY_TX_NONE;
    s->run = run;
    if (s->tx_status == 'I' && !own_control) {
        run->wrap = true;
        start_job(s, "BEGIN", STEP_SILENT);
        return;
    }
    start_statement(s);
}

static void run_free(query_run *run)
{
    if (!run)
        return;
    classify_result_free(run->cr);
    free(run->sql);
    free(run);
}

static void start_statement(session *s)
{
    query_run *run = s->run;
    const classify_stmt *st = &run->cr->stmts[run->next++];
    if (wj_asked_in_turn(&s->srv->writes, st)) { /* the statements before it ran: the search_path is theirs */
        ask_where(s, run->sql + st->offset, st->len, st);
        return;
    }
    if (st->verdict == CLASSIFY_WRITE) {
        start_one_write(s, run->sql, run->len, st);
        return;
    }
    char *text = strndup(run->sql + st->offset, st->len);
    if (!text) {
        wj_refuse_now(s, "53200", "out of memory", NULL);
        return;
    }
    start_job(s, text, STEP_PASS);
    free(text);
}

/* One statement of the run is answered. */
static void run_continue(session *s, bool failed)
{
    query_run *run = s->run;
    if (failed)
        run->failed = true;
    if (!run->failed && run->next < run->cr->n_stmts && s->state < SESSION_DRAINING) {
        start_statement(s);
        return;
    }
    if (run->wrap && !run->closing && s->tx_status != 'I') {
        run->closing = true;
        start_job(s, run->failed || s->tx_status == 'E' ? "ROLLBACK" : "COMMIT", STEP_SILENT);
        return;
    }
    s->run = NULL;
    run_free(run);
    send_ready(s, s->tx_status);
    write_on_ready(s, s->tx_status);
    session_write_done(s, true);
}

bool write_cancel(session *s)
{
    write_job *j = s->job;
    if (!j || (j->step != STEP_CALLING && j->step != STEP_LOCKING))
        return false;
    j->cancel_requested = true;
    return true;
}

void write_on_session_close(session *s)
{
    write_context *wc = &s->srv->writes;
    run_free(s->run);
    s->run = NULL;
    ext_on_session_close(s);
    if (s->job) {
        write_job *j = s->job;
        s->job = NULL;
        j->s = NULL;
        /* calling, locking, unlocking: the callback under way finishes the job; otherwise
         * the backend's transaction dies with the session, and what the API did reaches
         * the mirror through the service connection */
        if (!j->lock_pending && j->step != STEP_CALLING && j->step != STEP_UNLOCKING)
            detached_done(j);
    }
    while (s->repairs) {
        repair *r = s->repairs;
        s->repairs = r->next;
        repair_send(wc, r);
    }
}
