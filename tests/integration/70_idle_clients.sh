#!/usr/bin/env bash
# 500 idle clients at once through the shared proxy: all live, counted in clients_active, one
# backend each, bounded memory per client, and all forgotten once they close.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"   # free_port
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
HERE=$(cd "$(dirname "$0")" && pwd)
N=500

holder=""  # the coproc's pid (bash unsets HOLDER_PID as soon as the coproc ends)
cleanup() { [ -n "$holder" ] && kill "$holder" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

backends() {  # backends of this test's connections, seen directly on the database
  psql_direct -Atc "select count(*) from pg_stat_activity where application_name = 'apigres-70-idle'"
}

clients0=$(stat_value clients_active)
rss0=$(proxy_rss_kb "$APIGRES_PID")

coproc HOLDER { exec python3 "$HERE/70_idle_clients.py" "$PROXY_PORT" "$N" 50; }
holder=$HOLDER_PID
holding=0
while IFS= read -r -t 120 -u "${HOLDER[0]}" line; do
  echo "$line"
  case $line in "# holding $N idle connections") holding=1; break ;; esac
done
check "the holder opened $N connections" test "$holding" = 1

if [ "$holding" = 1 ]; then
  clients=$(stat_value clients_active)
  check "clients_active with $N idle clients is at least $((clients0 + N)) (it is $clients)" \
    test "${clients:-0}" -ge $((clients0 + N))
  check_eq "one backend per idle client on the database" "$N" "$(backends)"
  rss=$(proxy_rss_kb "$APIGRES_PID")
  per_client=$(( (rss - rss0) / N ))
  echo "# proxy RSS with $N idle clients: $rss KiB (before: $rss0 KiB, $per_client KiB per client)"
  # An idle client costs two sockets, a session struct and whatever buffers it keeps.
  # Measured on a 2-core Debian 12 machine: about 2 KiB per idle client (5 KiB under
  # AddressSanitizer, which check-asan also runs). 32 KiB leaves 6x room over the ASan figure
  # for allocator slack, yet fails a proxy that keeps a 32 KiB+ buffer per idle connection
  # or leaks per login.
  check "proxy RSS growth per idle client ($per_client KiB) is below 32 KiB" test "$per_client" -lt 32
fi

if [ -n "${HOLDER[1]:-}" ]; then  # the coproc is still there: let it close its connections
  echo close >&"${HOLDER[1]}"
  while IFS= read -r -t 60 -u "${HOLDER[0]}" line; do echo "$line"; done
fi
wait "$holder" || TEST_FAILED=1
holder=""

settled=0
for _ in $(seq 50); do
  [ "$(stat_value clients_active)" = "$clients0" ] && { settled=1; break; }
  sleep 0.1
done
check "clients_active back to $clients0 within 5 s after closing them all (now $(stat_value clients_active))" \
  test "$settled" = 1
closed=0
for _ in $(seq 50); do [ "$(backends)" = 0 ] && { closed=1; break; }; sleep 0.1; done
check "their $N backends are closed within 5 s (left: $(backends))" test "$closed" = 1
test_done
