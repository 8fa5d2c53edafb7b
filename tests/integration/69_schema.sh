#!/usr/bin/env bash
# sync/schema against the real database: synced tables from the provider specs, guarded
# against writes that bypass apigres (see 69_schema.c).
. "$(dirname "$0")/../lib/testlib.sh"
psql_direct -q -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS apigres_schema;
DROP ROLE IF EXISTS apigres_service;
CREATE ROLE apigres_service LOGIN;
CREATE DATABASE apigres_schema OWNER apigres_service;
SQL
ci() { echo "host=127.0.0.1 port=$PG_PORT dbname=apigres_schema user=$1"; }
timeout 120 "$TEST_BIN/69_schema" "$(ci apigres_service)" "$(ci postgres)" "$(ci "$APP_USER") password=$APP_PASSWORD"
check_eq "69_schema exit status" 0 "$?"
test_done
