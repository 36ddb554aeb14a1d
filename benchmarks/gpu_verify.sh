#!/usr/bin/env bash
# `agent verify` on a lent multi-GPU machine: sampled grid tasks, their generated scripts run with
# --benchmark on full-size random-initialised weights, one script per GPU at a time.
#
#   bash benchmarks/gpu_verify.sh MINUTES [more `agent verify` options]
set -euo pipefail
minutes=${1:-8}
shift || true
out=${OUT:-/tmp}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps .wheels/*.whl 2>&1 | grep -v WARNING || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export PYTHONPATH=$PWD
python3 -m agent.cli verify --max-minutes "$minutes" --out "$out/verify.jsonl" "$@" 2>&1 \
  | grep -v "should be kept in float32" | tee "$out/verify.log"
