/*
 * itest.h: what every C integration test program shares: check() prints the
 * "ok - ..." / "not ok - ..." lines tests/run.sh counts, now() is a monotonic clock,
 * wait_socket() waits for a connection's socket to become readable.
 * Set itest_label to prefix every line with the program's name.
 */
#ifndef APIGRES_ITEST_H
#define APIGRES_ITEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/select.h>
#include <time.h>

#include <libpq-fe.h>

static int itest_failures;
static int itest_checks;
static const char *itest_label;

static int check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static int check(int cond, const char *fmt, ...)
{
    va_list ap;
    itest_checks++;
    printf("%s - ", cond ? "ok" : "not ok");
    if (itest_label)
        printf("%s: ", itest_label);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (!cond)
        itest_failures++;
    return cond;
}

static double now(void) __attribute__((unused));
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to `seconds` for c's socket to be readable: 1 readable, 0 timed out (or
 * interrupted), -1 error. */
static int wait_socket(PGconn *c, double seconds) __attribute__((unused));
static int wait_socket(PGconn *c, double seconds)
{
    int sock = PQsocket(c);
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(sock, &rfds);
    struct timeval tv = {(long)seconds, (long)((seconds - (long)seconds) * 1e6)};
    int rc = select(sock + 1, &rfds, NULL, NULL, &tv);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    return rc > 0;
}

/* The first column of sql's first row (static buffer), or "(error)" with the error
 * printed as a TAP comment. */
static const char *itest_value(PGconn *c, const char *sql) __attribute__((unused));
static const char *itest_value(PGconn *c, const char *sql)
{
    static char buf[1024];
    PGresult *r = PQexec(c, sql);
    snprintf(buf, sizeof buf, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "(error)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        printf("# %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return buf;
}

#endif
