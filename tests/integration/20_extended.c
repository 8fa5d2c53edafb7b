/*
 * 20_extended: exercises the extended query protocol through libpq and writes a
 * deterministic transcript of everything it observes (statuses, command tags, field
 * descriptions, values, error fields, parameter statuses, notices), so that a run through
 * apigres can be compared byte for byte with a run against PostgreSQL directly.
 *
 *   20_extended CONNINFO TRANSCRIPT_FILE [LABEL]
 *
 * It also asserts the expected values itself: prints "ok - LABEL: ..." / "not ok - ..."
 * lines on stdout and exits 1 when any check failed (2 on a usage or connection error).
 * Nothing that legitimately differs between two sessions (backend PID, object OIDs of
 * session-created objects, times) is written to the transcript.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include <libpq-fe.h>

#include "tests/integration/itest.h"
#include <libpq/libpq-fs.h>
#include <openssl/evp.h>

#define INT4OID 23
#define INT8OID 20
#define TEXTOID 25
#define BYTEAOID 17
#define NUMERICOID 1700
#define TIMESTAMPTZOID 1184
#define BOOLOID 16
#define FLOAT8OID 701

static FILE *tr;
static PGconn *conn;

static void T(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void T(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(tr, fmt, ap);
    va_end(ap);
    fputc('\n', tr);
}


static void md5_hex(const void *data, size_t len, char out[33])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    for (unsigned int i = 0; i < n && i < 16; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    out[32] = '\0';
}

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

static uint64_t be64(const char *p)
{
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16); p[2] = (char)(v >> 8); p[3] = (char)v;
}

static void put64(char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* A printable rendering of a value: short text escaped, binary as hex, long as length+md5. */
static void render(const char *v, int len, int binary, char *out, size_t outsz)
{
    if (len > 96) {
        char m[33];
        md5_hex(v, (size_t)len, m);
        snprintf(out, outsz, "<%d bytes md5=%s>", len, m);
        return;
    }
    size_t o = 0;
    if (binary) {
        o += (size_t)snprintf(out + o, outsz - o, "0x");
        for (int i = 0; i < len && o + 3 < outsz; i++)
            o += (size_t)snprintf(out + o, outsz - o, "%02x", (unsigned char)v[i]);
    } else {
        out[o++] = '\'';
        for (int i = 0; i < len && o + 6 < outsz; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c >= 0x20 && c < 0x7f && c != '\\')
                out[o++] = (char)c;
            else
                o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        }
        out[o++] = '\'';
        out[o] = '\0';
    }
}

static const char *txstatus(PGconn *c)
{
    switch (PQtransactionStatus(c)) {
    case PQTRANS_IDLE: return "IDLE";
    case PQTRANS_ACTIVE: return "ACTIVE";
    case PQTRANS_INTRANS: return "INTRANS";
    case PQTRANS_INERROR: return "INERROR";
    default: return "UNKNOWN";
    }
}

static const char *ef(const PGresult *r, int code)
{
    const char *v = PQresultErrorField(r, code);
    return v ? v : "-";
}

/* Writes everything observable about a result to the transcript. */
static void dump(const char *what, const PGresult *r)
{
    char buf[400];
    if (!r) {
        T("[%s] NULL result", what);
        return;
    }
    ExecStatusType st = PQresultStatus(r);
    T("[%s] status=%s tag='%s' tuples='%s' nfields=%d ntuples=%d nparams=%d binary=%d",
      what, PQresStatus(st), PQcmdStatus((PGresult *)r), PQcmdTuples((PGresult *)r),
      PQnfields(r), PQntuples(r), PQnparams(r), PQbinaryTuples(r));
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
        T("  error severity=%s sqlstate=%s message=%s", ef(r, PG_DIAG_SEVERITY_NONLOCALIZED),
          ef(r, PG_DIAG_SQLSTATE), ef(r, PG_DIAG_MESSAGE_PRIMARY));
        T("  detail=%s hint=%s position=%s context=%s function=%s", ef(r, PG_DIAG_MESSAGE_DETAIL),
          ef(r, PG_DIAG_MESSAGE_HINT), ef(r, PG_DIAG_STATEMENT_POSITION), ef(r, PG_DIAG_CONTEXT),
          ef(r, PG_DIAG_SOURCE_FUNCTION));
    }
    for (int i = 0; i < PQnparams(r); i++)
        T("  param %d type=%u", i + 1, PQparamtype(r, i));
    for (int f = 0; f < PQnfields(r); f++)
        T("  field %d name='%s' type=%u mod=%d size=%d format=%d tablecol=%d fromtable=%d", f,
          PQfname(r, f) ? PQfname(r, f) : "(none)", PQftype(r, f), PQfmod(r, f), PQfsize(r, f), PQfformat(r, f),
          PQftablecol(r, f), PQftable(r, f) != InvalidOid);
    int shown = PQntuples(r) < 20 ? PQntuples(r) : 20;
    for (int t = 0; t < shown; t++) {
        char line[2000];
        size_t o = (size_t)snprintf(line, sizeof line, "  row %d:", t);
        for (int f = 0; f < PQnfields(r); f++) {
            if (PQgetisnull(r, t, f))
                snprintf(buf, sizeof buf, "NULL");
            else
                render(PQgetvalue(r, t, f), PQgetlength(r, t, f), PQfformat(r, f) == 1, buf, sizeof buf);
            o += (size_t)snprintf(line + o, sizeof line - o, " %s", buf);
            if (o >= sizeof line)
                break;
        }
        T("%s", line);
    }
    if (PQntuples(r) > shown) {
        /* digest of all remaining rows, so big results are compared too */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char hex[33];
        EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
        for (int t = shown; t < PQntuples(r); t++)
            for (int f = 0; f < PQnfields(r); f++) {
                int len = PQgetisnull(r, t, f) ? -1 : PQgetlength(r, t, f);
                EVP_DigestUpdate(ctx, &len, sizeof len);
                if (len > 0)
                    EVP_DigestUpdate(ctx, PQgetvalue(r, t, f), (size_t)len);
            }
        EVP_DigestFinal_ex(ctx, d, &n);
        EVP_MD_CTX_free(ctx);
        for (unsigned int i = 0; i < 16; i++)
            sprintf(hex + 2 * i, "%02x", d[i]);
        T("  ... %d more rows, md5=%s", PQntuples(r) - shown, hex);
    }
}

