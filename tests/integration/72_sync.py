"""The sync worker (sync/worker.c) against the Stripe fake and the real database.

Usage: 72_sync.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES, TEST_TMP).
Starts its own apigres instances (log files apigres-72-*.log), kills them with SIGKILL at
several points of a backfill (and crashes the database once), and checks that the synced
tables equal the fake's data.
"""

import base64
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import itest
from itest import check, check_eq, free_port, note, wait_for

FAKE = sys.argv[1]
PG_PORT = os.environ["PG_PORT"]
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
KEY = "sk_test_72_sync_secret_value"
DB = "apigres_sync"


def api(method, path, form=None, json_body=None):
    data, headers = None, {"Authorization": "Basic " + base64.b64encode((KEY + ":").encode()).decode()}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    if json_body is not None:
        data, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
    req = urllib.request.Request(FAKE + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def fake_all(path):
    """Every object of a list endpoint, paged as a client would."""
    out, after = {}, None
    while True:
        sep = "&" if "?" in path else "?"
        page = api("GET", path + sep + "limit=100" + ("&starting_after=" + after if after else ""))
        for o in page["data"]:
            out[o["id"]] = o
        if not page["has_more"]:
            return out
        after = page["data"][-1]["id"]


def psql(sql, db=DB, user="postgres"):
    r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", PG_PORT, "-U", user, "-d", db,
                        "-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql], capture_output=True, text=True)
    if r.returncode != 0:
        note("psql: " + r.stderr.strip())
        return None
    return r.stdout


def rows(sql):
    out = psql(sql)
    return [] if not out else [line.split("\t") for line in out.splitlines()]




procs = []


def start(name):
    log = open(os.path.join(TMP, "apigres-72-%s.log" % name), "ab")
    p = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % free_port(),
                          "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug"],
                         stdout=subprocess.DEVNULL, stderr=log)
    p.logname = log.name
    procs.append(p)
    return p


def crash_database():
    """Postgres stops as in a crash (immediate: no checkpoint, what is in its WAL buffers is
    lost, as the backfill's asynchronous commits may be) and starts again."""
    bindir = sorted(subprocess.run("ls -d /usr/lib/postgresql/*/bin", shell=True, capture_output=True,
                                   text=True).stdout.split(), key=lambda d: [int(x) for x in re.findall(r"\d+", d)])[-1]
    as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    data = os.path.join(os.environ["PG_DIR"], "data")
    for args in (["stop", "-m", "immediate"], ["start", "-l", os.path.join(os.environ["PG_DIR"], "postgres.log")]):
        r = subprocess.run(as_owner + [os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-t", "60"] + args,
                           capture_output=True, text=True)
        check("the database %s" % ("crashes" if args[0] == "stop" else "starts again"), r.returncode == 0, r.stderr)


def log_of(p):
    with open(p.logname, errors="replace") as f:
        return f.read()




def phases():
    return dict((c, p) for c, p in rows("SELECT collection, phase FROM apigres.sync_state ORDER BY 1"))


def all_incremental():
    p = phases()
    return len(p) == 4 and all(v == "incremental" for v in p.values())


def compare(desc):
    """The synced tables equal the fake: same ids, same values of a few fields each."""
    same = True
    details = []
    for coll, path, fields in (("customer", "/v1/customers", ["email", "name"]),
                               ("product", "/v1/products", ["name", "active"]),
                               ("price", "/v1/prices", ["unit_amount", "currency"]),
                               ("coupon", "/v1/coupons", ["percent_off", "duration"])):
        want = fake_all(path)
        got = dict((r[0], r[1:]) for r in rows("SELECT id, %s FROM stripe.%s" % (", ".join(fields), coll)))
        missing = set(want) - set(got)
        extra = set(got) - set(want)
        differ = [i for i in want if i in got and
                  [("" if want[i][f] is None else str(want[i][f]).lower() if isinstance(want[i][f], bool)
                    else str(want[i][f])) for f in fields]
                  != [{"t": "true", "f": "false"}.get(v, v) if f == "active" else v for f, v in zip(fields, got[i])]]
        if missing or extra or differ:
            same = False
            details.append("%s: %d upstream, %d mirrored, %d missing, %d extra, %d differ (%s)" %
                           (coll, len(want), len(got), len(missing), len(extra), len(differ), differ[:3]))
        else:
            details.append("%s %d" % (coll, len(want)))
    check(desc + ": " + ", ".join(details), same, "\n".join(details))
    return same


CONFIG = os.path.join(TMP, "apigres-72.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=apigres_sync dbname=%s" % (PG_PORT, DB),
               "read_role": "sync_reader",
               "syncs": [{"provider": "stripe", "api_base": FAKE, "credential": {"secret_key": KEY},
                          "collection_ids": ["stripe:customer", "stripe:product", "stripe:price", "stripe:coupon"],
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "poll_interval": 0.3}]}, f)

