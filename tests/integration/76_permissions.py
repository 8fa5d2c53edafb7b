"""The write path's permission model, tested adversarially (issue 7; shared/DESIGN.md §2).

Usage: 76_permissions.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES, TEST_TMP).
Starts its own apigres (log apigres-76.log, config apigres-76.json) with one Stripe sync
against the fake, database apigres_perm, waits for the backfill. Then two attackers:
  perm_noprivs  reads stripe.customer (the read role) but has no INSERT/UPDATE/DELETE on it;
  perm_rls      has INSERT, UPDATE and DELETE, but RLS policies block it: UPDATE only of rows
                whose description is not 'protected' and never to name 'forbidden', INSERT
                only of emails @allowed.example, DELETE of no row;
  perm_writer   has INSERT, UPDATE and DELETE and a policy admitting every row;
try every statement form that could reach the API or the mirror: PREPARE/EXECUTE, SQL and
PL/pgSQL functions and procedures (invoker and definer), DO, COPY FROM, EXPLAIN ANALYZE,
SET/set_config of marker-like settings, writable CTEs, SELECT FOR UPDATE then UPDATE, the
mirror function with forged JSON (also holding the advisory lock itself, and from inside the
write's own plan, where apigres's lock is held), triggers, INSTEAD OF views, rules,
multi-statement Queries, the extended protocol; through apigres and directly against
Postgres. A third attacker, perm_writer, may write every row as far as grants and policies
go: only the guard stands between it and the mirror, so its attempts run directly against
Postgres (through apigres its plain writes are legitimate API calls). Each attempt is one line asserting its exact outcome (SQLSTATE or command tag),
that the fake's creates/updates/deletes did not move, and that the mirror is unchanged.
A privileged role (perm_admin) is the positive control: its UPDATE does reach the API.
"""

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import psycopg

import itest
from itest import check, check_eq, free_port, wait_for

FAKE = sys.argv[1]
PG_PORT = int(os.environ["PG_PORT"])
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
KEY = "sk_test_76_permissions_secret_value"
DB = "apigres_perm"
PROXY_PORT = free_port()
NOPRIV, RLS, WRITER, ADMIN = "perm_noprivs", "perm_rls", "perm_writer", "perm_admin"


def api(method, path, json_body=None):
    data, headers = None, {"Authorization": "Basic " + base64.b64encode((KEY + ":").encode()).decode()}
    if json_body is not None:
        data, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
    req = urllib.request.Request(FAKE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def mutations():
    """Creates, updates and deletes the fake performed (GETs and /_fake/ calls excluded)."""
    s = api("GET", "/_fake/stats")
    return (s["creates"], s["updates"], s["deletes"])


def connect(port, user, **kw):
    return psycopg.connect(host="127.0.0.1", port=port, user=user, dbname=DB, autocommit=True,
                           connect_timeout=10, **kw)


def admin_sql(sql, db=DB):
    """As the superuser, directly; raises on error."""
    with psycopg.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname=db, autocommit=True) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else None


def snapshot():
    """The mirror's data (apigres's bookkeeping columns left out), as a digest and a row count."""
    rows = admin_sql("SELECT to_jsonb(t) - '_apigres_updated_at' - '_apigres_synced_at' FROM stripe.customer t "
                     "ORDER BY id")
    return (len(rows), hashlib.sha256(json.dumps([r[0] for r in rows], sort_keys=True).encode()).hexdigest())


def outcome_of(exc):
    if exc.sqlstate:
        return exc.sqlstate
    if "permission denied to set parameter" in str(exc):  # a FATAL at startup: no diag in psycopg
        return "42501"
    return "no SQLSTATE: %s" % exc


def run_steps(port, user, steps, ext=False, conn_kw=None):
    """Runs steps (SQL strings, or callables taking the connection) one after another on one
    new autocommit connection; stops at the first error. The outcome is the error's SQLSTATE,
    or the last statement's command tag. ext: every statement through Parse/Bind/Execute."""
    try:
        with connect(port, user, **(conn_kw or {})) as c:
            tag = None
            for step in steps:
                try:
                    if callable(step):
                        tag = step(c)
                    else:
                        cur = c.cursor()
                        cur.execute(step, prepare=True) if ext else cur.execute(step)
                        tag = cur.statusmessage
                        while cur.nextset():
                            tag = cur.statusmessage
                except psycopg.Error as e:
                    return outcome_of(e), str(e).strip()
            return tag, ""
    except psycopg.Error as e:
        return outcome_of(e), str(e).strip()


