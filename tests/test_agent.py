import json

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from agent.agent import Agent, live_search_question, needs_live_search
from agent.cli import cli
from core.task import Task
from tests.conftest import needs_torch
from tools import registry

TASK = Task(model="SD1.5", sampler="DDIM", steps=6, accelerators=["T-Gate", "ToMe"], speedup=1.2)


def test_tools_are_typed_and_validate_arguments():
    tools = registry()
    assert set(tools) == {"lookup", "live_search", "render_script", "validate_script"}
    schema = tools["lookup"].schema()["function"]
    assert schema["parameters"]["properties"]["model"]["enum"] == ["SD1.5", "SD2.1", "SDXL"]
    assert "number of denoising steps" in schema["parameters"]["properties"]["steps"]["description"]
    with pytest.raises(ValidationError):
        tools["lookup"](model="SD3", sampler="DDIM", steps=25, accelerators=None)
    answer = tools["lookup"](model="SD1.5", sampler="DDIM", steps=25, accelerators=["DeepCache"], speedup=2.0)
    assert answer["match"] == "exact" and answer["measured"]["speedup"] >= 2.0


def test_declined_live_search_keeps_the_script_labelled_unmeasured(tmp_path):
    asked = []
    agent = Agent(db_path=str(tmp_path / "db.json"), confirm=lambda q: asked.append(q) or False, validate=False)
    outcome = agent.run(TASK)
    assert len(asked) == 1 and "T-Gate+ToMe" in live_search_question(asked[0])
    assert outcome.steps == [] and "UNMEASURED" in outcome.source


@needs_torch
def test_live_search_then_validation_on_a_miss(tmp_path):
    db_path = tmp_path / "db.json"
    seen = []
    outcome = Agent(db_path=str(db_path), live_search="always", on_step=seen.append).run(TASK)
    assert [s.tool for s in outcome.steps] == ["live_search", "validate_script"] == [s.tool for s in seen]
    assert outcome.steps[0].observation["weights"] == "tiny-random"
    assert needs_live_search(outcome.resolution) is False
    assert outcome.resolution.lookup.match == "exact"
    assert outcome.validation["ok"] and outcome.validation["kind"] == "tiny-cpu-smoke"
    assert json.loads(db_path.read_text())["sweeps"][0]["steps"] == 6


@needs_torch
def test_generate_runs_a_live_search_on_a_miss(tmp_path):
    db_path = tmp_path / "db.json"
    result = CliRunner().invoke(cli, ["generate", "SD2.1 UniPC 6 steps DeepCache 1.5x", "--db", str(db_path),
                                      "-o", str(tmp_path / "x.py")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "running a live search" in said and "not deployment speed" in said
    assert "Lookup: exact match" in said and "tiny-random" in (tmp_path / "x.py").read_text()
