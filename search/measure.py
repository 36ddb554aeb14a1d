"""What a sweep records besides the timings: the prompts, quality averages, and provenance.

The timing and quality protocol itself is search/protocol.py, shared with generated scripts.
"""

from __future__ import annotations

import datetime as _dt
import platform
import re
import statistics
from importlib import metadata
from typing import Optional

from search.stats import FASTEST_OF

PROMPTS = (
    "a photograph of an astronaut riding a horse",
    "a watercolor painting of a lighthouse on a cliff at sunset",
    "a close-up portrait of an old fisherman, studio lighting",
    "an isometric illustration of a tiny city on a floating island",
)
METRICS = ("ssim", "psnr")
# Bumped when sweeps measured before would not be comparable with new ones; a refill re-measures
# older versions. 1: intervals (search/protocol.py). 2: also each concurrent sweep on its own CPU
# cores with one intra-op thread (search/distributed.py, `pin_from_env`). 3: also one process
# measures at a time on a host (search/protocol.py, `exclusive_timing`). 4: also a graph contender's
# speedup is over every baseline timing of its sweep, with a prediction interval (`steady_speedup`,
# since removed). 5: a graph contender's speedup is over the baseline's fastest run (`fastest_speedup`);
# timed as 4, so protocol-4 sweeps were re-derived from their timings (benchmarks/rederive_fastest.py).
PROTOCOL_VERSION = 5
PREDICTED_SINCE = 4  # the first version whose graph figures are prediction intervals
TIMED_SINCE = 4  # the first version that times as this one does (5 estimates graph figures differently)
FASTEST_SINCE = 5  # the first version whose graph figures are over the eager baseline's fastest run
LIBRARIES = ("torch", "diffusers", "transformers", "DeepCache", "tgate", "tomesd", "torchmetrics")


def _shares(source) -> list[dict]:
    """The host shares (`cpu_share`) a sweep was measured on: its own, and each part's if it was
    measured in parts (search/engine.py `merge_parts`)."""
    extra = source.model_extra or {}
    shares = [extra.get("cpu")] + [part.get("cpu") for part in extra.get("parts") or [] if isinstance(part, dict)]
    return [share for share in shares if isinstance(share, dict)]


def timed_by(source) -> int:
    """The protocol version that timed a sweep: a sweep re-derived from an older one's timings
    records it (benchmarks/rederive_fastest.py); 0 before versions."""
    extra = source.model_extra or {}
    return int(extra.get("timed_by") or source.protocol_version or 0)


def round_cap(source) -> Optional[int]:
    """The most rounds a sweep's eager contenders could run: its recorded `rounds`, or for a sweep
    recorded before that field, read from the protocol line `provenance` writes; None if neither."""
    extra = source.model_extra or {}
    if extra.get("rounds"):
        return int(extra["rounds"]["max"])
    found = re.search(r"then \d+ to (\d+) interleaved rounds", extra.get("protocol") or "")
    return int(found.group(1)) if found else None


def workers_on_host(source) -> int:
    """How many grid workers shared the host a sweep (or any of its parts) was measured on; 1: alone."""
    def count(value) -> int:
        try:
            return max(1, int(float(value)))
        except (TypeError, ValueError):
            return 1
    return max([count(share.get("concurrent")) for share in _shares(source)], default=1)


def by_current_protocol(source) -> bool:
    """Measured as a refill measures now: by this protocol version, with the host to itself, in a
    process started as a plain one is.

    Two grid workers on one H200 host, taking turns by the host lock, still measured SD1.5's eager
    baseline at 0.79-0.92 s for 20 steps where the scripts later measured 0.62 s, so their graph
    figures came out about a fifth high (benchmarks/results/verify_h200x2_7.*; taken over the
    baseline's fastest run, protocol 5, the scripts measured a median 0.90 of them,
    results/rederive_fastest.txt): such sweeps are served with a warning and measured again by the
    next refill. So is one measured under Dask's
    MALLOC_TRIM_THRESHOLD_ (search/distributed.py `NANNY_CONFIG`, `WORKER_CONFIG`).
    """
    return (source.protocol_version == PROTOCOL_VERSION and workers_on_host(source) == 1
            and not any(share.get("malloc_trim_threshold") for share in _shares(source)))


def timed_now(source) -> bool:
    """Measured by the current protocol (`by_current_protocol`) and timed as it times, not re-derived
    from an older way of timing: a sweep whose seconds tell what a refill's sweep takes."""
    return by_current_protocol(source) and timed_by(source) >= TIMED_SINCE


def median(values) -> float:
    return float(statistics.median(values))


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.machine()}, {platform.processor() or 'unknown'})"


def cpu_share(timing_lock: str | None = None) -> dict:
    """The host share a measurement ran on: cores it may use, intra-op threads, workers on the
    host, the lock they took turns on, and glibc's trim threshold where one was set (Dask's nanny
    sets it; search/distributed.py `NANNY_CONFIG`, `WORKER_CONFIG`)."""
    import os

    import torch

    from search.distributed import CONCURRENT_VARIABLE, usable_cores

    return {"cores": len(usable_cores()), "host_cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "concurrent": int(os.environ.get(CONCURRENT_VARIABLE, "1")),
            "timing_lock": timing_lock, "malloc_trim_threshold": os.environ.get("MALLOC_TRIM_THRESHOLD_")}


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(*, device: str, dtype: str, resolution: int, weights: str, prompts, seeds,
               rounds: tuple, guidance_scale: float, engines, seconds: float,
               cpu: dict | None = None) -> dict:
    quality_note = (
        "real weights"
        if weights == "real"
        else "random-initialised weights: quality is only a proxy, speed is real"
    )
    min_rounds, max_rounds, tolerance = rounds
    record = {
        "device": device_name(device),
        "dtype": dtype,
        "resolution": resolution,
        "weights": weights,
        "prompts": list(prompts),
        "seeds": list(seeds),
        "guidance_scale": guidance_scale,
        "engines": list(engines),
        "protocol_version": PROTOCOL_VERSION,
        "protocol": (
            f"search/protocol.py: one untimed warm-up each, then {min_rounds} to {max_rounds} "
            f"interleaved rounds until the 95% interval is within {tolerance:.0%} (eager); graph "
            f"contenders {min_rounds} rounds, predicted for a {FASTEST_OF}-round run over the baseline's fastest "
            f"run, from every baseline timing of the sweep (fastest_speedup)"
        ),
        "metrics": list(METRICS),
        "quality_note": quality_note,
        "libraries": library_versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sweep_seconds": round(seconds, 1),
        "rounds": {"min": min_rounds, "max": max_rounds, "tolerance": tolerance},
        "measured_by": "agent search (search/engine.py)",
    }
    if cpu is not None:
        record["cpu"] = cpu
    return record
