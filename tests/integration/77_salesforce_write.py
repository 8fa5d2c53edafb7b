"""The write path on Salesforce tables (proxy/write_salesforce.c, upstream/salesforce_records.c)
against the Salesforce fake and the real database.

Usage: 77_salesforce_write.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES,
TEST_TMP). Starts its own apigres (log apigres-77.log) with one Salesforce sync of Account,
Contact and the custom Invoice__c, waits for the backfill, then writes through the proxy in
the simple protocol (psql) and the extended one (psycopg 3, prepared) and compares what the
client saw, the fake's records and the mirror.
"""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import itest
from itest import check, check_eq, free_port, wait_for

FAKE = sys.argv[1]
PG_PORT = os.environ["PG_PORT"]
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
DB = "apigres_sf_write"
V = "/services/data/v59.0"
CLIENT_SECRET = "sf-77-client-secret-value"
REFRESH_TOKEN = "sf-77-refresh-token-value"
PROXY_PORT = free_port()
token = None


def api(method, path, body=None):
    """A Salesforce REST call as another client of the org makes it; (status, JSON)."""
    global token
    if token is None:
        form = urllib.parse.urlencode({"grant_type": "refresh_token", "client_id": "fake-client-id",
                                       "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}).encode()
        with urllib.request.urlopen(urllib.request.Request(FAKE + "/services/oauth2/token", data=form), timeout=30) as r:
            token = json.load(r)["access_token"]
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(FAKE + V + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def run_psql(sql, port, user="postgres", db=DB):
    r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db,
                        "-v", "VERBOSITY=verbose", "-c", sql], capture_output=True, text=True, timeout=60)
    return (r.stdout + r.stderr).strip()


def proxy(sql):
    return run_psql(sql, PROXY_PORT, "sf_writer")


def direct(sql):
    return run_psql(sql, PG_PORT)


def control(path, body):
    req = urllib.request.Request(FAKE + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


# the org's credentials are the test's own (none of the fake's defaults)
control("/_fake/config", {"client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN})
CONFIG = os.path.join(TMP, "apigres-77.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=apigres_sfw dbname=%s" % (PG_PORT, DB),
               "read_role": "sfw_reader",
               "syncs": [{"provider": "salesforce", "api_base": FAKE, "login_url": FAKE,
                          "collection_ids": ["salesforce:account", "salesforce:contact", "salesforce:invoice__c"],
                          "credential": {"client_id": "fake-client-id", "client_secret": CLIENT_SECRET,
                                         "refresh_token": REFRESH_TOKEN},
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "poll_interval": 0.5}]}, f)

run_psql("DROP DATABASE IF EXISTS %s" % DB, PG_PORT, db="postgres")
for stmt in ("DROP ROLE IF EXISTS apigres_sfw", "DROP ROLE IF EXISTS sf_writer", "DROP ROLE IF EXISTS sfw_reader",
             "CREATE DATABASE %s" % DB, "CREATE ROLE sf_writer LOGIN"):
    run_psql(stmt, PG_PORT, db="postgres")
setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                    "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
check("the setup SQL applies", r.returncode == 0, r.stderr)
run_psql("GRANT sfw_reader TO sf_writer", PG_PORT, db="postgres")

log = open(os.path.join(TMP, "apigres-77.log"), "ab")
proc = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % PROXY_PORT,
                         "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug"],
                        stdout=subprocess.DEVNULL, stderr=log)
check("the backfill finishes", wait_for("backfill", lambda: direct(
    "SELECT count(*) FILTER (WHERE phase = 'incremental') FROM apigres.sync_state") == "3", 60))
direct("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA salesforce TO sf_writer")
contacts = direct("SELECT id FROM salesforce.contact ORDER BY id LIMIT 3").split("\n")
account = direct("SELECT id FROM salesforce.account ORDER BY id LIMIT 1")
c1, c2, c3 = contacts

# --- UPDATE, INSERT ... RETURNING, DELETE
check_eq("UPDATE of a contact", "UPDATE 1", proxy("UPDATE salesforce.contact SET email = 'new@example.com', "
                                                  "title = 'CTO' WHERE id = '%s'" % c1))
status, rec = api("GET", "/sobjects/Contact/" + c1)
check_eq("... Salesforce has it", ("new@example.com", "CTO"), (rec.get("Email"), rec.get("Title")))
check_eq("... and the mirror has Salesforce's record (its SystemModstamp too)",
         "new@example.com|CTO|" + rec["SystemModstamp"][:19],
         direct("SELECT email, title, to_char(_apigres_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') "
                "FROM salesforce.contact WHERE id = '%s'" % c1))

out = proxy("INSERT INTO salesforce.contact (lastname, email, accountid) VALUES ('Lovelace', 'ada@example.com', '%s') "
            "RETURNING id, lastname" % account)
lines = out.split("\n")
new_id = lines[0].split("|")[0]
check("INSERT ... RETURNING id gives Salesforce's id (%s)" % new_id,
      new_id.startswith("003") and lines[0].endswith("|Lovelace") and lines[-1] == "INSERT 0 1", out)
status, rec = api("GET", "/sobjects/Contact/" + new_id)
check_eq("... Salesforce has the contact", (200, "ada@example.com", account),
         (status, rec.get("Email"), rec.get("AccountId")))
check_eq("... the mirror joins it to its account", "Lovelace",
         direct("SELECT c.lastname FROM salesforce.contact c JOIN salesforce.account a ON a.id = c.accountid "
                "WHERE c.id = '%s'" % new_id))

out = proxy("INSERT INTO salesforce.invoice__c (amount__c, status__c) VALUES (1234.5, 'Draft') "
            "RETURNING amount__c")
check("INSERT into a custom object, a number sent as a number (%s)" % out.replace("\n", " / "),
      out.startswith("1234.5") and out.endswith("INSERT 0 1"), out)

check_eq("DELETE of the new contact", "DELETE 1", proxy("DELETE FROM salesforce.contact WHERE id = '%s'" % new_id))
status, rec = api("GET", "/sobjects/Contact/" + new_id)
check_eq("... it is gone from Salesforce", 404, status)
check_eq("... and from the mirror", "0", direct("SELECT count(*) FROM salesforce.contact WHERE id = '%s'" % new_id))

# --- an unqualified name: the session's search_path says it is salesforce.contact
r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(PROXY_PORT), "-U", "sf_writer", "-d", DB,
                    "-v", "VERBOSITY=verbose", "-c", "SET search_path = salesforce, public",
                    "-c", "UPDATE contact SET title = 'Unqualified' WHERE id = '%s'" % c2,
                    "-c", "UPDATE contact SET email = 'not-an-email' WHERE id = '%s'" % c2],
                   capture_output=True, text=True, timeout=60)
