"""Generated scripts run, as a user runs them, on tiny pipelines: every model x combination x sampler.

The full matrix is `slow` (one subprocess per model x combination runs the three samplers' scripts
in turn, so torch is imported once per group); the default run keeps one group per model.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_torch

pytestmark = [needs_torch]

from core import db  # noqa: E402
from core.task import ALL_COMBINATIONS, MODELS, SAMPLERS, Task  # noqa: E402
from tools.lookup import resolve  # noqa: E402
from tools.render import render  # noqa: E402

RUN_ALL = """
import json, runpy, sys
for script in sys.argv[1:]:
    sys.argv = [script, "--model-path", {tiny!r}, "--device", "cpu", "--dtype", "float32", "--benchmark",
                "--runs", "2", "--max-runs", "2", "--output", script + ".png"]
    runpy.run_path(script, run_name="__main__")
"""


def run_group(tmp_path, model, combination):
    """Each sampler's script for one model x combination, in one Python process; their JSON lines."""
    from tools.validate import tiny_model

    data = db.load(db.shipped_path())
    scripts = []
    for sampler in SAMPLERS:
        task = Task(model=model, sampler=sampler, steps=6, accelerators=list(combination), speedup=2.0)
        script = tmp_path / f"{sampler}.py"
        script.write_text(render(resolve(task, data)))
        scripts.append(str(script))
    done = subprocess.run([sys.executable, "-c", RUN_ALL.format(tiny=str(tiny_model(model))), *scripts],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(SAMPLERS)
    for report in reports:
        assert {"speedup", "speedup_interval", "baseline_latency_s", "latency_s", "ssim", "psnr"} <= set(report)
        assert report["speedup"] > 0 and -1 <= report["ssim"] <= 1 and report["rounds"] == 2
        assert report["device"] == "cpu" and report["gpu"] is None  # verify tells GPUs apart by it
        if not combination:
            assert report["ssim"] == 1.0  # no accelerator: the very same image
    return reports


@pytest.mark.parametrize("model", MODELS)
def test_every_feature_at_once_runs_for_each_model(model, tmp_path):
    run_group(tmp_path, model, ("DeepCache", "T-Gate", "ToMe"))


@pytest.mark.slow
@pytest.mark.parametrize("combination", ALL_COMBINATIONS, ids=lambda c: "+".join(c) or "none")
@pytest.mark.parametrize("model", MODELS)
def test_generated_scripts_run_on_tiny_pipelines(model, combination, tmp_path):
    run_group(tmp_path, model, combination)


def test_validate_reports_a_broken_script():
    from tools.validate import validate

    result = validate("raise SystemExit('boom: no such scheduler')\n", "SD1.5", timeout=120)
    assert not result.ok and "boom: no such scheduler" in result.error


def test_validation_time_limit_ends_the_script_and_its_children(tmp_path):
    from tools.validate import _run

    marker = tmp_path / "child.pid"
    source = ("import subprocess, sys, time\n"
              f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
              "time.sleep(60)\n")
    result = _run(source, "tiny-cpu-smoke", [], timeout=3)
    assert not result.ok and "timed out after 3 s" in result.error
    child = Path(f"/proc/{marker.read_text()}/stat")
    deadline = time.monotonic() + 5
    while child.exists() and child.read_text().split()[2] != "Z" and time.monotonic() < deadline:
        time.sleep(0.1)  # gone, or a zombie waiting for init to reap it: not running either way
    assert not child.exists() or child.read_text().split()[2] == "Z"


def test_generate_validate_cli_passes_and_writes(tmp_path):
    from click.testing import CliRunner

    from agent.cli import cli

    target = tmp_path / "ok.py"
    result = CliRunner().invoke(cli, ["generate", "SD2.1 UniPC 8 steps DeepCache and ToMe 2x",
                                      "--validate", "--no-live-search", "--json", "-o", str(target)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)  # stderr may carry library warnings
    assert answer["validation"]["ok"] and answer["validation"]["report"]["speedup"] > 0
    assert "not a speed figure" in answer["validation"]["note"]
    assert target.exists()


def test_a_script_given_another_architecture_says_which(tmp_path):
    from tools.validate import _run, tiny_model

    data = db.load(db.shipped_path())
    source = render(resolve(Task(model="SD1.5", sampler="DDIM", steps=4, accelerators=["DeepCache"],
                                 speedup=2.0), data))
    result = _run(source, "tiny-cpu-smoke", ["--model-path", str(tiny_model("SDXL")), "--device", "cpu"], 300)
    assert not result.ok and "holds a StableDiffusionXLPipeline" in result.error
    result = _run(source, "tiny-cpu-smoke", ["--model-path", str(tiny_model("SD2.1")), "--device", "cpu"], 300)
    assert not result.ok and "SD2.x U-Net" in result.error


def test_tiny_model_command_writes_a_loadable_pipeline(tmp_path):
    import diffusers
    from click.testing import CliRunner

    from agent.cli import cli

    result = CliRunner().invoke(cli, ["tiny-model", str(tmp_path / "sdxl"), "--model", "SDXL"])
    assert result.exit_code == 0, result.output
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(str(tmp_path / "sdxl"))
    assert [type(b).__name__ for b in pipe.unet.down_blocks] == [
        "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    assert pipe.unet.config.layers_per_block == 2 and pipe.text_encoder_2 is not None
    again = CliRunner().invoke(cli, ["tiny-model", str(tmp_path / "sdxl"), "--model", "SDXL"])
    assert again.exit_code == 2 and "not empty" in again.output


def test_a_graph_engine_script_falls_back_to_eager_on_the_cpu_with_one_line(tmp_path):
    from tools.validate import _run, tiny_model

    data = db.load(db.shipped_path())
    resolution = resolve(Task(model="SD1.5", sampler="DDIM", steps=25, accelerators=["DeepCache"], speedup=2.0), data)
    assert resolution.engine == "graph" and set(resolution.choices) == {"eager", "graph"}
    source = render(resolution)
    assert "def enable_graphs(" in source and "--eager" in source
    arguments = ["--model-path", str(tiny_model("SD1.5")), "--device", "cpu", "--benchmark", "--runs", "2",
                 "--max-runs", "2"]
    fallback = _run(source, "tiny-cpu-smoke", arguments, 300)
    assert fallback.ok and fallback.report["engine"] == "eager"
    eager = _run(source, "tiny-cpu-smoke", arguments + ["--eager"], 300)
    assert eager.ok and eager.report["engine"] == "eager"
    compiled = _run(source, "tiny-cpu-smoke", arguments + ["--compile"], 300)
    assert compiled.ok and compiled.report["engine"] == "eager" and compiled.report["compiled"] is False


def test_a_graph_script_compiles_the_unet_before_deepcache_wraps_it_and_undoes_both():
    from search.graph import _plain_forward
    from search.pipelines import build_random

    data = db.load(db.shipped_path())
    source = render(resolve(Task(model="SD1.5", sampler="DDIM", steps=25, accelerators=["DeepCache"],
                                 speedup=2.0), data))
    script = {"__name__": "generated"}
    exec(compile(source, "pipeline.py", "exec"), script)
    pipe = build_random("SD1.5")
    undo = script["accelerate"](pipe, "graph", compiled=True)  # on a CPU: no graphs, compiled lazily
    helper_forward = pipe.unet.forward.__closure__  # DeepCache's wrapper, over its helper
    helpers = [c.cell_contents for c in helper_forward if hasattr(c.cell_contents, "function_dict")]
    assert hasattr(helpers[0].function_dict["unet_forward"], "_torchdynamo_orig_callable")
    undo()
    assert _plain_forward(pipe.unet)


def test_step_counts_the_schedulers_refuse_are_refused_before_anything_runs(tmp_path):
    from click.testing import CliRunner

    from agent.cli import cli

    target = tmp_path / "x.py"
    result = CliRunner().invoke(cli, ["generate", "SD1.5 DDIM 1000 steps DeepCache 2x", "-o", str(target)])
    assert result.exit_code == 2 and "at most 999" in result.output and not target.exists()
