#!/usr/bin/env python3
"""Holds many idle client connections open through apigres (run by 70_idle_clients.sh).

    70_idle_clients.py PORT N SAMPLE_EVERY

Logs in N connections (trust user postgres) concurrently, runs `select 1` on every
SAMPLE_EVERY-th one, prints its checks, then "# holding N idle connections" and waits for a
line on stdin; then closes them all (Terminate, then close) and prints "# closed".
"""

import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import itest
from itest import check, check_eq, note, pgraw

HOST = itest.HOST


def open_one(port, i):
    conn = pgraw.connect(HOST, port, timeout=30)
    pgraw.login(conn, "postgres", "apigres_test", params={"application_name": "apigres-70-idle"},
                timeout=30)
    return conn


def main():
    port, n, every = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 64, hard), hard))
    start = time.monotonic()
    conns, failures = [], []
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(open_one, port, i) for i in range(n)]
        for f in futures:
            try:
                conns.append(f.result())
            except Exception as exc:  # noqa: BLE001 - counted and shown below
                failures.append(repr(exc))
    note("%d logins through the proxy in %.1f s" % (len(conns), time.monotonic() - start))
    check("%d concurrent logins through the proxy all succeed" % n, not failures,
          "%d failed, e.g. %s" % (len(failures), failures[:3]))

    sample = conns[::every]
    answers = []
    for conn in sample:
        try:
            answers.append(pgraw.query(conn, "select 1", timeout=10).rows)
        except Exception as exc:  # noqa: BLE001 - shown by the check
            answers.append(repr(exc))
    check_eq("select 1 on every %dth of the idle connections (%d of them)" % (every, len(sample)),
             [[["1"]]] * len(sample), answers)

    note("holding %d idle connections" % len(conns))
    sys.stdin.readline()
    for conn in conns:
        try:
            conn.send(pgraw.terminate_message())
        except pgraw.Closed:
            pass
        conn.close()
    note("closed")
    return itest.status()


if __name__ == "__main__":
    sys.exit(main())
