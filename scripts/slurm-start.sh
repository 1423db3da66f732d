#!/usr/bin/env bash
# slurm-start.sh - run a real, single-node Slurm cluster on this machine for the
# project's Slurm tests (tests/slurm, pytest -m slurm). Debian 12 / bookworm
# packages, no systemd, no cgroups, no Docker. Adapted from the shared recipe
# (../shared/slurm/start-local-slurm.sh). Test-specific defaults: MinJobAge=2
# (finished jobs leave squeue after about 10 s, so the adapter's history path
# is exercised), a 10 s requeue delay, KillWait=2, and with slurmdbd
# accounting AccountingStorageEnforce=limits,qos (real QOS submit limits).
#
# Usage:
#   slurm_env=$(bash scripts/slurm-start.sh [DIR] [--link-etc]) && eval "$slurm_env"
#   sbatch --parsable --wrap 'hostname'
# (or: bash scripts/slurm-start.sh >/dev/null && . /tmp/orchestrator-slurm/env.sh).
# Stop with: bash scripts/slurm-stop.sh [DIR] [--purge]
# Do not write eval "$(bash slurm-start.sh)": eval of an empty string
# succeeds, so a failed start would go unnoticed under set -e.
#
# Everything (config, munge key and socket, state, spool, logs, PIDs) lives in
# DIR (default: $LOCAL_SLURM_DIR or /tmp/orchestrator-slurm). Idempotent: packages are
# installed only when missing, daemons are started only when not already running
# from DIR, and the script returns once the node is idle. stdout carries only
# `export VAR=...` lines (also written to DIR/env.sh); progress goes to stderr.
#
# Must run as root (slurmd runs jobs as the submitting user).
#
# Knobs (environment variables):
#   LOCAL_SLURM_DIR        state directory                   [/tmp/orchestrator-slurm]
#   LOCAL_SLURM_CPUS       CPUs the node advertises (may exceed nproc;
#                          SlurmdParameters=config_overrides makes slurmd accept it) [8]
#   LOCAL_SLURM_MEMORY_MB  RealMemory of the node (a job's --mem must fit in it;
#                          not a consumable resource unless ENFORCE_MEMORY=1) [95% of MemTotal]
#   LOCAL_SLURM_GPUS       fake GPUs (Gres=gpu:N, char devices under DIR/dev);
#                          jobs with --gres=gpu:K get CUDA_VISIBLE_DEVICES   [0]
#   LOCAL_SLURM_ACCOUNTING filetxt  -> no database; `sacct -c` reads the job
#                                      completion file; plain sacct is disabled
#                          slurmdbd -> also installs/starts MariaDB + slurmdbd
#                                      in DIR so plain `sacct` works (~15 s more)  [filetxt]
#   LOCAL_SLURM_USERS      with slurmdbd: users given an association (account root)
#                          so they may submit under AccountingStorageEnforce [root]
#   LOCAL_SLURM_ENFORCE_MEMORY=1  make memory consumable (default per CPU:
#                          RealMemory/CPUs) and kill steps that exceed --mem
#                          (jobacct_gather/linux OverMemoryKill; the job ends
#                          FAILED - OUT_OF_MEMORY needs cgroups, not used here) [0]
#   LOCAL_SLURM_PORT_BASE  slurmctld port; slurmd/slurmdbd/mariadb use +1/+2/+3 [16817]
#   LOCAL_SLURM_PARTITION  name of the (default) partition          [debug]
#   LOCAL_SLURM_RETURN_TO_SERVICE  ReturnToService                  [2]
#   LOCAL_SLURM_MIN_JOB_AGE  seconds finished jobs stay visible in squeue/scontrol [2]
#   LOCAL_SLURM_CRED_EXPIRE  AuthInfo cred_expire: job credential lifetime, which
#                          is also how long a requeued job waits before it may
#                          start again (Slurm default 120; minimum 5)  [10]
#   LOCAL_SLURM_FRESH=1    discard saved job/node state and job IDs before starting
#   LOCAL_SLURM_TIMEOUT    seconds to wait for each daemon / the idle node [60]
# Options:
#   --link-etc   also symlink /etc/slurm/slurm.conf -> DIR/etc/slurm.conf (only
#                if /etc/slurm/slurm.conf does not exist), for programs that do
#                not inherit SLURM_CONF. slurm-stop.sh removes that link.
set -euo pipefail

