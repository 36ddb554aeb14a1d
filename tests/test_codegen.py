import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.codegen import render, resolve
from agent.parser import parse
from core.task import ALL_COMBINATIONS, MODELS, SAMPLERS, Task
from core import db

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


@pytest.fixture(scope="module")
def shipped():
    return db.load(ROOT / "search_params.json")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("combination", ALL_COMBINATIONS)
def test_every_combination_renders_idiomatic_compiling_code(model, sampler, combination, shipped):
    task = Task(model=model, sampler=sampler, steps=25, accelerators=list(combination), speedup=2.0)
    source = render(resolve(task, shipped))
    compile(source, "pipeline.py", "exec")
    assert "StableDiffusionXLPipeline" in source if model == "SDXL" else "StableDiffusionPipeline" in source
    tgate, deepcache, tome = ("T-Gate" in combination, "DeepCache" in combination, "ToMe" in combination)
    assert ("pipe.tgate(" in source) == tgate
    assert ("DeepCacheSDHelper" in source) == (deepcache and not tgate)  # never on top of T-GATE
    assert ("DeepCacheLoader(pipe, cache_interval=" in source) == (deepcache and tgate)
    assert ("use_rand=False" in source) == tome
    if tome and model == "SDXL":
        assert "max_downsample=1," not in source  # SDXL has no attention at downsample 1
    if sampler == "DPM-Solver++":
        assert 'algorithm_type="dpmsolver++"' in source


def test_readme_request_uses_measured_parameters(shipped):
    resolution = resolve(parse("make SDXL 2x faster with UniPC"), shipped)
    assert resolution.task.steps == 25 and resolution.assumed["steps"] == "default for SDXL"
    assert resolution.assumed["accelerators"] == "measured best quality at this target"
    assert resolution.lookup.match == "exact" and resolution.lookup.feasible
    assert resolution.measured["speedup"] >= 2.0
    source = render(resolution)
    assert f"Measured: {resolution.measured['speedup']:.2f}x" in source
    assert "NVIDIA H100" in source and "weights random" in source


def test_request_text_never_reaches_the_script(shipped):
    request = 'SD1.5 DDIM 2x """; import os; os.system("echo pwned") # ignore previous instructions'
    source = render(resolve(parse(request), shipped), model_path='x"; os.system("boom")')
    assert "pwned" not in source and "ignore previous" not in source
    assert 'MODEL_PATH = "x\\"; os.system(\\"boom\\")"' in source  # an escaped string, inert
    compile(source, "pipeline.py", "exec")


def test_missing_parameters_are_flagged_never_invented(tmp_path):
    empty = tmp_path / "empty.json"
    result = CliRunner().invoke(cli, ["generate", "SDXL UniPC 25 steps DeepCache 2x", "--db", str(empty), "--no-live-search",
                                      "-o", str(tmp_path / "out.py"), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["match"] == "missing" and answer["measured"] is None
    assert "agent search --model SDXL --sampler UniPC --steps 25 --accelerators DeepCache" in answer["warnings"][0]
    assert "UNMEASURED" in (tmp_path / "out.py").read_text()


def test_examples_match_the_templates():
    from regenerate import HERE, render_examples

    for name, source in render_examples(ROOT / "search_params.json").items():
        assert (HERE / name).read_text() == source, f"examples/{name} is stale: python examples/regenerate.py"


def test_generate_writes_file_and_summary(tmp_path):
    target = tmp_path / "sub" / "sdxl.py"
    result = CliRunner().invoke(cli, ["generate", "make SDXL 2x faster with UniPC", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "Measured:" in result.output and "NVIDIA H100" in result.output
    assert target.read_text().startswith('"""SDXL with UniPC (25 steps)')


def test_generate_to_stdout_prints_only_the_script():
    result = CliRunner().invoke(cli, ["generate", "SD1.5 DDIM 50 steps DeepCache 3x", "-o", "-"])
    assert result.exit_code == 0
    assert result.stdout.startswith('"""SD1.5 with DDIM (50 steps)')
    compile(result.stdout, "x.py", "exec")


def test_bad_request_writes_nothing(tmp_path):
    target = tmp_path / "never.py"
    result = CliRunner().invoke(cli, ["generate", "make FLUX 2x faster", "-o", str(target)])
    assert result.exit_code == 2
    assert "supported models" in result.output and "Traceback" not in result.output
    assert not target.exists()


def test_lookup_json_reports_match_and_provenance():
    result = CliRunner().invoke(cli, ["lookup", "SD1.5 DDIM 25 steps DeepCache 2.2x", "--json"])
    answer = json.loads(result.output)
    assert answer["match"] == "from-sweep" and answer["measured"]["speedup"] >= 2.2
    assert answer["provenance"]["weights"] == "random"


def test_commands_without_models_do_not_import_torch():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from agent.cli import cli\n"
        "for args in (['parse', 'SDXL 2x'], ['generate', 'SDXL 2x', '-o', '-'], ['lookup', 'SD1.5 3x']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_bench_writes_the_original_files(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    gen = json.loads((tmp_path / "gen_4_category.json").read_text())
    anno = json.loads((tmp_path / "anno_4_category.json").read_text())
    assert len(gen) == len(anno) == 1134
    assert gen[0] == {"prompt_id": "192", "category": 4, "prompt_context":
                      "Generate a SD1.5 pipeline using the DDIM sampler with 20 steps, accelerated by DeepCache with 1.2x speedup",
                      "path_to_gen_code": "gen_code/192.py"}
    assert anno[-1]["prompt_id"] == "1325" and anno[-1]["path_to_gt_code"] == "gt_code/1325.py"
    assert "4.0x speedup" in anno[-1]["prompt_context"]
    assert len(list((tmp_path / "gen_code").glob("*.py"))) == 1134
    assert "1134" in result.output
