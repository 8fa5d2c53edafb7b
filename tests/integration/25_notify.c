/*
 * 25_notify: asynchronous messages through apigres. LISTEN/NOTIFY between sessions (proxy to
 * proxy, direct to proxy, proxy to direct), notifications arriving while the listener is idle
 * (select() on PQsocket + PQconsumeInput + PQnotifies) and while it runs a query, many
 * notifications at once, and NoticeResponse delivery to a notice processor and a notice
 * receiver with all their fields, compared with the same notices received directly.
 *
 *   25_notify PROXY_CONNINFO DIRECT_CONNINFO
 *
 * Prints ok / not ok lines; exits 1 if any check failed, 2 if it could not connect.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include <libpq-fe.h>

#include "tests/integration/itest.h"




static PGconn *connect_or_die(const char *ci, const char *what)
{
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("not ok - connect %s: %s\n", what, PQerrorMessage(c));
        exit(2);
    }
    return c;
}

/* Runs a command that must succeed; returns the first value of the first row (static). */
static const char *run(PGconn *c, const char *q)
{
    static char first[256];
    PGresult *r = PQexec(c, q);
    ExecStatusType st = PQresultStatus(r);
    first[0] = '\0';
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        check(0, "%s: %s", q, PQresultErrorMessage(r));
    else if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
        snprintf(first, sizeof first, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return first;
}

static int backend_pid(PGconn *c)
{
    return atoi(run(c, "select pg_backend_pid()"));
}

/* Waits up to `secs` for a notification on an idle connection. */
static PGnotify *wait_notify(PGconn *c, double secs)
{
    double end = now() + secs;
    for (;;) {
        if (!PQconsumeInput(c))
            return NULL;
        PGnotify *n = PQnotifies(c);
        if (n)
            return n;
        double left = end - now();
        if (left <= 0)
            return NULL;
        if (wait_socket(c, left) < 0)
            return NULL;
    }
}

static int expect_notify(PGconn *c, const char *what, const char *chan, const char *payload, int pid)
{
    double t0 = now();
    PGnotify *n = wait_notify(c, 5.0);
    int good = check(n != NULL, "%s: notification received within 5 s", what);
    if (n) {
        good &= check(strcmp(n->relname, chan) == 0, "%s: channel '%s' (got '%s')", what, chan, n->relname);
        good &= check(strcmp(n->extra, payload) == 0, "%s: payload '%.40s' (got '%.40s', %zu bytes)", what, payload,
                      n->extra, strlen(n->extra));
        good &= check(n->be_pid == pid, "%s: sender PID is the notifying backend's (%d, got %d)", what, pid, n->be_pid);
        printf("# %s: %.1f ms\n", what, (now() - t0) * 1000);
        PQfreemem(n);
    }
    return good;
}

/* ---- notices ---- */
#define MAXN 16
struct notices {
    int n;
    char text[MAXN][600];
};

static void processor(void *arg, const char *message)
{
    struct notices *ns = arg;
    if (ns->n < MAXN)
        snprintf(ns->text[ns->n], sizeof ns->text[0], "%s", message);
    ns->n++;
}

static const char *ef(const PGresult *r, int code)
{
    const char *v = PQresultErrorField(r, code);
    return v ? v : "-";
}

static void receiver(void *arg, const PGresult *r)
{
    struct notices *ns = arg;
    if (ns->n < MAXN)
        snprintf(ns->text[ns->n], sizeof ns->text[0],
                 "severity=%s/%s sqlstate=%s message=%s detail=%s hint=%s context=%s file=%s line=%s function=%s",
                 ef(r, PG_DIAG_SEVERITY), ef(r, PG_DIAG_SEVERITY_NONLOCALIZED), ef(r, PG_DIAG_SQLSTATE),
                 ef(r, PG_DIAG_MESSAGE_PRIMARY), ef(r, PG_DIAG_MESSAGE_DETAIL), ef(r, PG_DIAG_MESSAGE_HINT),
                 ef(r, PG_DIAG_CONTEXT), ef(r, PG_DIAG_SOURCE_FILE), ef(r, PG_DIAG_SOURCE_LINE),
                 ef(r, PG_DIAG_SOURCE_FUNCTION));
    ns->n++;
}

static const char *NOTICE_SQL =
    "do $$ begin "
    "raise notice 'hello %', 1; "
    "raise notice 'with fields' using detail = 'the detail', hint = 'the hint', errcode = '01P01'; "
    "raise warning 'a warning: %', 'ünïcødé 🐘'; "
    "end $$";

static void notices_on(PGconn *c, struct notices *proc, struct notices *recv)
{
    memset(proc, 0, sizeof *proc);
    memset(recv, 0, sizeof *recv);
    PQsetNoticeProcessor(c, processor, proc);
    run(c, NOTICE_SQL);
    run(c, "drop table if exists apigres_no_such_table");
    PQsetNoticeReceiver(c, receiver, recv);
    run(c, NOTICE_SQL);
    run(c, "drop table if exists apigres_no_such_table");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PROXY_CONNINFO DIRECT_CONNINFO\n", argv[0]);
        return 2;
    }
    PGconn *L = connect_or_die(argv[1], "listener via proxy");
    PGconn *N = connect_or_die(argv[1], "notifier via proxy");
    PGconn *D = connect_or_die(argv[2], "direct session");
    int lpid = backend_pid(L), npid = backend_pid(N), dpid = backend_pid(D);
    printf("# backend PIDs: listener %d (PQbackendPID %d), notifier %d (PQbackendPID %d), direct %d\n", lpid,
           PQbackendPID(L), npid, PQbackendPID(N), dpid);

    run(L, "listen apigres_n");
    run(L, "listen \"Other Chan\"");

    /* proxy -> proxy, listener idle */
    run(N, "notify apigres_n, 'from proxy'");
    expect_notify(L, "NOTIFY via proxy, LISTEN via proxy", "apigres_n", "from proxy", npid);

    /* direct -> proxy */
    run(D, "select pg_notify('apigres_n', 'from direct ünïcødé 🐘')");
    expect_notify(L, "NOTIFY direct, LISTEN via proxy", "apigres_n", "from direct ünïcødé 🐘", dpid);

    /* no payload, other channel */
    run(N, "notify \"Other Chan\"");
    expect_notify(L, "NOTIFY without payload on a quoted channel", "Other Chan", "", npid);

    /* own notification: arrives with the command's response. The PostgreSQL manual (NOTIFY)
     * tells clients to recognise their own notifications by comparing the notification's PID
     * with their own session's PID "available from libpq", i.e. PQbackendPID(). */
    run(L, "notify apigres_n, 'self'");
    PGnotify *self = PQnotifies(L);
    check(self && strcmp(self->extra, "self") == 0 && self->be_pid == lpid,
          "own NOTIFY is available right after the command completes");
    check(self && self->be_pid == PQbackendPID(L),
          "own NOTIFY recognisable as such: its PID equals PQbackendPID() (%d, PQbackendPID %d)",
          self ? self->be_pid : -1, PQbackendPID(L));
    if (self)
        PQfreemem(self);

    /* a notification sent while the listener runs a query */
    check(PQsendQuery(L, "select pg_sleep(0.3)"), "listener starts a query");
    run(N, "notify apigres_n, 'during query'");
    PGresult *r;
    int qok = 0;
    while ((r = PQgetResult(L))) {
        qok |= PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    check(qok, "listener's query completes");
    expect_notify(L, "NOTIFY while the listener was busy", "apigres_n", "during query", npid);

    /* a maximum-size payload (7999 bytes) */
    char *big = malloc(8000), *q = malloc(8100);
    for (int i = 0; i < 7999; i++)
        big[i] = (char)('a' + i % 26);
    big[7999] = '\0';
    snprintf(q, 8100, "notify apigres_n, '%s'", big);
    run(N, q);
    expect_notify(L, "7999-byte payload", "apigres_n", big, npid);
    free(q);

    /* 1000 notifications in one transaction, delivered in order */
    run(N, "select count(pg_notify('apigres_n', 'bulk ' || g)) from generate_series(1, 1000) g");
    int inorder = 0;
    for (int i = 1; i <= 1000; i++) {
        PGnotify *n = wait_notify(L, 5.0);
        char want[32];
        snprintf(want, sizeof want, "bulk %d", i);
        if (!n)
            break;
        if (strcmp(n->extra, want) == 0 && n->be_pid == npid)
            inorder++;
        PQfreemem(n);
    }
    check(inorder == 1000, "1000 notifications from one transaction arrive in order (%d)", inorder);

    /* notifications of a rolled-back transaction are never sent; UNLISTEN stops delivery.
     * "Other Chan" is the marker that everything before it was processed. */
    run(N, "begin; notify apigres_n, 'rolled back'; rollback");
    run(L, "unlisten apigres_n");
    run(N, "notify apigres_n, 'after unlisten'");
    run(N, "notify \"Other Chan\", 'marker'");
    PGnotify *m = wait_notify(L, 5.0);
    check(m && strcmp(m->relname, "Other Chan") == 0 && strcmp(m->extra, "marker") == 0,
          "after UNLISTEN and a rollback only the marker arrives (got %s %s)", m ? m->relname : "nothing",
          m ? m->extra : "");
    if (m)
        PQfreemem(m);
    m = PQnotifies(L);
    check(m == NULL, "nothing else queued");
    if (m)
        PQfreemem(m);

    /* proxy -> direct */
    run(D, "listen apigres_d");
    run(N, "notify apigres_d, 'to a direct listener'");
    expect_notify(D, "NOTIFY via proxy, LISTEN direct", "apigres_d", "to a direct listener", npid);

    /* a listener that is in a transaction gets the notification only after it ends */
    run(L, "listen apigres_n");
    run(L, "begin");
    run(N, "notify apigres_n, 'after commit'");
    m = wait_notify(L, 0.2);
    check(m == NULL, "no notification while the listener is in a transaction");
    if (m)
        PQfreemem(m);
    run(L, "commit");
    /* may arrive with COMMIT's response or right after */
    m = PQnotifies(L);
    if (!m)
        m = wait_notify(L, 5.0);
    check(m && strcmp(m->extra, "after commit") == 0, "notification delivered after the listener's COMMIT");
    if (m)
        PQfreemem(m);

    /* notices: the same messages and fields through the proxy as directly */
    struct notices pp, pr, dp, dr;
    notices_on(N, &pp, &pr);
    notices_on(D, &dp, &dr);
    check(pp.n == 4 && pr.n == 4, "4 notices each to the processor and the receiver via proxy (%d, %d)", pp.n, pr.n);
    check(pp.n == 4 && strcmp(pp.text[0], "NOTICE:  hello 1\n") == 0, "notice processor text 'NOTICE:  hello 1\\n'");
    check(pp.n == 4 && strcmp(pp.text[2], "WARNING:  a warning: ünïcødé 🐘\n") == 0, "warning text via processor");
    check(pr.n == 4 && strstr(pr.text[1], "sqlstate=01P01 message=with fields detail=the detail hint=the hint") != NULL,
          "notice fields: %s", pr.n > 1 ? pr.text[1] : "none");
    check(pr.n == 4 && strstr(pr.text[3], "sqlstate=00000 message=table \"apigres_no_such_table\" does not exist, skipping") != NULL,
          "server-generated notice fields");
    int same = pp.n == dp.n && pr.n == dr.n;
    for (int i = 0; same && i < pp.n && i < MAXN; i++)
        same = strcmp(pp.text[i], dp.text[i]) == 0 && strcmp(pr.text[i], dr.text[i]) == 0;
    check(same, "notices via proxy are identical to notices received directly");
    if (!same)
        for (int i = 0; i < pr.n && i < MAXN; i++)
            printf("#   proxy: %s\n#   direct: %s\n", pr.text[i], i < dr.n ? dr.text[i] : "");

    run(L, "unlisten *");
    run(D, "unlisten *");
    check(PQstatus(L) == CONNECTION_OK && PQstatus(N) == CONNECTION_OK, "connections still OK");
    PQfinish(L);
    PQfinish(N);
    PQfinish(D);
    free(big);
    return itest_failures ? 1 : 0;
}
