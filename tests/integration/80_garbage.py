#!/usr/bin/env python3
"""Malformed input sent to apigres (run by 80_garbage.sh). Prints ok / not ok lines.

    80_garbage.py basic PORT          random first bytes, bad startup lengths, protocol 2.0,
                                      unknown message type, message length < 4
    80_garbage.py maxsize PORT        PORT runs --max-message-size 1048576: 2 MB vs 512 KB
    80_garbage.py half-startup PORT   sends half a StartupMessage, then disconnects
    80_garbage.py half-query PORT     logs in, sends half a Query, then disconnects
    80_garbage.py storm PORT N        N concurrent connections sending garbage of all kinds
"""

import random
import struct
import sys
import threading
import time

import itest
from itest import check, check_eq, note, pgraw

HOST = itest.HOST
DB = "apigres_test"


def fatal(fields, sqlstate):
    """(severity, SQLSTATE) of an error, to compare with ('FATAL', sqlstate)."""
    return (fields or {}).get("V") or (fields or {}).get("S"), (fields or {}).get("C")


def send_quietly(conn, data):
    """Sends data; the proxy may already have answered and closed, which is fine here."""
    try:
        conn.send(data)
    except pgraw.Closed:
        pass


def expect_fatal(desc, port, data, sqlstate, message_start, login=False):
    """Sends data (after a trust login if login) and expects FATAL sqlstate, then a close."""
    conn = pgraw.connect(HOST, port)
    try:
        if login:
            pgraw.login(conn, "postgres", DB)
        send_quietly(conn, data)
        what, fields = itest.error_or_close(conn, 5)
        ok = (what == "error" and fatal(fields, sqlstate) == ("FATAL", sqlstate)
              and fields.get("M", "").startswith(message_start))
        check("%s: FATAL %s \"%s...\"" % (desc, sqlstate, message_start), ok,
              "received: %s %r" % (what, fields))
        if what == "error":
            check("%s: connection closed after the error" % desc, itest.closed_after(conn, 5))
    except (pgraw.PgError, pgraw.Closed, TimeoutError) as exc:
        check("%s: FATAL %s" % (desc, sqlstate), False, repr(exc))
    conn.close()


def basic(port):
    # (a) 64 KiB of random bytes as the very first bytes (seeded: the same bytes every run;
    # the first byte is non-zero so that the length word is far above 10000)
    rng = random.Random(80)
    junk = bytes([rng.randrange(1, 256)]) + rng.randbytes(65535)
    conn = pgraw.connect(HOST, port)
    send_quietly(conn, junk)
    what, fields = itest.error_or_close(conn, 5)
    check("64 KiB of random bytes instead of a startup packet: FATAL 08P01 or a close",
          what == "closed" or (what == "error" and fatal(fields, "08P01") == ("FATAL", "08P01")),
          "received: %s %r" % (what, fields))
    if what == "error":
        check("64 KiB of random bytes: closed after the error", itest.closed_after(conn, 5))
    conn.close()

    # (b) startup packet lengths out of range; only the length word (and for 20000 the
    # version) is sent: the proxy must judge the length without waiting for the body
    expect_fatal("startup packet length 4", port, struct.pack("!I", 4),
                 "08P01", "invalid length of startup packet")
    expect_fatal("startup packet length 20000", port, struct.pack("!II", 20000, pgraw.PROTOCOL_3_0),
                 "08P01", "invalid length of startup packet")
    # (c) protocol 2.0
    expect_fatal("StartupMessage with protocol 2.0", port,
                 pgraw.startup_message({"user": "postgres", "database": DB}, version=2 << 16),
                 "0A000", "unsupported frontend protocol")
    # (d) after startup, message type 0x01
    expect_fatal("message type byte 0x01 after startup", port, pgraw.message(b"\x01"),
                 "08P01", "invalid frontend message type 1", login=True)
    # (e) after startup, 'Q' with length 2
    expect_fatal("'Q' with length 2 after startup", port, b"Q" + struct.pack("!I", 2),
                 "08P01", "invalid message length", login=True)


def maxsize(port):
    """The proxy at port runs with --max-message-size 1048576."""
    sql = "select length('%s')"
    small = sql % ("x" * (512 * 1024))
    conn = pgraw.connect(HOST, port)
    try:
        pgraw.login(conn, "postgres", DB)
        rows = pgraw.query(conn, small, timeout=20).rows
        check_eq("a 512 KB Query under --max-message-size 1048576 works", [[str(512 * 1024)]], rows)
    except (pgraw.PgError, pgraw.Closed, TimeoutError) as exc:
        check("a 512 KB Query under --max-message-size 1048576 works", False, repr(exc))
    conn.close()

    big = pgraw.query_message(sql % ("x" * (2 * 1024 * 1024)))
    conn = pgraw.connect(HOST, port)
    try:
        pgraw.login(conn, "postgres", DB)
        # the header alone says how long it is; send the body only if the proxy waits for it
        send_quietly(conn, big[:5])
        what, fields = itest.error_or_close(conn, 2)
        if what == "timeout":
            note("the proxy did not answer the 2 MB header alone; sending the body")
            send_quietly(conn, big[5:])
            what, fields = itest.error_or_close(conn, 10)
        ok = (what == "error" and fatal(fields, "08P01") == ("FATAL", "08P01")
              and "max_message_size" in fields.get("M", ""))
        check("a 2 MB Query under --max-message-size 1048576: FATAL 08P01 naming max_message_size",
              ok, "received: %s %r" % (what, fields))
        if what == "error":
            check("2 MB Query: connection closed after the error", itest.closed_after(conn, 5))
    except (pgraw.PgError, pgraw.Closed, TimeoutError) as exc:
        check("a 2 MB Query under --max-message-size 1048576: FATAL 08P01", False, repr(exc))
    conn.close()


