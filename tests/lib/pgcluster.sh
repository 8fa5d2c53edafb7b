# Source this file. Starts and stops a throw-away PostgreSQL cluster owned by an
# unprivileged OS user (initdb and postgres refuse to run as root, and CI runs as root).
#
#   pg_cluster_start DIR PORT [extra postgresql.conf lines...]
#   pg_cluster_stop DIR
#   free_port                      prints a TCP port nothing listens on
#   pg_as_owner CMD...             runs CMD as the cluster's OS user
#
# The cluster listens on 127.0.0.1:PORT and on a Unix socket in DIR, with the pg_hba.conf
# the caller writes into DIR/pg_hba.conf before start (default: trust on the socket only).

PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_cluster_init() {
  local dir=$1
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$(pg_owner)" "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    pg_as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  fi
}

pg_cluster_start() {
  local dir=$1 port=$2; shift 2
  pg_cluster_init "$dir" || return 1
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "max_connections = 700"
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
    echo "logging_collector = off"
    local l; for l in "$@"; do echo "$l"; done
  } | pg_as_owner tee "$dir/data/postgresql.auto.conf" >/dev/null
  [ -f "$dir/pg_hba.conf" ] && pg_as_owner cp "$dir/pg_hba.conf" "$dir/data/pg_hba.conf"
  pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$dir/postgres.log" >&2; return 1; }
}

pg_cluster_stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}
