"""agent verify: sampling, judging, the report, and the whole loop on tiny pipelines on the CPU."""

import json

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

    shipped = db.load()
    first, second = shipped.sweeps[:2]
    on = {"NVIDIA H100 80GB HBM3": first, "NVIDIA H200": second}
    sweeps = [sweep.model_copy(update={"provenance": sweep.provenance.model_copy(update={"device": device})})
              for device, sweep in on.items()]
    database = db.Database(sweeps=sweeps)
    assert verify.measured_on(database, "h200") == {second.combo_key}  # any case, part of the name
    assert verify.measured_on(database, "NVIDIA") == {first.combo_key, second.combo_key}
    assert verify.measured_on(database, "A100") == set()
    path = tmp_path / "db.json"
    path.write_text(database.model_dump_json())
    result = CliRunner().invoke(cli, ["verify", "--measured-on", "A100", "--db", str(path), "--out",
                                      str(tmp_path / "v.jsonl")])
    assert result.exit_code != 0 and "measured on a GPU named like 'A100'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "v.jsonl").exists()


def check(target, status, claimed, interval=None, device=None):
    claim = {"engine": "graph", "status": status, "match": "exact",
             "measured": {"speedup": claimed, "speedup_interval": interval}, "device": device}
    return verify.Check("id", "SD1.5", "DDIM", 25, ("DeepCache",), target, "", claim)


def test_judging_a_claim_against_what_the_script_measured():
    assert verify.judge(check(2.0, "ok", 2.5), {"speedup": 1.95})["verdict"] == "reached"  # within 3%
    assert verify.judge(check(2.0, "ok", 2.5), {"speedup": 1.9})["verdict"] == "missed"
    assert verify.judge(check(4.0, "infeasible", 3.0), {"speedup": 3.1})["verdict"] == "honestly infeasible"
    assert verify.judge(check(2.0, "ok", 2.5), {"error": "exit 1: boom"})["verdict"] == "script failed"
    row = verify.judge(check(2.0, "ok", 2.5), {"speedup": 2.0, "baseline_latency_s": 0.8, "latency_s": 0.4})
    assert (row["baseline_latency_s"], row["latency_s"], row["ratio"]) == (0.8, 0.4, 0.8)
    rows = [verify.judge(check(2.0, "ok", 2.5), {"speedup": s, "ssim": 0.99}) for s in (2.5, 2.0, 1.0)]
    summary = verify.summary(rows)
    assert summary["feasible_claims"] == 3 and summary["reached"] == 2 and summary["pass_rate"] == 0.667
    assert summary["median_script_over_database"] == 0.8
    assert summary["below_claimed_low"] == 0  # no interval claimed: nothing to fall below
    bounded = [verify.judge(check(2.0, "ok", 2.5, (2.2, 2.9)), {"speedup": s}) for s in (2.5, 2.1, 2.3)]
    assert bounded[1]["claimed_speedup_interval"] == (2.2, 2.9)
    assert verify.summary(bounded)["below_claimed_low"] == 1
    elsewhere = [verify.judge(check(2.0, "ok", 2.5, device="NVIDIA H100 80GB HBM3"), {"speedup": 2.4, "gpu": gpu})
                 for gpu in ("NVIDIA H200", "NVIDIA H100 80GB HBM3", None)]
    assert [row["device"] for row in elsewhere] == ["NVIDIA H200", "NVIDIA H100 80GB HBM3", None]
    assert verify.summary(elsewhere)["on_another_gpu"] == 1  # an unknown GPU is not counted as another


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
