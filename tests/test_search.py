import json
import os
from dataclasses import replace

import pytest
from click.testing import CliRunner

from tests.conftest import gpu, needs_torch

pytestmark = [needs_torch]

from core.task import ALL_COMBINATIONS, MODELS  # noqa: E402
from core.settings import DeepCacheParams, Settings  # noqa: E402
from search import accelerators as acc  # noqa: E402
from core import db  # noqa: E402
from search import engine  # noqa: E402
from search.engine import (  # noqa: E402
    GridItem, Pipelines, SearchConfig, grid_items, keep_part, parse_shard, parts_path, parts_todo, plan_grid,
    search_one, sweep,
)
from core.errors import DatabaseError  # noqa: E402
from search.distributed import host_timing_lock  # noqa: E402
from search.measure import PROTOCOL_VERSION, TIMED_SINCE, timed_by, timed_now  # noqa: E402


@pytest.fixture(scope="module")
def tiny_pipes():
    from search.pipelines import build_random

    return {model: Pipelines(build_random(model), build_random(model)) for model in MODELS}


def _image(pipe, plan, steps=8):
    import torch

    return acc.run(pipe, plan, prompt="a red cube", num_inference_steps=steps, guidance_scale=7.5,
                   generator=torch.Generator().manual_seed(0), output_type="np").images[0]


def two_candidates(accelerators, model, steps):
    return acc.candidates(accelerators, model, steps)[:2]


def three_candidates(accelerators, model, steps):
    return acc.candidates(accelerators, model, steps)[:3]


