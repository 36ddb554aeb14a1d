"""How diffaccel measures a speedup: the one protocol behind `agent search` and every generated
script's `--benchmark`.

Generated scripts embed this module verbatim (lines marked `# not in scripts` are left out), so it
imports only the standard library at module level; torch, numpy and torchmetrics are imported where
they are used.

- The baseline is the eager, unaccelerated pipeline, kept as a pipeline of its own: it never has
  an accelerator or a graph applied, so it can run between any two calls of a contender.
- Each contender is switched on once (`enter`, untimed), called once untimed (its `first_call_s`:
  kernel selection, CUDA-graph capture), then timed in rounds, each round the baseline and the
  contender back to back, in an order that reverses every round; the device is synchronised before
  and after each timed call. Then it is switched off (`exit`).
- Speedup of an eager (host-bound) contender: each round gives a paired ratio, the baseline's
  seconds over the contender's, and drift that slows the host slows both; the speedup is their
  geometric mean with a 95% interval (`speedup_interval`). Rounds are added until the interval's
  half-width is within `tolerance` of the estimate, or `max_rounds`.
- Speedup of a graph contender (`host_bound=False`): drift slows only the baseline, and a host
  spends stretches in slower states that only add time, so its speedup is over the baseline's
  FASTEST run, which hosts share (search/stats.py `fastest_speedup`). With several contenders (a
  sweep) it is predicted for a later run of `FASTEST_OF` rounds over every baseline timing of the
  call, with a 95% prediction interval, and the contender stops at `min_rounds`. With one (a
  script) it is what this run measured (`fastest_measured`), over `max_rounds` rounds.
- Quality: SSIM and PSNR of each contender's image against the baseline's image of the same prompt
  and seed, averaged over the jobs (prompt, seed); only the first job is timed.
- One process measures at a time on a host: processes that share one (a Dask worker per GPU, or
  `agent verify`'s scripts) find a lock file in ``DIFFACCEL_TIMING_LOCK`` and hold it for the whole
  of `measure`. The eager baseline is bound by the host launching kernels: alone on an H200 host
  it took 0.76 s (CV under 5%; an H100 host wanders even alone, hence the graph bullet above);
  with a second process on the host it took 0.8 to 1.3 s, whether pinned to other cores or taking
  turns per round while the other built its graphs, which inflated every speedup over it
  (benchmarks/results/eager_baseline.md). So GPUs of one host overlap loading pipelines,
  not measuring; several hosts measure in parallel. A user's script has no such variable.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Optional

from search.stats import (  # not in scripts
    FASTEST_OF, fastest_measured, fastest_speedup, needs_more_rounds, paired_ratios, speedup_interval)  # not in scripts


@dataclass
class Contender:
    """One pipeline configuration to time: `generate(job)` makes the image of one (prompt, seed);
    `enter`/`exit` switch the configuration on and off around its rounds (untimed). `host_bound`:
    whether its latency moves with the host as the eager baseline's does (an eager pipeline) or
    not (a CUDA-graph pipeline), which decides how its speedup is estimated (see above)."""

    name: str
    generate: Callable[[Any], Any]
    enter: Callable[[], None] = lambda: None
    exit: Callable[[], None] = lambda: None
    host_bound: bool = True


TIMING_LOCK_VARIABLE = "DIFFACCEL_TIMING_LOCK"
_depth = threading.local()  # how deep this thread is inside `exclusive_timing`


def held() -> int:
    return getattr(_depth, "value", 0)


@contextmanager
def exclusive_timing(path: Optional[str] = None):
    """Hold the host's timing lock for the block: the file `path`, or else the one named by
    ``DIFFACCEL_TIMING_LOCK``; no-op without either. Re-entrant within a thread (a second flock
    would wait on itself); two threads of one process take turns like two processes."""
    path = path or os.environ.get(TIMING_LOCK_VARIABLE)
    if not path or held():
        _depth.value = held() + 1
        try:
            yield
        finally:
            _depth.value -= 1
        return
    import fcntl

    descriptor = _open_lock(path)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        _depth.value = 1
        try:
            yield
        finally:
            _depth.value = 0
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _open_lock(path: str) -> int:
    """A descriptor of the lock file, created readable and writable by every user of the host (flock
    needs only read access, and another user's file in /tmp cannot be opened with O_CREAT)."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        pass
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as error:
        raise RuntimeError(f"cannot open the timing lock {path} ({error.strerror}): point "
                           f"{TIMING_LOCK_VARIABLE} at a file every measuring process can read") from None
    try:
        os.fchmod(descriptor, 0o666)  # past the umask; fails harmlessly on another user's file
    except OSError:
        pass
    return descriptor


def synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(generate: Callable[[Any], Any], job, device: str) -> tuple[float, Any]:
    """Seconds of one call, the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    image = generate(job)
    synchronize(device)
    return time.perf_counter() - start, image


def measure(baseline: Contender, contenders: list, jobs: list, device: str, min_rounds: int = 3,
            max_rounds: int = 10, tolerance: float = 0.03, pooled: Optional[bool] = None) -> list:
    """Time every contender against the baseline by the protocol above; one result dict each:
    speedup, speedup_interval, ratios, latencies, first_call_s, quality. `pooled`: whether graph
    contenders are predicted over every baseline timing of the call, as a sweep's are (default:
    when there is more than one contender), or measured, as a script's are."""
    with exclusive_timing():
        timed(baseline.generate, jobs[0], device)  # the baseline's warm-up
        references = [baseline.generate(job) for job in jobs]
        results = []
        pooled = len(contenders) > 1 if pooled is None else pooled
        for contender in contenders:
            contender.enter()
            try:
                results.append(_measure_one(baseline, contender, jobs, references, device, min_rounds,
                                            max_rounds, tolerance, pooled))
            finally:
                contender.exit()
    every_baseline = [x for result in results for x in result["baseline_latencies_s"]]
    for contender, result in zip(contenders, results):
        if not contender.host_bound:
            figure = (fastest_speedup(every_baseline, result["latencies_s"], FASTEST_OF) if pooled
                      else fastest_measured(result["baseline_latencies_s"], result["latencies_s"]))
            result.update(stored_figure(figure), estimator="fastest")
    return results