/* Runs a result through dump() and checks its status; returns it (caller clears). */
static PGresult *expect(const char *what, PGresult *r, ExecStatusType want)
{
    dump(what, r);
    if (!check(r && PQresultStatus(r) == want, "%s: status %s", what, PQresStatus(want)))
        printf("#   got %s %s\n", r ? PQresStatus(PQresultStatus(r)) : "no result",
               r ? ef(r, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(conn));
    return r;
}

static void expect_clear(const char *what, PGresult *r, ExecStatusType want)
{
    PQclear(expect(what, r, want));
}

static void expect_error(const char *what, PGresult *r, const char *sqlstate)
{
    dump(what, r);
    const char *got = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    check(r && PQresultStatus(r) == PGRES_FATAL_ERROR && got && strcmp(got, sqlstate) == 0,
          "%s: fails with SQLSTATE %s (got %s)", what, sqlstate, got ? got : "none");
    PQclear(r);
}

static void expect_value(const char *what, PGresult *r, const char *want)
{
    dump(what, r);
    int good = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
    check(good && strcmp(PQgetvalue(r, 0, 0), want) == 0, "%s = '%s' (got '%s')", what, want,
          good ? PQgetvalue(r, 0, 0) : "?");
    PQclear(r);
}

static PGresult *sql(const char *q)
{
    return PQexec(conn, q);
}

static void run_ok(const char *q)
{
    PGresult *r = sql(q);
    ExecStatusType s = PQresultStatus(r);
    expect_clear(q, r, s == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
}

static void check_tx(const char *what, const char *want)
{
    T("[%s] transaction status %s", what, txstatus(conn));
    check(strcmp(txstatus(conn), want) == 0, "%s: transaction status %s (got %s)", what, want, txstatus(conn));
}

/* ---- notices ---- */
static void notice_receiver(void *arg, const PGresult *r)
{
    T("  NOTICE severity=%s sqlstate=%s message=%s context=%s", ef(r, PG_DIAG_SEVERITY_NONLOCALIZED),
      ef(r, PG_DIAG_SQLSTATE), ef(r, PG_DIAG_MESSAGE_PRIMARY), ef(r, PG_DIAG_CONTEXT));
    (*(int *)arg)++;
}

/* ---- sections ---- */

static void section_connection(void)
{
    static const char *params[] = {"server_version", "server_encoding", "client_encoding",
                                   "DateStyle", "IntervalStyle", "integer_datetimes",
                                   "standard_conforming_strings", "TimeZone", "is_superuser",
                                   "session_authorization", "application_name",
                                   "default_transaction_read_only", "in_hot_standby", NULL};
    T("== connection");
    T("protocol=%d server_version=%d", PQprotocolVersion(conn), PQserverVersion(conn));
    check(PQprotocolVersion(conn) == 3, "protocol version 3");
    for (int i = 0; params[i]; i++) {
        const char *v = PQparameterStatus(conn, params[i]);
        T("parameter %s=%s", params[i], v ? v : "(none)");
        check(v != NULL, "ParameterStatus %s received at startup", params[i]);
    }
    /* apigres makes its own secret key but hands out the backend's real PID */
    PGresult *r = sql("select pg_backend_pid()");
    int real = (PQresultStatus(r) == PGRES_TUPLES_OK) ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    check(PQbackendPID(conn) == real, "BackendKeyData PID is the backend's pg_backend_pid()");
    check_tx("after connect", "IDLE");

    /* ParameterStatus sent in answer to SET, in the simple and the extended protocol */
    expect_clear("set application_name (simple)", sql("set application_name = 'apigres simple'"), PGRES_COMMAND_OK);
    T("application_name now %s", PQparameterStatus(conn, "application_name"));
    check(strcmp(PQparameterStatus(conn, "application_name"), "apigres simple") == 0,
          "ParameterStatus application_name after SET (simple)");
    expect_clear("set application_name (extended)",
                 PQexecParams(conn, "set application_name = 'apigres extended'", 0, NULL, NULL, NULL, NULL, 0),
                 PGRES_COMMAND_OK);
    check(strcmp(PQparameterStatus(conn, "application_name"), "apigres extended") == 0,
          "ParameterStatus application_name after SET (extended)");
    expect_clear("set_config in a query",
                 PQexecParams(conn, "select set_config('application_name', $1, false)", 1, NULL,
                              (const char *const[]){"via set_config"}, NULL, NULL, 0), PGRES_TUPLES_OK);
    check(strcmp(PQparameterStatus(conn, "application_name"), "via set_config") == 0,
          "ParameterStatus application_name after set_config()");
    expect_clear("set TimeZone", sql("set TimeZone = 'UTC'"), PGRES_COMMAND_OK);
    check(strcmp(PQparameterStatus(conn, "TimeZone"), "UTC") == 0, "ParameterStatus TimeZone after SET");
    expect_clear("set DateStyle", sql("set DateStyle = 'ISO, YMD'"), PGRES_COMMAND_OK);
    check(strcmp(PQparameterStatus(conn, "DateStyle"), "ISO, YMD") == 0, "ParameterStatus DateStyle after SET");
    expect_clear("begin; set local", sql("begin; set local IntervalStyle = 'iso_8601'"), PGRES_COMMAND_OK);
    check(strcmp(PQparameterStatus(conn, "IntervalStyle"), "iso_8601") == 0, "ParameterStatus IntervalStyle after SET LOCAL");
    expect_clear("rollback", sql("rollback"), PGRES_COMMAND_OK);
    check(strcmp(PQparameterStatus(conn, "IntervalStyle"), "postgres") == 0,
          "ParameterStatus IntervalStyle reverted by ROLLBACK (got %s)", PQparameterStatus(conn, "IntervalStyle"));
}

static void section_empty(void)
{
    T("== empty queries");
    expect_clear("PQexec empty", sql(""), PGRES_EMPTY_QUERY);
    expect_clear("PQexec comment only", sql("-- nothing"), PGRES_EMPTY_QUERY);
    expect_clear("PQexecParams empty", PQexecParams(conn, "", 0, NULL, NULL, NULL, NULL, 0), PGRES_EMPTY_QUERY);
    expect_clear("PQprepare empty", PQprepare(conn, "empty_stmt", "  ", 0, NULL), PGRES_COMMAND_OK);
    expect_clear("describe empty", PQdescribePrepared(conn, "empty_stmt"), PGRES_COMMAND_OK);
    expect_clear("execute empty", PQexecPrepared(conn, "empty_stmt", 0, NULL, NULL, NULL, 0), PGRES_EMPTY_QUERY);
}

static void section_prepared(void)
{
    T("== prepared statements");
    /* unnamed statement */
    expect_clear("prepare unnamed", PQprepare(conn, "", "select $1::int4 + 1 as n", 0, NULL), PGRES_COMMAND_OK);
    expect_value("execute unnamed", PQexecPrepared(conn, "", 1, (const char *const[]){"41"}, NULL, NULL, 0), "42");
    expect_clear("describe unnamed", PQdescribePrepared(conn, ""), PGRES_COMMAND_OK);
    /* replacing the unnamed statement is allowed */
    expect_clear("prepare unnamed again", PQprepare(conn, "", "select upper($1) as u", 1, (const Oid[]){TEXTOID}),
                 PGRES_COMMAND_OK);
    expect_value("execute unnamed again", PQexecPrepared(conn, "", 1, (const char *const[]){"abc"}, NULL, NULL, 0), "ABC");

    /* a named statement with many types, typed parameters */
    const Oid types[8] = {INT4OID, INT8OID, TEXTOID, BYTEAOID, NUMERICOID, TIMESTAMPTZOID, BOOLOID, FLOAT8OID};
    expect_clear("prepare s_types",
                 PQprepare(conn, "s_types",
                           "select $1 as i4, $2 as i8, $3 as t, $4 as b, $5 as n, $6 as ts, $7 as bo, $8 as f8, "
                           "$1::int8 * $2 as product, null::int as nothing",
                           8, types),
                 PGRES_COMMAND_OK);
    PGresult *d = PQdescribePrepared(conn, "s_types");
    expect("describe s_types", d, PGRES_COMMAND_OK);
    check(PQnparams(d) == 8 && PQnfields(d) == 10, "describe s_types: 8 params, 10 fields");
    int types_ok = 1;
    for (int i = 0; i < 8 && PQnparams(d) == 8; i++)
        types_ok &= PQparamtype(d, i) == types[i];
    check(types_ok, "describe s_types: parameter types as prepared");
    check(PQnfields(d) == 10 && PQftype(d, 0) == INT4OID && PQftype(d, 5) == TIMESTAMPTZOID &&
              strcmp(PQfname(d, 8), "product") == 0 && PQftype(d, 8) == INT8OID,
          "describe s_types: field names and types");
    PQclear(d);

    /* text parameters, text results */
    const char *tv[8] = {"-123", "9000000000", "tëxt ✓", "\\x00ff41", "12345.678", "2024-02-29 12:34:56.789+00", "t", "1.5"};
    PGresult *r = PQexecPrepared(conn, "s_types", 8, tv, NULL, NULL, 0);
    expect("s_types text/text", r, PGRES_TUPLES_OK);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        check(strcmp(PQgetvalue(r, 0, 0), "-123") == 0 && strcmp(PQgetvalue(r, 0, 1), "9000000000") == 0 &&
                  strcmp(PQgetvalue(r, 0, 2), "tëxt ✓") == 0 && strcmp(PQgetvalue(r, 0, 3), "\\x00ff41") == 0 &&
                  strcmp(PQgetvalue(r, 0, 4), "12345.678") == 0 &&
                  strcmp(PQgetvalue(r, 0, 5), "2024-02-29 12:34:56.789+00") == 0 &&
                  strcmp(PQgetvalue(r, 0, 6), "t") == 0 && strcmp(PQgetvalue(r, 0, 7), "1.5") == 0 &&
                  strcmp(PQgetvalue(r, 0, 8), "-1107000000000") == 0 && PQgetisnull(r, 0, 9),
              "s_types text/text: values");
    }
    PQclear(r);

    /* binary parameters where meaningful, binary results */
    char i4[4], i8[8], f8[8];
    put32(i4, (uint32_t)-123);
    put64(i8, 9000000000ULL);
    double dv = 1.5;
    uint64_t dbits;
    memcpy(&dbits, &dv, 8);
    put64(f8, dbits);
    const char bytes[3] = {0x00, (char)0xff, 0x41};
    const char *bv[8] = {i4, i8, "tëxt ✓", bytes, "12345.678", "2024-02-29 12:34:56.789+00", "\x01", f8};
    const int bl[8] = {4, 8, (int)strlen("tëxt ✓"), 3, 0, 0, 1, 8};
    const int bf[8] = {1, 1, 1, 1, 0, 0, 1, 1};
    r = PQexecPrepared(conn, "s_types", 8, bv, bl, bf, 1);
    expect("s_types binary/binary", r, PGRES_TUPLES_OK);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        check(PQfformat(r, 0) == 1 && PQgetlength(r, 0, 0) == 4 && (int32_t)be32(PQgetvalue(r, 0, 0)) == -123,
              "binary int4 result -123");
        check(PQgetlength(r, 0, 1) == 8 && be64(PQgetvalue(r, 0, 1)) == 9000000000ULL, "binary int8 result");
        check(PQgetlength(r, 0, 2) == (int)strlen("tëxt ✓") && memcmp(PQgetvalue(r, 0, 2), "tëxt ✓", 9) == 0,
              "binary text result is the UTF-8 bytes");
        check(PQgetlength(r, 0, 3) == 3 && memcmp(PQgetvalue(r, 0, 3), bytes, 3) == 0, "binary bytea result");
        /* numeric 12345.678: ndigits=3 weight=1 sign=0 dscale=3 digits 1 2345 6780 */
        static const unsigned char num[] = {0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c};
        check(PQgetlength(r, 0, 4) == (int)sizeof num && memcmp(PQgetvalue(r, 0, 4), num, sizeof num) == 0,
              "binary numeric result 12345.678");
        /* microseconds since 2000-01-01 00:00:00 UTC */
        check(PQgetlength(r, 0, 5) == 8 && be64(PQgetvalue(r, 0, 5)) == 762525296789000ULL,
              "binary timestamptz result");
        check(PQgetlength(r, 0, 6) == 1 && PQgetvalue(r, 0, 6)[0] == 1, "binary bool result");
        uint64_t gb = PQgetlength(r, 0, 7) == 8 ? be64(PQgetvalue(r, 0, 7)) : 0;
        double g;
        memcpy(&g, &gb, 8);
        check(g == 1.5, "binary float8 result");
        check(PQgetlength(r, 0, 8) == 8 && (int64_t)be64(PQgetvalue(r, 0, 8)) == -1107000000000LL,
              "binary int8 product");
        check(PQgetisnull(r, 0, 9), "binary NULL result");
    }
    PQclear(r);

    /* PQexecParams with untyped parameters, NULL and empty strings */
    r = PQexecParams(conn, "select $1::text is null as isnull, length($2::text) as len, $3 || 'x' as cat, $4::int + 1 as plus",
                     4, NULL, (const char *const[]){NULL, "", "abc", "7"}, NULL, NULL, 0);
    expect("execparams null/empty/untyped", r, PGRES_TUPLES_OK);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0 &&
              strcmp(PQgetvalue(r, 0, 1), "0") == 0 && strcmp(PQgetvalue(r, 0, 2), "abcx") == 0 &&
              strcmp(PQgetvalue(r, 0, 3), "8") == 0,
          "execparams null/empty/untyped: values");
    PQclear(r);

    /* describe a statement whose parameter types the server infers */
    expect_clear("prepare s_infer", PQprepare(conn, "s_infer", "select $1 + 1 as a, $2 || 'x' as b, $3 = now() as c", 0, NULL),
                 PGRES_COMMAND_OK);
    d = PQdescribePrepared(conn, "s_infer");
    expect("describe s_infer", d, PGRES_COMMAND_OK);
    check(PQnparams(d) == 3 && PQparamtype(d, 0) == INT4OID && PQparamtype(d, 1) == TEXTOID &&
              PQparamtype(d, 2) == TIMESTAMPTZOID,
          "describe s_infer: inferred parameter types int4, text, timestamptz");
    PQclear(d);
    expect_error("prepare s_insert before its table exists",
                 PQprepare(conn, "s_insert", "insert into ext_t values ($1, $2)", 0, NULL), "42P01");
    expect_clear("create ext_t", sql("create temp table ext_t (id int primary key, v text)"), PGRES_COMMAND_OK);
    expect_clear("prepare s_insert", PQprepare(conn, "s_insert", "insert into ext_t values ($1, $2)", 0, NULL), PGRES_COMMAND_OK);
    d = PQdescribePrepared(conn, "s_insert");
    expect("describe s_insert", d, PGRES_COMMAND_OK);
    check(PQnparams(d) == 2 && PQnfields(d) == 0, "describe s_insert: 2 params, no fields");
    PQclear(d);
    r = PQexecPrepared(conn, "s_insert", 2, (const char *const[]){"1", "one"}, NULL, NULL, 0);
    expect("execute s_insert", r, PGRES_COMMAND_OK);
    check(strcmp(PQcmdStatus(r), "INSERT 0 1") == 0 && strcmp(PQcmdTuples(r), "1") == 0, "command tag INSERT 0 1");
    PQclear(r);
    r = PQexecParams(conn, "update ext_t set v = v || $1 where id >= $2 returning *", 2, NULL,
                     (const char *const[]){"!", "0"}, NULL, NULL, 0);
    expect("update returning", r, PGRES_TUPLES_OK);
    check(strcmp(PQcmdStatus(r), "UPDATE 1") == 0 && PQntuples(r) == 1, "command tag UPDATE 1 with RETURNING row");
    PQclear(r);

    /* re-executing a named statement many times */
    expect_clear("prepare s_loop", PQprepare(conn, "s_loop", "select $1::int8 * 2", 0, NULL), PGRES_COMMAND_OK);
    long long sum = 0;
    int bad = 0;
    for (int i = 1; i <= 2000; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        r = PQexecPrepared(conn, "s_loop", 1, (const char *const[]){v}, NULL, NULL, i % 2);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            bad++;
        else
            sum += (i % 2) ? (long long)be64(PQgetvalue(r, 0, 0)) : atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    T("s_loop: 2000 executions, failures=%d sum=%lld", bad, sum);
    check(bad == 0 && sum == 2LL * 2000 * 2001 / 2, "2000 executions of a named statement (sum %lld)", sum);

    /* a very long statement text (1 MB literal) */
    size_t n = 1 << 20;
    char *q = malloc(n + 64);
    strcpy(q, "select length('");
    memset(q + strlen(q), 'y', n);
    strcpy(q + 15 + n, "') as len");
    expect_value("1 MB statement text", PQexecParams(conn, q, 0, NULL, NULL, NULL, NULL, 0), "1048576");
    free(q);
}

