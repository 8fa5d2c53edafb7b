#!/usr/bin/env bash
# COPY through apigres: COPY OUT (text, csv, binary) byte-identical to direct; COPY IN with
# \copy and COPY FROM STDIN loads the same table contents as directly; a bad row fails with
# the same error and leaves the session usable; a client that stops reading a huge COPY OUT
# and disconnects neither wedges the proxy nor leaves the server query running.
. "$(dirname "$0")/../lib/testlib.sh"
W=$TEST_TMP/40_copy
mkdir -p "$W"
export PGTZ=UTC
# psql's own error output is compared as well, so both run the same way
pq() { local port=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -p "$port" "$@"; }

SRC="select i, md5(i::text), timestamptz '2024-01-01 00:00:00+00' - i * interval '1 second', i % 7 = 0, (i / 3.0)::numeric(20,6), case when i % 10 = 0 then null else repeat('é', i % 5) end from generate_series(1, 100000) i"
for fmt in text csv binary; do
  pq "$PG_PORT" -c "copy ($SRC) to stdout with (format $fmt)" >"$W/out_direct.$fmt"
  pq "$PROXY_PORT" -c "copy ($SRC) to stdout with (format $fmt)" >"$W/out_proxy.$fmt"
  check_eq "COPY OUT 1e5 rows ($fmt) via proxy: same md5 as direct" \
    "$(md5sum <"$W/out_direct.$fmt")" "$(md5sum <"$W/out_proxy.$fmt")"
done
check_eq "COPY OUT text has 1e5 lines" 100000 "$(wc -l <"$W/out_proxy.text")"
check "COPY OUT binary starts with the PGCOPY signature" \
  bash -c "head -c 11 '$W/out_proxy.binary' | od -c | head -n 1 | grep -q 'P   G   C   O   P   Y'"

# COPY IN of the text file: \copy and COPY FROM STDIN through the proxy, one load directly.
DDL="(i int primary key, h text, ts timestamptz, b bool, n numeric(20,6), s text)"
CHK="select count(*), md5(string_agg(t::text, ',' order by i))"
pq "$PG_PORT" -c "drop table if exists copy_direct, copy_proxy1, copy_proxy2, copy_bad" \
  -c "create table copy_direct $DDL" -c "create table copy_proxy1 $DDL" -c "create table copy_proxy2 $DDL" \
  -c "create table copy_bad (i int, s text)" 2>/dev/null
check_eq "\\copy FROM file directly" "COPY 100000" \
  "$(psql -X -v ON_ERROR_STOP=1 -p "$PG_PORT" -c "\\copy copy_direct from '$W/out_direct.text'")"
check_eq "\\copy FROM file via proxy" "COPY 100000" \
  "$(psql -X -v ON_ERROR_STOP=1 -p "$PROXY_PORT" -c "\\copy copy_proxy1 from '$W/out_direct.text'")"
check_eq "COPY FROM STDIN via proxy" "COPY 100000" \
  "$(psql -X -v ON_ERROR_STOP=1 -p "$PROXY_PORT" -c "copy copy_proxy2 from stdin" <"$W/out_direct.text")"
direct_sum=$(pq "$PG_PORT" -A -t -c "$CHK from copy_direct t")
check "direct load has 1e5 rows" test "${direct_sum%%|*}" = 100000
check_eq "\\copy via proxy: table checksum equals the direct load" "$direct_sum" \
  "$(pq "$PG_PORT" -A -t -c "$CHK from copy_proxy1 t")"
check_eq "COPY FROM STDIN via proxy: table checksum equals the direct load" "$direct_sum" \
  "$(pq "$PG_PORT" -A -t -c "$CHK from copy_proxy2 t")"
check_eq "binary COPY IN via proxy loads the same rows" "$direct_sum" \
  "$(pq "$PROXY_PORT" -A -t -c "truncate copy_proxy2" -c "\\copy copy_proxy2 from '$W/out_direct.binary' with (format binary)" \
     -c "$CHK from copy_proxy2 t")"

