#!/usr/bin/env bash
# sge-start.sh - run a real, single-host Son of Grid Engine 8.1.9 with its DRMAA library for
# the drmaa-marked tests (tests/drmaa). Debian 12 packages gridengine-master, -exec, -client
# and -drmaa1.0 are installed when missing. No systemd, no Docker. Must run as root.
# Adapted from the shared recipe (shared/sge/start-local-sge.sh); see docs/drmaa.md.
#
# Usage:
#   sge_env=$(bash scripts/sge-start.sh) && eval "$sge_env"
#   REQUIRE_DRMAA=1 .venv/bin/pytest -m drmaa tests/drmaa
#   bash scripts/sge-stop.sh
# Do not write eval "$(bash scripts/sge-start.sh)": eval of an empty string succeeds, so a
# failed start would go unnoticed under set -e.
#
# Idempotent: packages are installed only when missing, daemons started only when not running,
# the cluster configuration (re)applied only where it differs; the script returns once the
# queue instance is up. stdout carries only `export VAR=...` lines (also written to DIR/env.sh);
# progress goes to stderr.
#
# Where things live. Debian's packages fix these paths: SGE_ROOT=/var/lib/gridengine,
# SGE_CELL=default (accounting: $SGE_ROOT/default/common/accounting), spool and job database
# /var/spool/gridengine. Ports 6444/6445. DIR holds env.sh, the host name, logs and, in
# DIR/owned/, the PIDs of the daemons THIS script started; sge-stop.sh stops only those.
#
# Host names: SGE refuses a client whose IP reverse-resolves to another name than the one it
# sends ("access denied (client IP resolved to host name "localhost". This is not identical to
# clients host name "vm")"), so $SGE_ROOT/default/common/host_aliases makes `hostname` and the
# reverse names of its address and of 127.0.0.1 one host. /etc/hosts is only touched when
# `hostname` does not resolve at all (LOCAL_SGE_EDIT_HOSTS=0 forbids that and fails instead).
#
# Knobs (environment variables):
#   LOCAL_SGE_DIR            state directory (or first argument)           [/tmp/orchestrator-sge]
#   LOCAL_SGE_SLOTS          slots of the queue all.q (may exceed nproc)   [4]
#   LOCAL_SGE_FRESH=1        wipe the job database, job IDs, accounting and spools and
#                            re-create the cluster (stops daemons this script started)  [0]
#   LOCAL_SGE_SMOKE=0        skip the final `qsub -sync y /bin/true` check: by default start returns only once a job really ran   [1]
#   LOCAL_SGE_TIMEOUT        seconds to wait for each step                 [60]
#   LOCAL_SGE_EDIT_HOSTS     see "Host names" above                         [1]
set -euo pipefail

DIR="${LOCAL_SGE_DIR:-/tmp/orchestrator-sge}"
for arg in "$@"; do
  case "$arg" in
    -h|--help) awk 'NR > 1 && /^set -euo/ {exit} NR > 1' "$0"; exit 0 ;;
    -*) echo "sge-start: unknown option $arg" >&2; exit 2 ;;
    *) DIR="$arg" ;;
  esac
done
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
DIR="${DIR%/}"
SLOTS="${LOCAL_SGE_SLOTS:-4}"
FRESH="${LOCAL_SGE_FRESH:-0}"
SMOKE="${LOCAL_SGE_SMOKE:-1}"
TIMEOUT="${LOCAL_SGE_TIMEOUT:-60}"
EDIT_HOSTS="${LOCAL_SGE_EDIT_HOSTS:-1}"

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
COMMON="$SGE_ROOT/$SGE_CELL/common"
SPOOL=/var/spool/gridengine
QSPOOL="$SPOOL/qmaster"; ESPOOL="$SPOOL/execd"; SPOOLDB="$SPOOL/spooldb"
DRMAA_LIB=/usr/lib/gridengine-drmaa/lib/libdrmaa.so.1.0
OWNED="$DIR/owned"; LOG="$DIR/log"; CFG="$DIR/config"
# libdrmaa links libjemalloc, whose initial-exec TLS does not fit glibc's default
# static TLS surplus when the library is dlopen()ed (by Python's ctypes):
#   OSError: /lib/x86_64-linux-gnu/libjemalloc.so.2: cannot allocate memory in static TLS block
TUNABLE=glibc.rtld.optional_static_tls=4096
# Call the binaries directly: the /usr/bin wrappers run util/arch each time (0.15 s
# instead of 0.01 s per call).
for _c in qconf qstat qmod qsub; do eval "$_c() { /usr/lib/gridengine/$_c \"\$@\"; }"; done

