#!/usr/bin/env bash
# Installs the Debian packages apigres needs to build, run and test, and only those
# that are missing, so a second run costs a dpkg query and nothing else.
set -euo pipefail

PKGS=(build-essential pkg-config git python3 ca-certificates openssl
      libuv1-dev libpq-dev libpg-query-dev libprotobuf-c-dev libcurl4-openssl-dev
      libcjson-dev libssl-dev
      postgresql postgresql-client postgresql-contrib pgbouncer procps
      clang libclang-rt-14-dev
      python3-psycopg2 python3-asyncpg
      # the client matrix (tests/clients/): drivers and ORMs as Debian ships them
      python3-psycopg python3-sqlalchemy python3-django
      ruby ruby-pg ruby-activerecord ruby-railties
      golang-go golang-github-jackc-pgx-v4-dev
      default-jdk-headless libpostgresql-jdbc-java)
[ "${APIGRES_DEPS_EXTRA:-}" ] && PKGS+=(${APIGRES_DEPS_EXTRA})
# The API fakes and their fidelity tests run on Node; use Debian's unless one is installed.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