LINK_ETC=0
DIR="${LOCAL_SLURM_DIR:-/tmp/orchestrator-slurm}"
for arg in "$@"; do
  case "$arg" in
    --link-etc) LINK_ETC=1 ;;
    -h|--help) awk 'NR > 1 && /^set -euo/ {exit} NR > 1' "$0"; exit 0 ;;
    -*) echo "slurm-start: unknown option $arg" >&2; exit 2 ;;
    *) DIR="$arg" ;;
  esac
done
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
DIR="${DIR%/}"

CPUS="${LOCAL_SLURM_CPUS:-8}"
GPUS="${LOCAL_SLURM_GPUS:-0}"
ACCT="${LOCAL_SLURM_ACCOUNTING:-filetxt}"
PORT="${LOCAL_SLURM_PORT_BASE:-16817}"
PART="${LOCAL_SLURM_PARTITION:-debug}"
RTS="${LOCAL_SLURM_RETURN_TO_SERVICE:-2}"
MINJOBAGE="${LOCAL_SLURM_MIN_JOB_AGE:-2}"
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-60}"
CRED_EXPIRE="${LOCAL_SLURM_CRED_EXPIRE:-10}"
NODE=localhost
CLUSTER=localslurm

ETC="$DIR/etc"; MUNGE="$DIR/munge"; RUN="$DIR/run"; OWNED="$DIR/run/owned"
LOG="$DIR/log"; STATE="$DIR/state"; SPOOL="$DIR/spool"; DEV="$DIR/dev"; DB="$DIR/db"
CONF="$ETC/slurm.conf"

