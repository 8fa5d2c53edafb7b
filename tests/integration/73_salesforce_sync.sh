#!/usr/bin/env bash
# The sync worker's Salesforce feed against the Salesforce fake and the real database (see
# 73_salesforce_sync.py): backfill, kill -9 and resume, changes, ordering, a token refresh,
# a deletion window older than Salesforce keeps.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() { [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
if ! start_fake salesforce "$TEST_TMP/salesforce-fake-73.log" --seed 73; then
  not_ok "start the Salesforce fake"; test_done
fi
timeout 600 python3 "$(dirname "$0")/73_salesforce_sync.py" "$FAKE_URL" || TEST_FAILED=1
test_done
