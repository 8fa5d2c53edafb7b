/*
 * pages: a Stripe backfill's pages loaded into the database (see worker_internal.h).
 *
 * A page is one statement on a connection of its own (PAGE_CONNS of them, besides the
 * worker's), sent without waiting: its upsert, then the cursor after it, which moves only
 * from the cursor before the page (the previous page's). So the database loads a page
 * while the API serves the next and the worker converts that one (its COPY rows are made
 * before the connection is waited for), and `kill -9` at any moment leaves a cursor whose
 * pages are all committed. With more than one connection, the statement takes the cursor's
 * row after its upsert: it waits there for the page ahead of it, and then moves the cursor
 * in the same transaction as its rows. When it got there first (its page was the quicker),
 * its rows commit alone and the cursor follows in a statement of its own when the page is
 * settled.
 *
 * A page is loaded with COPY (copy_rows.h) where it can be: the COPY, then the cursor's
 * step with the removal of records the write path deleted meanwhile as its WITH (prepared
 * once per connection, run by EXECUTE), as one implicit transaction (one simple Query). When COPY declines the page, or Postgres
 * refuses it (a record already in the table: 23505), the page is loaded with the JSON
 * upsert, which decides by version; after such a refusal the next COPY_RETRY_PAGES pages
 * go straight to the upsert (a table listed again is mostly already there).
 *
 * Results are read in listing order. After a failed page the listing ends unfinished and
 * resumes from the last cursor; a later page's rows may have committed (records as
 * upstream has them, listed again), its cursor has not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "sync/copy_rows.h"
#include "sync/worker_internal.h"

#define COPY_RETRY_PAGES 16

#define PAGE_CURSOR_SQL                                                                              \
    "UPDATE apigres.sync_state SET cursor = $1, rows_loaded = rows_loaded + $2::bigint, updated_at = now() " \
    "WHERE sync = $3 AND collection = $4"

/* The connection of slot s, opened if needed (NULL: err says why). The page statement runs
 * with a generic plan: planned for each page it costs about as much again as loading it,
 * and its plan does not depend on the values. Its commits do not wait for the WAL's flush:
 * a crash of the database may lose the last pages, but a page and its cursor commit
 * together, in order, so the backfill resumes from a cursor whose pages are all there. */
static PGconn *slot_conn(sync_worker *w, int s, char *err, size_t errlen)
{
    page_slot *p = &w->page[s];
    if (p->db && PQstatus(p->db) == CONNECTION_OK)
        return p->db;
    if (p->db)
        PQfinish(p->db);
    for (int i = 0; i < w->ncoll; i++)
        w->coll[i].page_prepared[s] = w->coll[i].step_prepared[s] = false;
    p->db = worker_connect(w, "apigres sync pages",
                           "SET client_min_messages = warning; SET plan_cache_mode = force_generic_plan; "
                           "SET synchronous_commit = off",
                           err, errlen);
    return p->db;
}

/* The page of slot s could not be loaded: recorded (its first line) unless an earlier one
 * was; a connection that is gone is dropped. */
static void slot_failed(sync_worker *w, int s, const char *message)
{
    page_slot *p = &w->page[s];
    p->pending = false;
    if (p->db && PQstatus(p->db) != CONNECTION_OK) {
        PQfinish(p->db);
        p->db = NULL;
    }
    if (w->page_failed)
        return;
    char err[512];
    snprintf(err, sizeof err, "%s", message);
    err[strcspn(err, "\n")] = '\0';
    worker_db_failed(w, w->coll[w->current].spec->name, err);
    w->page_failed = true;
}

/* Reads every result of the statement running on db: the error of the first that failed
 * (err empty: none; state its SQLSTATE) and whether the cursor moved. */