static void section_portals(void)
{
    T("== portals");
    run_ok("begin");
    run_ok("declare cur cursor for select aid, bid, abalance, filler from pgbench_accounts where aid <= 5 order by aid");
    PGresult *d = PQdescribePortal(conn, "cur");
    expect("describe portal cur", d, PGRES_COMMAND_OK);
    check(PQnfields(d) == 4 && strcmp(PQfname(d, 0), "aid") == 0 && PQftype(d, 0) == INT4OID &&
              PQftablecol(d, 0) == 1 && PQftable(d, 0) != InvalidOid,
          "describe portal cur: fields with table column info");
    PQclear(d);
    PGresult *r = sql("fetch 3 from cur");
    expect("fetch 3", r, PGRES_TUPLES_OK);
    check(PQntuples(r) == 3 && strcmp(PQgetvalue(r, 2, 0), "3") == 0 && strcmp(PQcmdStatus(r), "FETCH 3") == 0,
          "fetch 3 rows from cursor");
    PQclear(r);
    r = PQexecParams(conn, "fetch all from cur", 0, NULL, NULL, NULL, NULL, 1);
    expect("fetch all (extended, binary)", r, PGRES_TUPLES_OK);
    check(PQntuples(r) == 2 && be32(PQgetvalue(r, 1, 0)) == 5, "fetch remaining rows in binary");
    PQclear(r);
    /* the unnamed portal of the last Bind lives until the end of the transaction */
    expect_clear("execparams in transaction", PQexecParams(conn, "select $1::int as x, 'y' as y", 1, NULL,
                 (const char *const[]){"5"}, NULL, NULL, 0), PGRES_TUPLES_OK);
    d = PQdescribePortal(conn, "");
    expect("describe unnamed portal", d, PGRES_COMMAND_OK);
    check(PQnfields(d) == 2 && strcmp(PQfname(d, 1), "y") == 0, "describe unnamed portal: 2 fields");
    PQclear(d);
    expect_error("describe missing portal", PQdescribePortal(conn, "no_such_portal"), "34000");
    check_tx("after failed describe", "INERROR");
    run_ok("rollback");
    check_tx("after rollback", "IDLE");
}

