/*
 * pages: a Stripe backfill's pages loaded into the database (see worker_internal.h).
 *
 * Pages go to the database on a connection of their own, one transaction at a time, each
 * sent without waiting: the database loads one while the API serves the next pages and the
 * worker turns them into COPY rows. The pages that arrive while a transaction loads are
 * kept for the next (page_batch; at most BATCH_PAGES and BATCH_BYTES), so that the slower
 * the database, the more pages share a transaction's fixed cost. A transaction holds whole
 * pages and moves the cursor past the last of them, only from the cursor before the first
 * (where the transaction before it left it): `kill -9` at any moment leaves a cursor whose
 * pages are all committed.
 *
 * A transaction loads its pages with COPY (copy_rows.h) where it can: the COPY, then the
 * cursor's step with the removal of records the write path deleted meanwhile as its WITH
 * (prepared once per connection, run by EXECUTE), as one implicit transaction (one simple
 * Query). A page COPY declines goes alone, by the JSON upsert, which decides by version.
 * When Postgres refuses a COPY (a record already in the table: 23505), its pages are loaded
 * again one by one with the upsert; after such a refusal the next COPY_RETRY_PAGES pages go
 * straight to the upsert (a table listed again is mostly already there). A listing that
 * started on rows already there (w->copy_from set by the worker) uses the upsert alone.
 *
 * After a failed transaction the listing ends unfinished and resumes from the last cursor;
 * rows of a refused COPY's later pages may have been upserted (records as upstream has
 * them, listed again), their cursor has not moved.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "sync/copy_rows.h"
#include "sync/load.h"
#include "sync/worker_internal.h"

#define COPY_RETRY_PAGES 16

/* The page connection, opened if needed (NULL: err says why). Its statements run with a
 * generic plan: planned for each transaction they cost about as much again as the loading,
 * and their plan does not depend on the values. Its commits do not wait for the WAL's
 * flush: a crash of the database may lose the last transactions, but pages and their
 * cursor commit together, in order, so the backfill resumes from a cursor whose pages are
 * all there. */
static PGconn *page_conn(sync_worker *w, char *err, size_t errlen)
{
    if (w->page_db && PQstatus(w->page_db) == CONNECTION_OK)
        return w->page_db;
    if (w->page_db)
        PQfinish(w->page_db);
    for (int i = 0; i < w->ncoll; i++)
        w->coll[i].page_prepared = w->coll[i].step_prepared = false;
    w->page_db = worker_connect(w, "apigres sync pages",
                                "SET client_min_messages = warning; SET plan_cache_mode = force_generic_plan; "
                                "SET synchronous_commit = off",
                                err, errlen);
    return w->page_db;
}

/* The transaction in flight, or the pages about to be sent, could not be loaded: recorded
 * (its first line) unless an earlier failure was; a connection that is gone is dropped. */
static void load_failed(sync_worker *w, const char *message)
{
    w->loading = false;
    if (w->page_db && PQstatus(w->page_db) != CONNECTION_OK) {
        PQfinish(w->page_db);
        w->page_db = NULL;
    }
    if (w->page_failed)
        return;
    char err[512];
    snprintf(err, sizeof err, "%s", message);
    err[strcspn(err, "\n")] = '\0';
    worker_db_failed(w, w->coll[w->current].spec->name, err);
    w->page_failed = true;
}

/* Takes one result of the statement in flight into w->result. */
static void take_result(sync_worker *w, PGresult *r)
{
    struct load_result *res = &w->result;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        res->advanced = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && !res->err[0]) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(res->err, sizeof res->err, "%s", PQresultErrorMessage(r));
        snprintf(res->state, sizeof res->state, "%s", code ? code : "");
    }
    PQclear(r);
}

/* Reads the results of the statements in flight into w->result: all of them (waits), or
 * with ready_only those that have arrived. Whether all have been read. A pipeline (an
 * upserted page) ends at its sync: between its statements libpq returns no result. */
