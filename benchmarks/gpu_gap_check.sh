#!/usr/bin/env bash
# Why did scripts measure less than the refilled database (verify on 4 GPUs: median 0.72x)?
# On ONE GPU, with nothing else running: one sweep by `agent search`, then the generated script's
# --benchmark for the same task, so their baselines and speedups can be compared directly.
set -euo pipefail
source benchmarks/gpu_setup.sh
export CUDA_VISIBLE_DEVICES=0
python3 -m agent.cli search --model SD1.5 --sampler DDIM --steps 25 --accelerators DeepCache --engines eager,graph \
  --device cuda --dtype float16 --max-rounds 6 --db "$out/gap.json" 2>&1 | grep -v "kept in float32" | tail -3
python3 -m agent.cli generate "SD1.5 DDIM 25 steps DeepCache 3x" --db "$out/gap.json" -o "$out/gap_script.py" \
  --no-live-search | tail -12
weights=$(python3 -c 'from tools.validate import saved_pipeline; print(saved_pipeline("SD1.5", "full"))' | tail -1)
python3 "$out/gap_script.py" --model-path "$weights" --benchmark --output "$out/gap.png" \
  2>&1 | grep -v "kept in float32" | tee "$out/gap_script.json"
python3 - "$out/gap.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); s = d["sweeps"][0]
print("search baseline median", s["baseline_latency_s"])
for c in s["candidates"]:
    print(c["engine"], c["params"], c["speedup"], c["speedup_interval"], c["latency_s"])
PY
