#!/usr/bin/env bash
# pgbench through apigres: the select-only script with 8 clients in each query mode
# (simple, extended, prepared), a run that opens a new connection per transaction, and the
# default TPC-B-like script (writes), whose effects on the tables are verified afterwards.
. "$(dirname "$0")/../lib/testlib.sh"
W=$TEST_TMP/30_pgbench
mkdir -p "$W"
DURATION=${PGBENCH_DURATION:-3}

# bench NAME EXPECTED_TX ARGS...: runs pgbench through the proxy and checks its report.
# EXPECTED_TX is the exact number of transactions (-t runs) or "any" (-T runs).
bench() {
  local name=$1 expected=$2; shift 2
  local out=$W/$name.out status
  timeout 120 pgbench -p "$PROXY_PORT" "$@" "$PGDATABASE" >"$out" 2>&1
  status=$?
  if ! check_eq "pgbench $name: exit status" 0 "$status"; then sed 's/^/#   /' "$out" | tail -n 15; fi
  local processed failed
  processed=$(sed -n 's/^number of transactions actually processed: \([0-9/]*\).*/\1/p' "$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\) .*/\1/p' "$out")
  check_eq "pgbench $name: number of failed transactions" 0 "$failed"
  if [ "$expected" = any ]; then
    check "pgbench $name: processed transactions > 0 ($processed)" test "${processed:-0}" -gt 0
  else
    check_eq "pgbench $name: processed transactions" "$expected/$expected" "$processed"
  fi
  check "pgbench $name: no client errors reported" bash -c "! grep -qE 'pgbench: (error|fatal)|client [0-9]+ aborted' '$out'"
  grep -E '^(tps|latency average)' "$out" | sed "s/^/# $name: /"
}

for mode in simple extended prepared; do
  bench "select-only -M $mode" any -n -S -M "$mode" -c 8 -j 2 -T "$DURATION"
done
bench "select-only, new connection per transaction" 400 -n -S -C -c 4 -j 2 -t 100

# TPC-B-like (writes). Every transaction adds the same delta to one account, teller and
# branch and logs it in pgbench_history, so the four sums must move together.
sums="select (select count(*) from pgbench_history), (select sum(abalance) from pgbench_accounts),
  (select sum(tbalance) from pgbench_tellers), (select sum(bbalance) from pgbench_branches),
  (select coalesce(sum(delta), 0) from pgbench_history)"
read -r h0 a0 t0 b0 d0 <<<"$(psql_direct -A -t -F ' ' -c "$sums")"
bench "tpcb-like -c 4 -t 200" 800 -n -c 4 -j 2 -t 200 -M extended
read -r h1 a1 t1 b1 d1 <<<"$(psql_direct -A -t -F ' ' -c "$sums")"
check_eq "tpcb-like: 800 rows added to pgbench_history" 800 "$((h1 - h0))"
delta=$((d1 - d0))
check_eq "tpcb-like: accounts moved by the history's delta" "$delta" "$((a1 - a0))"
check_eq "tpcb-like: tellers moved by the history's delta" "$delta" "$((t1 - t0))"
check_eq "tpcb-like: branches moved by the history's delta" "$delta" "$((b1 - b0))"
test_done
