/*
 * write_ext: the write path in the extended query protocol (see write.h).
 *
 * With the write path on, the session holds the client's Parse, Bind, Describe, Execute,
 * Close messages until a Sync or Flush ends the batch. A batch that names no statement
 * writing a synced table is relayed at once, as it came. Otherwise it is run here one
 * message at a time, each followed by a Flush so that its answer can be told apart:
 *
 *   Parse of a write       relayed (so that Describe of the statement is the database's
 *                          own, truthful answer) and remembered with its text; when it
 *                          repeats the statement's previous Parse byte for byte and the
 *                          batch goes on with its Bind, Describe and Execute, it is held and
 *                          sent in the plan's round trip instead, the plan assuming the
 *                          previous parameter types (a Describe sent with it checks them:
 *                          if they changed, our transaction rolls back and the plan runs
 *                          again; if the Parse fails, the client gets its error and nothing
 *                          ran). The client's answers wait for its ParseComplete (and a
 *                          portal's RowDescription for that Describe's answer);
 *   Bind of such a statement  answered here (BindComplete); parameters kept for Execute;
 *   Describe of its portal    NoData, or the statement's RowDescription (RETURNING) in the
 *                          formats the Bind asked for;
 *   Execute of its portal     the write job of write.c, planning with the client's
 *                          parameters (types from the database's ParameterDescription);
 *                          when the statement names a synced table's name without its
 *                          schema, the session says first where its search_path places it
 *                          (ask_where): a write of that synced table, or the client's own
 *                          statement, whose portal then runs in the database as bound;
 *   anything else          relayed, its answer relayed.
 * An error ends the batch's work: the rest up to Sync is skipped, as the database does.
 */
#include "proxy/write_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/session.h"

typedef struct wstmt {
    struct wstmt *next;
    char *name;
    char *sql;
    size_t len;
    classify_result *cr; /* cr->stmts[0] is the WRITE */
    uint32_t *param_types; /* the database's ParameterDescription, asked with the Parse */
    int nparam_types;
    bool types_known;
    char *parse;           /* the Parse message itself: a repeat may be sent ahead */
    size_t parse_len;
    bool parse_held;       /* not sent yet: goes with the plan of this batch's Execute */
    bool planned;          /* an Execute of it got as far as its plan (no refusal before) */
    bool unresolved;       /* names a synced table's name without its schema: each Execute
                            * asks the session where it lives first (cr is provisional) */
} wstmt;

typedef struct wportal {
    struct wportal *next;
    char *name;
    char *stmt;
    pgbuf params;  /* the Bind's parameter formats and values */
    pgbuf results; /* the Bind's result formats */
} wportal;

struct write_ext {
    wstmt *stmts;
    wportal *portals;
};

/* A statement or portal of this batch that is a transaction statement: the batch's
 * messages run one at a time with no ReadyForQuery between them, so the transaction state
 * a write starts in follows these (what earlier batches prepared is not known). */
typedef struct txnote {
    char *name;
    bool portal;
    classify_tx kind;
    struct txnote *next;
} txnote;

typedef struct batch_run {
    char *data;
    size_t len, pos;
    txnote *notes;
    bool failed;
    bool running;     /* inside run_batch: a job that ends at once does not re-enter it */
    bool sync_answered; /* the batch's Sync was answered by its last write (ext_answer_sync) */
    bool owing;       /* a Parse is held: the answers to the messages after it wait */
    pgbuf owed;       /* those answers (BindComplete, NoData), in order */
    bool owe_row_description; /* and, last, its RowDescription (RETURNING) ... */
    pgbuf owed_formats;       /* ... in these result formats of the portal's Bind */
    /* the classification batch_writes made of the Parse at parsed_at, for run_batch to take */
    classify_result *parsed;
    size_t parsed_at;
    bool parsed_ask;
} batch_run;

static void batch_free(batch_run *b)
{
    pgbuf_free(&b->owed);
    pgbuf_free(&b->owed_formats);
    classify_result_free(b->parsed);
    free(b->data);
    free(b);
}

/* ---------------------------------------------------------------- names */

static classify_tx note_of(const batch_run *b, const char *name, bool portal)
{
    for (const txnote *n = b->notes; n; n = n->next)
        if (n->portal == portal && strcmp(n->name, name) == 0)
            return n->kind;
    return CLASSIFY_TX_NONE;
}

/* Records what statement or portal `name` now is (a new Parse or Bind replaces it).
 * Out of memory, the note is dropped: the tag alone then tells (see tx_after). */
static void set_note(batch_run *b, const char *name, bool portal, classify_tx kind)
{
    for (txnote **p = &b->notes; *p; p = &(*p)->next)
        if ((*p)->portal == portal && strcmp((*p)->name, name) == 0) {
            txnote *gone = *p;
            *p = gone->next;
            free(gone->name);
            free(gone);
            break;
        }
    txnote *n = kind == CLASSIFY_TX_NONE ? NULL : calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(name))) {
        free(n);
        return;
    }
    n->portal = portal;
    n->kind = kind;
    n->next = b->notes;
    b->notes = n;
}

