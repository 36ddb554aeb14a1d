"""benchmarks/sweep_cost.py re-derives stored sweeps as if eager contenders had stopped earlier; the
refill's --max-rounds rests on it, so its re-derivation is checked against figures worked out here."""

from core import db
from search.measure import PROTOCOL_VERSION
from search.protocol import stored_figure
from search.stats import FASTEST_OF, fastest_speedup, speedup_interval
from tests.conftest import benchmark_module


def _current_sweeps() -> list[db.Sweep]:
    sweeps = [s for s in db.load(db.shipped_path()).sweeps
              if s.provenance.protocol_version == PROTOCOL_VERSION and s.engines() == ["eager", "graph"]]
    assert sweeps, f"the shipped database has no two-engine sweep of protocol {PROTOCOL_VERSION}"
    return sweeps


def test_with_every_round_kept_every_stored_figure_and_pick_comes_back():
    sweep_cost = benchmark_module("sweep_cost")
    for sweep in _current_sweeps():
        again = sweep_cost.truncated(sweep, 10)
        assert [(c.speedup, tuple(c.speedup_interval)) for c in again.candidates] == \
            [(c.speedup, tuple(c.speedup_interval)) for c in sweep.candidates], sweep.label()
        assert sweep_cost.picks(again) == sweep_cost.picks(sweep), sweep.label()


def test_fewer_eager_rounds_refigure_eager_from_their_first_rounds_and_graph_over_the_cut_pool():
    sweep_cost = benchmark_module("sweep_cost")
    sweep = next((s for s in _current_sweeps() if any(c.engine == "eager" and len(c.ratios) > 4 for c in s.candidates)),
                 None)
    assert sweep is not None, "no protocol-5 sweep with an eager contender timed more than 4 rounds"
    short = sweep_cost.truncated(sweep, 4)
    pool, start = [], 0
    for candidate in sweep.candidates:  # the baseline timings, one a round, candidate after candidate
        rounds = len(candidate.latencies_s)
        pool += sweep.baseline_latencies_s[start:start + (min(4, rounds) if candidate.engine == "eager" else rounds)]
        start += rounds
    assert short.baseline_latencies_s == pool
    for whole, part in zip(sweep.candidates, short.candidates):
        if whole.engine == "eager" and len(whole.ratios) <= 4:  # stopped by itself: as stored
            expected = {"speedup": whole.speedup, "speedup_interval": list(whole.speedup_interval)}
            assert part.ratios == whole.ratios
        elif whole.engine == "eager":
            expected = stored_figure(speedup_interval(whole.ratios[:4]))
            assert part.ratios == whole.ratios[:4] and part.latencies_s == whole.latencies_s[:4]
        else:
            expected = stored_figure(fastest_speedup(pool, whole.latencies_s, FASTEST_OF))
            assert part.latencies_s == whole.latencies_s
        assert (part.speedup, list(part.speedup_interval)) == (expected["speedup"], expected["speedup_interval"])
    assert sweep_cost.timed_seconds(short)["graph"] == sweep_cost.timed_seconds(sweep)["graph"]
    assert sweep_cost.timed_seconds(short)["eager"] < sweep_cost.timed_seconds(sweep)["eager"]


def test_round_cap_reads_the_recorded_field_else_the_protocol_line_provenance_writes():
    from search.measure import provenance, round_cap

    record = provenance(device="cpu", dtype="float32", resolution=64, weights="tiny", prompts=["p"], seeds=[0],
                        rounds=(3, 6, 0.03), guidance_scale=7.5, engines=["eager"], seconds=1.0)
    assert round_cap(db.Provenance.model_validate(record)) == 6
    del record["rounds"]  # a sweep stored before the field: its protocol line says the same
    assert round_cap(db.Provenance.model_validate(record)) == 6
    del record["protocol"]
    assert round_cap(db.Provenance.model_validate(record)) is None


def test_the_plan_check_estimates_a_sweep_from_those_dated_before_it_only():
    sweep_cost = benchmark_module("sweep_cost")
    base = next(s for s in _current_sweeps() if sweep_cost.round_cap(s.provenance) == 10)

    def dated(day: int, seconds: float, steps: int) -> db.Sweep:
        extra = dict(base.provenance.model_extra, date=f"2026-01-0{day}T00:00:00Z", sweep_seconds=seconds)
        return base.model_copy(update={"steps": steps, "provenance": base.provenance.model_copy(update=extra)})

    first, second, third, later = dated(1, 100.0, 20), dated(2, 300.0, 20), dated(3, 1.0, 25), dated(4, 1e4, 20)
    data = db.Database(sweeps=[later, third, second, first])
    assert sweep_cost.planned(first, data) is None  # nothing before it
    assert sweep_cost.planned(second, data) == 100.0  # the first alone
    assert sweep_cost.planned(third, data) == 250.0  # median of 5 and 15 s a step, times 25 steps; not the later one


def test_the_plan_check_also_plans_each_sweep_as_if_its_model_had_none_yet():
    """As SDXL's sweeps are planned until its first: another model's seconds scaled by how much
    longer this model's eager steps took on the same GPU."""
    sweep_cost = benchmark_module("sweep_cost")
    base = next(s for s in _current_sweeps() if sweep_cost.round_cap(s.provenance) == 10)

    def dated(day: int, model: str, seconds: float, step_s: float, version=base.provenance.protocol_version):
        extra = dict(base.provenance.model_extra, date=f"2026-01-0{day}T00:00:00Z", sweep_seconds=seconds)
        provenance = base.provenance.model_copy(update={**extra, "protocol_version": version})
        return base.model_copy(update={"model": model, "steps": 20, "baseline_latency_s": 20 * step_s,
                                       "provenance": provenance})

    other = dated(1, "SD1.5", 100.0, 0.04)
    first_version = dated(1, "SDXL", 0.0, 0.1, version=None)  # its baseline counts, its seconds do not
    own = dated(2, "SDXL", 1e4, 0.1)  # the model's own sweep: left out of the scaled plan
    sweep = dated(3, "SDXL", 300.0, 0.1)
    data = db.Database(sweeps=[sweep, own, first_version, other])
    assert sweep_cost.planned(sweep, data) == 1e4
    assert abs(sweep_cost.planned(sweep, data, scaled=True) - 100.0 * 2.5) < 1e-9
    assert sweep_cost.planned(own, data) is None  # its plan was scaled, not from its own model's
    assert abs(sweep_cost.planned(own, data, scaled=True) - 250.0) < 1e-9
