"""How diffaccel measures a speedup: the one protocol behind `agent search` and every generated
script's `--benchmark`.

Generated scripts embed this module verbatim (lines marked `# not in scripts` are left out), so it
imports only the standard library at module level; torch, numpy and torchmetrics are imported where
they are used.

- Warm-up: every contender runs once, untimed, before any timing; that first call's seconds are
  kept (`first_call_s`: kernel selection, CUDA-graph capture).
- Rounds: each round runs the baseline and every contender still measured, in an order that
  reverses from one round to the next, so drift and order effects hit all of them alike; the
  device is synchronised before and after each timed call; setting a contender up and tearing it
  down (`enter`, `exit`) is not timed.
- Speedup: each round gives a paired ratio, the baseline's seconds over the contender's seconds in
  that round; the speedup is their geometric mean with a confidence interval (`speedup_interval`).
  A contender gets rounds until the interval's half-width is within `tolerance` of the estimate, or
  `max_rounds`.
- Quality: SSIM and PSNR of each contender's first image against the baseline's image of the same
  prompt and seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from search.stats import needs_more_rounds, paired_ratios, speedup_interval  # not in scripts


@dataclass
class Contender:
    """One pipeline configuration to time: `generate()` makes one image; `enter`/`exit` switch the
    configuration on and off around it (untimed)."""

    name: str
    generate: Callable[[], Any]
    enter: Callable[[], None] = lambda: None
    exit: Callable[[], None] = lambda: None
    latencies_s: list = field(default_factory=list)
    first_call_s: float = 0.0
    image: Any = None


def synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed_call(contender: Contender, device: str) -> tuple[float, Any]:
    """Seconds of one `generate()`, the device synchronised before and after; set-up untimed."""
    contender.enter()
    try:
        synchronize(device)
        start = time.perf_counter()
        image = contender.generate()
        synchronize(device)
        return time.perf_counter() - start, image
    finally:
        contender.exit()


def measure(baseline: Contender, contenders: list, device: str, min_rounds: int = 3,
            max_rounds: int = 10, tolerance: float = 0.03) -> list:
    """Time the baseline and every contender by the protocol above; returns one result dict per
    contender: speedup, speedup_interval, ratios, latencies, first_call_s, quality."""
    everyone = [baseline] + list(contenders)
    for contender in everyone:
        contender.first_call_s, contender.image = timed_call(contender, device)
    active = list(contenders)
    for round_index in range(max_rounds):
        if not active:
            break
        order = [baseline] + active
        for contender in order if round_index % 2 == 0 else reversed(order):
            seconds, _ = timed_call(contender, device)
            contender.latencies_s.append(seconds)
        active = [c for c in active
                  if needs_more_rounds(_ratios(baseline, c), tolerance, min_rounds, max_rounds)]
    return [_result(baseline, contender) for contender in contenders]


def _ratios(baseline: Contender, contender: Contender) -> list:
    """Paired ratios: the contender's round i against the baseline's round i (a contender that
    stopped early ran rounds 0 to k-1, like the baseline's first k)."""
    return paired_ratios(baseline.latencies_s[: len(contender.latencies_s)], contender.latencies_s)


def _result(baseline: Contender, contender: Contender) -> dict:
    import statistics

    ratios = _ratios(baseline, contender)
    interval = speedup_interval(ratios)
    rounded = [round(x, 4) for x in contender.latencies_s]
    return {
        "name": contender.name,
        "speedup": round(interval.estimate, 4),
        "speedup_interval": [round(interval.low, 4), round(min(interval.high, 1e6), 4)],
        "ratios": [round(r, 4) for r in ratios],
        "rounds": len(ratios),
        "baseline_latency_s": round(statistics.median(baseline.latencies_s), 4),
        "latency_s": round(statistics.median(contender.latencies_s), 4),
        "latencies_s": rounded,
        "first_call_s": round(contender.first_call_s, 3),
        "quality": image_quality(baseline.image, contender.image),
    }


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
