#!/usr/bin/env bash
# `make run`: starts an embedded PostgreSQL cluster (created on first run, kept between
# runs) and apigres in front of it on 127.0.0.1:6432, prints how to connect, and stops
# both on Ctrl-C. No configuration needed.
#
# Environment: APIGRES_HOME (cluster and logs; default ./.apigres, or /var/tmp/apigres
# when the cluster's OS user cannot reach this checkout), APIGRES_LISTEN (default
# 127.0.0.1:6432), APIGRES_CONFIG (a JSON config file whose settings override these).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib/pgcluster.sh"

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

stop() {
  [ -n "${PROXY_PID:-}" ] && kill -TERM "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  echo "apigres: stopping PostgreSQL"
  pg_cluster_stop "$PG_DIR"
}
trap stop EXIT
trap 'exit 0' INT TERM

config_args=()
[ -n "${APIGRES_CONFIG:-}" ] && config_args=(--config "$APIGRES_CONFIG")
"$ROOT/apigres" --listen "$LISTEN" --database "host=127.0.0.1 port=$PG_PORT" "${config_args[@]}" &
PROXY_PID=$!
sleep 0.5
kill -0 "$PROXY_PID" 2>/dev/null || { echo "apigres: the proxy did not start (is $LISTEN in use?)" >&2; exit 1; }

host=${LISTEN%:*}; port=${LISTEN##*:}
cat <<MSG

  apigres is listening on $LISTEN in front of the embedded PostgreSQL.
  Connect with:

      psql "postgres://app:app@$host:$port/app"

  Press Ctrl-C to stop.

MSG
wait "$PROXY_PID"