def attempt(desc, port, user, steps, expected, ext=False, conn_kw=None):
    """One ok/not ok line: the exact outcome, no API mutation, the mirror unchanged."""
    before, snap = mutations(), snapshot()
    got, msg = run_steps(port, user, steps, ext, conn_kw)
    time.sleep(0.05)  # a repair after a rollback is asynchronous: give one the chance to show
    after, snap_after = mutations(), snapshot()
    where = "apigres" if port == PROXY_PORT else "direct"
    proto = ", extended" if ext else ""
    detail = "outcome %r (expected %r) %s\nAPI mutations before %s after %s\nmirror changed: %s" % (
        got, expected, msg, before, after, snap != snap_after)
    return check("%s [%s, %s%s]: %s, no API call, mirror unchanged" % (desc, user, where, proto, expected),
                 got == expected and before == after and snap == snap_after, detail)


# ------------------------------------------------------------------ setup
CONFIG = os.path.join(TMP, "apigres-76.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=perm_apigres dbname=%s" % (PG_PORT, DB),
               "read_role": "perm_read",
               "syncs": [{"provider": "stripe", "api_base": FAKE, "credential": {"secret_key": KEY},
                          "collection_ids": ["stripe:customer"],
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "request_timeout": 2, "poll_interval": 0.3}]}, f)

admin_sql("DROP DATABASE IF EXISTS %s" % DB, "postgres")
for role in ("perm_apigres", NOPRIV, RLS, WRITER, ADMIN, "perm_read"):
    admin_sql("DROP ROLE IF EXISTS %s" % role, "postgres")
admin_sql("CREATE DATABASE %s" % DB, "postgres")
setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", DB,
                    "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
check("the setup SQL applies", r.returncode == 0, r.stderr)
for role in (NOPRIV, RLS, WRITER, ADMIN):
    admin_sql("CREATE ROLE %s LOGIN" % role, "postgres")
    admin_sql("GRANT perm_read TO %s" % role, "postgres")

api("POST", "/_fake/seed", json_body={"customers": 20, "products": 0, "coupons": 0})
log = open(os.path.join(TMP, "apigres-76.log"), "ab")
proc = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % PROXY_PORT,
                         "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug"],
                        stdout=subprocess.DEVNULL, stderr=log)
with open(os.path.join(TMP, "apigres-76.pid"), "w") as f:
    f.write(str(proc.pid))
check("the backfill finishes", wait_for("backfill", lambda: admin_sql(
    "SELECT count(*) FILTER (WHERE phase = 'incremental') FROM apigres.sync_state")[0][0] == 1, 60))

admin_sql("GRANT INSERT, UPDATE, DELETE ON stripe.customer TO %s, %s, %s" % (ADMIN, RLS, WRITER))
admin_sql("GRANT CREATE ON SCHEMA public TO %s, %s, %s, %s" % (NOPRIV, RLS, WRITER, ADMIN))
admin_sql("ALTER TABLE stripe.customer ENABLE ROW LEVEL SECURITY; "
          "CREATE POLICY perm_read_all ON stripe.customer FOR SELECT USING (true); "
          "CREATE POLICY perm_admin_all ON stripe.customer FOR ALL TO perm_admin, perm_writer USING (true) WITH CHECK (true); "
          "CREATE POLICY perm_rls_update ON stripe.customer FOR UPDATE TO perm_rls "
          "  USING (coalesce(description, '') <> 'protected') WITH CHECK (coalesce(name, '') <> 'forbidden'); "
          "CREATE POLICY perm_rls_insert ON stripe.customer FOR INSERT TO perm_rls "
          "  WITH CHECK (email LIKE '%@allowed.example'); "
          "CREATE POLICY perm_rls_delete ON stripe.customer FOR DELETE TO perm_rls USING (false)")

