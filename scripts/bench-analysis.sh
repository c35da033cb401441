#!/usr/bin/env bash
# `make bench-analysis`: chimera's analysis at scale against DuckDB on the same files.
#
# 1. The dataset: `cargo bench --bench analysis` generates, once, a campaign of 1,000 cells and
#    10,000,000 request rows under target/bench-analysis/data/scale/ (benches/analysis.rs) and
#    reuses it when complete.
# 2. DuckDB from PyPI, pinned (DUCKDB_VERSION), in a venv under target/bench-analysis/venv.
# 3. `chimera analyze` (release build) on the campaign, and scripts/bench_analysis_duckdb.py
#    computing the per-configuration n, mean, SD, p50/p95/p99 and 95 % CI of throughput and
#    TTFT from the same Parquet files, each timed as the wall clock of the whole command, best
#    of RUNS (3); chimera's peak RSS from GNU time (%M), the largest of its runs.
# 4. The agreement check (chimera's analysis/summary.parquet vs DuckDB; exit 1 on any
#    disagreement), then the figures; the last line is `analysis vs duckdb: R×` with
#    R = chimera's best time / DuckDB's best time.
# Usage: bench-analysis.sh [BIN]
set -euo pipefail
bin=${1:-target/release/chimera}
root=${CHIMERA_BENCH_ANALYSIS_DIR:-target/bench-analysis}
venv=$root/venv
runs=${RUNS:-3}
duckdb_version=${DUCKDB_VERSION:-1.4.4}

if ! "$venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$duckdb_version')" 2>/dev/null; then
  echo "installing duckdb==$duckdb_version into $venv …"
  python3 -m venv "$venv" || { echo "bench-analysis: cannot create $venv (Debian: apt-get install python3-venv)" >&2; exit 2; }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "duckdb==$duckdb_version"
fi

CHIMERA_BENCH_ANALYSIS_DIR=$root cargo bench --bench analysis | tee "$root/generate.log"
campaign=$(tail -n 1 "$root/generate.log")
data=$(dirname "$campaign")
name=$(basename "$campaign")
test -f "$campaign/campaign.json" || { echo "bench-analysis: no campaign at $campaign" >&2; exit 2; }
rows=$(grep -o '= [0-9]* rows' "$root/generate.log" | head -n 1 | tr -dc 0-9)
if [ ! -x /usr/bin/time ]; then
  echo "bench-analysis: GNU time (/usr/bin/time) is needed for the peak RSS (apt-get install time)" >&2
  exit 2
fi

# Runs "$@" RUNS times; prints "best_seconds max_rss_kib".
timed() {
  local best="" rss=0 t0 t1 s m
  for i in $(seq "$runs"); do
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$root/time.out" "$@" > "$root/run.out"
    t1=$(date +%s.%N)
    s=$(echo "$t1 - $t0" | bc -l)
    m=$(tail -n 1 "$root/time.out")
    echo "  run $i: $(printf '%.2f' "$s") s, peak RSS $((m / 1024)) MiB" >&2
    if [ -z "$best" ] || [ "$(echo "$s < $best" | bc -l)" = 1 ]; then best=$s; fi
    if [ "$m" -gt "$rss" ]; then rss=$m; fi
  done
  echo "$best $rss"
}

echo "chimera analyze --data $data --campaign $name ($runs runs):"
read -r c_s c_rss < <(timed "$bin" analyze --data "$data" --campaign "$name")
echo "DuckDB $duckdb_version, scripts/bench_analysis_duckdb.py ($runs runs):"
read -r d_s d_rss < <(timed "$venv/bin/python" scripts/bench_analysis_duckdb.py "$campaign")
"$venv/bin/python" scripts/bench_analysis_duckdb.py "$campaign" --compare "$campaign/analysis/summary.parquet"

printf 'request rows: %s in %s cells\n' "$rows" "$(ls "$campaign/cells" | wc -l)"
printf 'chimera analyze: %.2f s (best of %s), peak RSS %d MiB (target < 2048)\n' "$c_s" "$runs" $((c_rss / 1024))
printf 'DuckDB:          %.2f s (best of %s), peak RSS %d MiB\n' "$d_s" "$runs" $((d_rss / 1024))
printf 'analysis vs duckdb: %.2f×\n' "$(echo "$c_s / $d_s" | bc -l)"
