#!/usr/bin/env bash
# local-slurm.sh -- a throw-away one-node Slurm cluster for tests (Debian/Ubuntu, root).
#
#   local-slurm.sh install [--accounting]  apt-get install slurm-wlm + munge (+ slurmdbd, mariadb-server)
#   local-slurm.sh start  STATE_DIR        write config, start the daemons, wait until the node is idle
#   local-slurm.sh stop   STATE_DIR        cancel jobs, stop what `start` started from STATE_DIR
#   local-slurm.sh status STATE_DIR        daemon pids, sinfo, squeue (exit 0 iff all daemons run)
#
# Everything `start` writes (slurm.conf, munge key and socket, state save,
# spool, logs, pid files, the accounting database) lives under STATE_DIR;
# nothing under /etc is read or changed and no system service is used, so it
# works in containers without systemd or cgroups. Clients must use the
# generated config; `start` ends by printing
#     export SLURM_CONF=STATE_DIR/slurm.conf
#
# Daemons: munged (own key and socket), slurmctld, slurmd (one node, NodeName
# localhost, CPUs/RealMemory from `slurmd -C`, select/cons_tres + CR_CPU so
# 1-CPU jobs run side by side) and, with accounting, mariadbd + slurmdbd so
# that `sacct` works (Slurm 22.05 has no file-based accounting storage).
#
# Exit codes: 0 ok (start: running, also when it already was); 2 usage;
# 3 cannot install/start here (not root, packages missing, a daemon failed),
# with a one-line reason on stderr followed by the relevant log tails.
#
# Environment:
#   LOCAL_SLURM_ACCOUNTING  auto (default: on when slurmdbd and mariadb-server are
#                           installed), 1 (required: exit 3 without them), 0 (off).
#                           For `install`, 1 is the same as --accounting.
#   LOCAL_SLURM_TIMEOUT     seconds to wait for the node to become idle (default 60)
#   LOCAL_SLURM_PORT        first port to try; slurmctld, slurmd, slurmdbd and
#                           mariadbd take the next free ones (default 6817)
#   LOCAL_SLURM_MIN_JOB_AGE seconds finished jobs stay visible to squeue/scontrol (default 300)
#   LOCAL_SLURM_KEEP_JOBS=1 `stop` leaves jobs alone: pending jobs stay queued and
#                           running batch jobs keep running (slurmstepd is detached);
#                           the next `start` reattaches them. Default: `stop` scancels
#                           all jobs, then kills leftover job processes of this cluster.
set -u

PROG=$(basename "$0")
NODE=localhost
TIMEOUT=${LOCAL_SLURM_TIMEOUT:-60}
BASE_PKGS="slurm-wlm munge"
ACCT_PKGS="slurmdbd mariadb-server"
BASE_BINS="slurmctld slurmd sbatch squeue scancel sacct sinfo scontrol munged munge unmunge"
ACCT_BINS="slurmdbd sacctmgr mariadbd mariadb-install-db mariadb"
ACTION=start
PATH=$PATH:/usr/sbin:/sbin

