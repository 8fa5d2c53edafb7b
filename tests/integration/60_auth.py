#!/usr/bin/env python3
"""Authentication through apigres, seen with the raw client (run by 60_auth.sh).

Environment: PG_PORT, PROXY_PORT, APP_USER/APP_PASSWORD (SCRAM), MD5_USER/MD5_PASSWORD,
FAKE_PROXY_PORT (an apigres whose database is FAKE_PORT, where this script runs a fake server
that offers SCRAM-SHA-256-PLUS), PGDATABASE. Prints ok / not ok lines.
"""

import os
import socket
import struct
import threading

import itest
from itest import check, check_eq, note, pgraw

HOST = itest.HOST
PG = itest.env_port("PG_PORT")
PROXY = itest.env_port("PROXY_PORT")
DB = os.environ.get("PGDATABASE", "apigres_test")
APP, APP_PW = os.environ["APP_USER"], os.environ["APP_PASSWORD"]
MD5, MD5_PW = os.environ["MD5_USER"], os.environ["MD5_PASSWORD"]
WRONG_PW = os.environ["WRONG_PASSWORD"]


def login_error(port, user, password):
    """Logs in expecting failure; returns the error fields (or a description of what happened)."""
    conn = pgraw.connect(HOST, port)
    try:
        pgraw.login(conn, user, DB, password)
        return {"unexpected": "login succeeded"}
    except pgraw.PgError as exc:
        fields = exc.fields
        fields["closed_after"] = itest.closed_after(conn, 5)
        return fields
    except (pgraw.Closed, TimeoutError, ValueError) as exc:
        return {"unexpected": "%s: %s" % (type(exc).__name__, exc)}
    finally:
        conn.close()


def scram_login():
    conn = pgraw.connect(HOST, PROXY)
    try:
        info = pgraw.login(conn, APP, DB, APP_PW)
    except Exception as exc:  # report, don't crash: later checks still run
        check("pgraw SCRAM-SHA-256 login through the proxy", False, repr(exc))
        return
    check_eq("pgraw login as %s used SCRAM-SHA-256" % APP, "SCRAM-SHA-256", info.get("auth"))
    check("pgraw verified the server signature (SCRAM server-final) through the proxy",
          info.get("server_signature_ok"))
    mechs = info.get("mechanisms", [])
    check("AuthenticationSASL mechanism list through the proxy has SCRAM-SHA-256 and no "
          "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256" in mechs and "SCRAM-SHA-256-PLUS" not in mechs,
          "mechanisms: %r" % mechs)
    rows = pgraw.query(conn, "select current_user, pg_backend_pid()").rows
    check_eq("pgraw SCRAM session runs queries as %s" % APP, APP, rows[0][0])
    key = info["backend_key"]
    check("BackendKeyData received through the proxy", key is not None)
    if key:
        # The pid is the backend's own (PQbackendPID() == pg_backend_pid(), and NOTIFY
        # senders are recognisable); the secret is the proxy's, so it cancels nothing when
        # sent to the database directly.
        check_eq("BackendKeyData pid through the proxy equals pg_backend_pid()",
                 rows[0][1], str(key[0]))
        conn.send(pgraw.query_message("select pg_sleep(1)"))
        bypass = pgraw.connect(HOST, PG)
        bypass.send(pgraw.cancel_request(key[0], key[1]))
        bypass.close()
        error = None
        while True:
            msg = conn.read_message(10)
            if msg.type == b"E":
                error = msg.error_fields()
            if msg.type == b"Z":
                break
        check("the proxy's cancel secret sent straight to the database cancels nothing",
              error is None, repr(error))
    conn.close()


def md5_login():
    conn = pgraw.connect(HOST, PROXY)
    try:
        info = pgraw.login(conn, MD5, DB, MD5_PW)
        rows = pgraw.query(conn, "select current_user").rows
        check_eq("pgraw md5 login as %s through the proxy" % MD5, ("md5", MD5),
                 (info.get("auth"), rows[0][0]))
    except Exception as exc:
        check("pgraw md5 login through the proxy", False, repr(exc))
    conn.close()


def wrong_password():
    for user in (APP, MD5):
        direct = login_error(PG, user, WRONG_PW)
        proxied = login_error(PROXY, user, WRONG_PW)
        check_eq("wrong password for %s through the proxy: FATAL 28P01" % user,
                 ("FATAL", "28P01"), (proxied.get("V"), proxied.get("C")))
        check_eq("wrong password for %s: same message as direct" % user,
                 direct.get("M"), proxied.get("M"))
        check("wrong password for %s: the proxy closes the connection after the error" % user,
              proxied.get("closed_after"), proxied)


def unknown_user():
    direct = login_error(PG, "no_such_user", None)
    proxied = login_error(PROXY, "no_such_user", None)
    check_eq("unknown user through the proxy: same severity/SQLSTATE/message as direct",
             (direct.get("V"), direct.get("C"), direct.get("M")),
             (proxied.get("V"), proxied.get("C"), proxied.get("M")))


