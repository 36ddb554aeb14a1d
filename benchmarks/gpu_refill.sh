#!/usr/bin/env bash
# Refill search_params.json on a lent multi-GPU machine: the grid by search/protocol.py, both
# engines, one Dask worker per GPU, this process the only writer. Time-boxed and resumable: sweeps
# already measured by the current protocol are skipped.
#
#   bash benchmarks/gpu_refill.sh MINUTES [more `agent search --grid` options]
set -euo pipefail
minutes=${1:-8}
shift || true
source benchmarks/gpu_setup.sh
python3 -m agent.cli search --grid --weights random --device cuda --dtype float16 --engines eager,graph \
  --db search_params.json --max-minutes "$minutes" "$@" 2>&1 | grep -v "should be kept in float32" | tee "$out/refill.log"
cp search_params.json "$out/search_params.json"
