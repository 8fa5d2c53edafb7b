/*
 * write_internal: what write.c (simple protocol) and write_ext.c (extended protocol) share:
 * the job that carries out one statement on a session, and its steps. Not for other
 * modules: they use write.h.
 */
#ifndef APIGRES_WRITE_INTERNAL_H
#define APIGRES_WRITE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "parser/classify.h"
#include "parser/rewrite.h"
#include "proxy/write.h"

enum step {
    STEP_RESOLVE,      /* where the session's search_path places unqualified synced names */
    STEP_PLAN,         /* BEGIN?; plan */
    STEP_PROBE,        /* the write itself in a savepoint rolled back: the database's checks */
    STEP_LOCKING,      /* waiting for the service connection's lock */
    STEP_CALLING,      /* API calls under way */
    STEP_MIRROR,       /* the mirror function on the client's session */
    STEP_UNLOCKING,    /* waiting for the lock's release */
    STEP_RETURNING,    /* RETURNING, once the lock is released (rewrite.h) */
    STEP_COMMIT,       /* our own transaction's COMMIT */
    STEP_ABORT,        /* ROLLBACK of ours, or the statement failing inside the client's */
    STEP_PASS,         /* a statement of a several-statement Query that is not a write */
    STEP_SILENT,       /* the COMMIT/ROLLBACK of such a Query's implicit transaction */
    /* the extended protocol (write_ext.c) */
    STEP_EXT_RELAY,    /* a client message forwarded: its responses are relayed */
    STEP_DESCRIBE,     /* Describe of the client's statement: its parameter types */
    STEP_REPLAN,       /* the plan ran with parameter types its Parse sent ahead proved wrong:
                        * our ROLLBACK, then the plan again with the right ones */
    STEP_EXT_RESOLVE,  /* STEP_RESOLVE before an Execute, in the batch (no Sync of ours) */
};

/* One API call of a statement: which row, and how it went. */
/* CALL_UNREAD: the API applied it, but its record could not be read back to mirror */
enum call_state { CALL_PENDING, CALL_DONE, CALL_GONE, CALL_FAILED, CALL_UNREAD };
typedef struct call_slot {
    struct write_job *j;
    size_t row;
    enum call_state state;
    cJSON *record; /* CALL_DONE: the API's record (DELETE: just its id) */
} call_slot;

/* Updates and deletes of one statement in flight at once (creates go one at a time). */
#define WRITE_CALLS_AT_ONCE 8

typedef struct write_job {
    session *s; /* NULL once the session is gone: the job finishes what is in flight */
    write_context *wc;
    write_sync *ws;
    const provider_collection *coll;
    rewrite_result *rw;
    char schema[64], table[64];
    bool own_tx;
    bool committed; /* our own transaction committed the mirror */
    uint32_t pid;   /* the client's backend: the mirror lock's second key */
    enum step step;
    char status; /* the transaction status of the last ReadyForQuery */

    /* plan rows: vals[0..ncols) each (NULL = SQL NULL) */
    int ncols;
    char ***rows;
    size_t nrows;
    size_t rows_seen;

    pgbuf db_error; /* the first ErrorResponse of the current step */
    bool have_db_error;
    pgbuf our_error; /* the ErrorResponse the statement ends with, when it fails */
    bool have_our_error;

    /* calls */
    cJSON **fields;
    call_slot *slots; /* one per plan row */
    bool *reached;    /* one per plan row: a DELETE's probe reached it */
    size_t next;      /* the next row to call for */
    size_t inflight;
    bool collected;   /* the outcomes are in records/ids/gone */
    bool lock_held;
    bool lock_pending; /* asked for while the plan runs; on_locked frees a detached job */
    bool lock_failed;
    bool lock_busy; /* another session holds this backend's lock: refused, not waited for */
    bool finish_pending; /* the statement ended while the lock was asked for */
    cJSON *records;    /* what the API returned, to mirror */
    char **ids;        /* rows counted in the tag (and given to RETURNING), in order */
    size_t nids;
    char **gone;       /* ids to remove from the mirror */
    size_t ngone;
    size_t applied;
    size_t unread;     /* of applied: CALL_UNREAD, not mirrored (the sync's next poll brings them) */
    bool upstream_failed;
    upstream_error uerr;
    double version;
    bool returning_done;
    bool commit_with_mirror; /* the mirror's Query also commits our transaction */
    bool cancel_requested;   /* a CancelRequest came: no further API call starts */
    bool failed; /* the client was sent an error */
    bool answered; /* the client has its ReadyForQuery; its next message waits for the job's end */

    /* STEP_RESOLVE: the client's Query, the names asked for, and the schema of each (NULL
     * when the name is no relation there) */
    char *resolve_sql;
    size_t resolve_len;
    char **resolve_names;
    char **resolve_schemas;
    size_t n_resolve;
    pgbuf ext_execute;     /* STEP_EXT_RESOLVE: the client's Execute, for a statement that
                            * turns out to be its own */
    bool ext_skip_bind;    /* drop the BindComplete of a Bind we sent again (answered already) */
    int where_closes;      /* STEP_EXT_RESOLVE: CloseCompletes still due after the lookup ran */

    /* extended protocol: the write is a portal's Execute (write_ext.c) */
    bool ext;
    char *ext_stmt;        /* the client's statement name */
    pgbuf ext_params;      /* the Bind's parameter formats and values, as sent */
    pgbuf ext_results;     /* the Bind's result format codes, as sent */
    uint32_t *param_types; /* from the backend's ParameterDescription */
    int nparam_types;
    char ext_expect;       /* STEP_EXT_RELAY: the response that completes the message */
    bool ext_skip_t;       /* drop the ParameterDescription (a portal Describe we answer) */
    bool ext_types;        /* a write's Parse relayed with our Describe: its parameter types
                            * are kept for its Executes, the Describe's answer not relayed */
    bool types_known;      /* param_types came with the Parse: Execute needs no Describe */
    classify_tx ext_tx;    /* a relayed Execute: its statement as a transaction statement */
    pgbuf parse_ahead;     /* the client's Parse, sent in the plan's round trip (see write_ext.c) */
    bool ahead;            /* that Parse's answers (ParseComplete, the Describe's) are due */
    bool ahead_failed;     /* the database refused that Parse: its error is the statement's */
    bool types_wrong;      /* the Describe sent with it gave other types than assumed */
    bool ext_patch_formats;/* patch RowDescription formats to ext_results */
} write_job;

