#!/usr/bin/env bash
# slurm-stop.sh - stop the test cluster started by scripts/slurm-start.sh.
#
# Usage: bash scripts/slurm-stop.sh [DIR] [--purge]
#
# Stops only the daemons whose PIDs slurm-start.sh recorded in
# DIR/run/owned (each checked against its recorded start time and command
# name, so a recycled PID is never signalled). Jobs still queued or running
# on the cluster are cancelled first, so no slurmstepd is left behind.
# Saved state (job history, job IDs) stays in DIR for the next start unless
# --purge is given, which removes DIR altogether.
set -uo pipefail

PURGE=0
DIR="${LOCAL_SLURM_DIR:-/tmp/orchestrator-slurm}"
for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "slurm-stop: unknown option $arg" >&2; exit 2 ;;
    *) DIR="$arg" ;;
  esac
done
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
DIR="${DIR%/}"
OWNED="$DIR/run/owned"
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-30}"
export SLURM_CONF="$DIR/etc/slurm.conf"

log() { echo "[slurm-stop] $*" >&2; }

# empty for a zombie (state Z): an exited daemon may linger until PID 1 reaps it
proc_starttime() { awk '$3 != "Z" {print $22}' "/proc/$1/stat" 2>/dev/null; }
owned_pid() { # name -> echo pid if the recorded daemon is still the same process
  local f="$OWNED/$1.pid" pid st comm
  [ -f "$f" ] || return 1
  read -r pid st comm <"$f" || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(proc_starttime "$pid")" = "$st" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  echo "$pid"
}
stop_one() { # name
  local pid n
  if ! pid=$(owned_pid "$1"); then
    [ -f "$OWNED/$1.pid" ] && log "$1: recorded process is gone"
    rm -f "$OWNED/$1.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  n=$(( TIMEOUT * 10 ))
  while [ "$n" -gt 0 ] && owned_pid "$1" >/dev/null; do sleep 0.1; n=$((n-1)); done
  if owned_pid "$1" >/dev/null; then
    log "$1 (pid $pid) ignored SIGTERM for ${TIMEOUT}s - sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  log "$1 (pid $pid) stopped"
  rm -f "$OWNED/$1.pid"
}

if [ ! -d "$OWNED" ]; then
  log "nothing recorded in $OWNED - nothing to stop"
else
  # Cancel whatever is still queued or running, so slurmd leaves no job behind.
  if owned_pid slurmctld >/dev/null && owned_pid slurmd >/dev/null; then
    jobs=$(squeue -h -t PD,R,CG,S,CF,RQ,RS,SO -o '%A' 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null
      n=$(( TIMEOUT * 5 ))
      while [ "$n" -gt 0 ] && [ -n "$(squeue -h -t R,CG,S,SO -o '%A' 2>/dev/null)" ]; do sleep 0.2; n=$((n-1)); done
    fi
  fi
  ls "$OWNED"/*.pid >/dev/null 2>&1 || log "no daemons recorded in $OWNED - nothing to stop"
  for d in slurmd slurmctld slurmdbd mariadbd munged; do stop_one "$d"; done
  if [ -f "$OWNED/etc-link" ]; then
    target=$(cat "$OWNED/etc-link")
    if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$target" ]; then
      rm -f /etc/slurm/slurm.conf && log "removed /etc/slurm/slurm.conf link"
    fi
    rm -f "$OWNED/etc-link"
  fi
fi

if [ "$PURGE" = 1 ]; then
  # refuse to purge anything that does not look like our directory
  if [ -e "$DIR/.slurm-start" ]; then
    rm -rf "$DIR" && log "removed $DIR"
  else
    log "not purging $DIR: it does not look like a slurm-start.sh directory"
  fi
fi
exit 0