static bool read_results(sync_worker *w, bool ready_only)
{
    PGconn *db = w->page_db;
    if (ready_only && !PQconsumeInput(db))
        return true; /* the connection failed: what follows reads its error */
    while (!ready_only || !PQisBusy(db)) {
        PGresult *r = PQgetResult(db);
        if (!r && PQpipelineStatus(db) != PQ_PIPELINE_OFF && PQstatus(db) == CONNECTION_OK)
            continue;
        if (!r) {
            if (!w->result.err[0] && PQstatus(db) != CONNECTION_OK)
                snprintf(w->result.err, sizeof w->result.err, "%s", PQerrorMessage(db));
            return true;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            PQexitPipelineMode(db);
            continue;
        }
        take_result(w, r);
    }
    return false;
}

/* Page i of b is committed with its cursor. */
static void committed(sync_worker *w, const page_batch *b, int i)
{
    collection *c = &w->coll[w->current];
    const struct batch_page *p = &b->page[i];
    c->st.rows_loaded += p->rows;
    size_t len = strnlen(p->cursor, sizeof c->st.cursor - 1);
    memcpy(c->st.cursor, p->cursor, len);
    c->st.cursor[len] = '\0';
    w->pages++;
    w->copied_pages += b->copied;
    w->rows += p->rows;
    if (worker_now() - w->last_progress >= PROGRESS_EVERY)
        worker_progress(w, "in progress");
}

static int send_upsert(sync_worker *w, const page_batch *b, int i);

/* Loads the pages of b one by one with the upsert, each in a transaction of its own with
 * its cursor, waiting for each. 0, or -1 when one failed (recorded). */
static int upsert_pages(sync_worker *w, page_batch *b)
{
    b->copied = false;
    for (int i = 0; i < b->npages; i++) {
        memset(&w->result, 0, sizeof w->result);
        if (send_upsert(w, b, i) < 0)
            return -1;
        read_results(w, false);
        if (!w->result.err[0] && !w->result.advanced)
            snprintf(w->result.err, sizeof w->result.err, "the backfill's cursor moved meanwhile");
        if (w->result.err[0]) {
            load_failed(w, w->result.err);
            return -1;
        }
        committed(w, b, i);
    }
    return 0;
}

/* Waits for the transaction in flight: its pages and the cursor after them are committed.
 * A COPY Postgres refused is loaded again with the upsert. 0, or -1 when it failed
 * (recorded). */
static int settle(sync_worker *w)
{
    if (!w->loading)
        return 0;
    page_batch *b = &w->load;
    struct load_result *res = &w->result;
    read_results(w, false);
    w->loading = false;
    if (res->err[0] && b->copied && PQstatus(w->page_db) == CONNECTION_OK) {
        log_debug("sync %s: pages %lld-%lld: COPY refused (%s), loading them with the upsert", w->sc->name,
                  b->first_seq, b->first_seq + b->npages - 1, res->state);
        if (strcmp(res->state, "23505") == 0)
            w->copy_from = w->page_seq + COPY_RETRY_PAGES;
        return upsert_pages(w, b);
    }
    if (!res->err[0] && !res->advanced)
        snprintf(res->err, sizeof res->err, "the backfill's cursor moved meanwhile");
    if (res->err[0]) {
        load_failed(w, res->err);
        return -1;
    }
    for (int i = 0; i < b->npages; i++)
        committed(w, b, i);
    return 0;
}

/* The cursor's step after a page, as SQL with the values given as SQL text (parameters or
 * literals): moved to cursor, with rows more loaded, only from prev (the cursor before the
 * page); after is a FROM clause the update must wait for, or "". Its one row says whether
 * the cursor moved. Appended NUL-terminated, the NUL not counted in out->len. */
static int cursor_step_sql(pgbuf *out, const char *after, const char *prev, const char *cursor, const char *rows,
                           const char *sync, const char *coll)
{
    const char *parts[] = {
        "UPDATE apigres.sync_state s SET cursor = CASE WHEN s.cursor = ", prev, " THEN ", cursor, " ELSE s.cursor END,\n"
        "  rows_loaded = s.rows_loaded + CASE WHEN s.cursor = ", prev, " THEN ", rows, "::bigint ELSE 0 END,\n"
        "  updated_at = now()\n", after, " WHERE s.sync = ", sync, " AND s.collection = ", coll,
        "\nRETURNING s.cursor = ", cursor};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        pgbuf_put(out, parts[i], strlen(parts[i]));
    pgbuf_put_byte(out, 0);
    out->len--; /* NUL-terminated, and more may follow */
    return out->failed ? -1 : 0;
}