say()  { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
usage() {
    sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# cannot REASON [LOGFILE...] : one-line reason, then log tails, exit 3
cannot() {
    local reason=$1 f
    shift
    printf '%s: cannot %s here: %s\n' "$PROG" "$ACTION" "$reason" >&2
    for f in "$@"; do
        if [ -s "$f" ]; then
            printf -- '--- tail of %s ---\n' "$f" >&2
            tail -n 25 "$f" >&2
        fi
    done
    if [ -n "${CLEANUP_STATE:-}" ]; then
        f=$CLEANUP_STATE
        CLEANUP_STATE=
        LOCAL_SLURM_KEEP_JOBS=1 cmd_stop "$f" >/dev/null 2>&1
    fi
    exit 3
}

missing() { # BINS...
    local b out=""
    for b in "$@"; do
        command -v "$b" >/dev/null 2>&1 || out="$out $b"
    done
    printf '%s' "${out# }"
}

# ---------------------------------------------------------------- install
cmd_install() {
    ACTION=install
    local want_acct=${LOCAL_SLURM_ACCOUNTING:-0}
    [ "${1:-}" = --accounting ] && want_acct=1
    local pkgs=$BASE_PKGS bins=$BASE_BINS
    # shellcheck disable=SC2086
    if [ "$want_acct" = 1 ]; then pkgs="$pkgs $ACCT_PKGS"; bins="$bins $ACCT_BINS"; fi
    # shellcheck disable=SC2086
    if [ -z "$(missing $bins)" ]; then
        say "already installed: $(slurmctld -V 2>/dev/null)"
        return 0
    fi
    # shellcheck disable=SC2086
    [ "$(id -u)" = 0 ] || cannot "needs root (missing: $(missing $bins))"
    # shellcheck disable=SC2086
    command -v apt-get >/dev/null 2>&1 || cannot "no apt-get (missing: $(missing $bins))"
    export DEBIAN_FRONTEND=noninteractive
    # Keep postinst scripts from starting system services (a system munged,
    # slurmctld or mariadb would otherwise start and keep running).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d &&
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local rc=0
    # shellcheck disable=SC2086
    apt-cache show $pkgs >/dev/null 2>&1 || apt-get update -q || true
    # shellcheck disable=SC2086
    if ! apt-get install -y -q --no-install-recommends $pkgs; then
        apt-get update -q || true
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $pkgs || rc=$?
    fi
    [ "$rc" = 0 ] || cannot "apt-get install $pkgs failed (rc=$rc)"
    local m
    # shellcheck disable=SC2086
    m=$(missing $bins)
    [ -z "$m" ] || cannot "still missing after install: $m"
    say "installed: $(slurmctld -V 2>/dev/null), $(munged -V 2>&1 | head -n1)"
}

# ---------------------------------------------------------------- helpers
# alive PID : process exists and is not a zombie (pid 1 of some containers
# never reaps, so an exited daemon can linger as <defunct>)
alive() {
    local s
    s=$( { sed -e 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1; } 2>/dev/null) || return 1
    [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

# pid_alive PIDFILE NAME STATE : prints the pid if the pid file names a live
# process whose command line mentions NAME and whose command line or
# environment mentions STATE (guards against pid reuse)
pid_alive() {
    local pf=$1 name=$2 st=$3 pid cmd
    [ -s "$pf" ] || return 1
    pid=$(tr -cd '0-9' < "$pf")
    [ -n "$pid" ] && alive "$pid" || return 1
    cmd=$( { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null) || return 1
    case "$cmd" in *"$name"*) ;; *) return 1 ;; esac
    case "$cmd" in
        *"$st"*) ;;
        *) { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null |
               grep -qxF "SLURM_CONF=$st/slurm.conf" || return 1 ;;
    esac
    printf '%s' "$pid"
}

port_busy() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    return 1
}

# next_port : sets PORT to the first free port > PORT
next_port() {
    local n=0
    while [ $n -lt 500 ]; do
        PORT=$((PORT + 1)); n=$((n + 1))
        port_busy "$PORT" || return 0
    done
    cannot "no free TCP port found"
}

# abs_state DIR [create] : absolute physical path of DIR (created if asked)
abs_state() {
    [ -n "${1:-}" ] || usage
    case "$1" in *[[:space:]]*) cannot "STATE_DIR must not contain white space: '$1'" ;; esac
    if [ "${2:-}" = create ]; then
        mkdir -p "$1" || cannot "cannot create STATE_DIR $1"
    fi
    (cd "$1" 2>/dev/null && pwd -P) || { [ "${2:-}" = create ] && cannot "cannot enter $1"; printf '%s' "$1"; }
}

