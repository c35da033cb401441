#!/usr/bin/env bash
# Generates a manifest of >= 1,000,000 cells and measures `chimera plan --format json` on it:
# wall time and peak resident memory (GNU time), three runs. Usage: bench-plan.sh [BIN]
set -euo pipefail
bin=${1:-target/release/chimera}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
list() { seq -s ', ' "$@"; }
cat > "$dir/bench.yaml" <<YAML
# yaml-language-server: \$schema=../schemas/manifest.schema.json
# 50 num_gpu x 40 num_ctx x 20 temperatures x 5 top_k = 200,000 configurations x 5 repetitions
format: 1
report: TR999
title: plan benchmark (1,000,000 single cells)
endpoints:
  - {id: ollama, kind: ollama, url: "http://127.0.0.1:11434", resource: "local:gpu0"}
models:
  - {id: gemma3, tag: "gemma3:latest"}
workloads:
  - id: prompts
    task: {kind: single_inference, prompts: ["Give a battle quote for a co-op shooter win."]}
scenarios:
  - id: single
    kind: single
    agents: [{id: client, role: client, endpoint: ollama}]
repetitions: 5
order: {mode: interleaved, shuffle_seed: 42}
matrix:
  - workload: prompts
    scenario: single
    model: gemma3
    apply_to: [client]
    id_template: "g{num_gpu}_c{num_ctx}_t{temperature:p}_k{top_k}"
    axes:
      num_gpu: [$(list 1 50)]
      num_ctx: [$(list 256 256 10240)]
      temperature: [$(seq -s ', ' 0.05 0.05 1.0)]
      top_k: [10, 20, 40, 80, 160]
YAML
"$bin" plan "$dir/bench.yaml" | head -12
echo
if [ -x /usr/bin/time ]; then
  for i in 1 2 3; do
    /usr/bin/time -f "run $i: %e s wall, %U s user, %M KiB peak RSS" "$bin" plan "$dir/bench.yaml" --format json > /dev/null
  done
else
  echo "GNU time (/usr/bin/time) is missing: apt-get install time" >&2
  for i in 1 2 3; do ( TIMEFORMAT="run $i: %R s wall"; time "$bin" plan "$dir/bench.yaml" --format json > /dev/null ); done
fi
