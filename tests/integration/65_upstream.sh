#!/usr/bin/env bash
# upstream/ (HTTP on the loop, rate limit, retries, Stripe errors) against the Stripe fake.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"  # free_port

FAKE_PID=""
cleanup() { [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

if ! start_fake stripe "$TEST_TMP/stripe-fake-65.log"; then
  not_ok "start the Stripe fake"; test_done
fi
DEAD_PORT=$(free_port) "$TEST_BIN/65_upstream" "$FAKE_URL" || TEST_FAILED=1
test_done
