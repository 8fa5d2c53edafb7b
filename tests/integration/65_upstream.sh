#!/usr/bin/env bash
# upstream/ (HTTP on the loop, rate limit, retries, Stripe errors) against the Stripe fake.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/fakes.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"  # free_port

FAKE_PID=""; H2_PID=""
cleanup() { local p; for p in "$FAKE_PID" "$H2_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

# An HTTP/2 server over TLS with a certificate made here, for the HTTP/2 checks.
H2_DIR=$TEST_TMP/h2; mkdir -p "$H2_DIR"
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$H2_DIR/key.pem" -out "$H2_DIR/cert.pem" -days 1 \
     -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$H2_DIR/openssl.log" 2>&1; then
  node "$(dirname "$0")/../lib/h2server.js" "$H2_DIR/key.pem" "$H2_DIR/cert.pem" >"$H2_DIR/server.log" 2>&1 &
  H2_PID=$!
  for _ in $(seq 100); do grep -q listening "$H2_DIR/server.log" && break; sleep 0.05; done
  export H2_URL; H2_URL=$(sed -n 's/^h2server listening on \(https[^ ]*\)$/\1/p' "$H2_DIR/server.log")
  export H2_CA=$H2_DIR/cert.pem
fi
[ -n "${H2_URL:-}" ] || not_ok "start an HTTP/2 server over TLS ($(tail -n 3 "$H2_DIR/openssl.log" "$H2_DIR/server.log" 2>/dev/null))"

if ! start_fake stripe "$TEST_TMP/stripe-fake-65.log"; then
  not_ok "start the Stripe fake"; test_done
fi
DEAD_PORT=$(free_port) "$TEST_BIN/65_upstream" "$FAKE_URL" || TEST_FAILED=1
test_done
