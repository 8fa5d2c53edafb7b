#!/usr/bin/env bash
# Query cancellation through apigres (see 50_cancel.c), and psql's Ctrl-C: SIGINT makes psql
# send a CancelRequest to the proxy, the query stops and psql reports the server's error.
. "$(dirname "$0")/../lib/testlib.sh"
W=$TEST_TMP/50_cancel
mkdir -p "$W"

timeout 90 "$TEST_BIN/50_cancel" "$PROXY_PORT" "$PG_PORT"
check_eq "50_cancel exit status" 0 "$?"

PSQL_PID=""
cleanup() { [ -n "$PSQL_PID" ] && kill -9 "$PSQL_PID" 2>/dev/null && wait "$PSQL_PID" 2>/dev/null; }
trap cleanup EXIT

# sigint_psql PORT: psql -c 'select pg_sleep(30)' interrupted after 0.5 s; prints psql's exit
# status and its stderr, and leaves the milliseconds from SIGINT to exit in $W/ms.PORT.
sigint_psql() {
  # psql installs its own SIGINT handler, so a background job (SIGINT ignored) still gets it
  psql -X -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -p "$1" -c 'select pg_sleep(30)' >"$W/out.$1" 2>"$W/err.$1" &
  PSQL_PID=$!
  sleep 0.5
  local start; start=$(date +%s%3N)
  kill -INT "$PSQL_PID"
  local waited=0
  while kill -0 "$PSQL_PID" 2>/dev/null && [ "$waited" -lt 500 ]; do sleep 0.01; waited=$((waited + 1)); done
  if kill -0 "$PSQL_PID" 2>/dev/null; then echo "still running 5 s after SIGINT"; return; fi
  wait "$PSQL_PID"; local status=$?
  PSQL_PID=""
  echo $(($(date +%s%3N) - start)) >"$W/ms.$1"
  echo "status $status"
  cat "$W/out.$1" "$W/err.$1"
}
direct=$(sigint_psql "$PG_PORT")
proxy=$(sigint_psql "$PROXY_PORT")
check "psql via proxy, SIGINT after 0.5 s: exits within 5 s ($(cat "$W/ms.$PROXY_PORT" 2>/dev/null) ms)" \
  test -s "$W/ms.$PROXY_PORT"
check "psql via proxy prints 'canceling statement due to user request'" \
  grep -q 'ERROR:  57014: canceling statement due to user request' <<<"$proxy"
check_eq "psql via proxy: SIGINT outcome (status, output) identical to direct" "$direct" "$proxy"
check_eq "proxy answers select 1 afterwards" 1 "$(psql_proxy -A -t -c 'select 1')"
test_done