/* Appends text as an SQL literal. False when libpq could not quote it. */
static bool put_literal(pgbuf *q, PGconn *db, const char *text)
{
    char *lit = PQescapeLiteral(db, text, strlen(text));
    if (lit)
        pgbuf_put(q, lit, strlen(lit));
    PQfreemem(lit);
    return lit != NULL;
}


/* Sends the upsert of page i of b on the page connection, and after it, in its transaction,
 * the removal of what the write path deleted meanwhile (load.h): both in one pipeline, whose
 * statements up to its sync are one implicit transaction. 0, or -1 when it could not be sent
 * (recorded). */
static int send_upsert(sync_worker *w, const page_batch *b, int i)
{
    collection *c = &w->coll[w->current];
    PGconn *db = w->page_db;
    const struct batch_page *p = &b->page[i];
    char name[32], tombstoned[40];
    snprintf(name, sizeof name, "apigres_page_%d", w->current);
    snprintf(tombstoned, sizeof tombstoned, "apigres_tombstoned_%d", w->current);
    if (!c->page_prepared) {
        pgbuf q;
        pgbuf_init(&q, 1u << 20);
        PGresult *r = PQprepare(db, name, c->page_sql, 7, (const Oid[]){25 /* text */, 0, 0, 0, 0, 0, 0});
        if (PQresultStatus(r) == PGRES_COMMAND_OK &&
            load_tombstoned_sql(&q, w->sc->schema, c->spec, "$1::bigint") == 0) {
            PQclear(r);
            r = PQprepare(db, tombstoned, q.data, 1, NULL);
        }
        pgbuf_free(&q);
        c->page_prepared = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!c->page_prepared) {
            load_failed(w, r ? PQresultErrorMessage(r) : "out of memory");
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    char n[32], version[32];
    snprintf(n, sizeof n, "%d", p->rows);
    snprintf(version, sizeof version, "%lld", p->version);
    /* the body goes as Stripe sent it: a text parameter in binary format is its bytes */
    const char *params[] = {b->bodies.data + p->body_at, version, p->cursor, n, w->sc->name, c->spec->name,
                            i ? b->page[i - 1].cursor : b->prev};
    const int lengths[] = {(int)p->body_len, 0, 0, 0, 0, 0, 0}, formats[] = {1, 0, 0, 0, 0, 0, 0};
    const char *oldest[] = {version};
    if (!PQenterPipelineMode(db) || !PQsendQueryPrepared(db, name, 7, params, lengths, formats, 0) ||
        !PQsendQueryPrepared(db, tombstoned, 1, oldest, NULL, NULL, 0) || !PQpipelineSync(db)) {
        /* a pipeline half sent: the connection goes */
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(db));
        PQfinish(db);
        w->page_db = NULL;
        load_failed(w, msg);
        return -1;
    }
    return 0;
}

/* The cursor's step after a COPY transaction, with the removal of what the write path
 * deleted meanwhile as its WITH, prepared once on the page connection (its generic plan:
 * the statement's planning cost about as much as running it): $1 the cursor before the
 * pages, $2 after them, $3 their rows, $4 the oldest version among them, $5 the sync, $6
 * the collection. 0, or -1 when it failed (recorded). */
static int prepare_step(sync_worker *w, PGconn *db)
{
    collection *c = &w->coll[w->current];
    if (c->step_prepared)
        return 0;
    pgbuf q;
    pgbuf_init(&q, 1u << 20);
    pgbuf_put(&q, "WITH gone AS (", 14);
    load_tombstoned_sql(&q, w->sc->schema, c->spec, "$4::bigint");
    if (q.len)
        q.len--; /* its NUL */
    pgbuf_put(&q, " RETURNING 1)\n", 14);
    char name[32];
    snprintf(name, sizeof name, "apigres_step_%d", w->current);
    PGresult *r = cursor_step_sql(&q, "", "$1", "$2", "$3", "$5", "$6") == 0 ? PQprepare(db, name, q.data, 6, NULL) : NULL;
    pgbuf_free(&q);
    c->step_prepared = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!c->step_prepared)
        load_failed(w, r ? PQresultErrorMessage(r) : "out of memory");
    PQclear(r);
    return c->step_prepared ? 0 : -1;
}

