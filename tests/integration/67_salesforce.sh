#!/usr/bin/env bash
# upstream/salesforce (OAuth refresh, sObjects, SOQL paging, errors) against the Salesforce fake.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"

FAKE_PID=""
cleanup() { [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

if ! start_fake salesforce "$TEST_TMP/salesforce-fake-67.log"; then
  not_ok "start the Salesforce fake"; test_done
fi
"$TEST_BIN/67_salesforce" "$FAKE_URL" || TEST_FAILED=1
test_done
