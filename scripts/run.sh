#!/usr/bin/env bash
# `make run`: starts an embedded PostgreSQL cluster (created on first run, kept between
# runs) and apigres in front of it on 127.0.0.1:6432, prints how to connect, and stops
# everything on Ctrl-C. No configuration needed.
#
# APIs: a provider whose credentials are in the environment is used for real
# (STRIPE_SECRET_KEY; SALESFORCE_INSTANCE_URL with SALESFORCE_ACCESS_TOKEN, or
# SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET and SALESFORCE_REFRESH_TOKEN); any other
# runs as a local sandbox, the fake under tests/fakes/ seeded with realistic data. The
# generated config (APIGRES_HOME/apigres.json) refers to the secrets as ${NAME}, never by
# value.
#
# Environment: APIGRES_HOME (cluster and logs; default ./.apigres, or /var/tmp/apigres
# when the cluster's OS user cannot reach this checkout), APIGRES_LISTEN (default
# 127.0.0.1:6432), APIGRES_CONFIG (your own JSON config file: used as it is, no sandbox).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib/pgcluster.sh"
. "$ROOT/tests/lib/fakes.sh"

HOME_DIR=${APIGRES_HOME:-$ROOT/.apigres}
if [ -z "${APIGRES_HOME:-}" ] && [ "$(id -u)" -eq 0 ] &&
   ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
  HOME_DIR=/var/tmp/apigres   # e.g. a checkout under /root, which postgres cannot enter
fi
LISTEN=${APIGRES_LISTEN:-127.0.0.1:6432}
PG_DIR=$HOME_DIR/pg
mkdir -p "$HOME_DIR"

# The embedded cluster keeps its port between runs.
if [ -f "$HOME_DIR/pg.port" ]; then PG_PORT=$(cat "$HOME_DIR/pg.port"); else
  PG_PORT=$(free_port); echo "$PG_PORT" >"$HOME_DIR/pg.port"; fi

fresh=0
[ -f "$PG_DIR/data/PG_VERSION" ] || fresh=1
mkdir -p "$PG_DIR"
cat >"$PG_DIR/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
HBA
[ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR/pg_hba.conf"
echo "apigres: starting PostgreSQL in $PG_DIR (port $PG_PORT)"
pg_cluster_start "$PG_DIR" "$PG_PORT"
if [ "$fresh" = 1 ]; then
  psql -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE app LOGIN PASSWORD 'app';
CREATE DATABASE app OWNER app;
SQL
fi
# The service role that owns the synced tables (the sync worker logs in as it over the
# socket) and the read role that app is a member of; idempotent for older clusters.
psql -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d app -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'apigres') THEN CREATE ROLE apigres LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'apigres_read') THEN CREATE ROLE apigres_read; END IF;
END \$\$;
GRANT CREATE ON DATABASE app TO apigres;
GRANT apigres_read TO app;
-- app may write the synced tables through apigres (each write becomes an API call); the
-- schemas are created here so that the grants cover the tables the worker creates in them
CREATE SCHEMA IF NOT EXISTS stripe AUTHORIZATION apigres;
CREATE SCHEMA IF NOT EXISTS salesforce AUTHORIZATION apigres;
ALTER DEFAULT PRIVILEGES FOR ROLE apigres IN SCHEMA stripe, salesforce GRANT INSERT, UPDATE, DELETE ON TABLES TO app;
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA stripe, salesforce TO app;
SQL

FAKE_PIDS=()
stop() {
  [ -n "${PROXY_PID:-}" ] && kill -TERM "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  [ ${#FAKE_PIDS[@]} -gt 0 ] && kill "${FAKE_PIDS[@]}" 2>/dev/null
  echo "apigres: stopping PostgreSQL"
  pg_cluster_stop "$PG_DIR"
}
trap stop EXIT
trap 'exit 0' INT TERM

# The syncs: each provider for real when its credentials are in the environment, else its
# sandbox on a free port.
sandbox_note=""
if [ -n "${APIGRES_CONFIG:-}" ]; then
  CONFIG=$APIGRES_CONFIG
