"""Speedups with their uncertainty: paired per-round ratios, an interval, and when to stop timing.

Why this exists: eager timing on the GPU hosts is noisy (ten back-to-back SD1.5 baselines spanned
0.77-1.32 s, CV 23%), sweeps used 2 rounds, and picking "the best-quality setting whose estimate
crosses the target" favoured settings whose estimate came out high by chance: of 13 tasks claimed
feasible, only 7 reached the target when re-run. So a speedup is stored as an interval, rounds are
added until the interval is narrow enough (or a cap), and a setting reaches a target only when the
interval's LOWER bound does.

The protocol: each round times the baseline and the candidate back to back, so the per-round ratio
``baseline_s / candidate_s`` cancels whatever drift (clocks, temperature, other load) hits both.

Pure Python (math only): the lookup path and the tests need no torch, numpy or scipy.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

CONFIDENCE = 0.95


@dataclass(frozen=True)
class SpeedupInterval:
    """A measured speedup: the estimate and a two-sided confidence interval around it."""

    estimate: float
    low: float
    high: float
    rounds: int
    confidence: float = CONFIDENCE

    @property
    def relative_halfwidth(self) -> float:
        """Half the interval's width as a fraction of the estimate (0.03 means about +-3%)."""
        return (self.high - self.low) / (2 * self.estimate)

    def to_json(self) -> dict:
        return {
            "speedup": round(self.estimate, 4),
            "speedup_low": round(self.low, 4),
            "speedup_high": round(self.high, 4) if math.isfinite(self.high) else None,
            "rounds": self.rounds,
            "confidence": self.confidence,
        }


def paired_ratios(baseline_s: Sequence[float], candidate_s: Sequence[float]) -> list[float]:
    """Per-round speedups: round r's baseline latency over round r's candidate latency.

    Pairing by round (not median over median) is what makes drift cancel: a slow round slows both.
    """
    if len(baseline_s) != len(candidate_s):
        raise ValueError(
            f"{len(baseline_s)} baseline timings but {len(candidate_s)} candidate timings: "
            "pairing needs one of each per round"
        )
    return [baseline / candidate for baseline, candidate in zip(baseline_s, candidate_s)]


def speedup_interval(ratios: Sequence[float], confidence: float = CONFIDENCE) -> SpeedupInterval:
    """Geometric mean of the per-round ratios with a Student-t interval on their logarithms.

    Why this interval: latencies are positive and their noise multiplicative, so log-ratios are
    close to normal (exactly normal for lognormal timing noise), and the t-interval is then exact
    at any number of rounds, 2 included. A percentile bootstrap is the alternative we rejected: at
    3-10 rounds it has only a handful of distinct resamples and is too narrow (a 95% one covered
    74% at 3 rounds in our simulation at CV 23%), the very overclaiming this module exists to
    stop. The estimate is the geometric mean, i.e. the ratio of typical latencies, so a
    2x-faster and a 2x-slower setting are symmetric.
    With one round there is no spread to measure: the interval is (0, inf).
    """
    if not ratios:
        raise ValueError("no rounds measured: a speedup needs at least one paired round")
    if any(ratio <= 0 or not math.isfinite(ratio) for ratio in ratios):
        raise ValueError(f"speedup ratios must be positive and finite, got {list(ratios)}")
    logs = [math.log(ratio) for ratio in ratios]
    centre = statistics.fmean(logs)
    estimate = math.exp(centre)
    if len(logs) < 2:
        return SpeedupInterval(estimate, 0.0, math.inf, len(logs), confidence)
    standard_error = statistics.stdev(logs) / math.sqrt(len(logs))
    margin = t_quantile(0.5 + confidence / 2, len(logs) - 1) * standard_error
    return SpeedupInterval(
        estimate, math.exp(centre - margin), math.exp(centre + margin), len(logs), confidence
    )


