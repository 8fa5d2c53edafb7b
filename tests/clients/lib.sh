# Source this file from a tests/clients/NAME/run written in shell. Prints and counts checks
# like tests/lib/testlib.sh and adds what every client of the matrix needs:
#   stripe_get PATH FIELD    one field of GET /v1/PATH at the Stripe fake (as upstream sees it)
#   matrix ROW LIBRARY RUNTIME SOURCE   the client's row of the README's matrix
# Environment: see tests/integration/78_clients.py.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/testlib.sh"

stripe_get() {
  curl -sS -u "$STRIPE_TEST_KEY:" "$FAKE_URL/v1/$1" |
    python3 -c 'import json, sys; v = json.load(sys.stdin).get(sys.argv[1]); print(json.dumps(v) if isinstance(v, bool) else v)' "$2"
}

matrix() { echo "# matrix: $1 | $2 | $3 | $4"; }