T_START=$(date +%s%N)
log() { printf '[sge-start %5.1fs] %s\n' "$(( ($(date +%s%N) - T_START) / 1000000 ))e-3" "$*" >&2; }
die() {
  log "ERROR: $*"
  if ls "$OWNED"/*.pid >/dev/null 2>&1; then log "(daemons already started stay up; scripts/sge-stop.sh $DIR stops them)"; fi
  exit 1
}
# pid_is PID COMM: PID is alive (not a zombie) and is that program
pid_is() {
  local st c
  [ -n "${1:-}" ] && st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  c=${st#*(}; c=${c%)*}; st=${st##*) }; st=${st%% *}
  # a killed daemon can stay a zombie for a while (PID 1 here is not an init that reaps at once)
  [ "$c" = "$2" ] && [ "$st" != Z ] && [ "$st" != X ]
}
# running_pid COMM PIDFILE...: print the PID of a live COMM found in one of the files
running_pid() {
  local comm=$1 f p; shift
  for f in "$@"; do
    [ -r "$f" ] || continue
    p=$(tr -dc '0-9' <"$f" 2>/dev/null || true)
    if pid_is "$p" "$comm"; then echo "$p"; return 0; fi
  done
  return 1
}
owned_pid() { local f="$OWNED/$1.pid" p; [ -r "$f" ] || return 1; p=$(tr -dc '0-9' <"$f"); pid_is "$p" "sge_$1" && echo "$p"; }
wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local limit=$1 what=$2 end; shift 2
  end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}

[ "$(id -u)" = 0 ] || die "must run as root (sge_execd starts jobs as the submitting user)"
[[ "$SLOTS" =~ ^[1-9][0-9]*$ ]] || die "LOCAL_SGE_SLOTS must be a positive integer"
MARK="$DIR/.sge-start"
if [ -d "$DIR" ] && [ ! -e "$MARK" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
  die "$DIR exists, is not empty and was not made by this script; pick another DIR"
fi
mkdir -p "$DIR" "$OWNED" "$LOG" "$CFG"
: >"$MARK"

# ---------------------------------------------------------------- host name
HOST=$(hostname)
[ -n "$HOST" ] || die "hostname is empty"
if ! getent hosts "$HOST" >/dev/null 2>&1; then
  [ "$EDIT_HOSTS" = 1 ] || die "'$HOST' does not resolve (getent hosts) and LOCAL_SGE_EDIT_HOSTS=0"
  log "'$HOST' does not resolve: appending '127.0.1.1 $HOST' to /etc/hosts"
  printf '127.0.1.1\t%s\n' "$HOST" >>/etc/hosts
fi
echo "$HOST" >"$DIR/host"

# ---------------------------------------------------------------- packages
pkgs=(gridengine-master gridengine-exec gridengine-client gridengine-drmaa1.0)
need_pkgs=()
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || need_pkgs+=("$p")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Answers for gridengine-common's debconf questions (templates: shared/gridengine*).
  # With no init system, invoke-rc.d does not start the daemons (policy-rc.d, or
  # "No init system and policy-rc.d missing! Defaulting to block.").
  debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridenginemaster string $HOST
EOF
  apt_install() { apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need_pkgs[@]}" >"$1" 2>&1; }
  if ! apt_install "$LOG/apt-install.log"; then
    log "apt-get install failed (stale package lists?): running apt-get update and retrying"
    apt-get -o DPkg::Lock::Timeout=300 update -q >"$LOG/apt-update.log" 2>&1 || { tail -5 "$LOG/apt-update.log" >&2; die "apt-get update failed"; }
    apt_install "$LOG/apt-install.log" || { tail -15 "$LOG/apt-install.log" >&2; die "apt-get install ${need_pkgs[*]} failed (log: $LOG/apt-install.log)"; }
  fi
  log "installed"
fi
[ -x /usr/lib/gridengine/sge_qmaster ] && [ -x /usr/lib/gridengine/sge_execd ] && [ -r "$DRMAA_LIB" ] \
  || die "gridengine binaries or $DRMAA_LIB missing after install"
id sgeadmin >/dev/null 2>&1 || die "user sgeadmin missing (gridengine-common postinst creates it)"

QM_PID=$(running_pid sge_qmaster "$QSPOOL/qmaster.pid" || true)
EX_PID=$(running_pid sge_execd "$ESPOOL"/*/execd.pid || true)