/* Sends b's pages by COPY (see the top), their rows in b->copy_rows: 0 when sent, 1 when
 * COPY declined them and nothing was sent (the upsert is to be used), -1 when it failed
 * (recorded). */
static int send_copy(sync_worker *w, const page_batch *b)
{
    collection *c = &w->coll[w->current];
    PGconn *db = w->page_db;
    if (prepare_step(w, db) < 0)
        return -1;
    pgbuf q;
    pgbuf_init(&q, 1u << 20);
    pgbuf_put(&q, c->copy_sql, strlen(c->copy_sql));
    char head[64], numbers[64];
    snprintf(head, sizeof head, ";\nEXECUTE apigres_step_%d(", w->current);
    snprintf(numbers, sizeof numbers, ", %d, %lld, ", b->rows, b->page[0].version);
    pgbuf_put(&q, head, strlen(head));
    bool ok = put_literal(&q, db, b->prev);
    pgbuf_put(&q, ", ", 2);
    ok = ok && put_literal(&q, db, b->page[b->npages - 1].cursor);
    pgbuf_put(&q, numbers, strlen(numbers));
    ok = ok && put_literal(&q, db, w->sc->name);
    pgbuf_put(&q, ", ", 2);
    ok = ok && put_literal(&q, db, c->spec->name);
    pgbuf_put(&q, ")", 1);
    pgbuf_put_byte(&q, 0);
    if (!ok || q.failed) {
        pgbuf_free(&q);
        return 1;
    }
    int sent = PQsendQuery(db, q.data);
    pgbuf_free(&q);
    if (!sent) {
        load_failed(w, PQerrorMessage(db));
        return -1;
    }
    /* COPY's data may only follow its CopyInResponse: one round trip */
    PGresult *r = PQgetResult(db);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COPY_IN) {
        /* refused before any row (the table changed shape?): the upsert will say */
        memset(&w->result, 0, sizeof w->result);
        read_results(w, false);
        if (PQstatus(db) != CONNECTION_OK) {
            load_failed(w, w->result.err[0] ? w->result.err : PQerrorMessage(db));
            return -1;
        }
        log_debug("sync %s: pages %lld-%lld: COPY not started (%s), loading them with the upsert", w->sc->name,
                  b->first_seq, b->first_seq + b->npages - 1, w->result.state);
        return 1;
    }
    if (PQputCopyData(db, b->copy_rows.data, (int)b->copy_rows.len) != 1 || PQputCopyEnd(db, NULL) != 1) {
        load_failed(w, PQerrorMessage(db));
        return -1;
    }
    return 0;
}

/* Empties b (keeps its buffers' allocations). */
static void batch_clear(page_batch *b)
{
    b->npages = b->rows = 0;
    pgbuf_reset(&b->bodies);
    pgbuf_reset(&b->copy_rows);
}

/* Sends the pages kept as the next transaction, once the one in flight has settled. 0, or
 * -1 when a transaction failed (recorded). */
static int flush(sync_worker *w)
{
    if (!w->gather.npages)
        return 0;
    if (settle(w) < 0)
        return -1;
    page_batch sent = w->gather;
    w->gather = w->load;
    w->load = sent;
    page_batch *b = &w->load;
    batch_clear(&w->gather);
    memset(&w->result, 0, sizeof w->result);
    log_debug("sync %s: %s pages %lld-%lld (%d rows) go in one transaction, by %s", w->sc->name,
              w->coll[w->current].spec->name, b->first_seq, b->first_seq + b->npages - 1, b->rows,
              b->copied ? "COPY" : "the upsert");
    if (b->copied) {
        int copied = send_copy(w, b);
        if (copied != 1) {
            w->loading = copied == 0;
            return copied;
        }
        return upsert_pages(w, b);
    }
    if (send_upsert(w, b, 0) < 0)
        return -1;
    w->loading = true;
    return 0;
}

