#!/usr/bin/env bash
# Authentication passes through the proxy: SCRAM-SHA-256 and md5 with psql and with the raw
# client (tests/lib/pgraw.py), errors identical to a direct connection, SSLRequest and
# GSSENCRequest answered 'N', SCRAM-SHA-256-PLUS removed from the SASL mechanism list,
# BackendKeyData with the backend's pid and the proxy's own secret, no password in the logs.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"   # free_port
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
HERE=$(cd "$(dirname "$0")" && pwd)
export WRONG_PASSWORD=not-the-$APP_PASSWORD

P2_PID=""
cleanup() { [ -n "$P2_PID" ] && kill -KILL "$P2_PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

# --- psql with a password through the proxy
check_eq "psql SCRAM login ($APP_USER) through the proxy" "$APP_USER" \
  "$(PGPASSWORD=$APP_PASSWORD psql_proxy -U "$APP_USER" -Atc 'select current_user' 2>&1)"
check_eq "psql md5 login ($MD5_USER) through the proxy" "$MD5_USER" \
  "$(PGPASSWORD=$MD5_PASSWORD psql_proxy -U "$MD5_USER" -Atc 'select current_user' 2>&1)"

# psql's error text through the proxy equals the direct one, up to the port in it
psql_error() {  # psql_error PORT USER [PASSWORD]: psql's output with the port number blanked
  PGPASSWORD=${3:-} psql -X -p "$1" -U "$2" -Atc 'select 1' 2>&1 | sed "s/port $1 /port N /g"
}
direct=$(psql_error "$PG_PORT" "$APP_USER" "$WRONG_PASSWORD")
proxied=$(psql_error "$PROXY_PORT" "$APP_USER" "$WRONG_PASSWORD")
check "psql with a wrong password fails directly (sanity)" grep -q 'password authentication failed' <<<"$direct"
check_eq "psql wrong-password error through the proxy equals the direct one" "$direct" "$proxied"
direct=$(psql_error "$PG_PORT" no_such_user)
proxied=$(psql_error "$PROXY_PORT" no_such_user)
check "psql with an unknown user fails directly (sanity)" grep -q 'does not exist' <<<"$direct"
check_eq "psql unknown-user error through the proxy equals the direct one" "$direct" "$proxied"

# --- raw protocol checks; a second proxy in front of a fake server that offers -PLUS
export FAKE_PORT FAKE_PROXY_PORT
FAKE_PORT=$(free_port); FAKE_PROXY_PORT=$(free_port)
P2_LOG=$TEST_TMP/apigres-60-fake.log
# Called in this shell, not in $(...): apigres is our child (wait works) and no command
# substitution waits for the end of apigres's stdout.
if start_proxy "$FAKE_PROXY_PORT" "host=127.0.0.1 port=$FAKE_PORT" "$P2_LOG" >/dev/null; then
  P2_PID=$!
  python3 "$HERE/60_auth.py" || TEST_FAILED=1
else
  P2_PID=$!
  not_ok "start a second apigres for the fake SASL server"
fi

# --- no secret in the logs (debug level)
for log in "$APIGRES_LOG" "$P2_LOG"; do
  for secret in "$APP_PASSWORD" "$MD5_PASSWORD" "$WRONG_PASSWORD"; do
    if grep -qF -- "$secret" "$log"; then
      not_ok "password '$secret' appears in $(basename "$log")"
      grep -nF -- "$secret" "$log" | head -n 3 | sed 's/^/#   /'
    else
      ok "password '$secret' does not appear in $(basename "$log")"
    fi
  done
done
test_done