# ---------------------------------------------------------------- fresh cluster
if [ "$FRESH" = 1 ]; then
  if [ -n "$QM_PID$EX_PID" ]; then
    if { [ -z "$QM_PID" ] || [ "$(owned_pid qmaster || true)" = "$QM_PID" ]; } &&
       { [ -z "$EX_PID" ] || [ "$(owned_pid execd || true)" = "$EX_PID" ]; }; then
      log "LOCAL_SGE_FRESH=1: stopping the daemons this script started"
      bash "$(dirname "$0")/sge-stop.sh" "$DIR" >&2 || die "sge-stop.sh failed"
      QM_PID=; EX_PID=
    else
      die "LOCAL_SGE_FRESH=1 but sge daemons not started by this script are running (qmaster '$QM_PID', execd '$EX_PID')"
    fi
  fi
  log "LOCAL_SGE_FRESH=1: re-creating the cluster (job database, job IDs, accounting)"
  rm -rf "${SPOOLDB:?}"/* "$QSPOOL"/jobseqnum "$QSPOOL"/arseqnum "$QSPOOL"/messages "$QSPOOL"/qmaster.pid \
         "$QSPOOL"/heartbeat "$QSPOOL"/lock "$QSPOOL"/job_scripts/* "${ESPOOL:?}"/* "$COMMON"/accounting
  mkdir -p "$SPOOLDB" "$QSPOOL/job_scripts" "$ESPOOL"
  chown sgeadmin:sgeadmin "$SPOOLDB" "$QSPOOL" "$QSPOOL/job_scripts" "$ESPOOL"
  su -s /bin/sh -c "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL $SPOOLDB sgeadmin" sgeadmin \
    >"$LOG/init_cluster.log" 2>&1 || { cat "$LOG/init_cluster.log" >&2; die "init_cluster failed"; }
fi
[ -e "$SPOOLDB/sge" ] || die "no cluster database in $SPOOLDB (gridengine-master's postinst did not run init_cluster?); try LOCAL_SGE_FRESH=1"

# ---------------------------------------------------------------- host_aliases, act_qmaster
aliases=()
add_alias() { local n=$1 a; [ -n "$n" ] && [ "$n" != "$HOST" ] || return 0; for a in "${aliases[@]}"; do [ "$a" = "$n" ] && return 0; done; aliases+=("$n"); }
host_ip=$(getent hosts "$HOST" | awk 'NR==1{print $1}')
add_alias "$(getent hosts "$host_ip" | awk 'NR==1{print $2}')"
add_alias "$(getent hosts 127.0.0.1 | awk 'NR==1{print $2}')"
want_aliases=""
[ "${#aliases[@]}" -gt 0 ] && want_aliases="$HOST ${aliases[*]}"
have_aliases=$(cat "$COMMON/host_aliases" 2>/dev/null || true)
if [ "$have_aliases" != "$want_aliases" ]; then
  if [ -n "$QM_PID" ]; then
    log "WARNING: $COMMON/host_aliases should be '$want_aliases' but sge_qmaster ($QM_PID) already runs; not changing it"
  elif [ -n "$want_aliases" ]; then
    echo "$want_aliases" >"$COMMON/host_aliases"; chown sgeadmin:sgeadmin "$COMMON/host_aliases"
    log "host_aliases: $want_aliases"
  else
    rm -f "$COMMON/host_aliases"
  fi
fi
if [ -z "$QM_PID" ] && [ "$(cat "$COMMON/act_qmaster" 2>/dev/null || true)" != "$HOST" ]; then
  echo "$HOST" >"$COMMON/act_qmaster"; chown sgeadmin:sgeadmin "$COMMON/act_qmaster"
fi

# ---------------------------------------------------------------- sge_qmaster
if [ -n "$QM_PID" ]; then
  log "sge_qmaster already running (pid $QM_PID)"
else
  rm -f "$QSPOOL/qmaster.pid"
  log "starting sge_qmaster"
  /usr/sbin/sge_qmaster >"$LOG/sge_qmaster.out" 2>&1 || { cat "$LOG/sge_qmaster.out" >&2; tail -5 "$QSPOOL/messages" >&2 || true; die "sge_qmaster failed to start"; }
  wait_for "$TIMEOUT" "qmaster pid" running_pid sge_qmaster "$QSPOOL/qmaster.pid" \
    || { tail -5 "$QSPOOL/messages" >&2 || true; ls /tmp/qmaster_messages.* 2>/dev/null >&2 || true; die "sge_qmaster wrote no live pid into $QSPOOL/qmaster.pid"; }
  QM_PID=$(running_pid sge_qmaster "$QSPOOL/qmaster.pid")
  echo "$QM_PID" >"$OWNED/qmaster.pid"
  log "sge_qmaster pid $QM_PID"
fi
wait_for "$TIMEOUT" "qmaster answers" qconf -sh \
  || { qconf -sh 2>&1 | tail -3 >&2 || true; tail -5 "$QSPOOL/messages" >&2 || true; die "sge_qmaster does not answer (qconf -sh)"; }

# ---------------------------------------------------------------- cluster configuration
# Global configuration: Debian's defaults except min_uid/min_gid 0 (tests run as
# root; the default 1000 rejects root's jobs), load reports every 5 s, and the
# accounting file written at once (qacct sees a job as soon as it has ended).
cat >"$CFG/global" <<'EOF'
execd_spool_dir              /var/spool/gridengine/execd
mailer                       /usr/bin/mail
xterm                        /usr/bin/xterm
load_sensor                  none
prolog                       none
epilog                       none
shell_start_mode             posix_compliant
login_shells                 bash,sh,ksh,csh,tcsh
min_uid                      0
min_gid                      0
user_lists                   none
xuser_lists                  none
projects                     none
xprojects                    none
enforce_project              false
enforce_user                 auto
load_report_time             00:00:05
max_unheard                  00:05:00
reschedule_unknown           00:00:00
loglevel                     log_warning
administrator_mail           none
set_token_cmd                none
pag_cmd                      none
token_extend_time            none
shepherd_cmd                 none
qmaster_params               none
execd_params                 none
reporting_params             accounting=true reporting=false flush_time=00:00:01 accounting_flush_time=00:00:00 joblog=false sharelog=00:00:00
finished_jobs                100
gid_range                    65400-65500
qlogin_command               builtin
qlogin_daemon                builtin
rlogin_command               builtin
rlogin_daemon                builtin
rsh_command                  builtin
rsh_daemon                   builtin
max_aj_instances             2000
max_aj_tasks                 75000
max_u_jobs                   0
max_jobs                     0
auto_user_oticket            0
auto_user_fshare             0
auto_user_default_project    none
auto_user_delete_time        86400
delegated_file_staging       false
reprioritize                 0
jsv_url                      none
jsv_allowed_mod              ac,h,i,e,o,j,M,N,p,w
EOF
norm() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -v -e '^#' -e '^[[:space:]]*$' | tr -s ' \t' ' ' | sed 's/ $//' | sort; }
if [ "$(qconf -sconf global | norm)" != "$(norm <"$CFG/global")" ]; then
  qconf -Mconf "$CFG/global" >"$LOG/qconf.log" 2>&1 || { cat "$LOG/qconf.log" >&2; die "qconf -Mconf global failed"; }
  log "global configuration applied"
fi

# Scheduler: run every second and 1 s after each submit/finish (default: every
# 15 s), and no load adjustments (the 2-core machine's load must not hold jobs back).
qconf -ssconf >"$CFG/sched.now"
sed -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
    -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
    -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' \
    -e 's/^job_load_adjustments .*/job_load_adjustments              NONE/' \
    -e 's/^load_adjustment_decay_time .*/load_adjustment_decay_time        0:0:0/' \
    "$CFG/sched.now" >"$CFG/sched"
