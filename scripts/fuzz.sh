#!/usr/bin/env bash
# `make fuzz`: builds the cargo-fuzz targets of fuzz/ (nightly, libFuzzer, no sanitizer: the
# crate forbids `unsafe`, so a panic is the bug to find; debug assertions and overflow checks
# are on) and runs each for FUZZ_SECONDS, one after the other, starting from the committed
# seeds (fuzz/seeds/<target>/) and the crash regressions (fuzz/regressions/<target>/), growing
# fuzz/corpus/<target>/ (not committed). Prints one row per target and exits 1 when any target
# left a crash, timeout or out-of-memory file in fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS=120   seconds per target
#   FUZZ_TARGETS="..." targets to run (default: every target of fuzz/Cargo.toml)
#   FUZZ_TOOLCHAIN=nightly
#
# A failure: `fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>` replays it; minimise
# it with `cargo +nightly fuzz tmin -s none <target> <file>`, fix the bug, and commit the
# minimised file to fuzz/regressions/<target>/ (tests/fuzz_regressions.rs replays it in
# `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-120}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^chimera-fuzz$')
targets=${FUZZ_TARGETS:-$all}

# -max_len per target: room for the largest seed and then some.
max_len() {
  case $1 in
    manifest | import) echo 65536 ;;
    ollama_stream | openai_stream | journal) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

if ! cargo "+$toolchain" fuzz --version > /dev/null 2>&1; then
  echo "fuzz: needs cargo-fuzz and the $toolchain toolchain: cargo install cargo-fuzz --locked" >&2
  exit 2
fi
echo "fuzz: building the targets ($toolchain, libFuzzer, no sanitizer)" >&2
cargo "+$toolchain" fuzz build -s none >&2
bin=fuzz/target/x86_64-unknown-linux-gnu/release

# The import and journal targets write small files: keep them in memory.
tmp=$(mktemp -d "${FUZZ_TMPDIR:-/dev/shm}/chimera-fuzz.XXXXXX" 2> /dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p fuzz/logs

rows=()
total_execs=0
failed=0
for t in $targets; do
  corpus=fuzz/corpus/$t
  artifacts=fuzz/artifacts/$t
  log=fuzz/logs/$t.log
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus" "fuzz/seeds/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  echo "fuzz: $t for ${seconds}s (log: $log)" >&2
  stamp=$tmp/stamp-$t
  touch "$stamp"
  start=$(date +%s)
  set +e
  TMPDIR=$tmp "$bin/$t" "${dirs[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" > "$log" 2>&1
  rc=$?
  set -e
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ -z "$execs" ]; then
    # No final stats (killed): the last progress line's count.
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  fi
  execs=${execs:-0}
  fails=$(find "$artifacts" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  if [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
    fails=1 # it stopped without leaving a file: count it, the log says why
  fi
  corp=$(find "$corpus" -type f | wc -l)
  rows+=("$(printf '%-15s %8s %14s %10s %8s %9s' "$t" "$secs" "$execs" "$((execs / (secs > 0 ? secs : 1)))" "$corp" "$fails")")
  total_execs=$((total_execs + execs))
  [ "$fails" -gt 0 ] && failed=$((failed + fails))
done

printf '%-15s %8s %14s %10s %8s %9s\n' target seconds executions execs/s corpus failures
for r in "${rows[@]}"; do echo "$r"; done
printf '%-15s %8s %14s %10s %8s %9s\n' total "" "$total_execs" "" "" "$failed"
if [ "$failed" -gt 0 ]; then
  echo "fuzz: $failed failure(s): see fuzz/artifacts/<target>/ and fuzz/logs/<target>.log" >&2
  exit 1
fi