def negotiation(name, request):
    """SSLRequest / GSSENCRequest: answer 'N', then a plain-text session on the same socket."""
    conn = pgraw.connect(HOST, PROXY)
    try:
        answer = pgraw.negotiate(conn, request, 5)
        check_eq("%s through the proxy is answered with 'N'" % name, b"N", answer)
        pgraw.login(conn, "postgres", DB)
        rows = pgraw.query(conn, "select 'plain after %s'" % name).rows
        check_eq("%s then StartupMessage in plain text: the session works" % name,
                 [["plain after %s" % name]], rows)
    except Exception as exc:
        check("%s then a plain-text session" % name, False, repr(exc))
    conn.close()


def both_negotiations():
    """libpq may send SSLRequest and then GSSENCRequest... both 'N', then startup."""
    conn = pgraw.connect(HOST, PROXY)
    try:
        answers = (pgraw.negotiate(conn, pgraw.gssenc_request(), 5),
                   pgraw.negotiate(conn, pgraw.ssl_request(), 5))
        pgraw.login(conn, "postgres", DB)
        rows = pgraw.query(conn, "select 1").rows
        check_eq("GSSENCRequest then SSLRequest: 'N' twice, then a working session",
                 ((b"N", b"N"), [["1"]]), (answers, rows))
    except Exception as exc:
        check("GSSENCRequest then SSLRequest then a session", False, repr(exc))
    conn.close()


# ---- a fake database that offers SCRAM-SHA-256-PLUS (a real one only does with TLS)

def read_packet(sock, typed):
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError("fake server: client closed")
            data += chunk
        return data
    head = exact(5 if typed else 4)
    (length,) = struct.unpack("!I", head[-4:])
    return head[:1], exact(length - 4)


def fake_sasl_server(listener, seen):
    """Serves one connection: startup -> AuthenticationSASL(PLUS, plain), records the client's
    SASLInitialResponse, answers with a FATAL error and closes."""
    try:
        sock, _ = listener.accept()
        sock.settimeout(10)
        while True:
            _, body = read_packet(sock, typed=False)
            code = struct.unpack("!I", body[:4])[0]
            if code in (pgraw.SSL_REQUEST_CODE, pgraw.GSSENC_REQUEST_CODE):
                sock.sendall(b"N")
                continue
            seen["startup"] = body
            break
        mechs = b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"
        sock.sendall(pgraw.message(b"R", struct.pack("!I", pgraw.AUTH_SASL) + mechs))
        mtype, body = read_packet(sock, typed=True)
        seen["response"] = (mtype, body)
        sock.sendall(pgraw.message(b"E", b"SFATAL\0VFATAL\0C28000\0Mfake server stops here\0\0"))
        sock.close()
    except Exception as exc:  # noqa: BLE001 - reported by the main thread
        seen["error"] = repr(exc)


def plus_is_stripped():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, itest.env_port("FAKE_PORT")))
    listener.listen(4)
    listener.settimeout(10)
    seen = {}
    server = threading.Thread(target=fake_sasl_server, args=(listener, seen), daemon=True)
    server.start()
    conn = pgraw.connect(HOST, itest.env_port("FAKE_PROXY_PORT"))
    try:
        conn.send(pgraw.startup_message({"user": APP, "database": DB}))
        msg = conn.read_message(10)
        mechs = pgraw.sasl_mechanisms(msg.auth()[1]) if msg.type == b"R" else None
        check_eq("backend offers SCRAM-SHA-256-PLUS,SCRAM-SHA-256: the client sees only "
                 "SCRAM-SHA-256", ["SCRAM-SHA-256"], mechs)
        scram = pgraw.ScramClient("x")
        sent = pgraw.sasl_initial_response("SCRAM-SHA-256", scram.client_first())
        conn.send(sent)
        fields = pgraw.expect_error(conn, 10)
        server.join(10)
        startup = seen.get("startup", b"")
        check("the backend's StartupMessage carries the client's user and database",
              (b"user\0%s\0" % APP.encode()) in startup
              and (b"database\0%s\0" % DB.encode()) in startup, repr(startup))
        check_eq("the client's SASLInitialResponse reaches the backend byte for byte",
                 (sent[:1], sent[5:]), seen.get("response"))
        check_eq("the backend's FATAL error reaches the client", ("28000", "fake server stops here"),
                 (fields.get("C"), fields.get("M")))
    except Exception as exc:
        check("SASL exchange with a backend offering SCRAM-SHA-256-PLUS", False,
              "%r; fake server saw %r" % (exc, seen))
    conn.close()
    listener.close()


if __name__ == "__main__":
    scram_login()
    md5_login()
    wrong_password()
    unknown_user()
    negotiation("SSLRequest", pgraw.ssl_request())
    negotiation("GSSENCRequest", pgraw.gssenc_request())
    both_negotiations()
    plus_is_stripped()
    note("done")
    raise SystemExit(itest.status())
