"""Scripts against the figures they were generated from, before and after protocol 4: the tables of
benchmarks/results/eager_baseline.md section 3, from the committed raw files.

Each verify row is matched to its graph candidate (its combination and the claimed latency identify
it in the protocol-3 sweeps); the table puts the script's speedup beside that candidate's paired
protocol-3 figure and its protocol-4 figure, then counts the scripts below each lower bound.

    python benchmarks/verify_table.py [--p3 FILE] [--p4 FILE] [LABEL=VERIFY.jsonl ...]

The shipped database holds protocol-5 figures since (benchmarks/rederive_fastest.py): to print the
section as it was, pass the protocol-4 file, `git show dee19c8:search_params.json > p4.json; --p4 p4.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.verify import combo_key_of  # noqa: E402
from core import db  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
RUNS = [f"3a (host 2)={RESULTS}/verify_h100_3a.jsonl", f"3b (host 3)={RESULTS}/verify_h100_3b.jsonl",
        f"4 (host 4)={RESULTS}/verify_h100_4.jsonl"]


def graph_candidates(path: str) -> dict:
    """(combination key, DeepCache interval, branch) -> graph candidate, every sweep."""
    found = {}
    for sweep in db.load(path).sweeps:
        for candidate in sweep.candidates:
            if candidate.engine == "graph" and candidate.params.deepcache:
                knobs = candidate.params.deepcache
                found[(sweep.combo_key, knobs.cache_interval, knobs.cache_branch_id)] = candidate
    return found


def sweep_table(path: str) -> None:
    """Each sweep's eager baseline: all timings, the fastest (what protocol 5's graph figures are
    over), the median of each block (one per candidate, in the order timed) and their CV."""
    print("| sweep | eager baseline, all | fastest | median of each block | CV |")
    print("|---|---|---|---|---|")
    for sweep in db.load(path).sweeps:
        timings, blocks = sweep.baseline_latencies_s, sweep.baseline_blocks()
        spread = statistics.pstdev(timings) / statistics.fmean(timings)
        print(f"| {sweep.label()} | {statistics.median(timings):.3f} ({min(timings):.2f}-{max(timings):.2f}) | "
              f"{min(timings):.3f} | {', '.join(f'{statistics.median(block):.2f}' for block in blocks)} | "
              f"{spread:.0%} |")
    print()


def figure(candidate) -> str:
    low, high = candidate.speedup_interval
    return f"{candidate.speedup:.2f}x ({low:.2f}-{high:.2f})"


def seconds(row: dict) -> str:
    timings = row.get("baseline_latencies_s")
    spread = f" ({min(timings):.2f}-{max(timings):.2f})" if timings else ""
    return f"{row['baseline_latency_s']:.3f}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p3", default=os.path.join(RESULTS, "refill_h100_3_sweeps.json"))
    parser.add_argument("--p4", default=str(db.shipped_path()))
    parser.add_argument("runs", nargs="*", default=RUNS)
    args = parser.parse_args()
    before, after = graph_candidates(args.p3), graph_candidates(args.p4)
    sweep_table(args.p3)
    print("| call (host) | task | setting (graph) | script's eager baseline | its graph s | script "
          "| database p3 | database p4 | /p3 | /p4 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ratios = {"p3": [], "p4": []}
    below = {"p3": 0, "p4": 0}
    labels = []
    for label, path in (run.split("=", 1) for run in args.runs):
        for line in open(path, encoding="utf-8"):
            row = json.loads(line)
            key = next(k for k, c in before.items()
                       if k[0] == combo_key_of(row) and abs(c.latency_s - row["claimed_latency_s"]) < 1e-4)
            speedup, cells = row["speedup"], []
            labels.append(label)
            for name, candidate in (("p3", before[key]), ("p4", after[key])):
                ratios[name].append(speedup / candidate.speedup)
                below[name] += speedup < candidate.speedup_interval[0]
                cells.append(figure(candidate))
            task = row["task"].split()
            print(f"| {label} | {task[0]} {task[-1]} | DC {key[1]}/{key[2]} | {seconds(row)} | {row['latency_s']:.3f} "
                  f"| {speedup:.2f}x | {cells[0]} | {cells[1]} | {ratios['p3'][-1]:.2f} | {ratios['p4'][-1]:.2f} |")
    count = len(ratios["p3"])
    print()
    for name in ("p3", "p4"):
        by_run = {label: statistics.median(r for r, l in zip(ratios[name], labels) if l == label)
                  for label in dict.fromkeys(labels)}
        print(f"{name}: {count} scripts, median script/database {statistics.median(ratios[name]):.3f} "
              f"({', '.join(f'{label} {value:.3f}' for label, value in by_run.items())}), "
              f"{below[name]} below the lower bound")


if __name__ == "__main__":
    main()
