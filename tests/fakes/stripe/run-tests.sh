#!/usr/bin/env bash
# Fidelity tests of the Stripe fake against Stripe's official Node library.
# Installs the pinned library from package-lock.json if node_modules is missing,
# then runs the tests with TAP output ("ok N - ..." / "not ok N - ..." per test).
#
#   tests/fakes/stripe/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1; then
  echo "not ok 1 - node is not installed"; exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "not ok 1 - node $major is too old (need 20+)"; exit 1
fi
if [ ! -d node_modules/stripe ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
exec node --test --test-reporter=tap --test-timeout=60000 fidelity.test.js
