#!/usr/bin/env bash
# apigres with several event loops (--threads 3, proxy/threads.h) against the Stripe fake
# and the real database: see 92_threads.py.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() { [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; pkill -KILL -f "apigres-92" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
if ! start_fake stripe "$TEST_TMP/stripe-fake-92.log" --no-seed --rng-seed 92; then
  not_ok "start the Stripe fake"; test_done
fi
timeout 300 /usr/bin/python3 "$(dirname "$0")/92_threads.py" "$FAKE_URL" || TEST_FAILED=1
test_done
