/*
 * 50_cancel: query cancellation through apigres. libpq's PQcancel sends a CancelRequest on
 * a new connection to the proxy with the BackendKeyData the proxy relayed at startup; the
 * running query must fail with 57014 and the session must stay usable. Also: cancelling one
 * of two sleeping sessions leaves the other alone, a CancelRequest with a wrong secret key
 * or another session's PID cancels nothing (checked with a hand-written protocol client that
 * sees the raw BackendKeyData), a cancel while rows are streaming, and pg_terminate_backend
 * of a proxied session.
 *
 *   50_cancel PROXY_PORT DIRECT_PORT      (user and database from PGUSER / PGDATABASE)
 *
 * Prints ok / not ok lines; exits 1 if any check failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tests/integration/itest.h"

static const char *user, *dbname;



static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static PGconn *connect_port(int port, const char *app)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=%s dbname=%s application_name=%s connect_timeout=10",
             port, user, dbname, app);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("not ok - connect to port %d: %s\n", port, PQerrorMessage(c));
        exit(1);
    }
    return c;
}

static int backend_pid(PGconn *c)
{
    PGresult *r = PQexec(c, "select pg_backend_pid()");
    int pid = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return pid;
}

/* Waits (up to `secs`) for the async query's final result; returns it, drains the rest. */
static PGresult *wait_result(PGconn *c, double secs)
{
    double end = now() + secs;
    while (PQisBusy(c)) {
        double left = end - now();
        if (left <= 0)
            return NULL;
        if (wait_socket(c, left) < 0)
            return NULL;
        if (!PQconsumeInput(c))
            break;
    }
    PGresult *r = PQgetResult(c), *extra;
    while ((extra = PQgetResult(c)))
        PQclear(extra);
    return r;
}

static const char *sqlstate(const PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "none";
}

static int select_one_works(PGconn *c)
{
    PGresult *r = PQexec(c, "select 1");
    int good = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    return good;
}

static int send_cancel(PGconn *c)
{
    char err[256];
    PGcancel *cn = PQgetCancel(c);
    int good = cn && PQcancel(cn, err, sizeof err);
    if (!good)
        printf("# PQcancel: %s\n", err);
    PQfreeCancel(cn);
    return good;
}

/* ---- a minimal protocol client, to see BackendKeyData and send arbitrary CancelRequests ---- */
struct raw {
    int fd;
    uint32_t pid, key;
};

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(fd, (const char *)buf + done, n - done);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

/* Reads one message: returns its type, body in *body (malloc'd), length in *len; -1 on EOF. */
static int read_msg(int fd, char **body, uint32_t *len)
{
    unsigned char hdr[5];
    if (read_full(fd, hdr, 5) < 0)
        return -1;
    uint32_t l = ((uint32_t)hdr[1] << 24) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 8) | hdr[4];
    if (l < 4 || l > (1u << 26))
        return -1;
    *len = l - 4;
    *body = malloc(*len + 1);
    if (read_full(fd, *body, *len) < 0) {
        free(*body);
        return -1;
    }
    (*body)[*len] = '\0';
    return hdr[0];
}

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

static int raw_connect(struct raw *r, int port, const char *app)
{
    char msg[512];
    size_t o = 8;
    const char *kv[] = {"user", user, "database", dbname, "application_name", app};
    for (int i = 0; i < 6; i++) {
        size_t l = strlen(kv[i]) + 1;
        memcpy(msg + o, kv[i], l);
        o += l;
    }
    msg[o++] = '\0';
    uint32_t n = htonl((uint32_t)o), v = htonl(196608);
    memcpy(msg, &n, 4);
    memcpy(msg + 4, &v, 4);
    r->fd = tcp_connect(port);
    r->pid = r->key = 0;
    if (r->fd < 0 || write_full(r->fd, msg, o) < 0)
        return -1;
    for (;;) {
        char *b;
        uint32_t len;
        int t = read_msg(r->fd, &b, &len);
        if (t < 0)
            return -1;
        if (t == 'R' && (len < 4 || get32(b) != 0)) { /* only trust auth here */
            free(b);
            return -1;
        }
        if (t == 'K' && len == 8) {
            r->pid = get32(b);
            r->key = get32(b + 4);
        }
        free(b);
        if (t == 'E')
            return -1;
        if (t == 'Z')
            return 0;
    }
}

