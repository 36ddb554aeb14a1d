"""Every model x sampler x accelerator combination: the generated script runs, on a tiny pipeline."""

import pytest

from tests.conftest import needs_torch

pytestmark = [needs_torch]

from core.task import ALL_COMBINATIONS, MODELS, SAMPLERS, Task  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("combination", ALL_COMBINATIONS, ids=lambda c: "+".join(c) or "none")
def test_generated_script_runs_on_tiny_pipeline(model, sampler, combination):
    from agent.codegen import render, resolve
    from agent.validate import run_script
    from core import db

    task = Task(model=model, sampler=sampler, steps=12, accelerators=list(combination), speedup=2.0)
    result = run_script(render(resolve(task, db.load())), model, timeout=600)
    assert result.ok, result.error
    report = result.report
    assert set(report) >= {"baseline_latency_s", "latency_s", "speedup", "ssim", "psnr"}
    assert report["speedup"] > 0 and -1 <= report["ssim"] <= 1
    if not combination:
        assert report["ssim"] == 1.0  # no accelerator: the very same image


def test_validate_reports_a_broken_script():
    from agent.validate import run_script

    result = run_script("raise SystemExit('boom: no such scheduler')\n", "SD1.5", timeout=120)
    assert not result.ok and "boom: no such scheduler" in result.error


def test_generate_validate_cli_passes_and_writes(tmp_path):
    import json

    from click.testing import CliRunner

    from agent.cli import cli

    target = tmp_path / "ok.py"
    result = CliRunner().invoke(cli, ["generate", "SD2.1 UniPC 8 steps DeepCache and ToMe 2x",
                                      "--validate", "--no-live-search", "--json", "-o", str(target)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)  # stderr may carry library warnings
    assert answer["validation"]["ok"] and answer["validation"]["report"]["speedup"] > 0
    assert target.exists()


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
