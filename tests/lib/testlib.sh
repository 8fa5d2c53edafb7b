# Source this file from a test script run by tests/run.sh. Every check prints one line,
# "ok - what" or "not ok - what"; tests/run.sh counts them. A script's exit status is
# non-zero when any of its checks failed.
#
# Environment provided by tests/run.sh:
#   PG_PORT      the real Postgres (127.0.0.1)      PROXY_PORT  apigres in front of it
#   PGHOST PGDATABASE PGUSER                         defaults for psql/libpq (superuser, trust)
#   APIGRES      path of the apigres binary          APIGRES_PID APIGRES_LOG (running instance)
#   PG_DIR       the cluster's directory (socket, data, postgres.log)
#   TEST_TMP     a scratch directory for this run    TEST_BIN    compiled test programs
#   APP_USER/APP_PASSWORD   SCRAM role;   MD5_USER/MD5_PASSWORD   md5 role

TEST_FAILED=0

ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; TEST_FAILED=1; }

# check "description" command args...   passes when the command exits 0
check() {
  local desc=$1; shift
  if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# check_eq "description" expected actual
check_eq() {
  if [ "$2" == "$3" ]; then ok "$1"; else
    not_ok "$1"; printf '#   expected: %q\n#   actual:   %q\n' "$2" "$3"; fi
}

psql_direct() { psql -X -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@"; }

# owned_database DB ROLE: a fresh database DB owned by a fresh login role ROLE (both dropped
# first, should an earlier run have left them)
owned_database() {
  psql_direct -q -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $1;
DROP ROLE IF EXISTS $2;
CREATE ROLE $2 LOGIN;
CREATE DATABASE $1 OWNER $2;
SQL
}
psql_proxy()  { psql -X -v ON_ERROR_STOP=1 -p "$PROXY_PORT" "$@"; }

# proxy_rss_kb PID   resident set size of a process in KiB
proxy_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/${1:-$APIGRES_PID}/status"; }

# proxy_loops [LOG]   the proxy's event loops (--threads), from its start-up line
proxy_loops() {
  local n; n=$(sed -n 's/.* serving clients on \([0-9]*\) threads.*/\1/p' "${1:-$APIGRES_LOG}" | tail -n 1)
  echo "${n:-1}"
}

# proxy_stats   asks the running proxy for its counters (SIGUSR1) and prints them as one
# stats line: with several loops, the line of their total
proxy_stats() {
  local line='stats: ' before; [ "$(proxy_loops)" -gt 1 ] && line='stats: total '
  before=$(grep -c "$line" "$APIGRES_LOG" || true)
  kill -USR1 "$APIGRES_PID"
  for _ in $(seq 100); do
    [ "$(grep -c "$line" "$APIGRES_LOG" || true)" -gt "$before" ] && break
    sleep 0.02
  done
  grep "$line" "$APIGRES_LOG" | tail -n 1 | sed 's/.*stats: \(total \)\{0,1\}/stats: /'
}

# stat_value NAME   one counter from proxy_stats, e.g. stat_value clients_active
stat_value() { proxy_stats | tr ' ' '\n' | sed -n "s/^$1=//p"; }

test_done() { exit "$TEST_FAILED"; }
