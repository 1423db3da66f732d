#!/usr/bin/env bash
# sge-stop.sh - stop the Grid Engine daemons that scripts/sge-start.sh started.
#
# Usage: bash scripts/sge-stop.sh [DIR]     (DIR default: $LOCAL_SGE_DIR or /tmp/orchestrator-sge)
#
# Idempotent. Only the PIDs recorded in DIR/owned/ are stopped, and only while they still are
# sge_execd / sge_qmaster. `qconf -kej <host>` stops sge_execd and kills the jobs running on it
# (no job is left running; qacct shows them as "failed 100", exit 137); `qconf -km` stops
# sge_qmaster (its clean shutdown takes about 10 s). A daemon still there afterwards gets
# SIGTERM, then SIGKILL, by its PID. Pending jobs stay in the job database and run after the
# next start (LOCAL_SGE_FRESH=1 sge-start.sh discards them).
set -uo pipefail

DIR="${1:-${LOCAL_SGE_DIR:-/tmp/orchestrator-sge}}"
DIR="${DIR%/}"
OWNED="$DIR/owned"
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
T_START=$(date +%s%N)
log() { printf '[sge-stop %5.1fs] %s\n' "$(( ($(date +%s%N) - T_START) / 1000000 ))e-3" "$*" >&2; }
pid_is() {
  local st c
  [ -n "${1:-}" ] && st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  c=${st#*(}; c=${c%)*}; st=${st##*) }; st=${st%% *}
  # a killed daemon can stay a zombie for a while (PID 1 here is not an init that reaps at once)
  [ "$c" = "$2" ] && [ "$st" != Z ] && [ "$st" != X ]
}
owned() { local f="$OWNED/$1.pid" p; [ -r "$f" ] || return 1; p=$(tr -dc '0-9' <"$f"); pid_is "$p" "sge_$1" && echo "$p"; }
gone_within() { # gone_within SECONDS PID COMM
  local end=$(( $(date +%s) + $1 ))
  while pid_is "$2" "$3"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.1; done
}
finish() { # finish PID COMM: SIGTERM, then SIGKILL, by PID
  local pid=$1 comm=$2
  pid_is "$pid" "$comm" || return 0
  log "$comm ($pid) still running: SIGTERM"; kill -TERM "$pid" 2>/dev/null
  gone_within 20 "$pid" "$comm" && return 0
  log "$comm ($pid) still running: SIGKILL"; kill -KILL "$pid" 2>/dev/null
  gone_within 5 "$pid" "$comm"
}

[ -d "$OWNED" ] || { log "nothing recorded in $OWNED: nothing to stop"; exit 0; }
HOST=$(cat "$DIR/host" 2>/dev/null || hostname)
QM=$(owned qmaster || true)
EX=$(owned execd || true)
rc=0
if [ -n "$EX" ]; then
  log "stopping sge_execd ($EX) and its jobs"
  if [ -n "$QM" ] || qconf -sh >/dev/null 2>&1; then qconf -kej "$HOST" >/dev/null 2>&1 || true; fi
  gone_within 15 "$EX" sge_execd || finish "$EX" sge_execd || rc=1
fi
if [ -n "$QM" ]; then
  log "stopping sge_qmaster ($QM)"
  qconf -km >/dev/null 2>&1 || true
  gone_within 30 "$QM" sge_qmaster || finish "$QM" sge_qmaster || rc=1
fi
[ -z "$QM$EX" ] && log "no recorded daemon is running"
if [ "$rc" = 0 ]; then rm -f "$OWNED"/qmaster.pid "$OWNED"/execd.pid; log "stopped"; else log "ERROR: some daemon did not stop"; fi
exit "$rc"
