#!/usr/bin/env bash
# scripts/slurm-local.sh: start and stop a real one-host Slurm cluster (slurmctld + slurmd +
# munged) on this machine, for chimera's Slurm test tier and CI.
#
# Used by the test tier in tests/slurm.rs (CHIMERA_REQUIRE_SLURM_TESTS=1 makes those tests fail
# rather than skip when no cluster answers) and by .ci/run, which bring a cluster up before the
# tier and take it down after. The recipe is shared/docs/slurm-local.md's, checked on a root,
# systemd-less Debian 12 machine.
#
# Usage (as root):
#   scripts/slurm-local.sh up       install slurm-wlm and munge with apt-get when missing, start
#                                   munged (unless one already answers), write
#                                   /etc/slurm/slurm.conf for this host (its hostname, `nproc`
#                                   CPUs, RealMemory a bit below MemTotal; partition `debug`,
#                                   OverSubscribe=FORCE:4, accounting off, KillWait=5,
#                                   MinJobAge=300), start `slurmctld -c` and `slurmd` with a fresh
#                                   state and spool, and wait (60 s at most) for the node to be
#                                   idle. Idempotent: a cluster this script started that is up
#                                   and healthy is left as it is.
#   scripts/slurm-local.sh down     cancel the cluster's jobs, stop the daemons this script
#                                   started (by the pids it recorded: TERM, 10 s, then KILL),
#                                   restore /etc/slurm/slurm.conf as it was, remove the state.
#                                   Never touches daemons it did not start. Exit 0 when nothing
#                                   was running.
#   scripts/slurm-local.sh status   print whether the cluster this script started is up
#                                   (exit 0) or not (exit 1).
#
# Environment
#   CHIMERA_SLURM_STATE   state directory (pids, the saved slurm.conf), default
#                         /run/chimera-slurm.
#
# Files: daemon logs in /var/log/slurm (slurmctld.log, slurmd.log, and *.console.log for their
# stdout/stderr); slurmctld's StateSaveLocation and slurmd's spool in /var/spool/chimera-slurm,
# emptied on every `up` (and slurmctld started with -c), so jobs of an earlier run never come back.
set -euo pipefail

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

STATE=${CHIMERA_SLURM_STATE:-/run/chimera-slurm}
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
SPOOL=/var/spool/chimera-slurm
PARTITION=debug
MARKER="# Written by chimera's scripts/slurm-local.sh; restored or removed by its 'down'."
UP_TIMEOUT=60
STOP_TIMEOUT=10

say() { printf 'slurm-local: %s\n' "$*"; }
note() { printf 'slurm-local: %s\n' "$*" >&2; }
die() {
    printf 'slurm-local: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'usage: %s up|down|status\n' "$0" >&2
    exit 2
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        die "must be run as root (it installs packages, writes $CONF and starts slurmctld, slurmd and munged); try: sudo $0 $1"
    fi
}

# Field 22 of /proc/PID/stat (the process's start time in clock ticks since boot): with the pid it
# names one process for good, so a recorded pid that the kernel has since given to another
# process is never mistaken for ours. Fails for a process that is gone or a zombie (the daemons
# are reparented to init once this script exits, and init may reap them late).
start_time() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    local -a f
    read -r -a f <<<"$rest"
    case "${f[0]}" in Z | X | x) return 1 ;; esac
    printf '%s\n' "${f[19]}"
}

# record NAME PID: remember that this script started PID as daemon NAME.
record() {
    local st
    st=$(start_time "$2") || die "$1 (pid $2) exited right after it started; see $LOGDIR"
    printf '%s %s\n' "$2" "$st" >"$STATE/$1.pid"
}

