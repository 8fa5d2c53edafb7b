#!/usr/bin/env bash
# TLS on both legs (proxy/tls.c): clients with sslmode require and verify-full, TLS 1.2 as
# the floor, tls_required's refusal, a certificate reload on SIGHUP, plaintext smuggled after
# an SSLRequest; towards a database that accepts only hostssl, each sslmode of the database
# connection string, SCRAM through both legs. Certificates come from a CA made here.
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/pgcluster.sh"

D=$TEST_TMP/tls
mkdir -p "$D"
PIDS=()
TLS_PG=$TEST_TMP/pg-tls
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; pg_cluster_stop "$TLS_PG"; }
trap cleanup EXIT

# --- a CA and certificates for localhost / 127.0.0.1
mkcert() { # mkcert NAME CN CA
  local name=$1 cn=$2 ca=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$D/$name.key" \
    -out "$D/$name.csr" -subj "/CN=$cn" 2>/dev/null &&
  openssl x509 -req -in "$D/$name.csr" -CA "$D/$ca.crt" -CAkey "$D/$ca.key" -CAcreateserial -days 2 \
    -out "$D/$name.crt" -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1') 2>/dev/null
}
for ca in ca other-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$D/$ca.key" \
    -out "$D/$ca.crt" -days 2 -subj "/CN=apigres test $ca" 2>/dev/null
done
mkcert server "apigres-first" ca && mkcert server2 "apigres-reloaded" ca && mkcert db "database" ca ||
  { not_ok "make the test certificates"; test_done; }
cp "$D/server.crt" "$D/live.crt"; cp "$D/server.key" "$D/live.key"

# start NAME DATABASE [args]: an apigres of our own; sets PORT
start() {
  local name=$1 db=$2; shift 2
  PORT=$(free_port)
  local pid; pid=$(start_proxy "$PORT" "$db" "$TEST_TMP/apigres-62-$name.log" "$@") || return 1
  PIDS+=("$pid")
}
q() { psql -X -At -v ON_ERROR_STOP=1 "$@" 2>&1; }
PLAIN_DB="host=127.0.0.1 port=$PG_PORT"

# --- clients of the proxy
start tls "$PLAIN_DB" --tls-cert-file "$D/live.crt" --tls-key-file "$D/live.key" || { not_ok "start apigres with TLS"; test_done; }
P=$PORT
out=$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=require" -c '\conninfo')
check "sslmode=require: the client's connection is TLS ($out)" grep -q 'SSL connection (protocol: TLSv1.3' <<<"$out"
check_eq "verify-full with the CA, by name" "ok" \
  "$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=verify-full sslrootcert=$D/ca.crt" -c "SELECT 'ok'")"
check_eq "verify-full with the CA, by address" "ok" \
  "$(q "host=127.0.0.1 port=$P dbname=$PGDATABASE user=postgres sslmode=verify-full sslrootcert=$D/ca.crt" -c "SELECT 'ok'")"
out=$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=verify-full sslrootcert=$D/other-ca.crt" -c "SELECT 1")
check "verify-full against another CA fails in the client ($out)" grep -q 'certificate verify failed' <<<"$out"
out=$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=require ssl_max_protocol_version=TLSv1.1" -c "SELECT 1")
check "TLS 1.1 is refused ($out)" grep -qi 'protocol version\|no protocols available\|unsupported protocol' <<<"$out"
check_eq "TLS 1.2 is accepted" "TLSv1.2" \
  "$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=require ssl_max_protocol_version=TLSv1.2" -c '\conninfo' | grep -o 'TLSv1.2' | head -n 1)"
check_eq "SCRAM through TLS to the proxy" "$APP_USER" \
  "$(PGPASSWORD=$APP_PASSWORD q "host=localhost port=$P dbname=$PGDATABASE user=$APP_USER sslmode=require" -c 'SELECT current_user')"
