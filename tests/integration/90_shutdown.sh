#!/usr/bin/env bash
# Graceful shutdown of a second apigres started with --shutdown-timeout 3:
#  (a) SIGTERM during a query: it completes, new connections are refused, and the proxy
#      exits 0 as soon as that client is gone;
#  (b) SIGTERM with an idle client: after the timeout the client gets FATAL 57P01 and the
#      proxy exits 0.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"   # free_port
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
LIB=$(cd "$(dirname "$0")/../lib" && pwd)

P_PID=""; CLIENT_PID=""
cleanup() {
  local p; for p in "$CLIENT_PID" "$P_PID"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
backends() {
  psql_direct -Atc "select count(*) from pg_stat_activity where application_name = '$1' $2"
}
# no_backends APPNAME: within 2 s, no backend of that application_name is left
no_backends() {
  local i; for ((i = 0; i < 20; i++)); do [ "$(backends "$1")" = 0 ] && return 0; sleep 0.1; done
  return 1
}
# wait_gone PID SECONDS: waits until the process PID has exited (bash reaps it, so kill -0 fails)
wait_gone() {
  local i; for ((i = 0; i < $2 * 50; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.02; done
  return 1
}
# refused PORT: within 1 s, a TCP connection to PORT is refused
refused() {
  python3 - "$1" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
    except ConnectionRefusedError:
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
}
# start a second proxy in this shell (not in $(...)): $! is apigres, so `wait` gets its status
start_second() {
  [ -n "$P_PID" ] && { kill -KILL "$P_PID" 2>/dev/null; wait "$P_PID" 2>/dev/null; }  # left by (a)
  P_PORT=$(free_port)
  if start_proxy "$P_PORT" "host=127.0.0.1 port=$PG_PORT" "$TEST_TMP/apigres-90-$1.log" \
       --shutdown-timeout 3 >/dev/null; then P_PID=$!; return 0; fi
  P_PID=$!; not_ok "start apigres --shutdown-timeout 3 ($1)"; return 1
}

# --- (a) SIGTERM while a query runs
if start_second busy; then
  out=$TEST_TMP/90_busy.out
  PGAPPNAME=apigres-90-busy psql -X -p "$P_PORT" -Atc "select 'done' from pg_sleep(1.5)" >"$out" 2>&1 &
  CLIENT_PID=$!
  for _ in $(seq 40); do
    [ "$(backends apigres-90-busy "and state = 'active'")" = 1 ] && break; sleep 0.05
  done
  check "(a) the query runs on a backend through the proxy" \
    test "$(backends apigres-90-busy "and state = 'active'")" = 1
  kill -TERM "$P_PID"
  check "(a) during shutdown, a new connection is refused" refused "$P_PORT"
  check "(a) ... while the client's query is still running" kill -0 "$CLIENT_PID"
  wait "$CLIENT_PID"; status=$?; CLIENT_PID=""
  t_client=$(now_ms)
  check_eq "(a) the query started before SIGTERM completes with its result" "0:done" "$status:$(cat "$out")"
  if wait_gone "$P_PID" 3; then
    elapsed=$(( $(now_ms) - t_client ))
    wait "$P_PID"; status=$?; P_PID=""
    check_eq "(a) exit status after SIGTERM" 0 "$status"
    # its one client is gone: no reason to wait for the 3 s timeout (which would end about
    # 1.8 s after the client, since SIGTERM came about 0.3 s into the 1.5 s query)
    check "(a) the busy client's backend connection is closed" no_backends apigres-90-busy
    check "(a) the proxy exits quickly once its client is gone (${elapsed} ms < 1000 ms)" \
      test "$elapsed" -lt 1000
  else
    not_ok "(a) the proxy is still running 3 s after its last client left"
  fi
fi

# --- (b) SIGTERM with an idle client
if start_second idle; then
  out=$TEST_TMP/90_idle.out
  python3 - "$LIB" "$P_PORT" >"$out" 2>&1 <<'PY' &
import sys
sys.path.insert(0, sys.argv[1])
import pgraw
conn = pgraw.connect("127.0.0.1", int(sys.argv[2]))
pgraw.login(conn, "postgres", "apigres_test", params={"application_name": "apigres-90-idle"})
print("idle", flush=True)
try:
    msg = conn.read_message(10)
    print("received %s %s" % (msg.type.decode(), pgraw.format_error(msg.error_fields())
                              if msg.type == b"E" else msg.payload[:60]), flush=True)
    conn.read_until_closed(5)
    print("closed", flush=True)
except Exception as exc:
    print("failure %r" % exc, flush=True)
PY
  CLIENT_PID=$!
  for _ in $(seq 100); do grep -q '^idle' "$out" && break; sleep 0.05; done
  check "(b) an idle client is logged in through the proxy" grep -q '^idle' "$out"
  kill -TERM "$P_PID"; t_term=$(now_ms)
  if wait_gone "$P_PID" 8; then
    elapsed=$(( $(now_ms) - t_term ))
    wait "$P_PID"; status=$?; P_PID=""
    check_eq "(b) exit status after SIGTERM with an idle client" 0 "$status"
    check "(b) the idle client keeps its connection for the shutdown timeout (${elapsed} ms >= 2500 ms)" \
      test "$elapsed" -ge 2500
    check "(b) the proxy exits within ~3-5 s of SIGTERM (${elapsed} ms <= 5500 ms)" \
      test "$elapsed" -le 5500
  else
    not_ok "(b) the proxy is still running 8 s after SIGTERM"
  fi
  wait "$CLIENT_PID"; CLIENT_PID=""
  sed 's/^/# client: /' "$out"
  check "(b) the idle client received FATAL 57P01" grep -q '^received E FATAL 57P01 ' "$out"
  check "(b) the idle client's connection was closed after it" grep -qx closed "$out"
  check "(b) the idle client's backend connection is closed" no_backends apigres-90-idle
fi
test_done
