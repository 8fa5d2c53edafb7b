"""The write path through apigres with psql: SQL on stripe.* becomes Stripe API calls.

Usage: 75_write.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES, TEST_TMP).
Starts its own apigres (log apigres-75.log) with one Stripe sync against the fake, waits for
the backfill, then writes through the proxy as application roles and compares the fake,
the mirror and what psql printed.
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import itest
import psycopg
from itest import check, check_eq, free_port, wait_for

FAKE = sys.argv[1]
PG_PORT = os.environ["PG_PORT"]
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
KEY = "sk_test_75_write_secret_value"
DB = "apigres_write"


def api(method, path, form=None, json_body=None):
    data, headers = None, {"Authorization": "Basic " + base64.b64encode((KEY + ":").encode()).decode()}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    if json_body is not None:
        data, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
    req = urllib.request.Request(FAKE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)




PROXY_PORT = free_port()


def run_psql(sql, port, user, db=DB):
    """psql's whole output (stdout and stderr, with SQLSTATEs) and its exit status."""
    r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db,
                        "-v", "VERBOSITY=verbose", "-c", sql], capture_output=True, text=True, timeout=60)
    return (r.stdout + r.stderr).strip(), r.returncode


def proxy(sql, user="app_writer"):
    return run_psql(sql, PROXY_PORT, user)[0]


def direct(sql, user="postgres"):
    return run_psql(sql, PG_PORT, user)[0]


def mirror(cid, field="email"):
    return direct("SELECT %s FROM stripe.customer WHERE id = '%s'" % (field, cid))


def stats():
    return api("GET", "/_fake/stats")


def mutations():
    """Creates, updates and deletes the fake performed (the sync worker's polling excluded)."""
    s = stats()
    return (s["creates"], s["updates"], s["deletes"], s["statuses"].get("400", 0))


CONFIG = os.path.join(TMP, "apigres-75.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=apigres_w75 dbname=%s" % (PG_PORT, DB),
               "read_role": "w75_reader",
               "syncs": [{"provider": "stripe", "api_base": FAKE, "credential": {"secret_key": KEY},
                          "collection_ids": ["stripe:customer", "stripe:product"],
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "request_timeout": 1, "poll_interval": 0.3}]}, f)

# --- the database as README says, and two application roles
direct("DROP DATABASE IF EXISTS %s" % DB, "postgres")
for stmt in ("DROP ROLE IF EXISTS apigres_w75", "DROP ROLE IF EXISTS app_writer", "DROP ROLE IF EXISTS app_reader",
             "DROP ROLE IF EXISTS w75_reader", "CREATE DATABASE %s" % DB):
    run_psql(stmt, PG_PORT, "postgres", "postgres")
setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                    "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
check("the setup SQL applies", r.returncode == 0, r.stderr)
for stmt in ("CREATE ROLE app_writer LOGIN", "CREATE ROLE app_reader LOGIN",
             "GRANT w75_reader TO app_writer, app_reader"):
    run_psql(stmt, PG_PORT, "postgres", "postgres")

api("POST", "/_fake/seed", json_body={"customers": 300, "products": 5, "coupons": 0})
log = open(os.path.join(TMP, "apigres-75.log"), "ab")
proc = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % PROXY_PORT,
                         "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug"],
                        stdout=subprocess.DEVNULL, stderr=log)




check("the backfill finishes", wait_for("backfill", lambda: direct(
    "SELECT count(*) FILTER (WHERE phase = 'incremental') FROM apigres.sync_state") == "2", 60))
# the application's grants: ordinary GRANTs decide who may write through apigres
direct("GRANT INSERT, UPDATE, DELETE ON stripe.customer TO app_writer")
direct("CREATE TABLE public.orders (id serial PRIMARY KEY, customer_id text, note text)")
direct("GRANT ALL ON public.orders, public.orders_id_seq TO app_writer, app_reader")

ids = direct("SELECT id FROM stripe.customer ORDER BY id").split("\n")
check("300 customers mirrored", len(ids) == 300, len(ids))
c1, c2, c3 = ids[0], ids[1], ids[2]

# --- UPDATE
PG_LOG = os.path.join(os.environ["PG_DIR"], "postgres.log")
log_start = os.path.getsize(PG_LOG)
out = proxy("UPDATE stripe.customer SET email = 'new@example.com' WHERE id = '%s'" % c1)
check_eq("UPDATE through apigres answers UPDATE 1", "UPDATE 1", out)
check_eq("the API has the new email", "new@example.com", api("GET", "/v1/customers/" + c1).get("email"))
check_eq("the mirror has the API's record", "new@example.com", mirror(c1))
out = proxy("UPDATE stripe.customer SET name = upper('ann ' || id) WHERE id IN ('%s', '%s') RETURNING id, name" % (c2, c3))
check_eq("UPDATE ... RETURNING gives the mirrored rows and the tag",
         "%s|ANN %s\n%s|ANN %s\nUPDATE 2" % (c2, c2.upper(), c3, c3.upper()), out)

# --- INSERT
out = proxy("INSERT INTO stripe.customer (email, name) VALUES ('a@b.co', 'Ann') RETURNING id")
new_id = out.split("\n")[0]
check("INSERT ... RETURNING id gives the API's id (%s)" % out,
      new_id.startswith("cus_") and out.endswith("INSERT 0 1"), out)
check_eq("the API created it", "Ann", api("GET", "/v1/customers/" + new_id).get("name"))
check_eq("the mirror has it", "a@b.co", mirror(new_id))
out = proxy("INSERT INTO stripe.customer (email, name, metadata) VALUES ('m1@b.co', 'M1', '{\"plan\": \"pro\"}'), "
            "('m2@b.co', 'M2', NULL)")
check_eq("multi-row INSERT", "INSERT 0 2", out)
check_eq("metadata reached the API as an object", "pro",
         direct("SELECT metadata->>'plan' FROM stripe.customer WHERE email = 'm1@b.co'"))