def steady_speedup(baseline_blocks: Sequence[Sequence[float]], contender_s: Sequence[float],
                   run_rounds: int = 3, confidence: float = CONFIDENCE) -> SpeedupInterval:
    """Speedup of a contender whose latency does not move with the host (a CUDA-graph pipeline)
    over the eager baseline, whose latency does, with a `confidence` PREDICTION interval for what
    one later run of `run_rounds` rounds (a script's `--benchmark`) will measure.

    Why not paired ratios: pairing cancels drift that hits both sides, and on the lent H100 hosts it
    hits one. The eager SD1.5 baseline of one sweep took 0.76 to 1.66 s and one script's held at
    1.52 s for its whole run, while a graph pipeline took 0.22-0.25 s throughout
    (benchmarks/results/eager_baseline.md, section 3). A paired interval describes the moment the
    contender was timed, and a pick that trusts it selects settings timed beside a slow baseline.

    The model: the host's eager speed holds a level for a while (a block of rounds) and moves
    between blocks, lognormally; timings jitter around the level. `baseline_blocks` are the
    baseline's timings of one sweep grouped by the contender they were paired with, in the order
    they were timed. A one-way random-effects split of their logarithms gives the variance between
    levels and the jitter within a block; a later run's log-speedup then varies by the level's
    variance, the jitter of its own `run_rounds` rounds on both sides, and the uncertainty of the
    sweep's mean, with a Student-t factor. Levels drift, so neighbouring blocks are alike (lag-1
    correlation 0.5 in the SD1.5 sweep above): with `drift_correlation` r, the blocks' sample
    variance understates the levels' spread (by 1 - 2/(n-1) sum_k (1 - k/n) r^k for AR(1) levels)
    and their mean is worth n (1 - r) / (1 + r) independent blocks; both are corrected. The
    estimate is the geometric mean of the block levels over the contender's median. On a synthetic
    host with AR(1) levels, 2.5-3.1% of later runs fell below the lower bound at lag-1 correlations
    0 and 0.3 (tests/test_stats.py checks it), 4-5% at 0.6 and 8% at 0.8. What it cannot see is a
    spread the sweep never met: a level held through the whole sweep, or another host.
    """
    blocks = [[math.log(x) for x in _positive(block)] for block in baseline_blocks if block]
    if len(blocks) < 2 or not contender_s:
        raise ValueError("a steady speedup needs the baseline timed in at least 2 blocks, and the contender")
    means = [statistics.fmean(block) for block in blocks]
    within = [statistics.variance(block) for block in blocks if len(block) > 1]
    jitter = statistics.fmean(within) if within else 0.0
    n, correlation = len(means), drift_correlation(means)
    understated = 1 - 2 / (n - 1) * sum((1 - k / n) * correlation ** k for k in range(1, n))
    between = statistics.variance(means) / max(understated, 0.1)
    independent = n * (1 - correlation) / (1 + correlation)
    level = max(0.0, between - statistics.fmean(jitter / len(block) for block in blocks))
    contender_logs = [math.log(x) for x in _positive(contender_s)]
    contender_jitter = statistics.variance(contender_logs) if len(contender_logs) > 1 else 0.0
    spread = math.sqrt(level + (jitter + contender_jitter) / run_rounds + between / independent
                       + contender_jitter / len(contender_logs))
    margin = t_quantile(0.5 + confidence / 2, n - 1) * spread
    centre = statistics.fmean(means) - math.log(statistics.median(contender_s))
    return SpeedupInterval(math.exp(centre), math.exp(centre - margin), math.exp(centre + margin),
                           len(contender_s), confidence)


def drift_correlation(values: Sequence[float], most: float = 0.9) -> float:
    """Lag-1 autocorrelation of a series, clipped to [0, `most`]: how alike neighbours are."""
    centre = statistics.fmean(values)
    deviations = [value - centre for value in values]
    total = sum(d * d for d in deviations)
    correlation = sum(a * b for a, b in zip(deviations, deviations[1:])) / total if total else 0.0
    return min(max(correlation, 0.0), most)


def _positive(timings: Sequence[float]) -> Sequence[float]:
    if any(not (t > 0 and math.isfinite(t)) for t in timings):
        raise ValueError(f"timings must be positive and finite seconds, got {list(timings)}")
    return timings


def needs_more_rounds(ratios: Sequence[float], rel_halfwidth: float = 0.03, min_rounds: int = 3,
                      max_rounds: int = 10, confidence: float = CONFIDENCE) -> bool:
    """Whether to time another round: below `min_rounds`, or too wide and under `max_rounds`.

    `min_rounds` guards against stopping on two rounds that agree by luck (their spread, hence the
    interval, is itself a noisy estimate); `max_rounds` bounds the GPU time a sweep may take, so a
    very noisy host ends with a wide interval (and an honest "infeasible") rather than running on.
    """
    if len(ratios) < min_rounds:
        return True
    if len(ratios) >= max_rounds:
        return False
    return speedup_interval(ratios, confidence).relative_halfwidth > rel_halfwidth


def reaches(candidate_stats: SpeedupInterval, target: float) -> bool:
    """A setting reaches `target` only when its interval's lower bound does.

    A setting whose true speedup is below the target then passes with probability at most
    (1 - confidence) / 2 (2.5% at 95%), however noisy the host: noise widens the interval
    instead of inflating the claim. When several settings sit just below the target, the chance
    that one of them is picked is at most that rate times their number.
    """
    return candidate_stats.low >= target


@lru_cache(maxsize=256)
def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """Quantile of Student's t distribution, by bisection on its CDF (no scipy on the lookup path)."""
    if not 0.5 <= probability < 1:
        raise ValueError(f"probability must be in [0.5, 1), got {probability}")
    low, high = 0.0, 1.0
    while _t_cdf(high, degrees_of_freedom) < probability:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        if _t_cdf(middle, degrees_of_freedom) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _t_cdf(t: float, degrees_of_freedom: int) -> float:
    """P(T <= t) for t >= 0, through the regularised incomplete beta function."""
    x = degrees_of_freedom / (degrees_of_freedom + t * t)
    return 1 - 0.5 * _incomplete_beta(degrees_of_freedom / 2, 0.5, x)


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (Numerical Recipes' continued fraction)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Lentz's evaluation of the incomplete beta continued fraction."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result
