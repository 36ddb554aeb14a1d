"""Summarise search_params.json: the figures quoted in the README.

    python benchmarks/db_report.py [path]

Only sweeps measured with intervals (search/protocol.py, both engines) are
tabulated; how many older sweeps remain is said. Per model and combination: the unaccelerated eager
latency, and on each engine the fastest measured speedup with its 95% interval, and the setting
picked for 2x with its quality.
"""

import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import db  # noqa: E402
from core.pareto import interval_text  # noqa: E402
from core.task import GRID_COMBINATIONS, MODELS, combination_label  # noqa: E402
from search.measure import workers_on_host  # noqa: E402


def knobs(settings) -> str:
    """'DeepCache 2/1 + ToMe 0.5': interval/branch, gate step, ratio."""
    short = {"DeepCache": lambda p: f"{p['cache_interval']}/{p['cache_branch_id']}",
             "T-Gate": lambda p: f"gate {p['gate_step']}", "ToMe": lambda p: f"{p['ratio']:g}"}
    return " + ".join(f"{name} {short[name](params)}" for name, params in settings.to_json().items())


def figure(candidate) -> str:
    low, high = candidate.speedup_interval
    return f"{candidate.speedup:.2f}x ({interval_text(low, high)})"


def version(sweep) -> int:
    """Its protocol version; sweeps with intervals but no version came before versions: 1."""
    return sweep.provenance.protocol_version or 1


def groupby_protocol(sweeps) -> dict:
    groups: dict = {}
    for sweep in sweeps:
        groups.setdefault((version(sweep), sweep.provenance.device, workers_on_host(sweep.provenance)), []).append(sweep)
    return groups


def main(path=None):
    data = db.load(path or db.shipped_path())
    current = [s for s in data.sweeps if all(c.speedup_interval for c in s.candidates)]
    older = len(data.sweeps) - len(current)
    if not current:
        print(f"no sweep measured with intervals ({older} older sweeps)")
        return
    print(f"{len(current)} sweeps with intervals ({older} older ones not tabulated), by how they were measured:")
    for key, group in sorted(groupby_protocol(current).items(), key=lambda item: (-item[0][0], item[0][2])):
        source = group[0].provenance.model_dump()
        minutes = sum(s.provenance.model_dump().get("sweep_seconds", 0) for s in group) / 60
        rederived = Counter(s.provenance.model_dump().get("rederived") for s in group)
        note = "".join(f"; {count} of them: {how}" for how, count in sorted(rederived.items(), key=str) if how)
        shared = f" by one of {key[2]} grid workers on its host (re-measured by the next refill)" if key[2] > 1 else ""
        print(f"- protocol {key[0]} on {key[1]}{shared}: {len(group)} sweeps, {source['dtype']}, "
              f"{source['weights']} weights, {len(source['prompts'])} prompts, {source['protocol']}"
              f"{note}; {minutes:.1f} GPU-minutes")
    print()
    print("| model | sampler | steps | combination | protocol | eager baseline s, median (CV; fastest run) "
          "| fastest eager | fastest graph "
          "| 2x pick, graph (DeepCache interval/branch) | its SSIM |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for sweep in sorted(current, key=lambda s: (MODELS.index(s.model), s.sampler, s.steps,
                                                  GRID_COMBINATIONS.index(tuple(s.accelerators)))):
        by_engine = {e: [c for c in sweep.candidates if c.engine == e] for e in ("eager", "graph")}
        fastest = {e: figure(max(cs, key=lambda c: c.speedup)) if cs else "-" for e, cs in by_engine.items()}
        pick = db.entry_from_sweep(sweep, 2.0, "graph") if by_engine["graph"] else None
        chosen = (knobs(pick.params) if pick.feasible else "infeasible") if pick else "-"
        ssim = f"{pick.measured.quality.ssim:.3f}" if pick and pick.measured else "-"
        spread = statistics.pstdev(sweep.baseline_latencies_s) / statistics.fmean(sweep.baseline_latencies_s)
        shared = " (shared host)" if workers_on_host(sweep.provenance) > 1 else ""
        baseline = f"{sweep.baseline_latency_s:.2f} (CV {spread:.0%}; {min(sweep.baseline_latencies_s):.2f})"
        print(f"| {sweep.model} | {sweep.sampler} | {sweep.steps} | {combination_label(sweep.accelerators)} | "
              f"{version(sweep)}{shared} | {baseline} | {fastest['eager']} | {fastest['graph']} | {chosen} | {ssim} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
