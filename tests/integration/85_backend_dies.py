#!/usr/bin/env python3
"""Backend connections that die under apigres (run by 85_backend_dies.sh).

    85_backend_dies.py cut PROXY_PORT CONTROL_PORT
        PROXY_PORT is an apigres whose database is a tests/lib/tcpcut.py forwarder controlled
        on CONTROL_PORT. Cuts (RST) or closes (FIN) single database connections and checks
        that only the client on that connection gets FATAL 08006.
    85_backend_dies.py unreachable PROXY_PORT
        PROXY_PORT is an apigres whose database port has no listener: FATAL 08001.
"""

import sys
import time

import itest
import tcpcut
from itest import check, check_eq, note, pgraw

HOST = itest.HOST
LOST = "connection to the database server was lost"


class Client:
    """A logged-in pgraw client and the id of its database connection in the forwarder."""

    def __init__(self, name, port, control):
        before = set(tcpcut.command(control, "list").split())
        self.name = name
        self.conn = pgraw.connect(HOST, port)
        pgraw.login(self.conn, "postgres", "apigres_test",
                    params={"application_name": "apigres-85-" + name})
        after = set(tcpcut.command(control, "list").split())
        new = sorted(after - before, key=int)
        if len(new) != 1:
            raise AssertionError("client %s: expected one new database connection, saw %r"
                                 % (name, new))
        self.link = new[0]
        self.pid = pgraw.query(self.conn, "select pg_backend_pid()").rows[0][0]


def expect_lost(client, desc):
    what, fields = itest.error_or_close(client.conn, 5)
    got = (what, (fields or {}).get("V") or (fields or {}).get("S"), (fields or {}).get("C"))
    check_eq("%s: client %s gets FATAL 08006" % (desc, client.name), ("error", "FATAL", "08006"), got)
    if what == "error":
        check_eq("%s: the error message" % desc, LOST, fields.get("M"))
        check("%s: client %s's connection is closed after the error" % (desc, client.name),
              itest.closed_after(client.conn, 5))


def still_works(client, desc):
    try:
        rows = pgraw.query(client.conn, "select pg_backend_pid()", timeout=5).rows
        check_eq("%s: client %s still runs queries on its own backend" % (desc, client.name),
                 [[client.pid]], rows)
    except (pgraw.PgError, pgraw.Closed, TimeoutError) as exc:
        check("%s: client %s still runs queries" % (desc, client.name), False, repr(exc))


def cut(port, control):
    a, b = Client("A", port, control), Client("B", port, control)
    note("A is database connection %s, B is %s" % (a.link, b.link))
    check_eq("cut A's database connection (RST)", "ok", tcpcut.command(control, "cut " + a.link))
    expect_lost(a, "database connection reset while idle")
    still_works(b, "after A's database connection was reset")

    c = Client("C", port, control)
    check_eq("close C's database connection (FIN)", "ok", tcpcut.command(control, "close " + c.link))
    expect_lost(c, "database connection closed while idle")
    still_works(b, "after C's database connection was closed")

    d = Client("D", port, control)
    d.conn.send(pgraw.query_message("select pg_sleep(5)"))
    time.sleep(0.3)
    check_eq("cut D's database connection during pg_sleep(5)", "ok",
             tcpcut.command(control, "cut " + d.link))
    expect_lost(d, "database connection reset during a query")
    still_works(b, "after D's database connection was reset")

    try:
        e = Client("E", port, control)
        rows = pgraw.query(e.conn, "select 1").rows
        check_eq("a new client logs in and runs select 1 after the cuts", [["1"]], rows)
        e.conn.close()
    except Exception as exc:  # noqa: BLE001 - shown by the check
        check("a new client logs in after the cuts", False, repr(exc))
    b.conn.send(pgraw.terminate_message())
    b.conn.close()


def unreachable(port):
    for attempt in (1, 2):
        conn = pgraw.connect(HOST, port)
        try:
            pgraw.login(conn, "postgres", "apigres_test")
            check("database unreachable (attempt %d): login fails" % attempt, False, "login succeeded")
        except pgraw.PgError as exc:
            check_eq("database unreachable (attempt %d): FATAL 08001" % attempt,
                     ("FATAL", "08001"), (exc.severity, exc.sqlstate))
            check("database unreachable (attempt %d): connection closed after the error" % attempt,
                  itest.closed_after(conn, 5))
        except (pgraw.Closed, TimeoutError, ValueError) as exc:
            check("database unreachable (attempt %d): FATAL 08001" % attempt, False, repr(exc))
        conn.close()


if __name__ == "__main__":
    try:
        if sys.argv[1] == "cut":
            cut(int(sys.argv[2]), int(sys.argv[3]))
        elif sys.argv[1] == "unreachable":
            unreachable(int(sys.argv[2]))
        else:
            sys.exit(__doc__)
    except Exception as exc:  # noqa: BLE001 - a broken step is a failed check, not a crash
        check("85_backend_dies.py %s ran to the end" % sys.argv[1], False, repr(exc))
    raise SystemExit(itest.status())