check_eq "md5 through TLS to the proxy" "$MD5_USER" \
  "$(PGPASSWORD=$MD5_PASSWORD q "host=localhost port=$P dbname=$PGDATABASE user=$MD5_USER sslmode=require" -c 'SELECT current_user')"
out=$(PGPASSWORD=wrong q "host=localhost port=$P dbname=$PGDATABASE user=$APP_USER sslmode=require" -c 'SELECT 1')
check "a wrong password through TLS is the database's own error ($out)" grep -q 'password authentication failed' <<<"$out"
{ printf "SELECT length(repeat('x', 10000000)) || '|' || length('"; head -c 10000000 /dev/zero | tr '\0' y; printf "');\n"; } >"$D/big.sql"
check_eq "10 MB each way through TLS" "10000000|10000000" \
  "$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=require" -f "$D/big.sql")"
check_eq "a client without TLS is still served when TLS is not required" "plain" \
  "$(q "host=127.0.0.1 port=$P dbname=$PGDATABASE user=postgres sslmode=disable" -c "SELECT 'plain'")"

# plaintext sent along with the SSLRequest must not be taken as if it had been encrypted
out=$(python3 - "$P" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
startup = struct.pack("!i", 196608) + b"user\0postgres\0\0"
s.sendall(struct.pack("!ii", 8, 80877103) + struct.pack("!i", len(startup) + 4) + startup)
print(s.recv(1000))
PY
)
check "plaintext after an SSLRequest is refused with 08P01, not answered 'S' ($out)" grep -q "08P01.*unencrypted data after SSL request" <<<"$out"
out=$(python3 - "$P" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack("!ii", 8, 80877103))
assert s.recv(1) == b"S"
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
s.settimeout(5)
try:
    data = s.recv(1000)
    print("closed" if not data else "alert" if data[:1] == b"\x15" else repr(data[:20]))
except ConnectionResetError:
    print("closed")
PY
)
check "garbage instead of a TLS handshake ends that connection ($out)" grep -qE '^(closed|alert)$' <<<"$out"
check_eq "... and the proxy goes on" "1" "$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=require" -c 'SELECT 1')"

# SIGHUP: new connections get the new certificate; a broken one is not taken
subject() { openssl s_client -starttls postgres -connect "127.0.0.1:$P" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null; }
check "before the reload: the first certificate" grep -q 'apigres-first' <<<"$(subject)"
cp "$D/server2.crt" "$D/live.crt"; cp "$D/server2.key" "$D/live.key"
kill -HUP "${PIDS[0]}"
wait_for() { for _ in $(seq 50); do "$@" && return 0; sleep 0.1; done; return 1; }
check "after SIGHUP: the reloaded certificate" wait_for grep -q 'SIGHUP: TLS certificate and key reloaded' "$TEST_TMP/apigres-62-tls.log"
check "... is what a new connection gets" grep -q 'apigres-reloaded' <<<"$(subject)"
echo "not a key" >"$D/live.key"
kill -HUP "${PIDS[0]}"
check "a key that does not load is refused on SIGHUP" wait_for grep -q 'TLS certificate not reloaded, keeping the current one' "$TEST_TMP/apigres-62-tls.log"
check_eq "... and TLS goes on with the current one" "1" "$(q "host=localhost port=$P dbname=$PGDATABASE user=postgres sslmode=require" -c 'SELECT 1')"

start required "$PLAIN_DB" --tls-cert-file "$D/server.crt" --tls-key-file "$D/server.key" --tls-required ||
  { not_ok "start apigres with tls_required"; test_done; }
out=$(q "host=127.0.0.1 port=$PORT dbname=$PGDATABASE user=postgres sslmode=disable" -c 'SELECT 1')
check_eq "tls_required: a plain client gets Postgres's hostssl refusal" \
  "psql: error: connection to server at \"127.0.0.1\", port $PORT failed: FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"postgres\", database \"$PGDATABASE\", no encryption" "$out"
