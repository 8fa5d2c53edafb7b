#!/usr/bin/env bash
# A client vanishes while its query runs: the proxy cancels the query on the backend and
# closes the backend connection, and forgets the client. Once with psql killed by SIGKILL
# (the kernel closes its socket with a FIN), once with a raw client that resets (RST).
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"   # free_port
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
LIB=$(cd "$(dirname "$0")/../lib" && pwd)

CLIENT_PID=""
cleanup() { [ -n "$CLIENT_PID" ] && kill -KILL "$CLIENT_PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

# backends APPNAME [extra condition]: how many backends of that application_name exist
backends() {
  psql_direct -Atc "select count(*) from pg_stat_activity where application_name = '$1' ${2:-}"
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s; prints the seconds it took
wait_for() {
  local limit=$1 i; shift
  for ((i = 0; i <= limit * 10; i++)); do
    "$@" && { echo "$((i / 10)).$((i % 10))"; return 0; }
    sleep 0.1
  done
  return 1
}
running() { [ "$(backends "$1" "and state = 'active' and query = 'select pg_sleep(30)'")" = 1 ]; }
starts_running() { wait_for 2 running "$1" >/dev/null; }
gone() { [ "$(backends "$1")" = 0 ]; }
clients_back() { [ "$(stat_value clients_active)" = "$clients0" ]; }

vanish_checks() {  # vanish_checks APPNAME HOW: the checks after the client vanished
  local t
  if t=$(wait_for 3 gone "$1"); then
    ok "$2: the backend query is cancelled and the backend connection closed (${t} s)"
  else
    not_ok "$2: backend still there 3 s later"
    psql_direct -Atc "select pid, state, query from pg_stat_activity where application_name = '$1'" | sed 's/^/#   /'
  fi
  if t=$(wait_for 3 clients_back); then ok "$2: clients_active back to $clients0 (${t} s)"
  else not_ok "$2: clients_active is $(stat_value clients_active), expected $clients0"; fi
}

# --- psql killed with SIGKILL during select pg_sleep(30)
clients0=$(stat_value clients_active)
# psql itself, not the psql_proxy function: $! must be psql, not a subshell
PGAPPNAME=apigres-55-kill psql -X -p "$PROXY_PORT" -Atc 'select pg_sleep(30)' >/dev/null 2>&1 &
CLIENT_PID=$!
check "psql's pg_sleep(30) runs on a backend through the proxy" starts_running apigres-55-kill
sleep 0.5
kill -KILL "$CLIENT_PID"; wait "$CLIENT_PID" 2>/dev/null; CLIENT_PID=""
vanish_checks apigres-55-kill "psql SIGKILLed mid-query"

# --- a raw client that resets (SO_LINGER 0 close: RST) its connection during pg_sleep(30)
clients0=$(stat_value clients_active)
python3 - "$LIB" "$PROXY_PORT" <<'PY' &
import sys, time
sys.path.insert(0, sys.argv[1])
import pgraw
conn = pgraw.connect("127.0.0.1", int(sys.argv[2]))
pgraw.login(conn, "postgres", "apigres_test", params={"application_name": "apigres-55-rst"})
conn.send(pgraw.query_message("select pg_sleep(30)"))
time.sleep(1.0)  # the test sees the query running meanwhile
conn.close(reset=True)
PY
CLIENT_PID=$!
check "the raw client's pg_sleep(30) runs on a backend through the proxy" starts_running apigres-55-rst
wait "$CLIENT_PID"; CLIENT_PID=""
vanish_checks apigres-55-rst "raw client reset its connection mid-query"
test_done
