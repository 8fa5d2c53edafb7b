#!/usr/bin/env bash
# The write path on Salesforce tables through psql and psycopg 3, against the Salesforce
# fake and the real database: see 77_salesforce_write.py.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() {
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
  pkill -KILL -f "$TEST_TMP/apigres-77.json" 2>/dev/null; wait 2>/dev/null
}
trap cleanup EXIT
if ! start_fake salesforce "$TEST_TMP/salesforce-fake-77.log" --seed 77; then
  not_ok "start the Salesforce fake"; test_done
fi
timeout 300 python3 "$(dirname "$0")/77_salesforce_write.py" "$FAKE_URL" || TEST_FAILED=1
test_done