/* Sends sql as a Query on the session's backend connection; the job enters step next. */
void wj_inject(write_job *j, const char *sql, enum step next);
/* Appends Describe of the prepared statement `name`. */
void wj_put_describe_statement(pgbuf *b, const char *name);
/* Sends raw protocol bytes (whole messages) to the backend; the job enters step next. */
void wj_inject_raw(write_job *j, const char *data, size_t len, enum step next);
/* The statement is answered (see write.c). */
void wj_finish(write_job *j);
void wj_send_error(write_job *j, const pgbuf *msg);
/* A job that only relays or swallows one statement's answer, or an immediate refusal. */
write_job *wj_new(session *s);
void wj_free(write_job *j);
void wj_refuse_now(session *s, const char *sqlstate, const char *message, const char *hint);
/* Plans and carries out the WRITE statement st of sql[0..len); ext: the job the extended
 * protocol prepared (parameters), or NULL for the simple protocol. */
void wj_start_write(session *s, const char *sql, size_t len, const classify_stmt *st, write_job *ext);
/* Extended protocol, once the parameter types are known: the plan with the parameters,
 * after a BEGIN in the same batch when the statement is to run in a transaction of ours. */
void wj_plan_ready(write_job *j);

/* write_ext.c: the extended protocol's batch, answered by the job's steps */
void ext_step_done(write_job *j);
int ext_on_backend_message(write_job *j, const char *msg, size_t len);
/* A job of the batch finished (failed: the client was sent an error). */
void ext_continue(session *s, bool failed);
/* Whether all that is left of the batch is its Sync (Flushes aside); if so the caller
 * answers it (ReadyForQuery) and the Sync is not sent on. */
bool ext_answer_sync(session *s);
void ext_on_session_close(session *s);
/* The answers to a Parse sent ahead of the plan (j->ahead): ParseComplete, ParameterDescription,
 * NoData or RowDescription, or the Parse's error. */
int ext_ahead_message(write_job *j, const char *msg, size_t len);
/* The plan of an Execute of the job's statement is sent: a repeat of its Parse may be sent
 * ahead of the next plan. */
void ext_note_planned(write_job *j);
/* The Parse sent ahead failed: the client gets its error, the batch is skipped to its Sync. */
void ext_ahead_failed(write_job *j);

/* The Salesforce objects of a sync (write_salesforce.c). wsf_init makes the client and asks
 * for the descriptions; wsf_collection gives the one of table, or NULL with *pending when
 * it has not come yet (a describe is then under way). */
int wsf_init(write_sync *ws);
void wsf_close(write_sync *ws);
const provider_collection *wsf_known(const write_sync *ws, const char *table);
const provider_collection *wsf_collection(write_sync *ws, const char *table, bool *pending);

/* Whether sql may name a synced schema or table (classify_may_name): only then is it
 * classified; a text that names none is relayed as it is. */
bool wj_may_name_synced(const write_context *w, const char *sql, size_t len);

/* Classifies sql for the write path against the synced schemas. An unqualified name that
 * names no synced table is the client's own (classified again as such). One that does is
 * left for the session to place when ask is given and sql is one statement (*ask set: the
 * caller asks to_regclass on the client's session, then wj_classify_resolved); otherwise
 * its statement is refused (0A000: apigres needs the schema), except, with ask given, one
 * among several statements that wj_asked_in_turn allows: the session is asked in its turn,
 * once the statements before it ran (they may change the search_path). keep_trees: for a result that
 * is planned at once and freed (classify_options), not one kept for later Executes. 0, or
 * -1 when out of memory. */
int wj_classify(const write_context *wc, const char *sql, size_t len, bool keep_trees, bool *ask,
                classify_result **out);
/* Asking the session (*ask above): the names of statement st to ask about go to
 * j->resolve_names, the query that asks (one row, a schema or NULL per name) to q; a
 * DataRow of its answer to j->resolve_schemas; then sql classified with them (refused as
 * wj_classify refuses when a pass finds another such name). Each 0, or -1 when out of
 * memory (or a malformed row). */
int wj_resolve_query(write_job *j, const classify_stmt *st, pgbuf *q);
/* Whether st, naming a synced table's name without its schema, may wait for its turn (an
 * Execute, or its place among several statements) to be placed: not a COPY, whose CopyData
 * would have to come while a job of ours holds the session. */
bool wj_asked_in_turn(const write_context *wc, const classify_stmt *st);
int wj_take_resolved(write_job *j, const char *msg, size_t len);
int wj_classify_resolved(const write_job *j, const char *sql, size_t len, bool keep_trees, classify_result **out);

#endif
