"""Choosing among measured candidates: the Pareto front and the pick for a target speedup.

Pure Python on plain dicts (`{"speedup": float, "quality": {"ssim": ..., "psnr": ...}}`), so the
lookup path needs no torch.
"""

from __future__ import annotations

from typing import Optional

# Higher is better for both; SSIM decides, PSNR breaks ties.
QUALITY_ORDER = ("ssim", "psnr")


def quality_key(candidate: dict) -> tuple:
    quality = candidate.get("quality") or {}
    return tuple(_finite(quality.get(name)) for name in QUALITY_ORDER)


def _finite(value) -> float:
    if value is None or value != value:  # NaN sorts last
        return float("-inf")
    return float(value)


def pareto_front(candidates: list[dict]) -> list[dict]:
    """Candidates no other candidate beats on both speed and quality, fastest first."""
    front = []
    for candidate in candidates:
        dominated = any(
            other is not candidate
            and other["speedup"] >= candidate["speedup"]
            and quality_key(other) >= quality_key(candidate)
            and (other["speedup"] > candidate["speedup"] or quality_key(other) > quality_key(candidate))
            for other in candidates
        )
        if not dominated:
            front.append(candidate)
    return sorted(front, key=lambda c: -c["speedup"])


def pick(candidates: list[dict], target: float) -> tuple[str, Optional[dict]]:
    """('ok', best-quality candidate reaching target) or ('infeasible', the fastest candidate)."""
    if not candidates:
        return "infeasible", None
    reaching = [c for c in candidates if c["speedup"] >= target]
    if reaching:
        return "ok", max(reaching, key=lambda c: (quality_key(c), c["speedup"]))
    return "infeasible", max(candidates, key=lambda c: c["speedup"])