out = (r.stdout + r.stderr).strip()
status, rec = api("GET", "/sobjects/Contact/" + c2)
check("UPDATE contact with salesforce on the search_path goes to Salesforce, and so does its refusal",
      out.startswith("SET\nUPDATE 1") and "23514" in out and "Error updating contact" in out and
      rec.get("Title") == "Unqualified" and
      direct("SELECT title FROM salesforce.contact WHERE id = '%s'" % c2) == "Unqualified", out)

# --- Salesforce's refusals, as Postgres errors
out = proxy("UPDATE salesforce.contact SET email = 'not-an-email' WHERE id = '%s'" % c2)
check("an invalid email: ERROR 23514 Error updating contact %s: ... (%s)" % (c2, out.split("\n")[0]),
      "ERROR:  23514: Error updating contact %s: Email: invalid email address: not-an-email" % c2 in out, out)
out = proxy("INSERT INTO salesforce.contact (email) VALUES ('nolastname@example.com')")
check("a required field missing on create: 23502 before any call (%s)" % out.split("\n")[0], "23502" in out, out)
out = proxy("UPDATE salesforce.contact SET systemmodstamp = now() WHERE id = '%s'" % c2)
check("a read-only field: 428C9 (%s)" % out.split("\n")[0], "428C9" in out, out)
check_eq("the refused contact is unchanged in the mirror", api("GET", "/sobjects/Contact/" + c2)[1].get("Email"),
         direct("SELECT email FROM salesforce.contact WHERE id = '%s'" % c2))

# --- several rows: creates one at a time, the first refusal stops the statement
out = proxy("INSERT INTO salesforce.contact (lastname, email) VALUES ('Five1', 'f1@example.com'), "
            "('Five2', 'f2@example.com'), ('Five3', 'not-an-email'), ('Five4', 'f4@example.com'), "
            "('Five5', 'f5@example.com')")
check("the 3rd of 5 creates refused: 23514, and the DETAIL says 2 of 5 were applied (%s)" % out.split("\n")[0],
      "23514" in out and "2 of 5 rows were applied" in out, out)