static void section_errors(void)
{
    T("== errors and recovery");
    expect_error("parse error", PQprepare(conn, "bad", "selec 1", 0, NULL), "42601");
    expect_value("recovered after parse error", PQexecParams(conn, "select 'alive'", 0, NULL, NULL, NULL, NULL, 0), "alive");
    expect_error("execute missing statement", PQexecPrepared(conn, "bad", 0, NULL, NULL, NULL, 0), "26000");
    expect_error("describe missing statement", PQdescribePrepared(conn, "no_such_stmt"), "26000");
    expect_error("duplicate statement name", PQprepare(conn, "s_loop", "select 1", 0, NULL), "42P05");
    expect_error("bind: invalid text int4", PQexecPrepared(conn, "s_types", 8,
                 (const char *const[]){"abc", "1", "t", "b", "1", "2024-01-01", "t", "1"}, NULL, NULL, 0), "22P02");
    char short4[3] = {0, 0, 1};
    expect_error("bind: binary int4 of 3 bytes", PQexecParams(conn, "select $1::int4", 1, (const Oid[]){INT4OID},
                 (const char *const[]){short4}, (const int[]){3}, (const int[]){1}, 0), "08P01");
    char long4[5] = {0, 0, 0, 1, 2};
    expect_error("bind: binary int4 of 5 bytes", PQexecParams(conn, "select $1::int4", 1, (const Oid[]){INT4OID},
                 (const char *const[]){long4}, (const int[]){5}, (const int[]){1}, 0), "22P03");
    expect_error("bind: wrong parameter count", PQexecPrepared(conn, "s_types", 1,
                 (const char *const[]){"1"}, NULL, NULL, 0), "08P01");
    expect_error("bind: invalid UTF-8 in text parameter", PQexecParams(conn, "select $1::text", 1, NULL,
                 (const char *const[]){"\xff\xfe"}, NULL, NULL, 0), "22021");
    expect_error("execute: division by zero", PQexecParams(conn, "select 1 / $1::int", 1, NULL,
                 (const char *const[]){"0"}, NULL, NULL, 0), "22012");
    expect_error("execute: error after some rows", PQexecParams(conn,
                 "select 10 / (3 - g) from generate_series(1, 5) g", 0, NULL, NULL, NULL, NULL, 0), "22012");
    expect_error("multiple commands in a prepared statement", PQexecParams(conn, "select 1; select 2", 0, NULL,
                 NULL, NULL, NULL, 0), "42601");
    expect_error("constraint violation", PQexecPrepared(conn, "s_insert", 2,
                 (const char *const[]){"1", "dup"}, NULL, NULL, 0), "23505");
    check_tx("after errors outside a transaction", "IDLE");
    expect_value("recovered after execute errors", PQexecPrepared(conn, "s_loop", 1, (const char *const[]){"21"}, NULL, NULL, 0), "42");

    /* an error inside an explicit transaction: aborted until ROLLBACK */
    run_ok("begin");
    expect_clear("insert in transaction", PQexecPrepared(conn, "s_insert", 2, (const char *const[]){"2", "two"}, NULL, NULL, 0),
                 PGRES_COMMAND_OK);
    expect_error("error in transaction", PQexecParams(conn, "select $1::int", 1, NULL, (const char *const[]){"x"}, NULL, NULL, 0), "22P02");
    check_tx("after error in transaction", "INERROR");
    expect_error("statement in aborted transaction", PQexecPrepared(conn, "s_loop", 1, (const char *const[]){"1"}, NULL, NULL, 0), "25P02");
    expect_clear("rollback", sql("rollback"), PGRES_COMMAND_OK);
    check_tx("after rollback", "IDLE");
    expect_value("insert was rolled back", PQexecParams(conn, "select count(*) from ext_t", 0, NULL, NULL, NULL, NULL, 0), "1");

    /* savepoint recovery through the extended protocol */
    run_ok("begin");
    expect_clear("savepoint", PQexecParams(conn, "savepoint sp", 0, NULL, NULL, NULL, NULL, 0), PGRES_COMMAND_OK);
    expect_error("error after savepoint", PQexecPrepared(conn, "s_insert", 2, (const char *const[]){"1", "dup"}, NULL, NULL, 0), "23505");
    expect_clear("rollback to savepoint", PQexecParams(conn, "rollback to savepoint sp", 0, NULL, NULL, NULL, NULL, 0), PGRES_COMMAND_OK);
    check_tx("after rollback to savepoint", "INTRANS");
    expect_clear("insert after savepoint", PQexecPrepared(conn, "s_insert", 2, (const char *const[]){"3", "three"}, NULL, NULL, 0),
                 PGRES_COMMAND_OK);
    run_ok("commit");
    expect_value("row after savepoint committed", PQexecParams(conn, "select string_agg(v, ',' order by id) from ext_t", 0, NULL, NULL, NULL, NULL, 0),
                 "one!,three");
    /* a FATAL-free but severe error: statement_timeout */
    run_ok("set statement_timeout = '100ms'");
    expect_error("statement timeout", PQexecParams(conn, "select pg_sleep($1)", 1, NULL, (const char *const[]){"5"}, NULL, NULL, 0), "57014");
    run_ok("reset statement_timeout");
}

