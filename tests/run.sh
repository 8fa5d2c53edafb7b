#!/usr/bin/env bash
# Runs every test: unit tests, then integration tests against a real PostgreSQL cluster
# started here (temp dir, free port) with apigres in front of it. Stops what it started.
# Prints "ok"/"not ok" lines and ends with "N passed, N failed"; exits non-zero on failure.
#
#   tests/run.sh [PATTERN]     PATTERN filters integration scripts by name (grep -E)
# Environment: BUILD (default build) holds apigres and tests/ programs; KEEP_TMP=1 keeps logs;
# SKIP_UNIT=1 skips the unit tests and the fuzz run (to iterate on one integration script);
# APIGRES_THREADS=N runs every apigres the tests start with --threads N (a test's own
# --threads, given after it, still wins).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PATTERN=${1:-.}
. "$ROOT/tests/lib/pgcluster.sh"

export TEST_TMP; TEST_TMP=$(mktemp -d /tmp/apigres-test.XXXXXX)
chmod 755 "$TEST_TMP"
export PG_DIR=$TEST_TMP/pg PG_PORT PROXY_PORT
PG_PORT=$(free_port); PROXY_PORT=$(free_port)
export APIGRES=$BUILD/apigres TEST_BIN=$BUILD/tests
if [ -n "${APIGRES_THREADS:-}" ]; then
  printf '#!/bin/sh\nexec "%s" --threads %s "$@"\n' "$APIGRES" "$APIGRES_THREADS" >"$TEST_TMP/apigres-threads"
  chmod +x "$TEST_TMP/apigres-threads"
  APIGRES=$TEST_TMP/apigres-threads
fi
export APIGRES_LOG=$TEST_TMP/apigres.log APIGRES_PID=""
export PGHOST=127.0.0.1 PGDATABASE=apigres_test PGUSER=postgres PGCONNECT_TIMEOUT=10
export APP_USER=app APP_PASSWORD=app-secret MD5_USER=app_md5 MD5_PASSWORD=md5-secret
unset PGPASSWORD PGPORT PGSERVICE PGSSLMODE PGOPTIONS

passed=0; failed=0

cleanup() {
  [ -n "$APIGRES_PID" ] && kill -9 "$APIGRES_PID" 2>/dev/null
  pg_cluster_stop "$PG_DIR"
  if [ "${KEEP_TMP:-0}" = 1 ] || [ "$failed" -gt 0 ]; then
    echo "# logs kept in $TEST_TMP" >&2
  else
    rm -rf "$TEST_TMP"
  fi
}
trap cleanup EXIT

# count OUTPUT_FILE STATUS NAME: tallies ok / not ok lines; a failing script that printed
# no "not ok" line still counts as one failure.
count() {
  local out=$1 status=$2 name=$3 p f
  p=$(grep -c '^ok ' "$out"); f=$(grep -c '^not ok ' "$out")
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "not ok - $name exited with status $status"; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
}

run_logged() {  # run_logged NAME CMD...: runs a test, echoes its output, counts it
  local name=$1; shift
  local out=$TEST_TMP/$name.out
  echo "# $name"
  "$@" >"$out" 2>&1; local status=$?
  cat "$out"
  count "$out" "$status" "$name"
}

# --- unit tests (no database needed)
[ "${SKIP_UNIT:-0}" = 1 ] && echo "# SKIP_UNIT=1: unit tests and fuzz run not run"
for t in "$TEST_BIN"/unit_*; do
  [ "${SKIP_UNIT:-0}" = 1 ] && break
  [ -x "$t" ] && run_logged "$(basename "$t")" "$t"
done