made = [r["LastName"] for r in api("GET", "/query?q=" + urllib.parse.quote(
    "SELECT LastName FROM Contact WHERE LastName LIKE 'Five%' ORDER BY LastName"))[1]["records"]]
check_eq("... Salesforce has the first two, and only them", ["Five1", "Five2"], made)
check_eq("... and so does the mirror", "Five1\nFive2",
         direct("SELECT lastname FROM salesforce.contact WHERE lastname LIKE 'Five%' ORDER BY 1"))

# --- concurrent writers on one record
procs = [subprocess.Popen(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(PROXY_PORT), "-U", "sf_writer", "-d", DB,
                           "-c", "UPDATE salesforce.contact SET title = 'writer %d' WHERE id = '%s'" % (i, c2)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(4)]
outs = [p.communicate(timeout=60)[0].strip() for p in procs]
check_eq("four concurrent writers on one contact all succeed", ["UPDATE 1"] * 4, outs)
check_eq("... and the mirror ends equal to Salesforce", api("GET", "/sobjects/Contact/" + c2)[1].get("Title"),
         direct("SELECT title FROM salesforce.contact WHERE id = '%s'" % c2))

# --- Salesforce unavailable: 57P03 after the retries, nothing changed
control("/_fake/config", {"fail_next": 20, "fail_status": 503})
out = proxy("UPDATE salesforce.contact SET title = 'never' WHERE id = '%s'" % c2)
control("/_fake/config", {"fail_next": 0, "fail_status": 500})
check("SERVER_UNAVAILABLE after the retries: 57P03 (%s)" % out.split("\n")[0], "57P03" in out, out)
check("... and the mirror still equals Salesforce", direct("SELECT title FROM salesforce.contact WHERE id = '%s'" % c2)
      == api("GET", "/sobjects/Contact/" + c2)[1].get("Title"))

# --- a record deleted upstream meanwhile: not counted, and it leaves the mirror
api("DELETE", "/sobjects/Contact/" + c3)
check_eq("an UPDATE of a contact deleted in Salesforce: UPDATE 0", "UPDATE 0",
         proxy("UPDATE salesforce.contact SET title = 'gone' WHERE id = '%s'" % c3))
check("... and it is gone from the mirror", wait_for("mirror", lambda: direct(
    "SELECT count(*) FROM salesforce.contact WHERE id = '%s'" % c3) == "0", 5))

# --- the extended protocol, as psycopg 3 prepares statements
drv = subprocess.run(["/usr/bin/python3", "-c", r'''
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
for name in ("Prepared One", "Prepared Two"):
    cur = conn.execute("UPDATE salesforce.contact SET title = %s WHERE id = %s RETURNING title", (name, sys.argv[2]),
                       prepare=True)
    print(cur.fetchone()[0], cur.rowcount)
try:
    conn.execute("UPDATE salesforce.contact SET email = %s WHERE id = %s", ("bad", sys.argv[2]))
except psycopg.errors.CheckViolation as e:
    print("refused", e.sqlstate)
''', "host=127.0.0.1 port=%d user=sf_writer dbname=%s" % (PROXY_PORT, DB), c1], capture_output=True, text=True,
                     timeout=60)
check_eq("psycopg 3, prepared: two UPDATE ... RETURNING and the refusal as CheckViolation",
         "Prepared One 1\nPrepared Two 1\nrefused 23514", drv.stdout.strip() + drv.stderr.strip())
check_eq("... Salesforce has the last", "Prepared Two", api("GET", "/sobjects/Contact/" + c1)[1].get("Title"))

# --- a transaction rolled back: the mirror returns to what Salesforce has
out = proxy("BEGIN; UPDATE salesforce.contact SET title = 'rolled' WHERE id = '%s'; ROLLBACK" % c1)
check_eq("UPDATE inside a transaction, then ROLLBACK", "BEGIN\nUPDATE 1\nROLLBACK", out)
check("after ROLLBACK the mirror equals Salesforce", wait_for("repair", lambda: direct(
    "SELECT title FROM salesforce.contact WHERE id = '%s'" % c1) == api("GET", "/sobjects/Contact/" + c1)[1].get("Title"), 5))

proc.send_signal(signal.SIGTERM)
check("apigres stops on SIGTERM", proc.wait(timeout=30) == 0)
with open(os.path.join(TMP, "apigres-77.log"), errors="replace") as f:
    text = f.read()
    check("no token or client secret in the log", CLIENT_SECRET not in text and REFRESH_TOKEN not in text
          and (token is None or token not in text))
sys.exit(itest.status())