def close_and_check(conn, port, desc):
    """Closes our end (FIN) and checks that the proxy closes its end too, within 3 s."""
    client_port = conn.sock.getsockname()[1]
    time.sleep(0.2)
    conn.close()
    closed, states = itest.server_side_closed(port, client_port, 3.0)
    check("%s then disconnect: the proxy closes its end of the connection" % desc, closed,
          "proxy-side TCP states in /proc/net/tcp: %r (01 ESTABLISHED, 08 CLOSE_WAIT)" % states)


def half_startup(port):
    conn = pgraw.connect(HOST, port)
    packet = pgraw.startup_message({"user": "postgres", "database": DB})
    conn.send(packet[:len(packet) // 2])
    note("sent %d of %d startup bytes" % (len(packet) // 2, len(packet)))
    close_and_check(conn, port, "half a StartupMessage")


def half_query(port):
    conn = pgraw.connect(HOST, port)
    pgraw.login(conn, "postgres", DB, params={"application_name": "apigres-80-half"})
    msg = pgraw.query_message("select '%s'" % ("y" * 1000))
    conn.send(msg[:100])
    note("logged in, sent %d of %d bytes of a Query" % (100, len(msg)))
    close_and_check(conn, port, "half a Query")


# ---- (h) many connections sending garbage at once

VALID_TYPES = b"BCDEFHPQSXcdfp"


def garbage_client(i, results):
    """Connection i sends one kind of garbage (i % 5) and records (kind, what, sqlstate)."""
    rng = random.Random(1000 + i)
    kind = i % 5
    what, fields = "?", None
    try:
        conn = pgraw.connect(HOST, PORT, timeout=10)
        if kind == 0:    # random bytes, length word > 10000
            send_quietly(conn, bytes([rng.randrange(1, 256)]) + rng.randbytes(rng.randrange(3, 8192)))
        elif kind == 1:  # plausible length and version 3.0, random parameter bytes
            n = rng.randrange(8, 2000)
            send_quietly(conn, struct.pack("!II", n, pgraw.PROTOCOL_3_0) + rng.randbytes(n - 8))
        elif kind == 2:  # plausible length, then only part of the packet
            n = rng.randrange(100, 10000)
            send_quietly(conn, struct.pack("!II", n, pgraw.PROTOCOL_3_0) + rng.randbytes(rng.randrange(0, 50)))
        else:            # a logged-in session, then an invalid (3) or valid (4) type byte
            pgraw.login(conn, "postgres", DB)
            if kind == 3:
                mtype = bytes([rng.choice([b for b in range(256) if b not in VALID_TYPES])])
            else:
                mtype = bytes([rng.choice(VALID_TYPES)])
            send_quietly(conn, mtype + struct.pack("!I", rng.randrange(4, 100000)) + rng.randbytes(rng.randrange(0, 3000)))
        what, fields = itest.error_or_close(conn, 2 if kind in (2, 4) else 5)
        conn.close(reset=(i % 2 == 0))
    except Exception as exc:  # noqa: BLE001 - recorded, checked below
        what = "exception %r" % exc
    results[i] = (kind, what, fields)


def storm(port, n):
    global PORT
    PORT = port
    results = {}
    threads = [threading.Thread(target=garbage_client, args=(i, results)) for i in range(n)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    note("%d garbage connections done in %.1f s" % (n, time.monotonic() - start))
    summary = {}
    for kind, what, fields in results.values():
        key = (kind, what if what != "error" else "error " + "/".join(map(str, fatal(fields, ""))))
        summary[key] = summary.get(key, 0) + 1
    for key in sorted(summary):
        note("kind %d: %s x%d" % (key[0], key[1], summary[key]))
    check_eq("all %d garbage clients finished" % n, n, len(results))

    def bad(kinds, accept):
        return [(i, r) for i, r in sorted(results.items()) if r[0] in kinds and not accept(r)]
    wrong = bad((0,), lambda r: r[1] == "closed" or fatal(r[2], "08P01") == ("FATAL", "08P01"))
    check("random first bytes: every connection got FATAL 08P01 or a close", not wrong, wrong[:5])
    wrong = bad((1,), lambda r: r[1] == "closed" or (r[1] == "error" and fatal(r[2], "")[0] == "FATAL"))
    check("random startup parameters: every connection got a FATAL error or a close", not wrong, wrong[:5])
    wrong = bad((3,), lambda r: fatal(r[2], "08P01") == ("FATAL", "08P01")
                and r[2].get("M", "").startswith("invalid frontend message type"))
    check("invalid message type after login: every connection got FATAL 08P01", not wrong, wrong[:5])
    wrong = bad((2, 4), lambda r: not r[1].startswith("exception"))
    check("partial packets and random messages: no client-side failure (connect/login)",
          not wrong, wrong[:5])


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "basic":
        basic(port)
    elif mode == "maxsize":
        maxsize(port)
    elif mode == "half-startup":
        half_startup(port)
    elif mode == "half-query":
        half_query(port)
    elif mode == "storm":
        storm(port, int(sys.argv[3]))
    else:
        sys.exit(__doc__)
    raise SystemExit(itest.status())