# --- DELETE
out = proxy("DELETE FROM stripe.customer WHERE id = '%s' RETURNING email" % new_id)
check_eq("DELETE ... RETURNING", "a@b.co\nDELETE 1", out)
gone = api("GET", "/v1/customers/" + new_id)
check("the API deleted it", gone.get("deleted") is True or gone.get("error", {}).get("code") == "resource_missing", gone)
check_eq("the mirror no longer has it", "", mirror(new_id))
with open(PG_LOG, errors="replace") as f:
    f.seek(log_start)
    server_log = f.read()
check("writes that succeed leave no ERROR in the server's log (the probe ends without one), nor the "
      "values written", "ERROR" not in server_log and "new@example.com" not in server_log, server_log[-2000:])

# --- the API refuses
out = proxy("UPDATE stripe.customer SET email = 'not-an-email' WHERE id = '%s'" % c1)
check("an invalid email is the API's error with a fitting SQLSTATE: %s" % out.split("\n")[0],
      "Error updating customer %s: Invalid email address: not-an-email" % c1 in out and "ERROR:  23514" in out
      and "email_invalid" in out, out)
check_eq("the mirror keeps the upstream value", "new@example.com", mirror(c1))

# --- privileges: the database decides
n = mutations()
out = proxy("UPDATE stripe.customer SET email = 'r@example.com' WHERE id = '%s'" % c1, user="app_reader")
check("a role without UPDATE gets the database's own 42501", "42501" in out and "permission denied" in out, out)
out = proxy("DELETE FROM stripe.customer WHERE id = '%s'" % c1, user="app_reader")
check("... and without DELETE", "42501" in out, out)
out = proxy("INSERT INTO stripe.customer (email) VALUES ('x@y.co')", user="app_reader")
check("... and without INSERT", "42501" in out, out)
check_eq("no API call was made for them", n, mutations())

# --- guard, refusals
out = proxy("UPDATE stripe.customer SET name = 'everyone'")
check("more than 100 rows is refused with 54000 before any call", "54000" in out, out)
check_eq("... and made no API call", n, mutations())
for sql, state in (("TRUNCATE stripe.customer", "0A000"),
                   ("INSERT INTO stripe.customer (id, email) VALUES ('cus_x', 'a@b.co') ON CONFLICT (id) DO NOTHING", "0A000"),
                   ("UPDATE stripe.customer SET created = now() WHERE id = '%s'" % c1, "428C9"),
                   # the search_path ("$user", public) has no customer table: the database says so
                   ("UPDATE customer SET email = 'q@q.co'", "42P01")):
    out = proxy(sql)
    check("refused with %s: %s" % (state, sql[:60]), state in out, out)
check_eq("... and none made an API call", n, mutations())

# --- joins with application tables
direct("INSERT INTO public.orders (customer_id, note) VALUES ('%s', 'vip'), ('%s', 'vip')" % (c2, c3))
out = proxy("UPDATE stripe.customer c SET description = 'VIP customer' FROM public.orders o "
            "WHERE o.customer_id = c.id AND o.note = 'vip'")
check_eq("UPDATE ... FROM an application table", "UPDATE 2", out)
check_eq("both got it upstream", ["VIP customer"] * 2,
         [api("GET", "/v1/customers/" + c).get("description") for c in (c2, c3)])

n = mutations()
out = proxy("UPDATE stripe.customer c SET description = 'joined twice' FROM (VALUES ('%s'), ('%s')) v(x) "
            "WHERE c.id = v.x" % (c2, c2))
check_eq("a target row joined twice is updated once, as by the database", "UPDATE 1", out)
check_eq("... with one API call", n[1] + 1, mutations()[1])

# --- RETURNING that reads the joined tables, as the database would answer it
out = proxy("UPDATE stripe.customer c SET description = 'for ' || o.note FROM public.orders o "
            "WHERE o.customer_id = c.id AND o.note = 'vip' AND c.id = '%s' "
            "RETURNING c.id, o.note, c.description, o.customer_id = c.id" % c2)
check_eq("UPDATE ... FROM ... RETURNING reads the joined row and the mirrored one",
         "%s|vip|for vip|t\nUPDATE 1" % c2, out)
direct("CREATE TABLE public.tags (customer_id text, tag text)")
direct("GRANT SELECT ON public.tags TO app_writer")
direct("INSERT INTO public.tags VALUES ('%s', 'gold')" % c3)
out = proxy("UPDATE stripe.customer c SET description = 'tagged' FROM public.orders o(ono, cid, what) "
            "LEFT JOIN public.tags t ON t.customer_id = o.cid "
            "WHERE o.cid = c.id AND o.what = 'vip' AND c.id IN ('%s', '%s') "
            "RETURNING c.id, what, coalesce(t.tag, '-'), t IS NULL" % (c2, c3))
check_eq("... through a LEFT JOIN and the FROM alias's column names (a row without a tag is NULL)",
         sorted(["%s|vip|-|t" % c2, "%s|vip|gold|f" % c3]), sorted(out.split("\n")[:2]))
check("... answered UPDATE 2", out.endswith("UPDATE 2"), out)
made = proxy("INSERT INTO stripe.customer (email, name) VALUES ('gone1@example.com', 'Gone') RETURNING id").split("\n")[0]
direct("INSERT INTO public.orders (customer_id, note) VALUES ('%s', 'closing')" % made)
out = proxy("DELETE FROM stripe.customer c USING public.orders o WHERE o.customer_id = c.id "
            "AND o.note = 'closing' RETURNING c.email, c.name, o.note, c.id = o.customer_id")
check_eq("DELETE ... USING ... RETURNING reads the deleted row and the joined one",
         "gone1@example.com|Gone|closing|t\nDELETE 1", out)
check_eq("... and the row left the mirror", "", mirror(made))
made = proxy("INSERT INTO stripe.customer (email) VALUES ('gone2@example.com') RETURNING id").split("\n")[0]
direct("INSERT INTO public.orders (customer_id, note) VALUES ('%s', 'closing too')" % made)
out = proxy('DELETE FROM "stripe"."customer" USING public.orders WHERE "stripe"."customer"."id" = \'%s\' '
            'AND orders.customer_id = customer.id RETURNING "stripe"."customer"."id", "stripe"."customer"."email", '
            'public.orders.note' % made)
