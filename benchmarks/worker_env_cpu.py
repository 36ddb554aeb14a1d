"""Is an eager baseline slower in a Dask worker than in the user's plain process, and why?

On the CPU, one thread: a tiny SD1.5 image (DDIM, 20 steps, search/engine.py `time_one_image`),
timed `--rounds` times after a warm-up, in four places, each cycle through all four (`--cycles`):

- a plain process, as the user's script runs;
- a plain process with MALLOC_TRIM_THRESHOLD_=65536, what Dask's nanny sets for its workers (it also
  turns off glibc's adaptive mmap threshold);
- a worker of a Dask LocalCluster as Dask ships it;
- a worker of `search.distributed.local_cluster`, which starts workers without that variable.

One JSON line: each place's median seconds, its ratio to the plain process, and every timing.
Tiny pipelines on the CPU are bound by the host as an eager GPU pipeline is by its launches; what
this shows for a GPU host is for benchmarks/gpu_shared_host_check.sh to measure.

    python benchmarks/worker_env_cpu.py [--rounds 6] [--cycles 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TRIM = "MALLOC_TRIM_THRESHOLD_"


def time_images(rounds: int) -> list[float]:
    """Seconds of `rounds` tiny SD1.5 images, after one untimed, on one thread."""
    import torch

    from search.engine import SearchConfig, load_pipeline, time_one_image

    torch.set_num_threads(1)
    pipe = load_pipeline("SD1.5", SearchConfig(weights="tiny"))
    time_one_image(pipe, "SD1.5", "DDIM", 20)
    return [round(time_one_image(pipe, "SD1.5", "DDIM", 20), 4) for _ in range(rounds)]


def in_process(rounds: int, trim: str | None) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != TRIM} | ({TRIM: trim} if trim else {})
    env["PYTHONPATH"] = ROOT
    done = subprocess.run([sys.executable, __file__, "--child", str(rounds)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_worker(rounds: int, ours: bool) -> list[float]:
    from distributed import Client, LocalCluster

    from search.distributed import local_cluster

    os.environ.pop(TRIM, None)  # an earlier nanny sets it in its parent too, and workers inherit it
    cluster = local_cluster(1) if ours else LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                                         dashboard_address=None, env={"PYTHONPATH": ROOT})
    with cluster, Client(cluster) as client:
        return client.submit(time_images, rounds, pure=False).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(time_images(args.child)))
        return
    places = {
        "plain process": lambda: in_process(args.rounds, None),
        f"plain process, {TRIM}=65536": lambda: in_process(args.rounds, "65536"),
        "Dask worker as shipped": lambda: in_worker(args.rounds, ours=False),
        "search.distributed.local_cluster worker": lambda: in_worker(args.rounds, ours=True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in places}
    for _ in range(args.cycles):
        for name, run in places.items():
            seconds[name] += run()
    plain = statistics.median(seconds["plain process"])
    print(json.dumps({
        "what": "tiny SD1.5 DDIM 20 steps, CPU, one thread", "cpus": os.cpu_count(),
        "rounds": args.rounds, "cycles": args.cycles,
        "median_s": {name: round(statistics.median(v), 4) for name, v in seconds.items()},
        "over_plain": {name: round(statistics.median(v) / plain, 3) for name, v in seconds.items()},
        "all_s": seconds,
    }))


if __name__ == "__main__":
    main()