/* The transaction state after a relayed Execute completed with `tag`. */
static char tx_after(char status, const char *tag, classify_tx kind)
{
    if (strcmp(tag, "BEGIN") == 0 || strcmp(tag, "START TRANSACTION") == 0)
        return 'T';
    if (strcmp(tag, "COMMIT") == 0 || strcmp(tag, "ROLLBACK") == 0 || strcmp(tag, "PREPARE TRANSACTION") == 0)
        return kind == CLASSIFY_TX_KEEPS ? status : 'I';
    return status;
}

static wstmt *find_stmt(session *s, const char *name)
{
    for (wstmt *w = s->ext ? s->ext->stmts : NULL; w; w = w->next)
        if (strcmp(w->name, name) == 0)
            return w;
    return NULL;
}

static wportal *find_portal(session *s, const char *name)
{
    for (wportal *p = s->ext ? s->ext->portals : NULL; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void drop_stmt(session *s, const char *name)
{
    for (wstmt **pp = s->ext ? &s->ext->stmts : NULL; pp && *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            wstmt *w = *pp;
            *pp = w->next;
            classify_result_free(w->cr);
            free(w->param_types);
            free(w->parse);
            free(w->sql);
            free(w->name);
            free(w);
            return;
        }
    }
}

static void drop_portal(session *s, const char *name)
{
    for (wportal **pp = s->ext ? &s->ext->portals : NULL; pp && *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            wportal *p = *pp;
            *pp = p->next;
            pgbuf_free(&p->params);
            pgbuf_free(&p->results);
            free(p->stmt);
            free(p->name);
            free(p);
            return;
        }
    }
}

/* A copy of n parameter types; NULL when there are none (or no memory: the caller then
 * has none either). */
static uint32_t *types_copy(const uint32_t *types, int n)
{
    uint32_t *copy = n > 0 ? malloc((size_t)n * sizeof *copy) : NULL;
    if (copy)
        memcpy(copy, types, (size_t)n * sizeof *copy);
    return copy;
}

static bool ensure_ext(session *s)
{
    if (!s->ext)
        s->ext = calloc(1, sizeof *s->ext);
    return s->ext != NULL;
}

/* The verdict on a Parse's text: the classification when it writes a synced table (or is
 * refused), NULL otherwise; *ask when it names a synced table's name without its schema
 * (provisional: the session says where it lives at each Execute). */
static classify_result *classify_parse(session *s, const char *sql, size_t len, bool *ask)
{
    *ask = false;
    if (!classify_may_write(sql, len) || !wj_may_name_synced(&s->srv->writes, sql, len))
        return NULL;
    classify_result *cr = NULL;
    if (wj_classify(&s->srv->writes, sql, len, false, ask, &cr) < 0)
        return NULL;
    if (*ask && !wj_asked_in_turn(&s->srv->writes, &cr->stmts[0])) { /* a COPY: qualify it */
        classify_result_free(cr);
        *ask = false;
        if (wj_classify(&s->srv->writes, sql, len, false, NULL, &cr) < 0)
            return NULL;
    }
    if (cr->n_stmts == 1 &&
        (*ask || cr->stmts[0].verdict == CLASSIFY_WRITE || cr->stmts[0].verdict == CLASSIFY_REFUSE))
        return cr;
    *ask = false;
    classify_result_free(cr); /* several statements: the database refuses that itself */
    return NULL;
}

/* ---------------------------------------------------------------- one message at a time */

typedef struct msgview {
    char type;
    const char *msg; /* whole message */
    size_t len;
    pgread body;
} msgview;

static bool next_message(const batch_run *b, size_t pos, msgview *m)
{
    if (pos + 5 > b->len)
        return false;
    uint32_t mlen = pgwire_get_int32(b->data + pos + 1);
    if (mlen < 4 || pos + 1 + mlen > b->len)
        return false;
    m->type = b->data[pos];
    m->msg = b->data + pos;
    m->len = 1 + mlen;
    pgread_init(&m->body, b->data + pos + 5, mlen - 4);
    return true;
}

static void send_client_error(session *s, const char *sqlstate, const char *message, const char *hint)
{
    pgbuf m;
    pgbuf_init(&m, 1u << 20);
    pgwire_put_error_detail(&m, "ERROR", sqlstate, message, NULL, hint);
    session_send_client(s, m.data, m.len);
    pgbuf_free(&m);
}

/* A job to relay a message's answer; NULL (the client told, the batch failed) when out of
 * memory. */
static write_job *relay_job(session *s)
{
    write_job *j = wj_new(s);
    if (!j) {
        send_client_error(s, "53200", "out of memory", NULL);
        s->brun->failed = true;
    }
    return j;
}

/* Sends the client's message m, then a Describe of the statement `describe` (or none), and a
 * Flush unless m is the Sync; j relays the answers. */
