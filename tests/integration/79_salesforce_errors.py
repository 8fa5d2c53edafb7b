"""Every Salesforce error class a write can meet (upstream/salesforce.c's sf_codes), end to end:
through apigres in the simple protocol (psql) and the extended one (psycopg 3, prepared), against
the Salesforce fake and the real database.

Usage: 79_salesforce_errors.py FAKE_URL, with tests/run.sh's environment (PG_PORT, APIGRES,
TEST_TMP). Starts its own apigres (log apigres-79.log, pid in apigres-79.pid) with one
Salesforce sync of Account, Contact and Invoice__c, waits for the backfill, then makes Salesforce
refuse writes the way it does (a Text field's length, a restricted picklist, a number's
precision, a lookup that is not an id or names a missing record, a unique External ID, a
validation rule, a record the integration user may not edit, a locked record, the API request
limit, expired and revoked OAuth credentials) and checks what the client gets: the SQLSTATE, the
message "Error updating contact 003...: <Salesforce's message>", the DETAIL (errorCode, fields,
HTTP status, and for a statement of several rows how many were applied), that Salesforce holds
what the statement says happened, and that the mirror still equals Salesforce.

The sync polls once an hour here: after the backfill only the write path touches the mirror, so
a divergence the write path leaves stays visible.
"""

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import psycopg

import itest
from itest import check, check_eq, free_port, note, wait_for

FAKE = sys.argv[1]
PG_PORT = os.environ["PG_PORT"]
APIGRES = os.environ["APIGRES"]
TMP = os.environ["TEST_TMP"]
DB = "apigres_sf_errors"
SERVICE, READER, WRITER = "apigres_sfe79", "sfe79_reader", "sfe79_writer"
V = "/services/data/v59.0"
CLIENT_ID = "sf-79-client-id"
CLIENT_SECRET = "sf-79-client-secret-value"
REFRESH_TOKEN = "sf-79-refresh-token-value"
PROXY_PORT = free_port()
OBJECTS = {"account": "Account", "contact": "Contact", "invoice__c": "Invoice__c"}
SECRETS = [CLIENT_SECRET, REFRESH_TOKEN]
# a Salesforce session id as the token endpoint issues them, unmasked (apigres masks "00D...!****")
SESSION_RE = re.compile(r"00D[0-9A-Za-z]{12,15}!(?!\*\*\*\*)[0-9A-Za-z._]{8,}")

# ---------------------------------------------------------------- Salesforce, as another client of the org
creds = {"refresh_token": REFRESH_TOKEN, "token": None}


def grant():
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                   "client_secret": CLIENT_SECRET,
                                   "refresh_token": creds["refresh_token"]}).encode()
    with urllib.request.urlopen(urllib.request.Request(FAKE + "/services/oauth2/token", data=form), timeout=30) as r:
        creds["token"] = json.load(r)["access_token"]
        SECRETS.append(creds["token"])


