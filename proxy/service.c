/* service: see service.h. */
#include "proxy/service.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"

typedef struct request {
    struct request *next;
    char *sql;             /* the SQL, or the prepared statement's name (prepared) */
    bool prepared;         /* run the named statement sql (service_query_prepared) */
    const char *prepare;   /* instead of a query: prepare the statement sql as this text */
    int nparams;
    char **params;
    service_cb cb;
    void *data;
} request;

/* A statement prepared on every connection the service opens (service_prepare). */
typedef struct statement {
    struct statement *next;
    char *name, *sql;
} statement;

struct service {
    uv_loop_t *loop;
    char *conninfo;
    PGconn *conn;
    uv_poll_t *poll; /* heap: it may outlive the service while closing */
    int poll_fd;
    int poll_events; /* what poll watches for */
    bool connecting;
    int nsent;         /* the first nsent requests of the queue are in the pipeline */
    bool head_results; /* the head's results have all arrived: its Sync is next */
    request *head, *tail;
    PGresult *last;
    statement *statements;
};

static void pump(service *sv);

static void request_free(request *r)
{
    free(r->sql);
    for (int i = 0; i < r->nparams; i++)
        free(r->params[i]);
    free(r->params);
    free(r);
}

static void on_poll_closed(uv_handle_t *h) { free(h); }

static void close_poll(service *sv)
{
    if (sv->poll) {
        uv_close((uv_handle_t *)sv->poll, on_poll_closed);
        sv->poll = NULL;
    }
    sv->poll_fd = -1;
    sv->poll_events = 0;
}

/* The head request is done: its callback, then the next. */
static void finish_head(service *sv, const PGresult *res, const char *error)
{
    request *r = sv->head;
    sv->head = r->next;
    if (!sv->head)
        sv->tail = NULL;
    if (sv->nsent > 0)
        sv->nsent--;
    sv->head_results = false;
    if (r->cb)
        r->cb(r->data, res, error);
    request_free(r);
}

/* The connection is gone: every queued request fails, the next query reconnects. */
static void fail_all(service *sv, const char *why)
{
    char error[256];
    snprintf(error, sizeof error, "service connection: %s", why && *why ? why : "lost");
    size_t n = strlen(error);
    while (n > 0 && (error[n - 1] == '\n' || error[n - 1] == ' '))
        error[--n] = '\0';
    log_warn("%s", error);
    close_poll(sv);
    if (sv->conn) {
        PQfinish(sv->conn);
        sv->conn = NULL;
    }
    PQclear(sv->last);
    sv->last = NULL;
    sv->connecting = sv->head_results = false;
    sv->nsent = 0;
    while (sv->head)
        finish_head(sv, NULL, error);
}

static void on_poll(uv_poll_t *h, int status, int events);

static int watch(service *sv, int events)
{
    int fd = PQsocket(sv->conn);
    if (fd < 0)
        return -1;
    if (sv->poll && sv->poll_fd != fd)
        close_poll(sv);
    if (!sv->poll) {
        sv->poll = malloc(sizeof *sv->poll);
        if (!sv->poll || uv_poll_init(sv->loop, sv->poll, fd) < 0) {
            free(sv->poll);
            sv->poll = NULL;
            return -1;
        }
        sv->poll->data = sv;
        sv->poll_fd = fd;
        sv->poll_events = 0;
    }
    /* uv_poll_start takes the descriptor out of epoll and puts it back, two system calls
     * for each query sent: only a change of events needs it */
    if (events == sv->poll_events)
        return 0;
    int rc = uv_poll_start(sv->poll, events, on_poll);
    sv->poll_events = rc == 0 ? events : 0;
    return rc;
}

static void on_prepared(void *data, const PGresult *res, const char *error)
{
    const statement *st = data;
    if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
        error = PQresultErrorMessage(res);
    if (error && *error)
        log_warn("service connection: cannot prepare %s: %s", st->name, error);
}

static request *request_new(const char *sql, int nparams, const char *const *params, service_cb cb,
                            void *data);

/* A new connection has none of the service's statements: their Parse goes first, ahead of
 * the queries queued meanwhile (none of which is sent yet). */