static void section_notices(void)
{
    T("== notices in the extended protocol");
    int count = 0;
    PQnoticeReceiver old = PQsetNoticeReceiver(conn, notice_receiver, &count);
    /* not a pg_temp function: the temp schema's name would show in the CONTEXT field */
    run_ok("create or replace function apigres_ext_noisy(i int) returns int language plpgsql as "
           "$$ begin raise notice 'noisy %', i; if i > 2 then raise warning 'big %', i; end if; return i; end $$");
    expect_clear("notices per row", PQexecParams(conn, "select apigres_ext_noisy(g) from generate_series(1, $1::int) g", 1, NULL,
                 (const char *const[]){"3"}, NULL, NULL, 0), PGRES_TUPLES_OK);
    check(count == 4, "4 notices (3 NOTICE, 1 WARNING) received (got %d)", count);
    count = 0;
    expect_clear("notice from DO", sql("do $$ begin raise notice 'from do' using detail = 'd', hint = 'h'; end $$"),
                 PGRES_COMMAND_OK);
    check(count == 1, "1 notice from a DO block (got %d)", count);
    PQsetNoticeReceiver(conn, old, NULL);
}

static void section_many_params(void)
{
    T("== many parameters");
    for (int round = 0; round < 2; round++) {
        int n = round == 0 ? 1000 : 65535;
        size_t cap = (size_t)n * 16 + 200;
        char *q = malloc(cap);
        size_t o = (size_t)snprintf(q, cap, "select array_length(array[");
        for (int i = 1; i <= n; i++)
            o += (size_t)snprintf(q + o, cap - o, "%s$%d", i > 1 ? "," : "", i);
        snprintf(q + o, cap - o, "], 1), ($1 + $%d)::int8, $%d", n, n);
        Oid *types = malloc(sizeof(Oid) * (size_t)n);
        const char **vals = malloc(sizeof(char *) * (size_t)n);
        int *lens = malloc(sizeof(int) * (size_t)n);
        int *fmts = malloc(sizeof(int) * (size_t)n);
        char *store = malloc((size_t)n * 12);
        for (int i = 0; i < n; i++) {
            types[i] = INT4OID;
            char *s = store + (size_t)i * 12;
            if (i % 2) { /* binary */
                put32(s, (uint32_t)(i + 1));
                lens[i] = 4;
                fmts[i] = 1;
            } else {
                lens[i] = snprintf(s, 12, "%d", i + 1);
                fmts[i] = 0;
            }
            vals[i] = s;
        }
        char what[64];
        snprintf(what, sizeof what, "%d parameters", n);
        PGresult *r = PQexecParams(conn, q, n, types, vals, lens, fmts, 0);
        expect(what, r, PGRES_TUPLES_OK);
        char want0[16], want1[16], want2[16];
        snprintf(want0, sizeof want0, "%d", n);
        snprintf(want1, sizeof want1, "%d", n + 1);
        snprintf(want2, sizeof want2, "%d", n);
        check(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), want0) == 0 &&
                  strcmp(PQgetvalue(r, 0, 1), want1) == 0 && strcmp(PQgetvalue(r, 0, 2), want2) == 0,
              "%s: values come back", what);
        PQclear(r);
        snprintf(what, sizeof what, "prepare %d parameters", n);
        expect_clear(what, PQprepare(conn, round == 0 ? "p1000" : "p65535", q, n, types), PGRES_COMMAND_OK);
        /* libpq (15.18) treats a ParameterDescription longer than 30000 bytes as lost
         * synchronization and drops the connection, directly as through the proxy: describe
         * only what libpq itself can read (7,496 parameters at most). */
        if (n > 7000) {
            free(q); free(types); free(vals); free(lens); free(fmts); free(store);
            continue;
        }
        r = PQdescribePrepared(conn, round == 0 ? "p1000" : "p65535");
        snprintf(what, sizeof what, "describe %d parameters", n);
        T("[%s] status=%s nparams=%d last type=%u", what, PQresStatus(PQresultStatus(r)), PQnparams(r),
          PQnparams(r) ? PQparamtype(r, PQnparams(r) - 1) : 0);
        check(PQresultStatus(r) == PGRES_COMMAND_OK && PQnparams(r) == n && PQparamtype(r, n - 1) == INT4OID,
              "%s: nparams %d", what, PQnparams(r));
        PQclear(r);
        free(q); free(types); free(vals); free(lens); free(fmts); free(store);
    }
}