ids = [r[0] for r in admin_sql("SELECT id FROM stripe.customer ORDER BY id")]
check("20 customers mirrored", len(ids) == 20, ids)
T, P, U = ids[0], ids[1], ids[6]  # any row (perm_noprivs' target), the protected row, an unprotected one


def proxy_as(user, sql):
    return run_steps(PROXY_PORT, user, [sql])


# --- positive control: a privileged role's UPDATE through apigres calls the API
n = mutations()
got = proxy_as(ADMIN, "UPDATE stripe.customer SET description = 'protected' WHERE id = '%s'" % P)
check_eq("positive control: perm_admin's UPDATE through apigres answers UPDATE 1", ("UPDATE 1", ""), got)
check_eq("... and is one API update (the counters work)", (n[0], n[1] + 1, n[2]), mutations())
check_eq("... and reached the mirror", [("protected",)],
         admin_sql("SELECT description FROM stripe.customer WHERE id = '%s'" % P))
n = mutations()
got = proxy_as(RLS, "UPDATE stripe.customer SET description = 'rls ok' WHERE id = '%s'" % U)
check_eq("perm_rls may update an unprotected row through apigres (the policy, not a grant, blocks it)",
         (("UPDATE 1", ""), (n[0], n[1] + 1, n[2])), (got, mutations()))

# --- the attacker's tools, created by the attackers themselves (and by perm_admin, privileged)
# perm_forge waits (up to 3 s) until apigres's service connection holds the mirror lock for
# this backend, then calls the mirror function with a forged record.
FORGE = """
CREATE FUNCTION public.%(role)s_forge(victim text, tag text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE i int := 0;
BEGIN
  WHILE i < 60 AND NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted
      AND classid::bigint = 1634757991 AND objid::bigint = pg_backend_pid() AND pid <> pg_backend_pid()) LOOP
    PERFORM pg_sleep(0.05);
    i := i + 1;
  END LOOP;
  -- a forged record (description kept, so that the protected row stays protected)
  PERFORM apigres."mirror stripe.customer"(jsonb_build_array(jsonb_build_object('id', victim,
      'email', 'forged-' || tag || '@evil.example', 'name', 'forged', 'description', 'protected')), 1e12, '{}');
  RETURN 'forged';
END $f$;
"""
for role in (NOPRIV, RLS, WRITER):
    admin_sql("SET ROLE %s; %s" % (role, FORGE % {"role": role}))
    admin_sql("""SET ROLE %(r)s;
CREATE FUNCTION public.%(r)s_sqlf(victim text) RETURNS bigint LANGUAGE sql AS $f$
  UPDATE stripe.customer SET email = 'sqlf@evil.example' WHERE id = victim RETURNING 1 $f$;
CREATE FUNCTION public.%(r)s_plf(victim text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN UPDATE stripe.customer SET email = 'plf@evil.example' WHERE id = victim; RETURN 'done'; END $f$;
CREATE PROCEDURE public.%(r)s_proc(victim text) LANGUAGE plpgsql AS $f$
BEGIN UPDATE stripe.customer SET email = 'proc@evil.example' WHERE id = victim; END $f$;
CREATE PROCEDURE public.%(r)s_sqlproc(victim text) LANGUAGE sql AS $f$
  DELETE FROM stripe.customer WHERE id = victim $f$;
CREATE TABLE public.%(r)s_app (victim text);
CREATE FUNCTION public.%(r)s_trg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN UPDATE stripe.customer SET email = 'trigger@evil.example' WHERE id = NEW.victim; RETURN NEW; END $f$;
CREATE TRIGGER %(r)s_app_t AFTER INSERT ON public.%(r)s_app FOR EACH ROW EXECUTE FUNCTION public.%(r)s_trg();
CREATE TABLE public.%(r)s_ruled (victim text);
CREATE RULE %(r)s_rule AS ON INSERT TO public.%(r)s_ruled DO INSTEAD
  UPDATE stripe.customer SET email = 'rule@evil.example' WHERE id = NEW.victim;
CREATE VIEW public.%(r)s_view AS SELECT id, email FROM stripe.customer;
CREATE FUNCTION public.%(r)s_view_trg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN UPDATE stripe.customer SET email = NEW.email WHERE id = OLD.id; RETURN NEW; END $f$;
CREATE TRIGGER %(r)s_view_t INSTEAD OF UPDATE ON public.%(r)s_view FOR EACH ROW EXECUTE FUNCTION public.%(r)s_view_trg();
CREATE VIEW public.%(r)s_plainview AS SELECT id, email FROM stripe.customer;
CREATE TABLE public.%(r)s_log (x int);
""" % {"r": role})
# SECURITY DEFINER, created by privileged owners: perm_admin (UPDATE granted, RLS admits it)
# and the superuser; EXECUTE is PUBLIC's by default
admin_sql("""SET ROLE perm_admin;
CREATE FUNCTION public.admin_definer(victim text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $f$
BEGIN UPDATE stripe.customer SET email = 'definer@evil.example' WHERE id = victim; RETURN 'done'; END $f$;
CREATE PROCEDURE public.admin_definer_proc(victim text) LANGUAGE sql SECURITY DEFINER AS $f$
  UPDATE stripe.customer SET email = 'definer@evil.example' WHERE id = victim $f$;""")