# Unix socket paths are limited to 107 bytes: with a deep STATE_DIR put the
# sockets (munge, mariadb, slurmd spool with its step sockets) in a short
# directory under /tmp instead.
sock_dir() {
    local st=$1
    if [ ${#st} -le 56 ]; then
        printf '%s/run' "$st"
    else
        printf '/tmp/local-slurm-%s' "$(printf '%s' "$st" | cksum | cut -d' ' -f1)"
    fi
}

node_state() {
    SLURM_CONF="$1/slurm.conf" timeout 10 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1
}

acct_enabled() { grep -q '^AccountingStorageType=accounting_storage/slurmdbd' "$1/slurm.conf" 2>/dev/null; }

all_running() {
    local st=$1
    pid_alive "$st/munged.pid" munged "$st" >/dev/null &&
    pid_alive "$st/slurmctld.pid" slurmctld "$st" >/dev/null &&
    pid_alive "$st/slurmd.pid" slurmd "$st" >/dev/null || return 1
    if acct_enabled "$st"; then
        pid_alive "$st/slurmdbd.pid" slurmdbd "$st" >/dev/null &&
        pid_alive "$st/mariadbd.pid" mariadbd "$st" >/dev/null || return 1
    fi
}

print_export() {
    local a=off
    acct_enabled "$1" && a="on (sacct works)"
    say "cluster up: node $NODE $(node_state "$1"), accounting $a, state in $1"
    echo "export SLURM_CONF=$1/slurm.conf"
}

# ---------------------------------------------------------------- stop
stop_one() { # PIDFILE NAME STATE
    local pf=$1 name=$2 st=$3 pid i
    pid=$(pid_alive "$pf" "$name" "$st") || { rm -f "$pf"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 75); do
        alive "$pid" || break
        sleep 0.2
    done
    if alive "$pid"; then
        warn "$name (pid $pid) ignored SIGTERM for 15 s, killing it"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    rm -f "$pf"
    say "stopped $name (pid $pid)"
}

# step_pids STATE : live slurmstepd processes of this cluster. slurmstepd is
# detached (parent 1) and overwrites its environment, but it keeps slurmd's
# log open and its cwd in STATE/log.
step_pids() {
    local st=$1 d pid comm
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        comm=$(cat "$d/comm" 2>/dev/null) || continue
        [ "$comm" = slurmstepd ] || continue
        alive "$pid" || continue
        if [ "$(readlink "$d/cwd" 2>/dev/null)" = "$st/log" ] ||
           ls -l "$d/fd" 2>/dev/null | grep -qF -- "-> $st/log/"; then
            printf ' %s' "$pid"
        fi
    done
}

# kill_steps STATE : SIGKILL this cluster's slurmstepd processes and all their
# descendants (the job scripts)
kill_steps() {
    local st=$1 d pid ppid pids all before
    pids=$(step_pids "$st")
    [ -n "$pids" ] || return 0
    all=" $pids "
    before=-1
    while [ "$before" != "${#all}" ]; do
        before=${#all}
        for d in /proc/[0-9]*; do
            pid=${d#/proc/}
            case "$all" in *" $pid "*) continue ;; esac
            ppid=$( { sed -e 's/^.*) //' "$d/stat" | cut -d' ' -f2; } 2>/dev/null) || continue
            case "$all" in *" $ppid "*) all="$all$pid " ;; esac
        done
    done
    # shellcheck disable=SC2086
    kill -KILL $all 2>/dev/null
    # shellcheck disable=SC2086
    say "killed $(echo $all | wc -w) leftover job process(es) (slurmstepd:$pids)"
}

# cancel_all STATE : scancel every job of this cluster, wait (<= 20 s) until gone
cancel_all() {
    local st=$1 ids i
    pid_alive "$st/slurmctld.pid" slurmctld "$st" >/dev/null || return 0
    ids=$(SLURM_CONF="$st/slurm.conf" timeout 10 squeue -h -o '%F' 2>/dev/null | sort -u | tr '\n' ' ')
    ids=${ids% }
    [ -n "${ids// /}" ] || return 0
    # shellcheck disable=SC2086
    SLURM_CONF="$st/slurm.conf" timeout 10 scancel $ids 2>/dev/null
    say "cancelled job(s) $ids"
    for i in $(seq 1 40); do
        [ -z "$(SLURM_CONF="$st/slurm.conf" timeout 10 squeue -h -o '%i' 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    warn "jobs still listed after scancel: $(SLURM_CONF="$st/slurm.conf" timeout 10 squeue -h -o '%i/%T' 2>/dev/null | tr '\n' ' ')"
}

# After an unclean stop (daemons and job processes killed) slurmctld recovers
# jobs as RUNNING that no slurmstepd runs any more, and keeps them RUNNING
# forever. cancel_ghosts STATE "IDS" cancels those of IDS (the jobs slurmctld
# recovered as running, listed before slurmd started, as JOBID:%i) that have
# no slurmstepd process.
cancel_ghosts() {
    local st=$1 ids=$2 id ghosts="" steps="" p
    [ -n "${ids// /}" ] || return 0
    for p in $(step_pids "$st"); do
        steps="$steps $( { tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null)"
    done
    # scancel must get %i (8_2): a bare 8 would cancel the whole array when
    # 8 is also the array's job id
    for id in $ids; do
        case "$steps" in *"[${id%%:*}."*) ;; *) ghosts="$ghosts ${id#*:}" ;; esac
    done
    [ -n "$ghosts" ] || return 0
    # shellcheck disable=SC2086
    SLURM_CONF="$st/slurm.conf" timeout 10 scancel $ghosts 2>/dev/null
    warn "cancelled job(s) left RUNNING by an unclean stop (their processes are gone):$ghosts"
}

cmd_stop() {
    local st
    st=$(abs_state "${1:-}") || exit $?
    [ "${LOCAL_SLURM_KEEP_JOBS:-0}" = 1 ] || cancel_all "$st"
    stop_one "$st/slurmd.pid" slurmd "$st"
    stop_one "$st/slurmctld.pid" slurmctld "$st"
    [ "${LOCAL_SLURM_KEEP_JOBS:-0}" = 1 ] || kill_steps "$st"
    stop_one "$st/slurmdbd.pid" slurmdbd "$st"
    stop_one "$st/mariadbd.pid" mariadbd "$st"
    stop_one "$st/munged.pid" munged "$st"
    local sd
    sd=$(sock_dir "$st")
    case "$sd" in /tmp/local-slurm-*) rm -rf "$sd" ;; esac
    return 0
}