static void section_big_bytea(void)
{
    T("== 10 MB bytea");
    size_t n = 10u << 20;
    unsigned char *buf = malloc(n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    char m[33];
    md5_hex(buf, n, m);
    T("local md5 %s", m);
    const char *vals[1] = {(const char *)buf};
    int lens[1] = {(int)n}, fmts[1] = {1};
    PGresult *r = PQexecParams(conn, "select $1::bytea as b, length($1::bytea) as len, md5($1::bytea) as md5",
                               1, (const Oid[]){BYTEAOID}, vals, lens, fmts, 1);
    expect("10 MB bytea round trip", r, PGRES_TUPLES_OK);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        check(PQgetlength(r, 0, 0) == (int)n && memcmp(PQgetvalue(r, 0, 0), buf, n) == 0,
              "10 MB bytea comes back identical");
        check(be32(PQgetvalue(r, 0, 1)) == n, "server saw 10485760 bytes");
        check(PQgetlength(r, 0, 2) == 32 && memcmp(PQgetvalue(r, 0, 2), m, 32) == 0, "server md5 equals local md5");
    }
    PQclear(r);
    /* store it, read it back as text (hex: 20 MB) */
    run_ok("create temp table blob (id int, b bytea)");
    expect_clear("insert 10 MB", PQexecParams(conn, "insert into blob values (1, $1)", 1, (const Oid[]){BYTEAOID}, vals, lens, fmts, 0),
                 PGRES_COMMAND_OK);
    r = PQexecParams(conn, "select b from blob where id = 1", 0, NULL, NULL, NULL, NULL, 0);
    expect("select 10 MB as hex text", r, PGRES_TUPLES_OK);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        size_t tl = (size_t)PQgetlength(r, 0, 0);
        const char *tv = PQgetvalue(r, 0, 0);
        int good = tl == 2 + 2 * n && tv[0] == '\\' && tv[1] == 'x';
        for (size_t i = 0; good && i < n; i++) {
            static const char hx[] = "0123456789abcdef";
            good = tv[2 + 2 * i] == hx[buf[i] >> 4] && tv[3 + 2 * i] == hx[buf[i] & 15];
        }
        check(good, "10 MB bytea as 20 MB hex text is correct");
    }
    PQclear(r);
    free(buf);
}

static void section_big_results(void)
{
    T("== many rows");
    expect_clear("100k rows extended", PQexecParams(conn, "select g, md5(g::text) from generate_series(1, $1::int) g", 1, NULL,
                 (const char *const[]){"100000"}, NULL, NULL, 0), PGRES_TUPLES_OK);
    /* single-row mode */
    if (!PQsendQueryParams(conn, "select g, repeat('z', g % 100) from generate_series(1, 50000) g", 0, NULL, NULL, NULL, NULL, 1) ||
        !PQsetSingleRowMode(conn)) {
        check(0, "single-row mode query sent");
        return;
    }
    int singles = 0, others = 0;
    long long sum = 0;
    PGresult *r;
    while ((r = PQgetResult(conn))) {
        if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
            singles++;
            sum += be32(PQgetvalue(r, 0, 0));
        } else {
            others++;
            dump("single-row mode final", r);
        }
        PQclear(r);
    }
    T("single-row mode: %d single tuples, %d others, sum %lld", singles, others, sum);
    check(singles == 50000 && others == 1 && sum == 50000LL * 50001 / 2, "single-row mode: 50000 rows then final result");
}

static void section_copy(void)
{
    T("== COPY");
    run_ok("create temp table cp (id int, v text)");
    for (int ext = 0; ext < 2; ext++) {
        PGresult *r = ext ? PQexecParams(conn, "copy cp from stdin", 0, NULL, NULL, NULL, NULL, 0) : sql("copy cp from stdin");
        expect(ext ? "copy in (extended protocol)" : "copy in (simple protocol)", r, PGRES_COPY_IN);
        PQclear(r);
        char line[64];
        int okput = 1;
        for (int i = 1; i <= 1000; i++) {
            int len = snprintf(line, sizeof line, "%d\tvalue %d\n", i + ext * 1000, i);
            okput &= PQputCopyData(conn, line, len) == 1;
        }
        okput &= PQputCopyEnd(conn, NULL) == 1;
        check(okput, "copy data sent");
        r = PQgetResult(conn);
        expect("copy in result", r, PGRES_COMMAND_OK);
        check(strcmp(PQcmdStatus(r), "COPY 1000") == 0, "copy in tag COPY 1000 (got %s)", PQcmdStatus(r));
        PQclear(r);
        while ((r = PQgetResult(conn))) {
            dump("unexpected extra result", r);
            check(0, "no extra result after COPY");
            PQclear(r);
        }
        check_tx("after copy in", "IDLE");
    }
    /* client-side abort: CopyFail */
    PGresult *r = sql("copy cp from stdin");
    expect("copy in to abort", r, PGRES_COPY_IN);
    PQclear(r);
    PQputCopyData(conn, "5000\tnever\n", 11);
    PQputCopyEnd(conn, "client gave up");
    r = PQgetResult(conn);
    expect_error("copy aborted by CopyFail", r, "57014");
    while ((r = PQgetResult(conn)))
        PQclear(r);
    check_tx("after CopyFail", "IDLE");
    /* server-side error in the middle of the data */
    r = PQexecParams(conn, "copy cp from stdin", 0, NULL, NULL, NULL, NULL, 0);
    expect("copy in with a bad row", r, PGRES_COPY_IN);
    PQclear(r);
    PQputCopyData(conn, "6000\tfine\nnot a number\tbad\n6002\tfine\n", 37);
    PQputCopyEnd(conn, NULL);
    r = PQgetResult(conn);
    expect_error("copy in bad row error", r, "22P02");
    while ((r = PQgetResult(conn)))
        PQclear(r);
    check_tx("after COPY error", "IDLE");
    expect_value("rows after copies", sql("select count(*) || ' ' || sum(id) from cp"), "2000 2001000");

    /* copy out */
    for (int ext = 0; ext < 2; ext++) {
        r = ext ? PQexecParams(conn, "copy (select * from cp order by id) to stdout", 0, NULL, NULL, NULL, NULL, 0)
                : sql("copy (select * from cp order by id) to stdout");
        expect(ext ? "copy out (extended)" : "copy out (simple)", r, PGRES_COPY_OUT);
        PQclear(r);
        char *row;
        int len, rows = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
        while ((len = PQgetCopyData(conn, &row, 0)) > 0) {
            rows++;
            EVP_DigestUpdate(ctx, row, (size_t)len);
            PQfreemem(row);
        }
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int dl = 0;
        char hex[33];
        EVP_DigestFinal_ex(ctx, d, &dl);
        EVP_MD_CTX_free(ctx);
        for (int i = 0; i < 16; i++)
            sprintf(hex + 2 * i, "%02x", d[i]);
        T("copy out: %d rows md5 %s end=%d", rows, hex, len);
        check(rows == 2000 && len == -1, "copy out: 2000 rows");
        r = PQgetResult(conn);
        expect("copy out result", r, PGRES_COMMAND_OK);
        check(strcmp(PQcmdStatus(r), "COPY 2000") == 0, "copy out tag COPY 2000");
        PQclear(r);
        while ((r = PQgetResult(conn)))
            PQclear(r);
    }
}