# --- the database, set up as README says: `apigres setup` piped into psql by a superuser
psql("DROP DATABASE IF EXISTS %s" % DB, db="postgres")
for stmt in ("DROP ROLE IF EXISTS apigres_sync", "DROP ROLE IF EXISTS reader_app", "DROP ROLE IF EXISTS sync_reader",
             "CREATE DATABASE %s" % DB):
    psql(stmt, db="postgres")
setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
check("apigres setup prints the SQL for the service and read roles",
      setup.returncode == 0 and '"apigres_sync" LOGIN' in setup.stdout and '"sync_reader" NOLOGIN' in setup.stdout,
      setup.stderr)
for attempt in ("applies", "applies again (idempotent)"):
    r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                        "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
    check("the setup SQL %s" % attempt, r.returncode == 0, r.stderr)
psql("CREATE ROLE reader_app LOGIN", db="postgres")
psql("GRANT sync_reader TO reader_app", db="postgres")

# --- upstream: 12,000 customers, products with prices, coupons
api("POST", "/_fake/seed", json_body={"customers": 12000, "products": 40, "coupons": 30})
stats = api("GET", "/_fake/stats")
note("the fake holds %s" % json.dumps(stats.get("objects")))
api("POST", "/_fake/config", json_body={"latency_ms": 40})

# --- backfill, killed with SIGKILL at five points
random.seed(72)
kills = 0
for i in range(5):
    p = start("a")
    time.sleep(random.uniform(0.3, 1.2))
    if i == 2:
        crash_database()
        note("the database crashed at %s" % rows("SELECT collection, phase, rows_loaded FROM apigres.sync_state "
                                                 "ORDER BY 1"))
        time.sleep(random.uniform(0.5, 1.5))  # apigres reconnects and goes on
    p.send_signal(signal.SIGKILL)
    p.wait()
    kills += 1
    progress = rows("SELECT collection, phase, rows_loaded FROM apigres.sync_state ORDER BY 1")
    note("killed at %s" % progress)
a = start("a")
check("the backfill finishes after %d kills" % kills, wait_for("backfill", all_incremental, 120))
api("POST", "/_fake/config", json_body={"latency_ms": 0})
compare("after kill -9 at %d points and a resume, the mirror equals upstream" % kills)
check_eq("no customer twice (primary key) and every one there",
         str(len(fake_all("/v1/customers"))), (psql("SELECT count(DISTINCT id) FROM stripe.customer") or "").strip())
resumed = log_of(a).count("resumes from its cursor") + sum(log_of(p).count("resumes from its cursor") for p in procs[:-1])
check("at least one backfill resumed from its cursor (%d)" % resumed, resumed >= 1)
status = rows("SELECT collection, phase, rows_loaded, last_error IS NULL FROM apigres.sync_status ORDER BY 1")
check("sync_status shows every collection incremental without error: %s" % status,
      all(r[1] == "incremental" and r[3] == "t" for r in status) and len(status) == 4)
check("the read role reads the synced tables and the status",
      psql("SELECT count(*) > 0 FROM stripe.customer", user="reader_app") == "t\n" and
      psql("SELECT count(*) FROM apigres.sync_status", user="reader_app") == "4\n")

# --- changes upstream arrive
some = list(fake_all("/v1/customers"))[:2]
created = api("POST", "/v1/customers", form={"email": "arrives@example.com", "name": "Arrives"})
api("POST", "/v1/customers/" + some[0], form={"email": "updated@example.com"})
api("DELETE", "/v1/customers/" + some[1])
coupon = api("POST", "/v1/coupons", form={"percent_off": "15", "duration": "once"})


seen = {}


def arrived():
    seen.clear()
    seen.update(rows("SELECT id, email FROM stripe.customer WHERE id IN ('%s', '%s', '%s')" %
                     (created["id"], some[0], some[1])))
    seen["coupon"] = psql("SELECT count(*) FROM stripe.coupon WHERE id = '%s'" % coupon["id"])
    return (seen.get(created["id"]) == "arrives@example.com" and seen.get(some[0]) == "updated@example.com"
            and some[1] not in seen and seen["coupon"] == "1\n")


