#!/usr/bin/env bash
# The write path's permission model tested adversarially (issue 7): a role without write
# grants on a synced table, and one whose writes an RLS policy blocks, try every statement
# form that could make apigres call the API or change the mirror; see 76_permissions.py.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
export PYTHONDONTWRITEBYTECODE=1
FAKE_PID=""
cleanup() {
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
  # 76_permissions.py writes its apigres's pid here and stops it itself; this is the fallback
  [ -s "$TEST_TMP/apigres-76.pid" ] && kill -KILL "$(cat "$TEST_TMP/apigres-76.pid")" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT
if ! start_fake stripe "$TEST_TMP/stripe-fake-76.log" --no-seed --rng-seed 76; then
  not_ok "start the Stripe fake"; test_done
fi
# Debian's python3 has psycopg 3 (the extended protocol, COPY)
timeout 400 /usr/bin/python3 "$(dirname "$0")/76_permissions.py" "$FAKE_URL" || TEST_FAILED=1
test_done
