"""Placeholder until the statistics module lands: a t-interval on log paired ratios."""

from __future__ import annotations

import math
import statistics

_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def speedup_interval(ratios) -> tuple[float, float, float]:
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), 0.0, math.inf
    df = len(logs) - 1
    t = _T975[max(k for k in _T975 if k <= df)]
    half = t * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def needs_more_rounds(ratios, rel_halfwidth=0.03, min_rounds=3, max_rounds=10) -> bool:
    if len(ratios) < min_rounds:
        return True
    if len(ratios) >= max_rounds:
        return False
    estimate, low, high = speedup_interval(ratios)
    return (high - low) / 2 > rel_halfwidth * estimate