@pytest.mark.parametrize("model", MODELS)
def test_tiny_search_writes_valid_entries_with_provenance(model, tiny_pipes, tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFACCEL_TIMING_LOCK", raising=False)  # a search takes the host's lock anyway
    config = SearchConfig(weights="tiny", db_path=str(tmp_path / "db.json"), min_rounds=2, max_rounds=2,
                          targets=(1.2, 2.0), candidates=two_candidates)
    search_one(model, "UniPC", 8, ["DeepCache", "ToMe"], config, pipes=tiny_pipes[model])
    data = db.load(tmp_path / "db.json")
    assert len(data.entries) == 2 and len(data.sweeps) == 1
    for candidate in data.sweeps[0].candidates:
        assert len(candidate.ratios) == 2 and candidate.speedup_interval[0] <= candidate.speedup
    for entry in data.entries:
        source = entry.provenance.model_dump()
        assert source["weights"] == "tiny-random" and source["resolution"] == 128
        assert source["dtype"] == "float32" and source["libraries"]["diffusers"]
        assert source["metrics"] == ["ssim", "psnr"] and "proxy" in source["quality_note"]
        assert len(source["prompts"]) == 2 and "search/protocol.py" in source["protocol"]
        assert source["protocol_version"] == PROTOCOL_VERSION
        assert source["cpu"]["timing_lock"] == host_timing_lock() and source["cpu"]["cores"] >= 1
        assert source["cpu"]["malloc_trim_threshold"] == os.environ.get("MALLOC_TRIM_THRESHOLD_")
        assert entry.status in ("ok", "infeasible")


def test_higher_deepcache_interval_measures_faster(tiny_pipes, tmp_path):
    def intervals(accelerators, model, steps):
        return [Settings(deepcache=DeepCacheParams(cache_interval=n)) for n in (1, 6)]

    config = SearchConfig(weights="tiny", db_path=str(tmp_path / "db.json"), prompts=1, min_rounds=3,
                          targets=(1.5, 50.0), candidates=intervals)
    sweep = search_one("SD1.5", "DDIM", 30, ["DeepCache"], config, pipes=tiny_pipes["SD1.5"])
    every_step, every_sixth = sweep.candidates
    assert every_sixth.speedup > 1.8 * every_step.speedup
    entries = {e.target: e for e in db.load(tmp_path / "db.json").entries}
    assert entries[1.5].params.deepcache.cache_interval == 6
    assert entries[50.0].status == "infeasible"  # recorded, never faked
    assert entries[50.0].measured.speedup == every_sixth.speedup


@pytest.mark.parametrize("combination", [c for c in ALL_COMBINATIONS if c], ids="+".join)
@pytest.mark.parametrize("model", MODELS)
def test_undo_restores_the_unaccelerated_pipeline(model, combination, tiny_pipes):
    import numpy as np

    pipe = tiny_pipes[model].work
    baseline_plan = acc.plan(model, Settings())
    before = _image(pipe, baseline_plan)
    plan = acc.plan(model, acc.candidates(combination, model, 8)[0])
    undo = acc.apply(pipe, plan)
    first, second = _image(pipe, plan), _image(pipe, plan)
    undo()
    np.testing.assert_array_equal(first, second)  # consecutive calls: same seed, same image
    np.testing.assert_array_equal(_image(pipe, baseline_plan), before)


def test_grid_shards_and_resume():
    items = grid_items()
    assert len(items) == 162 and items[0] == GridItem("SD1.5", "DDIM", 20, ("DeepCache",))
    data = db.Database()
    shards = [plan_grid(items, data, ("eager",), parse_shard(f"{i}/3")) for i in range(3)]
    assert sorted(len(s.todo) for s in shards) == [54, 54, 54]
    assert {i for s in shards for i in s.todo} == set(items)
    done = items[0]
    candidate = db.Candidate(params=Settings(deepcache=DeepCacheParams()), speedup=2.0, latency_s=0.5,
                             speedup_interval=(1.9, 2.1), quality={"ssim": 0.9, "psnr": 30})
    data.sweeps.append(db.Sweep(model=done.model, sampler=done.sampler, steps=done.steps,
                                accelerators=list(done.accelerators), baseline_latency_s=1.0,
                                candidates=[candidate], provenance={"protocol_version": PROTOCOL_VERSION}))
    resumed = plan_grid(items, data, ("eager",))
    assert resumed.skipped == 1 and done not in resumed.todo
    assert done in plan_grid(items, data, ("eager", "graph")).todo  # the other engine is missing
    assert done in plan_grid(items, data, ("eager",), force=True).todo
    for older in (PROTOCOL_VERSION - 1, None):  # measured by an older protocol: refilled
        data.sweeps[0].provenance.protocol_version = older
        assert done in plan_grid(items, data, ("eager",)).todo
    data.sweeps[0].provenance.protocol_version = PROTOCOL_VERSION
    for workers, refilled in ((1, False), (2, True)):  # beside another worker on its host: refilled
        data.sweeps[0].provenance = db.Provenance.model_validate(
            {"protocol_version": PROTOCOL_VERSION, "cpu": {"concurrent": workers, "cores": 16}})
        assert (done in plan_grid(items, data, ("eager",)).todo) is refilled
    with pytest.raises(ValueError):
        parse_shard("3/3")


def test_which_sweeps_count_as_refilled():
    """The current protocol, the host to itself (every part of it), and no Dask trim threshold."""
    from search.measure import by_current_protocol, workers_on_host

    def source(**extra):
        return db.Provenance.model_validate({"protocol_version": PROTOCOL_VERSION, **extra})

    assert by_current_protocol(source()) and by_current_protocol(source(cpu={"concurrent": 1}))
    assert not by_current_protocol(source(protocol_version=PROTOCOL_VERSION - 1))
    assert not by_current_protocol(source(cpu={"concurrent": "2.0"}))  # however it was written
    assert [workers_on_host(source(cpu=cpu)) for cpu in ({"concurrent": "0"}, {"concurrent": None}, "odd")] == [1, 1, 1]
    parts = [{"cpu": {"concurrent": 1}}, {"cpu": {"concurrent": 2}}]  # search/engine.py merge_parts
    assert workers_on_host(source(cpu={"concurrent": 1}, parts=parts)) == 2
    assert not by_current_protocol(source(cpu={"concurrent": 1, "malloc_trim_threshold": "65536"}))
    assert by_current_protocol(source(cpu={"concurrent": 1, "malloc_trim_threshold": None}))


def test_search_cli_tiny_one_combination(tmp_path):
    from agent.cli import cli

    path = tmp_path / "db.json"
    result = CliRunner().invoke(cli, ["search", "--tiny", "--model", "SD2.1", "--sampler", "DDIM", "--steps", "6",
                                      "--accelerators", "T-Gate", "--targets", "1.2,3", "--min-rounds", "2",
                                      "--max-rounds", "2", "--prompts", "1",
                                      "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 sweeps" in result.output
    entries = json.loads(path.read_text())["entries"]
    assert [e["target"] for e in entries] == [1.2, 3.0] and entries[0]["accelerators"] == ["T-Gate"]


def test_search_cli_rejects_bad_input(tmp_path):
    from agent.cli import cli

    result = CliRunner().invoke(cli, ["search", "--tiny", "--model", "SD1.5", "--sampler", "DDIM", "--steps", "6",
                                      "--accelerators", "DeepCache", "--targets", "0.5"])
    assert result.exit_code == 2 and "above 1.0" in result.output
    result = CliRunner().invoke(cli, ["search", "--tiny"])
    assert result.exit_code == 2 and "--grid" in result.output


def test_grid_plan_lists_what_is_left_with_estimates_from_this_protocols_sweeps(tmp_path):
    from agent.cli import cli

    current = [s for s in db.load().sweeps if s.provenance.protocol_version == PROTOCOL_VERSION
               and s.model == "SD1.5" and s.steps == 25 and timed_by(s.provenance) >= TIMED_SINCE]
    measured = current[0]
    other = next(s for s in current if s.accelerators != measured.accelerators
                 and s.provenance.device == measured.provenance.device
                 and s.provenance.model_dump()["sweep_seconds"] != measured.provenance.model_dump()["sweep_seconds"])
    # an older protocol's seconds do not count
    older = other.model_copy(update={"model": "SDXL", "provenance": other.provenance.model_copy(
        update={"protocol_version": PROTOCOL_VERSION - 1, "device": "another GPU"})})
    retimed = other.model_copy(deep=True, update={"model": "SD2.1", "baseline_latency_s": 3 * other.baseline_latency_s})
    retimed.provenance.model_extra["timed_by"] = TIMED_SINCE - 1  # nor those of one timed the older way
    own = {s.combo_key: s.provenance.model_dump()["sweep_seconds"] for s in (measured, other)}
    typical_step = (measured.baseline_latency_s / measured.steps + other.baseline_latency_s / other.steps) / 2
    path = tmp_path / "db.json"
    written = db.Database(sweeps=[measured, other, older, retimed]).model_dump_json()
    path.write_text(written)
    arguments = ["search", "--grid", "--plan", "--models", "SD1.5,SD2.1,SDXL", "--samplers", measured.sampler,
                 "--steps-list", "25,50", "--engines", ",".join(measured.engines()), "--db", str(path)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()

    def line(sweep, steps, model="SD1.5"):
        label = f"{model} {sweep.sampler} {steps} {'+'.join(sweep.accelerators)} "
        return next((text for text in lines if text.startswith(label)), None)

    assert line(measured, 25) is None and line(other, 25) is None  # measured: not listed
    for mine in (measured, other):  # each combination by its own seconds, scaled by steps
        assert f"~{2 * own[mine.combo_key] / 60:.1f} min (from {mine.provenance.device})" in line(mine, 50)
    rest = [text for text in lines if text.startswith(f"SD1.5 {measured.sampler} 25 ")]
    typical = sorted(seconds / 25 for seconds in own.values())
    assert rest and all(f"~{25 * (typical[0] + typical[1]) / 2 / 60:.1f} min" in text for text in rest)  # the model's median
    # SD2.1 has no sweep timed as this protocol times: SD1.5's seconds, times how much longer its
    # eager steps took on the same GPU (its baseline alone; any protocol's); SDXL shares no GPU with a measured model
    device = measured.provenance.device
    ratio = 3 * other.baseline_latency_s / other.steps / typical_step
    for mine in (measured, other):
        assert (f"~{2 * own[mine.combo_key] * ratio / 60:.1f} min (from {device}; SD1.5's sweeps x{ratio:.2f}, "
                f"the ratio of their eager step times on {device})") in line(mine, 50, "SD2.1")
    assert all("no estimate" in text for text in lines if text.startswith("SDXL"))
    assert not any("no estimate" in text for text in lines if text.startswith(("SD1.5", "SD2.1")))
    summary = " ".join(result.output.split())
    assert "33 to measure, 3 already in the database" in summary and "12 sweeps with no estimate" in summary
    assert "(11 sweeps estimated from another model's, scaled by eager step time" in summary
    assert f"Database: {path}" in " ".join(result.output.split())
    assert path.read_text() == written and sorted(p.name for p in tmp_path.iterdir()) == ["db.json"]  # nothing written
    assert "does not exist yet" not in summary
    new = CliRunner().invoke(cli, [*arguments[:-1], str(tmp_path / "typo.json")])  # a new file, or a typo: said
    assert new.exit_code == 0 and "does not exist yet" in " ".join(new.output.split())
    assert not (tmp_path / "typo.json").exists()
    refused = CliRunner().invoke(cli, ["search", "--plan"])
    assert refused.exit_code == 2 and "add --grid" in refused.output
    for steps in ("x", "0", "-5"):
        refused = CliRunner().invoke(cli, [*arguments[:-4], "--steps-list", steps])
        assert refused.exit_code == 2 and "expected step counts" in refused.output


def test_a_model_with_no_sweep_yet_is_planned_from_the_model_nearest_in_resolution():
    from search.engine import GridItem, estimate_seconds

    sd15 = next(s for s in db.load().sweeps if s.model == "SD1.5" and timed_now(s.provenance))
    device, seconds = sd15.provenance.device, sd15.provenance.model_dump()["sweep_seconds"]

    def like(model: str, step_s: float, sweep_seconds: float, **provenance) -> db.Sweep:
        extra = {"sweep_seconds": sweep_seconds, **provenance}
        return sd15.model_copy(update={"model": model, "baseline_latency_s": step_s * sd15.steps,
                                       "provenance": sd15.provenance.model_copy(update=extra)})

    step = sd15.baseline_latency_s / sd15.steps
    sd21 = like("SD2.1", step, 2 * seconds)
    first_xl = like("SDXL", 3 * step, 1.0, protocol_version=None)  # its eager steps count, its seconds do not
    item = GridItem("SDXL", sd15.sampler, sd15.steps, tuple(sd15.accelerators))
    engines = sd15.engines()
    estimate = estimate_seconds(item, db.Database(sweeps=[sd15, sd21, first_xl]), engines)
    assert (estimate.scaled_from, estimate.ratio_device) == ("SD2.1", device)  # 768 px, not SD1.5's 512
    assert abs(estimate.seconds - 3 * 2 * seconds) < 1e-6 and abs(estimate.ratio - 3) < 1e-9
    estimate = estimate_seconds(item, db.Database(sweeps=[sd15, first_xl]), engines)
    assert estimate.scaled_from == "SD1.5" and abs(estimate.seconds - 3 * seconds) < 1e-6
    crowded = like("SDXL", 100 * step, 1.0, protocol_version=None, cpu={"concurrent": 2})  # beside a second worker
    fp32 = like("SDXL", 100 * step, 1.0, protocol_version=None, dtype="float32")  # another precision
    for unlike in (crowded, fp32):  # their steps are not counted
        assert estimate_seconds(item, db.Database(sweeps=[sd15, first_xl, unlike]), engines).ratio == estimate.ratio
        assert estimate_seconds(item, db.Database(sweeps=[sd15, unlike]), engines) is None
    assert estimate_seconds(item, db.Database(sweeps=[sd15]), engines) is None  # SDXL never timed


def test_grid_plan_takes_off_what_eager_rounds_past_max_rounds_cost(tmp_path):
    """A refill capping eager contenders (`gpu_refill.sh`: --max-rounds 6) is planned from the
    measured sweeps less the seconds their eager rounds spent past the cap."""
    from agent.cli import cli
    from search.engine import eager_seconds_past

    measured = next(s for s in db.load().sweeps if s.provenance.protocol_version == PROTOCOL_VERSION
                    and timed_by(s.provenance) >= TIMED_SINCE
                    and any(c.engine == "eager" and len(c.latencies_s) > 6 for c in s.candidates))
    path = tmp_path / "db.json"
    path.write_text(db.Database(sweeps=[measured]).model_dump_json())
    seconds = measured.provenance.model_dump()["sweep_seconds"]

    def past(cap):  # one baseline timing a round, candidate after candidate
        total, start = 0.0, 0
        for candidate in measured.candidates:
            rounds = len(candidate.latencies_s)
            if candidate.engine == "eager":
                total += sum(measured.baseline_latencies_s[start + cap:start + rounds]) + sum(candidate.latencies_s[cap:])
            start += rounds
        return total

    assert 0 < past(6) < past(3) < seconds and abs(eager_seconds_past(measured, 6) - past(6)) < 1e-9
    assert eager_seconds_past(measured, 10) == 0.0
    label = f"{measured.model} {measured.sampler} {2 * measured.steps} {'+'.join(measured.accelerators)} "
    for rounds, expected in (("10", seconds), ("6", seconds - past(6)), ("2", seconds - past(3))):  # a run times 3 at least
        result = CliRunner().invoke(cli, ["search", "--grid", "--plan", "--models", measured.model, "--samplers",
                                          measured.sampler, "--steps-list", str(2 * measured.steps), "--engines",
                                          ",".join(measured.engines()), "--max-rounds", rounds, "--db", str(path)])
        assert result.exit_code == 0, result.output
        line = next(text for text in result.output.splitlines() if text.startswith(label))
        assert f"~{2 * expected / 60:.1f} min" in line


@gpu
def test_full_size_random_search_on_cuda(tmp_path):
    config = SearchConfig(weights="random", device="cuda", dtype="float16", max_rounds=3,
                          db_path=str(tmp_path / "db.json"), targets=(1.5,))
    sweep = search_one("SD1.5", "DDIM", 25, ["DeepCache"], config)
    assert sweep.provenance.resolution == 512
    assert max(c.speedup for c in sweep.candidates) > 1.5


def test_tiny_figures_never_enter_the_shipped_database(tiny_pipes):
    from core.errors import DatabaseError

    before = db.shipped_path().read_bytes()
    config = SearchConfig(weights="tiny", db_path=str(db.shipped_path()), min_rounds=2, max_rounds=2,
                          prompts=1, candidates=two_candidates)
    with pytest.raises(DatabaseError, match="never enter the shipped database"):
        search_one("SD1.5", "DDIM", 6, ["DeepCache"], config, pipes=tiny_pipes["SD1.5"])
    assert db.shipped_path().read_bytes() == before


def test_search_without_db_writes_the_live_cache(tmp_path, monkeypatch):
    from agent.cli import cli

    monkeypatch.setenv("DIFFACCEL_CACHE", str(tmp_path))
    before = db.shipped_path().read_bytes()
    result = CliRunner().invoke(cli, ["search", "--tiny", "--model", "SD1.5", "--sampler", "DDIM", "--steps", "4",
                                      "--accelerators", "ToMe", "--min-rounds", "2", "--max-rounds", "2",
                                      "--prompts", "1"])
    assert result.exit_code == 0, result.output
    assert db.load(db.live_path()).sweeps[0].steps == 4 and db.shipped_path().read_bytes() == before


def test_the_search_measures_both_engines_on_cuda_and_plans_what_a_refill_measures(tmp_path):
    """Without --engines: both where CUDA graphs run (as the database ships them), eager on the
    CPU, and --plan lists what a refill of both engines would measure."""
    from agent.cli import cli
    from search.cli import default_engines

    assert default_engines("cuda:1") == "eager,graph" and default_engines("cpu") == "eager"
    arguments = ["search", "--grid", "--plan", "--models", "SD1.5", "--db", str(db.shipped_path())]
    assert CliRunner().invoke(cli, arguments).output == CliRunner().invoke(
        cli, arguments + ["--engines", "eager,graph"]).output
    assert CliRunner().invoke(cli, arguments).output != CliRunner().invoke(cli, arguments + ["--engines", "eager"]).output


def test_a_sweep_of_both_engines_takes_turns_and_stops_graph_candidates_early(tiny_pipes, tmp_path, monkeypatch):
    """Engines alternate setting by setting, so graph candidates meet the baseline throughout the
    sweep; a graph candidate (here run eagerly: no CUDA) stops at min_rounds, since its figure comes
    from every baseline timing of the sweep (search/stats.py fastest_speedup), while an eager one goes on."""
    monkeypatch.delenv("DIFFACCEL_TIMING_LOCK", raising=False)
    config = SearchConfig(weights="tiny", db_path=str(tmp_path / "db.json"), prompts=1, min_rounds=2,
                          max_rounds=4, tolerance=0.001, engines=("eager", "graph"), targets=(1.2,),
                          candidates=two_candidates)
    sweep = search_one("SD1.5", "DDIM", 4, ["DeepCache"], config, pipes=tiny_pipes["SD1.5"])
    assert [c.engine for c in sweep.candidates] == ["eager", "graph", "eager", "graph"]
    assert [len(c.latencies_s) for c in sweep.candidates] == [4, 2, 4, 2]
    assert len(sweep.baseline_latencies_s) == 12  # one baseline timing per round, every block kept
    assert [len(block) for block in sweep.baseline_blocks()] == [4, 2, 4, 2]


def test_a_sweep_in_parts_resumes_part_by_part_and_joins_as_one_sweep(tiny_pipes, tmp_path, monkeypatch):
    """A sweep longer than one device call is measured in parts; each kept part survives a stop,
    and the joined sweep estimates graph figures over the baseline timings of every part."""
    from search.stats import FASTEST_OF, fastest_speedup

    monkeypatch.delenv("DIFFACCEL_TIMING_LOCK", raising=False)
    config = SearchConfig(weights="tiny", db_path=str(tmp_path / "new" / "db.json"), prompts=1, min_rounds=2,
                          max_rounds=2, engines=("eager", "graph"), targets=(1.2,),
                          candidates=three_candidates, part_size=1)
    item = GridItem("SD1.5", "DDIM", 4, ("DeepCache",))
    todo, notes = parts_todo([item], config)
    assert [part.part for part in todo] == [(0, 3), (1, 3), (2, 3)] and notes == []
    assert parts_todo([item], replace(config, part_size=3)) == ([item], [])

    records = {}
    for part in todo[:2]:
        records[part.part] = sweep(tiny_pipes["SD1.5"], "SD1.5", "DDIM", 4, ["DeepCache"], config, part.part)
        assert keep_part(part, records[part.part], config) is None
    assert [part.part for part in parts_todo([item], config)[0]] == [(2, 3)]  # a later run resumes here
    assert len(parts_todo([item], replace(config, prompts=2))[0]) == 3  # parts of another setup don't count
    assert not (tmp_path / "new" / "db.json").exists()  # no half sweep in the database
    last = todo[2]
    records[last.part] = sweep(tiny_pipes["SD1.5"], "SD1.5", "DDIM", 4, ["DeepCache"], config, last.part)
    joined = keep_part(last, records[last.part], config)

    assert joined is not None and parts_path(config).exists()  # kept until the sweep is stored
    parts = [records[part.part] for part in todo]
    settings = three_candidates(("DeepCache",), "SD1.5", 4)
    assert [(c.params, c.engine) for c in joined.candidates] == [(s, e) for s in settings for e in ("eager", "graph")]
    assert joined.baseline_latencies_s == [x for part in parts for x in part.baseline_latencies_s]
    assert [p["sweep_seconds"] for p in joined.provenance.model_extra["parts"]] == [
        part.provenance.model_extra["sweep_seconds"] for part in parts]
    moved = 0
    for index, part in enumerate(parts):
        own = part.candidates[1]  # the part's graph candidate: estimated over its part's timings
        whole = joined.candidates[2 * index + 1]
        expected = fastest_speedup(joined.baseline_latencies_s, whole.latencies_s, FASTEST_OF)
        assert whole.speedup == round(expected.estimate, 4)
        assert whole.latencies_s == own.latencies_s
        moved += whole.speedup_interval != own.speedup_interval
        assert joined.candidates[2 * index] == part.candidates[0]  # eager figures are paired: kept
    assert moved > 0

    # A run that stopped between keeping the last part and storing the sweep: the next one joins it,
    # and keeps the parts when the database refuses the sweep.
    def refuse(record, config):
        raise DatabaseError("refused")

    monkeypatch.setattr(engine, "store", refuse)
    todo, notes = parts_todo([item], config)
    assert todo == [] and "were not joined (refused)" in notes[0] and parts_path(config).exists()
    monkeypatch.undo()
    todo, notes = parts_todo([item], config)
    assert todo == [] and "joined from the 3 parts" in notes[0] and not parts_path(config).exists()
    (stored,) = db.load(config.db_path).sweeps
    assert [c.speedup for c in stored.candidates] == [c.speedup for c in joined.candidates]


def test_search_cli_measures_in_parts_and_stores_one_sweep(tmp_path):
    from agent.cli import cli

    path = tmp_path / "db.json"
    result = CliRunner().invoke(cli, ["search", "--tiny", "--model", "SD2.1", "--sampler", "DDIM", "--steps", "6",
                                      "--accelerators", "T-Gate", "--targets", "1.2", "--min-rounds", "2",
                                      "--max-rounds", "2", "--prompts", "1", "--part-size", "1",
                                      "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 of them parts of sweeps" in result.output and "part 2/2" in result.output
    assert "1 sweeps (2 parts measured)" in result.output
    (stored,) = json.loads(path.read_text())["sweeps"]
    assert len(stored["candidates"]) == 2 and len(stored["provenance"]["parts"]) == 2
    assert not (tmp_path / "db.parts.json").exists()
