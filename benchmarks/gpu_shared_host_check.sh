#!/usr/bin/env bash
# Why did two grid workers on one H200 x2 host measure SD1.5's eager baseline 30-50% slow
# (refill_h200x2_10.log against verify_h200x2_7.*)? One call on a two-GPU machine, five arms in turn,
# each its own database under $OUT, short sweeps of SD1.5 DDIM 20 steps:
#   1 alone      one plain process, in-process sweep (T-Gate), the host to itself
#   2 dask-idle  a two-worker Dask cluster with one sweep (T-Gate): Dask, the other worker idle
#   3 two-procs  two plain processes, one GPU each (T-Gate, ToMe), taking turns by the host lock
#   4 dask-two   a two-worker grid, both busy (DeepCache, T-Gate): what the refill did
#   5 alone-end  arm 1 again, for drift over the call
# Every arm runs as a grid worker does: one intra-op thread, pinned to half the host's cores, so the
# arms differ only in Dask and in sharing. If only 3 and 4 are slow, sharing the host is the cause;
# if 2 and 4, Dask; if all, that host. The refill ran before workers started with
# search/distributed.py `NANNY_CONFIG`, `WORKER_CONFIG` (on the CPU Dask's worker environment made a
# tiny baseline 1.25x slower: worker_env_cpu.json); if arms 2-4 now match arm 1,
# `by_current_protocol` can accept shared-host sweeps measured since.
#
#   timeout -s INT 590 bash benchmarks/gpu_shared_host_check.sh      # nvidia-h200-x2, about 8 minutes
#   bash benchmarks/gpu_shared_host_check.sh --tiny --device cpu --dtype float32 --engines eager   # on a CPU
set -uo pipefail
if command -v nvidia-smi >/dev/null; then
  set -e; source benchmarks/gpu_setup.sh; set +e
else
  export PYTHONPATH=$PWD; out=${OUT:-/tmp/shared_host_check}; mkdir -p "$out"
fi
half=$(( $(nproc) / 2 ))
block=("0-$((half - 1))" "$half-$((2 * half - 1))")
export OMP_NUM_THREADS=1
common=(--weights random --device cuda --dtype float16 --engines eager,graph --max-rounds 4 --prompts 1)
sweep=(python3 -m agent.cli search --model SD1.5 --sampler DDIM --steps 20 "${common[@]}")
quiet() { grep --line-buffered -E "measured|sweeps in|rror" || true; }
arm() {
  echo "== $1"; shift
  "$@" 2>&1 | quiet
  local status=${PIPESTATUS[0]}
  [ "$status" = 0 ] || echo "arm failed: exit $status"
}

arm "1 alone" env CUDA_VISIBLE_DEVICES=0 DIFFACCEL_CPUS="${block[0]}" \
  "${sweep[@]}" --accelerators T-Gate --db "$out/1_alone.json" "$@"
arm "2 dask-idle" "${sweep[@]}" --accelerators T-Gate --gpus 2 --db "$out/2_dask_idle.json" "$@"
echo "== 3 two-procs"
pids=()
for gpu in 0 1; do
  accelerators=$([ "$gpu" = 0 ] && echo T-Gate || echo ToMe)
  CUDA_VISIBLE_DEVICES=$gpu DIFFACCEL_CPUS="${block[$gpu]}" DIFFACCEL_CONCURRENT=2 "${sweep[@]}" \
    --accelerators "$accelerators" --db "$out/3_two_procs.json" "$@" > "$out/3_gpu$gpu.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do wait "${pids[$i]}" || echo "arm 3 GPU $i failed: exit $?"; quiet < "$out/3_gpu$i.log"; done
arm "4 dask-two" python3 -m agent.cli search --grid --models SD1.5 --samplers DDIM --steps-list 20 "${common[@]}" \
  --gpus 2 --max-minutes 0.5 --db "$out/4_dask_two.json" "$@"
arm "5 alone-end" env CUDA_VISIBLE_DEVICES=0 DIFFACCEL_CPUS="${block[0]}" \
  "${sweep[@]}" --accelerators T-Gate --db "$out/5_alone_end.json" "$@"

python3 - "$out" <<'EOF' | tee "$out/shared_host_check.txt"
import json, statistics, sys
from pathlib import Path

print("arm | sweep | workers on host | threads | cores | baseline median s | fastest 25% s | rounds | fastest graph")
for path in sorted(Path(sys.argv[1]).glob("[1-5]_*.json")):
    for sweep in json.loads(path.read_text())["sweeps"]:
        times = sorted(sweep["baseline_latencies_s"])
        graph = [c["speedup"] for c in sweep["candidates"] if c.get("engine") == "graph"]
        cpu = sweep["provenance"]["cpu"]
        fastest = f"{max(graph):.2f}x" if graph else "-"
        print(f"{path.stem} | {'+'.join(sweep['accelerators'])} | {cpu['concurrent']} | {cpu['threads']} | "
              f"{cpu['cores']} | {statistics.median(times):.3f} | "
              f"{statistics.median(times[:max(1, len(times) // 4)]):.3f} | {len(times)} | {fastest}")
EOF
