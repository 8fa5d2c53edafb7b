#!/usr/bin/env bash
# sync/schema against the real database: synced tables from the provider specs, guarded
# against writes that bypass apigres (see 69_schema.c).
. "$(dirname "$0")/../lib/testlib.sh"
owned_database apigres_schema apigres_service
ci() { echo "host=127.0.0.1 port=$PG_PORT dbname=apigres_schema user=$1"; }
timeout 120 "$TEST_BIN/69_schema" "$(ci apigres_service)" "$(ci postgres)" "$(ci "$APP_USER") password=$APP_PASSWORD"
check_eq "69_schema exit status" 0 "$?"
test_done