static void relay(session *s, write_job *j, const msgview *m, const char *describe)
{
    pgbuf out;
    pgbuf_init(&out, (size_t)1 << 30);
    pgbuf_put(&out, m->msg, m->len);
    if (describe)
        wj_put_describe_statement(&out, describe);
    if (m->type != 'S')
        pgbuf_put(&out, "H\0\0\0\4", 5);
    s->job = j;
    wj_inject_raw(j, out.data, out.len, STEP_EXT_RELAY);
    pgbuf_free(&out);
}

/* Forwards one client message with a Flush; the job relays its answer until `expect`. */
static void forward(session *s, const msgview *m, char expect, bool skip_t, const wportal *patch)
{
    write_job *j = relay_job(s);
    if (!j)
        return;
    if (m->type == 'E') {
        pgread r = m->body;
        const char *portal = pgread_string(&r);
        j->ext_tx = portal ? note_of(s->brun, portal, true) : CLASSIFY_TX_NONE;
    }
    j->ext_expect = expect;
    j->ext_skip_t = skip_t;
    if (patch) {
        j->ext_patch_formats = true;
        pgbuf_put(&j->ext_results, patch->results.data, patch->results.len);
    }
    relay(s, j, m, NULL);
}

/* A write's Parse, relayed with a Describe of the statement: the client gets the
 * ParseComplete; the parameter types stay with the statement for its Executes (no Describe
 * round trip of their own), the rest of the answer is ours alone. */
static void forward_parse(session *s, const msgview *m, const char *name)
{
    write_job *j = relay_job(s);
    if (!j)
        return;
    if (!(j->ext_stmt = strdup(name))) {
        wj_free(j);
        send_client_error(s, "53200", "out of memory", NULL);
        s->brun->failed = true;
        return;
    }
    j->ext_expect = 'T';
    j->ext_types = true;
    relay(s, j, m, name);
}

/* An answer of our own (BindComplete, NoData, CloseComplete): owed while a Parse before it
 * is held, sent otherwise. */
static void send_simple(session *s, char type)
{
    char m[5] = {type, 0, 0, 0, 4};
    if (s->brun && s->brun->owing)
        pgbuf_put(&s->brun->owed, m, sizeof m);
    else
        session_send_client(s, m, sizeof m);
}

/* Whether the batch goes on at pos with a Bind of statement `stmt`, perhaps its portal's
 * Describe, and that portal's Execute: what drivers send to run a statement, and nothing
 * among it needs the database before the Execute's plan. */
static bool bound_and_executed(const batch_run *b, size_t pos, const char *stmt)
{
    msgview m;
    if (!next_message(b, pos, &m) || m.type != 'B')
        return false;
    const char *portal = pgread_string(&m.body);
    const char *bound = pgread_string(&m.body);
    if (!portal || !bound || strcmp(bound, stmt) != 0)
        return false;
    pos += m.len;
    if (!next_message(b, pos, &m))
        return false;
    if (m.type == 'D') {
        uint8_t kind = pgread_byte(&m.body);
        const char *name = pgread_string(&m.body);
        if (kind != 'P' || !name || strcmp(name, portal) != 0)
            return false;
        pos += m.len;
        if (!next_message(b, pos, &m))
            return false;
    }
    const char *executed = m.type == 'E' ? pgread_string(&m.body) : NULL;
    return executed && strcmp(executed, portal) == 0;
}

static void end_batch(session *s)
{
    batch_run *b = s->brun;
    bool synced = b->len > 0 && b->data[b->len - 5] == 'S';
    s->brun = NULL;
    /* a Parse held for an Execute the batch did not reach: never sent, so not described */
    for (wstmt *w = s->ext ? s->ext->stmts : NULL; b->owing && w; w = w->next)
        if (w->parse_held) {
            w->parse_held = false;
            w->types_known = false;
        }
    while (b->notes) {
        txnote *n = b->notes;
        b->notes = n->next;
        free(n->name);
        free(n);
    }
    batch_free(b);
    if (s->tx_status == 'I') /* portals end with their transaction */
        while (s->ext && s->ext->portals)
            drop_portal(s, s->ext->portals->name);
    write_on_ready(s, s->tx_status);
    session_write_done(s, synced);
}

/* The statement and portal of ask_where's query: closed right after it runs, and before
 * each use too (an error skips what follows it to the Sync, the Closes included). */
#define WHERE_STMT "apigres_where_is"

/* Close of WHERE_STMT's statement and portal: two CloseCompletes. */
static void put_where_closes(pgbuf *out)
{
    for (int k = 0; k < 2; k++) {
        size_t at = pgbuf_begin_message(out, 'C');
        pgbuf_put_byte(out, k == 0 ? 'S' : 'P');
        pgbuf_put_string(out, WHERE_STMT);
        pgbuf_end_message(out, at);
    }
}

/* An Execute of a statement that names a synced table's name without its schema: first the
 * session says where it lives (write.c's query, in this batch: no Sync of ours, so the
 * transaction the batch is in goes on); ext_resolved goes on. */