# ---------------------------------------------------------------- start
write_config() { # STATE SOCKDIR HOST HW CTLD_PORT SLURMD_PORT DBD_PORT(0 = no accounting)
    local st=$1 sd=$2 host=$3 hw=$4 cport=$5 dport=$6 dbdport=$7 acct
    if [ "$dbdport" != 0 ]; then
        acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$dbdport
# Slurm 22.05 authenticates slurmdbd connections (slurmctld, sacct, sacctmgr)
# through this munge socket, not AuthInfo; default would be /run/munge/munge.socket.2
AccountingStoragePass=$sd/munge.socket"
    else
        acct="AccountingStorageType=accounting_storage/none"
    fi
    cat > "$st/slurm.conf" <<EOF
# generated by $PROG -- one-node test cluster, state in $st
ClusterName=localcluster
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sd/munge.socket
StateSaveLocation=$st/ctld
SlurmdSpoolDir=$sd/spool
SlurmctldPidFile=$st/slurmctld.pid
SlurmdPidFile=$st/slurmd.pid
SlurmctldLogFile=$st/log/slurmctld.log
SlurmdLogFile=$st/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$st/plugstack.conf
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$acct
JobCompType=jobcomp/filetxt
JobCompLoc=$st/log/jobcomp.txt
SchedulerType=sched/backfill
# start batch jobs about 1 s after submission instead of 2 s
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
# Slurm's default, said here because the sweep tests rely on it: batch jobs may be requeued (sweep tasks are
# submitted --requeue and requeue themselves with scontrol requeue after saving on SIGUSR1)
JobRequeue=1
MinJobAge=${LOCAL_SLURM_MIN_JOB_AGE:-300}
KillWait=5
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
MaxArraySize=100001
MaxJobCount=100000
NodeName=$NODE NodeHostname=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    : > "$st/plugstack.conf"
    printf '# no cgroup plugin is configured; present so nothing reads /etc/slurm\nCgroupAutomount=no\n' > "$st/cgroup.conf"
    if [ "$dbdport" != 0 ]; then
        ( umask 077
          cat > "$st/slurmdbd.conf" <<EOF
# generated by $PROG
AuthType=auth/munge
AuthInfo=socket=$sd/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$dbdport
SlurmUser=root
PidFile=$st/slurmdbd.pid
LogFile=$st/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
        )
    else
        rm -f "$st/slurmdbd.conf"
    fi
}

start_munged() {
    local st=$1 sd=$2 i
    if [ ! -s "$st/munge.key" ]; then
        # our own key: this munged is private to the cluster (own socket)
        ( umask 077; dd if=/dev/urandom of="$st/munge.key" bs=1024 count=1 2>/dev/null ) ||
            cannot "cannot create munge key"
    fi
    chmod 600 "$st/munge.key"
    rm -f "$sd/munge.socket" "$sd/munge.socket.lock"
    # --force: tolerate e.g. a world-writable /tmp above STATE_DIR
    munged --force --key-file="$st/munge.key" --socket="$sd/munge.socket" \
        --pid-file="$st/munged.pid" --log-file="$st/log/munged.log" \
        --seed-file="$st/munged.seed" >>"$st/log/munged.log" 2>&1 ||
        cannot "munged failed to start" "$st/log/munged.log"
    for i in $(seq 1 50); do
        [ -S "$sd/munge.socket" ] && pid_alive "$st/munged.pid" munged "$st" >/dev/null && break
        sleep 0.1
    done
    pid_alive "$st/munged.pid" munged "$st" >/dev/null || cannot "munged did not stay up" "$st/log/munged.log"
    munge -n -S "$sd/munge.socket" 2>/dev/null | unmunge -S "$sd/munge.socket" >/dev/null 2>&1 ||
        cannot "munge credential round trip failed" "$st/log/munged.log"
}

