#!/usr/bin/env bash
# Hostile clients (issue 7, "Hostile input"), each against an apigres of its own started
# here with the limit under test (logs: $TEST_TMP/apigres-82-*.log). See 82_hostile.py.
#   1. slowloris: 200 connections dribbling a StartupMessage one byte a second (cut at a 2 s
#      --startup-timeout, reconnecting at once) and 20 logged-in ones dribbling a Query, while
#      a well-behaved client's latency is compared with its own baseline from the same run;
#      the proxy's descriptors and RSS stay bounded.
#   2. cancel flood: ~1000 CancelRequests a second for 5 s (random keys, real pids with wrong
#      keys) while clients work; a legitimate cancel still works, no wrong key cancels.
#   3. limits not already checked elsewhere: --max-client-conn (53300, also as psql shows it,
#      a cancel when the proxy is full, refused clients do not use up slots), startup packet
#      boundaries and layouts, --max-message-size at its boundary and for Parse while other
#      clients go on, and clients stalled before login (no bytes, after SSLRequest, in SCRAM)
#      cut at --startup-timeout.
#   4. --client-idle-timeout: an idle client is cut with 57P05; one in a transaction, one
#      with a long query and one that keeps talking are not.
# Already covered elsewhere and not repeated: 80_garbage (random first bytes, startup lengths 4
# and 20000, protocol 2.0, bad type byte, length < 4, 512 KB vs 2 MB under --max-message-size,
# half-sent packets, a 200-connection garbage storm), 70_idle_clients (500 idle logged-in
# clients and their RSS), 50_cancel (wrong key or pid cancels nothing, legitimate cancels),
# 55_client_vanishes (the client goes away mid-query).
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"   # free_port
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
HERE=$(cd "$(dirname "$0")" && pwd)
PY="python3 $HERE/82_hostile.py"
DB="host=127.0.0.1 port=$PG_PORT"
TIMEOUT=2

PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

# proxy NAME ARGS...: starts an apigres of this test on a free port, logging to
# $TEST_TMP/apigres-82-NAME.log; sets PORT, PID and LOG (PID empty if it did not start)
proxy() {
  local name=$1; shift
  PORT=$(free_port); LOG=$TEST_TMP/apigres-82-$name.log; PID=""
  if start_proxy "$PORT" "$DB" "$LOG" "$@" >/dev/null; then
    PID=$!; PIDS+=("$PID")
  else
    PIDS+=("$!"); not_ok "start apigres $*"
  fi
}

# stop NAME: the proxy must still be alive, and exit 0 on SIGTERM
stop() {
  local name=$1
  if ! kill -0 "$PID" 2>/dev/null; then
    not_ok "$name: apigres is still running"; tail -n 20 "$LOG" | sed 's/^/#   /'; return
  fi
  ok "$name: apigres is still running"
  kill -TERM "$PID"; wait "$PID"; check_eq "$name: apigres exits 0 on SIGTERM" 0 "$?"
}

start=$(date +%s)

proxy slowloris --startup-timeout "$TIMEOUT"
if [ -n "$PID" ]; then
  $PY slowloris "$PORT" "$PID" "$LOG" "$TIMEOUT" || TEST_FAILED=1
  $PY timeouts "$PORT" "$PID" "$LOG" "$TIMEOUT" || TEST_FAILED=1
  stop slowloris
fi

proxy cancel
if [ -n "$PID" ]; then
  $PY cancel "$PORT" "$PID" "$LOG" || TEST_FAILED=1
  stop "cancel flood"
fi

proxy maxconn --max-client-conn 5
if [ -n "$PID" ]; then
  $PY maxconn "$PORT" "$PID" "$LOG" || TEST_FAILED=1
  stop "max_client_conn"
fi

proxy limits --max-message-size 1048576
if [ -n "$PID" ]; then
  $PY limits "$PORT" "$PID" "$LOG" 1048576 || TEST_FAILED=1
  stop "limits"
fi

proxy idle --client-idle-timeout 1
if [ -n "$PID" ]; then
  $PY idle "$PORT" "$PID" "$LOG" 1 || TEST_FAILED=1
  stop "client_idle_timeout"
fi

for log in "$TEST_TMP"/apigres-82-*.log; do
  if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$log"; then
    not_ok "sanitizer report in $(basename "$log")"
  fi
done
echo "# 82_hostile took $(( $(date +%s) - start )) s"
test_done