check_eq("... with schema-qualified columns, as Prisma writes RETURNING",
         "%s|gone2@example.com|closing too\nDELETE 1" % made, out)
out = proxy("DELETE FROM stripe.customer c USING public.orders o WHERE o.customer_id = c.id "
            "AND o.note = 'nobody' RETURNING c.*, o.note")
check_eq("... a DELETE that finds nothing returns nothing", "DELETE 0", out)

# RETURNING the database would refuse is refused before any API call
n = mutations()
before = mirror(c2, "description")
for ret, state in (("nosuchcol", "42703"), ("count(*)", "42803"), ("max(name)", "0A000"),
                   ("row_number() OVER ()", "42P20"), ("v.email", "42P01"), ("o.nosuch", "42703")):
    out = proxy("UPDATE stripe.customer c SET description = 'never' FROM public.orders o "
                "WHERE o.customer_id = c.id AND c.id = '%s' RETURNING %s" % (c2, ret))
    check("RETURNING %s is refused with %s" % (ret, state), "ERROR:  %s" % state in out, out)
out = proxy("INSERT INTO stripe.customer (email) VALUES ('never@example.com') RETURNING nosuchcol")
check("INSERT ... RETURNING nosuchcol is refused with 42703", "ERROR:  42703" in out, out)
out = proxy("DELETE FROM stripe.customer WHERE id = '%s' RETURNING xmin" % c2)
check("DELETE ... RETURNING a system column of the deleted row is refused (0A000)", "ERROR:  0A000" in out, out)
for sql in ("UPDATE stripe.customer c SET description = 'never' FROM (VALUES ('%s', 'x')) v(id, note) "
            "WHERE v.id = c.id RETURNING note" % c2,
            "UPDATE stripe.customer c SET description = 'never' FROM (VALUES ('%s', 'x')) v(id, note) "
            "WHERE v.id = c.id RETURNING *" % c2):
    out = proxy(sql)
    check("RETURNING that reads a subquery in FROM is refused (0A000): %s" % sql[-14:], "ERROR:  0A000" in out, out)
check_eq("... none of them called the API", n, mutations())
check_eq("... nor changed the mirror", before, mirror(c2, "description"))
out = proxy("UPDATE stripe.customer c SET description = 'kept' FROM (VALUES ('%s')) v(id) "
            "WHERE v.id = c.id RETURNING c.id, description" % c2)
check_eq("a subquery in FROM with RETURNING of the target's own columns works",
         "%s|kept\nUPDATE 1" % c2, out)
# a RETURNING expression that fails only on the API's record fails after the call, like any
# later statement would: the mirror keeps what the API applied
out = proxy("UPDATE stripe.customer SET description = 'zero' WHERE id = '%s' RETURNING 1 / length(description) / 0" % c2)
check("RETURNING that divides by zero: the database's 22012, DETAIL saying what the API applied",
      "ERROR:  22012" in out and "1 of 1 rows were applied upstream and mirrored before RETURNING failed." in out, out)
check_eq("... the API applied the UPDATE and the mirror has it",
         ("zero", "zero"), (api("GET", "/v1/customers/" + c2).get("description"), mirror(c2, "description")))

out = proxy("INSERT INTO stripe.customer (id, email) VALUES ('cus_mine', 'a@b.co')")
check("the id of a new record is the API's to choose (428C9)", "428C9" in out, out)
out = proxy("INSERT INTO stripe.customer (id, email, name, description) VALUES "
            "(DEFAULT, 'dflt1@example.com', DEFAULT, 'd1'), (DEFAULT, 'dflt2@example.com', 'Named', DEFAULT) "
            "RETURNING id, coalesce(name, '-'), coalesce(description, '-')")
made = [line.split("|") for line in out.split("\n")[:2]]
check("DEFAULT in VALUES leaves the field to the API (id included)",
      len(made) == 2 and all(m[0].startswith("cus_") for m in made)
      and [m[1:] for m in made] == [["-", "d1"], ["Named", "-"]], out)
if len(made) == 2 and all(m[0].startswith("cus_") for m in made):
    up = [api("GET", "/v1/customers/" + m[0]) for m in made]
    check_eq("... and only the given fields reached it", [(None, "d1"), ("Named", None)],
             [(u.get("name"), u.get("description")) for u in up])
    direct_out = proxy("DELETE FROM stripe.customer WHERE id IN ('%s', '%s')" % (made[0][0], made[1][0]))
    check_eq("... (and they go again)", "DELETE 2", direct_out)

# --- transactions: ROLLBACK cannot leave the mirror behind upstream
out = proxy("BEGIN; UPDATE stripe.customer SET email = 'rolled@example.com' WHERE id = '%s'; ROLLBACK" % c2)
check_eq("the update runs inside the client's transaction", "BEGIN\nUPDATE 1\nROLLBACK", out)
check("after ROLLBACK the mirror equals upstream again",
      wait_for("repair", lambda: mirror(c2) == "rolled@example.com", 5),
      "%s vs %s" % (mirror(c2), api("GET", "/v1/customers/" + c2).get("email")))

# --- several statements in one Query: one implicit transaction, as in Postgres
out = proxy("UPDATE stripe.customer SET name = 'multi' WHERE id = '%s'; SELECT name FROM stripe.customer WHERE id = '%s'"
            % (c3, c3))
check_eq("a write and a read in one Query", "UPDATE 1\nmulti", out)
out = proxy("UPDATE stripe.customer SET name = 'first' WHERE id = '%s'; "
            "UPDATE stripe.customer SET email = 'bad' WHERE id = '%s'; SELECT 1" % (c3, c2))
check("the second statement's API error ends the Query", "Invalid email address: bad" in out and
      not out.endswith("\n1"), out)
check("the first was applied upstream, and the mirror (rolled back) is repaired to it",
      wait_for("multi repair", lambda: mirror(c3, "name") == "first", 5) and
      api("GET", "/v1/customers/" + c3).get("name") == "first", mirror(c3, "name"))

