#!/usr/bin/env python3
"""pgraw: a small raw PostgreSQL v3 wire-protocol client for apigres's integration tests.

It speaks the protocol byte by byte so that tests can see exactly what the proxy sends
(message types, ErrorResponse fields, BackendKeyData, the SASL mechanism list) and can send
things a real client never would (bad lengths, unknown message types, garbage).

As a module:
    import pgraw
    conn = pgraw.connect("127.0.0.1", 6432)
    info = pgraw.login(conn, "app", "apigres_test", password="app-secret")
    rows = pgraw.query(conn, "select 1").rows          # [["1"]]
    conn.send(pgraw.message(b"\\x01", b""))           # raw bytes
    msg = conn.read_message(timeout=2)                 # Message(type=b"E", payload=...)
    msg.error_fields()                                 # {"S": "FATAL", "C": "08P01", ...}

From the command line (prints what it saw; exit 0 = ok, 1 = ErrorResponse, 2 = other failure):
    pgraw.py -p PORT -U USER -d DB [--password PW] [--sslrequest|--gssencrequest] [-c SQL]...

Python 3 standard library only. Text is UTF-8; values are returned as str (None for NULL).
"""

import argparse
import base64
import hashlib
import hmac
import os
import select
import socket
import struct
import sys
import time

PROTOCOL_3_0 = 3 << 16           # 196608
SSL_REQUEST_CODE = 80877103      # 1234 << 16 | 5679
GSSENC_REQUEST_CODE = 80877104   # 1234 << 16 | 5680
CANCEL_REQUEST_CODE = 80877102   # 1234 << 16 | 5678

AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5 = 0, 3, 5
AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 10, 11, 12


class Closed(Exception):
    """The peer closed (or reset) the connection."""


class PgError(Exception):
    """An ErrorResponse from the server; .fields maps field codes ('S','V','C','M',...) to text."""

    def __init__(self, fields):
        self.fields = fields
        super().__init__(format_error(fields))

    @property
    def sqlstate(self):
        return self.fields.get("C")

    @property
    def severity(self):
        return self.fields.get("V") or self.fields.get("S")

    @property
    def text(self):
        return self.fields.get("M")


# ---------------------------------------------------------------- building messages

def message(mtype, payload=b""):
    """A typed frontend/backend message: type byte, int32 length (counting itself), payload."""
    return mtype + struct.pack("!I", len(payload) + 4) + payload


def cstring(text):
    """A NUL-terminated UTF-8 string."""
    return text.encode() + b"\0"


def untyped(payload):
    """An untyped message (startup-phase packets): int32 length, then payload."""
    return struct.pack("!I", len(payload) + 4) + payload


def startup_message(params, version=PROTOCOL_3_0):
    """StartupMessage with the given parameters (dict), e.g. {'user': 'app', 'database': 'x'}."""
    body = struct.pack("!I", version)
    for key, value in params.items():
        body += cstring(key) + cstring(value)
    return untyped(body + b"\0")


def ssl_request():
    return untyped(struct.pack("!I", SSL_REQUEST_CODE))


def gssenc_request():
    return untyped(struct.pack("!I", GSSENC_REQUEST_CODE))


def cancel_request(pid, secret):
    return untyped(struct.pack("!III", CANCEL_REQUEST_CODE, pid, secret))


def query_message(sql):
    """Simple Query ('Q')."""
    return message(b"Q", cstring(sql))


def terminate_message():
    return message(b"X")


def password_message(text):
    """PasswordMessage ('p') carrying a cleartext or md5 password."""
    return message(b"p", cstring(text))


def sasl_initial_response(mechanism, data):
    return message(b"p", cstring(mechanism) + struct.pack("!i", len(data)) + data)


def sasl_response(data):
    return message(b"p", data)


# ---------------------------------------------------------------- parsing messages

