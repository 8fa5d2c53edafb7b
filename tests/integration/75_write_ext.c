/*
 * 75_write_ext: the write path in the extended query protocol, through libpq. Run by
 * 75_write.py (which owns apigres, the fake and the database) as
 *   75_write_ext PROXY_CONNINFO DIRECT_CONNINFO CUSTOMER_ID
 * PQexecParams (unnamed statement, text and binary parameters), PQprepare/PQexecPrepared
 * (named), PQdescribePrepared, binary results, pipeline mode, API errors as SQLSTATEs; the
 * mirror is read back directly from the database.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/itest.h"

static PGconn *direct;

/* One value from the database itself. */
static char *mirrored(const char *sql, const char *id)
{
    static char out[256];
    const char *params[] = {id};
    PGresult *r = PQexecParams(direct, sql, 1, NULL, params, NULL, NULL, 0);
    snprintf(out, sizeof out, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "(none)");
    PQclear(r);
    return out;
}

/* Runs stmts in one pipeline with one Sync ($1 = id where a statement has it); returns how
 * many succeeded, or -1 when the pipeline itself failed. */
static int pipeline(PGconn *c, const char *const *stmts, int n, const char *id)
{
    const char *param[] = {id};
    int ok = PQenterPipelineMode(c), done = 0;
    for (int i = 0; i < n && ok; i++)
        ok = PQsendQueryParams(c, stmts[i], strstr(stmts[i], "$1") ? 1 : 0, NULL, param, NULL, NULL, 0);
    ok = ok && PQpipelineSync(c);
    for (int i = 0; ok && i < n; i++) {
        PGresult *r;
        while ((r = PQgetResult(c)) != NULL) {
            done += PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
        }
    }
    PGresult *r = PQgetResult(c);
    ok = ok && r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    PQexitPipelineMode(c);
    return ok ? done : -1;
}

/* Whether another session can lock customer id right now: "" when it can, else the SQLSTATE. */
static const char *state_of_lock(const char *id)
{
    static char out[8];
    const char *params[] = {id};
    PGresult *r = PQexecParams(direct, "SELECT 1 FROM stripe.customer WHERE id = $1 FOR UPDATE NOWAIT", 1, NULL,
                               params, NULL, NULL, 0);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(out, sizeof out, "%s", st ? st : "");
    PQclear(r);
    return out;
}