# --- a transaction over several Query messages, as applications send them
r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(PROXY_PORT), "-U", "app_writer", "-d", DB],
                   input="BEGIN;\nUPDATE stripe.customer SET email = 'tx@example.com' WHERE id = '%s';\n"
                         "SELECT email FROM stripe.customer WHERE id = '%s';\nROLLBACK;\n" % (c3, c3),
                   capture_output=True, text=True, timeout=60)
check_eq("inside BEGIN the client reads its own write", "BEGIN\nUPDATE 1\ntx@example.com\nROLLBACK", r.stdout.strip())
check("after ROLLBACK the mirror is repaired to upstream",
      wait_for("tx repair", lambda: mirror(c3) == "tx@example.com", 5), mirror(c3))

# --- bypassing the proxy
out = direct("UPDATE stripe.customer SET email = 'direct@example.com' WHERE id = '%s'" % c1)
check("a write that bypasses apigres is refused by the database", "42501" in out, out)
out = direct("SELECT apigres.\"mirror stripe.customer\"('[{\"id\": \"%s\", \"email\": \"x@x.co\"}]', 1e12, '{}')" % c1,
             user="app_writer")
check("calling the mirror function directly is refused", "42501" in out, out)
out = proxy("SELECT apigres.\"mirror stripe.customer\"('[{\"id\": \"%s\", \"email\": \"x@x.co\"}]', 1e12, '{}')" % c1)
check("... also through apigres", "42501" in out, out)
# The client hears "UPDATE 1" while apigres still releases the lock; its next Query must
# wait for the release. To hold the release back long enough to see it wait, the backends of
# apigres's lock connections are stopped (SIGSTOP) while the write waits for the API.
LOCK_CLASS = 1634757991
forge = ("SELECT apigres.\"mirror stripe.customer\"('[{\"id\": \"%s\", \"email\": \"x@x.co\"}]', 1e12, '{}')"
         % c1)
client = psycopg.connect(host="127.0.0.1", port=PROXY_PORT, user="app_writer", dbname=DB, autocommit=True)


def answered_then_forge(protocol):
    """The write, then at once the forged mirror call; what each got and when (monotonic)."""
    seen = {}

    def run():
        try:
            if protocol == "simple":
                cur = client.execute("UPDATE stripe.customer SET name = 'answered' WHERE id = '%s'" % c2)
            else:  # Parse/Bind/Describe/Execute/Sync
                cur = client.execute("UPDATE stripe.customer SET name = %s WHERE id = %s", ("answered", c2))
            seen["update"] = cur.statusmessage
        except psycopg.Error as e:
            seen["update"] = str(e)
        seen["answered"] = time.monotonic()
        try:
            if protocol == "simple":
                client.execute(forge)
            else:
                client.execute(forge.replace("'{}')", "%s)"), ([],))
            seen["forge"] = "accepted"
        except psycopg.Error as e:
            seen["forge"] = e.sqlstate
        seen["forge_done"] = time.monotonic()

    api("POST", "/_fake/config", json_body={"latency_ms": 600})  # under the API timeout of this test's config
    writer = threading.Thread(target=run)
    writer.start()
    time.sleep(0.3)  # the lock is taken; the write waits for the API
    lockers = [int(x) for x in direct("SELECT pid FROM pg_stat_activity WHERE usename = 'apigres_w75' "
                                      "AND query LIKE 'SELECT pg_%%advisory_%%lock(%d%%'" % LOCK_CLASS).split()]
    for pid in lockers:
        os.kill(pid, signal.SIGSTOP)
    wait_for("the write answered (%s protocol)" % protocol, lambda: "answered" in seen, 10)
    time.sleep(1.0)
    released = time.monotonic()
    for pid in lockers:
        os.kill(pid, signal.SIGCONT)
    writer.join(30)
    api("POST", "/_fake/config", json_body={"latency_ms": 0})
    return seen, released, len(lockers)


for protocol in ("simple", "extended"):
    seen, released, nlockers = answered_then_forge(protocol)
    check_eq("%s protocol: a statement sent right after an answered write, while the lock's release waits, is "
             "refused when it runs (%d lock connections stopped)" % (protocol, nlockers), ("UPDATE 1", "42501"),
             (seen.get("update"), seen.get("forge")))
    check("... and it ran only after the release (%.2f s after the answer)"
          % (seen.get("forge_done", 0) - seen.get("answered", 0)), seen.get("forge_done", 0) >= released, seen)
    check("... and the answer came before the release (%.2f s before)" % (released - seen.get("answered", 0)),
          seen.get("answered", released) < released - 0.5, seen)

# Any role may take an advisory lock: one taken for a client's backend makes that client's
# write fail at once (55P03, no API call), and holds up no one else's
client_pid = client.execute("SELECT pg_backend_pid()").fetchone()[0]
holder = psycopg.connect(host="127.0.0.1", port=PG_PORT, user="app_reader", dbname=DB, autocommit=True)
holder.execute("SELECT pg_advisory_lock(%d, %d)" % (LOCK_CLASS, client_pid))
before = mutations()
t0 = time.monotonic()
try:
    client.execute("UPDATE stripe.customer SET name = 'blocked' WHERE id = '%s'" % c2)
    busy = "UPDATE went through"
except psycopg.Error as e:
    busy = e.sqlstate
took = time.monotonic() - t0
others = proxy("UPDATE stripe.customer SET name = 'not held up' WHERE id = '%s'" % c3)
check_eq("a write whose backend's mirror lock another session holds fails at once with 55P03, no API call; "
         "other clients write (%.2f s)" % took, ("55P03", True, True, "UPDATE 1"),
         (busy, took < 5, mutations()[1] == before[1] + 1, others.strip()))
ext = client.cursor()
try:
    ext.execute("UPDATE stripe.customer SET name = %s WHERE id = %s", ("blocked", c2), prepare=True)
    busy_ext = "UPDATE went through"
except psycopg.Error as e:
    busy_ext = e.sqlstate
try:
    with client.transaction():
        client.execute("UPDATE stripe.customer SET name = 'blocked' WHERE id = '%s'" % c2)
    busy_tx = "committed"