if ! cmp -s "$CFG/sched.now" "$CFG/sched"; then
  qconf -Msconf "$CFG/sched" >"$LOG/qconf.log" 2>&1 || { cat "$LOG/qconf.log" >&2; die "qconf -Msconf failed"; }
  log "scheduler configuration applied"
fi

admin_hosts=$(qconf -sh 2>/dev/null || true); submit_hosts=$(qconf -ss 2>/dev/null || true)
grep -qx "$HOST" <<<"$admin_hosts" || qconf -ah "$HOST" >>"$LOG/qconf.log" 2>&1 || die "qconf -ah $HOST failed"
grep -qx "$HOST" <<<"$submit_hosts" || qconf -as "$HOST" >>"$LOG/qconf.log" 2>&1 || die "qconf -as $HOST failed"
if ! qconf -sp smp >/dev/null 2>&1; then
  cat >"$CFG/smp.pe" <<'EOF'
pe_name            smp
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     TRUE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
  qconf -Ap "$CFG/smp.pe" >>"$LOG/qconf.log" 2>&1 || die "qconf -Ap smp failed"
  log "parallel environment smp added"
fi
if ! qconf -se "$HOST" >/dev/null 2>&1; then
  printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$HOST" >"$CFG/exechost"
  qconf -Ae "$CFG/exechost" >>"$LOG/qconf.log" 2>&1 || die "qconf -Ae $HOST failed"
  log "exec host $HOST added"
