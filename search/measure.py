"""Timing and quality: how every figure in search_params.json is measured.

speedup = median unaccelerated latency / median accelerated latency, on the same pipeline, device,
dtype, resolution, prompts and seeds, after a warm-up, with the device synchronised around each run.
Quality is SSIM and PSNR (torchmetrics) of each accelerated image against the unaccelerated image of
the same prompt and seed, averaged over prompts.
"""

from __future__ import annotations

import datetime as _dt
import platform
import statistics
import time
from importlib import metadata

PROMPTS = (
    "a photograph of an astronaut riding a horse",
    "a watercolor painting of a lighthouse on a cliff at sunset",
    "a close-up portrait of an old fisherman, studio lighting",
    "an isometric illustration of a tiny city on a floating island",
)
METRICS = ("ssim", "psnr")
LIBRARIES = ("torch", "diffusers", "transformers", "DeepCache", "tgate", "tomesd", "torchmetrics")


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, device: str):
    """(seconds, result) of one call, with the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def median(values) -> float:
    return float(statistics.median(values))


def image_quality(reference, image) -> dict:
    """SSIM and PSNR of `image` against `reference`: float arrays HxWxC in [0, 1]."""
    import numpy as np
    import torch
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    def as_tensor(pixels):
        pixels = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
        return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)

    ref, out = as_tensor(reference), as_tensor(image)
    return {
        "ssim": float(structural_similarity_index_measure(out, ref, data_range=1.0)),
        "psnr": min(float(peak_signal_noise_ratio(out, ref, data_range=1.0)), 100.0),
    }


def mean_quality(pairs) -> dict:
    scores = [image_quality(reference, image) for reference, image in pairs]
    return {name: round(statistics.fmean(s[name] for s in scores), 4) for name in METRICS}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.machine()}, {platform.processor() or 'unknown'})"


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(*, device: str, dtype: str, resolution: int, weights: str, prompts, seeds,
               repeats: int, seconds: float, threads: int | None = None) -> dict:
    quality_note = (
        "real weights"
        if weights == "real"
        else "random-initialised weights: quality is only a proxy, speed is real"
    )
    record = {
        "device": device_name(device),
        "dtype": dtype,
        "resolution": resolution,
        "weights": weights,
        "prompts": list(prompts),
        "seeds": list(seeds),
        "repeats": repeats,
        "warmup": "one short run per setting before timing",
        "metrics": list(METRICS),
        "quality_note": quality_note,
        "libraries": library_versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sweep_seconds": round(seconds, 1),
        "measured_by": "agent search (search/engine.py)",
    }
    if threads is not None:
        record["cpu_threads"] = threads
    return record
