/*
 * pages: a Stripe backfill's pages loaded into the database (see worker_internal.h).
 *
 * A page is one statement on a connection of its own (PAGE_CONNS of them, besides the
 * worker's), sent without waiting: its upsert, then the cursor after it, which moves only
 * from the cursor before the page (the previous page's). So the database loads two pages
 * at once while the API serves the next, and `kill -9` at any moment leaves a cursor whose
 * pages are all committed. The statement takes the cursor's row after its upsert: it waits
 * there for the page ahead of it, and then moves the cursor in the same transaction as its
 * rows. When it got there first (its page was the quicker), its rows commit alone and the
 * cursor follows in a statement of its own when the page is settled.
 *
 * Results are read in listing order. After a failed page the listing ends unfinished and
 * resumes from the last cursor; a later page's rows may have committed (records as
 * upstream has them, listed again), its cursor has not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "sync/worker_internal.h"

#define PAGE_CURSOR_SQL                                                                              \
    "UPDATE apigres.sync_state SET cursor = $1, rows_loaded = rows_loaded + $2::bigint, updated_at = now() " \
    "WHERE sync = $3 AND collection = $4"

/* The connection of slot s, opened if needed (NULL: err says why). The page statement runs
 * with a generic plan: planned for each page it costs about as much again as loading it,
 * and its plan does not depend on the values. */
static PGconn *slot_conn(sync_worker *w, int s, char *err, size_t errlen)
{
    page_slot *p = &w->page[s];
    if (p->db && PQstatus(p->db) == CONNECTION_OK)
        return p->db;
    if (p->db)
        PQfinish(p->db);
    for (int i = 0; i < w->ncoll; i++)
        w->coll[i].page_prepared[s] = false;
    p->db = worker_connect(w, "apigres sync pages",
                           "SET client_min_messages = warning; SET plan_cache_mode = force_generic_plan", err, errlen);
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

/* Reads the result of the page of slot s (waits for it): its rows and, when the page
 * before it had committed by then, its cursor are committed; otherwise its cursor follows
 * here. Only called when every page before it has settled. 0, or -1 when it failed
 * (recorded). */
static int settle(sync_worker *w, int s)
{
    page_slot *p = &w->page[s];
    if (!p->pending)
        return 0;
    char err[512] = "";
    bool advanced = false;
    PGresult *r;
    while ((r = PQgetResult(p->db))) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            advanced = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        else if (PQresultStatus(r) != PGRES_TUPLES_OK && !err[0])
            snprintf(err, sizeof err, "%s", PQresultErrorMessage(r));
        PQclear(r);
    }
    if (!err[0] && PQstatus(p->db) != CONNECTION_OK)
        snprintf(err, sizeof err, "%s", PQerrorMessage(p->db));
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
        r = PQexecParams(p->db, PAGE_CURSOR_SQL " AND cursor = $5", 5, NULL, params, NULL, NULL, 0);
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

int pages_send(sync_worker *w, const char *body, size_t body_len, const char *version, const char *cursor,
               int rows)
{
    int s = w->page_next;
    /* the slot's page is the oldest in flight: it settles first, in listing order */
    if (settle(w, s) < 0)
        return -1;
    collection *c = &w->coll[w->current];
    char msg[300];
    PGconn *db = slot_conn(w, s, msg, sizeof msg);
    if (!db) {
        slot_failed(w, s, msg);
        return -1;
    }
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
    page_slot *slot = &w->page[s];
    char n[32];
    snprintf(n, sizeof n, "%d", rows);
    /* the body goes as Stripe sent it: a text parameter in binary format is its bytes */
    const char *p[] = {body, version, cursor, n, w->sc->name, c->spec->name, w->send_cursor};
    const int lengths[] = {(int)body_len, 0, 0, 0, 0, 0, 0}, formats[] = {1, 0, 0, 0, 0, 0, 0};
    if (!body || body_len > INT32_MAX || !PQsendQueryPrepared(db, name, 7, p, lengths, formats, 0)) {
        slot_failed(w, s, body ? PQerrorMessage(db) : "no page body");
        return -1;
    }
    slot->pending = true;
    slot->rows = rows;
    slot->seq = ++w->page_seq;
    snprintf(slot->cursor, sizeof slot->cursor, "%s", cursor);
    memcpy(slot->prev, w->send_cursor, sizeof slot->prev);
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
    }
}