except psycopg.Error as e:
    busy_tx = e.sqlstate
check_eq("... the same through the extended protocol and inside a transaction (which then rolls back); "
         "the session goes on", ("55P03", "55P03", 1, True),
         (busy_ext, busy_tx, client.execute("SELECT 1").fetchone()[0], mutations()[1] == before[1] + 1))
holder.close()
client.close()
check_eq("the mirror is untouched", "new@example.com", mirror(c1))

# --- a client's deferred trigger, planted by an expression of the write, runs at our COMMIT
# while the mirror lock is held: the mirror function refuses callers inside triggers
direct("GRANT CREATE ON SCHEMA public TO app_writer")
r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "app_writer", "-d", DB,
                    "-v", "ON_ERROR_STOP=1"], capture_output=True, text=True, timeout=60, input="""
CREATE TABLE public.sneaky (x int);
CREATE FUNCTION public.forge() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM apigres."mirror stripe.customer"('[{"id": "%s", "email": "forged@evil.co"}]'::jsonb, 1e12, '{}');
  RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER sneaky_t AFTER INSERT ON public.sneaky DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION public.forge();
CREATE FUNCTION public.plant() RETURNS text LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.sneaky VALUES (1); RETURN 'planted'; END $f$;
""" % c1)
check("the trap is set up", r.returncode == 0, r.stderr)
out = proxy("UPDATE stripe.customer SET name = public.plant() WHERE id = '%s'" % c1)
check("the deferred trigger's mirror call is refused (42501)", "42501" in out, out)
check("the forged record never reaches the mirror, which follows upstream",
      wait_for("trap repair", lambda: mirror(c1, "name") == "planted", 5) and mirror(c1) != "forged@evil.co",
      "%s %s" % (mirror(c1, "name"), mirror(c1)))
direct("DROP TABLE public.sneaky; DROP FUNCTION public.forge(), public.plant()")

# --- the client's own tables: a statement that names no synced schema or table is relayed
# as it is, one that names one only in passing is classified and relayed all the same (a
# rule's actions on unqualified tables of the client's own too), no API call either way
n = mutations()
check_eq("an INSERT into an application table", "INSERT 0 1",
         proxy("INSERT INTO public.orders (customer_id, note) VALUES ('x', 'plain')"))
check_eq("an INSERT into an application table that mentions stripe in its data", "INSERT 0 1",
         proxy("INSERT INTO orders (customer_id, note) VALUES ('x', 'paid through stripe, customer x')"))
out = proxy("CREATE TABLE audit75 (note text); CREATE TABLE shipped75 (note text); "
            "CREATE RULE shipped75_audit AS ON INSERT TO shipped75 DO ALSO INSERT INTO audit75 VALUES ('stripe')")
check_eq("a rule on an application table writing another one, unqualified, is created",
         "CREATE TABLE\nCREATE TABLE\nCREATE RULE", out)
check_eq("... and runs", "INSERT 0 1|1",
         proxy("INSERT INTO shipped75 VALUES ('x')") + "|" + direct("SELECT count(*) FROM audit75"))
check_eq("... with no API call", n, mutations())
direct("DROP TABLE public.shipped75, public.audit75; DELETE FROM public.orders WHERE customer_id = 'x'")

# --- unqualified names: the client's session says where they live (its search_path and
# temporary tables, asked with to_regclass), as the database would resolve the statement
def proxy_session(*sqls, user="app_writer"):
    """One psql session through the proxy, one Query message per statement."""
    args = ["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(PROXY_PORT), "-U", user, "-d", DB,
            "-v", "VERBOSITY=verbose"]
    for q in sqls:
        args += ["-c", q]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return (r.stdout + r.stderr).strip()


direct("CREATE TABLE public.customer (id text PRIMARY KEY, note text); GRANT ALL ON public.customer TO app_writer")
n, synced_rows = mutations(), direct("SELECT count(*) FROM stripe.customer")
check_eq("the application's own customer table, unqualified: INSERT", "INSERT 0 1",
         proxy("INSERT INTO customer (id, note) VALUES ('own1', 'mine')"))
out = proxy("INSERT INTO customer (id, note) VALUES ('own1', 'again') "
            "ON CONFLICT (id) DO UPDATE SET note = excluded.note RETURNING note")
check_eq("... ON CONFLICT (refused only on a synced table)", "again\nINSERT 0 1", out)
check_eq("... UPDATE", "UPDATE 1", proxy("UPDATE customer SET note = 'changed' WHERE id = 'own1'"))
check_eq("... the row is the application's", "changed", direct("SELECT note FROM public.customer WHERE id = 'own1'"))
check_eq("... DELETE", "DELETE 1", proxy("DELETE FROM customer WHERE id = 'own1'"))
r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(PROXY_PORT), "-U", "app_writer", "-d", DB,
                    "-c", "COPY customer (id, note) FROM STDIN"], input="own9\tcopied\n", capture_output=True,
                   text=True, timeout=60)
check_eq("... COPY customer FROM STDIN (relayed once the session placed the name)", ("COPY 1", "copied"),
         ((r.stdout + r.stderr).strip(), direct("SELECT note FROM public.customer WHERE id = 'own9'")))
direct("DELETE FROM public.customer WHERE id = 'own9'")
check_eq("... no API call, the mirror untouched", (n, synced_rows),
         (mutations(), direct("SELECT count(*) FROM stripe.customer")))
out = proxy_session("SET search_path = stripe, public",
                    "UPDATE customer SET name = 'Unqualified' WHERE id = '%s' RETURNING name" % c1)
check_eq("with stripe first on the search_path, UPDATE customer writes stripe.customer through the API",
         "SET\nUnqualified\nUPDATE 1", out)
check_eq("... upstream and the mirror have it", ("Unqualified", "Unqualified"),
         (api("GET", "/v1/customers/" + c1).get("name"), mirror(c1, "name")))
out = proxy_session("SET search_path = stripe, public", "CREATE TEMP TABLE customer (id text, name text)",
                    "INSERT INTO customer VALUES ('t1', 'temp')", "UPDATE customer SET name = 'temp2'")