static void ask_where(session *s, write_job *j, const msgview *execute, const wstmt *w)
{
    pgbuf q, out;
    pgbuf_init(&q, 1u << 20);
    pgbuf_init(&out, 1u << 20);
    if (wj_resolve_query(j, &w->cr->stmts[0], &q) == 0) {
        pgbuf_put(&j->ext_execute, execute->msg, execute->len);
        put_where_closes(&out);
        size_t at = pgbuf_begin_message(&out, 'P');
        pgbuf_put_string(&out, WHERE_STMT);
        pgbuf_put_string(&out, q.data);
        pgbuf_put_int16(&out, 0);
        pgbuf_end_message(&out, at);
        at = pgbuf_begin_message(&out, 'B');
        pgbuf_put_string(&out, WHERE_STMT);
        pgbuf_put_string(&out, WHERE_STMT);
        pgbuf_put_int16(&out, 0); /* no parameters; results in text */
        pgbuf_put_int16(&out, 0);
        pgbuf_put_int16(&out, 0);
        pgbuf_end_message(&out, at);
        at = pgbuf_begin_message(&out, 'E');
        pgbuf_put_string(&out, WHERE_STMT);
        pgbuf_put_int32(&out, 0);
        pgbuf_end_message(&out, at);
        put_where_closes(&out);
        pgbuf_put(&out, "H\0\0\0\4", 5);
    }
    if (q.failed || out.failed || j->ext_execute.failed || j->n_resolve == 0) {
        wj_free(j);
        send_client_error(s, "53200", "out of memory", NULL);
        s->brun->failed = true;
    } else {
        s->job = j;
        wj_inject_raw(j, out.data, out.len, STEP_EXT_RESOLVE);
    }
    pgbuf_free(&q);
    pgbuf_free(&out);
}

/* The session placed the names: the statement is a write of a synced table (planned as
 * any other, its plan naming the schema), refused, or the client's own: then its portal
 * runs in the database as the client bound it (and is forgotten here, so that a further
 * Execute of it goes straight there). */
/* The Execute ends with our error; the batch is skipped to its Sync. */
static void resolve_refused(write_job *j, const char *sqlstate, const char *message, const char *hint)
{
    session *s = j->s;
    s->job = NULL;
    wj_free(j);
    send_client_error(s, sqlstate, message, hint);
    ext_continue(s, true);
}

static void ext_resolved(write_job *j)
{
    session *s = j->s;
    wstmt *w = find_stmt(s, j->ext_stmt);
    classify_result *cr = NULL;
    if (!w || wj_classify_resolved(j, w->sql, w->len, false, &cr) < 0) {
        resolve_refused(j, "53200", "out of memory", NULL);
        return;
    }
    const classify_stmt *st = &cr->stmts[0];
    if (st->verdict == CLASSIFY_REFUSE) {
        resolve_refused(j, st->sqlstate, st->message, st->hint);
        classify_result_free(cr);
        return;
    }
    if (st->verdict == CLASSIFY_WRITE) {
        s->job = NULL;
        wj_start_write(s, w->sql, w->len, st, j);
        classify_result_free(cr);
        return;
    }
    classify_result_free(cr);
    pgread r;
    pgread_init(&r, j->ext_execute.data + 5, j->ext_execute.len - 5);
    const char *portal = pgread_string(&r);
    wportal *p = portal ? find_portal(s, portal) : NULL;
    pgbuf out;
    pgbuf_init(&out, (size_t)1 << 30);
    if (p) {
        size_t at = pgbuf_begin_message(&out, 'B');
        pgbuf_put_string(&out, p->name);
        pgbuf_put_string(&out, p->stmt);
        pgbuf_put(&out, p->params.data, p->params.len);
        pgbuf_put(&out, p->results.data, p->results.len);
        pgbuf_end_message(&out, at);
        pgbuf_put(&out, j->ext_execute.data, j->ext_execute.len);
        pgbuf_put(&out, "H\0\0\0\4", 5);
        drop_portal(s, p->name);
    }
    if (!p || out.failed) {
        pgbuf_free(&out);
        resolve_refused(j, "53200", "out of memory", NULL);
        return;
    }
    j->ext_expect = 'C';
    j->ext_skip_bind = true;
    j->ext_tx = CLASSIFY_TX_NONE;
    wj_inject_raw(j, out.data, out.len, STEP_EXT_RELAY);
    pgbuf_free(&out);
}

/* Handles messages until one needs the backend (a job then owns the session) or the
 * batch is done. */