admin_sql("""CREATE FUNCTION public.super_definer(victim text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $f$
BEGIN UPDATE stripe.customer SET email = 'super@evil.example' WHERE id = victim; RETURN 'done'; END $f$;""")


def forged_json(victim):
    return "'[{\"id\": \"%s\", \"email\": \"forged@evil.example\"}]'" % victim


def copy_from(row):
    def go(c):
        with c.cursor().copy("COPY stripe.customer (id, email) FROM STDIN") as cp:
            cp.write_row(row)
        return "COPY"
    return go


def E(noprivs_proxy, noprivs_direct, rls_proxy, rls_direct, writer_direct="42501"):
    """Expected outcomes: {role: (through apigres, directly)}, the same in both protocols."""
    return {NOPRIV: (noprivs_proxy, noprivs_direct), RLS: (rls_proxy, rls_direct), WRITER: (None, writer_direct)}


ALL_42501 = E("42501", "42501", "42501", "42501")


def hidden(tag):
    """perm_rls's outcome when RLS hides the row from a statement apigres relays: a write of
    no row, which the guard lets pass (it refuses each row written, at COMMIT)."""
    return E("42501", "42501", tag, tag)


def cases(role, t, u, tag):
    """(label, steps, expected, connection keywords) for one attacker: t is the row it must
    not write (any row for perm_noprivs, the protected one for perm_rls); u a row perm_rls's
    UPDATE policy admits (one per run, as a bug could delete it); tag makes forged values
    differ between runs. 42501 is the database's permission denied, the guard trigger's or
    the mirror function's refusal; 0A000 apigres's refusal of a form it does not carry out
    (or Postgres's of COPY FROM under RLS); a command tag is the answer when RLS hides the
    row: a write of no row changes nothing, and the guard, a deferred trigger on each row
    written, has nothing to refuse. Directly, and for statements apigres relays (functions,
    triggers, views), each row written by anyone but the owner makes the COMMIT fail with the
    guard's 42501 (perm_writer's attempts, perm_admin's definer functions)."""
    w = "UPDATE stripe.customer SET email = 'pwned@evil.example' WHERE id = '%s'" % t
    d = "DELETE FROM stripe.customer WHERE id = '%s'" % t
    r = role
    up0 = hidden("UPDATE 0")
    refused = E("0A000", "42501", "0A000", "UPDATE 0")
    mirror_call = "SELECT apigres.\"mirror stripe.customer\"(%s, 1e12, '{}')" % forged_json(t)
    return [
        ("a plain UPDATE", [w], up0, None),
        ("a plain DELETE", [d], hidden("DELETE 0"), None),
        ("PREPARE then EXECUTE of an UPDATE (two Queries)", ["PREPARE p AS " + w, "EXECUTE p"], refused, None),
        ("PREPARE and EXECUTE in one Query", ["PREPARE p AS %s; EXECUTE p" % w], refused, None),
        ("PREPARE with a parameter, then EXECUTE", ["PREPARE p(text) AS UPDATE stripe.customer SET email = $1 "
                                                     "WHERE id = '%s'" % t, "EXECUTE p('prep@evil.example')"],
         refused, None),
        ("PREPARE of a DELETE, then EXECUTE", ["PREPARE p AS " + d, "EXECUTE p"],
         E("0A000", "42501", "0A000", "DELETE 0"), None),
        ("a SQL function (invoker) doing the UPDATE", ["SELECT public.%s_sqlf('%s')" % (r, t)],
         hidden("SELECT 1"), None),
        ("a PL/pgSQL function (invoker) doing the UPDATE", ["SELECT public.%s_plf('%s')" % (r, t)],
         hidden("SELECT 1"), None),
        ("a PL/pgSQL procedure (invoker) doing the UPDATE", ["CALL public.%s_proc('%s')" % (r, t)],
         hidden("CALL"), None),
        ("a SQL procedure (invoker) doing a DELETE", ["CALL public.%s_sqlproc('%s')" % (r, t)],
         hidden("CALL"), None),
        ("a SECURITY DEFINER function of perm_admin doing the UPDATE (the guard refuses)",
         ["SELECT public.admin_definer('%s')" % t], ALL_42501, None),
        ("a SECURITY DEFINER procedure of perm_admin", ["CALL public.admin_definer_proc('%s')" % t], ALL_42501, None),
        ("a SECURITY DEFINER function of the superuser", ["SELECT public.super_definer('%s')" % t], ALL_42501, None),
        ("a DO block doing the UPDATE", ["DO $$BEGIN %s; END$$" % w], E("0A000", "42501", "0A000", "DO"), None),
        ("a DO block doing EXECUTE of the UPDATE as dynamic SQL",
         ["DO $$BEGIN EXECUTE %s; END$$" % ("'" + w.replace("'", "''") + "'")],
         E("0A000", "42501", "0A000", "DO"), None),
        ("EXPLAIN ANALYZE UPDATE", ["EXPLAIN ANALYZE " + w], E("0A000", "42501", "0A000", "EXPLAIN"), None),
        ("EXPLAIN (ANALYZE, FORMAT JSON) DELETE", ["EXPLAIN (ANALYZE, FORMAT JSON) " + d],
         E("0A000", "42501", "0A000", "EXPLAIN"), None),
        ("SET apigres.x = 'on', then UPDATE", ["SET apigres.x = 'on'", w], up0, None),
        ("SET apigres.proxy, apigres.write and apigres.mirror, then UPDATE",
         ["SET apigres.proxy = 'true'", "SET apigres.write = 'true'", "SET apigres.mirror = 'true'", w], up0, None),
        ("set_config('apigres.write', 'true', false), then UPDATE",
         ["SELECT set_config('apigres.write', 'true', false)", w], up0, None),
        ("set_config and the UPDATE in one Query", ["SELECT set_config('apigres.x', '1', false); " + w], up0, None),
        ("SET session_replication_role = replica (superuser only)", ["SET session_replication_role = replica", w],
         ALL_42501, None),
        ("set_config('session_replication_role', 'replica', false)",
         ["SELECT set_config('session_replication_role', 'replica', false)", w], ALL_42501, None),
        ("SET application_name = 'apigres', then UPDATE", ["SET application_name = 'apigres'", w], up0, None),
        ("application_name 'apigres' and -c apigres.proxy=on at startup, then UPDATE", [w], up0,
         {"application_name": "apigres", "options": "-c apigres.proxy=on -c apigres.write=on"}),
        ("-c session_replication_role=replica at startup", [w], ALL_42501,
         {"options": "-c session_replication_role=replica"}),
        ("SET ROLE to the service role", ["SET ROLE perm_apigres", w], ALL_42501, None),
        ("SET SESSION AUTHORIZATION of the service role", ["SET SESSION AUTHORIZATION perm_apigres", w],
         ALL_42501, None),
        ("a writable CTE (WITH x AS (UPDATE ...) SELECT)", ["WITH x AS (%s RETURNING id) SELECT * FROM x" % w],
         E("0A000", "42501", "0A000", "SELECT 0"), None),
        ("a writable CTE with DELETE", ["WITH x AS (%s RETURNING id) SELECT count(*) FROM x" % d],
         E("0A000", "42501", "0A000", "SELECT 1"), None),
        ("SELECT ... FOR UPDATE, then UPDATE, in a transaction",
         ["BEGIN", "SELECT id FROM stripe.customer WHERE id = '%s' FOR UPDATE" % t, w, "COMMIT"],
         hidden("COMMIT"), None),
        ("BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT in one Query",
         ["BEGIN; SELECT id FROM stripe.customer WHERE id = '%s' FOR UPDATE; %s; COMMIT" % (t, w)],
         hidden("COMMIT"), None),
        ("the mirror function with forged JSON", [mirror_call], ALL_42501, None),
        ("the mirror function deleting a record",
         ["SELECT apigres.\"mirror stripe.customer\"('[]', 1e12, ARRAY['%s'])" % t], ALL_42501, None),
        ("pg_advisory_lock(1634757991, pg_backend_pid()) taken by itself, then the mirror function",
         ["SELECT pg_advisory_lock(1634757991, pg_backend_pid())", mirror_call], ALL_42501, None),
        ("the advisory lock and the mirror call in one Query",
         ["SELECT pg_advisory_lock(1634757991, pg_backend_pid()); " + mirror_call], ALL_42501, None),
        ("the forging function on its own (no write of apigres's under way)",
         ["SELECT public.%s_forge('%s', '%s')" % (r, t, tag)], ALL_42501, None),
        ("an UPDATE whose plan (WHERE) runs the forging function while apigres's lock is held",
         ["UPDATE stripe.customer SET name = 'x' WHERE id = '%s' AND public.%s_forge('%s', '%s') IS NULL"
          % (u, r, t, tag)], ALL_42501, None),
        ("a DELETE whose plan runs the forging function",  # directly, the DELETE policy hides u first
         ["DELETE FROM stripe.customer WHERE id = '%s' AND public.%s_forge('%s', '%s') IS NULL" % (u, r, t, tag)],
         E("42501", "42501", "42501", "DELETE 0"), None),
        ("an INSERT ... SELECT whose plan runs the forging function",
         ["INSERT INTO stripe.customer (email, name) SELECT 'a@allowed.example', 'x' "
          "WHERE public.%s_forge('%s', '%s') IS NULL" % (r, t, tag)], ALL_42501, None),
        ("a trigger on an application table writing the synced table",
         ["INSERT INTO public.%s_app VALUES ('%s')" % (r, t)], hidden("INSERT 0 1"), None),
        ("a rule on an application table writing the synced table",
         ["INSERT INTO public.%s_ruled VALUES ('%s')" % (r, t)], hidden("INSERT 0 0"), None),
        ("a view over the synced table with an INSTEAD OF trigger",
         ["UPDATE public.%s_view SET email = 'view@evil.example' WHERE id = '%s'" % (r, t)],
         hidden("UPDATE 1"), None),
        ("an auto-updatable view over the synced table",
         ["UPDATE public.%s_plainview SET email = 'view@evil.example' WHERE id = '%s'" % (r, t)],
         hidden("UPDATE 0"), None),
        ("CREATE RULE on the synced table", ["CREATE RULE evil AS ON UPDATE TO stripe.customer DO ALSO NOTIFY evil"],
         E("0A000", "42501", "0A000", "42501"), None),
        ("CREATE TRIGGER on the synced table",
         ["CREATE TRIGGER evil BEFORE UPDATE ON stripe.customer FOR EACH ROW EXECUTE FUNCTION public.%s_trg()" % r],
         E("0A000", "42501", "0A000", "42501"), None),
        ("a permitted statement, then the UPDATE, in one Query", ["INSERT INTO public.%s_log VALUES (1); %s" % (r, w)],
         up0, None),
        ("the UPDATE, then a permitted statement, in one Query", ["%s; SELECT 1" % w], hidden("SELECT 1"), None),
        ("BEGIN; SELECT 1; UPDATE; COMMIT in one Query", ["BEGIN; SELECT 1; %s; COMMIT" % w], hidden("COMMIT"), None),
        ("an application write and a mirror call in one Query",
         ["INSERT INTO public.%s_log VALUES (2); %s" % (r, mirror_call)], ALL_42501, None),
        ("COPY stripe.customer FROM STDIN of a new id", [copy_from(("cus_copied", "copy@evil.example"))],
         E("0A000", "42501", "0A000", "0A000", "0A000"), None),
        ("COPY stripe.customer FROM STDIN of an existing id", [copy_from((t, "copy@evil.example"))],
         E("0A000", "42501", "0A000", "0A000", "0A000"), None),
        # RLS beyond the UPDATE policy's USING: WITH CHECK, the INSERT policy, the DELETE policy
        ("UPDATE of a row the UPDATE policy admits, to a value its WITH CHECK forbids",
         ["UPDATE stripe.customer SET name = 'forbidden' WHERE id = '%s'" % u], ALL_42501, None),
        ("INSERT of a row the INSERT policy's WITH CHECK forbids",
         ["INSERT INTO stripe.customer (email, name) VALUES ('new-%s@evil.example', 'evil')" % tag],
         E("42501", "42501", "42501", "42501", "23502"), None),  # perm_writer: no id, the API gives it
        ("DELETE of a row the DELETE policy hides (the UPDATE policy admits it)",
         ["DELETE FROM stripe.customer WHERE id = '%s'" % u], hidden("DELETE 0"), None),
    ]


