#!/usr/bin/env bash
# Refill search_params.json on a lent multi-GPU machine: the grid by search/protocol.py, both
# engines, one Dask worker per GPU, this process the only writer. The workers take turns to measure
# (one lock per host: an eager baseline timed beside another process is slow), so the GPUs overlap
# loading pipelines, not measuring: check first with benchmarks/gpu_lock_check.sh that the lock gives
# alone-figures on this host. Time-boxed and resumable: sweeps of the current protocol are skipped.
#
#   bash benchmarks/gpu_refill.sh MINUTES [more `agent search --grid` options]
#
# A sweep that may outlast the call (SDXL: more than 5.5 minutes at 25 steps) needs `--part-size 2`
# or so: each part of 2 settings is kept as it finishes (search_params.parts.json, copied to $OUT),
# and the next call goes on from there once that file is back in the checkout.
set -euo pipefail
minutes=${1:-8}
shift || true
source benchmarks/gpu_setup.sh
python3 -m agent.cli search --grid --weights random --device cuda --dtype float16 --engines eager,graph \
  --db search_params.json --max-minutes "$minutes" "$@" 2>&1 | grep --line-buffered -v "should be kept in float32" | tee "$out/refill.log"
cp search_params.json "$out/search_params.json"
# Parts of sweeps measured in parts (--part-size) that wait for the rest: copy the file back into the
# checkout beside search_params.json, so the next call (a fresh machine) goes on from them.
if [ -f search_params.parts.json ]; then cp search_params.parts.json "$out/"; fi
