"""Summarise search_params.json: the figures quoted in the README.

    python benchmarks/db_report.py [path]

Per model: the unaccelerated latency per step count, each combination's range of measured
speedups over all its candidates, and how many of the grid's targets no candidate reached.
"""

import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.task import GRID_COMBINATIONS, combination_label  # noqa: E402
from core import db  # noqa: E402


def main(path=None):
    data = db.load(path or Path(__file__).resolve().parents[1] / "search_params.json")
    sweeps = data["sweeps"]
    source = sweeps[0]["provenance"]
    print(f"{len(sweeps)} sweeps, {len(data['entries'])} entries; {source['device']}, {source['dtype']}, "
          f"weights {source['weights']}, {source['repeats']} interleaved rounds, "
          f"{len(source['prompts'])} prompt(s); total sweep time {sum(s['provenance']['sweep_seconds'] for s in sweeps) / 60:.1f} min")
    print()
    print("| model | px | baseline s (20 / 25 / 50 steps, median over sweeps) | " +
          " | ".join(combination_label(c) for c in GRID_COMBINATIONS) + " | infeasible targets |")
    print("|" + "---|" * (4 + len(GRID_COMBINATIONS)))
    for model in ("SD1.5", "SD2.1", "SDXL"):
        mine = [s for s in sweeps if s["model"] == model]
        baselines = defaultdict(list)
        for s in mine:
            baselines[s["steps"]].append(s["baseline_latency_s"])
        base = " / ".join(f"{statistics.median(baselines[n]):.2f}" for n in sorted(baselines))
        ranges = []
        for combo in GRID_COMBINATIONS:
            speeds = [c["speedup"] for s in mine if tuple(s["accelerators"]) == combo for c in s["candidates"]]
            ranges.append(f"{min(speeds):.2f}-{max(speeds):.2f}x")
        entries = [e for e in data["entries"] if e["model"] == model]
        infeasible = sum(e["status"] == "infeasible" for e in entries)
        print(f"| {model} | {mine[0]['provenance']['resolution']} | {base} | " + " | ".join(ranges)
              + f" | {infeasible} of {len(entries)} |")
    print()
    by_target = defaultdict(lambda: [0, 0])
    for e in data["entries"]:
        by_target[e["target"]][0] += e["status"] == "ok"
        by_target[e["target"]][1] += 1
    print("reached per target: " + ", ".join(f"{t:g}x {ok}/{n}" for t, (ok, n) in sorted(by_target.items())))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
