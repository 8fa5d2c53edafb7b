"""The sync worker's Salesforce feed (sync/salesforce_feed.c) against the Salesforce fake and
the real database.

Usage: 73_salesforce_sync.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES,
TEST_TMP). Starts its own apigres instances (log files apigres-73-*.log), kills them with
SIGKILL at several points of a backfill, and checks that the synced tables equal the fake's
data; then changes made through the fake's API, the ordering of versions, an OAuth token
expiring, and a deletion window older than Salesforce keeps.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import itest
from itest import check, check_eq, free_port, note, wait_for

FAKE = sys.argv[1]
PG_PORT = os.environ["PG_PORT"]
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
DB = "apigres_sf_sync"
V = "/services/data/v59.0"
CLIENT_SECRET = "sf-73-client-secret-value"
REFRESH_TOKEN = "sf-73-refresh-token-value"
POLL = 0.5
OBJECTS = {"account": ("Account", ["Name", "Industry"]),
           "contact": ("Contact", ["LastName", "Email"]),
           "invoice__c": ("Invoice__c", ["Amount__c", "Status__c"])}

token = None


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(FAKE + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def refresh():
    global token
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "client_id": "fake-client-id",
                                   "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}).encode()
    with urllib.request.urlopen(urllib.request.Request(FAKE + "/services/oauth2/token", data=form), timeout=30) as r:
        token = json.load(r)["access_token"]


def api(method, path, body=None):
    """A Salesforce REST call as a client would make it (refreshing an expired token once)."""
    for attempt in (1, 2):
        if token is None:
            refresh()
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(FAKE + (path if path.startswith("/services/") else V + path), data=data,
                                     method=method, headers={"Authorization": "Bearer " + token,
                                                             "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            if e.code == 401 and attempt == 1:
                refresh()
                continue
            raise


def soql_all(q):
    out, page = [], api("GET", "/query?q=" + urllib.parse.quote(q))
    while True:
        out.extend(page["records"])
        if page["done"]:
            return out
        page = api("GET", page["nextRecordsUrl"])


def psql(sql, db=DB, user="postgres"):
    r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", PG_PORT, "-U", user, "-d", db,
                        "-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql], capture_output=True, text=True)
    if r.returncode != 0:
        note("psql: " + r.stderr.strip())
        return None
    return r.stdout


def rows(sql, user="postgres"):
    out = psql(sql, user=user)
    return [] if not out else [line.split("\t") for line in out.splitlines()]


procs = []


def start(name):
    log = open(os.path.join(TMP, "apigres-73-%s.log" % name), "ab")
    p = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % free_port(),
                          "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug"],
                         stdout=subprocess.DEVNULL, stderr=log)
    p.logname = log.name
    procs.append(p)
    return p


def kill9(p):
    p.send_signal(signal.SIGKILL)
    p.wait()


def log_of(p):
    with open(p.logname, errors="replace") as f:
        return f.read()


def phases():
    return dict((c, p) for c, p in rows("SELECT collection, phase FROM apigres.sync_state WHERE sync = 'salesforce'"))


def all_incremental():
    p = phases()
    return len(p) == 3 and all(v == "incremental" for v in p.values())


def loaded():
    r = rows("SELECT coalesce(sum(rows_loaded), 0), string_agg(collection || '=' || phase || ':' || rows_loaded "
             "|| ' cursor ' || cursor, ', ' ORDER BY collection) FROM apigres.sync_state WHERE sync = 'salesforce'")
    return (int(r[0][0]), r[0][1]) if r else (0, "")


def norm(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return str(v)


def compare(desc):
    """Every synced table equals the fake: same ids, same values of a few fields each, and
    the row's version is the record's SystemModstamp."""
    same, details = True, []
    for table, (obj, fields) in OBJECTS.items():
        want = dict((r["Id"], [norm(r[f]) for f in fields] + [r["SystemModstamp"]])
                    for r in soql_all("SELECT Id, %s, SystemModstamp FROM %s" % (", ".join(fields), obj)))
        cols = ", ".join('"%s"::text' % f.lower() for f in fields)
        got = dict((r[0], r[1:]) for r in rows(
            "SELECT id, %s, to_char(_apigres_updated_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+0000\"') FROM salesforce.%s" % (cols, table)))
        got = dict((k, [("" if x == "" else re.sub(r"\.0+$", "", x) if re.fullmatch(r"-?\d+\.0+", x) else x)
                        for x in v]) for k, v in got.items())
        missing, extra = set(want) - set(got), set(got) - set(want)
        differ = [(i, want[i], got[i]) for i in want if i in got and want[i] != got[i]]
        if missing or extra or differ:
            same = False
            details.append("%s: %d upstream, %d mirrored, %d missing, %d extra, %d differ %s" %
                           (table, len(want), len(got), len(missing), len(extra), len(differ), differ[:3]))
        else:
            details.append("%s %d" % (table, len(want)))
    check(desc + ": " + ", ".join(details), same, "\n".join(details))
    return same


CONFIG = os.path.join(TMP, "apigres-73.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=apigres_sf dbname=%s" % (PG_PORT, DB),
               "read_role": "sf_reader",
               "syncs": [{"provider": "salesforce", "login_url": FAKE,
                          "credential": {"client_id": "fake-client-id", "client_secret": "${SF73_CLIENT_SECRET}",
                                         "refresh_token": "${SF73_REFRESH_TOKEN}"},
                          "collection_ids": ["salesforce:account", "salesforce:contact", "salesforce:invoice__c"],
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "poll_interval": POLL}]}, f)
os.environ["SF73_CLIENT_SECRET"] = CLIENT_SECRET
os.environ["SF73_REFRESH_TOKEN"] = REFRESH_TOKEN
control("POST", "/_fake/config", {"client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN})

try:
    # --- the database, set up as README says: `apigres setup` piped into psql by a superuser
    psql("DROP DATABASE IF EXISTS %s" % DB, db="postgres")
    for stmt in ("DROP ROLE IF EXISTS apigres_sf", "DROP ROLE IF EXISTS sf_reader", "CREATE DATABASE %s" % DB):
        psql(stmt, db="postgres")
    setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
    check("apigres setup prints the SQL for the service role", setup.returncode == 0 and "apigres_sf" in setup.stdout,
          setup.stderr)
    r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                        "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
    check("the setup SQL applies", r.returncode == 0, r.stderr)

    # A table made by an older describe: one column the object no longer has, most missing.
    # The worker adds the fields' columns and keeps the old one (nothing is dropped).
    psql("CREATE SCHEMA salesforce; CREATE TABLE salesforce.account (id text PRIMARY KEY, legacy_rating text)",
         user="apigres_sf")

    # --- upstream: 12,000+ records over three objects, written over the past 20 days
    seeded = control("POST", "/_fake/seed", {"accounts": 3000, "contacts": 6000, "invoices": 3000, "when": "past"})
    counts = dict((t, len(soql_all("SELECT Id FROM %s" % o))) for t, (o, _) in OBJECTS.items())
    note("the fake holds %s" % counts)
    check("the fake holds 12,000+ records of the three objects (%d)" % sum(counts.values()),
          sum(counts.values()) >= 12000)
    control("POST", "/_fake/config", {"latency_ms": 400})  # a page takes longer than the pause before a kill

    # --- backfill, killed with SIGKILL at five different points
    random.seed(73)
    points = []
    p = start("a")
    time.sleep(random.uniform(0.1, 0.4))  # the first one early: describe, schema or the first page
    kill9(p)
    points.append(loaded())
    note("killed at %s" % (points[-1],))
    while len(points) < 5:
        p = start("a")
        before = points[-1][0]
        moved = wait_for("progress past %d rows" % before, lambda: loaded()[0] > before, 60)
        time.sleep(random.uniform(0.0, 0.3))  # anywhere in the next page: its request, its write
        kill9(p)
        points.append(loaded())
        note("killed at %s" % (points[-1],))
        if not moved or all_incremental():
            break
    distinct = len(set(pt[0] for pt in points if pt[0] < sum(counts.values())))
    check("kill -9 at %d different points of the backfill (rows loaded: %s)" % (distinct, [pt[0] for pt in points]),
          distinct >= 5)
    a = start("a")
    check("the backfill finishes after the kills", wait_for("backfill", all_incremental, 180))
    control("POST", "/_fake/config", {"latency_ms": 0})
    compare("after kill -9 at %d points and a resume, the mirror equals upstream" % len(points))
    for table in OBJECTS:
        check_eq("no %s twice and every one there" % table, str(counts[table]),
                 (psql("SELECT count(DISTINCT id) FROM salesforce.%s" % table) or "").strip())
    resumed = log_of(a).count("resumes from its cursor")  # every run of "a" logs into one file
    check("backfills resumed from their cursor after kills (%d times)" % resumed, resumed >= 1)
    status = rows("SELECT collection, phase, rows_loaded, rows_upstream, last_error IS NULL FROM apigres.sync_status "
                  "WHERE sync = 'salesforce' ORDER BY 1")
    note("sync_status: %s" % status)
    check("sync_status shows every object incremental without error, rows known upstream",
          len(status) == 3 and all(r[1] == "incremental" and r[4] == "t" and r[3] != "" for r in status), status)
    cols = dict(rows("SELECT column_name, data_type FROM information_schema.columns "
                     "WHERE table_schema = 'salesforce' AND table_name = 'account'"))
    check("columns typed from describe: name text, annualrevenue numeric, numberofemployees bigint, "
          "createddate timestamptz (%s)" % ", ".join("%s %s" % (k, cols.get(k)) for k in
                                                      ("name", "annualrevenue", "numberofemployees", "createddate")),
          cols.get("name") == "text" and cols.get("annualrevenue") == "numeric" and
          cols.get("numberofemployees") == "bigint" and cols.get("createddate") == "timestamp with time zone")
    check("the column the object no longer has is kept, the new fields are added",
          "legacy_rating" in cols and "industry" in cols and "_apigres_updated_at" in cols, sorted(cols))
    check_eq("comments carry the field labels", "Account Name\n",
             psql("SELECT col_description('salesforce.account'::regclass, "
                  "(SELECT attnum FROM pg_attribute WHERE attrelid = 'salesforce.account'::regclass "
                  "AND attname = 'name'))"))
    inv = dict(rows("SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'salesforce' AND table_name = 'invoice__c'"))
    check("the custom object's columns: amount__c numeric, due_date__c date, paid__c boolean",
          inv.get("amount__c") == "numeric" and inv.get("due_date__c") == "date" and inv.get("paid__c") == "boolean",
          inv)
    qs = [r for r in control("GET", "/_fake/requests?limit=200") if r.get("soql")]
    note("last SOQL: %s" % (qs[-1]["soql"][-120:] if qs else None))

    # --- changes upstream arrive within the poll interval
    acc = soql_all("SELECT Id FROM Account ORDER BY Id LIMIT 2")
    inv_ids = [r["Id"] for r in soql_all("SELECT Id FROM Invoice__c ORDER BY Id LIMIT 2")]
    created = api("POST", "/sobjects/Contact", {"LastName": "Arrives", "Email": "arrives@example.com",
                                                "AccountId": acc[0]["Id"]})["id"]
    api("PATCH", "/sobjects/Account/" + acc[1]["Id"], {"Name": "Renamed upstream"})
    api("DELETE", "/sobjects/Invoice__c/" + inv_ids[0])
    new_inv = api("POST", "/sobjects/Invoice__c", {"Amount__c": 99.5, "Status__c": "Sent"})["id"]
    t0 = time.monotonic()
    seen = {}

    def arrived():
        seen["contact"] = psql("SELECT lastname || ' ' || email FROM salesforce.contact WHERE id = '%s'" % created)
        seen["account"] = psql("SELECT name FROM salesforce.account WHERE id = '%s'" % acc[1]["Id"])
        seen["deleted"] = psql("SELECT count(*) FROM salesforce.invoice__c WHERE id = '%s'" % inv_ids[0])
        seen["invoice"] = psql("SELECT amount__c || ' ' || status__c FROM salesforce.invoice__c WHERE id = '%s'"
                               % new_inv)
        return (seen["contact"] == "Arrives arrives@example.com\n" and seen["account"] == "Renamed upstream\n"
                and seen["deleted"] == "0\n" and seen["invoice"] == "99.5 Sent\n")

    done = wait_for("changes", arrived, 15)
    took = time.monotonic() - t0
    check("a create, an update, a delete and a custom-object create upstream arrive (%.1f s, poll interval %.1f s)"
          % (took, POLL), done and took < 3 * POLL + 2, seen)

    # Two updates of one record in the same second (SystemModstamp ties): the later one wins.
    target = acc[0]["Id"]
    for name in ("Same second one", "Same second two"):
        api("PATCH", "/sobjects/Account/" + target, {"Name": name})
    check("two updates within one second: the mirror ends on the second",
          wait_for("tie", lambda: psql("SELECT name FROM salesforce.account WHERE id = '%s'" % target)
                   == "Same second two\n", 10),
          psql("SELECT name, _apigres_updated_at FROM salesforce.account WHERE id = '%s'" % target))

    # Ordering: an older version of a record never overwrites the mirrored one; a newer does.
    # (The service role's mirror function, which the write path uses too, holds the rule.)
    cid = created
    row = rows("SELECT lastname, _apigres_updated_at FROM salesforce.contact WHERE id = '%s'" % cid)
    old = json.dumps([{"Id": cid, "LastName": "Stale", "SystemModstamp": "2020-01-01T00:00:00.000+0000"}])
    psql("SELECT apigres.\"mirror salesforce.contact\"('%s', 0, '{}')" % old, user="apigres_sf")
    after = rows("SELECT lastname, _apigres_updated_at FROM salesforce.contact WHERE id = '%s'" % cid)
    check("an older SystemModstamp does not overwrite the mirrored row (%s)" % after, after == row, (row, after))
    newer = json.dumps([{"Id": cid, "LastName": "Newer", "SystemModstamp": "2099-01-01T00:00:00.000+0000"}])
    psql("SELECT apigres.\"mirror salesforce.contact\"('%s', 0, '{}')" % newer, user="apigres_sf")
    check_eq("a newer one does", "Newer\n", psql("SELECT lastname FROM salesforce.contact WHERE id = '%s'" % cid))
    # the test's own versions out of the way: the row goes, an update upstream brings it back
    psql("SELECT apigres.\"mirror salesforce.contact\"('[]', 0, ARRAY['%s'])" % cid, user="apigres_sf")
    api("PATCH", "/sobjects/Contact/" + cid, {"LastName": "Arrives"})

    # --- the feed meets a record the write path is deleting: the mirror function, in a
    # client's transaction still open, has deleted the row and written its tombstone; an
    # update made upstream before the deletion reaches the feed, whose upsert waits for the
    # row's lock. Once the client commits, the row stays deleted (load.h, tombstoned).
    victim = soql_all("SELECT Id FROM Contact ORDER BY Id LIMIT 10")[9]["Id"]
    holder = subprocess.Popen(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "apigres_sf", "-d", DB,
                               "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                              env=dict(os.environ, PGAPPNAME="t73 mirror"))
    holder.stdin.write("BEGIN; SELECT apigres.\"mirror salesforce.contact\"('[]', "
                       "extract(epoch FROM now() + interval '1 hour'), ARRAY['%s']);\n" % victim)
    holder.stdin.flush()
    check("a client's transaction deletes a contact through the mirror function and holds its row",
          wait_for("holder", lambda: psql("SELECT state FROM pg_stat_activity WHERE application_name = 't73 mirror'")
                   == "idle in transaction\n", 10))
    api("PATCH", "/sobjects/Contact/" + victim, {"LastName": "Raced"})
    check("the feed's upsert of that contact waits for the row",
          wait_for("feed waits", lambda: psql("SELECT wait_event_type FROM pg_stat_activity WHERE application_name = "
                                              "'apigres sync' AND wait_event_type = 'Lock'") == "Lock\n", 15))
    holder.stdin.write("COMMIT;\n")
    holder.stdin.close()
    check("the client commits", holder.wait(timeout=30) == 0)
    time.sleep(3 * POLL)  # the feed's transaction ends, and a poll after it
    check_eq("the contact the client deleted stays deleted", "0\n",
             psql("SELECT count(*) FROM salesforce.contact WHERE id = '%s'" % victim))
    api("DELETE", "/sobjects/Contact/" + victim)  # upstream as the write path would have left it

    # --- the OAuth token expires: the worker refreshes it and goes on
    grants = control("GET", "/_fake/stats")["token_grants"]
    control("POST", "/_fake/expire_tokens")
    after_expiry = api("POST", "/sobjects/Contact", {"LastName": "AfterExpiry"})["id"]
    check("after every token expired, the worker refreshes and changes keep arriving",
          wait_for("refresh", lambda: psql("SELECT lastname FROM salesforce.contact WHERE id = '%s'" % after_expiry)
                   == "AfterExpiry\n", 15) and control("GET", "/_fake/stats")["token_grants"] > grants + 1)

    # --- a deletion window older than Salesforce keeps (15 days): the object is listed again
    a.send_signal(signal.SIGTERM)
    check("the worker stops on SIGTERM with status 0", a.wait(timeout=30) == 0)
    gone = soql_all("SELECT Id FROM Contact ORDER BY Id LIMIT 3")[2]["Id"]
    api("DELETE", "/sobjects/Contact/" + gone)
    control("POST", "/_fake/config", {"clock_offset_ms": 16 * 86400 * 1000})  # apigres was away 16 days
    fresh = api("POST", "/sobjects/Contact", {"LastName": "WhileAway"})["id"]
    c = start("c")
    check("a deletion window older than the replication limit makes the worker list the object again",
          wait_for("relist", lambda: "listing it again" in log_of(c), 30), log_of(c)[-1500:])
    check("the re-list finishes", wait_for("relist done", all_incremental, 120))
    time.sleep(3 * POLL)
    mirrored = dict(rows("SELECT id, lastname FROM salesforce.contact WHERE id IN ('%s', '%s')" % (gone, fresh)))
    check("the re-list removed the contact deleted meanwhile and added the one created",
          gone not in mirrored and mirrored.get(fresh) == "WhileAway", mirrored)
    compare("after the re-list, the mirror equals upstream")
    late = api("POST", "/sobjects/Contact", {"LastName": "AfterRelist"})["id"]
    api("DELETE", "/sobjects/Contact/" + fresh)
    check("changes keep arriving after the re-list, in the org's clock",
          wait_for("after relist", lambda: psql("SELECT string_agg(lastname, ',') FROM salesforce.contact "
                                                "WHERE id IN ('%s', '%s')" % (late, fresh)) == "AfterRelist\n", 15))
    c.send_signal(signal.SIGTERM)
    c.wait(timeout=30)

    logs = log_of(a) + log_of(c)
    leaked = re.findall(r"00D[0-9A-Za-z]{12}![0-9A-Za-z._]+", logs)
    check("no OAuth token, refresh token or client secret appears in any log (%d lines)" % logs.count("\n"),
          not leaked and REFRESH_TOKEN not in logs and CLIENT_SECRET not in logs and (token or "x") not in logs,
          leaked[:3])
finally:
    for x in procs:
        if x.poll() is None:
            x.send_signal(signal.SIGKILL)
            x.wait()
sys.exit(itest.status())