static bool read_results(PGconn *db, char *err, size_t errlen, char state[6])
{
    bool advanced = false;
    PGresult *r;
    err[0] = state[0] = '\0';
    while ((r = PQgetResult(db))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK && PQntuples(r) == 1)
            advanced = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && !err[0]) {
            const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(err, errlen, "%s", PQresultErrorMessage(r));
            snprintf(state, 6, "%s", code ? code : "");
        }
        PQclear(r);
    }
    if (!err[0] && PQstatus(db) != CONNECTION_OK)
        snprintf(err, errlen, "%s", PQerrorMessage(db));
    return advanced;
}

static int send_upsert(sync_worker *w, int s, PGconn *db, const char *body, size_t body_len);

/* Reads the result of the page of slot s (waits for it): its rows and, when the page
 * before it had committed by then, its cursor are committed; otherwise its cursor follows
 * here. A page Postgres refused to COPY is loaded with the upsert now. Only called when
 * every page before it has settled. 0, or -1 when it failed (recorded). */
static int settle(sync_worker *w, int s)
{
    page_slot *p = &w->page[s];
    if (!p->pending)
        return 0;
    char err[512], state[6];
    bool advanced = read_results(p->db, err, sizeof err, state);
    if (err[0] && p->copied && PQstatus(p->db) == CONNECTION_OK && !w->page_failed) {
        log_debug("sync %s: page %lld: COPY refused (%s), loading it with the upsert", w->sc->name, p->seq, state);
        if (strcmp(state, "23505") == 0)
            w->copy_from = w->page_seq + COPY_RETRY_PAGES;
        p->copied = false;
        if (send_upsert(w, s, p->db, p->body.data, p->body.len) < 0)
            return -1;
        advanced = read_results(p->db, err, sizeof err, state);
    }
    if (err[0] || w->page_failed) {
        /* its rows may have committed: records as upstream has them, listed again later */
        slot_failed(w, s, err[0] ? err : "an earlier page failed");
        return -1;
    }
    collection *c = &w->coll[w->current];
    char rows[32];
    snprintf(rows, sizeof rows, "%d", p->rows);
    if (!advanced) {
        /* its statement took the cursor's row before the page ahead of it did: its rows
         * are in, the cursor follows them now */
        const char *params[] = {p->cursor, rows, w->sc->name, c->spec->name, p->prev};
        PGresult *r = PQexecParams(p->db, PAGE_CURSOR_SQL " AND cursor = $5", 5, NULL, params, NULL, NULL, 0);
        advanced = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "1") == 0;
        if (!advanced)
            snprintf(err, sizeof err, "%s",
                     PQresultStatus(r) == PGRES_COMMAND_OK ? "the backfill's cursor moved meanwhile"
                                                           : PQresultErrorMessage(r));
        PQclear(r);
        if (!advanced) {
            slot_failed(w, s, err);
            return -1;
        }
    }
    p->pending = false;
    c->st.rows_loaded += p->rows;
    size_t len = strnlen(p->cursor, sizeof c->st.cursor - 1);
    memcpy(c->st.cursor, p->cursor, len);
    c->st.cursor[len] = '\0';
    w->pages++;
    w->copied_pages += p->copied;
    w->rows += p->rows;
    if (worker_now() - w->last_progress >= PROGRESS_EVERY)
        worker_progress(w, "in progress");
    return 0;
}

int pages_settle_all(sync_worker *w)
{
    int rc = 0;
    for (int n = 0; n < PAGE_CONNS; n++) {
        int oldest = -1;
        for (int s = 0; s < PAGE_CONNS; s++)
            if (w->page[s].pending && (oldest < 0 || w->page[s].seq < w->page[oldest].seq))
                oldest = s;
        if (oldest < 0)
            break;
        if (settle(w, oldest) < 0)
            rc = -1;
    }
    return rc;
}

/* The upsert of the page of slot s (its cursor, rows, version and prev as recorded),
 * sent on db. 0, or -1 when it could not be sent (recorded). */