static void run_batch(session *s)
{
    batch_run *b = s->brun;
    if (b->running)
        return;
    b->running = true;
    session_hold_client(s); /* the answers of the messages taken here go in one write */
    msgview m;
    while (!s->job && next_message(b, b->pos, &m)) {
        size_t at = b->pos;
        b->pos += m.len;
        if (b->failed && m.type != 'S')
            continue;
        switch (m.type) {
        case 'P': {
            const char *name = pgread_string(&m.body);
            const char *sql = pgread_string(&m.body);
            if (!name || !sql) {
                forward(s, &m, '1', false, NULL); /* the database says what is wrong */
                break;
            }
            /* the types the database gave the same Parse last time, to assume this time */
            wstmt *old = find_stmt(s, name);
            uint32_t *assumed = NULL;
            int nassumed = -1;
            if (old && old->types_known && old->planned && old->parse_len == m.len &&
                memcmp(old->parse, m.msg, m.len) == 0) {
                assumed = old->param_types;
                nassumed = old->nparam_types;
                old->param_types = NULL;
            }
            drop_stmt(s, name);
            bool held = false, ask = b->parsed_ask;
            classify_result *cr = b->parsed;
            if (cr && b->parsed_at == at)
                b->parsed = NULL; /* batch_writes classified it */
            else
                cr = classify_parse(s, sql, strlen(sql), &ask);
            if (cr && !ask && cr->stmts[0].verdict == CLASSIFY_REFUSE) {
                send_client_error(s, cr->stmts[0].sqlstate, cr->stmts[0].message, cr->stmts[0].hint);
                classify_result_free(cr);
                b->failed = true;
                break;
            }
            if (cr) {
                wstmt *w = calloc(1, sizeof *w);
                if (!w || !ensure_ext(s) || !(w->name = strdup(name)) || !(w->sql = strdup(sql)) ||
                    !(w->parse = malloc(m.len))) {
                    if (w) {
                        free(w->name);
                        free(w->sql);
                    }
                    free(w);
                    free(assumed);
                    classify_result_free(cr);
                    send_client_error(s, "53200", "out of memory", NULL);
                    b->failed = true;
                    break;
                }
                w->len = strlen(sql);
                w->cr = cr;
                w->unresolved = ask;
                memcpy(w->parse, m.msg, m.len);
                w->parse_len = m.len;
                w->next = s->ext->stmts;
                s->ext->stmts = w;
                /* held for the plan's round trip: outside the client's transaction only (a
                 * plan run with wrong types is then ours to roll back); the previous
                 * Execute was planned, so this one is not refused before its plan (the
                 * client must have its ParseComplete before any error of the Execute) */
                if (nassumed >= 0 && !ask && s->tx_status == 'I' && bound_and_executed(b, b->pos, name)) {
                    w->param_types = assumed;
                    w->nparam_types = nassumed;
                    w->types_known = true;
                    w->parse_held = true;
                    w->planned = true;
                    b->owing = true;
                    held = true;
                    assumed = NULL;
                }
            }
            free(assumed);
            set_note(b, name, false, cr ? CLASSIFY_TX_NONE : classify_transaction(sql, strlen(sql)));
            if (held)
                break;
            if (cr)
                forward_parse(s, &m, name);
            else
                forward(s, &m, '1', false, NULL);
            break;
        }
        case 'B': {
            const char *portal = pgread_string(&m.body);
            const char *stmt = pgread_string(&m.body);
            if (!portal || !stmt || !find_stmt(s, stmt)) {
                if (portal) {
                    drop_portal(s, portal);
                    set_note(b, portal, true, stmt ? note_of(b, stmt, false) : CLASSIFY_TX_NONE);
                }
                forward(s, &m, '2', false, NULL);
                break;
            }
            /* parameters: formats, values; then the result formats */
            size_t params_at = m.body.pos;
            uint16_t nfmt = pgread_int16(&m.body);
            for (uint16_t i = 0; i < nfmt; i++)
                pgread_int16(&m.body);
            uint16_t nparams = pgread_int16(&m.body);
            for (uint16_t i = 0; i < nparams && !m.body.failed; i++) {
                uint32_t vlen = pgread_int32(&m.body);
                if (vlen != 0xffffffffu) {
                    if (vlen > pgread_remaining(&m.body))
                        m.body.failed = true;
                    else
                        m.body.pos += vlen;
                }
            }
            size_t results_at = m.body.pos;
            if (m.body.failed || !ensure_ext(s)) {
                forward(s, &m, '2', false, NULL);
                break;
            }
            drop_portal(s, portal);
            wportal *p = calloc(1, sizeof *p);
            if (!p || !(p->name = strdup(portal)) || !(p->stmt = strdup(stmt))) {
                if (p)
                    free(p->name);
                free(p);
                send_client_error(s, "53200", "out of memory", NULL);
                b->failed = true;
                break;
            }
            pgbuf_init(&p->params, (size_t)1 << 30);
            pgbuf_init(&p->results, 1u << 20);
            pgbuf_put(&p->params, m.body.data + params_at, results_at - params_at);
            pgbuf_put(&p->results, m.body.data + results_at, m.body.len - results_at);
            p->next = s->ext->portals;
            s->ext->portals = p;
            send_simple(s, '2'); /* BindComplete: the write runs at Execute */
            break;
        }
        case 'D': {
            uint8_t kind = pgread_byte(&m.body);
            const char *name = pgread_string(&m.body);
            wportal *p = kind == 'P' && name ? find_portal(s, name) : NULL;
            if (!p) {
                forward(s, &m, 'T', false, NULL);
                break;
            }
            wstmt *w = find_stmt(s, p->stmt);
            if (!w || (!w->cr->stmts[0].returning && !w->unresolved)) {
                send_simple(s, 'n'); /* NoData: a write without RETURNING */
                break;
            }
            if (w->parse_held) { /* the Describe sent with the Parse brings it */
                b->owe_row_description = true;
                pgbuf_reset(&b->owed_formats);
                pgbuf_put(&b->owed_formats, p->results.data, p->results.len);
                break;
            }
            /* the statement's RowDescription, in the portal's formats */
            pgbuf d;
            pgbuf_init(&d, 1u << 20);
            wj_put_describe_statement(&d, p->stmt);
            msgview dm = {.type = 'D', .msg = d.data, .len = d.len};
            forward(s, &dm, 'T', true, p);
            pgbuf_free(&d);
            break;
        }
        case 'E': {
            const char *portal = pgread_string(&m.body);
            wportal *p = portal ? find_portal(s, portal) : NULL;
            wstmt *w = p ? find_stmt(s, p->stmt) : NULL;
            if (!p) {
                forward(s, &m, 'C', false, NULL);
                break;
            }
            if (!w) {
                send_client_error(s, "26000", "the prepared statement of this portal no longer exists", NULL);
                b->failed = true;
                break;
            }
            write_job *j = wj_new(s);
            if (!j || !(j->ext_stmt = strdup(p->stmt))) {
                if (j)
                    wj_free(j);
                send_client_error(s, "53200", "out of memory", NULL);
                b->failed = true;
                break;
            }
            j->ext = true;
            if (w->parse_held) {
                pgbuf_put(&j->parse_ahead, w->parse, w->parse_len);
                w->parse_held = false;
            }
            if (w->types_known)
                j->param_types = types_copy(w->param_types, w->nparam_types);
            j->nparam_types = j->param_types ? w->nparam_types : 0;
            j->types_known = w->types_known && j->nparam_types == w->nparam_types;
            pgbuf_put(&j->ext_params, p->params.data, p->params.len);
            pgbuf_put(&j->ext_results, p->results.data, p->results.len);
            if (w->unresolved)
                ask_where(s, j, &m, w);
            else
                wj_start_write(s, w->sql, w->len, &w->cr->stmts[0], j);
            break;
        }
        case 'C': {
            uint8_t kind = pgread_byte(&m.body);
            const char *name = pgread_string(&m.body);
            if (kind == 'P' && name && find_portal(s, name)) {
                drop_portal(s, name);
                send_simple(s, '3'); /* the portal was only ours */
                break;
            }
            if (kind == 'S' && name)
                drop_stmt(s, name);
            forward(s, &m, '3', false, NULL);
            break;
        }
        case 'S':
            if (!b->sync_answered)
                forward(s, &m, 'Z', false, NULL);
            break;
        case 'H':
            break; /* every message is flushed already */
        default:
            forward(s, &m, 'Z', false, NULL);
            break;
        }
    }
    b->running = false;
    session_flush_client(s);
    if (!s->job && (b->pos >= b->len || !next_message(b, b->pos, &m)))
        end_batch(s);
}

