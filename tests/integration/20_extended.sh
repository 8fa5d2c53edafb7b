#!/usr/bin/env bash
# The extended query protocol through apigres (see 20_extended.c): the program asserts the
# expected values itself, and its transcript of everything it observed must be identical
# through the proxy and directly against PostgreSQL.
. "$(dirname "$0")/../lib/testlib.sh"
PROG=$TEST_BIN/20_extended
W=$TEST_TMP/20_extended
mkdir -p "$W"
conninfo() { echo "host=127.0.0.1 port=$1 dbname=$PGDATABASE user=$PGUSER application_name=apigres_20_extended"; }

# The direct run is the baseline: if it fails the test itself is wrong, not the proxy.
"$PROG" "$(conninfo "$PG_PORT")" "$W/direct.txt" direct >"$W/direct.out" 2>&1
status=$?
if [ "$status" -eq 0 ]; then ok "baseline: 20_extended passes directly against PostgreSQL"
else not_ok "baseline: 20_extended fails directly against PostgreSQL (status $status)"
  grep -v '^ok ' "$W/direct.out" | sed 's/^/#   /' | head -n 30; fi

# Through the proxy: its ok / not ok lines are this script's checks.
"$PROG" "$(conninfo "$PROXY_PORT")" "$W/proxy.txt" proxy >"$W/proxy.out" 2>&1
status=$?
cat "$W/proxy.out"
grep -q '^not ok ' "$W/proxy.out" && TEST_FAILED=1
check_eq "20_extended exit status through the proxy" 0 "$status"

if cmp -s "$W/direct.txt" "$W/proxy.txt"; then
  ok "extended-protocol transcript through the proxy is identical to direct ($(wc -l <"$W/direct.txt") lines)"
else
  not_ok "extended-protocol transcript through the proxy differs from direct"
  diff -u "$W/direct.txt" "$W/proxy.txt" | head -n 60 | sed 's/^/#   /'
fi
test_done
