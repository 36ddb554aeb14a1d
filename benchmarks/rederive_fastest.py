"""Re-derive protocol-4 sweeps by protocol 5, from the timings they stored, and show why.

Protocol 4 and 5 time alike; protocol 5 only estimates a graph contender's speedup differently:
over the eager baseline's fastest run instead of its typical level (search/stats.py
`fastest_speedup`). First this prints the evidence, from every `agent verify` record in
benchmarks/results/verify_*.jsonl whose claim came from a sweep in the database (matched by the
sweep's baseline median and the candidate's latency, which re-deriving leaves alone): how far a
script's graph latency moves from its sweep's (the `GRAPH_LEVEL_SD` the prediction uses), and the
script/database ratios of both estimators, the script's own figure taken the same way as the
database's. Then, with --write, it re-derives: eager candidates keep their paired figures, graph
candidates get protocol 5's, and every entry is picked again. Prints each graph candidate before and
after.

    python benchmarks/rederive_fastest.py [--db search_params.json] [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.verify import combo_key_of  # noqa: E402
from core import db  # noqa: E402
from search.engine import GRID_TARGETS, restate_fastest  # noqa: E402
from search.measure import PROTOCOL_VERSION, workers_on_host  # noqa: E402
from search.stats import FASTEST_OF, GRAPH_LEVEL_SD, fastest_speedup  # noqa: E402

FROM_VERSION, TO_VERSION = 4, 5  # timed alike; 4's graph figures are over the baseline's typical level
RESULTS = Path(__file__).resolve().parent / "results"
# The verify runs GRAPH_LEVEL_SD was fit on (search/stats.py); runs in other files are out of sample.
FIT_ON = frozenset({"verify_h100_3b.jsonl", "verify_h100_4.jsonl", "verify_h100_5.jsonl", "verify_h100_6.jsonl",
                    "verify_h200x2_7.jsonl"})


def verified_pairs(data: db.Database) -> list[tuple[str, dict, db.Sweep, db.Candidate]]:
    """(file, verify record, sweep, graph candidate) for each graph claim a script checked."""
    graph = {}
    for sweep in data.sweeps:
        for candidate in sweep.candidates:
            if candidate.engine == "graph" and candidate.latencies_s:
                graph[(sweep.combo_key, sweep.baseline_latency_s, candidate.latency_s)] = (sweep, candidate)
    pairs = []
    for path in sorted(RESULTS.glob("verify_*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("engine") != "graph" or row.get("error") or not row.get("latencies_s"):
                continue
            key = (combo_key_of(row), row.get("claimed_baseline_latency_s"), row.get("claimed_latency_s"))
            if key in graph:
                pairs.append((path.name, row, *graph[key]))
    return pairs


def quartiles(values: list[float]) -> str:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return (f"median {q2:.3f}, quartiles {q1:.3f}-{q3:.3f}, range {min(values):.3f}-{max(values):.3f}, "
            f"within 7% {sum(0.93 <= v <= 1.07 for v in values)} of {len(values)}")


def evidence(data: db.Database) -> None:
    pairs = verified_pairs(data)
    if len(pairs) < 4:
        print(f"{len(pairs)} verify records match a sweep in this database: too few to compare")
        return
    files = sorted({name for name, *_ in pairs})
    claims = {(sweep.combo_key, id(candidate)) for _, _, sweep, candidate in pairs}
    print(f"{len(pairs)} script runs of {len(claims)} graph claims in "
          f"{len({sweep.combo_key for _, _, sweep, _ in pairs})} sweeps ({', '.join(files)})")
    moved = [math.log(statistics.median(row["latencies_s"]) / statistics.median(c.latencies_s))
             for _, row, _, c in pairs]
    print(f"script's graph median over its sweep's, log: mean {statistics.fmean(moved):+.4f}, standard "
          f"deviation {statistics.stdev(moved):.4f}, root mean square {math.sqrt(statistics.fmean(m * m for m in moved)):.4f} "
          f"(GRAPH_LEVEL_SD, {GRAPH_LEVEL_SD}, allows for the last)")
    typical, fastest, below = [], [], []
    for _, row, sweep, candidate in pairs:
        typical.append(row["ratio"])  # as verify recorded it, against the claim of its day (protocol 3 or 4)
        baseline, graph = row["baseline_latencies_s"], row["latencies_s"]
        script = min(baseline) / statistics.median(graph)
        claim = fastest_speedup(sweep.baseline_latencies_s, candidate.latencies_s, len(baseline))  # its rounds
        fastest.append(script / claim.estimate)
        below.append(script < claim.low)
    print(f"script/database as verify recorded it (typical level): {quartiles(typical)}")
    print(f"script/database, protocol 5 (fastest run):             {quartiles(fastest)}; "
          f"{sum(below)} of {len(pairs)} below the claim's lower bound")
    for fit, label in ((True, "in sample (the runs GRAPH_LEVEL_SD is fit on)"), (False, "out of sample")):
        chosen = [i for i, (name, *_) in enumerate(pairs) if (name in FIT_ON) == fit]
        if len(chosen) >= 2:
            level = math.sqrt(statistics.fmean(moved[i] ** 2 for i in chosen))
            print(f"  {label}: {quartiles([fastest[i] for i in chosen])}; "
                  f"{sum(below[i] for i in chosen)} below the lower bound; graph level root mean square {level:.4f}")
    shared = [index for index, (_, _, sweep, _) in enumerate(pairs) if workers_on_host(sweep.provenance) > 1]
    if shared:
        print(f"of which {len(shared)} from sweeps measured beside another grid worker: medians "
              f"{statistics.median(typical[i] for i in shared):.3f} (protocol 4), "
              f"{statistics.median(fastest[i] for i in shared):.3f} (protocol 5)")


def rederive(sweep: db.Sweep) -> list[str]:
    """Protocol-5 figures for `sweep`'s graph candidates, in place; a line per candidate."""
    lines = []
    for candidate, speedup, (low, high) in restate_fastest(sweep.candidates, sweep.baseline_latencies_s):
        lines.append(f"{sweep.label()} graph {candidate.params.describe()}: {speedup:.2f}x ({low:.2f}-{high:.2f}) -> "
                     f"{candidate.speedup:.2f}x ({candidate.speedup_interval[0]:.2f}-{candidate.speedup_interval[1]:.2f})")
    extra = sweep.provenance.model_extra
    # timed by protocol 4, unless an earlier re-derivation says protocol 3 timed it
    extra["timed_by"] = extra.get("timed_by") or (3 if "protocol-3" in (extra.get("rederived") or "") else FROM_VERSION)
    sweep.provenance.protocol_version = TO_VERSION
    extra["rederived"] = "; ".join(filter(None, [extra.get("rederived"), (
        f"graph figures re-derived by protocol {TO_VERSION} from the timings of a protocol-{FROM_VERSION} "
        "sweep (benchmarks/rederive_fastest.py)")]))
    extra["protocol"] = (extra.get("protocol", "").split("; graph figures")[0].replace(" (steady_speedup)", "")
                         + f"; graph figures: predicted for a {FASTEST_OF}-round run over the baseline's "
                           "fastest run (fastest_speedup)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(db.shipped_path()))
    parser.add_argument("--write", action="store_true", help="re-derive the protocol-4 sweeps in --db")
    args = parser.parse_args()
    evidence(db.load(args.db))
    if not args.write:
        return
    if PROTOCOL_VERSION != TO_VERSION:
        sys.exit(f"this re-derives protocol {FROM_VERSION} to {TO_VERSION}; the current protocol is {PROTOCOL_VERSION}")

    def mutate(data: db.Database) -> None:
        for sweep in [s for s in data.sweeps if s.provenance.protocol_version == FROM_VERSION]:
            if not sweep.baseline_latencies_s or any(not c.latencies_s for c in sweep.candidates):
                print(f"{sweep.label()}: no stored timings, left as it was")
                continue
            print("\n".join(rederive(sweep)))
            db.store_sweep(data, sweep, GRID_TARGETS, force=True)

    db.update(mutate, args.db)


if __name__ == "__main__":
    main()
