"""agent verify: sampling, judging, the report, and the whole loop on tiny pipelines on the CPU."""

import json

import pytest
from click.testing import CliRunner

from agent import verify
from agent.cli import cli
from core.task import MODELS
from tests.conftest import needs_torch


def test_sampling_is_seeded_and_stratified_by_model():
    first, again = verify.sample(10, seed=3), verify.sample(10, seed=3)
    assert first == again and len({c.id for c in first}) == 10
    per_model = [sum(c.model == model for c in first) for model in MODELS]
    assert max(per_model) - min(per_model) <= 1
    assert verify.sample(10, seed=4) != first


def test_sampling_can_keep_to_the_refilled_sweeps():
    from core.db import combo_key

    only = {combo_key("SD1.5", "DDIM", 25, ("DeepCache",)), combo_key("SDXL", "UniPC", 20, ("ToMe", "DeepCache"))}
    checks = verify.sample(12, seed=1, only=only)
    assert {combo_key(c.model, c.sampler, c.steps, c.accelerators) for c in checks} == only
    assert not [c for c in checks if c.model == "SD2.1"]  # nothing of it was refilled


def test_sampling_can_keep_to_the_sweeps_of_one_gpu(tmp_path):
    from core import db
    from search.measure import PROTOCOL_VERSION

    first, second, third = db.load().sweeps[:3]

    def on(sweep, device, protocol, workers=1):  # workers: grid workers on its host (search/measure.py)
        provenance = db.Provenance.model_validate({**sweep.provenance.model_dump(), "device": device,
                                                   "protocol_version": protocol, "cpu": {"concurrent": workers}})
        return sweep.model_copy(update={"provenance": provenance})

    old = PROTOCOL_VERSION - 1
    database = db.Database(sweeps=[on(first, "NVIDIA H100 80GB HBM3", PROTOCOL_VERSION),
                                   on(second, "NVIDIA H200", old),
                                   on(first, "NVIDIA H200", old),  # not served: the first of its key is
                                   on(third, "NVIDIA H200", PROTOCOL_VERSION)])
    assert verify.measured_on(database, "h200") == {second.combo_key, third.combo_key}  # any case, part of it
    assert verify.measured_on(database, "NVIDIA") == {first.combo_key, second.combo_key, third.combo_key}
    assert verify.measured_on(database, "A100") == set()
    assert verify.refilled(database) == {first.combo_key, third.combo_key}
    shadowed = db.Database(sweeps=[on(first, "NVIDIA H200", old), on(first, "NVIDIA H200", PROTOCOL_VERSION),
                                   on(third, "NVIDIA H200", PROTOCOL_VERSION, workers=2)])
    assert verify.refilled(shadowed) == set()  # the served sweep is older; the other's host was shared
    path, out = tmp_path / "db.json", tmp_path / "v.jsonl"
    path.write_text(database.model_dump_json())

    def run(*options):
        return CliRunner().invoke(cli, ["verify", *options, "--models", first.model, "--samplers", first.sampler,
                                        "--steps-list", str(first.steps), "--db", str(path), "--out", str(out)])

    refused = run("--measured-on", "A100")
    assert refused.exit_code == 2 and "measured on a GPU named like 'A100'" in refused.output
    blank = run("--measured-on", " ")
    assert blank.exit_code == 2 and "name a GPU" in blank.output
    wrong_steps = CliRunner().invoke(cli, ["verify", "--steps-list", "x", "--db", str(path), "--out", str(out)])
    assert wrong_steps.exit_code == 2 and "expected step counts" in wrong_steps.output
    assert not out.exists()
    # Both filters: what both keep (the current protocol's sweep is an H100's, the H200's is older)
    path.write_text(db.Database(sweeps=[on(first, "NVIDIA H100 80GB HBM3", PROTOCOL_VERSION),
                                        on(second, "NVIDIA H200", old)]).model_dump_json())
    both = CliRunner().invoke(cli, ["verify", "--measured-on", "H200", "--refilled-only", "--db", str(path),
                                    "--out", str(out)])
    assert both.exit_code == 2 and "by the current protocol (the host to itself) and on a GPU named like 'H200'" in both.output
    # The current version, but measured beside another grid worker on its host: not refilled yet
    path.write_text(db.Database(sweeps=[on(first, "NVIDIA H200", PROTOCOL_VERSION, workers=2)]).model_dump_json())
    refilled = run("--refilled-only", "--weights", "tiny", "--tasks", "1")  # were it sampled: a quick tiny run
    assert refilled.exit_code == 2 and "measured by the current protocol" in refilled.output
    assert not out.exists()


