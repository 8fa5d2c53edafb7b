#!/usr/bin/env bash
# Runs the Salesforce fake's fidelity tests (jsforce against the fake) with the TAP reporter:
# result lines start with "ok " / "not ok ". Installs the pinned client first when
# node_modules is missing (npm ci from package-lock.json; its output goes to stderr).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/jsforce ]; then
  npm ci --no-audit --no-fund >&2
fi
exec node --test --test-reporter=tap fidelity.test.js
