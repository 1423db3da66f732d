#!/usr/bin/env bash
# Stop the test PostgreSQL server started by postgres-start.sh (--purge also deletes its files).
set -uo pipefail
dir=${ORCH_PG_DIR:-/tmp/orchestrator-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || exit 0
if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2
else "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2; fi
[ "${1:-}" = "--purge" ] && rm -rf "$dir"
exit 0