# A bad row in the middle of a big COPY IN: same error, session still usable afterwards.
seq 1 100000 | awk '{ if ($1 == 50000) print "x50000\tbad"; else print $1 "\trow " $1 }' >"$W/bad.txt"
bad_load() {  # bad_load PORT: \copy then COPY FROM STDIN, then a query in the same session
  printf '%s\n' "\\copy copy_bad from '$W/bad.txt'" "select 'usable after meta copy' as s, count(*) from copy_bad;" \
    "copy copy_bad from stdin;" | cat - "$W/bad.txt" <(printf '%s\n' '\.' "select 'usable after COPY' as s, count(*) from copy_bad;") |
    psql -X -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -p "$1" 2>&1
  echo "rc=$?"
}
direct_bad=$(bad_load "$PG_PORT")
proxy_bad=$(bad_load "$PROXY_PORT")
check_eq "COPY IN with a bad row: identical output and error via proxy" "$direct_bad" "$proxy_bad"
check "COPY IN with a bad row fails with 22P02 on line 50000" \
  grep -q 'ERROR:  22P02: invalid input syntax for type integer: "x50000"' <<<"$proxy_bad"
check "COPY IN bad row context names line 50000" grep -q 'CONTEXT:  COPY copy_bad, line 50000' <<<"$proxy_bad"
check_eq "session usable after both failed COPYs (two answers, no rows loaded)" 2 \
  "$(grep -cE '^ usable after (meta copy|COPY) \|     0$' <<<"$proxy_bad")"

# COPY FROM STDIN in the extended protocol is covered by 20_extended; a CopyFail by 20_extended.

# A client that stops reading a 1e6-row COPY OUT and goes away.
big="copy (select i, md5(i::text) from generate_series(1, 1000000) i) to stdout"
head_out=$(timeout 30 psql -X -p "$PROXY_PORT" -c "$big" | head -c 100)
check_eq "1e6-row COPY OUT piped into head -c 100 gives the first 100 bytes" \
  "$(printf '1\tc4ca4238a0b923820dcc509a6f75849b\n2\tc81e728d9d4c2f636f067f89cc14862c\n3\teccbc87e4b5ce2fe28308fd9f2a7')" \
  "$head_out"
check_eq "proxy still answers select 1 after the client closed early" 1 \
  "$(timeout 10 psql -X -p "$PROXY_PORT" -A -t -c 'select 1')"
# the server-side COPY must end: its client (the proxy's server connection) is gone
gone=0
for _ in $(seq 100); do
  n=$(psql_direct -A -t -c "select count(*) from pg_stat_activity where query like 'copy (select i, md5(i::text) from generate_series(1, 1000000)%' and pid <> pg_backend_pid()")
  [ "$n" = 0 ] && { gone=1; break; }
  sleep 0.1
done
check "the abandoned COPY's backend ends within 10 s" test "$gone" = 1

# The whole 1e6 rows (40 MB) read slowly by three clients at once arrive intact: the proxy
# must apply back-pressure without losing, reordering or corrupting a byte.
want=$(psql_direct -c "$big" | md5sum)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait' EXIT
for k in 1 2 3; do
  (timeout 60 psql -X -p "$PROXY_PORT" -c "$big" 2>"$W/slow.$k.err" | (sleep 1; cat) | md5sum >"$W/slow.$k"
   echo "${PIPESTATUS[0]}" >"$W/slow.$k.rc") &
  pids+=($!)
done
wait "${pids[@]}"; pids=()
for k in 1 2 3; do
  check_eq "1e6-row COPY OUT through a slow reader ($k of 3 concurrent): same md5 as direct" "$want" "$(cat "$W/slow.$k")"
  check_eq "1e6-row COPY OUT through a slow reader ($k of 3): psql exit status 0, no error" "0" \
    "$(cat "$W/slow.$k.rc")$(cat "$W/slow.$k.err")"
done

pq "$PG_PORT" -c "drop table copy_direct, copy_proxy1, copy_proxy2, copy_bad"
test_done