static int send_upsert(sync_worker *w, int s, PGconn *db, const char *body, size_t body_len)
{
    collection *c = &w->coll[w->current];
    page_slot *slot = &w->page[s];
    char name[32];
    snprintf(name, sizeof name, "apigres_page_%d", w->current);
    if (!c->page_prepared[s]) {
        PGresult *r = PQprepare(db, name, c->page_sql, 7, (const Oid[]){25 /* text */, 0, 0, 0, 0, 0, 0});
        c->page_prepared[s] = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!c->page_prepared[s]) {
            slot_failed(w, s, PQresultErrorMessage(r));
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    char n[32];
    snprintf(n, sizeof n, "%d", slot->rows);
    /* the body goes as Stripe sent it: a text parameter in binary format is its bytes */
    const char *p[] = {body, slot->version, slot->cursor, n, w->sc->name, c->spec->name, slot->prev};
    const int lengths[] = {(int)body_len, 0, 0, 0, 0, 0, 0}, formats[] = {1, 0, 0, 0, 0, 0, 0};
    if (!body || body_len > INT32_MAX || !PQsendQueryPrepared(db, name, 7, p, lengths, formats, 0)) {
        slot_failed(w, s, body ? PQerrorMessage(db) : "no page body");
        return -1;
    }
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

/* The cursor's step after a COPY page, with the removal of what the write path deleted
 * meanwhile as its WITH, prepared once on the connection of slot s (its generic plan: the
 * statement's planning cost about as much as running it): $1 the cursor before the page,
 * $2 after it, $3 its rows, $4 its version, $5 the sync, $6 the collection. 0, or -1 when
 * it failed (recorded). */
static int prepare_step(sync_worker *w, int s, PGconn *db)
{
    collection *c = &w->coll[w->current];
    if (c->step_prepared[s])
        return 0;
    pgbuf q;
    pgbuf_init(&q, 1u << 20);
    pgbuf_put(&q, "WITH gone AS (", 14);
    copy_rows_tombstones_sql(&q, w->sc->schema, c->spec, "$4::bigint");
    if (q.len)
        q.len--; /* its NUL */
    pgbuf_put(&q, " RETURNING 1)\n", 14);
    char name[32];
    snprintf(name, sizeof name, "apigres_step_%d", w->current);
    PGresult *r = cursor_step_sql(&q, "", "$1", "$2", "$3", "$5", "$6") == 0 ? PQprepare(db, name, q.data, 6, NULL) : NULL;
    pgbuf_free(&q);
    c->step_prepared[s] = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!c->step_prepared[s])
        slot_failed(w, s, r ? PQresultErrorMessage(r) : "out of memory");
    PQclear(r);
    return c->step_prepared[s] ? 0 : -1;
}

/* The next page's rows as COPY text into w->copy_rows, made before the database is waited
 * for, so that it is ready when the connection is: whether COPY can take them (false: the
 * upsert is to be used). */
static bool copy_ready(sync_worker *w, const char *body, size_t body_len, long long version, int rows)
{
    collection *c = &w->coll[w->current];
    pgbuf_reset(&w->copy_rows);
    return c->copy_sql && copy_rows_of_list(&w->copy_rows, body, body_len, c->spec, version) == rows && !w->copy_rows.failed;
}

/* The page of slot s loaded with COPY (see the top) on db, its rows in w->copy_rows: 0
 * when sent, 1 when COPY declined it and nothing was sent (the upsert is to be used), -1
 * when it failed (recorded). */
static int send_copy(sync_worker *w, int s, PGconn *db, const char *body, size_t body_len)
{
    collection *c = &w->coll[w->current];
    page_slot *slot = &w->page[s];
    /* COPY reads the rows in the client encoding; the upsert's JSON is UTF-8 */
    const char *enc = PQparameterStatus(db, "client_encoding"), *senc = PQparameterStatus(db, "server_encoding");
    if (!enc || strcmp(enc, "UTF8") != 0 || !senc || strcmp(senc, "UTF8") != 0)
        return 1;
    long long version = strtoll(slot->version, NULL, 10);
    pgbuf_reset(&slot->body);
    pgbuf_put(&slot->body, body, body_len); /* for the upsert, should Postgres refuse the COPY */
    if (prepare_step(w, s, db) < 0)
        return -1;
    pgbuf q;
    pgbuf_init(&q, 1u << 20);
    pgbuf_put(&q, c->copy_sql, strlen(c->copy_sql));
    char head[64], numbers[64];
    snprintf(head, sizeof head, ";\nEXECUTE apigres_step_%d(", w->current);
    snprintf(numbers, sizeof numbers, ", %d, %lld, ", slot->rows, version);
    pgbuf_put(&q, head, strlen(head));
    bool ok = put_literal(&q, db, slot->prev);
    pgbuf_put(&q, ", ", 2);
    ok = ok && put_literal(&q, db, slot->cursor);
    pgbuf_put(&q, numbers, strlen(numbers));
    ok = ok && put_literal(&q, db, w->sc->name);
    pgbuf_put(&q, ", ", 2);
    ok = ok && put_literal(&q, db, c->spec->name);
    pgbuf_put(&q, ")", 1);
    pgbuf_put_byte(&q, 0);
    if (!ok || q.failed || slot->body.failed) {
        pgbuf_free(&q);
        return 1;
    }
    int sent = PQsendQuery(db, q.data);
    pgbuf_free(&q);
    if (!sent) {
        slot_failed(w, s, PQerrorMessage(db));
        return -1;
    }
    /* COPY's data may only follow its CopyInResponse: one round trip */
    PGresult *r = PQgetResult(db);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COPY_IN) {
        /* refused before any row (the table changed shape?): the upsert will say */
        char err[512], state[6];
        read_results(db, err, sizeof err, state);
        log_debug("sync %s: page %lld: COPY not started (%s), loading it with the upsert", w->sc->name, slot->seq,
                  state);
        if (PQstatus(db) != CONNECTION_OK) {
            slot_failed(w, s, err[0] ? err : PQerrorMessage(db));
            return -1;
        }
        return 1;
    }
    if (PQputCopyData(db, w->copy_rows.data, (int)w->copy_rows.len) != 1 || PQputCopyEnd(db, NULL) != 1) {
        slot_failed(w, s, PQerrorMessage(db));
        return -1;
    }
    return 0;
}

