#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for the store and lease tests.
# Idempotent. stdout carries only `export` lines; progress goes to stderr.
#   eval "$(bash scripts/postgres-start.sh)"   ->  ORCH_TEST_POSTGRES_URL=postgresql+psycopg://...
set -euo pipefail
dir=${ORCH_PG_DIR:-/tmp/orchestrator-pg}
port=${ORCH_PG_PORT:-55432}
url="postgresql+psycopg://postgres@127.0.0.1:${port}/orchestrator_test"

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "installing postgresql (Debian package)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  echo "PostgreSQL already running in $dir" >&2
else
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_postgres "$bin/initdb" -D "$dir/data" -A trust -U postgres >&2
  fi
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >&2
  as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='orchestrator_test'" | grep -q 1 ||
    as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres orchestrator_test >&2
fi
echo "export ORCH_TEST_POSTGRES_URL=$url"