bool ext_answer_sync(session *s)
{
    batch_run *b = s->brun;
    msgview m;
    size_t pos = b->pos;
    bool sync = false;
    while (!b->failed && next_message(b, pos, &m)) {
        pos += m.len;
        if (m.type == 'S' && pos == b->len)
            sync = true;
        else if (m.type != 'H')
            return false;
    }
    b->sync_answered = sync;
    return sync;
}

void ext_continue(session *s, bool failed)
{
    if (failed)
        s->brun->failed = true;
    if (s->state >= SESSION_DRAINING)
        return;
    run_batch(s);
}

/* ---------------------------------------------------------------- backend answers */

/* RowDescription with each column's format set as the Bind's result formats say. */
static void patch_formats(pgbuf *msg, const pgbuf *results)
{
    pgread r;
    pgread_init(&r, results->data, results->len);
    uint16_t ncodes = pgread_int16(&r);
    size_t codes_at = r.pos;
    pgread f;
    pgread_init(&f, msg->data + 5, msg->len - 5);
    uint16_t nfields = pgread_int16(&f);
    for (uint16_t i = 0; i < nfields && !f.failed; i++) {
        pgread_string(&f);
        f.pos += 4 + 2 + 4 + 2 + 4; /* table, column, type, size, modifier */
        if (f.pos + 2 > f.len)
            return;
        uint16_t code = 0;
        if (ncodes == 1 || i < ncodes) {
            size_t at = codes_at + 2 * (ncodes == 1 ? 0 : i);
            if (at + 2 <= results->len)
                code = (uint16_t)(((uint8_t)results->data[at] << 8) | (uint8_t)results->data[at + 1]);
        }
        msg->data[5 + f.pos] = (char)(code >> 8);
        msg->data[5 + f.pos + 1] = (char)(code & 0xff);
        f.pos += 2;
    }
}

static bool completes(const write_job *j, char type)
{
    switch (j->ext_expect) {
    case 'T': return type == 'T' || type == 'n';
    case 'C': return type == 'C' || type == 'I' || type == 's';
    default: return type == j->ext_expect;
    }
}