start_accounting() {
    local st=$1 sd=$2 i db=$st/db sock=$sd/mysqld.sock
    local dbopts="--no-defaults --datadir=$db --user=root --innodb-log-file-size=16M --innodb-buffer-pool-size=128M"
    if [ ! -d "$db/mysql" ]; then
        rm -rf "$db"
        # shellcheck disable=SC2086
        mariadb-install-db $dbopts --skip-test-db --auth-root-authentication-method=socket \
            >"$st/log/mariadb-install.log" 2>&1 ||
            cannot "mariadb-install-db failed" "$st/log/mariadb-install.log"
    fi
    rm -f "$sock"
    # shellcheck disable=SC2086
    setsid mariadbd $dbopts --socket="$sock" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --skip-name-resolve --innodb-lock-wait-timeout=900 \
        --pid-file="$st/mariadbd.pid" --log-error="$st/log/mariadbd.log" </dev/null >/dev/null 2>&1 &
    for i in $(seq 1 150); do
        mariadb --no-defaults -S "$sock" -uroot -e 'select 1' >/dev/null 2>&1 && break
        pid_alive "$st/mariadbd.pid" mariadbd "$st" >/dev/null || [ "$i" -lt 25 ] || break
        sleep 0.2
    done
    mariadb --no-defaults -S "$sock" -uroot -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" >>"$st/log/mariadbd.log" 2>&1 ||
        cannot "mariadbd did not come up" "$st/log/mariadbd.log"

    SLURM_CONF="$st/slurm.conf" slurmdbd >>"$st/log/slurmdbd.out" 2>&1 ||
        cannot "slurmdbd failed to start" "$st/log/slurmdbd.out" "$st/log/slurmdbd.log"
    local t0=$SECONDS
    while [ $((SECONDS - t0)) -lt 30 ]; do
        if SLURM_CONF="$st/slurm.conf" timeout 5 sacctmgr -n show cluster >/dev/null 2>&1; then
            # slurmctld registers the cluster itself too; adding it here
            # first avoids losing the first jobs' records
            SLURM_CONF="$st/slurm.conf" timeout 10 sacctmgr -i add cluster localcluster >/dev/null 2>&1
            return 0
        fi
        pid_alive "$st/slurmdbd.pid" slurmdbd "$st" >/dev/null || [ $((SECONDS - t0)) -lt 3 ] ||
            cannot "slurmdbd died" "$st/log/slurmdbd.out" "$st/log/slurmdbd.log"
        sleep 0.3
    done
    cannot "slurmdbd did not answer within 30 s" "$st/log/slurmdbd.log"
}

