"""Shared bits of the Python helpers of the integration tests (not a test itself).

Checks print "ok - ..." / "not ok - ..." lines like tests/lib/testlib.sh; a helper ends with
sys.exit(itest.status()) so that its caller knows whether everything passed. Importing this
also makes tests/lib (pgraw, tcpcut) importable.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import pgraw  # noqa: E402  (re-exported for the helpers)

_failed = False
HOST = "127.0.0.1"


def ok(desc):
    print("ok - " + desc, flush=True)


def not_ok(desc, detail=None):
    global _failed
    _failed = True
    print("not ok - " + desc, flush=True)
    if detail is not None:
        for line in str(detail).splitlines():
            print("#   " + line, flush=True)


def check(desc, cond, detail=None):
    """Passes when cond is true; detail (printed on failure) says what was seen."""
    if cond:
        ok(desc)
    else:
        not_ok(desc, detail)
    return bool(cond)


def check_eq(desc, expected, actual):
    return check(desc, expected == actual, "expected: %r\nactual:   %r" % (expected, actual))


def note(text):
    print("# " + text, flush=True)


def status():
    return 1 if _failed else 0


def env_port(name):
    return int(os.environ[name])


def error_or_close(conn, timeout=5.0):
    """What the server does next: ('error', fields) for an ErrorResponse, ('closed', None)
    when it closes without one, ('timeout', None) when nothing happens, ('message', msg)
    for anything else."""
    try:
        msg = conn.read_message(timeout)
    except pgraw.Closed:
        return "closed", None
    except TimeoutError:
        return "timeout", None
    if msg.type == b"E":
        return "error", msg.error_fields()
    return "message", msg


def closed_after(conn, timeout=5.0):
    """True when the peer closes the connection within timeout (no more messages)."""
    try:
        conn.read_until_closed(timeout)
        return True
    except TimeoutError:
        return False


def peer_socket_states(server_port, client_port):
    """TCP states (hex codes of /proc/net/tcp, e.g. '01' ESTABLISHED, '08' CLOSE_WAIT) of the
    sockets whose local port is server_port and remote port is client_port: the server's end
    of one connection of ours, as the kernel sees it."""
    states = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                states.append(state)
    return states


def server_side_closed(server_port, client_port, timeout=3.0):
    """Waits until the server has closed its end of our (already closed) connection: its
    socket is neither ESTABLISHED ('01') nor CLOSE_WAIT ('08', i.e. it got our FIN but never
    closed). Returns (closed?, last states seen)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        states = peer_socket_states(server_port, client_port)
        if not any(s in ("01", "08") for s in states):
            return True, states
        if time.monotonic() > deadline:
            return False, states
        time.sleep(0.05)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(desc, cond, timeout=30.0):
    """Polls cond() every 0.1 s until it is true (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except Exception:  # noqa: BLE001 - e.g. the database has no tables yet
            pass
        time.sleep(0.1)
    note("gave up waiting: " + desc)
    return False
