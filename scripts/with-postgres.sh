#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: a fresh cluster in a temporary directory,
# listening on a high loopback port, run as the `postgres` user (PostgreSQL refuses to run as root),
# trust authentication on loopback only. Its URL is exported as PPN_TEST_DATABASE_URL. The cluster
# is stopped and deleted when the command ends, whatever its outcome.
#
#   scripts/with-postgres.sh npm test
#
# If PPN_TEST_DATABASE_URL is already set, the command runs against that server instead.
# fsync is off (a test server loses nothing it needs on a crash); PPN_TEST_PG_FSYNC=on for benchmarks.
set -euo pipefail

if [ -n "${PPN_TEST_DATABASE_URL:-}" ]; then exec "$@"; fi

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "with-postgres: PostgreSQL is not installed (Debian: apt-get install -y --no-install-recommends postgresql)" >&2
  exit 3
fi
port=${PPN_TEST_PG_PORT:-$((55000 + RANDOM % 5000))}
dir=$(mktemp -d /tmp/ppn-pg-XXXXXX)

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
  as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $port -k $dir -c fsync=${PPN_TEST_PG_FSYNC:-off} -c max_connections=200" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }

export PPN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
