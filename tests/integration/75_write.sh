#!/usr/bin/env bash
# The write path (proxy/write.c) through psql against the Stripe fake and the real
# database: see 75_write.py.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() { [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; pkill -KILL -f "apigres-75" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
if ! start_fake stripe "$TEST_TMP/stripe-fake-75.log" --no-seed --rng-seed 75; then
  not_ok "start the Stripe fake"; test_done
fi
# Debian's python3 has psycopg 3
timeout 300 /usr/bin/python3 "$(dirname "$0")/75_write.py" "$FAKE_URL" || TEST_FAILED=1
test_done
