import json

from click.testing import CliRunner

from agent.agent import Agent, live_search_question
from agent.cli import cli
from core.task import Task
from tests.conftest import needs_torch

TASK = Task(model="SD1.5", sampler="DDIM", steps=6, accelerators=["T-Gate", "ToMe"], speedup=1.2)


def empty_db(tmp_path):
    path = tmp_path / "db.json"
    path.write_text('{"format": "diffaccel-search-params", "version": 2}')
    return path


def test_declined_live_search_keeps_the_script_labelled_unmeasured(tmp_path):
    asked = []
    agent = Agent(db_path=str(empty_db(tmp_path)), confirm=lambda q: asked.append(q) or False)
    outcome = agent.run(TASK)
    assert len(asked) == 1 and "T-Gate+ToMe" in live_search_question(asked[0])
    assert outcome.live_search is None and "UNMEASURED" in outcome.source


def test_an_edit_and_a_fresh_request_give_the_same_script():
    agent = Agent(live_search="never")
    fresh = agent.run(Task(model="SD1.5", speedup=3.0))
    edited = agent.run(Task(model="SD1.5", speedup=2.0).merged(Task(speedup=3.0)))
    assert edited.source == fresh.source and edited.resolution.assumed == fresh.resolution.assumed


def test_outcome_json_has_both_engines_when_measured():
    outcome = Agent(live_search="never").run(Task(model="SD1.5", sampler="DDIM", steps=25,
                                                   accelerators=["DeepCache"], speedup=2.0))
    answer = outcome.to_json("x.py")
    assert answer["script"] == "x.py" and set(answer["engines"]) >= {"eager"}
    assert answer["engines"][answer["engine"]]["params"]["DeepCache"]


def test_a_request_for_compilation_hears_of_the_scripts_compile_flag():
    from agent.agent import COMPILE_NOTE
    from agent.parser import parse

    agent = Agent(live_search="never")
    asked = agent.run(parse("SD1.5 DDIM 25 steps DeepCache 2x faster with torch.compile"))
    assert asked.resolution.engine == "graph" and COMPILE_NOTE in asked.notes
    assert "--compile" in asked.source
    plain = agent.run(parse("SD1.5 DDIM 25 steps DeepCache 2x faster"))
    assert COMPILE_NOTE not in plain.notes
    refused = agent.run(parse("SD1.5 DDIM 25 steps DeepCache 2x faster, no compile"))
    assert refused.resolution.engine == "eager" and COMPILE_NOTE not in refused.notes


@needs_torch
def test_live_search_then_validation_on_a_miss(tmp_path):
    db_path = empty_db(tmp_path)
    outcome = Agent(db_path=str(db_path), live_search="always", validate=True).run(TASK)
    assert outcome.live_search.weights == "tiny-random" and "smoke run" in outcome.live_search.note
    assert not outcome.resolution.needs_search and outcome.resolution.lookup.match == "exact"
    assert outcome.validation.ok and outcome.validation.kind == "tiny-cpu-smoke"
    assert json.loads(db_path.read_text())["sweeps"][0]["steps"] == 6
    assert "not a speed figure" in outcome.source