static int raw_send_query(struct raw *r, const char *q)
{
    size_t l = strlen(q) + 1;
    char *m = malloc(l + 5);
    m[0] = 'Q';
    uint32_t n = htonl((uint32_t)(l + 4));
    memcpy(m + 1, &n, 4);
    memcpy(m + 5, q, l);
    int rc = write_full(r->fd, m, l + 5);
    free(m);
    return rc;
}

/* Reads up to ReadyForQuery; returns the SQLSTATE of an error ("" if none) in `state`. */
static int raw_wait(struct raw *r, char state[6], char tag[64])
{
    state[0] = tag[0] = '\0';
    for (;;) {
        char *b;
        uint32_t len;
        int t = read_msg(r->fd, &b, &len);
        if (t < 0)
            return -1;
        if (t == 'E') {
            for (char *f = b; f < b + len && *f; f += strlen(f) + 1)
                if (*f == 'C')
                    snprintf(state, 6, "%s", f + 1);
        } else if (t == 'C')
            snprintf(tag, 64, "%s", b);
        free(b);
        if (t == 'Z')
            return 0;
    }
}

/* Sends a CancelRequest; waits for the other side to close (as PQcancel does). */
static int raw_cancel(int port, uint32_t pid, uint32_t key)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    uint32_t m[4] = {htonl(16), htonl(80877102), htonl(pid), htonl(key)};
    int rc = write_full(fd, m, sizeof m);
    char c;
    ssize_t k = read(fd, &c, 1); /* EOF expected: nothing is ever sent back */
    close(fd);
    return rc == 0 && k == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PROXY_PORT DIRECT_PORT\n", argv[0]);
        return 2;
    }
    int pport = atoi(argv[1]), dport = atoi(argv[2]);
    user = getenv("PGUSER") ? getenv("PGUSER") : "postgres";
    dbname = getenv("PGDATABASE") ? getenv("PGDATABASE") : "apigres_test";

    /* 1. cancel a long query; the session survives */
    PGconn *a = connect_port(pport, "apigres_50_cancel_a");
    int apid = backend_pid(a);
    check(PQbackendPID(a) == apid, "BackendKeyData PID through the proxy is the backend's pg_backend_pid()");
    double t0 = now();
    check(PQsendQuery(a, "select pg_sleep(30)"), "pg_sleep(30) sent");
    sleep_ms(300);
    check(send_cancel(a), "PQcancel through the proxy succeeds");
    PGresult *r = wait_result(a, 5.0);
    double el = now() - t0;
    check(r && PQresultStatus(r) == PGRES_FATAL_ERROR && strcmp(sqlstate(r), "57014") == 0,
          "cancelled query fails with SQLSTATE 57014 (got %s)", sqlstate(r));
    check(r && strstr(PQresultErrorMessage(r), "canceling statement due to user request") != NULL,
          "message: canceling statement due to user request");
    check(el < 5.0, "cancelled within 5 s (%.2f s)", el);
    PQclear(r);
    check(select_one_works(a), "same session runs select 1 after the cancel");
    check(backend_pid(a) == apid, "same backend after the cancel");

    /* 2. two sleeping sessions; only the cancelled one stops */
    PGconn *b = connect_port(pport, "apigres_50_cancel_b");
    t0 = now();
    check(PQsendQuery(a, "select pg_sleep(2)") && PQsendQuery(b, "select pg_sleep(2)"), "two sessions sleep 2 s");
    sleep_ms(300);
    check(send_cancel(a), "cancel only the first");
    r = wait_result(a, 5.0);
    double ea = now() - t0;
    check(r && strcmp(sqlstate(r), "57014") == 0, "first session cancelled (%s, %.2f s)", sqlstate(r), ea);
    PQclear(r);
    r = wait_result(b, 5.0);
    double eb = now() - t0;
    check(r && PQresultStatus(r) == PGRES_TUPLES_OK, "second session finishes normally (%s)",
          r ? PQresStatus(PQresultStatus(r)) : "timeout");
    check(eb >= 1.9, "second session really slept (%.2f s)", eb);
    check(ea < eb, "the cancelled one finished first");
    PQclear(r);

    /* 3. CancelRequests that must not cancel anything: wrong key, another session's PID */
    struct raw raw;
    if (!check(raw_connect(&raw, pport, "apigres_50_raw") == 0, "hand-written client connects through the proxy"))
        return 1;
    char state[6], tag[64];
    check(raw.pid != 0, "BackendKeyData received");
    check(raw_send_query(&raw, "select pg_backend_pid()") == 0 && raw_wait(&raw, state, tag) == 0 &&
              strcmp(tag, "SELECT 1") == 0, "raw client runs a query");
    t0 = now();
    uint32_t bpid = (uint32_t)PQbackendPID(b);
    check(PQsendQuery(b, "select pg_sleep(1.5)"), "session b sleeps 1.5 s");
    check(raw_send_query(&raw, "select pg_sleep(1.5)") == 0, "raw client sleeps 1.5 s");
    sleep_ms(300);
    check(raw_cancel(pport, raw.pid, raw.key ^ 0x5a5a5a5au) == 0, "CancelRequest with a wrong key sent");
    check(raw_cancel(pport, bpid, raw.key) == 0, "CancelRequest with session b's PID and the raw key sent");
    check(raw_cancel(pport, 0, 0) == 0, "CancelRequest for PID 0 sent");
    check(raw_wait(&raw, state, tag) == 0 && state[0] == '\0' && strcmp(tag, "SELECT 1") == 0,
          "raw client's query not cancelled by a wrong key (%s %s)", state[0] ? state : "no error", tag);
    r = wait_result(b, 5.0);
    check(r && PQresultStatus(r) == PGRES_TUPLES_OK, "session b not cancelled by its PID with a wrong key (%s)",
          r ? PQresStatus(PQresultStatus(r)) : "timeout");
    PQclear(r);
    check(now() - t0 >= 1.4, "both slept the full time (%.2f s)", now() - t0);
    /* and the right key does cancel */
    t0 = now();
    check(raw_send_query(&raw, "select pg_sleep(30)") == 0, "raw client sleeps 30 s");
    sleep_ms(300);
    check(raw_cancel(pport, raw.pid, raw.key) == 0, "CancelRequest with the right key sent");
    check(raw_wait(&raw, state, tag) == 0 && strcmp(state, "57014") == 0 && now() - t0 < 5.0,
          "raw client's query cancelled with 57014 (%s, %.2f s)", state, now() - t0);
    close(raw.fd);

    /* 4. cancel while a large result is streaming (an SRF in the select list streams rows;
     * one in FROM would be materialized first) */
    check(PQsendQuery(a, "select g, repeat('x', 100) from (select generate_series(1, 100000000) g) s") && PQsetSingleRowMode(a),
          "streaming query in single-row mode");
    int rows = 0, cancelled = 0, sent = 0;
    t0 = now();
    while (now() - t0 < 20.0) {
        r = PQgetResult(a);
        if (!r)
            break;
        if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
            rows++;
            if (rows == 10000 && !sent)
                sent = send_cancel(a);
        } else if (PQresultStatus(r) == PGRES_FATAL_ERROR)
            cancelled = strcmp(sqlstate(r), "57014") == 0;
        PQclear(r);
    }
    check(sent && cancelled, "streaming query cancelled with 57014 after %d rows (%.2f s)", rows, now() - t0);
    check(select_one_works(a), "session usable after cancelling a streaming query");

    /* 5. pg_terminate_backend of a proxied session: FATAL relayed, the proxy carries on */
    PGconn *d = connect_port(dport, "apigres_50_direct");
    int tpid = backend_pid(b);
    check(PQsendQuery(b, "select pg_sleep(30)"), "session b sleeps 30 s");
    sleep_ms(200);
    char q[128];
    snprintf(q, sizeof q, "select pg_terminate_backend(%d)", tpid);
    r = PQexec(d, q);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0, "pg_terminate_backend from a direct session");
    PQclear(r);
    r = wait_result(b, 5.0);
    check(r && PQresultStatus(r) == PGRES_FATAL_ERROR && strcmp(sqlstate(r), "57P01") == 0,
          "terminated session gets FATAL 57P01 (got %s)", sqlstate(r));
    PQclear(r);
    r = PQexec(b, "select 1");
    check(PQresultStatus(r) != PGRES_TUPLES_OK && PQstatus(b) == CONNECTION_BAD, "terminated session's connection is closed");
    PQclear(r);
    PQfinish(b);
    b = connect_port(pport, "apigres_50_cancel_b2");
    check(select_one_works(b) && select_one_works(a), "proxy serves new and old sessions afterwards");

    PQfinish(a);
    PQfinish(b);
    PQfinish(d);
    return itest_failures ? 1 : 0;
}
