#!/usr/bin/env bash
# Why did two grid workers on one H200 x2 host measure SD1.5's eager baseline 30-50% slow
# (refill_h200x2_10.log against verify_h200x2_7.*)? One call on a two-GPU machine, five arms in turn,
# each its own database under $OUT, the same short sweeps (SD1.5 DDIM 20 T-Gate, ToMe):
#   1 alone      one process, in-process sweep (no Dask), the host to itself
#   2 dask-idle  a two-worker Dask cluster with one sweep: Dask, but the other worker idle
#   3 two-procs  two plain processes, one GPU each, taking turns by the host lock: sharing, no Dask
#   4 dask-two   a two-worker grid, both busy: what the refill did
#   5 alone-end  arm 1 again, for drift over the call
# If only 3 and 4 are slow, sharing the host is the cause; if 2 and 4, Dask; if all, that host.
# The refill ran before workers started with search/distributed.py `WORKER_DASK_CONFIG` (Dask's
# nanny had set MALLOC_TRIM_THRESHOLD_, +19% on a tiny CPU baseline: worker_env_cpu.json); if arms
# 2-4 now match arm 1, `by_current_protocol` can accept sweeps of shared hosts measured since.
#
#   bash benchmarks/gpu_shared_host_check.sh            # on nvidia-h200-x2, about 8 minutes
#   bash benchmarks/gpu_shared_host_check.sh --tiny --device cpu --dtype float32 --engines eager   # plumbing, CPU
set -euo pipefail
source benchmarks/gpu_setup.sh
sweep=(python3 -m agent.cli search --model SD1.5 --sampler DDIM --steps 20 --weights random --device cuda
       --dtype float16 --engines eager,graph --max-rounds 4 --prompts 1)
quiet() { grep --line-buffered -E "measured|sweeps in|rror" || true; }

echo "== 1 alone"
CUDA_VISIBLE_DEVICES=0 "${sweep[@]}" --accelerators T-Gate --db "$out/1_alone.json" "$@" 2>&1 | quiet
echo "== 2 dask-idle"
"${sweep[@]}" --accelerators T-Gate --gpus 2 --db "$out/2_dask_idle.json" "$@" 2>&1 | quiet
echo "== 3 two-procs"
for gpu in 0 1; do
  accelerators=$([ "$gpu" = 0 ] && echo T-Gate || echo ToMe)
  CUDA_VISIBLE_DEVICES=$gpu DIFFACCEL_CONCURRENT=2 "${sweep[@]}" --accelerators "$accelerators" \
    --db "$out/3_two_procs.json" "$@" 2>&1 | quiet &
done
wait
echo "== 4 dask-two"
python3 -m agent.cli search --grid --models SD1.5 --samplers DDIM --steps-list 20 --weights random --device cuda \
  --dtype float16 --engines eager,graph --max-rounds 4 --prompts 1 --gpus 2 --max-minutes 0.5 \
  --db "$out/4_dask_two.json" "$@" 2>&1 | quiet
echo "== 5 alone-end"
CUDA_VISIBLE_DEVICES=0 "${sweep[@]}" --accelerators T-Gate --db "$out/5_alone_end.json" "$@" 2>&1 | quiet

python3 - "$out" <<'EOF' | tee "$out/shared_host_check.txt"
import json, statistics, sys
from pathlib import Path

print("arm | sweep | workers on host | baseline median s | fastest 25% s | rounds | fastest graph speedup")
for path in sorted(Path(sys.argv[1]).glob("[1-5]_*.json")):
    for sweep in json.loads(path.read_text())["sweeps"]:
        times = sorted(sweep["baseline_latencies_s"])
        graph = [c["speedup"] for c in sweep["candidates"] if c.get("engine") == "graph"]
        fastest = f"{max(graph):.2f}x" if graph else "-"
        print(f"{path.stem} | {'+'.join(sweep['accelerators'])} | {sweep['provenance']['cpu']['concurrent']} | "
              f"{statistics.median(times):.3f} | {statistics.median(times[:max(1, len(times) // 4)]):.3f} | "
              f"{len(times)} | {fastest}")
EOF
