"""benchmarks/sweep_cost.py re-derives stored sweeps as if eager contenders had stopped earlier; the
refill's --max-rounds rests on it, so its re-derivation is checked against the stored figures."""

import importlib.util
from pathlib import Path

from core import db
from search.measure import PROTOCOL_VERSION

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "sweep_cost.py"


def _sweep_cost():
    spec = importlib.util.spec_from_file_location("sweep_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _current_sweep_with_both_engines() -> db.Sweep:
    return next(s for s in db.load(db.shipped_path()).sweeps
                if s.provenance.protocol_version == PROTOCOL_VERSION and s.engines() == ["eager", "graph"]
                and any(c.engine == "eager" and len(c.ratios) == 10 for c in s.candidates))


def test_with_every_round_kept_the_stored_figures_and_picks_come_back():
    sweep_cost = _sweep_cost()
    sweep = _current_sweep_with_both_engines()
    again = sweep_cost.truncated(sweep, 10)
    assert [(c.speedup, tuple(c.speedup_interval)) for c in again.candidates] == \
        [(c.speedup, tuple(c.speedup_interval)) for c in sweep.candidates]
    assert sweep_cost.picks(again) == sweep_cost.picks(sweep)


def test_fewer_eager_rounds_cut_their_ratios_and_their_baseline_timings_and_leave_graph_rounds():
    sweep_cost = _sweep_cost()
    sweep = _current_sweep_with_both_engines()
    short = sweep_cost.truncated(sweep, 4)
    for whole, part, block in zip(sweep.candidates, short.candidates, short.baseline_blocks()):
        if whole.engine == "eager":
            assert part.ratios == whole.ratios[:4] and len(block) == min(4, len(whole.ratios))
        else:
            assert part.latencies_s == whole.latencies_s and len(block) == len(whole.latencies_s)
    assert sweep_cost.timed_seconds(short)["eager"] < sweep_cost.timed_seconds(sweep)["eager"]
    assert sweep_cost.timed_seconds(short)["graph"] == sweep_cost.timed_seconds(sweep)["graph"]
    eager = [c for c in short.candidates if c.engine == "eager" and len(c.ratios) == 4]
    assert eager and all(c.speedup_interval[0] <= c.speedup <= c.speedup_interval[1] for c in eager)