T_START=$(date +%s%N)
log() { printf '[slurm-start %5.1fs] %s\n' "$(( ($(date +%s%N) - T_START) / 1000000 ))e-3" "$*" >&2; }
die() {
  log "ERROR: $*"
  if ls "$OWNED"/*.pid >/dev/null 2>&1; then log "(daemons already started stay up; slurm-stop.sh $DIR stops them)"; fi
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (slurmd has to start jobs as the submitting user)"
case "$ACCT" in filetxt|slurmdbd) ;; *) die "LOCAL_SLURM_ACCOUNTING must be filetxt or slurmdbd" ;; esac
[[ "$CPUS" =~ ^[1-9][0-9]*$ ]] || die "LOCAL_SLURM_CPUS must be a positive integer"
[[ "$GPUS" =~ ^[0-9]+$ ]] || die "LOCAL_SLURM_GPUS must be a non-negative integer"
[[ "$CRED_EXPIRE" =~ ^[0-9]+$ ]] && [ "$CRED_EXPIRE" -ge 5 ] || die "LOCAL_SLURM_CRED_EXPIRE must be an integer >= 5"

# Never take over (chmod, fill) a directory this script did not create.
MARK="$DIR/.slurm-start"
if [ -d "$DIR" ] && [ ! -e "$MARK" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
  die "$DIR exists, is not empty and was not made by this script; pick another DIR"
fi
mkdir -p "$DIR" "$ETC" "$MUNGE" "$RUN" "$OWNED" "$LOG" "$STATE" "$SPOOL"
: >"$MARK"
chmod 0755 "$DIR" "$ETC" "$MUNGE" "$RUN" "$LOG"   # munged insists on a world-searchable socket dir
chmod 0700 "$STATE" "$SPOOL"

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v slurmctld >/dev/null 2>&1 || need_pkgs+=(slurmctld)
command -v slurmd    >/dev/null 2>&1 || need_pkgs+=(slurmd)
command -v sbatch    >/dev/null 2>&1 || need_pkgs+=(slurm-client)
command -v munged    >/dev/null 2>&1 || need_pkgs+=(munge)
if [ "$ACCT" = slurmdbd ]; then
  command -v slurmdbd >/dev/null 2>&1 || need_pkgs+=(slurmdbd)
  command -v mariadbd >/dev/null 2>&1 || need_pkgs+=(mariadb-server)
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need_pkgs[@]}" >"$1" 2>&1; }
  # apt-get update only when the package lists do not know the packages or the
  # install fails (e.g. lists too old: 404 on download).
  policy=$(apt-cache policy "${need_pkgs[@]}" 2>/dev/null || true)
  if [ "$(grep -c 'Candidate: [0-9]' <<<"$policy")" -lt "${#need_pkgs[@]}" ]; then
    log "apt-get update (package lists lack the packages)"
    apt-get -o DPkg::Lock::Timeout=300 update -q >"$LOG/apt-update.log" 2>&1 || { tail -20 "$LOG/apt-update.log" >&2; die "apt-get update failed"; }
  fi
  if ! apt_install "$LOG/apt-install.log"; then
    log "apt-get install failed; running apt-get update and retrying"
    apt-get -o DPkg::Lock::Timeout=300 update -q >"$LOG/apt-update.log" 2>&1 || true
    apt_install "$LOG/apt-install.log" || { tail -30 "$LOG/apt-install.log" >&2; die "apt-get install ${need_pkgs[*]} failed"; }
  fi
  log "packages installed"
fi
for c in slurmctld slurmd sbatch scontrol sinfo munged munge unmunge; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found after install"
done

# ---------------------------------------------------------------- helpers
# A PID counts as ours only if it is alive, has the recorded start time (so a
# recycled PID is never touched) and the expected command name.
# (field 3 of /proc/PID/stat is the state: an exited daemon can linger as a
# zombie (Z) until PID 1 reaps it; that counts as not running)
proc_starttime() { awk '$3 != "Z" {print $22}' "/proc/$1/stat" 2>/dev/null; }
owned_alive() { # name -> 0 if the daemon recorded under OWNED/name.pid runs
  local f="$OWNED/$1.pid" pid st comm
  [ -f "$f" ] || return 1
  read -r pid st comm <"$f" || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(proc_starttime "$pid")" = "$st" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
}
record_owned() { # name pid comm
  echo "$2 $(proc_starttime "$2") $3" >"$OWNED/$1.pid"
}
wait_pidfile() { # file seconds -> echo pid once the file names a live process
  local f="$1" n=$(( $2 * 10 )) pid
  while [ "$n" -gt 0 ]; do
    if [ -s "$f" ]; then pid=$(tr -dc '0-9' <"$f"); [ -n "$pid" ] && [ -d "/proc/$pid" ] && { echo "$pid"; return 0; }; fi
    sleep 0.1; n=$((n-1))
  done
  return 1
}
wait_until() { # seconds command... -> poll every 0.2 s
  local n=$(( $1 * 5 )); shift
  while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; n=$((n-1)); done
  return 1
}
wait_daemon() { # name seconds command... -> like wait_until, but give up as soon as the daemon died
  local name=$1 n=$(( $2 * 5 )); shift 2
  while [ "$n" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    owned_alive "$name" || { log "$name exited"; return 1; }
    sleep 0.2; n=$((n-1))
  done
  return 1
}
port_busy() { # port -> 0 if something listens on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
show_log() { [ -f "$1" ] && { echo "---- tail $1" >&2; tail -20 "$1" >&2; }; return 0; }

export SLURM_CONF="$CONF"

# ---------------------------------------------------------------- config

any_running=0
for d in munged mariadbd slurmdbd slurmctld slurmd; do owned_alive "$d" && any_running=1; done

if [ "${LOCAL_SLURM_FRESH:-0}" = 1 ]; then
  [ "$any_running" = 0 ] || die "LOCAL_SLURM_FRESH=1 needs the cluster stopped first (slurm-stop.sh $DIR)"
  log "LOCAL_SLURM_FRESH=1: discarding saved state in $STATE, $SPOOL, $LOG"
  rm -rf "${STATE:?}"/* "${SPOOL:?}"/* "${DB:?}"
  find "$LOG" -mindepth 1 -maxdepth 1 ! -name 'apt-*.log' -exec rm -rf {} +
fi

MEM_MB="${LOCAL_SLURM_MEMORY_MB:-$(awk '/^MemTotal:/ {printf "%d", $2/1024*0.95}' /proc/meminfo)}"

gres_node=""; gres_types=""
if [ "$GPUS" -gt 0 ]; then
  mkdir -p "$DEV"
  fake_char=1
  for ((i = 0; i < GPUS; i++)); do
    f="$DEV/fakegpu$i"
    if [ ! -c "$f" ]; then
      rm -f "$f"
      # major 195 = NVIDIA's; Slurm only stat()s the node, nothing opens it.
      mknod -m 0666 "$f" c 195 "$i" 2>/dev/null || { : >"$f"; fake_char=0; }
    fi
  done
  [ "$fake_char" = 1 ] || log "WARNING: mknod failed; fake GPUs are plain files: --gres=gpu works for scheduling but CUDA_VISIBLE_DEVICES is not set"
  gres_types="GresTypes=gpu"
  # recording gpu TRES in accounting needs slurmdbd (slurmctld refuses otherwise)
  [ "$ACCT" = slurmdbd ] && gres_types="$gres_types
AccountingStorageTRES=gres/gpu"
  gres_node=" Gres=gpu:$GPUS"
fi

MEMORY_ENFORCE="${LOCAL_SLURM_ENFORCE_MEMORY:-0}"
if [ "$MEMORY_ENFORCE" = 1 ]; then
  select_params="SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$(( MEM_MB / CPUS ))"
  gather="JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1"
else
  select_params="SelectTypeParameters=CR_CPU"
  gather=""
fi

if [ "$ACCT" = slurmdbd ]; then
  acct_block="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
# the slurmdbd connection takes its munge socket from here, not from AuthInfo
AccountingStoragePass=$MUNGE/munge.socket
# enforce QOS and association limits (MaxSubmitJobs...), as production sites do; a user
# needs an association to submit (root has one; LOCAL_SLURM_USERS adds others)
AccountingStorageEnforce=limits,qos"
  [ -n "$gather" ] || gather="JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
  acct_block="AccountingStorageType=accounting_storage/none"
  [ -n "$gather" ] || gather="JobAcctGatherType=jobacct_gather/none"
fi

new_conf="$(cat <<EOF
# Generated by slurm-start.sh - single-node test cluster. Do not edit:
# it is rewritten on every start.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# private munge socket; cred_expire also sets the requeue delay (default 120 s)
AuthInfo=socket=$MUNGE/munge.socket,cred_expire=$CRED_EXPIRE
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# no cgroups: processes are tracked through /proc
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# start batch jobs on the next scheduler pass (~1 s) instead of up to 3 s later;
# full scheduling + backfill passes every 5 s (defaults 60/30 s) so a job that
# becomes eligible by time (requeue delay, --begin) starts promptly
SchedulerParameters=batch_sched_delay=0,sched_interval=5,bf_interval=5
SelectType=select/cons_tres
$select_params
# accept the configured CPUs/memory even if the hardware has fewer
SlurmdParameters=config_overrides
ReturnToService=$RTS
# finished jobs stay visible in squeue -t all / scontrol show job this long
MinJobAge=$MINJOBAGE
MaxJobCount=50000
# SIGTERM -> SIGKILL grace at the time limit; short so TIMEOUT tests end quickly
KillWait=2
SlurmdTimeout=60
InactiveLimit=0
# one line per finished job; read by 'sacct -c' (works without a database)
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
$acct_block
$gather
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB$gres_node State=UNKNOWN
PartitionName=$PART Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)"
new_gres=""
[ "$GPUS" -gt 0 ] && new_gres="AutoDetect=off
NodeName=$NODE Name=gpu File=$DEV/fakegpu[0-$((GPUS - 1))]"

if [ "$any_running" = 1 ] && [ -f "$CONF" ]; then
  if [ "$new_conf" != "$(cat "$CONF")" ]; then
    log "WARNING: daemons already run from $DIR with a different config; keeping it (slurm-stop.sh $DIR first to apply the new settings)"
  fi
else
  printf '%s\n' "$new_conf" >"$CONF"
  if [ -n "$new_gres" ]; then printf '%s\n' "$new_gres" >"$ETC/gres.conf"; else rm -f "$ETC/gres.conf"; fi
  chmod 0644 "$CONF"
fi

# ---------------------------------------------------------------- munged (private socket + key)
if owned_alive munged; then
  log "munged already running (pid $(cut -d' ' -f1 "$OWNED/munged.pid"))"
else
  [ -s "$MUNGE/munge.key" ] || {
    mungekey -c -k "$MUNGE/munge.key" 2>/dev/null || dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
  }
  chmod 0600 "$MUNGE/munge.key"
  rm -f "$MUNGE/munge.socket" "$MUNGE/munge.socket.lock" "$MUNGE/munged.pid"
  munged --socket="$MUNGE/munge.socket" --key-file="$MUNGE/munge.key" \
         --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" \
         --seed-file="$MUNGE/munged.seed" || { show_log "$MUNGE/munged.log"; die "munged failed to start"; }
  pid=$(wait_pidfile "$MUNGE/munged.pid" "$TIMEOUT") || { show_log "$MUNGE/munged.log"; die "munged wrote no pid"; }
  record_owned munged "$pid" munged
  log "munged started (pid $pid)"
fi
munge_ok() { munge -n -S "$MUNGE/munge.socket" | unmunge -S "$MUNGE/munge.socket"; }
wait_daemon munged "$TIMEOUT" munge_ok || { show_log "$MUNGE/munged.log"; die "munge round trip failed"; }

# ---------------------------------------------------------------- optional MariaDB + slurmdbd
if [ "$ACCT" = slurmdbd ]; then
  DBPORT=$((PORT + 3))
  if owned_alive mariadbd; then
    log "mariadbd already running (pid $(cut -d' ' -f1 "$OWNED/mariadbd.pid"))"
  else
    port_busy "$DBPORT" && die "port $DBPORT is in use (set LOCAL_SLURM_PORT_BASE)"
    if [ ! -d "$DB/data/mysql" ]; then
      mkdir -p "$DB"
      mariadb-install-db --no-defaults --datadir="$DB/data" --user=root \
        --auth-root-authentication-method=normal --skip-test-db >"$DB/install.log" 2>&1 \
        || { show_log "$DB/install.log"; die "mariadb-install-db failed"; }
    fi
    rm -f "$DB/mysqld.pid"
    nohup mariadbd --no-defaults --datadir="$DB/data" --socket="$DB/mysqld.sock" \
      --port="$DBPORT" --bind-address=127.0.0.1 --skip-name-resolve --user=root \
      --pid-file="$DB/mysqld.pid" --log-error="$DB/mysqld.err" \
      --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    pid=$(wait_pidfile "$DB/mysqld.pid" "$TIMEOUT") || { show_log "$DB/mysqld.err"; die "mariadbd did not start"; }
    record_owned mariadbd "$pid" mariadbd
    log "mariadbd started (pid $pid, 127.0.0.1:$DBPORT)"
  fi
  wait_daemon mariadbd "$TIMEOUT" mariadb-admin --no-defaults -S "$DB/mysqld.sock" -uroot ping \
    || { show_log "$DB/mysqld.err"; die "mariadbd not answering"; }
  mariadb --no-defaults -S "$DB/mysqld.sock" -uroot -e \
    "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
    || die "could not create the slurm database user"
  cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  chmod 0600 "$ETC/slurmdbd.conf"
  if owned_alive slurmdbd; then
    log "slurmdbd already running (pid $(cut -d' ' -f1 "$OWNED/slurmdbd.pid"))"
  else
    port_busy $((PORT + 2)) && die "port $((PORT + 2)) is in use (set LOCAL_SLURM_PORT_BASE)"
    rm -f "$RUN/slurmdbd.pid"
    slurmdbd || { show_log "$LOG/slurmdbd.log"; die "slurmdbd failed to start"; }   # reads $(dirname $SLURM_CONF)/slurmdbd.conf
    pid=$(wait_pidfile "$RUN/slurmdbd.pid" "$TIMEOUT") || { show_log "$LOG/slurmdbd.log"; die "slurmdbd wrote no pid"; }
    record_owned slurmdbd "$pid" slurmdbd
    log "slurmdbd started (pid $pid)"
  fi
  wait_daemon slurmdbd "$TIMEOUT" sacctmgr -n list cluster || { show_log "$LOG/slurmdbd.log"; die "slurmdbd not answering"; }
fi

# ---------------------------------------------------------------- slurmctld
if owned_alive slurmctld; then
  log "slurmctld already running (pid $(cut -d' ' -f1 "$OWNED/slurmctld.pid"))"
else
  port_busy "$PORT" && die "port $PORT is in use (another slurmctld? set LOCAL_SLURM_PORT_BASE)"
  rm -f "$RUN/slurmctld.pid"
  ctld_started=1
  sched_lines=$(grep -c 'SchedulerParameters=' "$LOG/slurmctld.log" 2>/dev/null || true)
  slurmctld -f "$CONF" || { show_log "$LOG/slurmctld.log"; die "slurmctld failed to start"; }
  pid=$(wait_pidfile "$RUN/slurmctld.pid" "$TIMEOUT") || { show_log "$LOG/slurmctld.log"; die "slurmctld wrote no pid"; }
  record_owned slurmctld "$pid" slurmctld
  log "slurmctld started (pid $pid, port $PORT)"
fi
wait_daemon slurmctld "$TIMEOUT" scontrol ping || { show_log "$LOG/slurmctld.log"; die "slurmctld not answering"; }

# ---------------------------------------------------------------- associations
if [ "$ACCT" = slurmdbd ]; then
  for u in ${LOCAL_SLURM_USERS:-root}; do
    [[ "$u" =~ ^[a-z_][a-z0-9_.-]*$ ]] || die "LOCAL_SLURM_USERS: bad user name '$u'"
    if [ -z "$(sacctmgr -n -P list user "$u" format=user 2>/dev/null)" ]; then
      sacctmgr -i add user "$u" account=root >/dev/null || die "sacctmgr add user $u failed"
      log "association added for user $u"
    fi
  done
fi

# ---------------------------------------------------------------- slurmd
if owned_alive slurmd; then
  log "slurmd already running (pid $(cut -d' ' -f1 "$OWNED/slurmd.pid"))"
else
  port_busy $((PORT + 1)) && die "port $((PORT + 1)) is in use (set LOCAL_SLURM_PORT_BASE)"
  rm -f "$RUN/slurmd.pid"
  slurmd -f "$CONF" -N "$NODE" || { show_log "$LOG/slurmd.log"; die "slurmd failed to start"; }
  pid=$(wait_pidfile "$RUN/slurmd.pid" "$TIMEOUT") || { show_log "$LOG/slurmd.log"; die "slurmd wrote no pid"; }
  record_owned slurmd "$pid" slurmd
  log "slurmd started (pid $pid)"
fi

# ---------------------------------------------------------------- wait for the node
node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -1; }
resumed=0
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  st=$(node_state || true)
  case "$st" in
    idle|mixed|allocated|completing) break ;;
    *drain*|down*|inval*|fail*)
      # left over from an earlier run (saved state) or a test: put it back once
      if [ "$resumed" = 0 ]; then
        log "node is '$st' - resuming it"
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        resumed=1
      fi ;;
  esac
  owned_alive slurmd || { show_log "$LOG/slurmd.log"; die "slurmd exited"; }
  [ "$(date +%s)" -lt "$deadline" ] || { show_log "$LOG/slurmd.log"; show_log "$LOG/slurmctld.log"; die "node $NODE is '$st', not idle, after ${TIMEOUT}s"; }
  sleep 0.2
done
# slurmctld runs its first scheduling pass ~3 s after it starts (22.05 logs
# "SchedulerParameters=..." then); wait for it so the first job starts at once.
if [ "${ctld_started:-0}" = 1 ]; then
  sched_pass() { [ "$(grep -c 'SchedulerParameters=' "$LOG/slurmctld.log" 2>/dev/null || true)" -gt "${sched_lines:-0}" ]; }
  wait_until 10 sched_pass || true
fi
log "node $NODE is $st ($CPUS CPUs${gres_node:+,$gres_node}, partition $PART, accounting $ACCT)"

# ---------------------------------------------------------------- optional /etc/slurm link
if [ "$LINK_ETC" = 1 ]; then
  if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; then :
  elif [ -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    log "WARNING: /etc/slurm/slurm.conf exists; not linking (export SLURM_CONF instead)"
  else
    mkdir -p /etc/slurm
    ln -s "$CONF" /etc/slurm/slurm.conf
    echo "$CONF" >"$OWNED/etc-link"
    log "linked /etc/slurm/slurm.conf -> $CONF"
  fi
fi

# ---------------------------------------------------------------- environment for tests
cat >"$DIR/env.sh" <<EOF
export SLURM_CONF=$CONF
export LOCAL_SLURM_DIR=$DIR
export LOCAL_SLURM_PARTITION=$PART
export LOCAL_SLURM_CPUS=$CPUS
export LOCAL_SLURM_GPUS=$GPUS
export LOCAL_SLURM_ACCOUNTING=$ACCT
export LOCAL_SLURM_ENFORCE_MEMORY=$MEMORY_ENFORCE
EOF
log "ready in $(( ($(date +%s%N) - T_START) / 1000000 )) ms; environment in $DIR/env.sh"
cat "$DIR/env.sh"
