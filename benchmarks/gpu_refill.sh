#!/usr/bin/env bash
# Refill search_params.json on a lent multi-GPU machine (torch, no internet, no diffusers): the
# grid by search/protocol.py, both engines, one Dask worker per GPU, this process the only writer.
# Time-boxed and resumable: sweeps already measured by the current protocol are skipped.
#
#   bash benchmarks/gpu_refill.sh MINUTES [more `agent search --grid` options]
#
# The wheels travel in .wheels/ (not committed): on a machine with PyPI access
#   pip download --no-deps -d .wheels --python-version 3.12 --platform manylinux2014_x86_64 \
#     --only-binary=:all: -r benchmarks/gpu_wheels.txt
set -euo pipefail
minutes=${1:-8}
shift || true
out=${OUT:-/tmp}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps .wheels/*.whl 2>&1 | grep -v WARNING || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export PYTHONPATH=$PWD
python3 -m agent.cli search --grid --weights random --device cuda --dtype float16 --engines eager,graph \
  --db search_params.json --max-minutes "$minutes" "$@" 2>&1 | grep -v "should be kept in float32" | tee "$out/refill.log"
cp search_params.json "$out/search_params.json"
