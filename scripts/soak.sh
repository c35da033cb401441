#!/usr/bin/env bash
# `make soak`: an endurance test of chimera's store and scheduler (not part of CI).
#
# What it does
#   1. Starts `chimera emulate` on two listeners (127.0.0.1:18434 and :18435, or two free ports
#      when those are taken) with scripts/soak-profile.yaml: four models, each failing a seeded
#      5 % of its requests (503 and a dropped connection, which the manifest retries; an error
#      line and an abrupt cut mid-stream, which it does not, so those cells fail for good in
#      that run and are tried again by the next one).
#   2. Runs experiments/soak.yaml (10,008 cells: 10,000 single cells of one 8-token request,
#      8 warm-ups) with `chimera run`, sends it SIGKILL every SOAK_KILL_EVERY seconds after it
#      started and starts it again (a resume), for SOAK_MINUTES. After each kill it checks that
#      every cell directory committed before is still there.
#   3. Samples VmRSS and VmHWM (/proc/<pid>/status) and CPU time (/proc/<pid>/stat) of the
#      running `chimera run` every 0.5 s.
#   4. When the time is up: one last SIGKILL, then a final `chimera run` that runs to its end
#      (one that writes no journal line for 120 s is killed and reported as a hang), then
#      `chimera status --verify`.
#   5. Audits the store independently of chimera's code (scripts/soak_audit.py): reads every
#      cell's MANIFEST.json and checks each part's size and SHA-256, reads the journal, and
#      prints cells committed, kills survived, duplicates, lost cells, failed cells, the faults
#      the emulator injected and peak RSS in the first and last minute.
#
# Pace. The emulator's decode rate is set so that the campaign, run without interruption, would
# take about SOAK_MINUTES on its own (two listeners in parallel, 8 tokens per cell: SOAK_CELL_MS
# = 2 × SOAK_MINUTES × 60,000 / cells, 240 ms by default). Cells that took 2 ms each would have
# finished the campaign in the first two minutes and left the rest of the soak killing a process
# with nothing to do; paced, every kill lands on a run that is streaming and committing, and the
# final run finishes what the kills cost.
#
# Pass/fail. Exit 1 when a cell was committed twice (two `cell_committed` journal events for an
# id without a set-aside `.broken-`/`.forced-` copy of it between them), a cell was lost (its
# `cell_committed` event is journaled but its directory is missing or does not verify, or a
# committed directory disappeared between two kills), a committed directory was set aside as
# broken (SIGKILL must never damage a renamed cell), the cells directory holds anything but cell
# directories and accounted-for `.tmp-*`/`.broken-*`/`.forced-*`, a run ended with an exit code
# other than 0/1 or panicked, or the final run hung. Cells that failed (injected faults) are
# counted separately and are not a failure.
#
# Memory. Peak RSS is reported for the processes alive in the first and in the last minute, and
# their ratio. Each process lives at most SOAK_KILL_EVERY seconds, so a per-cell leak inside one
# process cannot grow far; what the ratio shows is memory that grows with the store at start-up.
# The plan is the same in every process; what legitimately grows is the resume scan's working
# set (the committed ids and, in this version, every cell's part list, which the scan's threads'
# malloc arenas keep: about 0.7 KB per committed cell, ≈ 7 MB at 10,000 cells on a process of
# ~28 MB, ≈ 1.25 ×). A last-minute peak above 1.5 × the first minute's is more than the store's
# size explains and prints a WARNING line. It is a warning and not a failure: RSS depends on
# the allocator's arenas, the number of blocking-pool threads and, on a shared machine, page
# reclaim, so a hard threshold would flake; the figures are printed for review, and the final
# run (never killed) shows the peak of one long-lived process beside them.
#
# Settings (environment): SOAK_MINUTES (20), SOAK_KILL_EVERY (30 s), SOAK_CELLS (10000, rounded
# up to a multiple of 40), SOAK_CELL_MS (derived, see Pace), SOAK_DIR (target/soak, emptied at
# start and kept afterwards for inspection), SOAK_PORTS ("18434 18435"). Usage:
# scripts/soak.sh [BIN] (default target/release/chimera). Every process it starts is stopped on
# exit, Ctrl-C included.
set -uo pipefail

BIN=${1:-target/release/chimera}
MINUTES=${SOAK_MINUTES:-20}
KILL_EVERY=${SOAK_KILL_EVERY:-30}
CELLS=${SOAK_CELLS:-10000}
DIR=${SOAK_DIR:-target/soak}
PORTS=${SOAK_PORTS:-18434 18435}
CAMPAIGN=soak