static void section_large_objects(void)
{
    T("== large objects (fast-path function calls)");
    run_ok("begin");
    Oid lo = lo_creat(conn, INV_READ | INV_WRITE);
    check(lo != InvalidOid, "lo_creat");
    int fd = lo_open(conn, lo, INV_READ | INV_WRITE);
    check(fd >= 0, "lo_open");
    size_t n = 300000;
    char *data = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + (i >> 8));
    int w = lo_write(conn, fd, data, n);
    T("lo_write %d", w);
    check(w == (int)n, "lo_write %zu bytes (got %d)", n, w);
    check(lo_lseek(conn, fd, 0, SEEK_SET) == 0, "lo_lseek to 0");
    size_t got = 0;
    int rd;
    while (got < n && (rd = lo_read(conn, fd, back + got, n - got > 65536 ? 65536 : n - got)) > 0)
        got += (size_t)rd;
    T("lo_read %zu", got);
    check(got == n && memcmp(data, back, n) == 0, "lo_read returns what was written");
    check(lo_tell(conn, fd) == (int)n, "lo_tell at end");
    check(lo_close(conn, fd) == 0, "lo_close");
    check(lo_unlink(conn, lo) == 1, "lo_unlink");
    /* a fast-path call that fails */
    check(lo_open(conn, lo, INV_READ) < 0, "lo_open of unlinked object fails");
    /* the message names the OID, which differs between runs */
    T("lo_open failure starts with: %.22s", PQerrorMessage(conn));
    check(strncmp(PQerrorMessage(conn), "ERROR:  large object ", 21) == 0, "lo_open failure message");
    check_tx("after failed fast-path call", "INERROR");
    run_ok("rollback");
    free(data);
    free(back);
}