# ours NAME: print the pid of daemon NAME if this script started it and it is still running.
ours() {
    local file="$STATE/$1.pid" pid st comm
    [ -f "$file" ] || return 1
    read -r pid st <"$file" || return 1
    [ -n "${pid:-}" ] && [ -d "/proc/$pid" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$1" ] || return 1
    [ "$(start_time "$pid" 2>/dev/null)" = "$st" ] || return 1
    printf '%s\n' "$pid"
}

# node_state: the node's state as sinfo reports it (empty when the controller does not answer).
node_state() {
    timeout 10 sinfo -h -o %T 2>/dev/null | head -n 1 || true
}

healthy() {
    ours slurmctld >/dev/null && ours slurmd >/dev/null || return 1
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}

up_line() {
    local node cpus
    node=$(cat "$STATE/node" 2>/dev/null || hostname)
    cpus=$(cat "$STATE/cpus" 2>/dev/null || nproc)
    say "up (node $node, partition $PARTITION, $cpus CPUs)"
}

install_packages() {
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null &&
        command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    note "installing slurm-wlm and munge with apt-get"
    # Keep the packages' init scripts from starting daemons during the installation (Docker-style
    # images already ship such a policy-rc.d): this script starts the daemons itself.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    {
        apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
    } >&2 || rc=$?
    if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
    [ "$rc" = 0 ] || die "apt-get install slurm-wlm munge failed (exit $rc)"
    for cmd in sbatch slurmctld slurmd munged; do
        command -v "$cmd" >/dev/null || die "$cmd is still missing after installing slurm-wlm and munge"
    done
}

munge_works() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

start_munged() {
    if munge_works; then
        note "munged already running (not started by this script); using it"
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        note "creating /etc/munge/munge.key"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key --force
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    rm -f /run/munge/munged.pid
    # munged daemonizes itself and writes its pid file.
    su -s /bin/sh munge -c /usr/sbin/munged </dev/null >>"$LOGDIR/munged.console.log" 2>&1 9>&- ||
        die "munged did not start; see $LOGDIR/munged.console.log and /var/log/munge/munged.log"
    local i pid=""
    for ((i = 0; i < 50; i++)); do
        if munge_works && [ -s /run/munge/munged.pid ]; then
            pid=$(cat /run/munge/munged.pid)
            break
        fi
        sleep 0.2
    done
    [ -n "$pid" ] || die "munged does not answer (munge -n | unmunge); see /var/log/munge/munged.log"
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = munged ] || die "munged's pid file names pid $pid, which is not munged"
    record munged "$pid"
}

write_conf() {
    local host=$1 cpus=$2 mem=$3
    mkdir -p /etc/slurm
    if [ -e "$CONF" ] && ! grep -qxF "$MARKER" "$CONF"; then
        cp -p "$CONF" "$STATE/slurm.conf.orig"
        note "saved the existing $CONF; 'down' puts it back"
    fi
    cat >"$CONF" <<CONF
$MARKER
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$SPOOL/slurmctld.pid
SlurmdPidFile=$SPOOL/slurmd.pid
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=300
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
}

# start_daemon NAME ARGS...: start NAME in the foreground of its own session, in the background
# of this script, and record its pid.
start_daemon() {
    local name=$1
    shift
    setsid "$name" "$@" </dev/null >>"$LOGDIR/$name.console.log" 2>&1 9>&- &
    local pid=$! i comm=""
    # $! is setsid's pid, which execs the daemon (this script's children lead no process group).
    for ((i = 0; i < 50; i++)); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || die "$name exited right after it started; see $LOGDIR/$name.log and $LOGDIR/$name.console.log"
        [ "$comm" = "$name" ] && break
        sleep 0.1
    done
    [ "$comm" = "$name" ] || die "pid $pid did not become $name"
    record "$name" "$pid"
}

# stop NAME: TERM the daemon NAME if this script started it, KILL it after STOP_TIMEOUT seconds.
stop() {
    local name=$1 pid i
    pid=$(ours "$name") || return 0
    note "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        ours "$name" >/dev/null || return 0
        sleep 0.1
    done
    note "$name (pid $pid) ignored TERM for ${STOP_TIMEOUT} s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        ours "$name" >/dev/null || return 0
        sleep 0.1
    done
    note "warning: $name (pid $pid) is still there after KILL"
}

