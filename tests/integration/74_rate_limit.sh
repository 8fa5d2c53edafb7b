#!/usr/bin/env bash
# One sync, one budget: the backfill and the proxy's writes within one rate limit, writes
# first. See 74_rate_limit.py.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() {
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
  pkill -KILL -f "$TEST_TMP/apigres-74.json" 2>/dev/null; wait 2>/dev/null
}
trap cleanup EXIT
if ! start_fake stripe "$TEST_TMP/stripe-fake-74.log" --no-seed --rng-seed 74; then
  not_ok "start the Stripe fake"; test_done
fi
# Debian's python3 has psycopg 3
timeout 300 /usr/bin/python3 "$(dirname "$0")/74_rate_limit.py" "$FAKE_URL" || TEST_FAILED=1
test_done