static const char *state_of(const PGresult *r)
{
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s ? s : "";
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: 75_write_ext PROXY_CONNINFO DIRECT_CONNINFO CUSTOMER_ID\n");
        return 2;
    }
    itest_label = "extended";
    PGconn *c = PQconnectdb(argv[1]);
    direct = PQconnectdb(argv[2]);
    const char *id = argv[3];
    if (!check(PQstatus(c) == CONNECTION_OK && PQstatus(direct) == CONNECTION_OK, "connected"))
        return 1;

    /* PQexecParams: Parse/Bind/Describe/Execute/Sync on the unnamed statement */
    const char *p1[] = {"ext@example.com", id};
    PGresult *r = PQexecParams(c, "UPDATE stripe.customer SET email = $1 WHERE id = $2", 2, NULL, p1, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "1") == 0 &&
              strcmp(PQcmdStatus(r), "UPDATE 1") == 0,
          "PQexecParams UPDATE with text parameters: %s %s", PQcmdStatus(r), PQresultErrorMessage(r));
    PQclear(r);
    check(strcmp(mirrored("SELECT email FROM stripe.customer WHERE id = $1", id), "ext@example.com") == 0,
          "the mirror has the API's record");

    /* the same Parse again goes in the plan's round trip, with the parameter types it had
     * last time; when they changed (another search_path), the write is planned again with
     * the new ones; when the Parse fails, its error is the client's and nothing is called */
    PQclear(PQexec(direct, "CREATE SCHEMA pick_int; CREATE TABLE pick_int.pick (n int, id text); "
                           "CREATE SCHEMA pick_text; CREATE TABLE pick_text.pick (n text, id text); "
                           "GRANT USAGE ON SCHEMA pick_int, pick_text TO app_writer; "
                           "GRANT SELECT ON pick_int.pick, pick_text.pick TO app_writer"));
    const char *pk[] = {id};
    PQclear(PQexecParams(direct, "INSERT INTO pick_int.pick VALUES (1, $1)", 1, NULL, pk, NULL, NULL, 0));
    PQclear(PQexecParams(direct, "INSERT INTO pick_text.pick VALUES ('one', $1)", 1, NULL, pk, NULL, NULL, 0));
    const char *pick = "UPDATE stripe.customer SET name = $1 WHERE id = (SELECT id FROM pick WHERE n = $2)";
    PQclear(PQexec(c, "SET search_path = pick_int, public"));
    int picked = 0;
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "Picked Int %d", i);
        const char *pp[] = {name, "1"};
        r = PQexecParams(c, pick, 2, NULL, pp, NULL, NULL, 0);
        picked += PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "UPDATE 1") == 0 &&
                  strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), name) == 0;
        PQclear(r);
    }
    check(picked == 3, "the same Parse three times, its second and third sent with the plan (%d of 3)", picked);
    PQclear(PQexec(c, "SET search_path = pick_text, public"));
    const char *ptext[] = {"Picked Text", "one"};
    r = PQexecParams(c, pick, 2, NULL, ptext, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "UPDATE 1") == 0 &&
              strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), "Picked Text") == 0,
          "the same Parse whose parameter became text ($2 int before): planned again, UPDATE 1 (%s)",
          PQresultErrorMessage(r));
    PQclear(r);
    PQclear(PQexec(c, "SET search_path = public"));
    for (int i = 0; i < 2; i++) {
        const char *pnever[] = {"Never", "one"};
        r = PQexecParams(c, pick, 2, NULL, pnever, NULL, NULL, 0);
        check(strcmp(state_of(r), "42P01") == 0 && strstr(PQresultErrorMessage(r), "\"pick\" does not exist") &&
                  strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), "Picked Text") == 0,
              "the same Parse where pick is no table: the database's error, nothing written (%s)",
              PQresultErrorMessage(r));
        PQclear(r);
    }
    r = PQexec(c, "SELECT 1");
    check(PQresultStatus(r) == PGRES_TUPLES_OK, "the connection goes on after the failed Parse");
    PQclear(r);
    PQclear(PQexec(c, "RESET search_path"));

    /* the same with RETURNING: the portal's RowDescription comes from the Describe sent
     * with the Parse, in the Bind's result formats (text, then binary) */
    int returned = 0;
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "Returned %d", i);
        const char *pr[] = {name, id};
        r = PQexecParams(c, "UPDATE stripe.customer SET name = $1 WHERE id = $2 RETURNING id, name", 2, NULL, pr,
                         NULL, NULL, i == 2);
        returned += PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 2 &&
                    strcmp(PQfname(r, 1), "name") == 0 && PQfformat(r, 1) == (i == 2) &&
                    PQgetlength(r, 0, 1) == (int)strlen(name) && memcmp(PQgetvalue(r, 0, 1), name, strlen(name)) == 0 &&
                    strcmp(PQcmdStatus(r), "UPDATE 1") == 0;
        PQclear(r);
    }
    check(returned == 3, "the same Parse with RETURNING three times, the last in binary (%d of 3)", returned);

    /* a named statement, described truthfully, then executed twice with RETURNING */
    r = PQprepare(c, "upd", "UPDATE stripe.customer SET name = $1 WHERE id = $2 RETURNING id, name", 0, NULL);
    check(PQresultStatus(r) == PGRES_COMMAND_OK, "PQprepare of a write: %s", PQresultErrorMessage(r));
    PQclear(r);
    r = PQdescribePrepared(c, "upd");
    check(PQresultStatus(r) == PGRES_COMMAND_OK && PQnparams(r) == 2 && PQparamtype(r, 0) == 25 &&
              PQnfields(r) == 2 && strcmp(PQfname(r, 0), "id") == 0 && strcmp(PQfname(r, 1), "name") == 0,
          "PQdescribePrepared: %d parameters (type %u), %d columns", PQnparams(r), PQparamtype(r, 0), PQnfields(r));
    PQclear(r);
    const char *p2[] = {"Named Statement", id};
    r = PQexecPrepared(c, "upd", 2, p2, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), id) == 0 &&
              strcmp(PQgetvalue(r, 0, 1), "Named Statement") == 0 && strcmp(PQcmdStatus(r), "UPDATE 1") == 0,
          "PQexecPrepared ... RETURNING: %s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 1) : PQresultErrorMessage(r));
    PQclear(r);
    const char *p3[] = {"Binary Results", id};
    r = PQexecPrepared(c, "upd", 2, p3, NULL, NULL, 1);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQfformat(r, 1) == 1 &&
              PQgetlength(r, 0, 1) == 14 && memcmp(PQgetvalue(r, 0, 1), "Binary Results", 14) == 0,
          "the same statement again, RETURNING in binary");
    PQclear(r);

    /* binary parameters: a bigint and a text */
    uint32_t hi = htonl(0), lo = htonl(4200);
    char balance[8];
    memcpy(balance, &hi, 4);
    memcpy(balance + 4, &lo, 4);
    const char *p4[] = {balance, id};
    int lens[] = {8, (int)strlen(id)};
    int formats[] = {1, 1};
    Oid types[] = {20, 25};
    r = PQexecParams(c, "UPDATE stripe.customer SET balance = $1 WHERE id = $2", 2, types, p4, lens, formats, 0);
    check(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "1") == 0,
          "binary parameters (bigint, text): %s", PQresultErrorMessage(r));
    PQclear(r);
    check(strcmp(mirrored("SELECT balance FROM stripe.customer WHERE id = $1", id), "4200") == 0,
          "the balance reached the API and the mirror (%s)",
          mirrored("SELECT balance FROM stripe.customer WHERE id = $1", id));

    /* INSERT ... RETURNING and DELETE with parameters */
    const char *p5[] = {"ext-new@example.com", "Extended"};
    r = PQexecParams(c, "INSERT INTO stripe.customer (email, name) VALUES ($1, $2) RETURNING id", 2, NULL, p5, NULL,
                     NULL, 0);
    char created[64] = "";
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(created, sizeof created, "%s", PQgetvalue(r, 0, 0));
    check(strncmp(created, "cus_", 4) == 0 && strcmp(PQcmdStatus(r), "INSERT 0 1") == 0,
          "INSERT ... RETURNING id with parameters: %s", created[0] ? created : PQresultErrorMessage(r));
    PQclear(r);
    const char *p6[] = {created};
    r = PQexecParams(c, "DELETE FROM stripe.customer WHERE id = $1", 1, NULL, p6, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "DELETE 1") == 0, "DELETE with a parameter: %s",
          PQcmdStatus(r));
    PQclear(r);
    check(strcmp(mirrored("SELECT count(*) FROM stripe.customer WHERE id = $1", created), "0") == 0,
          "the deleted customer left the mirror");

    /* RETURNING that reads a joined application table, its parameters and binary results;
     * a DELETE ... USING ... RETURNING of a named statement described truthfully */
    const char *pg[] = {"ext-gone@example.com"};
    r = PQexecParams(c, "INSERT INTO stripe.customer (email) VALUES ($1) RETURNING id", 1, NULL, pg, NULL, NULL, 0);
    char doomed[64] = "";
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(doomed, sizeof doomed, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *pd[] = {doomed};
    r = PQexecParams(c, "INSERT INTO orders (customer_id, note) VALUES ($1, 'ext-join')", 1, NULL, pd, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_COMMAND_OK, "a customer to delete (%s) and its order: %s", doomed,
          PQresultErrorMessage(r));
    PQclear(r);
    const char *pj[] = {id, "Joined "};
    r = PQexecParams(c, "INSERT INTO orders (customer_id, note) VALUES ($1, 'ext-join')", 1, NULL, pj, NULL, NULL, 0);
    PQclear(r);
    r = PQexecParams(c,
                     "UPDATE stripe.customer c SET name = $2 || o.note FROM orders o WHERE o.customer_id = c.id "
                     "AND c.id = $1 AND o.note = 'ext-join' RETURNING o.note, c.name, $2::text || 'x'",
                     2, NULL, pj, NULL, NULL, 1);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 3 && PQfformat(r, 0) == 1 &&
              PQgetlength(r, 0, 0) == 8 && memcmp(PQgetvalue(r, 0, 0), "ext-join", 8) == 0 &&
              PQgetlength(r, 0, 1) == 15 && memcmp(PQgetvalue(r, 0, 1), "Joined ext-join", 15) == 0 &&
              PQgetlength(r, 0, 2) == 8 && memcmp(PQgetvalue(r, 0, 2), "Joined x", 8) == 0 &&
              strcmp(PQcmdStatus(r), "UPDATE 1") == 0,
          "UPDATE ... FROM ... RETURNING the joined row, in binary: %s", PQresultErrorMessage(r));
    PQclear(r);
    r = PQprepare(c, "del_join",
                  "DELETE FROM stripe.customer c USING orders o WHERE o.customer_id = c.id AND c.id = $1 "
                  "RETURNING c.email, o.note, o.id",
                  0, NULL);
    PQclear(r);
    r = PQdescribePrepared(c, "del_join");
    check(PQresultStatus(r) == PGRES_COMMAND_OK && PQnfields(r) == 3 && PQftype(r, 2) == 23 &&
              strcmp(PQfname(r, 1), "note") == 0,
          "PQdescribePrepared of DELETE ... USING ... RETURNING: %d columns, the last of type %u", PQnfields(r),
          PQftype(r, 2));
    PQclear(r);
    r = PQexecPrepared(c, "del_join", 1, pd, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "ext-gone@example.com") == 0 && strcmp(PQgetvalue(r, 0, 1), "ext-join") == 0 &&
              atoi(PQgetvalue(r, 0, 2)) > 0 && strcmp(PQcmdStatus(r), "DELETE 1") == 0,
          "DELETE ... USING ... RETURNING the deleted and the joined rows: %s",
          PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : PQresultErrorMessage(r));
    PQclear(r);
    check(strcmp(mirrored("SELECT count(*) FROM stripe.customer WHERE id = $1", doomed), "0") == 0,
          "... and the row left the mirror");
    const char *pn2[] = {"Never", id};
    r = PQexecParams(c, "UPDATE stripe.customer SET name = $1 WHERE id = $2 RETURNING nosuchcol", 2, NULL, pn2, NULL,
                     NULL, 0);
    check(strcmp(state_of(r), "42703") == 0 &&
              strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), "Never") != 0,
          "RETURNING of an unknown column: 42703 before any API call (%s)", state_of(r));
    PQclear(r);

    /* the API's refusal as the SQLSTATE, and the connection goes on */
    const char *p7[] = {"not-an-email", id};
    r = PQexecParams(c, "UPDATE stripe.customer SET email = $1 WHERE id = $2", 2, NULL, p7, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_FATAL_ERROR && strcmp(state_of(r), "23514") == 0 &&
              strstr(PQresultErrorMessage(r), "Invalid email address: not-an-email"),
          "an API error is an ErrorResponse with its SQLSTATE (%s)", state_of(r));
    PQclear(r);
    r = PQexec(c, "SELECT 1");
    check(PQresultStatus(r) == PGRES_TUPLES_OK, "the connection goes on after the error");
    PQclear(r);

    /* unqualified targets: an application table passes; a synced table's name is where the
     * session's search_path places it */
    const char *pu[] = {id};
    r = PQexecParams(c, "INSERT INTO orders (customer_id, note) VALUES ($1, 'unqualified')", 1, NULL, pu, NULL,
                     NULL, 0);
    check(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "INSERT 0 1") == 0,
          "an INSERT into an unqualified application table with parameters passes (%s)", PQresultErrorMessage(r));
    PQclear(r);
    r = PQexecParams(c, "UPDATE customer SET name = 'x' WHERE id = $1", 1, NULL, pu, NULL, NULL, 0);
    check(strcmp(state_of(r), "42P01") == 0,
          "a synced table's name on no schema of the search_path: the database's own error (%s)",
          PQresultErrorMessage(r));
    PQclear(r);

    /* ... the session's search_path and temporary tables place it, at each Execute, as the
     * database places the statement itself */
    PQclear(PQexec(c, "SET search_path = stripe, public"));
    const char *pn[] = {"Unqualified Ext", id};
    r = PQexecParams(c, "UPDATE customer SET name = $1 WHERE id = $2 RETURNING name", 2, NULL, pn, NULL, NULL, 0);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "Unqualified Ext") == 0 && strcmp(PQcmdStatus(r), "UPDATE 1") == 0 &&
              strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), "Unqualified Ext") == 0,
          "with stripe on the search_path, UPDATE customer is a write of stripe.customer (%s)",
          PQresultErrorMessage(r));
    PQclear(r);
    r = PQprepare(c, "unq", "UPDATE customer SET name = $1 WHERE id = $2", 2, NULL);
    PQclear(r);
    const char *pq[] = {"Prepared Unqualified", id};
    r = PQexecPrepared(c, "unq", 2, pq, NULL, NULL, 0);
    check(strcmp(PQcmdStatus(r), "UPDATE 1") == 0 &&
              strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), "Prepared Unqualified") == 0,
          "... prepared, the same (%s)", PQresultErrorMessage(r));
    PQclear(r);
    PQclear(PQexec(c, "CREATE TEMP TABLE customer (id text PRIMARY KEY, name text)"));
    PQclear(PQexec(c, "INSERT INTO customer VALUES ('t1', 'temp')"));
    const char *pt[] = {"Temp Row", "t1"};
    r = PQexecPrepared(c, "unq", 2, pt, NULL, NULL, 0);
    check(strcmp(PQcmdStatus(r), "UPDATE 1") == 0 &&
              strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), "Prepared Unqualified") == 0,
          "... once a temporary table of that name comes first, the same prepared statement writes it (%s)",
          PQresultErrorMessage(r));
    PQclear(r);
    r = PQexec(c, "SELECT name FROM customer");
    check(PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "Temp Row") == 0, "... the temporary row changed");
    PQclear(r);
    const char *pv[] = {"t2", "Returned"};
    r = PQexecParams(c, "INSERT INTO customer (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING name", 2,
                     NULL, pv, NULL, NULL, 1);
    check(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1 && PQfformat(r, 0) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "Returned") == 0,
          "... with ON CONFLICT and RETURNING in binary, as the database answers it (%s)", PQresultErrorMessage(r));
    PQclear(r);
    r = PQexecParams(c, "TRUNCATE customer", 0, NULL, NULL, NULL, NULL, 0);
    check(strcmp(PQcmdStatus(r), "TRUNCATE TABLE") == 0 &&
              strcmp(mirrored("SELECT count(*) > 0 FROM stripe.customer WHERE id = $1", id), "t") == 0,
          "... and a TRUNCATE of it, the temporary table's (%s)", PQresultErrorMessage(r));
    PQclear(r);
    PQclear(PQexec(c, "DROP TABLE pg_temp.customer; DEALLOCATE unq; RESET search_path"));
    r = PQexec(c, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'apigres_where_is'");
    check(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0") == 0,
          "the lookups left no prepared statement of theirs on the session (%s)",
          PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : PQresultErrorMessage(r));
    PQclear(r);

    /* transaction statements earlier in the same batch as a write (pgjdbc sends BEGIN with
     * the first statement of a transaction): the write runs inside the client's block */
    const char *begin_write[] = {"BEGIN", "UPDATE stripe.customer SET name = 'In Block' WHERE id = $1"};
    int done = pipeline(c, begin_write, 2, id);
    check(done == 2 && PQtransactionStatus(c) == PQTRANS_INTRANS &&
              strcmp(state_of_lock(id), "55P03") == 0,
          "BEGIN and a write in one batch: the block stays open and holds the row (%d, %d)", done,
          (int)PQtransactionStatus(c));
    const char *keep_write[] = {"SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "COMMIT AND CHAIN",
                                "UPDATE stripe.customer SET name = 'Still In Block' WHERE id = $1"};
    done = pipeline(c, keep_write, 4, id);
    check(done == 4 && PQtransactionStatus(c) == PQTRANS_INTRANS,
          "ROLLBACK TO and COMMIT AND CHAIN before a write in one batch keep the block open (%d)", done);
    const char *end_write[] = {"COMMIT", "UPDATE stripe.customer SET name = 'After Commit' WHERE id = $1"};
    done = pipeline(c, end_write, 2, id);
    check(done == 2 && PQtransactionStatus(c) == PQTRANS_IDLE &&
              strcmp(mirrored("SELECT name FROM stripe.customer WHERE id = $1", id), "After Commit") == 0,
          "COMMIT and a write in one batch: the write commits on its own (%d, %d)", done,
          (int)PQtransactionStatus(c));

    /* pipeline mode: three writes and a read in one Sync */
    int ok = PQenterPipelineMode(c);
    const char *names[] = {"Pipe One", "Pipe Two", "Pipe Three"};
    for (int i = 0; i < 3 && ok; i++) {
        const char *pp[] = {names[i], id};
        ok = PQsendQueryParams(c, "UPDATE stripe.customer SET name = $1 WHERE id = $2", 2, NULL, pp, NULL, NULL, 0);
    }
    const char *pr[] = {id};
    ok = ok && PQsendQueryParams(c, "SELECT name FROM stripe.customer WHERE id = $1", 1, NULL, pr, NULL, NULL, 0);
    ok = ok && PQpipelineSync(c);
    int commands = 0;
    char last[64] = "";
    for (int i = 0; ok && i < 4; i++) {
        while ((r = PQgetResult(c)) != NULL) {
            if (PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "1") == 0)
                commands++;
            if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                snprintf(last, sizeof last, "%s", PQgetvalue(r, 0, 0));
            PQclear(r);
        }
    }
    r = PQgetResult(c);
    ok = ok && r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    PQexitPipelineMode(c);
    check(ok && commands == 3 && strcmp(last, "Pipe Three") == 0,
          "pipeline: three writes then a read that sees the last (%d, %s)", commands, last);

    PQfinish(c);
    PQfinish(direct);
    return itest_failures ? 1 : 0;
}