class Message:
    """One backend message: .type (one byte, bytes) and .payload (bytes after the length)."""

    def __init__(self, mtype, payload):
        self.type = mtype
        self.payload = payload

    def __repr__(self):
        return "Message(%r, %r)" % (self.type, self.payload[:80])

    def error_fields(self):
        """Fields of an ErrorResponse ('E') or NoticeResponse ('N') as a dict."""
        return parse_fields(self.payload)

    def auth(self):
        """AuthenticationXXX ('R'): (code, rest of payload)."""
        (code,) = struct.unpack("!I", self.payload[:4])
        return code, self.payload[4:]

    def backend_key(self):
        """BackendKeyData ('K'): (pid, secret)."""
        return struct.unpack("!II", self.payload[:8])

    def parameter(self):
        """ParameterStatus ('S'): (name, value)."""
        name, value = self.payload.split(b"\0")[:2]
        return name.decode(), value.decode()

    def data_row(self):
        """DataRow ('D'): list of str or None."""
        (count,) = struct.unpack("!H", self.payload[:2])
        pos, values = 2, []
        for _ in range(count):
            (size,) = struct.unpack("!i", self.payload[pos:pos + 4])
            pos += 4
            if size < 0:
                values.append(None)
            else:
                values.append(self.payload[pos:pos + size].decode())
                pos += size
        return values

    def command_tag(self):
        """CommandComplete ('C'): the tag, e.g. 'SELECT 1'."""
        return self.payload.rstrip(b"\0").decode()


def parse_fields(payload):
    """ErrorResponse/NoticeResponse body: (code byte, cstring)* then NUL."""
    fields, pos = {}, 0
    while pos < len(payload) and payload[pos] != 0:
        code = chr(payload[pos])
        end = payload.index(b"\0", pos + 1)
        fields[code] = payload[pos + 1:end].decode(errors="replace")
        pos = end + 1
    return fields


def format_error(fields):
    """'SEVERITY SQLSTATE message', the one-line form tests print and compare."""
    return "%s %s %s" % (fields.get("V") or fields.get("S"), fields.get("C"), fields.get("M"))


def sasl_mechanisms(data):
    """The mechanism list of AuthenticationSASL: NUL-terminated names, then an empty one."""
    return [m.decode() for m in data.split(b"\0") if m]


# ---------------------------------------------------------------- the connection