def api(method, path, body=None, again=True):
    """A REST call; (status, JSON). An expired token is refreshed once, as any client does."""
    if creds["token"] is None:
        grant()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(FAKE + (path if path.startswith("/services/") else V + path), data=data,
                                 method=method, headers={"Authorization": "Bearer " + creds["token"],
                                                         "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        if e.code == 401 and again:
            creds["token"] = None
            return api(method, path, body, False)
        return e.code, json.loads(text) if text else None


def control(path, body=None):
    req = urllib.request.Request(FAKE + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def soql(q):
    status, res = api("GET", "/query?q=" + urllib.parse.quote(q))
    assert status == 200, (q, status, res)
    records = res["records"]
    while not res["done"]:
        status, res = api("GET", res["nextRecordsUrl"])
        records += res["records"]
    return records


FIELDS = {}


def fields_of(obj):
    if obj not in FIELDS:
        FIELDS[obj] = [f["name"] for f in api("GET", "/sobjects/%s/describe" % obj)[1]["fields"]]
    return FIELDS[obj]


def norm(v):
    """One value as both sides can be compared: datetimes as instants, numbers as floats."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", v):
        v = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", v.replace("Z", "+00:00"))
        return datetime.datetime.fromisoformat(v).timestamp()
    return v


def salesforce_table(obj):
    rows = soql("SELECT %s FROM %s ORDER BY Id" % (", ".join(fields_of(obj)), obj))
    return {r["Id"]: {f: norm(r.get(f)) for f in fields_of(obj)} for r in rows}


def mirror_table(table, obj):
    out = direct("SELECT row_to_json(t) FROM salesforce.%s t" % table)
    rows = [json.loads(line) for line in out.split("\n") if line.strip()]
    return {r["id"]: {f: norm(r.get(f.lower())) for f in fields_of(obj)} for r in rows}


def world():
    """What Salesforce holds, and every difference between it and the mirror."""
    sf, diffs = {}, set()
    for table, obj in OBJECTS.items():
        s, m = salesforce_table(obj), mirror_table(table, obj)
        sf[table] = s
        for rid in s.keys() - m.keys():
            diffs.add("%s %s is in Salesforce, not in the mirror" % (table, rid))
        for rid in m.keys() - s.keys():
            diffs.add("%s %s is in the mirror, not in Salesforce" % (table, rid))
        for rid in s.keys() & m.keys():
            for f in fields_of(obj):
                if s[rid][f] != m[rid][f]:
                    diffs.add("%s %s %s: salesforce %r, mirror %r" % (table, rid, f, s[rid][f], m[rid][f]))
    return sf, diffs


def changed(before, after):
    """Record ids created, deleted or changed in Salesforce between two world() snapshots."""
    out = {}
    for table in OBJECTS:
        b, a = before[table], after[table]
        ids = (b.keys() ^ a.keys()) | {i for i in b.keys() & a.keys() if b[i] != a[i]}
        if ids:
            out[table] = sorted(ids)
    return out


# ---------------------------------------------------------------- the database and apigres
def run_psql(sql, port, user="postgres", db=DB):
    r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db,
                        "-v", "VERBOSITY=verbose", "-c", sql], capture_output=True, text=True, timeout=120)
    return (r.stdout + r.stderr).strip()


def direct(sql):
    return run_psql(sql, PG_PORT)


def literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def via_psql(stmt, params):
    """The statement in the simple protocol: (error fields or None, psql's output)."""
    sql = stmt % tuple(literal(p) for p in params)
    out = run_psql(sql, PROXY_PORT, WRITER)
    err = None
    for line in out.split("\n"):
        m = re.match(r"^ERROR:  ([0-9A-Z]{5}): (.*)$", line)
        if m:
            err = {"sqlstate": m.group(1), "message": m.group(2), "detail": None}
        m = re.match(r"^DETAIL:  (.*)$", line)
        if m and err:
            err["detail"] = m.group(1)
    return err, out


pg = None


def via_psycopg(stmt, params):
    """The statement in the extended protocol, prepared (Parse with a name, Bind, Execute)."""
    global pg
    if pg is None or pg.closed:
        pg = psycopg.connect(host="127.0.0.1", port=PROXY_PORT, user=WRITER, dbname=DB, autocommit=True)
    try:
        cur = pg.execute(stmt, params, prepare=True)
        return None, "%s %d" % (cur.statusmessage, cur.rowcount)
    except psycopg.Error as e:
        return ({"sqlstate": e.sqlstate, "message": e.diag.message_primary, "detail": e.diag.message_detail},
                "%s %s: %s / %s" % (type(e).__name__, e.sqlstate, e.diag.message_primary, e.diag.message_detail))


PROTOCOLS = (("psql", via_psql), ("psycopg", via_psycopg))


def stable_usage(quiet=1.0, timeout=30):
    """Waits until nobody calls the API (the sync is idle) and returns the org's API usage."""
    deadline = time.monotonic() + timeout
    last, since = control("/_fake/stats")["api_usage"], time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = control("/_fake/stats")["api_usage"]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    return last


def refused(label, sqlstate, stmt, params, message, code, fields=None, status=400, applied=None, expect=None,
            before_each=None, after_each=None, leaked=(), unread=None, detail_has=()):
    """Runs stmt through both protocols and checks the refusal the client reads.

    params, message: the statement's parameters and the exact message, or a pattern it must
    match (callables of the protocol's name when they differ by run); code/fields/status: what
    the DETAIL must say; applied: (n, total) rows the DETAIL must say were applied before the
    failure; expect(before, after, proto, err): checks of what Salesforce holds after a
    statement that changed some of it (without it, nothing in Salesforce may change); leaked:
    strings no message may hold; unread(proto): the record applied but not read back (the DETAIL
    says so, and the mirror may differ from Salesforce on it alone until the sync's next poll);
    detail_has: more strings the DETAIL must hold."""
    for proto, run in PROTOCOLS:
        what = "%s via %s" % (label, proto)
        sf0, div0 = world()
        if before_each:
            before_each()
        err, out = run(stmt, params(proto) if callable(params) else params)
        if after_each:
            after_each()
        sf1, div1 = world()
        got = err["sqlstate"] if err else "no error (%s)" % out.split("\n")[-1]
        check_eq("%s: SQLSTATE %s" % (what, sqlstate), sqlstate, got)
        want = message(proto) if callable(message) else message
        if isinstance(want, re.Pattern):
            check("%s: the message matches %s" % (what, want.pattern), err and want.fullmatch(err["message"]),
                  err and err["message"])
        else:
            check_eq("%s: the message" % what, want, err and err["message"])
        detail = (err and err["detail"]) or ""
        parts = ["salesforce %s" % code, "status=%d" % status]
        parts.append("fields=%s" % fields if fields else None)
        if applied:
            parts.append("%d of %d rows were applied upstream and mirrored before this failure." % applied)
        if unread:
            parts.append("1 of 1 rows were applied upstream; 1 of them could not be read back and reach the mirror "
                         "with the sync's next poll")
        parts.extend(detail_has)
        ok = all(p in detail for p in parts if p) and detail.startswith("salesforce %s" % code) and \
            (fields or " fields=" not in detail) and (applied or expect or unread or "rows were applied" not in detail)
        check("%s: DETAIL %s" % (what, " ".join(p for p in parts if p)), ok, detail or out)
        if leaked:
            seen = json.dumps(err)
            check("%s: no secret in the error" % what, not any(s and s in seen for s in leaked)
                  and not SESSION_RE.search(seen), seen)
        if expect:
            expect(sf0, sf1, proto, err)
        else:
            check_eq("%s: Salesforce is unchanged" % what, {}, changed(sf0, sf1))
        if unread:
            rid = unread(proto, sf0, sf1)
            check("%s: the mirror differs from Salesforce only on %s, until the next poll" % (what, rid),
                  rid and all(rid in d for d in div1 - div0), sorted(div1 - div0))
        else:
            check_eq("%s: the mirror still equals Salesforce" % what, [], sorted(div1 - div0))


def sf_id18(id15):
    suffix = ""
    for chunk in range(3):
        n = 0
        for i in range(5):
            if "A" <= id15[chunk * 5 + i] <= "Z":
                n |= 1 << i
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[n]
    return id15 + suffix


# ---------------------------------------------------------------- setup
control("/_fake/config", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN})
contacts = [r["Id"] for r in soql("SELECT Id FROM Contact ORDER BY Id")]
invoices = [r["Id"] for r in soql("SELECT Id FROM Invoice__c ORDER BY Id")]
check("the org has contacts and invoices to write (%d, %d)" % (len(contacts), len(invoices)),
      len(contacts) >= 20 and len(invoices) >= 2)
c = contacts[:14]
# Before the backfill (the sync is idle afterwards): a unique External ID on one contact, and an
# account that is deleted (in the recycle bin).
status, _ = api("PATCH", "/sobjects/Contact/" + c[0], {"External_Id__c": "EXT-79-A"})
check_eq("a contact gets the External ID EXT-79-A", 204, status)
status, res = api("POST", "/sobjects/Account", {"Name": "Doomed 79"})
deleted_account = res["id"]
check_eq("an account deleted in Salesforce", (201, 204),
         (status, api("DELETE", "/sobjects/Account/" + deleted_account)[0]))
missing_account = sf_id18("001000000000000")

CONFIG = os.path.join(TMP, "apigres-79.json")
with open(CONFIG, "w") as f:
    json.dump({"service_database": "host=127.0.0.1 port=%s user=%s dbname=%s" % (PG_PORT, SERVICE, DB),
               "read_role": READER,
               "syncs": [{"provider": "salesforce", "api_base": FAKE, "login_url": FAKE,
                          "collection_ids": ["salesforce:account", "salesforce:contact", "salesforce:invoice__c"],
                          "credential": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                         "refresh_token": REFRESH_TOKEN},
                          "rate_limit": {"allowed_requests": 0, "interval": 1},
                          "poll_interval": 3600}]}, f)

run_psql("DROP DATABASE IF EXISTS %s" % DB, PG_PORT, db="postgres")
for stmt in ("DROP ROLE IF EXISTS %s" % SERVICE, "DROP ROLE IF EXISTS %s" % WRITER, "DROP ROLE IF EXISTS %s" % READER,
             "CREATE DATABASE %s" % DB, "CREATE ROLE %s LOGIN" % WRITER):
    run_psql(stmt, PG_PORT, db="postgres")
setup = subprocess.run([APIGRES, "setup", "--config", CONFIG], capture_output=True, text=True)
r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", DB,
                    "-v", "ON_ERROR_STOP=1"], input=setup.stdout, capture_output=True, text=True)
