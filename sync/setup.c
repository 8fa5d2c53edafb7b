/* setup: see setup.h. */
#include "sync/setup.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "sync/schema.h"

static void put(pgbuf *out, const char *s) { pgbuf_put(out, s, strlen(s)); }

static void putf(pgbuf *out, const char *fmt, const char *a, const char *b)
{
    char line[1024];
    snprintf(line, sizeof line, fmt, a, b);
    put(out, line);
}

/* "name" quoted for SQL, into buf. */
static const char *q(char *buf, size_t len, const char *name)
{
    pgbuf b;
    pgbuf_init(&b, len);
    schema_quote_ident(&b, name);
    pgbuf_put_byte(&b, 0);
    snprintf(buf, len, "%s", b.failed ? "\"?\"" : b.data);
    pgbuf_free(&b);
    return buf;
}

/* The value of keyword in a conninfo, or "" (never a password: callers ask for user and
 * dbname only). */
static void conninfo_get(const char *conninfo, const char *keyword, char *out, size_t len)
{
    out[0] = '\0';
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val)
            snprintf(out, len, "%s", o->val);
    PQconninfoFree(opts);
}

static void create_role(pgbuf *out, const char *role, bool login)
{
    char lit[256], id[256];
    pgbuf b;
    pgbuf_init(&b, sizeof lit);
    schema_quote_literal(&b, role);
    pgbuf_put_byte(&b, 0);
    snprintf(lit, sizeof lit, "%s", b.failed ? "''" : b.data);
    pgbuf_free(&b);
    putf(out, "DO $$ BEGIN\n  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN\n", lit, NULL);
    putf(out, "    CREATE ROLE %s %s;\n  END IF;\nEND $$;\n", q(id, sizeof id, role), login ? "LOGIN" : "NOLOGIN");
}

int setup_sql(pgbuf *out, const config *cfg, bool supabase, char *err, size_t errlen)
{
    const char *dsn = cfg->service_database ? cfg->service_database : cfg->database;
    char user[128], db[128], id[256], id2[256];
    conninfo_get(dsn, "user", user, sizeof user);
    conninfo_get(dsn, "dbname", db, sizeof db);
    if (!user[0]) {
        snprintf(err, errlen, "service_database names no user: apigres needs a role of its own (e.g. user=apigres)");
        return -1;
    }
    if (!db[0])
        snprintf(db, sizeof db, "%s", user);
    const char *reader = cfg->read_role;

    putf(out, "-- apigres setup for database %s: run once as a superuser (or a role with CREATEROLE),\n"
              "-- e.g. apigres setup --config apigres.json | psql \"postgres://admin@host/%s\"\n\n",
         db, db);
    putf(out, "-- 1. The service role. apigres logs in as %s (service_database) to create the synced\n"
              "--    schemas and tables, which it then owns and alone may write: a trigger refuses\n"
              "--    writes by any other role (clients write through apigres, which calls the API).\n",
         user, NULL);
    create_role(out, user, true);
    putf(out, "-- Set its password to the one in service_database, e.g. in psql: \\password %s\n", q(id, sizeof id, user),
         NULL);
    putf(out, "GRANT CONNECT, CREATE ON DATABASE %s TO %s;\n\n", q(id, sizeof id, db), q(id2, sizeof id2, user));
    putf(out, "-- 2. The read role (read_role): apigres grants it USAGE and SELECT on every synced schema\n"
              "--    and on apigres.sync_status. Grant it to the roles that read synced data:\n", NULL, NULL);
    create_role(out, reader, false);
    putf(out, "-- GRANT %s TO your_app_role;\n\n", q(id, sizeof id, reader), NULL);
    put(out, "-- 3. Writes: a role may change upstream records exactly when it may change the rows.\n"
             "--    Grant it INSERT, UPDATE, DELETE on the synced tables once they exist, and use row\n"
             "--    level security to narrow which rows, as for any table:\n");
    for (int i = 0; i < cfg->nsyncs; i++)
        putf(out, "-- GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO your_app_role;\n",
             q(id, sizeof id, cfg->syncs[i].schema), NULL);
    if (supabase) {
        put(out, "\n-- 4. Supabase. Its API roles read synced tables through the read role. Keep anon out\n"
                 "--    unless the data is public: every table a role can read is served by the Data API\n"
                 "--    once its schema is listed under Settings > API > Exposed schemas.\n");
        putf(out, "GRANT %s TO authenticated, service_role;\n", q(id, sizeof id, reader), NULL);
        putf(out, "GRANT %s TO postgres;  -- the dashboard's SQL editor and table view\n", q(id, sizeof id, reader), NULL);
        put(out, "--    Row level security: the tables' owner is the service role, which RLS does not\n"
                 "--    restrict, so the sync is unaffected. For each synced table the Data API exposes:\n");
        for (int i = 0; i < cfg->nsyncs; i++)
            putf(out, "--   ALTER TABLE %s.customer ENABLE ROW LEVEL SECURITY;  -- (as %s)\n",
                 q(id, sizeof id, cfg->syncs[i].schema), q(id2, sizeof id2, user));
        put(out, "--   CREATE POLICY read_own ON <table> FOR SELECT TO authenticated\n"
                 "--     USING (metadata->>'user_id' = auth.uid()::text);\n"
                 "--    Supabase's database URL needs sslmode=require in database and service_database.\n");
    }
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}
