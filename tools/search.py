"""Tool: measure a combination the database lacks (a live search)."""

from __future__ import annotations

import time
from typing import Optional

from core.task import AcceleratorName, ModelName, SamplerName

CPU_NOTE = ("measured on the CPU with a tiny random pipeline: it shows the setting works and how it "
            "ranks, not deployment speed; run `agent search` on a GPU for real figures")


def live_search(model: ModelName, sampler: SamplerName, steps: int, accelerators: list[AcceleratorName],
                db_path: Optional[str] = None) -> dict:
    """Measure one combination now and store it, so the lookup that missed finds it.

    On a CUDA machine this measures the full-size architecture (random weights, float16); elsewhere
    a tiny random pipeline on the CPU, labelled as such.

    Args:
        model: SD1.5, SD2.1 or SDXL.
        sampler: DDIM, DPM-Solver++ or UniPC.
        steps: number of denoising steps.
        accelerators: DeepCache, T-Gate, ToMe (at least one).
        db_path: where to store the result; null means this machine's live-search file.
    """
    try:
        import torch
    except ImportError:
        from core.errors import MissingDependency

        raise MissingDependency("a live search needs torch and diffusers: pip install 'diffaccel[run]'") from None
    from core import db
    from search.engine import SearchConfig, search_one

    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(1)
    config = SearchConfig(
        weights="random" if cuda else "tiny", device="cuda" if cuda else "cpu",
        dtype="float16" if cuda else "float32", repeats=3 if cuda else 2,
        db_path=str(db_path or db.live_path()),
    )
    started = time.monotonic()
    sweep = search_one(model, sampler, steps, accelerators, config)
    return {
        "device": sweep["provenance"]["device"],
        "weights": sweep["provenance"]["weights"],
        "seconds": round(time.monotonic() - started, 1),
        "stored_in": config.db_path,
        "candidates": len(sweep["candidates"]),
        "best_speedup": max(c["speedup"] for c in sweep["candidates"]),
        "note": None if cuda else CPU_NOTE,
    }