t0 = time.monotonic()
done = wait_for("changes", arrived, 15)
check("a create, an update and a delete upstream arrive (%.1f s)" % (time.monotonic() - t0), done,
      "%s (created %s, updated %s, deleted %s)" % (seen, created["id"], some[0], some[1]))

# --- the feed meets a record the write path is deleting. The write path's mirror deletes
# the row and writes its tombstone in the client's transaction, still open; an update of
# that record (older than the deletion) reaches the feed, whose upsert checked the
# tombstones in its own snapshot, before they were committed, and waits for the row's lock.
# Once the client commits, the row is gone and the upsert would insert it again: the
# worker's statement after the upsert, in its transaction, sees the tombstone.
def hold_deletion(record):
    """A transaction that deletes record's row and writes its tombstone as the write path's
    mirror does (at a version newer than any listing or event of this test), left open."""
    holder = subprocess.Popen(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                               "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                              env=dict(os.environ, PGAPPNAME="t72 mirror"))
    holder.stdin.write("SET ROLE apigres_sync; BEGIN; DELETE FROM stripe.customer WHERE id = '%s'; "
                       "INSERT INTO apigres.tombstones VALUES ('stripe.customer', '%s', now() + interval '1 hour');\n"
                       % (record, record))
    holder.stdin.flush()
    check("a client's transaction deletes a record and holds its row",
          wait_for("holder", lambda: psql("SELECT state FROM pg_stat_activity WHERE application_name = 't72 mirror'")
                   == "idle in transaction\n", 10))
    return holder


def commit_once_waited_for(holder, who, application_name):
    check("the %s waits for the row" % who,
          wait_for(who, lambda: psql("SELECT wait_event_type FROM pg_stat_activity WHERE application_name = '%s' "
                                     "AND wait_event_type = 'Lock'" % application_name) == "Lock\n", 20))
    holder.stdin.write("COMMIT;\n")
    holder.stdin.close()
    check("the client commits", holder.wait(timeout=30) == 0)


victim = sorted(fake_all("/v1/customers"))[7]
holder = hold_deletion(victim)
api("POST", "/v1/customers/" + victim, form={"email": "raced@example.com"})
last_event = api("GET", "/v1/events?limit=1")["data"][0]["id"]
commit_once_waited_for(holder, "feed's upsert of that record", "apigres sync")
check("the feed goes on past the update",
      wait_for("feed cursor", lambda: psql("SELECT cursor FROM apigres.sync_feed") == last_event + "\n", 15))
check_eq("the record the client deleted stays deleted", "0",
         psql("SELECT count(*) FROM stripe.customer WHERE id = '%s'" % victim).strip())
api("DELETE", "/v1/customers/" + victim)  # upstream as the write path would have left it

# the same for the write path's repair (its service connection re-applying a record after
# the client's transaction ended): the mirror function, called by the owner, waits for the
# row a client's deletion holds, and leaves it deleted
victim = sorted(fake_all("/v1/customers"))[8]
holder = hold_deletion(victim)
repair = subprocess.Popen(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "apigres_sync", "-d", DB,
                           "-v", "ON_ERROR_STOP=1", "-c",
                           "SELECT apigres.\"mirror stripe.customer\"('[{\"id\": \"%s\", \"email\": "
                           "\"repaired@example.com\"}]', extract(epoch FROM now()), '{}')" % victim],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, PGAPPNAME="t72 repair"))
commit_once_waited_for(holder, "repair's mirror call", "t72 repair")
check("the repair's call ends", repair.wait(timeout=30) == 0, repair.stderr.read())
check_eq("the record the client deleted stays deleted after the repair", "0",
         psql("SELECT count(*) FROM stripe.customer WHERE id = '%s'" % victim).strip())
api("DELETE", "/v1/customers/" + victim)

# --- the database ends the worker's connection: it reconnects, takes the lease again, goes on
leases = log_of(a).count("took the lease")
killed = psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'apigres sync'",
              db="postgres")
after_kill = api("POST", "/v1/customers", form={"email": "after-disconnect@example.com"})
check("after the database ended its connection (%s), the worker reconnects and changes keep arriving"
      % (killed or "").strip(),
      wait_for("reconnect", lambda: psql("SELECT email FROM stripe.customer WHERE id = '%s'" % after_kill["id"])
               == "after-disconnect@example.com\n", 20) and log_of(a).count("took the lease") > leases,
      log_of(a)[-2000:])