check("the setup SQL applies", r.returncode == 0, r.stderr)
run_psql("GRANT %s TO %s" % (READER, WRITER), PG_PORT, db="postgres")

LOG = os.path.join(TMP, "apigres-79.log")
log = open(LOG, "ab")
proc = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % PROXY_PORT,
                         "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug"],
                        stdout=subprocess.DEVNULL, stderr=log)
with open(os.path.join(TMP, "apigres-79.pid"), "w") as f:
    f.write(str(proc.pid))
check("the backfill finishes", wait_for("backfill", lambda: direct(
    "SELECT count(*) FILTER (WHERE phase = 'incremental') FROM apigres.sync_state") == "3", 60))
direct("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA salesforce TO %s" % WRITER)
check("the write path has described the objects", wait_for("describe", lambda: "UPDATE 1" in run_psql(
    "UPDATE salesforce.contact SET title = 'Warm-up' WHERE id = '%s'" % c[13], PROXY_PORT, WRITER), 30))
note("API usage once the sync is idle: %d" % stable_usage())
_, baseline = world()
check_eq("the mirror equals Salesforce before the first refusal (the comparison itself works)", [],
         sorted(baseline))
check_eq("... the External ID and the deleted account are as set up", ("EXT-79-A", "0"),
         (direct("SELECT external_id__c FROM salesforce.contact WHERE id = '%s'" % c[0]),
          direct("SELECT count(*) FROM salesforce.account WHERE id = '%s'" % deleted_account)))

