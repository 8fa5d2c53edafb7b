#!/usr/bin/env bash
# The client matrix: each driver and ORM under tests/clients/ through apigres, with the
# Stripe fake behind it. See 78_clients.py.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() {
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
  pkill -KILL -f "$TEST_TMP/apigres-78.json" 2>/dev/null; wait 2>/dev/null
}
trap cleanup EXIT
if ! start_fake stripe "$TEST_TMP/stripe-fake-78.log" --no-seed --rng-seed 78; then
  not_ok "start the Stripe fake"; test_done
fi
timeout 3000 python3 "$(dirname "$0")/78_clients.py" "$FAKE_URL" || TEST_FAILED=1
test_done