/* The parameter types of a ParameterDescription into j (false: out of memory). */
static bool take_param_types(write_job *j, const char *msg, size_t len)
{
    pgread r;
    pgread_init(&r, msg + 5, len - 5);
    int n = pgread_int16(&r);
    free(j->param_types);
    j->param_types = n > 0 ? calloc((size_t)n, sizeof *j->param_types) : NULL;
    j->nparam_types = j->param_types ? n : 0;
    for (int i = 0; i < j->nparam_types; i++)
        j->param_types[i] = pgread_int32(&r);
    return !r.failed && j->nparam_types == (n > 0 ? n : 0);
}

/* The Describe sent with a write's Parse has answered: the types go to the statement. */
static void keep_param_types(write_job *j)
{
    wstmt *w = find_stmt(j->s, j->ext_stmt);
    if (!w || !j->types_known)
        return;
    free(w->param_types);
    w->param_types = j->param_types;
    w->nparam_types = j->nparam_types;
    w->types_known = true;
    j->param_types = NULL;
    j->nparam_types = 0;
}

void ext_note_planned(write_job *j)
{
    wstmt *w = find_stmt(j->s, j->ext_stmt);
    if (w)
        w->planned = true;
}

int ext_ahead_message(write_job *j, const char *msg, size_t len)
{
    session *s = j->s;
    batch_run *b = s->brun;
    switch (msg[0]) {
    case '1': /* the client's ParseComplete, then the answers owed to its Bind and Describe */
        session_hold_client(s);
        session_send_client(s, msg, len);
        if (b) {
            session_send_client(s, b->owed.data, b->owed.len);
            pgbuf_reset(&b->owed);
            b->owing = false;
        }
        return 0;
    case 't': {
        uint32_t *assumed = j->param_types;
        int nassumed = j->nparam_types;
        j->param_types = NULL;
        bool known = take_param_types(j, msg, len);
        if (!known || nassumed != j->nparam_types ||
            (nassumed > 0 && memcmp(assumed, j->param_types, (size_t)nassumed * sizeof *assumed) != 0)) {
            log_info("client %llu: write path: the parameter types of a repeated Parse changed; planning again",
                     (unsigned long long)s->id);
            j->types_wrong = true;
        }
        free(assumed);
        wstmt *w = find_stmt(s, j->ext_stmt);
        if (w) { /* what the next repeat assumes */
            free(w->param_types);
            w->param_types = types_copy(j->param_types, j->nparam_types);
            w->nparam_types = w->param_types ? j->nparam_types : 0;
            w->types_known = known && w->nparam_types == j->nparam_types;
        }
        return 0;
    }
    case 'n':
    case 'T':
        /* the answers stay held: they go with the statement's own (answer_before_unlock, or
         * the batch's flush when the job ends), one write and one wake-up of the client */
        j->ahead = false;
        if (b && b->owe_row_description && msg[0] == 'T') { /* the portal's Describe */
            b->owe_row_description = false;
            pgbuf t;
            pgbuf_init(&t, (size_t)1 << 30);
            pgbuf_put(&t, msg, len);
            patch_formats(&t, &b->owed_formats);
            int rc = session_send_client(s, t.data, t.len);
            pgbuf_free(&t);
            return rc;
        }
        return 0;
    case 'E':
        j->ahead = false;
        j->ahead_failed = true;
        pgbuf_reset(&j->db_error);
        pgbuf_put(&j->db_error, msg, len);
        j->have_db_error = true;
        return 0;
    default: /* a notice of the Parse */
        return session_send_client(s, msg, len);
    }
}

void ext_ahead_failed(write_job *j)
{
    session *s = j->s;
    if (s->brun) {
        pgbuf_reset(&s->brun->owed);
        s->brun->owing = false;
        s->brun->owe_row_description = false;
    }
    wstmt *w = find_stmt(s, j->ext_stmt);
    if (w)
        w->types_known = false; /* not in the database: an Execute of it is told so there */
    wj_send_error(j, &j->db_error);
    wj_finish(j);
}

/* The database's ErrorResponse msg ends the job's step, and the job: the database skips to
 * the client's Sync now. */
static void ends_with_error(write_job *j, const char *msg, size_t len)
{
    pgbuf e;
    pgbuf_init(&e, 1u << 20);
    pgbuf_put(&e, msg, len);
    wj_send_error(j, &e);
    pgbuf_free(&e);
    wj_finish(j);
}

