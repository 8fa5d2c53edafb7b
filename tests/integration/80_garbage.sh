#!/usr/bin/env bash
# Garbage in: the proxy answers malformed input with FATAL errors (or a close), never crashes,
# enforces --max-message-size, forgets half-sent clients, and keeps serving everyone else
# while 200 connections send garbage at once.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"   # free_port
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
HERE=$(cd "$(dirname "$0")" && pwd)
PY="python3 $HERE/80_garbage.py"

P2_PID=""; STORM_PID=""
cleanup() {
  [ -n "$P2_PID" ] && kill -KILL "$P2_PID" 2>/dev/null
  [ -n "$STORM_PID" ] && kill "$STORM_PID" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT

# wait_stat NAME VALUE: waits up to 5 s for the shared proxy's counter NAME to equal VALUE
wait_stat() {
  local v
  for _ in $(seq 50); do
    v=$(stat_value "$1"); [ "$v" = "$2" ] && return 0
    sleep 0.1
  done
  echo "#   $1=$v, expected $2"; return 1
}

proxy_select1() { [ "$(psql_proxy -Atc 'select 1' 2>&1)" = 1 ]; }

# (a)-(e)
$PY basic "$PROXY_PORT" || TEST_FAILED=1
check "the proxy still answers psql after the malformed startups" proxy_select1

# (f) --max-message-size
P2_PORT=$(free_port)
if start_proxy "$P2_PORT" "host=127.0.0.1 port=$PG_PORT" "$TEST_TMP/apigres-80-maxsize.log" \
     --max-message-size 1048576 >/dev/null; then
  P2_PID=$!
  $PY maxsize "$P2_PORT" || TEST_FAILED=1
else
  P2_PID=$!
  not_ok "start apigres with --max-message-size 1048576"
fi

# (g) half a message, then gone: no trace in the counters nor on the database
clients0=$(stat_value clients_active); servers0=$(stat_value servers_active)
$PY half-startup "$PROXY_PORT" || TEST_FAILED=1
check "half a StartupMessage then disconnect: clients_active back to $clients0" wait_stat clients_active "$clients0"
$PY half-query "$PROXY_PORT" || TEST_FAILED=1
check "half a Query then disconnect: clients_active back to $clients0" wait_stat clients_active "$clients0"
check "half a Query then disconnect: servers_active back to $servers0" wait_stat servers_active "$servers0"
check_eq "half a Query then disconnect: its backend is gone" 0 \
  "$(psql_direct -Atc "select count(*) from pg_stat_activity where application_name = 'apigres-80-half'")"

# (h) 200 garbage connections at once while psql keeps working through the proxy
clients0=$(stat_value clients_active)
$PY storm "$PROXY_PORT" 200 >"$TEST_TMP/80_storm.out" 2>&1 &
STORM_PID=$!
runs=0; fails=0
while kill -0 "$STORM_PID" 2>/dev/null; do
  if proxy_select1; then runs=$((runs + 1)); else fails=$((fails + 1)); fi
done
wait "$STORM_PID" || TEST_FAILED=1
cat "$TEST_TMP/80_storm.out"
echo "# psql select 1 during the storm: $runs succeeded, $fails failed"
check "psql through the proxy kept working during the garbage storm ($runs runs)" \
  test "$fails" -eq 0 -a "$runs" -ge 3
check "the proxy is alive after the storm" kill -0 "$APIGRES_PID"
check "after the storm: clients_active back to $clients0" wait_stat clients_active "$clients0"
check "the proxy answers psql after the storm" proxy_select1
test_done
