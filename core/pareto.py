"""Choosing among measured candidates: the Pareto front and the pick for a target speedup.

Works on anything with `speedup`, `speedup_low` and `quality` (core.db.Candidate), in pure Python,
so the lookup path needs no torch.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

# Higher is better for both; SSIM decides, PSNR breaks ties.
QUALITY_ORDER = ("ssim", "psnr")


def interval_text(low: float, high: float) -> str:
    """An interval as '1.99-3.71', rounded outward to two decimals: a lower bound of 1.997 shows as
    1.99, never as the 2.00 of a target it does not reach."""
    return f"{math.floor(low * 100 + 1e-9) / 100:.2f}-{math.ceil(high * 100 - 1e-9) / 100:.2f}"


def quality_key(measured) -> tuple:
    quality = getattr(measured, "quality", None)
    return tuple(_finite(getattr(quality, name, None)) for name in QUALITY_ORDER)


def _finite(value) -> float:
    if value is None or value != value:  # NaN sorts last
        return float("-inf")
    return float(value)


def pareto_front(candidates: Sequence) -> list:
    """Candidates no other candidate beats on both speed and quality, fastest first."""
    front = []
    for candidate in candidates:
        dominated = any(
            other is not candidate
            and other.speedup >= candidate.speedup
            and quality_key(other) >= quality_key(candidate)
            and (other.speedup > candidate.speedup or quality_key(other) > quality_key(candidate))
            for other in candidates
        )
        if not dominated:
            front.append(candidate)
    return sorted(front, key=lambda c: -c.speedup)


def pick(candidates: Sequence, target: float) -> tuple[str, Optional[object]]:
    """('ok', best-quality candidate whose speedup's lower bound reaches the target) or
    ('infeasible', the fastest candidate).

    The lower bound, not the point estimate: picking the best quality among estimates that cross
    the target selects the estimates that came out high by chance (search/stats.py measures how
    often); the lower bound keeps that rate at the interval's stated level.
    """
    if not candidates:
        return "infeasible", None
    reaching = [c for c in candidates if c.speedup_low >= target]
    if reaching:
        return "ok", max(reaching, key=lambda c: (quality_key(c), c.speedup))
    return "infeasible", max(candidates, key=lambda c: c.speedup)
