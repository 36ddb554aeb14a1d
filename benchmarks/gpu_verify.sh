#!/usr/bin/env bash
# `agent verify` on a lent multi-GPU machine: sampled grid tasks, their generated scripts run with
# --benchmark on full-size random-initialised weights, one script per GPU at a time.
#
#   bash benchmarks/gpu_verify.sh MINUTES [more `agent verify` options]
#
# A speedup holds for the GPU it was measured on: on a lent kind, sample what was measured on it,
# e.g. `bash benchmarks/gpu_verify.sh 8 --refilled-only --measured-on H200 --models SD1.5 --tasks 20`.
set -euo pipefail
minutes=${1:-8}
shift || true
source benchmarks/gpu_setup.sh
python3 -m agent.cli verify --max-minutes "$minutes" --out "$out/verify.jsonl" "$@" 2>&1 \
  | grep --line-buffered -v "should be kept in float32" | tee "$out/verify.log"