check_eq("a temporary table named customer comes first, as in the database: no API call",
         ("SET\nCREATE TABLE\nINSERT 0 1\nUPDATE 1", n[0], n[2]), (out, mutations()[0], mutations()[2]))
n = mutations()
out = proxy("INSERT INTO customer (id, note) VALUES ('own2', 'run'); SET search_path = stripe, public; "
            "UPDATE customer SET name = 'In Turn' WHERE id = '%s'; SET search_path = public; "
            "DELETE FROM customer WHERE id = 'own2'" % c1)
check_eq("in a Query of several statements each is placed in its turn, after the search_path the ones "
         "before it set", ("INSERT 0 1\nSET\nUPDATE 1\nSET\nDELETE 1", "In Turn", "0", n[1] + 1, n[2]),
         (out, mirror(c1, "name"), direct("SELECT count(*) FROM public.customer"), mutations()[1], mutations()[2]))
out = proxy("SET search_path = stripe, public; TRUNCATE customer")
check("... a TRUNCATE placed in stripe is refused as stripe.customer's (0A000)",
      "0A000" in out and direct("SELECT count(*) > 0 FROM stripe.customer") == "t", out)
direct("INSERT INTO public.customer VALUES ('own3', 'gone soon')")
check_eq("... one placed in the application's schema runs", ("SET\nTRUNCATE TABLE", "0", "t"),
         (proxy("SET search_path = public; TRUNCATE customer"), direct("SELECT count(*) FROM public.customer"),
          direct("SELECT count(*) > 0 FROM stripe.customer")))
direct("DROP TABLE public.customer")
out = proxy("UPDATE customer SET note = 'x'")
check("a name on no schema of the search_path: the database's own error", "42P01" in out, out)

# --- the 3rd of 5 creates fails: 2 applied and mirrored, the error says so
api("POST", "/_fake/config", json_body={"fail_nth_create": 3, "fail_status": 402})
out = proxy("INSERT INTO stripe.customer (email) VALUES ('f1@b.co'), ('f2@b.co'), ('f3@b.co'), ('f4@b.co'), ('f5@b.co')")
check("the third create fails and the error says 2 of 5 were applied", "2 of 5 rows were applied" in out, out)
check_eq("the two are mirrored", "f1@b.co,f2@b.co",
         direct("SELECT string_agg(email, ',' ORDER BY email) FROM stripe.customer WHERE email LIKE 'f_@b.co'"))

# --- several rows at once: updates of different records run concurrently
api("POST", "/_fake/config", json_body={"latency_ms": 200})
many = ids[30:46]
t0 = time.monotonic()
out = proxy("UPDATE stripe.customer SET description = 'batch' WHERE id IN (%s) RETURNING id" % ", ".join("'%s'" % i for i in many))
took = time.monotonic() - t0
api("POST", "/_fake/config", json_body={"latency_ms": 0})
check("16 updates at 200 ms each take %.2f s, not 3.2 s (8 at once)" % took,
      out.endswith("UPDATE 16") and took < 2.0, out)
check_eq("RETURNING gives every row once", sorted(many), sorted(out.split("\n")[:16]))
check_eq("... and all 16 reached the API", ["batch"] * 16, [api("GET", "/v1/customers/" + i).get("description") for i in many])

