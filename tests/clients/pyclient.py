"""What every Python client of the matrix (tests/clients/{psycopg2,psycopg3,sqlalchemy,asyncpg,
django}/run) shares: the check lines of the output contract, the matrix line, and a look at
the Stripe fake to compare with what the proxy answered.

A client imports it after `sys.dont_write_bytecode = True` (no __pycache__ in the repo) and
runs with Debian's /usr/bin/python3, whose dist-packages hold the drivers under test.
Environment: see tests/integration/78_clients.py. Nothing here prints DATABASE_URL,
PGPASSWORD or STRIPE_TEST_KEY.
"""

import base64
import json
import os
import platform
import subprocess
import sys
import time
import urllib.error
import urllib.request

ENV = os.environ
CUSTOMER_ID = ENV["CUSTOMER_ID"]
CUSTOMER_EMAIL = ENV["CUSTOMER_EMAIL"]
ORDER_NOTE = ENV["ORDER_NOTE"]
ORDER_AMOUNT = int(ENV["ORDER_AMOUNT"])
DATABASE_URL = ENV["DATABASE_URL"]

_failed = False


def check(desc, cond, detail=""):
    """One "ok - " / "not ok - " line; the detail only when it failed."""
    global _failed
    print(("ok - " if cond else "not ok - ") + desc, flush=True)
    if not cond:
        _failed = True
        for line in str(detail).splitlines() or [""]:
            print("#   " + line, flush=True)
    return cond


def note(text):
    for line in str(text).splitlines():
        print("# " + line, flush=True)


def attempt(desc, fn):
    """Runs fn() for a check whose failure shows as an exception: a "not ok" line with the
    exception instead of a traceback that would end the client before its other checks."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - any failure is this check's failure
        check(desc, False, "%s: %s" % (type(e).__name__, e))
        return None


def upstream(path):
    """GET /v1/PATH at the Stripe fake, as upstream sees it (a deleted customer answers
    {"id": ..., "deleted": true})."""
    auth = base64.b64encode((ENV["STRIPE_TEST_KEY"] + ":").encode()).decode()
    req = urllib.request.Request(ENV["FAKE_URL"] + "/v1/" + path, headers={"Authorization": "Basic " + auth})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return {"http_status": e.code, "body": e.read().decode(errors="replace")}


def wait_until(fn, seconds=5.0):
    """After a ROLLBACK apigres re-applies upstream's records on its own connection, within
    milliseconds but not synchronously with the client's ROLLBACK: poll for it."""
    deadline = time.monotonic() + seconds
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def debian_source(module, package):
    """Where the library came from, read at run time: the Debian package that owns the
    module's file, with its version."""
    path = os.path.realpath(module.__file__)
    r = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.startswith(package + ":"):
        return "not from Debian %s: %s" % (package, path)
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True).stdout.strip()
    return "Debian %s %s" % (package, version)


def runtime():
    return "Python " + platform.python_version()


def matrix(row, library, source):
    print("# matrix: %s | %s | %s | %s" % (row, library, runtime(), source), flush=True)


def done():
    sys.exit(1 if _failed else 0)