die() { echo "soak: $*" >&2; exit 2; }
is_num() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }
is_num "$MINUTES" || die "SOAK_MINUTES must be a positive integer (minutes), got '$MINUTES'"
is_num "$KILL_EVERY" || die "SOAK_KILL_EVERY must be a positive integer (seconds), got '$KILL_EVERY'"
is_num "$CELLS" || die "SOAK_CELLS must be a positive integer, got '$CELLS'"
read -r PORT_A PORT_B _ <<< "$PORTS"
[[ ${PORT_A:-} =~ ^[0-9]+$ && ${PORT_B:-} =~ ^[0-9]+$ ]] || die "SOAK_PORTS must be two ports, got '$PORTS'"
[ -x "$BIN" ] || die "no chimera binary at $BIN (make release)"
command -v python3 > /dev/null || die "python3 is needed for the audit (scripts/soak_audit.py)"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# 4 models × 2 endpoints × 5 repetitions = 40 cells per top_k value.
TOPK=$(((CELLS + 39) / 40))
CELLS=$((TOPK * 40))
SECONDS_TOTAL=$((MINUTES * 60))
CELL_MS=${SOAK_CELL_MS:-$((2 * SECONDS_TOTAL * 1000 / CELLS))}
is_num "$CELL_MS" || die "SOAK_CELL_MS must be a positive integer (ms), got '$CELL_MS'"
TOK_S=$(awk -v ms="$CELL_MS" 'BEGIN { printf "%.3f", 8000 / ms }')

case $DIR in /|"") die "refusing SOAK_DIR='$DIR'";; esac
rm -rf "$DIR"
mkdir -p "$DIR/logs"
DIR=$(cd "$DIR" && pwd)
DATA=$DIR/data
MANIFEST=$DIR/soak.yaml
PROFILE=$DIR/profile.yaml

EMU_PID=
RUN_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2> /dev/null; then
    kill -9 "$RUN_PID" 2> /dev/null
    wait "$RUN_PID" 2> /dev/null
  fi
  if [ -n "$EMU_PID" ] && kill -0 "$EMU_PID" 2> /dev/null; then
    kill "$EMU_PID" 2> /dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$EMU_PID" 2> /dev/null || break; sleep 0.2; done
    kill -9 "$EMU_PID" 2> /dev/null
    wait "$EMU_PID" 2> /dev/null
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

now_us() { echo "${EPOCHREALTIME/./}"; }

# The profile with the pace; the manifest with the cell count (and the ports, below).
sed -E "s/^([[:space:]]*output_tok_s:).*/\1 $TOK_S/" "$HERE/soak-profile.yaml" > "$PROFILE"
[ "$(grep -c "output_tok_s: $TOK_S\$" "$PROFILE")" -eq 4 ] || die "could not set the pace in $PROFILE"

start_emulator() {
  : > "$DIR/emulator.addrs"
  "$BIN" emulate --listen "127.0.0.1:$1" --listen "127.0.0.1:$2" --profile "$PROFILE" \
    --truth "$DIR/truth.jsonl" > "$DIR/emulator.addrs" 2>> "$DIR/emulator.log" &
  EMU_PID=$!
  for _ in $(seq 100); do
    [ "$(wc -l < "$DIR/emulator.addrs")" -ge 2 ] && return 0
    kill -0 "$EMU_PID" 2> /dev/null || { wait "$EMU_PID" 2> /dev/null; EMU_PID=; return 1; }
    sleep 0.1
  done
  die "the emulator did not start (see $DIR/emulator.log)"
}
if ! start_emulator "$PORT_A" "$PORT_B"; then
  echo "soak: 127.0.0.1:$PORT_A or :$PORT_B is taken; using two free ports instead" >&2
  start_emulator 0 0 || die "the emulator did not start (see $DIR/emulator.log)"
fi
mapfile -t ADDRS < "$DIR/emulator.addrs"
sed -E -e "s#http://127\.0\.0\.1:18434#http://${ADDRS[0]}#" -e "s#http://127\.0\.0\.1:18435#http://${ADDRS[1]}#" \
  -e "s/^([[:space:]]*top_k:).*/\1 [$(seq -s ', ' 1 "$TOPK")]/" "$ROOT/experiments/soak.yaml" > "$MANIFEST"