def several_statements(steps):
    return any(isinstance(s, str) and ";" in s.replace("; END$$", "") for s in steps)


RUNS = ((PROXY_PORT, False), (PROXY_PORT, True), (PG_PORT, False), (PG_PORT, True))
U_POOL = ids[2:6]  # perm_rls's updatable rows, one per run
for role, t in ((NOPRIV, T), (RLS, P), (WRITER, T)):
    labels = [c[0] for c in cases(role, t, "", "")]
    for i, label in enumerate(labels):
        for k, (port, ext) in enumerate(RUNS):
            if role == WRITER and port == PROXY_PORT:
                continue  # through apigres its writes are legitimate: only directly is it an attacker
            label, steps, exp, conn_kw = cases(role, t, U_POOL[k], "%s%d%d" % (role[5:], i, k))[i]
            if ext and (several_statements(steps) or any(callable(s) for s in steps)):
                continue  # one statement per Parse; COPY runs in the simple protocol
            attempt(label, port, role, steps, exp[role][0 if port == PROXY_PORT else 1], ext, conn_kw)

# --- RETURNING runs the client's expressions only once apigres's lock is released: perm_writer
# may delete a row of its own through apigres, but its RETURNING cannot forge another row
for ext in (False, True):
    mine = proxy_as(WRITER, "INSERT INTO stripe.customer (email) VALUES ('mine@writer.example') RETURNING id")
    got, msg = run_steps(PROXY_PORT, WRITER, [
        "DELETE FROM stripe.customer WHERE email = 'mine@writer.example' "
        "RETURNING public.%s_forge('%s', 'returning')" % (WRITER, T)], ext)
    check("a DELETE whose RETURNING runs the forging function [%s]: the mirror function refuses it (%s)"
          % ("extended" if ext else "simple", msg[:120]), got == "42501" and mine[0] == "INSERT 0 1", (got, msg, mine))
    check_eq("... the row it forged keeps the API's values", [(0,)],
             admin_sql("SELECT count(*) FROM stripe.customer WHERE email LIKE 'forged-%%' AND id = '%s'" % T))
    check_eq("... and the deleted row, gone upstream, left the mirror", [(0,)],
             admin_sql("SELECT count(*) FROM stripe.customer WHERE email = 'mine@writer.example'"))

check_eq("the protected row is still protected", [("protected",)],
         admin_sql("SELECT description FROM stripe.customer WHERE id = '%s'" % P))

proc.send_signal(signal.SIGTERM)
check("apigres stops on SIGTERM", proc.wait(timeout=30) == 0)
os.unlink(os.path.join(TMP, "apigres-76.pid"))  # stopped: the shell's fallback kill has nothing to do
with open(os.path.join(TMP, "apigres-76.log"), errors="replace") as f:
    check("the API key appears in no log", KEY not in f.read())
sys.exit(itest.status())
