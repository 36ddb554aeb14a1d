#!/usr/bin/env bash
# On a lent GPU machine (wheels in .wheels/): the GPU-only tests, and the agent's GPU validation
# path (a generated script benchmarked on full-size random-weight SD1.5, checked against its target).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps .wheels/*.whl 2>&1 | grep -v WARNING || true
export PYTHONPATH=$PWD
out=${OUT:-/tmp}
python3 -m pytest -q -p no:cacheprovider tests/test_search.py -k cuda 2>&1 | tail -3 | tee "$out/gpu_tests.txt"
python3 - <<'PY' 2>&1 | grep -v -i "warn" | tee "$out/gpu_validate.json"
import json, torch
from search.pipelines import build_random
from tools.render import render_script
from tools.validate import validate_script
build_random("SD1.5", "full", device="cuda", dtype=torch.float16).save_pretrained("/tmp/sd15")
for target in (2.0, 3.0):
    source = render_script("SD1.5", "DDIM", 25, ["DeepCache"], target)
    print(json.dumps({"target": target, **validate_script(source, "SD1.5", target, "/tmp/sd15")}))
PY
