#!/usr/bin/env bash
# A generated graph script run with --compile --benchmark on a GPU, started twice: the first start
# compiles, the second finds inductor's on-disk caches (same machine, same cache directory). Weights:
# full-size random-initialised, saved to disk first. One JSON line per start in $OUT.
#
#   bash benchmarks/gpu_compile_check.sh MODEL "REQUEST" [RUNS]
#   bash benchmarks/gpu_compile_check.sh SD1.5 "SD1.5 DDIM 25 steps DeepCache 4x" 5
set -euo pipefail
model=$1
request=$2
runs=${3:-5}
source benchmarks/gpu_setup.sh
weights=/tmp/weights-$model
script=$out/compile_check_${model}.py
[ -d "$weights" ] || python3 -c "import torch; from search.pipelines import write_random
write_random('$weights', '$model', 'full', device='cuda', dtype=torch.float16)"
python3 -m agent.cli generate "$request" -o "$script" >/dev/null
if ! grep -q -- '"--compile"' "$script"; then
  echo "the script for \"$request\" runs eager only (no graph entry in the database): no --compile to check" >&2
  exit 2
fi
for start in first second; do
  begun=$(date +%s.%N)
  python3 "$script" --model-path "$weights" --benchmark --compile --runs "$runs" --output "/tmp/$model.png" \
    2> >(grep -v "should be kept in float32" >&2) | tail -1 > "$out/compile_check_${model}_${start}.json"
  echo "$model $start start: $(python3 -c "print(round($(date +%s.%N) - $begun, 1))") s in all: $(cat "$out/compile_check_${model}_${start}.json")"
done
