"""benchmarks/refill_diff.py: what became of the first version's claims once their combinations were
measured again. Checked on a first version made up here from a shipped sweep, so the counts are known."""

from core import db
from core.pareto import quality_key
from core.task import GRID_TARGETS
from search.measure import timed_now
from tests.conftest import benchmark_module


def _first_version(sweep: db.Sweep, factor: float) -> db.Sweep:
    """`sweep` as a first version would have measured it: eager only, every figure `factor` times."""
    candidates = [c.model_copy(update={"speedup": c.speedup * factor,
                                       "speedup_interval": tuple(v * factor for v in c.speedup_interval)})
                  for c in sweep.candidates if c.engine == "eager"]
    return sweep.model_copy(update={"candidates": candidates})


def test_each_first_version_claim_is_checked_against_its_settings_new_interval():
    refill_diff = benchmark_module("refill_diff")
    shipped = db.load(db.shipped_path())
    new = next(s for s in shipped.sweeps if timed_now(s.provenance) and s.engines() == ["eager", "graph"]
               and len([c for c in s.candidates if c.engine == "eager"]) > 1)
    elsewhere = next(s for s in shipped.sweeps if not timed_now(s.provenance))  # never measured again: left out
    old_sweeps = [_first_version(new, 10.0), _first_version(elsewhere, 10.0)]
    entries = [e for s in old_sweeps for t in GRID_TARGETS for e in db.entries_from_sweep(s, t)]
    old = db.Database(sweeps=old_sweeps, entries=entries)
    data = db.Database(sweeps=[new])

    counts = refill_diff.compare(old, data)
    assert list(counts) == [new.model]
    count = counts[new.model]
    claimed = [t for t in GRID_TARGETS if t <= 10.0 * max(c.speedup_interval[0] for c in new.candidates
                                                         if c.engine == "eager")]
    # every setting looked 10x as fast: the first version claimed the best-quality one for each target
    best = max((c for c in new.candidates if c.engine == "eager"), key=quality_key)
    assert count["claims"] == len(claimed) == count["setting measured again"] and claimed
    assert count["its new lower bound reaches the target"] == sum(t <= best.speedup_interval[0] for t in claimed)
    assert count["its new estimate reaches the target"] == sum(t <= best.speedup for t in claimed)
    picked = [e for e in entries if e.combo_key == new.combo_key and e.engine == "eager" and e.status == "ok"]
    assert count["claimed figure within 10% of the target"] == sum(e.measured.speedup < 1.1 * e.target for e in picked)
    for engine in ("eager", "graph"):
        reached = sum(e.status == "ok" for t in claimed for e in db.entries_from_sweep(new, t) if e.engine == engine)
        assert count[f"target reached by the new {engine} pick"] == reached

    ratios = refill_diff.figure_ratios(old, data)[new.model]
    assert len(ratios) == len(old_sweeps[0].candidates) and all(abs(r - 10.0) < 1e-9 for r in ratios)
    claimed = refill_diff.claimed_ratios(old, data)[new.model]  # each claimed setting once
    assert len(claimed) == len({str(e.params.to_json()) for e in entries if e.model == new.model
                                and e.combo_key == new.combo_key and e.status == "ok" and e.engine == "eager"})
    assert claimed and all(abs(r - 10.0) < 1e-9 for r in claimed)