# --- two instances: one lease; the second takes over when the first dies
b = start("b")
check("a second instance waits for the lease",
      wait_for("b waits", lambda: "another apigres holds the lease" in log_of(b), 10))
a.send_signal(signal.SIGKILL)
a.wait()
t0 = time.monotonic()
took = wait_for("b takes over", lambda: "took the lease" in log_of(b), 20)
check("after kill -9 of the first, the second takes the lease (%.1f s)" % (time.monotonic() - t0), took)
late = api("POST", "/v1/customers", form={"email": "after-takeover@example.com"})
check("changes keep arriving through the second instance",
      wait_for("takeover changes",
               lambda: psql("SELECT email FROM stripe.customer WHERE id = '%s'" % late["id"]) == "after-takeover@example.com\n",
               15))
b.send_signal(signal.SIGTERM)
check("the second instance stops on SIGTERM with status 0", b.wait(timeout=30) == 0)

# --- a feed cursor older than the retention: every collection is listed again
api("POST", "/_fake/config", json_body={"event_retention_seconds": 1})
gone = list(fake_all("/v1/customers"))[5]
api("DELETE", "/v1/customers/" + gone)
fresh = api("POST", "/v1/customers", form={"email": "while-away@example.com"})
time.sleep(2.2)
# and, while the API serves its pages slowly, the write path deletes a record of its tenth
# page: a page upserted (the table is full: COPY is refused) waits for the row
raced = list(fake_all("/v1/customers"))[950]
api("POST", "/_fake/config", json_body={"latency_ms": 150})
c = start("c")
check("an expired cursor makes the worker list everything again",
      wait_for("relist", lambda: "listing every collection again" in log_of(c), 20))
holder = hold_deletion(raced)
commit_once_waited_for(holder, "re-list's page", "apigres sync pages")
api("POST", "/_fake/config", json_body={"latency_ms": 0})
check("the re-list finishes", wait_for("relist done", all_incremental, 60))
check("the re-list loaded its pages by the upsert from its start: no COPY met the rows already there",
      "customer backfill starts over the rows already there, by the upsert" in log_of(c)
      and "COPY refused" not in log_of(c), re.findall(r".*COPY refused.*", log_of(c))[:2])
check_eq("the record deleted while its page waited stays deleted", "0",
         psql("SELECT count(*) FROM stripe.customer WHERE id = '%s'" % raced).strip())
upserted = [(int(a), int(b)) for a, b in re.findall(r"customer pages (\d+)-(\d+) \(\d+ rows\) go in one transaction, "
                                                   r"by the upsert", log_of(c))]
upserted += [(int(a), int(b)) for a, b in re.findall(r"pages (\d+)-(\d+): COPY (?:refused|not started)", log_of(c))]
check("its page was loaded by the upsert", any(a <= 10 <= b for a, b in upserted), upserted[:8])
api("DELETE", "/v1/customers/" + raced)
api("POST", "/_fake/config", json_body={"event_retention_seconds": 2592000})
mirrored = dict(rows("SELECT id, email FROM stripe.customer WHERE id IN ('%s', '%s')" % (gone, fresh["id"])))
check("the re-list removed what was deleted upstream meanwhile and added what was created",
      gone not in mirrored and mirrored.get(fresh["id"]) == "while-away@example.com", mirrored)
check_eq("the re-list started on rows already there, so its end swept the ones it did not list", "t",
         psql("SELECT backfill_sweeps FROM apigres.sync_state WHERE collection = 'customer'").strip())
compare("after the re-list, the mirror equals upstream")
c.send_signal(signal.SIGTERM)
c.wait(timeout=30)

# --- a page the database refuses: the listing stops there, unfinished (nothing is swept),
# and goes on from its cursor once the database accepts the page
psql("ALTER TABLE stripe.customer ADD CONSTRAINT t72_refuse CHECK (email IS DISTINCT FROM 'refused@example.com') "
     "NOT VALID")
refused = api("POST", "/v1/customers", form={"email": "refused@example.com"})
before = psql("SELECT count(*) FROM stripe.customer").strip()
psql("UPDATE apigres.sync_state SET phase = 'backfill', cursor = '' WHERE collection = 'customer'")
d = start("d")
check("a page the database refuses is recorded as the collection's error",
      wait_for("refusal", lambda: "t72_refuse" in (psql("SELECT last_error FROM apigres.sync_state "
                                                         "WHERE collection = 'customer'") or ""), 20))