/* Pipeline mode: results come back in order; an error aborts the rest of its segment. */
static void section_pipeline(void)
{
    T("== pipeline");
    run_ok("create temp table pl (i int)");
    check(PQenterPipelineMode(conn) == 1, "enter pipeline mode");
    check(PQpipelineStatus(conn) == PQ_PIPELINE_ON, "pipeline status ON");
    int sent = 1;
    char vals[200][16];
    /* segment 1: prepare, 40 selects, an insert, a failing query, 19 queries aborted */
    sent &= PQsendPrepare(conn, "pl_ins", "insert into pl values ($1::int4) returning i", 0, NULL);
    for (int i = 1; i <= 40; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        sent &= PQsendQueryParams(conn, "select $1::int4 * 10", 1, NULL, (const char *const[]){vals[i]}, NULL, NULL, 0);
    }
    sent &= PQsendQueryPrepared(conn, "pl_ins", 1, (const char *const[]){"0"}, NULL, NULL, 0);
    sent &= PQsendQueryParams(conn, "select 1 / ($1::int4 - 41)", 1, NULL, (const char *const[]){"41"}, NULL, NULL, 0);
    for (int i = 42; i <= 60; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        sent &= PQsendQueryPrepared(conn, "pl_ins", 1, (const char *const[]){vals[i]}, NULL, NULL, 0);
    }
    sent &= PQpipelineSync(conn);
    /* segment 2: 40 inserts with the statement prepared in segment 1 */
    for (int i = 61; i <= 100; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        sent &= PQsendQueryPrepared(conn, "pl_ins", 1, (const char *const[]){vals[i]}, NULL, NULL, i % 2);
    }
    sent &= PQpipelineSync(conn);
    check(sent, "99 queries, a prepare and 2 syncs queued");

    int okres = 0, aborted = 0, errors = 0, syncs = 0, order_ok = 1;
    long long sum = 0;
    /* expected: 1 prepare, 40 selects, 1 insert, 1 error, 19 aborted, sync, 40 inserts, sync */
    for (int k = 0; k < 104; k++) {
        PGresult *r = PQgetResult(conn);
        if (!r) {
            check(0, "pipeline result %d present", k);
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        T("pipeline result %d: %s %s %s", k, PQresStatus(st), PQcmdStatus(r),
          st == PGRES_FATAL_ERROR ? ef(r, PG_DIAG_SQLSTATE) : (PQntuples(r) ? (PQfformat(r, 0) ? "(binary)" : PQgetvalue(r, 0, 0)) : ""));
        ExecStatusType want = k == 0 ? PGRES_COMMAND_OK : k <= 41 ? PGRES_TUPLES_OK : k == 42 ? PGRES_FATAL_ERROR
                              : k <= 61 ? PGRES_PIPELINE_ABORTED : k == 62 ? PGRES_PIPELINE_SYNC
                              : k <= 102 ? PGRES_TUPLES_OK : PGRES_PIPELINE_SYNC;
        if (st != want)
            order_ok = 0;
        if (st == PGRES_TUPLES_OK) {
            okres++;
            if (k >= 1 && k <= 40)
                sum += atoll(PQgetvalue(r, 0, 0));
        } else if (st == PGRES_PIPELINE_ABORTED)
            aborted++;
        else if (st == PGRES_FATAL_ERROR) {
            errors++;
            check(strcmp(ef(r, PG_DIAG_SQLSTATE), "22012") == 0, "failing pipeline query: 22012");
        } else if (st == PGRES_PIPELINE_SYNC)
            syncs++;
        PQclear(r);
        if (st != PGRES_PIPELINE_SYNC) {
            r = PQgetResult(conn);
            if (r) {
                order_ok = 0;
                PQclear(r);
            }
        }
    }
    T("pipeline: ok=%d aborted=%d errors=%d syncs=%d sum=%lld", okres, aborted, errors, syncs, sum);
    check(order_ok, "pipeline results in the expected order");
    check(okres == 81 && aborted == 19 && errors == 1 && syncs == 2, "pipeline: 81 ok, 19 aborted, 1 error, 2 syncs");
    check(sum == 10LL * 40 * 41 / 2, "pipeline: select results (sum %lld)", sum);

    /* flush requests: results of queued queries arrive before any sync */
    int fsent = 1;
    for (int i = 0; i < 5; i++)
        fsent &= PQsendQueryParams(conn, "select $1::text || '!'", 1, NULL, (const char *const[]){"flushed"}, NULL, NULL, 0);
    fsent &= PQsendFlushRequest(conn);
    fsent &= PQflush(conn) == 0;
    check(fsent, "5 queries and a flush request sent");
    int flushed = 0;
    for (int i = 0; i < 5; i++) {
        PGresult *r = PQgetResult(conn);
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "flushed!") == 0)
            flushed++;
        PQclear(r);
        r = PQgetResult(conn); /* NULL ends each query's results */
        if (r) {
            flushed = -100;
            PQclear(r);
        }
    }
    T("flushed results before sync: %d", flushed);
    check(flushed == 5, "5 results received after flush request, before sync");
    check(PQpipelineSync(conn) == 1, "sync after flush");
    PGresult *r = PQgetResult(conn);
    check(r && PQresultStatus(r) == PGRES_PIPELINE_SYNC, "sync result after flush");
    PQclear(r);

    /* a transaction spanning segments: BEGIN ... error ... ROLLBACK */
    PQsendQueryParams(conn, "begin", 0, NULL, NULL, NULL, NULL, 0);
    PQsendQueryPrepared(conn, "pl_ins", 1, (const char *const[]){"1000"}, NULL, NULL, 0);
    PQpipelineSync(conn);
    PQsendQueryParams(conn, "select no_such_column", 0, NULL, NULL, NULL, NULL, 0);
    PQpipelineSync(conn);
    PQsendQueryPrepared(conn, "pl_ins", 1, (const char *const[]){"1001"}, NULL, NULL, 0);
    PQpipelineSync(conn);
    PQsendQueryParams(conn, "rollback", 0, NULL, NULL, NULL, NULL, 0);
    PQpipelineSync(conn);
    static const ExecStatusType want2[] = {PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_PIPELINE_SYNC,
                                           PGRES_FATAL_ERROR, PGRES_PIPELINE_SYNC,
                                           PGRES_FATAL_ERROR, PGRES_PIPELINE_SYNC,
                                           PGRES_COMMAND_OK, PGRES_PIPELINE_SYNC};
    int seq_ok = 1;
    for (size_t k = 0; k < sizeof want2 / sizeof want2[0]; k++) {
        r = PQgetResult(conn);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_EMPTY_QUERY;
        T("pipeline tx result %zu: %s %s", k, PQresStatus(st), st == PGRES_FATAL_ERROR ? ef(r, PG_DIAG_SQLSTATE) : "");
        if (st != want2[k])
            seq_ok = 0;
        if (k == 5 && (!r || strcmp(ef(r, PG_DIAG_SQLSTATE), "25P02") != 0))
            seq_ok = 0;
        PQclear(r);
        if (st != PGRES_PIPELINE_SYNC && (r = PQgetResult(conn))) {
            seq_ok = 0;
            PQclear(r);
        }
    }
    check(seq_ok, "pipeline transaction across syncs: aborted until ROLLBACK (25P02)");

    /* a long pipeline in non-blocking mode, sending and receiving at the same time */
    check(PQsetnonblocking(conn, 1) == 0, "non-blocking mode");
    int total = 20000, queued = 0, received = 0, bad = 0, synced = 0;
    long long lsum = 0;
    time_t deadline = time(NULL) + 60;
    while (synced == 0 && time(NULL) < deadline) {
        while (queued < total) {
            char v[16];
            snprintf(v, sizeof v, "%d", queued + 1);
            if (!PQsendQueryPrepared(conn, "s_loop", 1, (const char *const[]){v}, NULL, NULL, 0))
                break;
            queued++;
            if (queued == total)
                PQpipelineSync(conn);
            if (PQflush(conn) == 1)
                break; /* socket full: go read for a while */
        }
        fd_set rfds, wfds;
        int sock = PQsocket(conn);
        FD_ZERO(&rfds);
        FD_ZERO(&wfds);
        FD_SET(sock, &rfds);
        if (PQflush(conn) == 1)
            FD_SET(sock, &wfds);
        struct timeval tv = {1, 0};
        if (select(sock + 1, &rfds, &wfds, NULL, &tv) < 0 && errno != EINTR)
            break;
        if (!PQconsumeInput(conn))
            break;
        int nulls = 0;
        while (!PQisBusy(conn)) {
            r = PQgetResult(conn);
            if (!r) {
                /* one NULL ends a query's results; a second one: nothing more to read now */
                if (++nulls >= 2)
                    break;
                continue;
            }
            nulls = 0;
            if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
                synced = 1;
            else if (PQresultStatus(r) == PGRES_TUPLES_OK) {
                received++;
                lsum += atoll(PQgetvalue(r, 0, 0));
            } else
                bad++;
            PQclear(r);
            if (synced)
                break;
        }
    }
    T("non-blocking pipeline: queued=%d received=%d bad=%d synced=%d sum=%lld", queued, received, bad, synced, lsum);
    check(queued == total && received == total && bad == 0 && synced == 1 && lsum == (long long)total * (total + 1),
          "non-blocking pipeline of %d queries completes with correct results", total);
    PQsetnonblocking(conn, 0);

    check(PQexitPipelineMode(conn) == 1, "exit pipeline mode");
    expect_value("pipeline rows committed", sql("select count(*) || ' ' || min(i) || ' ' || max(i) from pl"), "40 61 100");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONNINFO TRANSCRIPT [LABEL]\n", argv[0]);
        return 2;
    }
    itest_label = argc > 3 ? argv[3] : "20_extended";
    tr = fopen(argv[2], "w");
    if (!tr) {
        perror(argv[2]);
        return 2;
    }
    conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        printf("not ok - %s: connect: %s\n", itest_label, PQerrorMessage(conn));
        return 2;
    }
    section_connection();
    section_empty();
    section_prepared();
    section_portals();
    section_errors();
    section_notices();
    section_many_params();
    section_big_bytea();
    section_big_results();
    section_copy();
    section_large_objects();
    section_pipeline();
    run_ok("drop function apigres_ext_noisy(int)");
    check(PQstatus(conn) == CONNECTION_OK, "connection still OK at the end");
    T("== end: %d checks", itest_checks);
    PQfinish(conn);
    fclose(tr);
    printf("# %s: %d checks, %d failed\n", itest_label, itest_checks, itest_failures);
    return itest_failures ? 1 : 0;
}
