#!/usr/bin/env bash
# GPU telemetry verification on a machine with an NVIDIA GPU (run from the repository root).
# Uses a prebuilt binary ($CHIMERA, default target/release/chimera) and python3 with PyTorch for
# the GPU load. Writes everything it measured under $OUT (default ./gpu-verify-out):
#   probe.txt            `chimera telemetry probe`
#   idle.log, load.log   campaign logs without and with a bf16 matmul load on the GPU
#   data/                the two campaigns' Parquet parts
set -uo pipefail
CHIMERA=${CHIMERA:-target/release/chimera}
OUT=${OUT:-gpu-verify-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,uuid,driver_version,power.draw,utilization.gpu --format=csv > "$OUT/nvidia-smi.csv" 2>&1
"$CHIMERA" telemetry probe > "$OUT/probe.txt" 2>&1; echo "probe exit $?" >> "$OUT/probe.txt"

work=$(mktemp -d)
cat > "$work/profile.yaml" <<'YAML'
seed: 1
shared_gpu: true
models:
  - name: gemma3:270m
    load_ms: 50
    prompt_tok_s: 50000
    output_tok_s: 100
    output_tokens: 150
YAML
"$CHIMERA" emulate --listen 127.0.0.1:0 --profile "$work/profile.yaml" > "$work/addr" 2>"$OUT/emulator.err" &
EMU=$!
sleep 1
ADDR=$(head -1 "$work/addr")
cat > "$work/gpu.yaml" <<YAML
format: 1
report: TR990
title: GPU telemetry verification (emulator load generator, not an LLM)
endpoints:
  - {id: emu, kind: emulator, url: "http://$ADDR", resource: "local:gpu0"}
models:
  - {id: m, tag: "gemma3:270m"}
workloads:
  - id: w
    task: {kind: single_inference, prompts: ["telemetry check one", "telemetry check two"]}
scenarios:
  - id: s
    kind: single
    agents: [{id: client, role: client, endpoint: emu}]
repetitions: 4
telemetry: {source: nvml, period_ms: 100}
matrix:
  - workload: w
    scenario: s
    model: m
    apply_to: [client]
    axes: {temperature: [0.1, 0.2]}
YAML
echo "== idle ==" ; "$CHIMERA" run "$work/gpu.yaml" --data "$OUT/data" --campaign idle --no-cache > "$OUT/idle.log" 2>&1; echo "idle exit $?" >> "$OUT/idle.log"
python3 - > "$OUT/load.py.log" 2>&1 <<'PY' &
import time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
t0 = time.time(); n = 0
while time.time() - t0 < 45:
    c = a @ b; n += 1
    if n % 50 == 0: torch.cuda.synchronize()
torch.cuda.synchronize()
print("matmuls", n, "seconds", time.time() - t0)
PY
LOAD=$!
sleep 8
echo "== load ==" ; "$CHIMERA" run "$work/gpu.yaml" --data "$OUT/data" --campaign load --no-cache > "$OUT/load.log" 2>&1; echo "load exit $?" >> "$OUT/load.log"
wait $LOAD
kill $EMU 2>/dev/null
"$CHIMERA" compact --data "$OUT/data" --campaign idle > /dev/null 2>&1
"$CHIMERA" compact --data "$OUT/data" --campaign load > /dev/null 2>&1
# One idle and one loaded cell's parts, flat (enough to read the figures back elsewhere).
mkdir -p "$OUT/parts"
for c in idle load; do
  d=$(ls -d "$OUT/data/$c/cells"/*/ | while read -r x; do grep -q '"kind": *"single"' "$x/MANIFEST.json" && echo "$x"; done | head -1)
  cp "$d/cells.parquet" "$OUT/parts/$c-cells.parquet"
  cp "$d/telemetry.parquet" "$OUT/parts/$c-telemetry.parquet"
done
rm -rf "$OUT/data"
nvidia-smi --query-gpu=name,power.draw,utilization.gpu --format=csv >> "$OUT/nvidia-smi.csv" 2>&1
echo done
