"""Why do sweeps measure a slower eager baseline than generated scripts (verify: script/database 0.74)?

In one process: the pipeline the sweep builds, its deepcopy (the sweep's baseline), and the same
weights loaded from disk (the script's baseline), timed interleaved; then a graph DeepCache contender
against each. One JSON line per pipeline with its median seconds. With DIFFACCEL_TIMING_LOCK set,
processes sharing the host take turns for each round, or, with --whole-lock, for all their timing
(as search/protocol.py's `measure` does; benchmarks/gpu_lock_check.sh runs that check).

    python benchmarks/baseline_probe.py [--model SD1.5] [--sampler DPM-Solver++] [--runs 6]
                                        [--whole-lock] [--no-disk]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import sys
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="SD1.5")
    parser.add_argument("--sampler", default="DPM-Solver++")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--whole-lock", action="store_true",
                        help="hold DIFFACCEL_TIMING_LOCK for all the timing, as search/protocol.py's measure does")
    parser.add_argument("--no-disk", action="store_true", help="skip the pipeline loaded from disk")
    args = parser.parse_args()

    from search.distributed import pin_from_env

    pin_from_env()
    import torch

    from search.measure import cpu_share
    from search.pipelines import load
    from search.protocol import exclusive_timing
    from tools.validate import saved_pipeline

    built = load(args.model, "random", None, "cuda", torch.float16)
    pipes = {"built": built, "deepcopy": copy.deepcopy(built)}
    if not args.no_disk:
        pipes["from_disk"] = load(args.model, "real", str(saved_pipeline(args.model, "full")), "cuda", torch.float16)
    with exclusive_timing() if args.whole_lock else contextlib.nullcontext():
        times = timings(args, pipes, built)
    print(json.dumps({"share": cpu_share(os.environ.get("DIFFACCEL_TIMING_LOCK")), "whole_lock": args.whole_lock,
                      **{name: {"median_s": round(statistics.median(t), 4), "all": [round(x, 3) for x in t]}
                         for name, t in times.items()}}))


def timings(args, pipes: dict, built) -> dict:
    from core.settings import DeepCacheParams, Settings
    from search import accelerators as acc
    from search.engine import _generate
    from search.pipelines import set_sampler
    from search.protocol import exclusive_timing, timed

    for pipe in pipes.values():
        set_sampler(pipe, args.sampler)
    plain = acc.plan(args.model, Settings())
    job = ("a photograph of an astronaut riding a horse", 0)
    call = {name: partial(_generate, pipe, plain, 25) for name, pipe in pipes.items()}
    times: dict = {name: [] for name in pipes}
    for name in call:
        timed(call[name], job, "cuda")  # warm-up
    for _ in range(args.runs):
        with exclusive_timing():  # a no-op unless DIFFACCEL_TIMING_LOCK names a lock file
            for name in call:
                times[name].append(timed(call[name], job, "cuda")[0])
    dc = acc.plan(args.model, Settings(deepcache=DeepCacheParams(cache_interval=3, cache_branch_id=0)))
    undo = acc.apply(built, dc, engine="graph")
    graph = partial(_generate, built, dc, 25)
    timed(graph, job, "cuda")
    after = {"graph_dc3": graph, **{f"{name}_after": call[name] for name in ("deepcopy", "from_disk") if name in call}}
    times.update({name: [] for name in after})
    for _ in range(args.runs):
        with exclusive_timing():
            for name, run in after.items():
                times[name].append(timed(run, job, "cuda")[0])
    undo()
    return times


if __name__ == "__main__":
    main()
