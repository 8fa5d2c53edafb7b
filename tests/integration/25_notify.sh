#!/usr/bin/env bash
# Asynchronous messages through apigres: LISTEN/NOTIFY and notices (see 25_notify.c).
. "$(dirname "$0")/../lib/testlib.sh"
ci() { echo "host=127.0.0.1 port=$1 dbname=$PGDATABASE user=$PGUSER application_name=apigres_25_notify"; }
timeout 60 "$TEST_BIN/25_notify" "$(ci "$PROXY_PORT")" "$(ci "$PG_PORT")"
check_eq "25_notify exit status" 0 "$?"
test_done