def test_each_claim_carries_the_gpu_it_was_measured_on():
    from agent.agent import Agent
    from core import db

    sweep = db.load().sweeps[-1]
    task = verify.Check("id", sweep.model, sweep.sampler, sweep.steps, tuple(sweep.accelerators), 1.2)
    [checked] = verify.with_scripts([task], Agent(live_search="never"))
    assert checked.claim["device"] == sweep.provenance.device and sweep.model in checked.source.splitlines()[0]
    assert checked.claim["protocol_version"] == sweep.provenance.protocol_version  # verify rows record it


def check(target, status, claimed, interval=None, device=None):
    claim = {"engine": "graph", "status": status, "match": "exact",
             "measured": {"speedup": claimed, "speedup_interval": interval}, "device": device}
    return verify.Check("id", "SD1.5", "DDIM", 25, ("DeepCache",), target, "", claim)


def test_judging_a_claim_against_what_the_script_measured():
    assert verify.judge(check(2.0, "ok", 2.5), {"speedup": 1.95})["verdict"] == "reached"  # within 3%
    assert verify.judge(check(2.0, "ok", 2.5), {"speedup": 1.9})["verdict"] == "missed"
    assert verify.judge(check(4.0, "infeasible", 3.0), {"speedup": 3.1})["verdict"] == "honestly infeasible"
    assert verify.judge(check(2.0, "ok", 2.5), {"error": "exit 1: boom"})["verdict"] == "script failed"
    row = verify.judge(check(2.0, "ok", 2.5), {"speedup": 2.0, "baseline_latency_s": 0.8, "latency_s": 0.4,
                                                "estimator": "fastest"})
    assert (row["baseline_latency_s"], row["latency_s"], row["ratio"]) == (0.8, 0.4, 0.8)
    assert row["estimator"] == "fastest"  # how the script took its figure, beside the claim's protocol
    rows = [verify.judge(check(2.0, "ok", 2.5), {"speedup": s, "ssim": 0.99}) for s in (2.5, 2.0, 1.0)]
    summary = verify.summary(rows)
    assert summary["feasible_claims"] == 3 and summary["reached"] == 2 and summary["pass_rate"] == 0.667
    assert summary["median_script_over_database"] == 0.8
    assert summary["below_claimed_low"] == 0  # no interval claimed: nothing to fall below
    bounded = [verify.judge(check(2.0, "ok", 2.5, (2.2, 2.9)), {"speedup": s}) for s in (2.5, 2.1, 2.3)]
    assert bounded[1]["claimed_speedup_interval"] == (2.2, 2.9)
    assert verify.summary(bounded)["below_claimed_low"] == 1
    elsewhere = [verify.judge(check(2.0, "ok", 2.5, device="NVIDIA H100 80GB HBM3"), {"speedup": speedup, "gpu": gpu})
                 for speedup, gpu in ((1.0, "NVIDIA H200"), (2.4, "NVIDIA H100 80GB HBM3"), (2.2, None))]
    assert [row["device"] for row in elsewhere] == ["NVIDIA H200", "NVIDIA H100 80GB HBM3", None]
    counted = verify.summary(elsewhere)  # the H200 row's miss is not the H100 claim's: counted apart
    assert counted["on_another_gpu"] == 1 and counted["tasks"] == 3  # an unknown GPU is not another
    assert (counted["feasible_claims"], counted["reached"], counted["pass_rate"]) == (2, 2, 1.0)


@needs_torch
def test_the_verify_loop_on_tiny_pipelines_is_resumable(tmp_path):
    out = tmp_path / "verify.jsonl"
    arguments = ["verify", "--tasks", "2", "--weights", "tiny", "--gpus", "2", "--models", "SD1.5",
                 "--steps-list", "20", "--out", str(out)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(row["verdict"] != "script failed" for row in rows)
    assert all(row["speedup"] > 0 and row["claim"] in ("ok", "infeasible") for row in rows)
    assert out.with_suffix(".png").exists() and '"tasks": 2' in result.output
    again = CliRunner().invoke(cli, arguments)
    assert "0 scripts to run, 2 already" in again.output and len(out.read_text().splitlines()) == 2


@needs_torch
def test_full_size_weights_without_a_gpu_are_refused_before_anything_is_written(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "results" / "v.jsonl"
    result = CliRunner().invoke(cli, ["verify", "--tasks", "1", "--out", str(out)])
    assert result.exit_code == 2 and "needs a CUDA GPU" in result.output and "--weights tiny" in result.output
    assert not out.parent.exists()