# ---------------------------------------------------------------- field validation
long_name = "L" * 81
refused("STRING_TOO_LONG (LastName is Text(80))", "22001",
        "UPDATE salesforce.contact SET lastname = %s WHERE id = %s", (long_name, c[1]),
        "Error updating contact %s: Last Name: data value too large: %s (max length=80)" % (c[1], long_name),
        "STRING_TOO_LONG", "LastName")

refused("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (Invoice__c.Status__c)", "22023",
        "INSERT INTO salesforce.invoice__c (amount__c, status__c) VALUES (%s, %s)", (10, "Bogus"),
        "Error creating invoice__c: Status: bad value for restricted picklist field: Bogus",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Status__c")

refused("NUMBER_OUTSIDE_VALID_RANGE (Invoice__c.Amount__c is currency(16,2))", "22003",
        "UPDATE salesforce.invoice__c SET amount__c = %s WHERE id = %s", (100000000000000, invoices[0]),
        "Error updating invoice__c %s: Amount: value outside of valid range on numeric field: 100000000000000"
        % invoices[0], "NUMBER_OUTSIDE_VALID_RANGE", "Amount__c")

refused("MALFORMED_ID (an AccountId that is not an id)", "22P02",
        "UPDATE salesforce.contact SET accountid = %s WHERE id = %s", ("not-an-id", c[2]),
        "Error updating contact %s: Account ID: id value of incorrect type: not-an-id" % c[2],
        "MALFORMED_ID", "AccountId")

refused("FIELD_INTEGRITY_EXCEPTION (an AccountId that is a contact's id)", "23514",
        "UPDATE salesforce.contact SET accountid = %s WHERE id = %s", (c[3], c[2]),
        "Error updating contact %s: Account ID: id value of incorrect type: %s" % (c[2], c[3]),
        "FIELD_INTEGRITY_EXCEPTION", "AccountId")

refused("REQUIRED_FIELD_MISSING from Salesforce (LastName set to NULL)", "23502",
        "UPDATE salesforce.contact SET lastname = %s WHERE id = %s", (None, c[4]),
        "Error updating contact %s: Required fields are missing: [LastName]" % c[4],
        "REQUIRED_FIELD_MISSING", "LastName")

# ---------------------------------------------------------------- references and uniqueness
refused("INVALID_CROSS_REFERENCE_KEY (an AccountId of no record)", "23503",
        "INSERT INTO salesforce.contact (lastname, accountid) VALUES (%s, %s)", ("Ghost 79", missing_account),
        "Error creating contact: invalid cross reference id", "INVALID_CROSS_REFERENCE_KEY")

refused("INVALID_CROSS_REFERENCE_KEY, update (an AccountId of no record)", "23503",
        "UPDATE salesforce.contact SET accountid = %s WHERE id = %s", (missing_account, c[5]),
        "Error updating contact %s: invalid cross reference id" % c[5], "INVALID_CROSS_REFERENCE_KEY")

# Salesforce answers a lookup to a record in the recycle bin with 400 ENTITY_IS_DELETED: a
# reference to a missing record (23503), not the updated record gone (that one is a 404).
victim = {"psql": c[6], "psycopg": contacts[14]}
refused("a lookup to a deleted account (400 ENTITY_IS_DELETED), update", "23503",
        "UPDATE salesforce.contact SET accountid = %s WHERE id = %s", lambda proto: (deleted_account, victim[proto]),
        lambda proto: "Error updating contact %s: entity is deleted" % victim[proto], "ENTITY_IS_DELETED")
refused("a lookup to a deleted account (400 ENTITY_IS_DELETED), insert", "23503",
        "INSERT INTO salesforce.contact (lastname, accountid) VALUES (%s, %s)", ("Orphan 79", deleted_account),
        "Error creating contact: entity is deleted", "ENTITY_IS_DELETED")

refused("DUPLICATE_VALUE (a unique External ID another contact has), update", "23505",
        "UPDATE salesforce.contact SET external_id__c = %s WHERE id = %s", ("ext-79-a", c[7]),
        "Error updating contact %s: duplicate value found: External_Id__c duplicates value on record with id: %s"
        % (c[7], c[0]), "DUPLICATE_VALUE")
refused("DUPLICATE_VALUE, insert", "23505",
        "INSERT INTO salesforce.contact (lastname, external_id__c) VALUES (%s, %s)", ("Twin 79", "EXT-79-A"),
        "Error creating contact: duplicate value found: External_Id__c duplicates value on record with id: %s"
        % c[0], "DUPLICATE_VALUE")

# ---------------------------------------------------------------- a validation rule
RULE = {"object": "Contact", "field": "Title", "pattern": "^Intern",
        "message": "Interns are kept in the HR system, not as contacts"}
control("/_fake/config", {"validation_rules": [RULE]})
refused("FIELD_CUSTOM_VALIDATION_EXCEPTION (a validation rule on Title), insert", "23514",
        "INSERT INTO salesforce.contact (lastname, title) VALUES (%s, %s)", ("Rule 79", "Intern, summer"),
        "Error creating contact: " + RULE["message"], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Title")
refused("FIELD_CUSTOM_VALIDATION_EXCEPTION, update", "23514",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("Intern", c[8]),
        "Error updating contact %s: %s" % (c[8], RULE["message"]), "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Title")

# ---------------------------------------------------------------- a duplicate rule (Block)
twin, other = contacts[15], contacts[16]
check_eq("a contact gets the e-mail a duplicate rule will match (through the proxy)", "UPDATE 1",
         run_psql("UPDATE salesforce.contact SET email = 'twin79@example.com' WHERE id = '%s'" % twin, PROXY_PORT,
                  WRITER))
control("/_fake/config", {"duplicate_rules": [{"object": "Contact", "fields": ["Email"]}]})
DUP_DETAIL = ("duplicate_rule=Standard_Contact_Duplicate_Rule", "matches=%s " % twin)
refused("DUPLICATES_DETECTED (a duplicate rule on Email), insert", "23505",
        "INSERT INTO salesforce.contact (lastname, email) VALUES (%s, %s)", ("Twin 79", "Twin79@Example.com"),
        "Error creating contact: Use one of these records?", "DUPLICATES_DETECTED", detail_has=DUP_DETAIL)
refused("DUPLICATES_DETECTED, update", "23505",
        "UPDATE salesforce.contact SET email = %s WHERE id = %s", ("twin79@example.com", other),
        "Error updating contact %s: Use one of these records?" % other, "DUPLICATES_DETECTED",
        detail_has=DUP_DETAIL)
control("/_fake/config", {"duplicate_rules": []})


def partial_insert(names, first_applied):
    def expect(before, after, proto, err):
        made = sorted(r["LastName"] for r in soql("SELECT LastName FROM Contact WHERE LastName LIKE '%s%%'"
                                                   % names[0][:-1]))
        check_eq("... via %s: Salesforce has the first %d and only them" % (proto, first_applied),
                 sorted(names[:first_applied]), made)
        for n in names[:first_applied]:  # the next run makes them again: out of the way
            rid = soql("SELECT Id FROM Contact WHERE LastName = '%s'" % n)[0]["Id"]
            check_eq("... via %s: the created %s is deleted through the proxy" % (proto, n), "DELETE 1",
                     run_psql("DELETE FROM salesforce.contact WHERE id = '%s'" % rid, PROXY_PORT, WRITER))
    return expect


names = ["Rows79 1", "Rows79 2", "Rows79 3", "Rows79 4"]
refused("the 3rd of 4 creates refused by the validation rule", "23514",
        "INSERT INTO salesforce.contact (lastname, title) VALUES (%s, %s), (%s, %s), (%s, %s), (%s, %s)",
        (names[0], "Engineer", names[1], "Engineer", names[2], "Intern", names[3], "Engineer"),
        "Error creating contact: " + RULE["message"], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Title",
        applied=(2, 4), expect=partial_insert(names, 2))
control("/_fake/config", {"validation_rules": []})

# ---------------------------------------------------------------- who may write what
control("/_fake/config", {"readonly_records": [c[9]]})
refused("INSUFFICIENT_ACCESS_OR_READONLY (a contact shared read-only), update", "42501",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("Boss", c[9]),
        "Error updating contact %s: insufficient access rights on object id" % c[9], "INSUFFICIENT_ACCESS_OR_READONLY")
refused("INSUFFICIENT_ACCESS_OR_READONLY, delete", "42501",
        "DELETE FROM salesforce.contact WHERE id = %s", (c[9],),
        "Error deleting contact %s: insufficient access rights on object id" % c[9], "INSUFFICIENT_ACCESS_OR_READONLY")
control("/_fake/config", {"readonly_records": []})

shy = contacts[17]
acct = direct("SELECT id FROM salesforce.account WHERE id IS DISTINCT FROM (SELECT accountid FROM salesforce.contact "
              "WHERE id = '%s') ORDER BY id LIMIT 1" % shy)
control("/_fake/config", {"unshared_records": [acct]})
refused("INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY (a lookup to an account not shared with the user)", "42501",
        "UPDATE salesforce.contact SET accountid = %s WHERE id = %s", (acct, shy),
        "Error updating contact %s: insufficient access rights on cross-reference id: %s" % (shy, acct[:15]),
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY")
control("/_fake/config", {"unshared_records": []})

# the org's API switched off (an edition or profile without "API Enabled"): every call is 403
# (only around the statement: the checks of what Salesforce holds use the API themselves)
refused("API_DISABLED_FOR_ORG", "42501",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("Offline", shy),
        "Error updating contact %s: The REST API is not enabled for this Organization." % shy,
        "API_DISABLED_FOR_ORG", status=403,
        before_each=lambda: control("/_fake/config", {"api_disabled": True}),
        after_each=lambda: control("/_fake/config", {"api_disabled": False}))

# ---------------------------------------------------------------- try again
control("/_fake/config", {"locked_records": [c[10]]})
refused("UNABLE_TO_LOCK_ROW (a contact another transaction holds)", "40001",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("Locked", c[10]),
        "Error updating contact %s: unable to obtain exclusive access to this record or 1 records: %s"
        % (c[10], c[10]), "UNABLE_TO_LOCK_ROW")

batch = [c[11], c[10], c[12]]
batch_title = {"psql": "Batch psql", "psycopg": "Batch psycopg"}


def lock_expect(before, after, proto, detail):
    m = re.search(r"(\d+) of 3 rows were applied", detail)
    n = int(m.group(1)) if m else -1
    titles = {rid: after["contact"][rid]["Title"] for rid in batch}
    updated = [rid for rid in batch if titles[rid] == batch_title[proto]]
    check("... via %s: the DETAIL's count (%d) is the number of contacts Salesforce updated (%d), the locked one "
          "not among them" % (proto, n, len(updated)), n == len(updated) and c[10] not in updated, titles)
    check_eq("... via %s: nothing else changed in Salesforce" % proto, {"contact": sorted(updated)} if updated else {},
             changed(before, after))


for proto, run in PROTOCOLS:
    what = "an UPDATE of 3 contacts, one of them locked, via %s" % proto
    sf0, div0 = world()
    err, out = run("UPDATE salesforce.contact SET title = %s WHERE id IN (%s, %s, %s)", (batch_title[proto], *batch))
    sf1, div1 = world()
    check_eq("%s: SQLSTATE 40001" % what, "40001", err and err["sqlstate"])
    check_eq("%s: the message names the locked contact" % what,
             "Error updating contact %s: unable to obtain exclusive access to this record or 1 records: %s"
             % (c[10], c[10]), err and err["message"])
    detail = (err and err["detail"]) or ""
    check("%s: DETAIL salesforce UNABLE_TO_LOCK_ROW status=400 ... N of 3 rows were applied" % what,
          detail.startswith("salesforce UNABLE_TO_LOCK_ROW") and "status=400" in detail and
          re.search(r"\d of 3 rows were applied upstream and mirrored before this failure\.$", detail), detail or out)
    lock_expect(sf0, sf1, proto, detail)
    check_eq("%s: the mirror still equals Salesforce" % what, [], sorted(div1 - div0))
control("/_fake/config", {"locked_records": []})

# REQUEST_LIMIT_EXCEEDED: the org's daily API limit reached (403)
LIMIT_OFF = {"enforce_daily_limit": False, "api_daily_limit": 15000}
refused("REQUEST_LIMIT_EXCEEDED (the daily API limit reached)", "40001",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("Over the limit", c[11]),
        "Error updating contact %s: TotalRequests Limit exceeded." % c[11], "REQUEST_LIMIT_EXCEEDED", status=403,
        before_each=lambda: control("/_fake/config", {"enforce_daily_limit": True, "api_daily_limit": 1}),
        after_each=lambda: control("/_fake/config", LIMIT_OFF))

limit_names = ["Limit79 1", "Limit79 2", "Limit79 3"]


def two_calls_left():
    # a create is a POST and a GET: the first create fits, the second POST is over the limit
    usage = stable_usage(0.5)
    control("/_fake/config", {"enforce_daily_limit": True, "api_daily_limit": usage + 2})


refused("the daily limit reached at the 2nd of 3 creates", "40001",
        "INSERT INTO salesforce.contact (lastname) VALUES (%s), (%s), (%s)", tuple(limit_names),
        "Error creating contact: TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED", status=403,
        applied=(1, 3), expect=partial_insert(limit_names, 1),
        before_each=two_calls_left, after_each=lambda: control("/_fake/config", LIMIT_OFF))


# The limit reached between a write and its read-back: Salesforce made the change (the PATCH or
# POST fit), the GET of the record is refused. What Salesforce holds must reach the mirror.
def one_call_left():
    usage = stable_usage(0.5)
    control("/_fake/config", {"enforce_daily_limit": True, "api_daily_limit": usage + 1})


readback_title = {"psql": "Read-back psql", "psycopg": "Read-back psycopg"}


def readback_update_expect(before, after, proto, err):
    check_eq("... via %s: Salesforce made the change (only the read-back was refused)" % proto,
             (readback_title[proto], {"contact": [c[11]]}), (after["contact"][c[11]]["Title"], changed(before, after)))


refused("the daily limit reached between an update and its read-back", "40001",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", lambda proto: (readback_title[proto], c[11]),
        lambda proto: "Error updating contact %s: the update went through in Salesforce, but reading the record back "
        "failed: TotalRequests Limit exceeded." % c[11], "REQUEST_LIMIT_EXCEEDED",
        status=403, expect=readback_update_expect, unread=lambda proto, before, after: c[11],
        before_each=one_call_left, after_each=lambda: control("/_fake/config", LIMIT_OFF))

readback_name = {"psql": "Readback79 psql", "psycopg": "Readback79 psycopg"}


def readback_insert_expect(before, after, proto, err):
    made = [r["Id"] for r in soql("SELECT Id FROM Contact WHERE LastName = '%s'" % readback_name[proto])]
    check_eq("... via %s: Salesforce created the contact (only the read-back was refused)" % proto, 1, len(made))
    check("... via %s: the message names the contact Salesforce created" % proto,
          made and err and made[0] in err["message"], (made, err))


refused("the daily limit reached between a create and its read-back", "40001",
        "INSERT INTO salesforce.contact (lastname) VALUES (%s)", lambda proto: (readback_name[proto],),
        re.compile(r"Error creating contact 003\w{15}: the create went through in Salesforce, but reading the record "
                   r"back failed: TotalRequests Limit exceeded\."), "REQUEST_LIMIT_EXCEEDED",
        status=403, expect=readback_insert_expect,
        unread=lambda proto, before, after: (changed(before, after).get("contact") or [None])[0],
        before_each=one_call_left, after_each=lambda: control("/_fake/config", LIMIT_OFF))

# The sync's next poll brings what was not read back: apigres restarted, the worker polls at once
if pg is not None:
    pg.close()  # SIGTERM waits for clients to leave
proc.send_signal(signal.SIGTERM)
check("apigres stops on SIGTERM (to poll again at start)", proc.wait(timeout=30) == 0)
proc = subprocess.Popen([APIGRES, "--config", CONFIG, "--listen", "127.0.0.1:%d" % PROXY_PORT,
                         "--database", "host=127.0.0.1 port=%s" % PG_PORT, "--log-level", "debug"],
                        stdout=subprocess.DEVNULL, stderr=log)
with open(os.path.join(TMP, "apigres-79.pid"), "w") as f:
    f.write(str(proc.pid))
check("the sync's poll brings the records that were not read back: the mirror equals Salesforce",
      wait_for("poll", lambda: not world()[1], 30), sorted(world()[1]))
check("the write path has described the objects again", wait_for("describe", lambda: "UPDATE 1" in run_psql(
    "UPDATE salesforce.contact SET title = 'Warm-up 2' WHERE id = '%s'" % c[13], PROXY_PORT, WRITER), 30))

# SERVER_UNAVAILABLE: 503 on every PATCH, retried, then given up
refused("SERVER_UNAVAILABLE after the retries", "57P03",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("Never", c[11]),
        "Error updating contact %s: Server temporarily unavailable. Please try again later." % c[11],
        "SERVER_UNAVAILABLE", status=503,
        before_each=lambda: control("/_fake/config", {"fail_next": 50, "fail_status": 503, "fault_path": "^PATCH "}),
        after_each=lambda: control("/_fake/config", {"fail_next": 0, "fail_status": 500, "fault_path": None}))

# ---------------------------------------------------------------- INVALID_SESSION_ID: refreshed, invisible
for proto, run in PROTOCOLS:
    expired = control("/_fake/config", {"expire_tokens": True})["tokens_expired"]
    sf0, div0 = world()  # our own client refreshes here: counted before the write's
    grants = control("/_fake/stats")["token_grants"]
    title = "Refreshed " + proto
    err, out = run("UPDATE salesforce.contact SET title = %s WHERE id = %s", (title, c[12]))
    sf1, div1 = world()
    check("INVALID_SESSION_ID (every token expired, %d of them) via %s: the UPDATE succeeds (%s)"
          % (expired, proto, out.split("\n")[-1]), err is None and "UPDATE 1" in out, out)
    check("... via %s: apigres got a new token from the refresh token" % proto,
          control("/_fake/stats")["token_grants"] > grants)
    check_eq("... via %s: Salesforce has the title, and only that changed" % proto,
             (title, {"contact": [c[12]]}), (sf1["contact"][c[12]]["Title"], changed(sf0, sf1)))
    check_eq("... via %s: the mirror still equals Salesforce" % proto, [], sorted(div1 - div0))

# ---------------------------------------------------------------- OAuth refusals: 42501, no secret shown
refused("invalid_client_id (the connected app's client id no longer known)", "42501",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("No app", c[12]),
        "Error updating contact %s: client identifier invalid" % c[12], "invalid_client_id",
        before_each=lambda: control("/_fake/config", {"client_id": "another-app", "expire_tokens": True}),
        after_each=lambda: control("/_fake/config", {"client_id": CLIENT_ID}), leaked=SECRETS)
refused("invalid_client (the client secret rotated)", "42501",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("No secret", c[12]),
        "Error updating contact %s: invalid client credentials" % c[12], "invalid_client",
        before_each=lambda: control("/_fake/config", {"client_secret": "rotated-79", "expire_tokens": True}),
        after_each=lambda: control("/_fake/config", {"client_secret": CLIENT_SECRET}), leaked=SECRETS)

# the refresh token revoked (last: apigres's credential stays revoked; our client gets a new one)
NEW_REFRESH = "sf-79-refresh-token-reissued"


def revoke():
    """Revokes apigres's refresh token (and the access tokens issued from it); the second time
    it is already revoked and replaced, and Salesforce answers 400."""
    form = urllib.parse.urlencode({"token": REFRESH_TOKEN}).encode()
    try:
        urllib.request.urlopen(urllib.request.Request(FAKE + "/services/oauth2/revoke", data=form), timeout=30).close()
    except urllib.error.HTTPError as e:
        e.close()


def reissue():
    control("/_fake/config", {"refresh_token": NEW_REFRESH})
    creds["refresh_token"] = NEW_REFRESH
    SECRETS.append(NEW_REFRESH)


refused("invalid_grant (the refresh token revoked)", "42501",
        "UPDATE salesforce.contact SET title = %s WHERE id = %s", ("Revoked", c[12]),
        "Error updating contact %s: expired access/refresh token" % c[12], "invalid_grant",
        before_each=revoke, after_each=reissue, leaked=SECRETS)

# ---------------------------------------------------------------- the end
_, final = world()
check_eq("at the end the mirror equals Salesforce for every record", [], sorted(final))
if pg is not None:
    pg.close()
proc.send_signal(signal.SIGTERM)
check("apigres stops on SIGTERM", proc.wait(timeout=30) == 0)
open(os.path.join(TMP, "apigres-79.pid"), "w").close()
with open(LOG, errors="replace") as f:
    text = f.read()
leaks = [s for s in SECRETS if s and s in text] + SESSION_RE.findall(text)
check("no client secret, refresh token or access token in the log", not leaks, leaks[:3])
sys.exit(itest.status())