# --- the client vanishes while the API call is under way: what the API did still reaches the mirror
api("POST", "/_fake/config", json_body={"fail_nth_create": 0, "latency_ms": 700})
victim = subprocess.Popen(["psql", "-X", "-h", "127.0.0.1", "-p", str(PROXY_PORT), "-U", "app_writer", "-d", DB,
                           "-c", "UPDATE stripe.customer SET name = 'vanished' WHERE id = '%s'" % c1],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
# the plan has run (its transaction waits for the API) before the client goes: on a busy
# machine a fixed sleep may kill psql before it even sent the statement
wait_for("the victim's plan", lambda: direct("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_writer' "
                                             "AND state = 'idle in transaction'") == "1", 10)
time.sleep(0.2)
victim.kill()
victim.wait()
check("killed mid-statement: the API applied it and the mirror follows",
      wait_for("vanished", lambda: api("GET", "/v1/customers/" + c1).get("name") == "vanished"
               and mirror(c1, "name") == "vanished", 10),
      "%s / %s" % (api("GET", "/v1/customers/" + c1).get("name"), mirror(c1, "name")))

# --- a CancelRequest while the API calls run: no further call, what went through is mirrored
api("POST", "/_fake/config", json_body={"latency_ms": 300})
twenty = ids[50:70]  # more rows than run at once
updates_before = stats()["updates"]
canceller = subprocess.Popen(["psql", "-X", "-v", "VERBOSITY=verbose", "-h", "127.0.0.1", "-p", str(PROXY_PORT),
                              "-U", "app_writer", "-d", DB, "-c",
                              "UPDATE stripe.customer SET name = 'cancelled?' WHERE id IN (%s)"
                              % ", ".join("'%s'" % i for i in twenty)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
wait_for("the first call", lambda: stats()["updates"] > updates_before, 10)  # the rest wait for the first 8
canceller.send_signal(signal.SIGINT)  # psql sends a CancelRequest
out = canceller.communicate(timeout=30)[0]
api("POST", "/_fake/config", json_body={"latency_ms": 0})
upstream_names = [api("GET", "/v1/customers/" + i).get("name") for i in twenty]
applied = upstream_names.count("cancelled?")
check("a cancel stops the calls: 57014 and how many went through (%d of 20)" % applied,
      "57014" in out and "%d of 20 rows were applied" % applied in out and 0 < applied < 20, out)
check_eq("the mirror equals upstream for all twenty", upstream_names, [mirror(i, "name") for i in twenty])

# --- concurrent writers on one record: the plan's row lock serializes them
api("POST", "/_fake/config", json_body={"latency_ms": 50})
writers = [subprocess.Popen(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(PROXY_PORT), "-U", "app_writer",
                             "-d", DB, "-c", "UPDATE stripe.customer SET name = 'writer %d' WHERE id = '%s'" % (i, c2)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(4)]
outs = [w.communicate(timeout=60)[0].strip() for w in writers]
api("POST", "/_fake/config", json_body={"latency_ms": 0})
check_eq("four concurrent writers all succeed", ["UPDATE 1"] * 4, outs)
check_eq("the mirror ends equal to upstream", api("GET", "/v1/customers/" + c2).get("name"), mirror(c2, "name"))

# --- error classes of the provider's table (README "Error mapping"), through the write path
api("POST", "/_fake/config", json_body={"fail_nth_create": 0, "latency_ms": 0})
out = proxy("UPDATE stripe.customer SET name = repeat('x', 300) WHERE id = '%s'" % c1)
check("a string too long is 22001", "22001" in out and "at most 256 characters" in out, out)
out = proxy("UPDATE stripe.customer SET tax_exempt = 'sometimes' WHERE id = '%s'" % c1)
check("a value outside the API's enum is 22023", "22023" in out and "must be one of" in out, out)
api("POST", "/_fake/config", json_body={"fail_next": 20, "fail_status": 429})
t0 = time.monotonic()
out = proxy("UPDATE stripe.customer SET name = 'limited' WHERE id = '%s'" % c1)
check("rate limited after retries is 40001 (%.1f s of retries)" % (time.monotonic() - t0), "40001" in out, out)
api("POST", "/_fake/config", json_body={"fail_next": 20, "fail_status": 500})
out = proxy("UPDATE stripe.customer SET name = 'down' WHERE id = '%s'" % c1)
check("an API that keeps failing is 57P03", "57P03" in out, out)
api("POST", "/_fake/config", json_body={"fail_next": 0, "timeout_next": 20})
out = proxy("UPDATE stripe.customer SET name = 'slow' WHERE id = '%s'" % c1)
check("an API that does not answer is 57014", "57014" in out, out)
api("POST", "/_fake/config", json_body={"timeout_next": 0})
check_eq("after all that the mirror still equals upstream", api("GET", "/v1/customers/" + c1).get("name"),
         mirror(c1, "name"))
gone_upstream = ids[10]
api("DELETE", "/v1/customers/" + gone_upstream)
out = proxy("UPDATE stripe.customer SET name = 'ghost' WHERE id = '%s'" % gone_upstream)
check_eq("a record gone upstream is not counted", "UPDATE 0", out)
check_eq("... and leaves the mirror", "", mirror(gone_upstream))

# --- RLS: a policy that hides rows from UPDATE hides them from the write path
victim_id = ids[11]
proxy("UPDATE stripe.customer SET name = 'protected' WHERE id = '%s'" % victim_id)
direct("ALTER TABLE stripe.customer ENABLE ROW LEVEL SECURITY; "
       "CREATE POLICY see_all ON stripe.customer FOR SELECT USING (true); "
       "CREATE POLICY not_protected ON stripe.customer FOR UPDATE USING (coalesce(name, '') <> 'protected'); "
       "CREATE POLICY add_any ON stripe.customer FOR INSERT WITH CHECK (true); "
       "CREATE POLICY drop_any ON stripe.customer FOR DELETE USING (true)")
n = mutations()
out = proxy("UPDATE stripe.customer SET email = 'rls@example.com' WHERE id IN ('%s', '%s')" % (victim_id, ids[12]))
check_eq("RLS hides the protected row: only the other is updated", "UPDATE 1", out)
check_eq("... one API call", n[1] + 1, mutations()[1])
check("... and the protected one is untouched upstream",
      api("GET", "/v1/customers/" + victim_id).get("email") != "rls@example.com")
direct("DROP POLICY see_all ON stripe.customer; DROP POLICY not_protected ON stripe.customer; "
       "DROP POLICY add_any ON stripe.customer; DROP POLICY drop_any ON stripe.customer; "
       "ALTER TABLE stripe.customer DISABLE ROW LEVEL SECURITY")

# --- the extended protocol, through libpq (75_write_ext.c prints its own checks)
ext = subprocess.run([os.path.join(os.environ["TEST_BIN"], "75_write_ext"),
                      "host=127.0.0.1 port=%d user=app_writer dbname=%s" % (PROXY_PORT, DB),
                      "host=127.0.0.1 port=%s user=postgres dbname=%s" % (PG_PORT, DB), c3],
                     capture_output=True, text=True, timeout=120)
sys.stdout.write(ext.stdout)
sys.stdout.flush()
check("the extended-protocol program ran to its end", ext.returncode in (0, 1) and "pipeline" in ext.stdout,
      ext.stderr[-2000:])
if ext.returncode != 0:
    itest.not_ok("75_write_ext reported failures")
check_eq("upstream agrees with the extended-protocol writes", "Pipe Three", api("GET", "/v1/customers/" + c3).get("name"))

# --- a record deleted through apigres does not come back with the feed's older events
made = [proxy("INSERT INTO stripe.customer (email) VALUES ('tomb%d@example.com') RETURNING id" % i).split("\n")[0]
        for i in range(10)]
before = api("GET", "/v1/customers/" + made[0])  # what a feed event from before the delete carries
for cid in made:
    proxy("DELETE FROM stripe.customer WHERE id = '%s'" % cid)
seen, until = 0, time.monotonic() + 2.0  # several polls of the feed (0.3 s)
while time.monotonic() < until:
    seen = max(seen, int(direct("SELECT count(*) FROM stripe.customer WHERE email LIKE 'tomb%'") or 0))
    time.sleep(0.05)
check_eq("10 customers created and deleted through apigres: none comes back with the feed's customer.created",
         0, seen)
check_eq("... each has a tombstone", "10", direct("SELECT count(*) FROM apigres.tombstones WHERE id IN (%s)"
                                                   % ", ".join("'%s'" % c for c in made)))
# the feed's own path, deterministically: the service role upserts the record as an event from
# before the delete would bring it
stale = "SELECT apigres.\"mirror stripe.customer\"(E'%s'::jsonb, %%s, '{}'); SELECT count(*) FROM stripe.customer " \
        "WHERE id = '%s'" % (json.dumps([before]).replace("'", "''"), made[0])
check_eq("the record as it was before the delete does not bring it back", "0",
         direct(stale % before["created"], "apigres_w75").split("\n")[-1])
check_eq("... a newer version of it does (a record restored upstream)", "1",
         direct(stale % (time.time() + 60), "apigres_w75").split("\n")[-1])
direct("SELECT apigres.\"mirror stripe.customer\"('[]', %s, ARRAY['%s'])" % (time.time() + 61, made[0]), "apigres_w75")

# --- the mirror lock's two queries are statements prepared on each service connection, and
# prepared again on a new one
direct("ALTER ROLE apigres_w75 SET log_statement = 'all'")
killed = direct("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'apigres service'")
check("the service connections are terminated (%s)" % killed, killed.isdigit() and int(killed) > 0, killed)
time.sleep(0.5)  # apigres sees each connection close, and opens a new one for the next query
log_start = os.path.getsize(PG_LOG)
outs = [proxy("UPDATE stripe.customer SET name = 'after the service %d' WHERE id = '%s'" % (i, c2)) for i in range(4)]
check_eq("writes after the service connections were lost", ["UPDATE 1"] * 4, outs)
check_eq("... the last reached the mirror", "after the service 3", mirror(c2, "name"))
with open(PG_LOG, errors="replace") as f:
    f.seek(log_start)
    server_log = f.read()
check("... the lock and its release ran as the prepared statements of the new connections",
      "execute apigres_mirror_lock: SELECT pg_try_advisory_lock" in server_log and
      "execute apigres_mirror_unlock: SELECT pg_advisory_unlock" in server_log and
      "execute <unnamed>: SELECT pg_try_advisory_lock" not in server_log, server_log[-2000:])
direct("ALTER ROLE apigres_w75 RESET log_statement")

# --- reads are untouched
check_eq("reads through apigres", direct("SELECT count(*) FROM stripe.customer"), proxy("SELECT count(*) FROM stripe.customer"))


def write_calls():
    with open("/proc/%d/io" % proc.pid) as f:
        return int(next(line for line in f if line.startswith("syscw:")).split()[1])


# a small answer goes to the client in one write: the ReadyForQuery the session holds to read
# the transaction status from is gathered with what came before it in the same read
reader = psycopg.connect(host="127.0.0.1", port=PROXY_PORT, user="app_reader", dbname=DB, autocommit=True)
reader.pgconn.exec_(b"SELECT 1")
before = write_calls()
for _ in range(300):
    reader.pgconn.exec_(b"SELECT 1")
calls = write_calls() - before
reader.close()
check("300 queries, %d write calls: one to the database and one to the client each (and some logging)" % calls,
      600 <= calls <= 660, calls)

# an extended-protocol write whose Parse repeats the previous one: the Parse goes to the
# database with the plan, and the client's answers in one write (plan with Parse, probe,
# mirror to the database; ParseComplete, BindComplete, NoData, CommandComplete and
# ReadyForQuery to the client)
writer = psycopg.connect(host="127.0.0.1", port=PROXY_PORT, user="app_writer", dbname=DB, autocommit=True)
upd = b"UPDATE stripe.customer SET description = $1 WHERE id = $2"
writer.pgconn.exec_params(upd, [b"repeat", c1.encode()])


def log_lines():  # apigres writes each log line with a write of its own
    with open(os.path.join(TMP, "apigres-75.log"), errors="replace") as f:
        return sum(1 for _ in f)


before, logged = write_calls(), log_lines()
for i in range(50):
    res = writer.pgconn.exec_params(upd, [b"repeat %d" % i, c1.encode()])
    if res.command_status != b"UPDATE 1":
        break
calls = write_calls() - before - (log_lines() - logged)
check("50 repeated extended-protocol writes, %d write calls besides logging: 4 each (the Parse rides with the plan)"
      % calls, 200 <= calls <= 205 and res.command_status == b"UPDATE 1", (calls, res.command_status))
# with RETURNING the RowDescription comes with the Parse's answer, the rows from a statement
# after the mirror, then our COMMIT; the client's Sync is answered with the tag: 6 each (5 to
# the database, 1 to the client; 13 before the ninth session)
upd_ret = b"UPDATE stripe.customer SET description = $1 WHERE id = $2 RETURNING description"
writer.pgconn.exec_params(upd_ret, [b"repeat", c1.encode()])
before, logged = write_calls(), log_lines()
for i in range(50):
    res = writer.pgconn.exec_params(upd_ret, [b"returned %d" % i, c1.encode()])
    if res.command_status != b"UPDATE 1" or res.get_value(0, 0) != b"returned %d" % i:
        break
calls = write_calls() - before - (log_lines() - logged)
writer.close()
check("50 repeated writes with RETURNING, %d write calls besides logging: 6 each" % calls,
      300 <= calls <= 305 and res.command_status == b"UPDATE 1" and res.get_value(0, 0) == b"returned 49",
      (calls, res.command_status, res.get_value(0, 0) if res.ntuples else None))
check_eq("... the last reached the mirror", "returned 49", direct("SELECT description FROM stripe.customer WHERE id = '%s'" % c1))

proc.send_signal(signal.SIGTERM)
check("apigres stops on SIGTERM", proc.wait(timeout=30) == 0)
with open(os.path.join(TMP, "apigres-75.log"), errors="replace") as f:
    log_text = f.read()
check("the API key appears in no log", KEY not in log_text)
check("every service connection prepared its statements", "cannot prepare" not in log_text,
      [line for line in log_text.splitlines() if "cannot prepare" in line][:3])
cache_line = [line for line in log_text.splitlines() if "the plan cache answered" in line]
hits = cache_line and re.search(r"answered (\d+) of (\d+) lookups", cache_line[-1])
check("the plan cache answered the texts seen before (%s)" % (cache_line[-1] if cache_line else "no line"),
      hits and 0 < int(hits.group(1)) < int(hits.group(2)), cache_line)
check_eq("the one repeated Parse whose types changed was planned again (75_write_ext's search_path)", 1,
         log_text.count("the parameter types of a repeated Parse changed; planning again"))
sys.exit(itest.status())