check_eq "tls_required: sslmode=prefer connects with TLS" "1" \
  "$(q "host=127.0.0.1 port=$PORT dbname=$PGDATABASE user=postgres sslmode=prefer" -c 'SELECT 1')"
out=$("$APIGRES" --tls-required --check 2>&1)
check "tls_required without a certificate is a configuration error ($out)" grep -q 'tls_required needs tls_cert_file' <<<"$out"

# past 2 x max_client_conn connections, a new one still negotiates TLS, then hears 53300
start deadend "$PLAIN_DB" --tls-cert-file "$D/server.crt" --tls-key-file "$D/server.key" --max-client-conn 1 ||
  { not_ok "start apigres with max_client_conn 1"; test_done; }
exec {idle1}<>"/dev/tcp/127.0.0.1/$PORT" {idle2}<>"/dev/tcp/127.0.0.1/$PORT"
sleep 0.2
out=$(q "host=127.0.0.1 port=$PORT dbname=$PGDATABASE user=postgres sslmode=require" -c 'SELECT 1')
check_eq "max_client_conn 1 and two connections in their startup: sslmode=require hears the refusal over TLS" \
  "psql: error: connection to server at \"127.0.0.1\", port $PORT failed: FATAL:  sorry, too many clients already" "$out"
exec {idle1}>&- {idle2}>&-

# --- towards a database that takes TLS only (hostssl), with its own certificate
TLS_PG_PORT=$(free_port)
mkdir -p "$TLS_PG"
install -m 600 "$D/db.key" "$TLS_PG/db.key"; cp "$D/db.crt" "$TLS_PG/db.crt"
[ "$(id -u)" -eq 0 ] && chown "$(pg_owner)" "$TLS_PG/db.key" "$TLS_PG/db.crt"
cat >"$TLS_PG/pg_hba.conf" <<HBA
local all all trust
hostssl all scram_user 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.1/32 trust
HBA
if ! pg_cluster_start "$TLS_PG" "$TLS_PG_PORT" "ssl = on" "ssl_cert_file = '$TLS_PG/db.crt'" "ssl_key_file = '$TLS_PG/db.key'"; then
  not_ok "start a PostgreSQL with ssl = on"; test_done
fi
psql -X -q -h "$TLS_PG" -p "$TLS_PG_PORT" -U postgres -d postgres -c "CREATE ROLE scram_user LOGIN PASSWORD 'scram-secret'"

ssl_of() { q "host=127.0.0.1 port=$1 dbname=postgres user=postgres" -c "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"; }
for mode in "sslmode=verify-full sslrootcert=$D/ca.crt host=localhost" "sslmode=verify-full sslrootcert=$D/ca.crt" \
            "sslmode=verify-ca sslrootcert=$D/ca.crt" "sslmode=require" ""; do
  start "db" "host=127.0.0.1 port=$TLS_PG_PORT $mode" || { not_ok "start apigres with $mode"; continue; }
  check_eq "database sslmode ${mode:-prefer (the default)}: the backend connection is TLS" "t|TLSv1.3" "$(ssl_of "$PORT")"
done
start "both" "host=localhost port=$TLS_PG_PORT sslmode=verify-full sslrootcert=$D/ca.crt" \
  --tls-cert-file "$D/server.crt" --tls-key-file "$D/server.key"
out=$(PGPASSWORD=scram-secret q "host=localhost port=$PORT dbname=postgres user=scram_user sslmode=verify-full sslrootcert=$D/ca.crt" -c 'SELECT 1')
check "SCRAM with TLS on both legs (different certificates) and libpq's channel_binding=prefer: told what to do ($out)" \
  grep -q 'SCRAM channel binding cannot pass through apigres when both of its connections use TLS with different certificates' <<<"$out"
out=$(PGPASSWORD=scram-secret psql -X -At -v VERBOSITY=verbose "host=localhost port=$PORT dbname=postgres user=scram_user sslmode=require" -c 'SELECT 1' 2>&1)
check "... with a hint: channel_binding=disable, or the database's certificate" \
  grep -q "HINT:  Connect with channel_binding=disable (TLS still protects both connections), or give apigres the database's own certificate" <<<"$out"