static int queue_prepares(service *sv)
{
    request **at = &sv->head;
    for (const statement *st = sv->statements; st; st = st->next) {
        request *r = request_new(st->name, 0, NULL, on_prepared, (void *)st);
        if (!r)
            return -1; /* the caller fails the queue, these with it */
        r->prepare = st->sql;
        r->next = *at;
        *at = r;
        if (!r->next)
            sv->tail = r;
        at = &r->next;
    }
    return 0;
}

static void continue_connect(service *sv)
{
    switch (PQconnectPoll(sv->conn)) {
    case PGRES_POLLING_READING:
        if (watch(sv, UV_READABLE) < 0)
            fail_all(sv, "cannot watch its socket");
        return;
    case PGRES_POLLING_WRITING:
        if (watch(sv, UV_WRITABLE) < 0)
            fail_all(sv, "cannot watch its socket");
        return;
    case PGRES_POLLING_OK:
        sv->connecting = false;
        if (PQsetnonblocking(sv->conn, 1) < 0 || !PQenterPipelineMode(sv->conn)) {
            fail_all(sv, PQerrorMessage(sv->conn));
            return;
        }
        log_info("service connection open");
        if (queue_prepares(sv) < 0) {
            fail_all(sv, "out of memory");
            return;
        }
        pump(sv);
        return;
    default:
        fail_all(sv, PQerrorMessage(sv->conn));
        return;
    }
}

/* Reads what arrived; finishes each request once its results and its Sync are in. In
 * pipeline mode libpq hands out a query's results, a NULL, then PGRES_PIPELINE_SYNC. */
static void read_results(service *sv)
{
    if (!PQconsumeInput(sv->conn)) {
        fail_all(sv, PQerrorMessage(sv->conn));
        return;
    }
    while (sv->conn && sv->nsent > 0 && !PQisBusy(sv->conn)) {
        PGresult *res = PQgetResult(sv->conn);
        if (!sv->head_results) {
            if (res) {
                PQclear(sv->last);
                sv->last = res;
            } else if (sv->last) {
                sv->head_results = true;
            } else {
                fail_all(sv, "a query without a result in its pipeline");
                return;
            }
            continue;
        }
        if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
            PQclear(res);
            fail_all(sv, "unexpected result order in its pipeline");
            return;
        }
        PQclear(res);
        PGresult *last = sv->last;
        sv->last = NULL;
        finish_head(sv, last, NULL);
        PQclear(last);
    }
    if (!sv->conn)
        return;
    PQnotifies(sv->conn); /* none are listened for; keep libpq's queue empty */
    if (PQstatus(sv->conn) == CONNECTION_BAD)
        fail_all(sv, PQerrorMessage(sv->conn));
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    service *sv = h->data;
    if (status < 0) {
        fail_all(sv, uv_strerror(status));
        return;
    }
    if (sv->connecting) {
        continue_connect(sv);
        return;
    }
    if (events & UV_WRITABLE) {
        int rc = PQflush(sv->conn);
        if (rc < 0) {
            fail_all(sv, PQerrorMessage(sv->conn));
            return;
        }
        if (rc == 0 && watch(sv, UV_READABLE) < 0) {
            fail_all(sv, "cannot watch its socket");
            return;
        }
    }
    if (events & UV_READABLE)
        read_results(sv);
    if (sv->conn)
        pump(sv);
}

/* Requests sent ahead of their results: enough to empty the queue of a busy proxy in one
 * round trip, few enough that one slow query delays a bounded number of others. */
#define SERVICE_PIPELINE_DEPTH 64

/* Opens the connection if needed and sends every queued request not yet sent (up to the
 * pipeline's depth), each followed by a Sync: each runs in its own implicit transaction,
 * and the backend runs them back to back instead of waiting for a round trip each. */