int ext_on_backend_message(write_job *j, const char *msg, size_t len)
{
    session *s = j->s;
    char type = msg[0];
    if (j->step == STEP_EXT_RESOLVE) {
        switch (type) {
        case 'D':
            return wj_take_resolved(j, msg, len);
        case 'C': /* the lookup ran; its Closes follow */
            j->where_closes = 2;
            return 0;
        case '3':
            if (j->where_closes > 0 && --j->where_closes == 0)
                ext_resolved(j);
            return 0;
        case 'E':
            ends_with_error(j, msg, len);
            return 0;
        case 'N':
        case 'S':
        case 'A':
            return session_send_client(s, msg, len);
        default: /* the answers to our Close, Parse, Bind */
            return 0;
        }
    }
    if (j->step == STEP_EXT_RELAY && type == '2' && j->ext_skip_bind) {
        j->ext_skip_bind = false; /* the client had its BindComplete from us */
        return 0;
    }
    if (j->step == STEP_EXT_RELAY && j->ext_types && type != '1' && type != 'E' && type != 'N' && type != 'S') {
        if (type == 't')
            j->types_known = take_param_types(j, msg, len);
        if (type == 'T' || type == 'n') {
            keep_param_types(j);
            wj_finish(j);
            return session_flush_client(s);
        }
        return 0;
    }
    if (j->step == STEP_DESCRIBE) {
        if (type == 't') {
            take_param_types(j, msg, len);
            return 0;
        }
        if (type == 'T' || type == 'n') {
            wj_plan_ready(j);
            return 0;
        }
        if (type == 'E') {
            ends_with_error(j, msg, len);
            return 0;
        }
        return type == 'N' ? 0 : session_send_client(s, msg, len);
    }

    /* STEP_EXT_RELAY */
    if (type == 't' && j->ext_skip_t)
        return 0;
    bool last = type == 'E' || completes(j, type);
    /* the answers of this message and of those run_batch takes after it go in one write; a
     * write's ParseComplete waits for the answer to the Describe sent with it */
    if (last || (type == '1' && j->ext_types))
        session_hold_client(s);
    int rc;
    if (type == 'T' && j->ext_patch_formats) {
        pgbuf t;
        pgbuf_init(&t, (size_t)1 << 30);
        pgbuf_put(&t, msg, len);
        patch_formats(&t, &j->ext_results);
        rc = session_send_client(s, t.data, t.len);
        pgbuf_free(&t);
    } else {
        rc = session_send_client(s, msg, len);
    }
    if (type == 'Z' && len >= 6)
        j->status = msg[5];
    else if (type == 'C' && len > 5 && msg[len - 1] == '\0')
        j->status = tx_after(j->status, msg + 5, j->ext_tx);
    else if (type == 'E' && j->status == 'T')
        j->status = 'E';
    if (last) {
        j->failed = type == 'E';
        wj_finish(j);
        if (session_flush_client(s) < 0)
            rc = -1;
    }
    return rc;
}

/* ---------------------------------------------------------------- taking a batch */

/* Whether the batch names a write statement or portal, or parses one (its classification
 * then kept in b for run_batch: one libpg_query parse less per write). */
static bool batch_writes(session *s, batch_run *b)
{
    msgview m;
    for (size_t pos = 0; next_message(b, pos, &m); pos += m.len) {
        const char *a, *c;
        switch (m.type) {
        case 'P':
            a = pgread_string(&m.body);
            c = pgread_string(&m.body);
            if (a && find_stmt(s, a))
                return true; /* replaced: the map must learn it */
            if (c) {
                bool ask;
                classify_result *cr = classify_parse(s, c, strlen(c), &ask);
                if (cr) {
                    b->parsed = cr;
                    b->parsed_at = pos;
                    b->parsed_ask = ask;
                    return true;
                }
            }
            break;
        case 'B':
            a = pgread_string(&m.body);
            c = pgread_string(&m.body);
            if ((a && find_portal(s, a)) || (c && find_stmt(s, c)))
                return true;
            break;
        case 'E':
            a = pgread_string(&m.body);
            if (a && find_portal(s, a))
                return true;
            break;
        case 'D':
        case 'C': {
            uint8_t kind = pgread_byte(&m.body);
            a = pgread_string(&m.body);
            if (a && (kind == 'P' ? find_portal(s, a) != NULL : find_stmt(s, a) != NULL))
                return true;
            break;
        }
        default:
            break;
        }
    }
    return false;
}

enum write_batch_verdict write_batch(session *s, const char *data, size_t len, bool backend_idle)
{
    batch_run probe = {.data = (char *)data, .len = len};
    if (!write_enabled(&s->srv->writes) || !batch_writes(s, &probe))
        return WRITE_BATCH_RELAY;
    if (!backend_idle) {
        classify_result_free(probe.parsed); /* classified again when the backend is idle */
        return WRITE_BATCH_BUSY;
    }
    batch_run *b = calloc(1, sizeof *b);
    if (!b || !(b->data = malloc(len))) {
        free(b);
        classify_result_free(probe.parsed);
        return WRITE_BATCH_RELAY; /* the table's guard still refuses a write */
    }
    memcpy(b->data, data, len);
    b->len = len;
    pgbuf_init(&b->owed, 1u << 20);
    pgbuf_init(&b->owed_formats, 1u << 20);
    b->parsed = probe.parsed;
    b->parsed_at = probe.parsed_at;
    b->parsed_ask = probe.parsed_ask;
    s->brun = b;
    run_batch(s);
    return WRITE_BATCH_TAKEN;
}

void ext_on_session_close(session *s)
{
    if (s->brun) {
        batch_free(s->brun);
        s->brun = NULL;
    }
    if (!s->ext)
        return;
    while (s->ext->stmts)
        drop_stmt(s, s->ext->stmts->name);
    while (s->ext->portals)
        drop_portal(s, s->ext->portals->name);
    free(s->ext);
    s->ext = NULL;
}