"$BIN" validate "$MANIFEST" > /dev/null || die "the soak manifest does not validate"
"$BIN" plan "$MANIFEST" --format json > "$DIR/plan.json" || die "the soak manifest does not plan"
PLANNED=$(grep -c '"kind":"\(warmup\|single\)"' "$DIR/plan.json")

echo "soak: $CELLS single cells + warm-ups ($PLANNED planned) against the emulator on ${ADDRS[*]}"
echo "soak: SIGKILL every ${KILL_EVERY} s for ${MINUTES} min; ${CELL_MS} ms per cell (emulator ${TOK_S} tok/s × 8 tokens); faults on 5 % of requests"
echo "soak: data, logs and samples in $DIR"

committed_ids() {
  find "$DATA/$CAMPAIGN/cells" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
    -regex '.*/[0-9a-f]{32}' -printf '%f\n' 2> /dev/null | sort
}
set_aside_ids() {
  find "$DATA/$CAMPAIGN/cells" -mindepth 1 -maxdepth 1 -regextype posix-extended \
    -regex '.*/\.(broken|forced)-[0-9a-f]{32}-.*' -printf '%f\n' 2> /dev/null | cut -d- -f2 | sort -u
}

# Runs `chimera run` once, sampling its memory; kills it at `$2` (µs since the epoch) unless it
# ends first (an empty `$2`: only when it hangs). Sets RUN_RC, RUN_KILLED and RUN_HUNG.
HANG_S=120
SOAK_T0=
run_once() {
  local n=$1 deadline=$2 phase=$3 rss hwm cpu stat size last_size=-1 quiet_since
  "$BIN" run "$MANIFEST" --data "$DATA" --campaign "$CAMPAIGN" \
    > /dev/null 2> "$DIR/logs/run-$(printf %03d "$n").log" &
  RUN_PID=$!
  RUN_KILLED=0
  RUN_HUNG=0
  quiet_since=$(now_us)
  while :; do
    rss= hwm= cpu= stat=()
    # State (field 3) and utime + stime (fields 14 and 15) of /proc/<pid>/stat; gone or a
    # zombie (ended, not yet waited for): the run is over.
    if read -r -a stat 2> /dev/null < "/proc/$RUN_PID/stat" && [ ${#stat[@]} -ge 15 ]; then
      case ${stat[2]} in Z | X | x) break ;; esac
      cpu=$((stat[13] + stat[14]))
    elif ! kill -0 "$RUN_PID" 2> /dev/null; then
      break
    else
      echo "run $n: /proc/$RUN_PID/stat unreadable (${stat[*]:-nothing read})" >> "$DIR/sampler.log"
      cpu=0
    fi
    # One read() of the whole file: bash's `read` takes a /proc file in pieces, and lines
    # shift between them as the values change.
    read -r rss hwm < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' \
      "/proc/$RUN_PID/status" 2> /dev/null)
    if [ -n "$rss" ]; then
      printf '%s\t%s\t%d\t%s\t%s\t%s\n' "$phase" "$n" "$((($(now_us) - SOAK_T0) / 1000))" "$rss" "$hwm" "$cpu" >> "$DIR/rss.tsv"
    else
      echo "run $n: no VmRSS in /proc/$RUN_PID/status (state ${stat[2]})" >> "$DIR/sampler.log"
    fi
    if [ -n "$deadline" ] && (($(now_us) >= deadline)); then
      kill -9 "$RUN_PID" 2> /dev/null
      break
    fi
    # The final run is never killed on time, only when it has stopped making progress: no
    # journal line for HANG_S seconds (a cell's worst case here is 3 attempts of 10 s).
    if [ -z "$deadline" ]; then
      size=$(stat -c %s "$DATA/$CAMPAIGN/journal.jsonl" 2> /dev/null || echo 0)
      if [ "$size" != "$last_size" ]; then
        last_size=$size
        quiet_since=$(now_us)
      elif (($(now_us) - quiet_since > HANG_S * 1000000)); then
        echo "soak: run $n wrote nothing to the journal for ${HANG_S} s: a hang; killing it" >&2
        kill -9 "$RUN_PID" 2> /dev/null
        RUN_HUNG=1
        break
      fi
    fi
    sleep 0.5
  done
  # (Braces: the shell's "Killed" notice goes to /dev/null, not into the soak's output.)
  { wait "$RUN_PID"; } 2> /dev/null
  RUN_RC=$?
  RUN_PID=
  ((RUN_RC == 137)) && RUN_KILLED=1
}

tmp_dirs() {
  find "$DATA/$CAMPAIGN/cells" -mindepth 1 -maxdepth 1 -name '.tmp-*' -printf '%f\n' 2> /dev/null | sort
}

# One run and what it left: the committed directories (none may disappear), the `.tmp-*` of
# earlier runs (the run's open must have removed them), a line in runs.tsv and one on stdout.
# `$1` run number, `$2` phase (soak or final), `$3` kill deadline (µs; empty: none).
step() {
  local n=$1 phase=$2 deadline=$3 start end gone stale committed how
  tmp_dirs > "$DIR/tmp.before"
  start=$(now_us)
  run_once "$n" "$deadline" "$phase"
  end=$(now_us)
  committed_ids > "$DIR/committed.now"
  gone=$(comm -23 "$DIR/committed.prev" "$DIR/committed.now" | comm -23 - <(set_aside_ids) \
    | tee -a "$DIR/disappeared.txt" | wc -l)
  stale=$(comm -12 "$DIR/tmp.before" <(tmp_dirs) | tee -a "$DIR/stale-tmp.txt" | wc -l)
  mv "$DIR/committed.now" "$DIR/committed.prev"
  committed=$(wc -l < "$DIR/committed.prev")
  printf '%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n' "$n" "$phase" "$(((start - SOAK_T0) / 1000))" \
    "$(((end - SOAK_T0) / 1000))" "$RUN_RC" "$RUN_KILLED" "$RUN_HUNG" "$committed" "$gone" "$stale" >> "$DIR/runs.tsv"
  if ((RUN_HUNG)); then how="HUNG, killed after $(((end - start) / 1000000)) s"
  elif ((RUN_KILLED)); then how="killed after $(((end - start) / 1000000)) s"
  else how="exited $RUN_RC after $(((end - start) / 1000000)) s"; fi
  printf 'soak: %5.1f min  %-5s run %3d  %-28s %6d committed%s%s\n' \
    "$(awk -v t="$(((end - SOAK_T0) / 1000))" 'BEGIN { print t / 60000 }')" "$phase" "$n" "$how" "$committed" \
    "$( ((gone)) && echo "  $gone DISAPPEARED")" "$( ((stale)) && echo "  $stale stale .tmp-*")"
}

printf 'run\tphase\tstart_ms\tend_ms\trc\tkilled\thung\tcommitted_after\tdisappeared\tstale_tmp\n' > "$DIR/runs.tsv"
printf 'phase\trun\tt_ms\tvmrss_kb\tvmhwm_kb\tcpu_ticks\n' > "$DIR/rss.tsv"
: > "$DIR/committed.prev"
SOAK_T0=$(now_us)
END=$((SOAK_T0 + SECONDS_TOTAL * 1000000))
n=0
complete=0
bad_exits=0
while (($(now_us) < END)); do
  n=$((n + 1))
  deadline=$(($(now_us) + KILL_EVERY * 1000000))
  ((deadline > END)) && deadline=$END
  step "$n" soak "$deadline"
  ((RUN_KILLED)) && continue
  case $RUN_RC in
    0) complete=1; echo "soak: the campaign completed before the time was up"; break ;;
    1) ;;  # cells failed (injected faults): the next run tries them again
    *) bad_exits=$((bad_exits + 1))
       echo "soak: run $n exited $RUN_RC:" >&2; tail -5 "$DIR/logs/run-$(printf %03d "$n").log" >&2
       ((bad_exits >= 3)) && { echo "soak: stopping after 3 unexpected exits" >&2; break; }
       sleep 1 ;;
  esac
done
SOAK_MS=$((($(now_us) - SOAK_T0) / 1000))

# The final run: to its end (killed only when it stops making progress).
if ((!complete)); then
  n=$((n + 1))
  echo "soak: time is up; a final run to the end ..."
  step "$n" final ""
fi

"$BIN" status --data "$DATA" --campaign "$CAMPAIGN" --verify > "$DIR/status.txt" 2> "$DIR/status.err"
status_rc=$?
# The emulator is not needed any more; its truth log is complete once it has stopped.
kill "$EMU_PID" 2> /dev/null
wait "$EMU_PID" 2> /dev/null
EMU_PID=

echo
python3 "$HERE/soak_audit.py" --dir "$DIR" --campaign "$CAMPAIGN" --soak-ms "$SOAK_MS" \
  --kill-every "$KILL_EVERY" --cells "$CELLS" --status-rc "$status_rc" \
  --clk-tck "$(getconf CLK_TCK)"
