"""Why is the eager baseline so noisy on the lent hosts (0.8 to 1.3 s for the same SD1.5 call)?

Times the plain eager pipeline N times in this process and prints one JSON line per run: wall
seconds, this thread's CPU seconds, the GPU span (CUDA events), and the CPU core it ran on. If wall
time follows CPU time, the host runs the Python slower (clock, contention); if it does not, the
thread waits (GPU-bound, preempted).

    python benchmarks/eager_noise.py --model SD1.5 --runs 15 [--pin CORES] [--threads N] [--gc-freeze] [--tag T]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def current_core() -> int:
    with open("/proc/self/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[36])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="SD1.5")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pin", default=None, help="run on these CPU cores only: 3 or 16-31")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--gc-freeze", action="store_true")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    if args.pin is not None:
        from search.distributed import parse_cpus

        os.sched_setaffinity(0, parse_cpus(args.pin))

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from search.pipelines import load

    pipe = load(args.model, "random", None, "cuda", torch.float16)
    pipe.set_progress_bar_config(disable=True)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()

    def call():
        generator = torch.Generator("cpu").manual_seed(0)
        return pipe("a photograph of an astronaut riding a horse", num_inference_steps=args.steps,
                    generator=generator).images[0]

    call()
    walls = []
    for run in range(args.runs):
        start_event, end_event = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        start_event.record()
        call()
        end_event.record()
        torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        walls.append(wall)
        print(json.dumps({"tag": args.tag, "run": run, "wall_s": round(wall, 4), "cpu_s": round(cpu, 4),
                          "gpu_s": round(start_event.elapsed_time(end_event) / 1000, 4),
                          "core": current_core(), "load": os.getloadavg()[0]}), flush=True)
    print(json.dumps({"tag": args.tag, "summary": True, "median_s": round(statistics.median(walls), 4),
                      "min_s": round(min(walls), 4), "max_s": round(max(walls), 4),
                      "cv": round(statistics.stdev(walls) / statistics.fmean(walls), 4)}), flush=True)


if __name__ == "__main__":
    main()
