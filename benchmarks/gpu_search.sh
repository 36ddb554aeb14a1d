#!/usr/bin/env bash
# Fill search_params.json on a lent GPU machine, which has torch but no internet and no diffusers.
#
# Time-boxed and resumable: sweeps already in search_params.json are skipped, each finished sweep is
# written at once, and the database is copied to $OUT at the end for committing.
#
#   bash benchmarks/gpu_search.sh MINUTES [more `agent search --grid` options]
#
# The wheels travel in .wheels/ (not committed): fetch them on a machine with PyPI access with
#   pip download --no-deps -d .wheels --python-version 3.12 --platform manylinux2014_x86_64 \
#     --only-binary=:all: -r benchmarks/gpu_wheels.txt
set -euo pipefail
minutes=${1:-8}
shift || true
out=${OUT:-/tmp}
python3 -m pip install -q --no-index --no-deps .wheels/*.whl 2>&1 | grep -v WARNING || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export PYTHONPATH=$PWD
python3 -m agent.cli search --grid --weights random --device cuda --dtype float16 \
  --max-minutes "$minutes" "$@" 2>&1 | grep -v "should be kept in float32" | tee "$out/search.log"
cp search_params.json "$out/search_params.json"
