#!/usr/bin/env bash
# Every Salesforce error class a write can meet, through the proxy with psql and psycopg 3,
# against the Salesforce fake and the real database: see 79_salesforce_errors.py.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() {
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
  # the helper's apigres, should the helper have died before stopping it
  [ -s "$TEST_TMP/apigres-79.pid" ] && kill -KILL "$(cat "$TEST_TMP/apigres-79.pid")" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT
if ! start_fake salesforce "$TEST_TMP/salesforce-fake-79.log" --seed 79; then
  not_ok "start the Salesforce fake"; test_done
fi
# Debian's python3 has psycopg 3 (the extended protocol)
timeout 600 /usr/bin/python3 "$(dirname "$0")/79_salesforce_errors.py" "$FAKE_URL" || TEST_FAILED=1
test_done