static void pump(service *sv)
{
    if (!sv->head || sv->connecting)
        return;
    if (!sv->conn) {
        const char *keys[] = {"dbname", "application_name", NULL};
        const char *vals[] = {sv->conninfo, "apigres service", NULL};
        sv->conn = PQconnectStartParams(keys, vals, 1);
        if (!sv->conn || PQstatus(sv->conn) == CONNECTION_BAD) {
            fail_all(sv, sv->conn ? PQerrorMessage(sv->conn) : "out of memory");
            return;
        }
        sv->connecting = true;
        continue_connect(sv);
        return;
    }
    request *r = sv->head;
    for (int i = 0; r && i < sv->nsent; i++)
        r = r->next;
    if (!r)
        return;
    for (; r && sv->nsent < SERVICE_PIPELINE_DEPTH; r = r->next) {
        const char *const *params = (const char *const *)r->params;
        int sent = r->prepare    ? PQsendPrepare(sv->conn, r->sql, r->prepare, 0, NULL)
                   : r->prepared ? PQsendQueryPrepared(sv->conn, r->sql, r->nparams, params, NULL, NULL, 0)
                                 : PQsendQueryParams(sv->conn, r->sql, r->nparams, NULL, params, NULL, NULL, 0);
        if (!sent || !PQpipelineSync(sv->conn)) {
            fail_all(sv, PQerrorMessage(sv->conn));
            return;
        }
        sv->nsent++;
    }
    int rc = PQflush(sv->conn);
    if (rc < 0 || watch(sv, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
        fail_all(sv, PQerrorMessage(sv->conn));
}

service *service_new(uv_loop_t *loop, const char *conninfo)
{
    service *sv = calloc(1, sizeof *sv);
    if (!sv || !(sv->conninfo = strdup(conninfo))) {
        free(sv);
        return NULL;
    }
    sv->loop = loop;
    sv->poll_fd = -1;
    return sv;
}

void service_free(service *sv)
{
    if (!sv)
        return;
    if (sv->head)
        fail_all(sv, "closing");
    close_poll(sv);
    if (sv->conn)
        PQfinish(sv->conn);
    PQclear(sv->last);
    while (sv->statements) {
        statement *next = sv->statements->next;
        free(sv->statements->name);
        free(sv->statements->sql);
        free(sv->statements);
        sv->statements = next;
    }
    free(sv->conninfo);
    free(sv);
}

int service_prepare(service *sv, const char *name, const char *sql)
{
    if (sv->conn || sv->connecting)
        return -1; /* see service.h: before the first query */
    statement *st = calloc(1, sizeof *st);
    if (!st || !(st->name = strdup(name)) || !(st->sql = strdup(sql))) {
        if (st)
            free(st->name);
        free(st);
        return -1;
    }
    st->next = sv->statements;
    sv->statements = st;
    return 0;
}

/* A request of sql with copies of its parameters, not queued; NULL when out of memory. */
static request *request_new(const char *sql, int nparams, const char *const *params, service_cb cb,
                            void *data)
{
    request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cb = cb;
    r->data = data;
    r->sql = strdup(sql);
    r->params = nparams > 0 ? calloc((size_t)nparams, sizeof *r->params) : NULL;
    bool failed = !r->sql || (nparams > 0 && !r->params);
    for (int i = 0; !failed && i < nparams; i++) {
        r->nparams = i + 1;
        if (params[i] && !(r->params[i] = strdup(params[i])))
            failed = true;
    }
    if (failed) {
        request_free(r);
        return NULL;
    }
    return r;
}

static int queue(service *sv, const char *sql, bool prepared, int nparams, const char *const *params,
                 service_cb cb, void *data)
{
    request *r = request_new(sql, nparams, params, cb, data);
    if (!r)
        return -1;
    r->prepared = prepared;
    if (sv->tail)
        sv->tail->next = r;
    else
        sv->head = r;
    sv->tail = r;
    pump(sv);
    return 0;
}

int service_query(service *sv, const char *sql, int nparams, const char *const *params,
                  service_cb cb, void *data)
{
    return queue(sv, sql, false, nparams, params, cb, data);
}

int service_query_prepared(service *sv, const char *name, int nparams, const char *const *params,
                           service_cb cb, void *data)
{
    return queue(sv, name, true, nparams, params, cb, data);
}

void service_forget(service *sv, void *data)
{
    for (request *r = sv->head; r; r = r->next)
        if (r->data == data)
            r->cb = NULL;
}