fi
if ! qconf -sq all.q >/dev/null 2>&1; then
  cat >"$CFG/all.q" <<EOF
qname                 all.q
hostlist              $HOST
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               smp
rerun                 FALSE
slots                 $SLOTS
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
EOF
  qconf -Aq "$CFG/all.q" >>"$LOG/qconf.log" 2>&1 || { tail -3 "$LOG/qconf.log" >&2; die "qconf -Aq all.q failed"; }
  log "queue all.q added ($SLOTS slots on $HOST)"
else
  qattr() { qconf -sq all.q | awk -v k="$1" '$1==k {$1=""; sub(/^ +/, ""); print}'; }
  [ "$(qattr hostlist)" = "$HOST" ] || qconf -rattr queue hostlist "$HOST" all.q >>"$LOG/qconf.log" 2>&1 || die "setting all.q hostlist failed"
  [ "$(qattr slots)" = "$SLOTS" ] || qconf -mattr queue slots "$SLOTS" all.q >>"$LOG/qconf.log" 2>&1 || die "setting all.q slots failed"
  [ "$(qattr load_thresholds)" = NONE ] || qconf -mattr queue load_thresholds NONE all.q >>"$LOG/qconf.log" 2>&1 || die "setting all.q load_thresholds failed"
fi

# ---------------------------------------------------------------- sge_execd
if [ -n "$EX_PID" ]; then
  log "sge_execd already running (pid $EX_PID)"
else
  t0=$(date +%s)
  log "starting sge_execd"
  /usr/sbin/sge_execd >"$LOG/sge_execd.out" 2>&1 || { cat "$LOG/sge_execd.out" >&2; die "sge_execd failed to start"; }
  # its spool subdirectory is named after the host name it resolved (here: localhost)
  find_execd() {
    local f p
    for f in "$ESPOOL"/*/execd.pid; do
      [ -r "$f" ] && [ "$(stat -c %Y "$f")" -ge "$t0" ] || continue
      p=$(tr -dc '0-9' <"$f"); pid_is "$p" sge_execd && { echo "$p"; return 0; }
    done
    return 1
  }
  wait_for "$TIMEOUT" "execd pid" find_execd || { cat "$ESPOOL"/*/messages 2>/dev/null | tail -5 >&2; die "sge_execd wrote no live pid file"; }
  EX_PID=$(find_execd)
  echo "$EX_PID" >"$OWNED/execd.pid"
  log "sge_execd pid $EX_PID"
fi

# Clear error/disabled states left from earlier runs, then wait until the queue
# instance reports no state at all (no u=unknown, a=alarm, E=error, d=disabled).
qmod -c "all.q@$HOST" >/dev/null 2>&1 || true
qmod -e "all.q@$HOST" >/dev/null 2>&1 || true
queue_ready() { qstat -f -q "all.q@$HOST" 2>/dev/null | awk -v q="all.q@$HOST" '$1==q && NF==5 {ok=1} END {exit !ok}'; }
wait_for "$TIMEOUT" "queue instance" queue_ready \
  || { qstat -f -explain aAcE >&2 || true; die "all.q@$HOST did not come up"; }
log "queue all.q@$HOST ready"

if [ "$SMOKE" = 1 ]; then
  # A fresh qmaster may hold the first jobs in qw until the execd's first load report: wait
  # for one job to really run, so that tests never race the scheduler's warm-up.
  timeout 300 qsub -sync y -b y -j y -o /dev/null -N sge-start-smoke /bin/true >"$LOG/smoke.log" 2>&1 \
    || { cat "$LOG/smoke.log" >&2; die "smoke job failed"; }
  log "smoke job ok: $(tr '\n' ' ' <"$LOG/smoke.log")"
fi

# ---------------------------------------------------------------- environment
case ":${GLIBC_TUNABLES:-}:" in
  *":$TUNABLE:"*) tun="$GLIBC_TUNABLES" ;;
  "::") tun="$TUNABLE" ;;
  *) tun="$GLIBC_TUNABLES:$TUNABLE" ;;
esac
{
  echo "export SGE_ROOT=$SGE_ROOT"
  echo "export SGE_CELL=$SGE_CELL"
  echo "export DRMAA_LIBRARY_PATH=$DRMAA_LIB"
  echo "export GLIBC_TUNABLES=$tun"
} >"$DIR/env.sh.tmp"
mv "$DIR/env.sh.tmp" "$DIR/env.sh"
cat "$DIR/env.sh"
log "ready (qmaster $QM_PID, execd $EX_PID; env in $DIR/env.sh)"