# --- a short fuzz run of the entry points that read untrusted bytes (make fuzz runs longer)
for target in pgwire classify copy_rows; do
  [ "${SKIP_UNIT:-0}" = 1 ] && break
  fuzzer=$BUILD/fuzz/fuzz_$target
  [ -x "$fuzzer" ] || continue
  echo "# fuzz_$target"
  corpus=$TEST_TMP/fuzz-corpus-$target; mkdir -p "$corpus"
  if "$fuzzer" -max_total_time="${FUZZ_SECONDS:-15}" -max_len=4096 \
       "$corpus" "$ROOT/tests/fuzz/corpus/$target" >"$TEST_TMP/fuzz-$target.log" 2>&1; then
    echo "ok - fuzz_$target: $(grep -o 'Done [0-9]* runs' "$TEST_TMP/fuzz-$target.log") without a finding"; passed=$((passed + 1))
  else
    echo "not ok - fuzz_$target found a crash"; tail -n 30 "$TEST_TMP/fuzz-$target.log"; failed=$((failed + 1))
  fi
done

# --- the real database
mkdir -p "$PG_DIR"
cat >"$PG_DIR/pg_hba.conf" <<HBA
local all all trust
host all $APP_USER 127.0.0.1/32 scram-sha-256
host all $MD5_USER 127.0.0.1/32 md5
host all all 127.0.0.1/32 trust
HBA
if ! pg_cluster_start "$PG_DIR" "$PG_PORT"; then
  echo "not ok - start PostgreSQL"; failed=$((failed + 1))
  echo "$passed passed, $failed failed"; exit 1
fi
psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres >/dev/null <<SQL || { echo "not ok - set up roles"; exit 1; }
CREATE ROLE $APP_USER LOGIN PASSWORD '$APP_PASSWORD';
SET password_encryption = 'md5';
CREATE ROLE $MD5_USER LOGIN PASSWORD '$MD5_PASSWORD';
CREATE DATABASE apigres_test OWNER $APP_USER;
SQL
pgbench -q -i -s 1 -p "$PG_PORT" apigres_test >/dev/null 2>&1 || { echo "not ok - pgbench -i"; exit 1; }

# start_proxy PORT DATABASE LOG [extra args]: starts apigres, waits for it to listen, prints
# its pid. Call it in the shell itself and take $! to be able to wait for the proxy; when it
# is called in $(...) the caller's EXIT trap must not run in that subshell, and the proxy
# must not hold the substitution's stdout open.
start_proxy() {
  [ "$BASH_SUBSHELL" -gt 0 ] && trap - EXIT
  local port=$1 db=$2 log=$3; shift 3
  "$APIGRES" --listen "127.0.0.1:$port" --database "$db" --log-level debug "$@" >/dev/null 2>"$log" &
  local pid=$!
  for _ in $(seq 200); do
    grep -q 'listening on' "$log" 2>/dev/null && { echo "$pid"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2; return 1
}
export -f start_proxy

# started in this shell so that it is our child and its exit status can be waited for
if ! start_proxy "$PROXY_PORT" "host=127.0.0.1 port=$PG_PORT" "$APIGRES_LOG" >/dev/null; then
  echo "not ok - start apigres"; failed=$((failed + 1))
  echo "$passed passed, $failed failed"; exit 1
fi
APIGRES_PID=$!
export APIGRES_PID

# --- integration tests, in name order; each may use the shared proxy and cluster
for t in "$ROOT"/tests/integration/*.sh; do
  name=$(basename "$t" .sh)
  echo "$name" | grep -qE "$PATTERN" || continue
  run_logged "$name" bash "$t"
  if ! kill -0 "$APIGRES_PID" 2>/dev/null; then
    echo "not ok - apigres still running after $name"; failed=$((failed + 1))
    tail -n 20 "$APIGRES_LOG"; break
  fi
done

# --- a graceful stop is part of the contract: SIGTERM, exit status 0
if kill -0 "$APIGRES_PID" 2>/dev/null; then
  kill -TERM "$APIGRES_PID"; wait "$APIGRES_PID"; status=$?; APIGRES_PID=""
  if [ "$status" -eq 0 ]; then echo "ok - apigres exits 0 on SIGTERM"; passed=$((passed + 1))
  else echo "not ok - apigres exit status $status on SIGTERM"; failed=$((failed + 1)); fi
fi
if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$TEST_TMP"/*.log "$TEST_TMP"/*.out 2>/dev/null; then
  echo "not ok - sanitizer reports in logs"; failed=$((failed + 1))
  grep -hE -A5 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$TEST_TMP"/*.log "$TEST_TMP"/*.out | head -n 40
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