def _measure_one(baseline, contender, jobs, references, device, min_rounds, max_rounds, tolerance,
                 pooled=False) -> dict:
    import statistics

    first_call_s, image = timed(contender.generate, jobs[0], device)
    scores = [image_quality(references[0], image)]
    scores += [image_quality(reference, contender.generate(job)) for job, reference in zip(jobs[1:], references[1:])]
    baseline_s, contender_s = [], []
    while True:
        pair = [(baseline, baseline_s), (contender, contender_s)]
        for runner, latencies in pair if len(baseline_s) % 2 == 0 else reversed(pair):
            latencies.append(timed(runner.generate, jobs[0], device)[0])
        ratios = paired_ratios(baseline_s, contender_s)
        if contender.host_bound:
            if not needs_more_rounds(ratios, tolerance, min_rounds, max_rounds):
                break
        elif len(ratios) >= (min_rounds if pooled else max_rounds):
            # pooled: its figure comes from every baseline timing of the call, which more of its
            # rounds would not move much; alone: its figure is over the fastest of `max_rounds` rounds.
            break
    return {
        "name": contender.name,
        **stored_figure(speedup_interval(ratios)),
        "estimator": "paired",
        "ratios": [round(r, 4) for r in ratios],
        "rounds": len(ratios),
        "baseline_latencies_s": [round(x, 4) for x in baseline_s],
        "baseline_latency_s": round(statistics.median(baseline_s), 4),
        "latency_s": round(statistics.median(contender_s), 4),
        "latencies_s": [round(x, 4) for x in contender_s],
        "first_call_s": round(first_call_s, 3),
        "quality": {name: round(statistics.fmean(s[name] for s in scores), 4) for name in ("ssim", "psnr")},
    }


def stored_figure(interval) -> dict:
    """A result's speedup and its interval as stored (an unbounded top as 1e6, for JSON)."""
    return {"speedup": round(interval.estimate, 4),
            "speedup_interval": [round(interval.low, 4), round(min(interval.high, 1e6), 4)]}


def image_quality(reference, image) -> dict:
    """SSIM and PSNR of `image` against `reference`: PIL images, or float arrays HxWxC in [0, 1]."""
    import numpy as np
    import torch
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    def as_tensor(picture):
        pixels = np.asarray(picture)
        scale = 255.0 if pixels.dtype == np.uint8 else 1.0  # PIL images are 8-bit
        pixels = np.nan_to_num(pixels.astype(np.float32) / scale, nan=0.0)
        return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)

    ref, out = as_tensor(reference), as_tensor(image)
    return {
        "ssim": round(float(structural_similarity_index_measure(out, ref, data_range=1.0)), 4),
        "psnr": round(min(float(peak_signal_noise_ratio(out, ref, data_range=1.0)), 100.0), 4),
    }
