#!/usr/bin/env bash
# sync/copy_rows against the real database: backfill pages loaded with COPY equal the
# JSON upsert's rows (see 71_copy_rows.c).
. "$(dirname "$0")/../lib/testlib.sh"
owned_database apigres_copy_rows apigres_copy_rows
timeout 120 "$TEST_BIN/71_copy_rows" "host=127.0.0.1 port=$PG_PORT dbname=apigres_copy_rows user=apigres_copy_rows"
check_eq "71_copy_rows exit status" 0 "$?"
test_done
