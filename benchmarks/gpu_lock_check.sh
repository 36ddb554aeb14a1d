#!/usr/bin/env bash
# Does one lock per host give each measurement the host to itself? (search/protocol.py, protocol 3)
# On a lent multi-GPU machine: the SD1.5 eager baseline and a graph contender timed by
# benchmarks/baseline_probe.py alone, then in one process per GPU at once holding the host lock for
# the whole timing, as `agent search --grid` workers do. If the locked medians match the one alone
# (0.76 s on H200 hosts so far, benchmarks/results/eager_baseline.md), the lock is enough; if not,
# measure the grid with --gpus 1 per host.
#
#   bash benchmarks/gpu_lock_check.sh
set -euo pipefail
source benchmarks/gpu_setup.sh
gpus=$(nvidia-smi --list-gpus | wc -l)
cores=$(nproc)
per=$((cores / gpus))
export OMP_NUM_THREADS=1 DIFFACCEL_CONCURRENT=$gpus DIFFACCEL_TIMING_LOCK=/tmp/diffaccel-timing.lock
CUDA_VISIBLE_DEVICES=0 DIFFACCEL_CPUS=0-$((per - 1)) DIFFACCEL_CONCURRENT=1 \
  python3 benchmarks/baseline_probe.py --whole-lock --no-disk --runs 5 2>/dev/null | tail -1 | tee "$out/lock_alone.json"
for i in $(seq 0 $((gpus - 1))); do
  CUDA_VISIBLE_DEVICES=$i DIFFACCEL_CPUS=$((i * per))-$((i * per + per - 1)) \
    python3 benchmarks/baseline_probe.py --whole-lock --no-disk --runs 5 2>/dev/null | tail -1 > "$out/lock_$i.json" &
done
wait
cat "$out"/lock_[0-9]*.json