@needs_torch
def test_generate_runs_a_live_search_on_a_miss(tmp_path):
    db_path = empty_db(tmp_path)
    result = CliRunner().invoke(cli, ["generate", "SD2.1 UniPC 6 steps DeepCache 1.5x", "--db", str(db_path),
                                      "-o", str(tmp_path / "x.py")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "live search:" in said and "not a speed figure" in said
    assert "Lookup: exact match" in said and "tiny-random" in (tmp_path / "x.py").read_text()


@needs_torch
def test_a_live_search_over_its_budget_is_refused_with_the_command(tmp_path):
    db_path = empty_db(tmp_path)
    outcome = Agent(db_path=str(db_path), live_search="always", search_budget_s=0.01).run(TASK)
    assert outcome.live_search is None
    assert any("over the 0 s budget" in note and "agent search --model SD1.5" in note for note in outcome.notes)


def test_figures_from_before_the_current_protocol_or_a_shared_host_carry_a_warning():
    """Sweeps timed beside other sweeps overstated speedups (benchmarks/results/eager_baseline.md,
    verify_h200x2_7.*)."""
    from core import db
    from search.measure import PROTOCOL_VERSION
    from tests.test_db import make_sweep
    from tools.lookup import resolve

    task = Task(model="SD1.5", sampler="DDIM", steps=25, accelerators=["DeepCache"], speedup=2.0)

    def warnings_for(version, workers=None):
        sweep = make_sweep(device="NVIDIA H200", weights="random", intervals=[(1.5, 1.7), (2.2, 2.6), (3.0, 3.6)])
        sweep.provenance = sweep.provenance.model_copy(update={"protocol_version": version})
        if workers:  # as search/measure.py `cpu_share` records it
            sweep.provenance = db.Provenance.model_validate(
                {**sweep.provenance.model_dump(), "cpu": {"concurrent": workers, "cores": 16}})
        data = db.Database()
        db.store_sweep(data, sweep, [2.0])
        return [w for w in resolve(task, data).warnings if "before protocol" in w or "grid workers" in w]

    assert warnings_for(PROTOCOL_VERSION) == [] and warnings_for(PROTOCOL_VERSION, workers=1) == []
    assert len(warnings_for(PROTOCOL_VERSION - 1)) == 1 and len(warnings_for(None)) == 1
    shared = warnings_for(PROTOCOL_VERSION, workers=2)  # the host shared with another grid worker
    assert len(shared) == 1 and "one of 2 grid workers sharing a host" in shared[0] and "--benchmark" in shared[0]


def test_a_nearest_entry_warning_names_the_engine_whose_parameters_it_is():
    """Both engines are shown side by side, and they may come from different entries (an exact
    eager one, a nearest graph one): the warning says which."""
    from core import db
    from tests.test_db import make_sweep
    from tools.lookup import resolve

    data = db.Database()
    db.store_sweep(data, make_sweep(steps=25), [2.0])
    resolution = resolve(Task(model="SD1.5", sampler="DDIM", steps=50, accelerators=["DeepCache"], speedup=2.0), data)
    assert resolution.engine == "eager"
    assert "the eager parameters come from the nearest measured entry: 25 steps instead of 50" in resolution.warnings


def test_a_stated_knob_its_combinations_sweep_lacks_asks_for_no_live_search():
    from agent.parser import parse

    asked = []
    agent = Agent(confirm=lambda resolution: asked.append(resolution) or False)
    outcome = agent.run(parse("SD1.5 DDIM 25 steps DeepCache cache interval 7 2x"))  # the sweep tried 2-5
    assert "UNMEASURED" in outcome.source and not outcome.resolution.needs_search and not asked
    unswept = agent.run(parse("SD1.5 DDIM 7 steps DeepCache cache interval 3 2x"))  # no sweep of 7 steps
    assert unswept.resolution.needs_search and len(asked) == 1


def test_a_cpu_smoke_search_never_hides_a_gpu_measurement_of_the_same_combination(tmp_path, monkeypatch):
    from core import db

    shipped = db.load()
    gpu = next(s for s in shipped.sweeps if s.model == "SD1.5" and s.sampler == "DDIM" and s.steps == 25
               and s.accelerators == ["DeepCache"])
    smoke = gpu.model_copy(update={"provenance": gpu.provenance.model_copy(update={
        "device": "CPU", "weights": "tiny-random"})})
    smoke.candidates = [c.model_copy(update={"speedup": 9.0, "speedup_interval": (8.9, 9.1)}) for c in smoke.candidates]
    other = next(s for s in shipped.sweeps if s.combo_key != gpu.combo_key)
    mine = other.model_copy(update={"steps": 7, "provenance": smoke.provenance})  # a combination nobody else measured
    live = db.Database(sweeps=[smoke, mine],
                       entries=[e for s in (smoke, mine) for t in (2.0,) for e in db.entries_from_sweep(s, t)])
    monkeypatch.setenv("DIFFACCEL_CACHE", str(tmp_path))
    monkeypatch.delenv(db.ENV_VAR, raising=False)
    db.live_path().parent.mkdir(parents=True, exist_ok=True)
    db.live_path().write_text(live.model_dump_json())

    merged = db.load_with_live()
    assert merged.find_sweep(gpu.combo_key).provenance.device == gpu.provenance.device
    assert merged.find_sweep(mine.combo_key).provenance.device == "CPU"
    found = db.lookup(merged, "SD1.5", "DDIM", 25, ["DeepCache"], 2.0)
    assert found.entry.provenance.device == gpu.provenance.device


def test_a_nearest_entry_picked_for_a_lower_target_says_it_falls_short_of_the_asked_one(tmp_path):
    from core import db
    from tools.render import default_filename, figure_text

    sweep = next(s for s in db.load().sweeps if s.model == "SD1.5" and s.sampler == "DDIM" and s.steps == 25
                 and s.accelerators == ["DeepCache"])
    path = tmp_path / "db.json"  # only the 1.2x entries: a 50-step 4x request finds them nearest
    path.write_text(db.Database(sweeps=[], entries=db.entries_from_sweep(sweep, 1.2)).model_dump_json())
    best_low = max(c.speedup_interval[0] for c in sweep.candidates)
    target = round(best_low + 1.0, 1)
    outcome = Agent(db_path=str(path), live_search="never").run(
        Task(model="SD1.5", sampler="DDIM", steps=50, accelerators=["DeepCache"], speedup=target))
    resolution = outcome.resolution
    assert resolution.lookup.match == "nearest" and resolution.lookup.entry.feasible  # feasible for 1.2x
    assert not resolution.choice.reaches(target)
    assert figure_text(resolution.choice, target).endswith(f"short of {target:g}x")
    assert default_filename(resolution).endswith("_fastest.py")
    assert resolution.choice.reaches(1.2) and "short of" not in figure_text(resolution.choice, 1.2)


def test_a_stated_knob_past_the_step_count_is_said_to_do_what_it_does():
    from agent.parser import parse

    agent = Agent(live_search="never")
    warned = agent.run(parse("SD1.5 DDIM 25 steps DeepCache cache interval 30 2x")).resolution.warnings
    assert any("DeepCache runs only the first step in full" in line for line in warned)
    gated = agent.run(parse("SD1.5 DDIM 20 steps T-Gate gate step 20 2x")).resolution.warnings
    assert any("T-GATE never caches" in line for line in gated)
    fine = agent.run(parse("SD1.5 DDIM 25 steps DeepCache cache interval 7 2x")).resolution.warnings
    assert not any("not below the" in line for line in fine)


def test_a_figure_without_an_interval_reaches_a_target_by_its_estimate():
    from core import db
    from tools.lookup import Choice

    sweep = next(s for s in db.load().sweeps if s.candidates[0].speedup_interval)
    entry = db.entry_from_sweep(sweep, 1.2)
    bare = entry.model_copy(update={"measured": entry.measured.model_copy(update={"speedup_interval": None})})
    choice = Choice("eager", entry.params, db.Lookup("nearest", bare), measured_here=True)
    speed = bare.measured.speedup
    assert choice.reaches(speed - 0.01) and not choice.reaches(speed + 0.01)
