"""benchmarks/rederive_fastest.py: verify runs matched to the sweeps their claims came from, and told
apart by whether GRAPH_LEVEL_SD was fit on them. Checked on verify files made up here from a shipped sweep."""

import json
import math

from core import db
from tests.conftest import benchmark_module


def _runs(sweep: db.Sweep, candidate: db.Candidate, slower: float) -> str:
    """Two verify records of `candidate`'s claim whose scripts ran its graph `slower` times its sweep's."""
    row = {"id": f"{sweep.model}|{sweep.sampler}|{sweep.steps}|{'+'.join(sweep.accelerators)}|2",
           "engine": "graph", "error": None, "ratio": 1.0,
           "claimed_baseline_latency_s": sweep.baseline_latency_s, "claimed_latency_s": candidate.latency_s,
           "baseline_latencies_s": list(sweep.baseline_latencies_s[:10]),
           "latencies_s": [t * slower for t in candidate.latencies_s]}
    return "\n".join(json.dumps(row) for _ in range(2)) + "\n"


def test_runs_the_level_allowance_was_fit_on_are_reported_apart_from_later_ones(tmp_path, monkeypatch, capsys):
    rederive = benchmark_module("rederive_fastest")
    shipped = db.load(db.shipped_path())
    sweep, candidate = next((s, c) for s in shipped.sweeps for c in s.candidates
                            if c.engine == "graph" and c.latencies_s and s.baseline_latencies_s)
    fit_on = sorted(rederive.FIT_ON)[0]
    (tmp_path / fit_on).write_text(_runs(sweep, candidate, 1.0))
    (tmp_path / "verify_later.jsonl").write_text(_runs(sweep, candidate, 1.5))
    (tmp_path / "verify_other.jsonl").write_text(_runs(sweep, candidate, 1.0).replace('"graph"', '"eager"'))
    monkeypatch.setattr(rederive, "RESULTS", tmp_path)

    rederive.evidence(db.Database(sweeps=[sweep]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("4 script runs of 1 graph claims in 1 sweeps")  # the eager records are not matched
    in_sample = next(line for line in lines if "in sample" in line)
    later = next(line for line in lines if "out of sample" in line)
    assert "of 2;" in in_sample and "of 2;" in later
    assert in_sample.endswith("root mean square 0.0000")
    assert later.endswith(f"root mean square {math.log(1.5):.4f}")
    # a script whose graph ran 1.5x slower measured a smaller speedup than its claim
    median = lambda line: float(line.split("median ")[1].split(",")[0])  # noqa: E731
    assert median(later) < median(in_sample)
