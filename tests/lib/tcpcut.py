#!/usr/bin/env python3
"""tcpcut: a tiny TCP forwarder for tests that need a database connection to die.

    tcpcut.py LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT CONTROL_PORT

Forwards every connection accepted on 127.0.0.1:LISTEN_PORT to UPSTREAM_HOST:UPSTREAM_PORT,
and numbers the connections 1, 2, 3... in accept order. A control connection on
127.0.0.1:CONTROL_PORT takes one command per line and answers one line:

    list       "ID ID ..."  the connections that are still open, in accept order
    cut ID     resets connection ID on both sides (SO_LINGER 0 close, so the peers see an
               RST, no FIN and no error message): "ok" or "unknown ID"
    close ID   closes connection ID on both sides with a normal FIN: "ok" or "unknown ID"

Prints "ready" on stdout once it listens; runs until killed. Python 3 standard library only.
"""

import selectors
import socket
import struct
import sys


class Pair:
    """One forwarded connection: the accepted (downstream) and the upstream socket."""

    def __init__(self, ident, down, up):
        self.ident, self.down, self.up = ident, down, up

    def peer_of(self, sock):
        return self.up if sock is self.down else self.down


def listener(port):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def reset(sock):
    """Closes sock so that the kernel sends an RST (SO_LINGER on with timeout 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Forwarder:
    def __init__(self, listen_port, upstream, control_port):
        self.upstream = upstream
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener(listen_port), selectors.EVENT_READ, self.accept)
        self.sel.register(listener(control_port), selectors.EVENT_READ, self.accept_control)
        self.pairs = {}        # id -> Pair
        self.next_id = 1

    def accept(self, sock):
        down, _ = sock.accept()
        try:
            up = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            reset(down)
            return
        pair = Pair(self.next_id, down, up)
        self.next_id += 1
        self.pairs[pair.ident] = pair
        for s in (down, up):
            s.settimeout(5)
            self.sel.register(s, selectors.EVENT_READ, lambda s, p=pair: self.relay(p, s))

    def relay(self, pair, sock):
        try:
            data = sock.recv(65536)
            if data:
                pair.peer_of(sock).sendall(data)
            else:
                self.drop(pair, socket.socket.close)  # EOF on one side: FIN the other
        except OSError:
            self.drop(pair, reset)  # reset or error on one side: reset the other

    def drop(self, pair, how):
        self.pairs.pop(pair.ident, None)
        for s in (pair.down, pair.up):
            self.sel.unregister(s)
            how(s)

    def accept_control(self, sock):
        conn, _ = sock.accept()
        conn.settimeout(5)
        self.sel.register(conn, selectors.EVENT_READ, self.control)

    def control(self, conn):
        line = b""
        try:
            line = conn.recv(1024)
        except OSError:
            pass
        words = line.decode(errors="replace").split()
        if not words:
            self.sel.unregister(conn)
            conn.close()
            return
        if words[0] == "list":
            answer = " ".join(str(i) for i in sorted(self.pairs))
        elif words[0] in ("cut", "close") and len(words) == 2 and words[1].isdigit():
            pair = self.pairs.get(int(words[1]))
            if pair is None:
                answer = "unknown " + words[1]
            else:
                self.drop(pair, reset if words[0] == "cut" else socket.socket.close)
                answer = "ok"
        else:
            answer = "usage: list | cut ID | close ID"
        conn.sendall(answer.encode() + b"\n")

    def run(self):
        print("ready", flush=True)
        while True:
            for key, _ in self.sel.select():
                key.data(key.fileobj)


def command(control_port, text):
    """Client helper for tests: sends one control command, returns the answer line."""
    with socket.create_connection(("127.0.0.1", control_port), timeout=5) as s:
        s.sendall(text.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            answer += chunk
        return answer.decode().strip()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    Forwarder(int(sys.argv[1]), (sys.argv[2], int(sys.argv[3])), int(sys.argv[4])).run()