int pages_send(sync_worker *w, const char *body, size_t body_len, const char *version, const char *cursor,
               int rows)
{
    int s = w->page_next;
    /* not made for the pages an earlier refusal sends to the upsert */
    bool copy = w->page_seq + 1 >= w->copy_from && copy_ready(w, body, body_len, strtoll(version, NULL, 10), rows);
    /* the slot's page is the oldest in flight: it settles first, in listing order */
    if (settle(w, s) < 0)
        return -1;
    char msg[300];
    PGconn *db = slot_conn(w, s, msg, sizeof msg);
    if (!db) {
        slot_failed(w, s, msg);
        return -1;
    }
    page_slot *slot = &w->page[s];
    slot->rows = rows;
    slot->seq = ++w->page_seq;
    snprintf(slot->version, sizeof slot->version, "%s", version);
    snprintf(slot->cursor, sizeof slot->cursor, "%s", cursor);
    memcpy(slot->prev, w->send_cursor, sizeof slot->prev);
    if (body_len > INT32_MAX) {
        slot_failed(w, s, "a page too large to load");
        return -1;
    }
    /* a refusal settled just now sends the pages after it to the upsert */
    int copied = copy && w->page_seq >= w->copy_from ? send_copy(w, s, db, body, body_len) : 1;
    if (copied < 0 || (copied == 1 && send_upsert(w, s, db, body, body_len) < 0))
        return -1;
    slot->copied = copied == 0;
    slot->pending = true;
    snprintf(w->send_cursor, sizeof w->send_cursor, "%s", cursor);
    w->page_next = (s + 1) % PAGE_CONNS;
    return 0;
}


void pages_close(sync_worker *w)
{
    for (int s = 0; s < PAGE_CONNS; s++) {
        if (w->page[s].db)
            PQfinish(w->page[s].db);
        w->page[s].db = NULL;
        w->page[s].pending = false;
        pgbuf_free(&w->page[s].body);
    }
    pgbuf_free(&w->copy_rows);
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
