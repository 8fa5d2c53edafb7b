#!/usr/bin/env bash
# sync/copy_rows against the real database: backfill pages loaded with COPY equal the
# JSON upsert's rows (see 71_copy_rows.c).
. "$(dirname "$0")/../lib/testlib.sh"
psql_direct -q -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS apigres_copy_rows;
DROP ROLE IF EXISTS apigres_copy_rows;
CREATE ROLE apigres_copy_rows LOGIN;
CREATE DATABASE apigres_copy_rows OWNER apigres_copy_rows;
SQL
timeout 120 "$TEST_BIN/71_copy_rows" "host=127.0.0.1 port=$PG_PORT dbname=apigres_copy_rows user=apigres_copy_rows"
check_eq "71_copy_rows exit status" 0 "$?"
test_done