else
  CONFIG=$HOME_DIR/apigres.json
  if [ -n "${STRIPE_SECRET_KEY:-}" ]; then
    stripe_sync='{"provider": "stripe", "credential": {"secret_key": "${STRIPE_SECRET_KEY}"}}'
  else
    start_fake stripe "$HOME_DIR/stripe-sandbox.log" --rng-seed 1
    FAKE_PIDS+=("$FAKE_PID")
    stripe_sync='{"provider": "stripe", "api_base": "'$FAKE_URL'", "credential": {"secret_key": "sk_test_sandbox"}, "poll_interval": 2}'
    sandbox_note+="      Stripe      $FAKE_URL   try: curl -u sk_test_sandbox: $FAKE_URL/v1/customers?limit=3
"
  fi
  if [ -n "${SALESFORCE_INSTANCE_URL:-}" ] && [ -n "${SALESFORCE_ACCESS_TOKEN:-}" ]; then
    sf_sync='{"provider": "salesforce", "api_base": "${SALESFORCE_INSTANCE_URL}", "credential": {"access_token": "${SALESFORCE_ACCESS_TOKEN}"}}'
  elif [ -n "${SALESFORCE_REFRESH_TOKEN:-}" ]; then
    sf_sync='{"provider": "salesforce", "credential": {"client_id": "${SALESFORCE_CLIENT_ID}", "client_secret": "${SALESFORCE_CLIENT_SECRET}", "refresh_token": "${SALESFORCE_REFRESH_TOKEN}"}}'
  else
    start_fake salesforce "$HOME_DIR/salesforce-sandbox.log"
    FAKE_PIDS+=("$FAKE_PID")
    sf_sync='{"provider": "salesforce", "api_base": "'$FAKE_URL'", "login_url": "'$FAKE_URL'", "credential": {"client_id": "fake-client-id", "client_secret": "fake-client-secret", "refresh_token": "fake-refresh-token"}}'
    sandbox_note+="      Salesforce  $FAKE_URL   try: curl -H 'Authorization: Bearer 00D000000000001!fake' $FAKE_URL/services/data/v59.0/query?q=SELECT+Name+FROM+Contact+LIMIT+3
"
  fi
  printf '{"service_database": "host=%s port=%s user=apigres dbname=app",\n "read_role": "apigres_read",\n "syncs": [\n  %s,\n  %s\n]}\n' \
    "$PG_DIR" "$PG_PORT" "$stripe_sync" "$sf_sync" >"$CONFIG"
fi

"$ROOT/apigres" --listen "$LISTEN" --database "host=127.0.0.1 port=$PG_PORT" --config "$CONFIG" &
PROXY_PID=$!
sleep 0.5
kill -0 "$PROXY_PID" 2>/dev/null || { echo "apigres: the proxy did not start (is $LISTEN in use?)" >&2; exit 1; }

host=${LISTEN%:*}; port=${LISTEN##*:}
cat <<MSG

  apigres is listening on $LISTEN in front of the embedded PostgreSQL.
  Connect with:

      psql "postgres://app:app@$host:$port/app"

MSG
if [ -n "$sandbox_note" ]; then
  cat <<MSG
  No API key given: these APIs run as a local sandbox with seed data
  (set STRIPE_SECRET_KEY or the SALESFORCE_* variables to use the real ones):

$sandbox_note
MSG
fi
[ -z "${APIGRES_CONFIG:-}" ] && cat <<MSG
  The sync worker fills stripe.customer, stripe.product, ..., salesforce.contact,
  salesforce.account, ... (progress: SELECT * FROM apigres.sync_status). Writes become
  API calls, e.g.
      UPDATE stripe.customer SET name = 'Ann' WHERE id = (SELECT min(id) FROM stripe.customer);
      UPDATE salesforce.contact SET title = 'CTO' WHERE id = (SELECT min(id) FROM salesforce.contact);

MSG
cat <<MSG
  Syncs configured in $CONFIG.
  Press Ctrl-C to stop.

MSG
wait "$PROXY_PID"