/* Whether COPY may take the pages of this connection: it reads the rows in the client
 * encoding, and the upsert's JSON is UTF-8. */
static bool copy_encoding(PGconn *db)
{
    const char *enc = PQparameterStatus(db, "client_encoding"), *senc = PQparameterStatus(db, "server_encoding");
    return enc && strcmp(enc, "UTF8") == 0 && senc && strcmp(senc, "UTF8") == 0;
}

int pages_send(sync_worker *w, const char *body, size_t body_len, const char *version, const char *cursor,
               int rows)
{
    collection *c = &w->coll[w->current];
    page_batch *g = &w->gather;
    char msg[300];
    /* while a transaction is in flight its connection stays, whatever its state: settling
     * it reports how it ended */
    if (!w->loading && !page_conn(w, msg, sizeof msg)) {
        load_failed(w, msg);
        return -1;
    }
    if (body_len > INT32_MAX) {
        load_failed(w, "a page too large to load");
        return -1;
    }
    long long v = strtoll(version, NULL, 10);
    bool copy = ++w->page_seq >= w->copy_from && c->copy_sql && copy_encoding(w->page_db);
    /* a page joins those kept when it loads the same way and they stay within bounds */
    if (g->npages && (!copy || !g->copied || g->npages == BATCH_PAGES || g->bodies.len + body_len > BATCH_BYTES) &&
        flush(w) < 0)
        return -1;
    size_t had = g->copy_rows.len;
    if (copy && (copy_rows_of_list(&g->copy_rows, body, body_len, c->spec, v) != rows || g->copy_rows.failed)) {
        /* COPY declines the page: it goes alone, by the upsert */
        pgbuf_truncate(&g->copy_rows, had);
        copy = false;
        if (flush(w) < 0)
            return -1;
    }
    if (!g->npages) {
        g->copied = copy;
        g->first_seq = w->page_seq;
        snprintf(g->prev, sizeof g->prev, "%s", w->send_cursor);
    }
    struct batch_page *p = &g->page[g->npages++];
    p->rows = rows;
    p->version = v;
    snprintf(p->cursor, sizeof p->cursor, "%s", cursor);
    p->body_at = g->bodies.len;
    p->body_len = body_len;
    pgbuf_put(&g->bodies, body, body_len);
    g->rows += rows;
    snprintf(w->send_cursor, sizeof w->send_cursor, "%s", cursor);
    if (g->bodies.failed) {
        load_failed(w, "out of memory keeping a page");
        return -1;
    }
    /* while the transaction before them loads, more pages may join these */
    if (copy && w->loading && g->npages < BATCH_PAGES && g->bodies.len < BATCH_BYTES && !read_results(w, true))
        return 0;
    return flush(w);
}

int pages_settle_all(sync_worker *w)
{
    if (w->page_failed) {
        batch_clear(&w->gather);
        return settle(w);
    }
    int rc = flush(w);
    return settle(w) < 0 ? -1 : rc;
}

void pages_close(sync_worker *w)
{
    if (w->page_db)
        PQfinish(w->page_db);
    w->page_db = NULL;
    w->loading = false;
    batch_clear(&w->gather);
    batch_clear(&w->load);
    pgbuf_free(&w->gather.bodies);
    pgbuf_free(&w->gather.copy_rows);
    pgbuf_free(&w->load.bodies);
    pgbuf_free(&w->load.copy_rows);
}

char *pages_upsert_sql(const char *upsert_list_sql)
{
    pgbuf b;
    pgbuf_init(&b, 4u << 20);
    pgbuf_put(&b, "WITH page AS (\n", 15);
    pgbuf_put(&b, upsert_list_sql, strlen(upsert_list_sql));
    pgbuf_put(&b, "\nRETURNING 1)\n", 14);
    char *s = cursor_step_sql(&b, "FROM (SELECT count(*) FROM page) n", "$7", "$3", "$4", "$5", "$6") == 0
                  ? strdup(b.data)
                  : NULL;
    pgbuf_free(&b);
    return s;
}
