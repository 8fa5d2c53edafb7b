"""apigres with --threads 3 (proxy/threads.h): what the loops share works across them.

Usage: 92_threads.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES, TEST_TMP).
Starts its own apigres (log apigres-92.log) with one Stripe sync against the fake and
--threads 3 --max-client-conn 8 --shutdown-timeout 1. Connections go to the loops in turn, so
six connections opened one after another are two on each loop, which SIGUSR1's per-loop
stats lines show. On those six: concurrent writes in both protocols, cancels of plain
queries and of writes of 12 rows waiting for the API (each CancelRequest lands on whichever loop's
turn it is), unknown keys logged once, max_client_conn counted across the loops, a burst of
short connections, and a graceful stop that reaches every loop.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import itest
import psycopg
from itest import check, check_eq, free_port, pgraw, wait_for

FAKE = sys.argv[1]
PG_PORT = os.environ["PG_PORT"]
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
KEY = "sk_test_92_threads_secret_value"
DB = "apigres_threads"
PROXY_PORT = free_port()
LOG = os.path.join(TMP, "apigres-92.log")


def api(method, path, json_body=None):
    data, headers = None, {"Authorization": "Basic " + base64.b64encode((KEY + ":").encode()).decode()}
    if json_body is not None:
        data, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
    req = urllib.request.Request(FAKE + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def direct(sql, db=DB):
    r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", db,
                        "-c", sql], capture_output=True, text=True, timeout=60)
    return (r.stdout + r.stderr).strip()


def connect(user="t92_writer"):
    return psycopg.connect(host="127.0.0.1", port=PROXY_PORT, user=user, dbname=DB, autocommit=True,
                           connect_timeout=10)


def log_text():
    with open(LOG, errors="replace") as f:
        return f.read()


def stats_lines(before):
    """The stats lines SIGUSR1 wrote after offset before: {thread: {key: value}}, the total's
    as thread "total"."""
    found = {}
    for line in log_text()[before:].splitlines():
        if "stats: thread=" in line:
            kv = dict(p.split("=", 1) for p in line.split("stats: ", 1)[1].split())
            found[kv["thread"]] = kv
        elif "stats: total " in line:
            found["total"] = dict(p.split("=", 1) for p in line.split("stats: total ", 1)[1].split())
    return found


# --- a database set up as README says, a role that may write, customers in the fake
CONFIG = os.path.join(TMP, "apigres-92.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=apigres_t92 dbname=%s" % (PG_PORT, DB),
               "read_role": "t92_reader",
               "syncs": [{"provider": "stripe", "api_base": FAKE, "credential": {"secret_key": KEY},
                          "collection_ids": ["stripe:customer"],
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "request_timeout": 10, "poll_interval": 0.5},
                         # a second sync, so that two workers set up the shared schema at once
                         {"provider": "stripe", "name": "stripe_b", "schema": "stripe_b", "api_base": FAKE,
                          "credential": {"secret_key": KEY}, "collection_ids": ["stripe:product"],
                          "rate_limit": {"allowed_requests": 0, "interval": 1}, "poll_interval": 0.5}]}, f)
direct("DROP DATABASE IF EXISTS %s" % DB, "postgres")
for stmt in ("DROP ROLE IF EXISTS apigres_t92", "DROP ROLE IF EXISTS t92_writer", "DROP ROLE IF EXISTS t92_reader",
             "CREATE DATABASE %s" % DB):
    direct(stmt, "postgres")
setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                    "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
check("the setup SQL applies", r.returncode == 0, r.stderr)
direct("CREATE ROLE t92_writer LOGIN IN ROLE t92_reader", "postgres")
api("POST", "/_fake/seed", json_body={"customers": 60, "products": 0, "coupons": 0})

log = open(LOG, "ab")
proc = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % PROXY_PORT,
                         "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug",
                         "--threads", "3", "--max-client-conn", "8", "--shutdown-timeout", "1"],
                        stdout=subprocess.DEVNULL, stderr=log)
check("both backfills finish", wait_for("backfill", lambda: direct(
    "SELECT string_agg(phase, ',' ORDER BY sync) FROM apigres.sync_state") == "incremental,incremental", 60))
check("the two workers set up the shared schema one at a time (no \"tuple concurrently updated\", no retry)",
      "concurrently updated" not in log_text() and "WARN sync" not in log_text(), log_text()[-3000:])
direct("GRANT INSERT, UPDATE, DELETE ON stripe.customer TO t92_writer")
ids = direct("SELECT id FROM stripe.customer ORDER BY id").split("\n")
check_eq("60 customers mirrored", 60, len(ids))
check("apigres says it serves clients on 3 threads", "serving clients on 3 threads" in log_text())

# --- six connections one after another: two on each loop
conns = [connect() for _ in range(6)]
mark = len(log_text())
proc.send_signal(signal.SIGUSR1)
wait_for("stats lines", lambda: len(stats_lines(mark)) == 4, 5)
per_loop = stats_lines(mark)
total = per_loop.pop("total", {})
check_eq("SIGUSR1: one stats line per loop, two of the six clients on each",
         {"1": "2", "2": "2", "3": "2"}, {t: kv["clients_active"] for t, kv in per_loop.items()})
check("and a total line: each counter the sum of the loops' (%s)" % " ".join("%s=%s" % kv for kv in total.items()),
      total and all(int(v) == sum(int(kv[k]) for kv in per_loop.values()) for k, v in total.items()), total)

# --- a write on each connection at once, half of them in the extended protocol
results = [None] * 6


def write(i):
    try:
        with conns[i].cursor() as cur:
            if i % 2:
                cur.execute("UPDATE stripe.customer SET name = %s WHERE id = %s", ("loop write %d" % i, ids[i]))
            else:
                cur.execute("UPDATE stripe.customer SET name = 'loop write %d' WHERE id = '%s'" % (i, ids[i]),
                            prepare=False)
            results[i] = cur.statusmessage
    except Exception as exc:  # noqa: BLE001
        results[i] = repr(exc)


api("POST", "/_fake/config", json_body={"latency_ms": 100})  # so that the six overlap
workers = [threading.Thread(target=write, args=(i,)) for i in range(6)]
for w in workers:
    w.start()
for w in workers:
    w.join(60)
api("POST", "/_fake/config", json_body={"latency_ms": 0})
check_eq("six concurrent writes on three loops all answer UPDATE 1", ["UPDATE 1"] * 6, results)
check_eq("the API has every write", ["loop write %d" % i for i in range(6)],
         [api("GET", "/v1/customers/" + ids[i]).get("name") for i in range(6)])
check_eq("the mirror has every write", ["loop write %d" % i for i in range(6)],
         [direct("SELECT name FROM stripe.customer WHERE id = '%s'" % ids[i]) for i in range(6)])


# --- cancels: each CancelRequest comes on a new connection, which goes to the next loop
def cancelled(i, sql, what):
    """Runs sql on conns[i], cancels it after 0.5 s; the error's SQLSTATE and the seconds it
    took after the cancel."""
    out = {}

    def run():
        try:
            with conns[i].cursor() as cur:
                cur.execute(sql)
            out["result"] = "completed"
        except psycopg.Error as exc:
            out["result"] = exc.sqlstate
        out["done"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    conns[i].cancel()
    t.join(30)
    return out.get("result"), out.get("done", t0 + 99) - t0


# one connection more: from here on each CancelRequest lands on the loop after its target's
connect().close()
passed0 = log_text().count("(passed from thread")
for i in range(6):
    state, took = cancelled(i, "SELECT pg_sleep(20)", "sleep")
    check("connection %d: pg_sleep(20) cancelled (57014) in %.2f s" % (i + 1, took),
          state == "57014" and took < 5, state)
check_eq("the six CancelRequests were each passed to their target's loop", 6,
         log_text().count("(passed from thread") - passed0)
# a write of 12 rows makes 8 calls at once: the cancel stops the other 4 from starting
api("POST", "/_fake/config", json_body={"latency_ms": 1000})
for i in range(3):
    rows = ids[6 + 12 * i:18 + 12 * i]
    state, took = cancelled(i, "UPDATE stripe.customer SET name = 'cancelled?' WHERE id IN (%s)"
                            % ", ".join("'%s'" % r for r in rows), "write")
    check("connection %d: a write of 12 rows waiting for the API cancelled (57014) in %.2f s" % (i + 1, took),
          state == "57014" and took < 2.5, state)
    upstream = [api("GET", "/v1/customers/" + r).get("name") for r in rows]
    check("connection %d: some of its calls went through, not all (%d of 12)"
          % (i + 1, upstream.count("cancelled?")), 0 < upstream.count("cancelled?") < 12)
    check_eq("connection %d: the mirror equals upstream after the cancelled write" % (i + 1), upstream,
             [direct("SELECT name FROM stripe.customer WHERE id = '%s'" % r) for r in rows])
api("POST", "/_fake/config", json_body={"latency_ms": 0})
check_eq("so were the three CancelRequests of the writes", 9, log_text().count("(passed from thread") - passed0)

unknown0 = log_text().count("cancel request with an unknown key")
for n in range(6):
    c = pgraw.connect("127.0.0.1", PROXY_PORT)
    c.send(pgraw.cancel_request(12345 + n, 0xdeadbeef))
    c.close()
check("six cancel requests with unknown keys are logged once each, whichever loop got them",
      wait_for("unknown keys", lambda: log_text().count("cancel request with an unknown key") - unknown0 == 6, 5)
      and (time.sleep(0.5) or log_text().count("cancel request with an unknown key") - unknown0 == 6),
      log_text().count("cancel request with an unknown key") - unknown0)
alive = []
for i in range(6):
    with conns[i].cursor() as cur:
        cur.execute("SELECT %s::int" % i)
        alive.append(cur.fetchone()[0])
check_eq("all six connections still work", list(range(6)), alive)

# --- max_client_conn (8) counts the clients of every loop
extra = [connect(), connect()]
try:
    connect()
    refused = "connected"
except psycopg.OperationalError as exc:
    refused = str(exc)
check("the ninth client is refused with 53300, wherever it landed", "too many clients" in refused, refused)
extra.pop().close()
time.sleep(0.3)
try:
    again = connect()
    with again.cursor() as cur:
        cur.execute("SELECT 'in'")
        got = cur.fetchone()[0]
    extra.append(again)
except psycopg.Error as exc:
    got = str(exc)
check_eq("after one leaves, the next client gets in", "in", got)
for c in extra:
    c.close()

# --- a burst of short connections, handed to the loops while they work
burst = [None] * 40


def short(i):
    """Past 2 * max_client_conn connections, apigres refuses new ones (53300: at their
    StartupMessage, or past 4 * max_client_conn at once): try again."""
    for attempt in range(200):
        try:
            with psycopg.connect(host="127.0.0.1", port=PROXY_PORT, user="t92_writer", dbname=DB,
                                 connect_timeout=10) as c:
                burst[i] = c.execute("SELECT %s::int" % i).fetchone()[0]
                return
        except psycopg.OperationalError as exc:
            burst[i] = repr(exc)
            time.sleep(0.05)


workers = [threading.Thread(target=short, args=(i,)) for i in range(40)]
for w in workers:
    w.start()
for w in workers:
    w.join(60)
check_eq("40 short connections at once (max 8 at a time) all answer", list(range(40)), burst)

# --- a second apigres on the same address: refused before any loop serves, all of them closed
r = subprocess.run([APIGRES, "--listen", "127.0.0.1:%d" % PROXY_PORT, "--threads", "3", "--database",
                    "host=127.0.0.1 port=%s" % PG_PORT], capture_output=True, text=True, timeout=30)
check("a second apigres --threads 3 on the same port exits 1: address already in use",
      r.returncode == 1 and "address already in use" in r.stderr, "%s %s" % (r.returncode, r.stderr[-2000:]))

# --- SIGTERM: every loop stops; clients still connected after shutdown_timeout get 57P01
proc.send_signal(signal.SIGTERM)
try:
    rc = proc.wait(15)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = "still running"
check_eq("apigres exits 0 on SIGTERM with clients on every loop", 0, rc)
text = log_text()
check_eq("each loop terminated its two remaining clients with 57P01", 6,
         text.count("terminating connection due to administrator command"))
check("apigres stopped", "apigres stopped" in text)
gone = 0
for c in conns:
    try:
        c.execute("SELECT 1")
    except psycopg.Error:
        gone += 1
check_eq("the six clients are disconnected", 6, gone)
sys.exit(itest.status())
