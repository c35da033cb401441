#!/usr/bin/env bash
# `make originals`: imports the original reports' raw results, analyses and reports all nine
# (TR108-TR116), and prints one line per report: reproduced / not reproduced / not measured.
#
#   FIXTURES=DIR          a folder with one folder per report: tr108/ tr109/ tr110/ tr111_v2/
#                         tr113/ (or Demo_rust_multiagent_results/) tr114_v2/ tr115_v2/ tr116/;
#                         TR112 is imported from its tr109/ and tr111_v2/
#   CHIMERAFORGE_GIT=DIR  a clone of the original repository instead (read with --git, no
#                         checkout: every report at the commit that holds its raw results)
#   BIN, DATA             the chimera binary and the data directory (default data/originals)
# A failed import is named on its report's line and makes the script exit 1 after every
# report's line is printed. Needs bash 4 (associative arrays).
set -uo pipefail
BIN=${BIN:-target/release/chimera}
DATA=${DATA:-data/originals}
REPORTS=(TR108 TR109 TR110 TR111 TR112 TR113 TR114 TR115 TR116)
declare -A missing=()
failed=0
mkdir -p "$DATA"

if [ -n "${CHIMERAFORGE_GIT:-}" ]; then
  "$BIN" import chimeraforge --git "$CHIMERAFORGE_GIT" --data "$DATA" > "$DATA/import.log"
  rc=$?
  # The per-report lines of the --git import (imported / FAILED with the reason).
  sed -n '/^reports from/,$p' "$DATA/import.log"
  [ "$rc" -eq 0 ] || { echo "originals: nothing imported from $CHIMERAFORGE_GIT (see $DATA/import.log)" >&2; exit "$rc"; }
  for r in "${REPORTS[@]}"; do
    grep -Eq "^  $r +FAILED" "$DATA/import.log" && missing[$r]="not imported from $CHIMERAFORGE_GIT (see $DATA/import.log)"
  done
else
  F=${FIXTURES:-}
  if [ -z "$F" ] || [ ! -d "$F" ]; then
    echo "originals: no raw results at '${F}'; set FIXTURES=DIR or CHIMERAFORGE_GIT=DIR" >&2
    exit 2
  fi
  : > "$DATA/import.log"
  for r in "${REPORTS[@]}"; do
    [ "$r" = TR112 ] && continue
    low=$(echo "$r" | tr 'A-Z' 'a-z')
    dir=
    for cand in "$F/$low" "$F/${low}_v2" "$F/${low}_v1"; do
      [ -d "$cand" ] && { dir=$cand; break; }
    done
    [ "$r" = TR113 ] && [ -z "$dir" ] && [ -d "$F/Demo_rust_multiagent_results" ] && dir="$F/Demo_rust_multiagent_results"
    if [ -z "$dir" ]; then
      extra=; [ "$r" = TR113 ] && extra=" or $F/Demo_rust_multiagent_results/"
      missing[$r]="no raw data in $F (expected $F/$low/ or $F/${low}_v2/$extra)"
      continue
    fi
    echo "== $r from $dir" >> "$DATA/import.log"
    if ! "$BIN" import chimeraforge "$dir" --report "$r" --data "$DATA" >> "$DATA/import.log" 2>&1; then
      missing[$r]="the import of $dir failed (see $DATA/import.log)"
      failed=1
    fi
  done
  if [ -z "${missing[TR109]:-}" ] && [ -z "${missing[TR111]:-}" ]; then
    echo "== TR112 from $F" >> "$DATA/import.log"
    if ! "$BIN" import chimeraforge "$F" --report TR112 --data "$DATA" >> "$DATA/import.log" 2>&1; then
      missing[TR112]="the import failed (see $DATA/import.log)"
      failed=1
    fi
  else
    missing[TR112]="needs the raw data of TR109 and TR111_v2"
  fi
fi

"$BIN" analyze --data "$DATA" > "$DATA/analyze.txt" || exit $?
"$BIN" report --data "$DATA" > "$DATA/reports.txt" || exit $?

# One line per report, from its own campaign's analysis (chimeraforge-trNNN).
echo
echo "originals: the published numbers of each report against its raw data (details: $DATA/analyze.txt; reports: $DATA/reports.txt)"
for r in "${REPORTS[@]}"; do
  if [ -n "${missing[$r]:-}" ]; then
    printf '  %-6s not measured: %s\n' "$r" "${missing[$r]}"
    continue
  fi
  low=$(echo "$r" | tr 'A-Z' 'a-z')
  line=$(awk -v want="chimeraforge-$low" -v rep="$r" '
    /^TR[0-9]+/ { split($1, a, "_"); cur = (a[1] == rep && $4 == want) }
    cur && /^  verdicts:/ { sub(/^  verdicts: /, ""); print; exit }' "$DATA/analyze.txt")
  printf '  %-6s %s\n' "$r" "${line:-no verdicts found in $DATA/analyze.txt}"
done
exit "$failed"
