#!/usr/bin/env bash
# The end of `make demo` and `make demo-languages`: analyses campaign CAMPAIGN under DATA,
# writes and names its report, and, when cells were adopted from the shared cache (earlier
# measurements: `chimera analyze` prints a "cells: ... adopted from the shared cache" line per
# report), says so; its last line always says how to measure afresh.
#
#   scripts/demo-tail.sh BIN DATA CAMPAIGN TARGET
set -euo pipefail
bin=$1 data=$2 campaign=$3 target=$4
summary=$("$bin" analyze --data "$data" --campaign "$campaign")
"$bin" report --data "$data" --campaign "$campaign" --format markdown,html | sed 's/^/report: /'
adopted=$(printf '%s\n' "$summary" | grep 'adopted from the shared cache' || true)
if [ -n "$adopted" ]; then
  printf '%s\n' "$adopted" | sed "s/^ *cells: /$target: cells: /"
  echo "$target: adopted cells were measured earlier, by another run, and taken from the shared cache ($data/.cache), not measured now; the report's Method section says by which campaign and when. To measure every cell afresh: make $target RUN_FLAGS='--force all'"
else
  # A second `make` resumes: every committed cell is kept and nothing is measured again.
  echo "$target: the cells above were measured by campaign $campaign (running this again resumes it and measures nothing new). To measure every cell afresh: make $target RUN_FLAGS='--force all'"
fi
