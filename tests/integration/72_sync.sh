#!/usr/bin/env bash
# The sync worker against the Stripe fake and the real database (see 72_sync.py): backfill,
# kill -9 and resume, changes, an expired feed, two instances sharing one lease.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() { [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; pkill -KILL -f "apigres-72-" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
if ! start_fake stripe "$TEST_TMP/stripe-fake-72.log" --no-seed --rng-seed 72; then
  not_ok "start the Stripe fake"; test_done
fi
timeout 600 python3 "$(dirname "$0")/72_sync.py" "$FAKE_URL" || TEST_FAILED=1
test_done
