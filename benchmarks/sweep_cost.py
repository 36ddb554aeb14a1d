"""Where a sweep's GPU time goes, and what fewer eager rounds would cost: from the stored timings of
the current protocol's sweeps, no GPU needed.

The refill is bounded by device time (one measuring process per host, about a minute a sweep), and
eager contenders run until their paired interval is within 3%, which on these hosts almost never
happens before the 10-round cap. This re-derives every sweep as if eager contenders had stopped
after K rounds (their first K ratios, and only the baseline timings paired with them in the pool the
graph figures are predicted from), picks every grid target again on both engines, and prints per K:
the timed seconds saved, how many picks changed, how many of the eager targets reached at the cap
are still reached, and how often the K-round lower bound sits above
the full run's estimate (a K-round interval that the longer run contradicts). Only sweeps measured
at the full cap (`SearchConfig.max_rounds`) are re-derived so.

Then it checks the refill plan (`agent search --grid --plan`) against what sweeps took: each sweep's
seconds as `estimate_seconds` would have planned them just before it ran (from the sweeps dated
before it, at its own round cap) beside its recorded seconds; and again as if its model had no
sweep yet, planned from another model's scaled by eager step time, as SDXL's are until its first.

    python benchmarks/sweep_cost.py [--db search_params.json] [--rounds 3,4,5,6]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core import db  # noqa: E402
from search.engine import GRID_TARGETS, eager_seconds_past, estimate_seconds, restate_fastest  # noqa: E402
from search.engine import GridItem, SearchConfig  # noqa: E402
from search.measure import PROTOCOL_VERSION, TIMED_SINCE, round_cap, timed_by, timed_now  # noqa: E402
from search.protocol import stored_figure  # noqa: E402
from search.stats import speedup_interval  # noqa: E402

MIN_ROUNDS = SearchConfig.min_rounds  # a real run times at least this many, whatever the cap


def truncated(sweep: db.Sweep, rounds: int) -> db.Sweep:
    """`sweep` as if its eager contenders had stopped after `rounds` rounds."""
    candidates, pool = [], []
    for candidate, block in zip(sweep.candidates, sweep.baseline_blocks()):
        keep = rounds if candidate.engine == "eager" else len(block)
        candidate = candidate.model_copy(deep=True)
        if candidate.engine == "eager" and len(candidate.ratios) > keep:
            candidate.ratios, candidate.latencies_s = candidate.ratios[:keep], candidate.latencies_s[:keep]
            figure = stored_figure(speedup_interval(candidate.ratios))
            candidate.speedup, candidate.speedup_interval = figure["speedup"], tuple(figure["speedup_interval"])
        candidates.append(candidate)
        pool += block[:keep]
    restate_fastest(candidates, pool)
    return sweep.model_copy(update={"candidates": candidates, "baseline_latencies_s": pool})


def timed_seconds(sweep: db.Sweep) -> dict[str, float]:
    """Seconds spent timing each engine's rounds, baseline included."""
    seconds = {"eager": 0.0, "graph": 0.0}
    for candidate, block in zip(sweep.candidates, sweep.baseline_blocks()):
        seconds[candidate.engine] += sum(block) + sum(candidate.latencies_s)
    return seconds


def picks(sweep: db.Sweep) -> dict[tuple, tuple]:
    """(target, engine) -> (status, params) of every grid target, as `db.store_sweep` picks them."""
    return {(entry.target, entry.engine): (entry.status, entry.params.to_json() if entry.params else None)
            for target in GRID_TARGETS for entry in db.entries_from_sweep(sweep, target)}


def planned(sweep: db.Sweep, data: db.Database, scaled: bool = False) -> Optional[float]:
    """The seconds the refill plan gave `sweep` just before it ran: estimated from the sweeps dated
    before it, at its own round cap; None where there were none to estimate from. `scaled`: as if
    its model had no sweep of this protocol yet, so from another model's scaled by eager step time
    (the estimate SDXL's sweeps get until its first)."""
    def date(s: db.Sweep) -> str:
        return (s.provenance.model_extra or {}).get("date") or ""

    def known(s: db.Sweep) -> bool:
        return date(s) < date(sweep) and not (scaled and s.model == sweep.model and timed_now(s.provenance))

    before = data.model_copy(update={"sweeps": [s for s in data.sweeps if known(s)]})
    item = GridItem(sweep.model, sweep.sampler, sweep.steps, tuple(sweep.accelerators))
    estimate = estimate_seconds(item, before, sweep.engines(), round_cap(sweep.provenance))
    return estimate.seconds if estimate and bool(estimate.scaled_from) == scaled else None


