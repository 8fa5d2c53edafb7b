/*
 * libpq (C) through apigres, one step per invocation so that tests/clients/libpq/run can
 * check upstream between steps:
 *
 *   client join                 the synced table joined with the application table
 *   client create EMAIL NAME    prepared INSERT ... RETURNING id (prints "id ID")
 *   client update ID NAME       PQexecParams UPDATE with a binary parameter, in a transaction
 *   client delete ID            PQexecParams DELETE
 *   client refuse ID            the API's refusal as a PGresult with SQLSTATE 23514
 *   client rollback ID NAME     BEGIN, UPDATE, read own write, ROLLBACK (run checks the table after)
 *
 * Connects with the connection string in DATABASE_URL; prints "ok - libpq: ..." lines and
 * exits 1 when a check fails. Environment: see tests/integration/78_clients.py.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;

static void check(int cond, const char *what, const char *detail)
{
	printf("%s - libpq: %s\n", cond ? "ok" : "not ok", what);
	if (!cond) {
		failed = 1;
		if (detail)
			printf("#   %s\n", detail);
	}
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v ? v : "";
}

/* Runs sql with text parameters; the result is the caller's to PQclear. */
static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *values)
{
	return PQexecParams(c, sql, n, NULL, values, NULL, NULL, 0);
}

static int command_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok;
}

static void join(PGconn *c)
{
	const char *p[] = {env("CUSTOMER_ID")};
	PGresult *r = exec(c, "SELECT c.email, o.note, o.amount FROM public.orders o "
			      "JOIN stripe.customer c ON c.id = o.customer_id WHERE c.id = $1", 1, p);
	check(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		      strcmp(PQgetvalue(r, 0, 0), env("CUSTOMER_EMAIL")) == 0 &&
		      strcmp(PQgetvalue(r, 0, 1), env("ORDER_NOTE")) == 0 &&
		      strcmp(PQgetvalue(r, 0, 2), env("ORDER_AMOUNT")) == 0,
	      "a synced table joined with an application table (PQexecParams)", PQerrorMessage(c));
	PQclear(r);
}

static void create(PGconn *c, const char *email, const char *name)
{
	PGresult *r = PQprepare(c, "create_customer",
				"INSERT INTO stripe.customer (email, name) VALUES ($1, $2) RETURNING id, email", 2, NULL);
	check(PQresultStatus(r) == PGRES_COMMAND_OK, "PQprepare of an INSERT into a synced table", PQerrorMessage(c));
	PQclear(r);
	const char *p[] = {email, name};
	r = PQexecPrepared(c, "create_customer", 2, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		 strncmp(PQgetvalue(r, 0, 0), "cus_", 4) == 0 && strcmp(PQgetvalue(r, 0, 1), email) == 0 &&
		 strcmp(PQcmdTuples(r), "1") == 0;
	check(ok, "PQexecPrepared INSERT ... RETURNING id: the id comes from the API", PQerrorMessage(c));
	if (ok)
		printf("id %s\n", PQgetvalue(r, 0, 0));
	PQclear(r);
}

static void update(PGconn *c, const char *id, const char *name)
{
	/* the name goes as a binary text parameter, the id as text */
	const char *p[] = {name, id};
	int lengths[] = {(int)strlen(name), 0}, formats[] = {1, 0};
	check(command_ok(c, "BEGIN"), "BEGIN", PQerrorMessage(c));
	PGresult *r = PQexecParams(c, "UPDATE stripe.customer SET name = $1::text WHERE id = $2", 2, NULL, p, lengths,
				   formats, 0);
	check(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "UPDATE 1") == 0,
	      "UPDATE with a binary parameter inside a transaction: UPDATE 1", PQerrorMessage(c));
	PQclear(r);
	check(command_ok(c, "COMMIT"), "COMMIT", PQerrorMessage(c));
}

static void delete(PGconn *c, const char *id)
{
	const char *p[] = {id};
	PGresult *r = exec(c, "DELETE FROM stripe.customer WHERE id = $1", 1, p);
	check(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "DELETE 1") == 0, "DELETE 1",
	      PQerrorMessage(c));
	PQclear(r);
}

static void refuse(PGconn *c, const char *id)
{
	const char *p[] = {"not-an-email", id};
	PGresult *r = exec(c, "UPDATE stripe.customer SET email = $1 WHERE id = $2", 2, p);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	char want[256];
	snprintf(want, sizeof want, "Error updating customer %s: Invalid email address", id);
	check(PQresultStatus(r) == PGRES_FATAL_ERROR && state && strcmp(state, "23514") == 0 && msg &&
		      strstr(msg, want),
	      "the API's refusal is PGRES_FATAL_ERROR with SQLSTATE 23514 and the API's message",
	      PQresultErrorMessage(r));
	PQclear(r);
	r = PQexec(c, "SELECT 1");
	check(PQresultStatus(r) == PGRES_TUPLES_OK, "the connection goes on after the refusal", PQerrorMessage(c));
	PQclear(r);
}

static void rollback(PGconn *c, const char *id, const char *name)
{
	const char *p[] = {name, id};
	check(command_ok(c, "BEGIN"), "BEGIN", PQerrorMessage(c));
	PGresult *r = exec(c, "UPDATE stripe.customer SET name = $1 WHERE id = $2", 2, p);
	PQclear(r);
	r = exec(c, "SELECT name FROM stripe.customer WHERE id = $1", 1, p + 1);
	check(PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), name) == 0, "the transaction reads its own write",
	      PQerrorMessage(c));
	PQclear(r);
	check(command_ok(c, "ROLLBACK"), "ROLLBACK", PQerrorMessage(c));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: client join|create|update|delete|refuse|rollback ARGS\n");
		return 2;
	}
	PGconn *c = PQconnectdb(env("DATABASE_URL"));
	check(PQstatus(c) == CONNECTION_OK, "connects with the connection string", PQerrorMessage(c));
	if (PQstatus(c) != CONNECTION_OK)
		return 1;
	const char *cmd = argv[1];
	if (strcmp(cmd, "join") == 0)
		join(c);
	else if (strcmp(cmd, "create") == 0 && argc == 4)
		create(c, argv[2], argv[3]);
	else if (strcmp(cmd, "update") == 0 && argc == 4)
		update(c, argv[2], argv[3]);
	else if (strcmp(cmd, "delete") == 0 && argc == 3)
		delete(c, argv[2]);
	else if (strcmp(cmd, "refuse") == 0 && argc == 3)
		refuse(c, argv[2]);
	else if (strcmp(cmd, "rollback") == 0 && argc == 4)
		rollback(c, argv[2], argv[3]);
	else {
		fprintf(stderr, "client: bad arguments for %s\n", cmd);
		failed = 1;
	}
	PQfinish(c);
	return failed;
}
