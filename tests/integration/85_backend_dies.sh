#!/usr/bin/env bash
# A database connection dies under one client: that client alone gets FATAL 08006, the others
# go on, and the proxy stays up. A database that cannot be reached gives FATAL 08001.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"   # free_port
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
HERE=$(cd "$(dirname "$0")" && pwd)

CUT_PID=""; P2_PID=""; P3_PID=""
cleanup() {
  local p; for p in "$P2_PID" "$P3_PID" "$CUT_PID"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

# stats_of PID LOG NAME: a counter of another apigres instance
stats_of() { APIGRES_PID=$1 APIGRES_LOG=$2 stat_value "$3"; }

# --- proxy -> tcpcut forwarder -> Postgres
CUT_PORT=$(free_port); CONTROL_PORT=$(free_port); P2_PORT=$(free_port)
P2_LOG=$TEST_TMP/apigres-85-cut.log
python3 "$HERE/../lib/tcpcut.py" "$CUT_PORT" 127.0.0.1 "$PG_PORT" "$CONTROL_PORT" \
  >"$TEST_TMP/tcpcut-85.out" 2>&1 &
CUT_PID=$!
for _ in $(seq 100); do grep -q ready "$TEST_TMP/tcpcut-85.out" && break; sleep 0.05; done
check "tcpcut forwarder is ready" grep -q ready "$TEST_TMP/tcpcut-85.out"

# start_proxy runs in this shell, not in $(...): $! is apigres, and no command substitution
# waits for apigres's stdout to close.
if start_proxy "$P2_PORT" "host=127.0.0.1 port=$CUT_PORT" "$P2_LOG" >/dev/null; then
  P2_PID=$!
  python3 "$HERE/85_backend_dies.py" cut "$P2_PORT" "$CONTROL_PORT" || TEST_FAILED=1
  check "the proxy is still running after its database connections died" kill -0 "$P2_PID"
  settled=0
  for _ in $(seq 30); do
    [ "$(stats_of "$P2_PID" "$P2_LOG" clients_active)" = 0 ] \
      && [ "$(stats_of "$P2_PID" "$P2_LOG" servers_active)" = 0 ] && { settled=1; break; }
    sleep 0.1
  done
  check "all clients gone: clients_active=0 and servers_active=0 ($(stats_of "$P2_PID" "$P2_LOG" clients_active), $(stats_of "$P2_PID" "$P2_LOG" servers_active))" \
    test "$settled" = 1
else
  P2_PID=$!
  not_ok "start apigres in front of the tcpcut forwarder"
fi

# --- proxy -> a port where nothing listens
DEAD_PORT=$(free_port); P3_PORT=$(free_port)
if start_proxy "$P3_PORT" "host=127.0.0.1 port=$DEAD_PORT" "$TEST_TMP/apigres-85-dead.log" >/dev/null; then
  P3_PID=$!
  python3 "$HERE/85_backend_dies.py" unreachable "$P3_PORT" || TEST_FAILED=1
  check "the proxy with an unreachable database is still running" kill -0 "$P3_PID"
else
  P3_PID=$!
  not_ok "start apigres with an unreachable database"
fi
test_done