cmd_start() {
    local st sd
    [ "$(id -u)" = 0 ] || cannot "must run as root (slurmd runs jobs as the submitting user)"
    st=$(abs_state "${1:-}" create) || exit $?
    local m
    # shellcheck disable=SC2086
    m=$(missing $BASE_BINS)
    [ -z "$m" ] || cannot "slurm/munge not installed (missing: $m); run '$PROG install'"
    local acct=${LOCAL_SLURM_ACCOUNTING:-auto}
    # shellcheck disable=SC2086
    case "$acct" in
        1) m=$(missing $ACCT_BINS)
           [ -z "$m" ] || cannot "LOCAL_SLURM_ACCOUNTING=1 but missing: $m; run '$PROG install --accounting'" ;;
        auto) if [ -z "$(missing $ACCT_BINS)" ]; then acct=1; else acct=0; fi ;;
        *) acct=0 ;;
    esac

    if all_running "$st"; then
        case "$(node_state "$st")" in
            idle|mixed|allocated|completing)
                say "already running from $st"
                print_export "$st"
                return 0 ;;
        esac
    fi
    # partial or stale: clean up what is left (keeping jobs), start afresh
    LOCAL_SLURM_KEEP_JOBS=1 cmd_stop "$st" >/dev/null

    sd=$(sock_dir "$st")
    CLEANUP_STATE=$st   # from here on, `cannot` stops what was started
    mkdir -p "$st/log" "$st/ctld" "$sd/spool" || cannot "cannot create directories in $st"
    chmod 755 "$st" "$sd"   # clients of any uid need the munge socket

    local host hw ctld_port slurmd_port dbd_port=0
    host=$(hostname -s 2>/dev/null || uname -n | cut -d. -f1)
    [ -n "$host" ] || cannot "cannot determine the host name"
    # "NodeName=x CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=7936"
    hw=$(slurmd -C 2>/dev/null | head -n1 | sed -e 's/^NodeName=[^ ]* *//' -e 's/ *UpTime=.*//')
    case "$hw" in *CPUs=*) ;; *) cannot "slurmd -C gave no hardware description" ;; esac
    PORT=$(( ${LOCAL_SLURM_PORT:-6817} - 1 ))
    next_port; ctld_port=$PORT
    next_port; slurmd_port=$PORT
    if [ "$acct" = 1 ]; then
        next_port; dbd_port=$PORT
        next_port; DB_PORT=$PORT
    fi

    write_config "$st" "$sd" "$host" "$hw" "$ctld_port" "$slurmd_port" "$dbd_port"
    unset SLURM_CONF
    start_munged "$st" "$sd"
    [ "$acct" = 1 ] && start_accounting "$st" "$sd"

    slurmctld -f "$st/slurm.conf" >>"$st/log/slurmctld.out" 2>&1 ||
        cannot "slurmctld failed to start" "$st/log/slurmctld.out" "$st/log/slurmctld.log"
    local i up=0
    for i in $(seq 1 150); do
        if pid_alive "$st/slurmctld.pid" slurmctld "$st" >/dev/null; then
            if SLURM_CONF="$st/slurm.conf" timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; then up=1; break; fi
        elif [ "$i" -gt 10 ]; then
            break
        fi
        sleep 0.2
    done
    [ "$up" = 1 ] || cannot "slurmctld did not come up" "$st/log/slurmctld.out" "$st/log/slurmctld.log"

    local recovered
    recovered=$(SLURM_CONF="$st/slurm.conf" timeout 10 squeue -h -t running,completing -o '%A:%i' 2>/dev/null | tr '\n' ' ')

    slurmd -f "$st/slurm.conf" -N "$NODE" >>"$st/log/slurmd.out" 2>&1 ||
        cannot "slurmd failed to start" "$st/log/slurmd.out" "$st/log/slurmd.log"

    local t0=$SECONDS s="" resumed=0
    while [ $((SECONDS - t0)) -lt "$TIMEOUT" ]; do
        pid_alive "$st/slurmctld.pid" slurmctld "$st" >/dev/null ||
            cannot "slurmctld died" "$st/log/slurmctld.log"
        pid_alive "$st/slurmd.pid" slurmd "$st" >/dev/null || [ $((SECONDS - t0)) -lt 3 ] ||
            cannot "slurmd died" "$st/log/slurmd.out" "$st/log/slurmd.log"
        s=$(node_state "$st")
        case "$s" in
            idle|mixed|allocated|completing)
                CLEANUP_STATE=
                cancel_ghosts "$st" "$recovered"
                print_export "$st"
                return 0 ;;
            down*|drain*|fail*)
                # e.g. left DOWN by an earlier unclean stop
                if [ $resumed = 0 ]; then
                    SLURM_CONF="$st/slurm.conf" scontrol update nodename="$NODE" state=resume >/dev/null 2>&1
                    resumed=1
                fi ;;
        esac
        sleep 0.5
    done
    cannot "node $NODE not idle after ${TIMEOUT}s (state: ${s:-none})" "$st/log/slurmd.log" "$st/log/slurmctld.log"
}

cmd_status() {
    local st n p rc=0
    st=$(abs_state "${1:-}") || exit $?
    for n in munged mariadbd slurmdbd slurmctld slurmd; do
        case $n in mariadbd|slurmdbd) acct_enabled "$st" || continue ;; esac
        if p=$(pid_alive "$st/$n.pid" "$n" "$st"); then say "$n running (pid $p)"; else say "$n not running"; rc=1; fi
    done
    [ -f "$st/slurm.conf" ] || return 1
    SLURM_CONF="$st/slurm.conf" timeout 10 sinfo || rc=1
    SLURM_CONF="$st/slurm.conf" timeout 10 squeue || rc=1
    return $rc
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    start)   [ $# -eq 2 ] || usage; cmd_start "$2" ;;
    stop)    [ $# -eq 2 ] || usage; ACTION=stop; cmd_stop "$2" ;;
    status)  [ $# -eq 2 ] || usage; ACTION=status; cmd_status "$2" ;;
    *) usage ;;
esac