check_eq "SCRAM with TLS on both legs, channel_binding=disable" "scram_user|t" \
  "$(PGPASSWORD=scram-secret q "host=localhost port=$PORT dbname=postgres user=scram_user sslmode=verify-full sslrootcert=$D/ca.crt channel_binding=disable" \
       -c 'SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')"
out=$(PGPASSWORD=wrong q "host=localhost port=$PORT dbname=postgres user=scram_user sslmode=require channel_binding=disable" -c 'SELECT 1')
check "... a wrong password is the database's own error ($out)" grep -q 'password authentication failed for user "scram_user"' <<<"$out"
out=$(PGPASSWORD=scram-secret q "host=localhost port=$PORT dbname=postgres user=scram_user sslmode=require channel_binding=require" -c 'SELECT 1')
check "channel_binding=require with apigres's own certificate: not offered ($out)" \
  grep -q 'channel binding is required, but server did not offer an authentication method that supports channel binding' <<<"$out"
BOTH_PORT=$PORT
start "samecert" "host=localhost port=$TLS_PG_PORT sslmode=verify-full sslrootcert=$D/ca.crt" \
  --tls-cert-file "$D/db.crt" --tls-key-file "$D/db.key"
check_eq "SCRAM-SHA-256-PLUS when apigres offers clients the database's own certificate" "scram_user" \
  "$(PGPASSWORD=scram-secret q "host=localhost port=$PORT dbname=postgres user=scram_user sslmode=verify-full sslrootcert=$D/ca.crt channel_binding=require" \
       -c 'SELECT current_user')"
PORT=$BOTH_PORT
check_eq "COPY of 100,000 rows through both TLS legs" "100000" \
  "$(q "host=localhost port=$PORT dbname=postgres user=postgres sslmode=require" \
       -c "CREATE TEMP TABLE t (n int)" -c "COPY t FROM PROGRAM 'seq 100000'" -c "SELECT count(*) FROM t" | tail -n 1)"

start "wrong-ca" "host=localhost port=$TLS_PG_PORT sslmode=verify-full sslrootcert=$D/other-ca.crt"
out=$(q "host=127.0.0.1 port=$PORT dbname=postgres user=postgres" -c 'SELECT 1')
check "verify-full against another CA: the client is told why ($out)" \
  grep -q 'SSL connection to the database server at localhost:.* failed: TLS handshake: .*certificate verify failed' <<<"$out"
start "wrong-name" "host=127.0.0.2 hostaddr=127.0.0.1 port=$TLS_PG_PORT sslmode=verify-full sslrootcert=$D/ca.crt"
out=$(q "host=127.0.0.1 port=$PORT dbname=postgres user=postgres" -c 'SELECT 1')
check "verify-full: a certificate for another host is refused ($out)" grep -q 'certificate verify failed' <<<"$out"
start "required-plain" "host=127.0.0.1 port=$PG_PORT sslmode=require"
out=$(q "host=127.0.0.1 port=$PORT dbname=$PGDATABASE user=postgres" -c 'SELECT 1')
check "sslmode=require towards a database without TLS: refused ($out)" grep -q 'server does not support SSL, but SSL was required' <<<"$out"
start "disable" "host=127.0.0.1 port=$TLS_PG_PORT sslmode=disable"
out=$(q "host=127.0.0.1 port=$PORT dbname=postgres user=postgres" -c 'SELECT 1')
check "sslmode=disable towards a hostssl-only database: the database's own refusal ($out)" \
  grep -q 'no pg_hba.conf entry for host "127.0.0.1", user "postgres", database "postgres", no encryption' <<<"$out"
check "no key material or password in the logs" bash -c "! grep -l -e 'scram-secret' -e 'PRIVATE KEY' '$TEST_TMP'/apigres-62-*.log"
test_done