time.sleep(2.5)  # a retry of the refused page meanwhile
check_eq("the refused listing is not finished: customer stays in its backfill", "backfill",
         psql("SELECT phase FROM apigres.sync_state WHERE collection = 'customer'").strip())
check_eq("the refused listing removed no mirrored customer", before,
         psql("SELECT count(*) FROM stripe.customer").strip())
psql("ALTER TABLE stripe.customer DROP CONSTRAINT t72_refuse")
check("once the database accepts the page, the listing finishes", wait_for("accepted", all_incremental, 30))
check_eq("and mirrors the customer it refused before", "refused@example.com",
         psql("SELECT email FROM stripe.customer WHERE id = '%s'" % refused["id"]).strip())
compare("after the refused page, the mirror equals upstream")
d.send_signal(signal.SIGTERM)
d.wait(timeout=30)

# --- a database slower than the API: the pages that arrive while a transaction loads go
# in the next one (at most 16), and a record deleted through apigres while the backfill
# lists it (its tombstone is newer than the listing) stays out: the COPY takes it, the
# transaction's own statement removes it. Killed with SIGKILL during a transaction of
# several pages, the backfill resumes from its cursor and ends equal to upstream.
ids = sorted(fake_all("/v1/customers"))
stale = ids[len(ids) // 2]
psql("SET ROLE apigres_sync; TRUNCATE stripe.customer; "
     "INSERT INTO apigres.tombstones VALUES ('stripe.customer', '%s', now() + interval '1 hour'); "
     "UPDATE apigres.sync_state SET phase = 'backfill', cursor = '' WHERE collection = 'customer'" % stale)
psql("CREATE FUNCTION t72_slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_sleep(0.1); RETURN NULL; "
     "END$$; CREATE TRIGGER t72_slow AFTER INSERT ON stripe.customer FOR EACH STATEMENT EXECUTE FUNCTION t72_slow()")
TX = re.compile(r"customer pages (\d+)-(\d+) \((\d+) rows\) go in one transaction, by (COPY|the upsert)")
e = start("e")
several = wait_for("a transaction of several pages",
                   lambda: any(int(m[1]) > int(m[0]) for m in TX.findall(log_of(e))), 30)
e.send_signal(signal.SIGKILL)
e.wait()
note("killed during a transaction of several pages at %s" % rows("SELECT rows_loaded FROM apigres.sync_state "
                                                                   "WHERE collection = 'customer'"))
check("pages that arrive while a transaction loads go in the next one", several)
e = start("e2")
check("the listing into an empty table, killed and resumed, finishes", wait_for("slow listing", all_incremental, 60))
psql("DROP TRIGGER t72_slow ON stripe.customer; DROP FUNCTION t72_slow()")
txs = [(int(a), int(b), int(n), how) for a, b, n, how in TX.findall(log_of(e))]
check("after the resume too, by COPY, at most 16 pages each and in listing order: %s" % txs[:3],
      txs and all(how == "COPY" and 1 <= b - a + 1 <= 16 for a, b, n, how in txs) and
      any(b > a for a, b, n, how in txs) and all(txs[i + 1][0] == txs[i][1] + 1 for i in range(len(txs) - 1)))
check("the resumed listing started from its cursor", "resumes from its cursor" in log_of(e))
copied = re.search(r"customer backfill done: \d+ rows in (\d+) pages \((\d+) by COPY", log_of(e))
check_eq("a listing into an empty table has nothing to sweep at its end", "f",
         psql("SELECT backfill_sweeps FROM apigres.sync_state WHERE collection = 'customer'").strip())
check("its pages were loaded with COPY", copied and copied.group(1) == copied.group(2) and int(copied.group(2)) > 1,
      copied and copied.group(0))
check_eq("the record with a newer tombstone stayed out; every other one is there",
         "0 %d" % (len(ids) - 1),
         psql("SELECT count(*) FILTER (WHERE id = '%s'), count(*) FILTER (WHERE id <> '%s') FROM stripe.customer"
              % (stale, stale)).strip().replace("\t", " "))
e.send_signal(signal.SIGTERM)
e.wait(timeout=30)

logs = "".join(log_of(p) for p in procs)
check("the API key appears in no log", KEY not in logs and "72_sync_secret" not in logs)
sys.exit(itest.status())