def plan_check(sweeps: list[db.Sweep], data: db.Database) -> None:
    """Print, per round cap, the planned seconds of `sweeps` against those they took: planned from
    their model's earlier sweeps, and from another model's scaled by eager step time."""
    print("\n| plan from | eager round cap | sweeps with a plan | planned GPU-min | took GPU-min | took / planned | "
          "per sweep, least-most |")
    print("|---|---|---|---|---|---|---|")
    groups = [(False, None, "the model's sweeps")] + [(True, model, f"another model's, scaled ({model} sweeps)")
                                                      for model in sorted({s.model for s in sweeps})]
    for scaled, model, source in groups:
        for cap in sorted({round_cap(s.provenance) for s in sweeps} - {None}):  # None: no cap recorded
            pairs = [(plan, s.provenance.model_extra["sweep_seconds"]) for s in sweeps
                     if round_cap(s.provenance) == cap and model in (None, s.model)
                     and (plan := planned(s, data, scaled))]
            if not pairs:
                continue
            plan_s, took_s = sum(p for p, _ in pairs), sum(t for _, t in pairs)
            ratios = [t / p for p, t in pairs]
            print(f"| {source} | {cap} | {len(pairs)} | {plan_s / 60:.1f} | {took_s / 60:.1f} | "
                  f"{took_s / plan_s:.2f} | {min(ratios):.2f}-{max(ratios):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(db.shipped_path()))
    parser.add_argument("--rounds", default="3,4,5,6", help=f"caps to try, each at least {MIN_ROUNDS}")
    args = parser.parse_args()
    caps = sorted({max(MIN_ROUNDS, int(r)) for r in args.rounds.split(",")})
    data = db.load(args.db)
    timed_now = [s for s in data.sweeps  # timed as the current protocol times: its seconds
                 if s.provenance.protocol_version == PROTOCOL_VERSION and timed_by(s.provenance) >= TIMED_SINCE]
    sweeps = [s for s in timed_now if round_cap(s.provenance) == SearchConfig.max_rounds]
    if not sweeps:
        raise SystemExit(f"no sweep timed by protocol {PROTOCOL_VERSION} at {SearchConfig.max_rounds} rounds "
                         f"in {args.db}")
    total = sum(s.provenance.model_extra.get("sweep_seconds", 0.0) for s in sweeps)
    timed = [timed_seconds(s) for s in sweeps]
    eager_s, graph_s = sum(t["eager"] for t in timed), sum(t["graph"] for t in timed)
    rounds = [len(c.ratios) for s in sweeps for c in s.candidates if c.engine == "eager"]
    capped = sum(r >= SearchConfig.max_rounds for r in rounds)
    print(f"{len(sweeps)} sweeps timed by protocol {PROTOCOL_VERSION} at up to {SearchConfig.max_rounds} eager "
          f"rounds in {os.path.relpath(args.db)}: "
          f"{total / 60:.1f} GPU-minutes; timing eager contenders and their baseline rounds {eager_s / total:.0%}, "
          f"graph contenders and theirs {graph_s / total:.0%}, the rest (loading, warm-up, capture, quality "
          f"images) {1 - (eager_s + graph_s) / total:.0%}. {capped} of {len(rounds)} eager contenders ran to "
          f"the {SearchConfig.max_rounds}-round cap.")
    full = [picks(s) for s in sweeps]
    reached_full = sum(status == "ok" for chosen in full for (_, engine), (status, _) in chosen.items()
                       if engine == "eager")
    print(f"\n| eager rounds at most | sweep time saved | eager picks changed | graph picks changed | "
          f"of the {reached_full} eager targets reached at {SearchConfig.max_rounds} rounds, still reached "
          "(and newly reached) | K-round lower bound above the full estimate |")
    print("|---|---|---|---|---|---|")
    for cap in caps:
        short = [truncated(s, cap) for s in sweeps]
        saved = sum(eager_seconds_past(s, cap) for s in sweeps)
        changed = {"eager": 0, "graph": 0}
        counted = {"eager": 0, "graph": 0}
        kept = new = 0
        for before, after in zip(full, (picks(s) for s in short)):
            for (target, engine), pick in before.items():
                counted[engine] += 1
                changed[engine] += after[(target, engine)] != pick
                if engine == "eager" and after[(target, engine)][0] == "ok":
                    kept += pick[0] == "ok"
                    new += pick[0] != "ok"
        above = n = 0
        for sweep, cut in zip(sweeps, short):
            for whole, part in zip(sweep.candidates, cut.candidates):
                if whole.engine == "eager" and len(whole.ratios) > cap:
                    n += 1
                    above += part.speedup_interval[0] > whole.speedup
        print(f"| {cap} | {saved / total:.0%} ({saved / 60:.1f} min) | {changed['eager']} of {counted['eager']} "
              f"| {changed['graph']} of {counted['graph']} | {kept} ({new}) | {above} of {n} |")
    plan_check(timed_now, data)


if __name__ == "__main__":
    main()
