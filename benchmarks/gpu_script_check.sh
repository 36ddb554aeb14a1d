#!/usr/bin/env bash
# Do generated scripts reproduce the database's speedups? On a lent GPU machine (wheels in .wheels/):
# saves full-size random-weight pipelines, generates scripts with `agent generate`, runs each with
# --benchmark and prints the script's JSON line beside the database's figure.
#
#   bash benchmarks/gpu_script_check.sh [MODEL "request" ...]
set -euo pipefail
python3 -m pip install -q --no-index --no-deps .wheels/*.whl 2>&1 | grep -v WARNING || true
export PYTHONPATH=$PWD
out=${OUT:-/tmp}
check() {  # model request
  local model=$1 request=$2 dir=/tmp/pipe-$1
  [ -d "$dir" ] || python3 -c "from search.pipelines import build_random; import torch; build_random('$model', 'full', device='cuda', dtype=torch.float16).save_pretrained('$dir')" 2>/dev/null
  python3 -m agent.cli generate "$request" -o /tmp/check.py --json > /tmp/summary.json
  local result
  result=$(python3 /tmp/check.py --model-path "$dir" --benchmark --runs 5 --output /tmp/check.png 2>/dev/null | tail -1)
  python3 - "$request" "$result" <<'PY' | tee -a "$out/script_check.jsonl"
import json, sys
summary = json.load(open("/tmp/summary.json"))
print(json.dumps({"request": sys.argv[1], "database_speedup": (summary["measured"] or {}).get("speedup"),
                  "params": summary["params"], "script": json.loads(sys.argv[2])}))
PY
}
if [ $# -gt 0 ]; then  # MODEL "request" pairs
  while [ $# -gt 1 ]; do check "$1" "$2"; shift 2; done
  exit 0
fi
check SD1.5 "SD1.5 DDIM 25 steps DeepCache 2x"
check SD1.5 "SD1.5 DPM-Solver++ 50 steps DeepCache and T-Gate 3x"
check SD1.5 "SD1.5 UniPC 20 steps ToMe 1.2x"
check SDXL "SDXL UniPC 25 steps DeepCache 2x"
check SDXL "SDXL DDIM 25 steps DeepCache, T-Gate and ToMe 2.5x"
