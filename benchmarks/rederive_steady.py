"""Re-derive the graph figures of protocol-3 sweeps by protocol 4, from the timings they stored.

Protocol 3 and 4 time alike (one process per host, interleaved rounds); protocol 4 only estimates a
graph contender's speedup differently: over every baseline timing of its sweep, with a prediction
interval (search/stats.py `steady_speedup`), because on the lent H100 hosts the eager baseline's
speed wanders and a graph pipeline's does not (benchmarks/results/eager_baseline.md, section 3).
A protocol-3 sweep stored every timing, so its protocol-4 figures follow without a GPU; its
entries are picked again. Eager candidates keep their paired figures. Prints each graph candidate
before and after.

    python benchmarks/rederive_steady.py [--db search_params.json]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core import db  # noqa: E402
from search.engine import GRID_TARGETS, SearchConfig, restate_steady  # noqa: E402
from search.measure import PROTOCOL_VERSION, STEADY_SINCE  # noqa: E402

FROM_VERSION = STEADY_SINCE - 1  # timed like protocol 4, estimated the paired way


def rederive(sweep: db.Sweep) -> list[str]:
    """Protocol-4 figures for `sweep`'s graph candidates, in place; a line per candidate changed."""
    lines = []
    for candidate, speedup, (low, high) in restate_steady(sweep, SearchConfig().min_rounds):
        lines.append(f"{sweep.label()} graph {candidate.params.describe()}: {speedup:.2f}x ({low:.2f}-{high:.2f}) -> "
                     f"{candidate.speedup:.2f}x ({candidate.speedup_interval[0]:.2f}-{candidate.speedup_interval[1]:.2f})")
    sweep.provenance.protocol_version = PROTOCOL_VERSION
    extra = sweep.provenance.model_extra
    extra["rederived"] = (f"graph figures re-derived by protocol {PROTOCOL_VERSION} from the timings of a "
                          f"protocol-{FROM_VERSION} sweep (benchmarks/rederive_steady.py)")
    extra["protocol"] = extra.get("protocol", "") + "; graph figures: steady_speedup over every baseline timing"
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(db.shipped_path()))
    args = parser.parse_args()

    def mutate(data: db.Database) -> None:
        for sweep in [s for s in data.sweeps if s.provenance.protocol_version == FROM_VERSION]:
            if not sweep.baseline_latencies_s or any(not c.latencies_s for c in sweep.candidates):
                print(f"{sweep.label()}: no stored timings, left as it was")
                continue
            if len(sweep.candidates) < 2:  # one block: the protocol keeps its paired figure too
                print(f"{sweep.label()}: one candidate, left as it was")
                continue
            print("\n".join(rederive(sweep)))
            db.store_sweep(data, sweep, GRID_TARGETS, force=True)

    db.update(mutate, args.db)


if __name__ == "__main__":
    main()
