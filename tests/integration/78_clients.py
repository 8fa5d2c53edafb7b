"""The client matrix: every driver and ORM under tests/clients/ against one apigres.

Usage: 78_clients.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES, TEST_TMP).
Starts its own apigres with one Stripe sync against the (seeded) fake, waits for the backfill,
creates an application table joined to stripe.customer, then runs each client's `run`
program (tests/clients/NAME/run) with the connection string of the proxy and a customer of
its own. A client prints "ok - ..." / "not ok - ..." lines and, per row of the matrix it
covers, one line

    # matrix: ROW | LIBRARY VERSION | RUNTIME VERSION | WHERE IT CAME FROM

or "# matrix: ROW | unavailable | ... | WHY" when its install needs something this machine
cannot reach. The rows make the table in $TEST_TMP/client-matrix.md; with
UPDATE_README=1 that table replaces README.md's (make client-matrix).
Then it runs examples/node, examples/python and examples/rails as their comments say.
Environment: CLIENTS (regex) runs only the clients whose directory name matches (and the
examples named example-node, example-python, example-rails that match).
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import itest
from itest import check, check_eq, free_port, wait_for

FAKE = sys.argv[1]
PG_PORT = os.environ["PG_PORT"]
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLIENTS_DIR = os.path.join(ROOT, "tests", "clients")
KEY = "sk_test_78_clients_secret_value"
DB = "apigres_clients"
USER, PASSWORD = "client_app", "client-app-secret"
PROXY_PORT = free_port()


def psql(sql, db=DB):
    r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", db,
                        "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=60)
    return (r.stdout + r.stderr).strip()


def seed(body):
    req = urllib.request.Request(FAKE + "/_fake/seed", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


clients = sorted(d for d in os.listdir(CLIENTS_DIR)
                 if os.access(os.path.join(CLIENTS_DIR, d, "run"), os.X_OK)
                 and re.search(os.environ.get("CLIENTS", "."), d))

CONFIG = os.path.join(TMP, "apigres-78.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=apigres_c78 dbname=%s" % (PG_PORT, DB),
               "read_role": "c78_reader",
               "syncs": [{"provider": "stripe", "api_base": FAKE, "credential": {"secret_key": KEY},
                          "collection_ids": ["stripe:customer"],
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "request_timeout": 5, "poll_interval": 0.5}]}, f)

# --- the database as README says, an application role with ordinary grants
psql("DROP DATABASE IF EXISTS %s" % DB, "postgres")
for stmt in ("DROP ROLE IF EXISTS apigres_c78", "DROP ROLE IF EXISTS %s" % USER, "DROP ROLE IF EXISTS c78_reader",
             "CREATE DATABASE %s" % DB, "CREATE ROLE %s LOGIN PASSWORD '%s'" % (USER, PASSWORD)):
    psql(stmt, "postgres")
setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                    "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
check("the setup SQL applies", r.returncode == 0, r.stderr)
psql("GRANT c78_reader TO %s" % USER)

seed({"customers": max(20, 2 * len(clients)), "products": 0, "coupons": 0})
log = open(os.path.join(TMP, "apigres-78.log"), "ab")
proc = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % PROXY_PORT,
                         "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "info"],
                        stdout=subprocess.DEVNULL, stderr=log)
check("the backfill finishes", wait_for("backfill", lambda: psql(
    "SELECT phase FROM apigres.sync_state") == "incremental", 60))
psql("GRANT INSERT, UPDATE, DELETE ON stripe.customer TO %s" % USER)
psql("CREATE TABLE public.orders (id serial PRIMARY KEY, customer_id text NOT NULL, note text NOT NULL,"
     " amount integer NOT NULL)")
psql("GRANT ALL ON public.orders, public.orders_id_seq TO %s" % USER)
psql("GRANT CREATE ON SCHEMA public TO %s" % USER)  # the examples create their own table
ids = psql("SELECT id FROM stripe.customer ORDER BY id").split("\n")

# --- each client with a customer and an order of its own
rows = []
for i, name in enumerate(clients):
    cid = ids[i]
    email = psql("SELECT email FROM stripe.customer WHERE id = '%s'" % cid)
    psql("INSERT INTO public.orders (customer_id, note, amount) VALUES ('%s', 'order of %s', %d)" % (cid, name, 100 + i))
    work = os.path.join(TMP, "client-" + name)
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, DATABASE_URL="postgres://%s:%s@127.0.0.1:%d/%s" % (USER, PASSWORD, PROXY_PORT, DB),
               PGHOST="127.0.0.1", PGPORT=str(PROXY_PORT), PGUSER=USER, PGPASSWORD=PASSWORD, PGDATABASE=DB,
               CUSTOMER_ID=cid, CUSTOMER_EMAIL=email, ORDER_NOTE="order of " + name, ORDER_AMOUNT=str(100 + i),
               FAKE_URL=FAKE, STRIPE_TEST_KEY=KEY, CLIENT_TMP=work)
    itest.note("client " + name)
    started = time.monotonic()
    try:
        run = subprocess.run([os.path.join(CLIENTS_DIR, name, "run")], cwd=os.path.join(CLIENTS_DIR, name), env=env,
                             capture_output=True, text=True, timeout=900)
        out, err, code = run.stdout, run.stderr, run.returncode
    except subprocess.TimeoutExpired as e:
        out, err, code = (e.stdout or b"").decode(errors="replace"), "timed out after 900 s", -1
    sys.stdout.write(out)
    sys.stdout.flush()
    with open(os.path.join(work, "stderr.log"), "w") as f:
        f.write(err)
    lines = re.findall(r"^# matrix: (.*)$", out, re.M)
    checks = len(re.findall(r"^ok - ", out, re.M))
    check("%s: ran to its end (%d checks, %.1f s)" % (name, checks, time.monotonic() - started),
          code == 0 and lines and checks > 0 or code == 0 and all("| unavailable |" in m for m in lines) and lines,
          "exit status %s\n%s" % (code, err[-3000:]))
    for m in lines:
        rows.append([c.strip() for c in m.split("|")])
    check_eq("%s: the customer of this client still equals upstream after its writes" % name,
             "same", "same" if psql("SELECT email FROM stripe.customer WHERE id = '%s'" % cid) ==
             json.load(urllib.request.urlopen(urllib.request.Request(
                 FAKE + "/v1/customers/" + cid, headers={"Authorization": "Basic " + base64.b64encode(
                     (KEY + ":").encode()).decode()}), timeout=30)).get("email") else "differs")

# --- the examples (examples/node, python, rails) run as their comments say, against this proxy
EXAMPLES = {"node": "test -d node_modules || npm ci --no-audit --no-fund --silent; exec node app.js",
            "python": "exec /usr/bin/python3 app.py", "rails": "exec /usr/bin/ruby app.rb"}
for name, cmd in sorted(EXAMPLES.items()):
    if not re.search(os.environ.get("CLIENTS", "."), "example-" + name):
        continue
    env = dict(os.environ, DATABASE_URL="postgres://%s:%s@127.0.0.1:%d/%s" % (USER, PASSWORD, PROXY_PORT, DB))
    run = subprocess.run(["bash", "-c", cmd], cwd=os.path.join(ROOT, "examples", name), env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout
    check("examples/%s: creates, joins, renames, is refused with 23514 and deletes" % name,
          run.returncode == 0 and re.search(r"^created cus_", out, re.M) and "totalling 5900" in out
          and re.search(r"^refused: 23514 Error updating customer cus_\w+: Invalid email address", out, re.M)
          and re.search(r"^deleted: (DELETE 1|true)", out, re.M), out + run.stderr[-2000:])

# --- the matrix, generated from this run
table = ["| client | library | runtime | installed from |", "|---|---|---|---|"]
for r in sorted(rows, key=lambda r: r[0].lower()):
    table.append("| " + " | ".join(r) + " |")
with open(os.path.join(TMP, "client-matrix.md"), "w") as f:
    f.write("\n".join(table) + "\n")
readme_path = os.path.join(ROOT, "README.md")
readme = open(readme_path).read()
begin, end = "<!-- client-matrix:begin -->\n", "<!-- client-matrix:end -->"
if begin in readme and end in readme:
    head, rest = readme.split(begin, 1)
    current, tail = rest.split(end, 1)
    if os.environ.get("UPDATE_README") == "1" and "CLIENTS" not in os.environ:
        with open(readme_path, "w") as f:
            f.write(head + begin + "\n".join(table) + "\n" + end + tail)
        itest.note("README.md's client matrix updated")
    elif current.strip() != "\n".join(table).strip():
        itest.note("README.md's client matrix differs from this run's (make client-matrix updates it)")

proc.send_signal(signal.SIGTERM)
check("apigres stops on SIGTERM", proc.wait(timeout=30) == 0)
with open(os.path.join(TMP, "apigres-78.log"), errors="replace") as f:
    check("the API key appears in no log", KEY not in f.read())
sys.exit(itest.status())