# Cancel every job of our cluster so that no slurmstepd or job process outlives it.
cancel_jobs() {
    ours slurmctld >/dev/null || return 0
    local ids i
    ids=$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ') || true
    [ -n "${ids// /}" ] || return 0
    note "cancelling jobs: $ids"
    # shellcheck disable=SC2086 # one argument per job id
    timeout 10 scancel $ids 2>/dev/null || true
    # KillWait=5: the jobs' processes get TERM, then KILL 5 s later; squeue's default listing
    # (pending, running, completing) empties once every slurmstepd is done.
    for ((i = 0; i < 30; i++)); do
        [ -z "$(timeout 10 squeue -h -o %A 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    note "warning: jobs still listed 15 s after scancel; stopping the daemons anyway"
}

cmd_down() {
    if [ ! -d "$STATE" ]; then
        say "down (nothing was running)"
        return 0
    fi
    cancel_jobs
    stop slurmd
    stop slurmctld
    stop munged
    if [ -f "$STATE/slurm.conf.orig" ]; then
        cp -p "$STATE/slurm.conf.orig" "$CONF"
    elif [ -f "$CONF" ] && grep -qxF "$MARKER" "$CONF"; then
        rm -f "$CONF"
    fi
    rm -rf "$STATE" "$SPOOL"
    say "down"
}

cmd_up() {
    if healthy; then
        note "already up (started earlier by this script)"
        up_line
        return 0
    fi
    if [ -d "$STATE" ]; then
        note "a partial or stale cluster from an earlier 'up' is there; taking it down first"
        cmd_down >&2
    fi
    install_packages
    local pid
    for d in slurmctld slurmd; do
        for pid in $(pgrep -x "$d" || true); do
            # Zombies (ours from a 'down' a moment ago, not yet reaped by init) do not count.
            if start_time "$pid" >/dev/null; then
                die "a $d this script did not start is already running (pid $pid); stop it first or use that cluster"
            fi
        done
    done

    mkdir -p "$STATE" "$LOGDIR"
    local host cpus mem_kib mem
    host=$(hostname)
    cpus=$(nproc)
    mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
    # RealMemory a bit (5 %) below MemTotal: slurmd drains a node that has less than configured.
    mem=$((mem_kib * 95 / 100 / 1024))
    printf '%s\n' "$host" >"$STATE/node"
    printf '%s\n' "$cpus" >"$STATE/cpus"

    start_munged
    rm -rf "$SPOOL"
    mkdir -p "$SPOOL/slurmctld" "$SPOOL/slurmd"
    write_conf "$host" "$cpus" "$mem"

    start_daemon slurmctld -D -c -f "$CONF"
    start_daemon slurmd -D -f "$CONF"

    local i st=""
    for ((i = 0; i < UP_TIMEOUT * 2; i++)); do
        ours slurmctld >/dev/null || die "slurmctld exited; see $LOGDIR/slurmctld.log and $LOGDIR/slurmctld.console.log"
        ours slurmd >/dev/null || die "slurmd exited; see $LOGDIR/slurmd.log and $LOGDIR/slurmd.console.log"
        st=$(node_state)
        case "$st" in
            idle) break ;;
            down* | drain* | fail*)
                timeout 10 scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
                ;;
        esac
        sleep 0.5
    done
    if [ "$st" != idle ]; then
        note "node $host is '${st:-not reported}' after ${UP_TIMEOUT} s; the daemons stay up for inspection ('$0 down' stops them)"
        timeout 10 scontrol show node "$host" >&2 2>/dev/null || true
        die "the cluster did not become ready; see $LOGDIR"
    fi
    up_line
}

cmd_status() {
    if healthy; then
        up_line
        return 0
    fi
    if [ -d "$STATE" ]; then
        local st
        st=$(node_state)
        say "not up (state in $STATE, but slurmctld and slurmd are not both running, or the node is '${st:-not reported}')"
    else
        say "down"
    fi
    return 1
}

[ $# -eq 1 ] || usage
case "$1" in
    up | down) require_root "$1" ;;
    status) ;;
    *) usage ;;
esac

# One up or down at a time (the daemons never inherit this lock: they start with fd 9 closed).
if [ "$1" != status ]; then
    mkdir -p "$(dirname "$STATE")"
    exec 9>"$STATE.lock"
    flock -w 300 9 || die "another $0 up/down is still running (lock $STATE.lock)"
fi

case "$1" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
esac
