#!/usr/bin/env bash
# psql through apigres must print exactly what psql prints against PostgreSQL directly:
# each sql/*.sql script is run both ways (psql -X -a, ON_ERROR_STOP off, VERBOSITY verbose
# so SQLSTATEs and source locations show) and stdout, stderr, exit status and the files the
# script wrote with \copy are compared byte for byte. The only rewrite is the backend PID in
# "Asynchronous notification ... from server process with PID N", which is replaced by
# <self> when it equals the session's own pg_backend_pid() (printed by the script as MYPID).
. "$(dirname "$0")/../lib/testlib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
W=$TEST_TMP/10_psql
rm -rf "$W"; mkdir -p "$W"

# run_sql PORT SCRIPT DIR: runs one script in DIR (its working directory), leaving
# out, err and rc there.
run_sql() {
  local port=$1 script=$2 dir=$3
  mkdir -p "$dir"
  printf '100,"from csv"\n101,"second, with comma"\n' >"$dir/cp_in.csv"
  (cd "$dir" && PGTZ=UTC PGAPPNAME=apigres_10_psql psql -X -a -v ON_ERROR_STOP=0 -v VERBOSITY=verbose \
     -p "$port" -f "$script" >out 2>err; echo $? >rc)
  normalize_pid "$dir"
}

# normalize_pid DIR: the session's own backend PID (the script's MYPID line) becomes <self>
# in DIR/out and DIR/err
normalize_pid() {
  local pid
  pid=$(sed -n 's/^MYPID \([0-9][0-9]*\)$/\1/p' "$1/out" | head -n 1)
  [ -n "$pid" ] || return 0
  sed -i -e "s/^MYPID $pid\$/MYPID <self>/" \
         -e "s/from server process with PID $pid\\./from server process with PID <self>./" "$1/out" "$1/err"
}

# same_file DESC A B: byte-for-byte equal, else show the first differences
same_file() {
  if cmp -s "$2" "$3"; then ok "$1"; else
    not_ok "$1"; diff -a -u "$2" "$3" | head -n 40 | sed 's/^/#   /'; fi
}

for script in "$HERE"/sql/*.sql; do
  name=$(basename "$script" .sql)
  run_sql "$PG_PORT" "$script" "$W/$name/direct"
  run_sql "$PROXY_PORT" "$script" "$W/$name/proxy"
  d=$W/$name/direct p=$W/$name/proxy
  check_eq "$name: psql exit status via proxy equals direct" "$(cat "$d/rc")" "$(cat "$p/rc")"
  same_file "$name: stdout via proxy identical to direct" "$d/out" "$p/out"
  same_file "$name: stderr via proxy identical to direct" "$d/err" "$p/err"
  for f in "$d"/*; do
    case $(basename "$f") in out|err|rc|cp_in.csv) continue ;; esac
    same_file "$name: file $(basename "$f") written by \\copy via proxy identical" "$f" "$p/$(basename "$f")"
  done
done

# The scripts really exercised what they claim (guards against a script silently doing nothing).
grep -q 'ERROR:  22012: division by zero' "$W/02_errors_notices/direct/err" && \
grep -q 'NOTICE:  00000: a notice: 42' "$W/02_errors_notices/direct/err" && \
grep -q 'WARNING:  01000: a warning' "$W/02_errors_notices/direct/err" && \
grep -q 'Asynchronous notification "apigres_chan" with payload "with payload" received from server process with PID <self>.' \
  "$W/07_listen_notify/direct/out" && \
grep -q '^ENCODING=LATIN1$' "$W/03_transactions/direct/out" && \
grep -q '^COPY 2$' "$W/05_copy/direct/out"
check "the scripts produced the errors, notices, notifications and COPY tags they test" test $? -eq 0
check_eq "notifications received via proxy (count)" \
  "$(grep -c '^Asynchronous notification' "$W/07_listen_notify/direct/out")" \
  "$(grep -c '^Asynchronous notification .* PID <self>\.$' "$W/07_listen_notify/proxy/out")"

# psql -c sends its whole string as ONE simple Query message holding several statements.
multi() {  # multi PORT SQL: stdout and stderr of psql -c, then the exit status
  local rc=0; psql -X -v VERBOSITY=verbose -p "$1" -c "$2" 2>&1 || rc=$?; echo "rc=$rc"
}
for q in 'select 1; select 2' \
         "select 1 as a; select 'x' as b, 2 as c; select 3 as d" \
         'select 1; select 1/0; select 3' \
         'create temp table m (i int); insert into m values (1),(2); select * from m; drop table m' \
         'begin; select 1; commit; select 2' \
         'select 1; begin; select 2' \
         '' ';' '-- just a comment' ';;select 4;;'; do
  check_eq "psql -c '$q' via proxy equals direct" "$(multi "$PG_PORT" "$q")" "$(multi "$PROXY_PORT" "$q")"
done
check_eq "psql -c 'select 1; select 2' shows both results" \
  "$(printf ' ?column? \n----------\n        1\n(1 row)\n\n ?column? \n----------\n        2\n(1 row)\n\nrc=0\n')x" \
  "$(multi "$PROXY_PORT" 'select 1; select 2')x"

# A large result: 200k rows, compared by checksum and size.
big="select i, md5(i::text), repeat('x', i % 37) from generate_series(1, 200000) i"
d_sum=$(psql_direct -c "$big" | md5sum)
p_sum=$(psql_proxy -c "$big" | md5sum)
check_eq "200k-row result via proxy has the same md5 as direct" "$d_sum" "$p_sum"
check_eq "200k-row result via proxy has the right row count" "(200000 rows)" \
  "$(psql_proxy -c "$big" | tail -n 2 | head -n 1)"

# Output piped to md5 in unaligned mode, many small rows quickly (psql -A -t).
check_eq "1e5 rows in unaligned mode via proxy" \
  "$(psql_direct -A -t -c 'select g from generate_series(1,100000) g' | md5sum)" \
  "$(psql_proxy -A -t -c 'select g from generate_series(1,100000) g' | md5sum)"

test_done