class Conn:
    """A socket plus a receive buffer, with reads that time out."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        """Sends all of data; raises Closed if the peer has closed or reset the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            raise Closed("send failed: %s" % exc) from None

    def _fill(self, deadline):
        """Reads more bytes into the buffer; raises Closed on EOF/reset, TimeoutError at deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for data")
        ready, _, _ = select.select([self.sock], [], [], remaining)
        if not ready:
            raise TimeoutError("timed out waiting for data")
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError) as exc:
            raise Closed("connection reset: %s" % exc) from None
        if not chunk:
            raise Closed("connection closed by peer")
        self.buf += chunk

    def recv_exact(self, n, timeout=10.0):
        """Exactly n bytes, or Closed/TimeoutError."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_message(self, timeout=10.0):
        """The next backend message (Message), or Closed/TimeoutError."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 5:
            self._fill(deadline)
        mtype = self.buf[:1]
        (length,) = struct.unpack("!I", self.buf[1:5])
        if length < 4:
            raise ValueError("bad message length %d from server" % length)
        while len(self.buf) < 1 + length:
            self._fill(deadline)
        payload = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return Message(mtype, payload)

    def read_until_closed(self, timeout=10.0):
        """Messages until the peer closes; returns them (raises TimeoutError if it never does)."""
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                msgs.append(self.read_message(max(deadline - time.monotonic(), 0.001)))
            except Closed:
                return msgs

    def close(self, reset=False):
        """Closes the socket; reset=True sends an RST instead of a FIN (SO_LINGER 0)."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def connect(host="127.0.0.1", port=5432, timeout=10.0):
    """A TCP connection to host:port as a Conn."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    return Conn(sock)


def negotiate(conn, request, timeout=10.0):
    """Sends an SSLRequest/GSSENCRequest and returns the one-byte answer (b'N' or b'S'/b'G')."""
    conn.send(request)
    return conn.recv_exact(1, timeout)


# ---------------------------------------------------------------- authentication

def md5_password(user, password, salt):
    """The md5 PasswordMessage text: 'md5' + md5(md5(password + user) + salt)."""
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


class ScramClient:
    """Client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677), without channel binding.

    client_first() -> bytes; client_final(server_first) -> bytes; verify(server_final) raises
    ValueError unless the server proved it knows the password.
    """

    def __init__(self, password, nonce=None):
        self.password = password.encode()  # ASCII passwords: SASLprep is the identity
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=,r=" + self.nonce  # Postgres takes the user from the startup packet
        self.auth_message = None
        self.salted = None

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        text = server_first.decode()
        attrs = dict(item.split("=", 1) for item in text.split(","))
        if not attrs["r"].startswith(self.nonce) or len(attrs["r"]) <= len(self.nonce):
            raise ValueError("server nonce does not extend the client nonce")
        salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
        self.salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(self.salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=" + base64.b64encode(b"n,,").decode() + ",r=" + attrs["r"]
        self.auth_message = ",".join([self.first_bare, text, without_proof]).encode()
        signature = hmac.new(stored_key, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, server_final):
        attrs = dict(item.split("=", 1) for item in server_final.decode().split(","))
        if "e" in attrs:
            raise ValueError("server reported SCRAM error: " + attrs["e"])
        server_key = hmac.new(self.salted, b"Server Key", hashlib.sha256).digest()
        expected = hmac.new(server_key, self.auth_message, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64decode(attrs["v"]), expected):
            raise ValueError("server signature does not match")


def read_or_raise(conn, timeout):
    """The next message; an ErrorResponse is raised as PgError."""
    msg = conn.read_message(timeout)
    if msg.type == b"E":
        raise PgError(msg.error_fields())
    return msg


def authenticate(conn, user, password, info, timeout=10.0):
    """Answers Authentication requests until AuthenticationOk. Records in info: 'auth'
    (method name) and 'mechanisms' (SASL list). Raises PgError on ErrorResponse."""
    scram = None
    while True:
        msg = read_or_raise(conn, timeout)
        if msg.type == b"N":
            continue
        if msg.type != b"R":
            raise ValueError("expected Authentication message, got %r" % msg)
        code, data = msg.auth()
        if code == AUTH_OK:
            info.setdefault("auth", "trust")
            return
        if password is None and code in (AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL):
            raise ValueError("server asks for a password (auth code %d) and none was given" % code)
        if code == AUTH_CLEARTEXT:
            info["auth"] = "password"
            conn.send(password_message(password))
        elif code == AUTH_MD5:
            info["auth"] = "md5"
            conn.send(password_message(md5_password(user, password, data[:4])))
        elif code == AUTH_SASL:
            info["mechanisms"] = sasl_mechanisms(data)
            if "SCRAM-SHA-256" not in info["mechanisms"]:
                raise ValueError("no supported SASL mechanism in %r" % info["mechanisms"])
            info["auth"] = "SCRAM-SHA-256"
            scram = ScramClient(password)
            conn.send(sasl_initial_response("SCRAM-SHA-256", scram.client_first()))
        elif code == AUTH_SASL_CONTINUE:
            conn.send(sasl_response(scram.client_final(data)))
        elif code == AUTH_SASL_FINAL:
            scram.verify(data)
            info["server_signature_ok"] = True
        else:
            raise ValueError("unsupported authentication request %d" % code)


def login(conn, user, database, password=None, params=None, timeout=10.0):
    """Sends a StartupMessage, authenticates and reads up to ReadyForQuery.

    Returns a dict: auth, mechanisms (if SASL), server_signature_ok (if SCRAM), params
    (ParameterStatus), backend_key ((pid, secret) or None). Raises PgError on ErrorResponse.
    """
    startup = {"user": user, "database": database}
    startup.update(params or {})
    conn.send(startup_message(startup))
    info = {"params": {}, "backend_key": None}
    authenticate(conn, user, password, info, timeout)
    while True:
        msg = read_or_raise(conn, timeout)
        if msg.type == b"S":
            name, value = msg.parameter()
            info["params"][name] = value
        elif msg.type == b"K":
            info["backend_key"] = msg.backend_key()
        elif msg.type == b"Z":
            return info


# ---------------------------------------------------------------- queries

class Result:
    """Outcome of a simple query: rows (lists of str/None), tags, error (PgError or None)."""

    def __init__(self):
        self.rows, self.tags, self.error, self.notices = [], [], None, []


def query(conn, sql, timeout=10.0, raise_error=True):
    """Runs a simple Query and reads up to ReadyForQuery. Raises PgError on an ErrorResponse
    unless raise_error=False (then see .error); Closed if the connection ends first."""
    conn.send(query_message(sql))
    result = Result()
    while True:
        msg = conn.read_message(timeout)
        if msg.type == b"D":
            result.rows.append(msg.data_row())
        elif msg.type == b"C":
            result.tags.append(msg.command_tag())
        elif msg.type == b"E":
            result.error = PgError(msg.error_fields())
        elif msg.type == b"N":
            result.notices.append(msg.error_fields())
        elif msg.type == b"Z":
            if result.error and raise_error:
                raise result.error
            return result


def expect_error(conn, timeout=5.0):
    """Reads messages until an ErrorResponse; returns its fields. Raises Closed/TimeoutError."""
    while True:
        msg = conn.read_message(timeout)
        if msg.type == b"E":
            return msg.error_fields()


# ---------------------------------------------------------------- command line

def main(argv=None):
    ap = argparse.ArgumentParser(description="Raw PostgreSQL v3 protocol client (tests).")
    ap.add_argument("-H", "--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    ap.add_argument("-p", "--port", type=int, default=int(os.environ.get("PGPORT", "5432")))
    ap.add_argument("-U", "--user", default=os.environ.get("PGUSER", "postgres"))
    ap.add_argument("-d", "--database", default=os.environ.get("PGDATABASE", "postgres"))
    ap.add_argument("--password", default=os.environ.get("PGPASSWORD"))
    ap.add_argument("--sslrequest", action="store_true", help="send SSLRequest first")
    ap.add_argument("--gssencrequest", action="store_true", help="send GSSENCRequest first")
    ap.add_argument("-c", "--command", action="append", default=[], help="SQL to run")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args(argv)
    try:
        conn = connect(args.host, args.port, args.timeout)
        if args.sslrequest:
            print("sslrequest: %s" % negotiate(conn, ssl_request(), args.timeout).decode("latin1"))
        if args.gssencrequest:
            print("gssencrequest: %s" % negotiate(conn, gssenc_request(), args.timeout).decode("latin1"))
        info = login(conn, args.user, args.database, args.password, timeout=args.timeout)
        print("auth: %s" % info["auth"])
        if "mechanisms" in info:
            print("mechanisms: %s" % " ".join(info["mechanisms"]))
        if info.get("server_signature_ok"):
            print("server signature: verified")
        if info["backend_key"]:
            print("backend_key: %d %d" % info["backend_key"])
        for sql in args.command:
            for row in query(conn, sql, args.timeout).rows:
                print("\t".join("" if v is None else v for v in row))
        conn.send(terminate_message())
        conn.close()
    except PgError as exc:
        print("error: %s" % exc)
        return 1
    except (Closed, TimeoutError, OSError, ValueError) as exc:
        print("failure: %s: %s" % (type(exc).__name__, exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
