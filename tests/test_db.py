import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import DatabaseError
from core.task import GRID_TARGETS
from core import db

ROOT = Path(__file__).resolve().parents[1]


def make_sweep(model="SD1.5", sampler="DDIM", steps=25, accelerators=("DeepCache",), speedups=(1.6, 2.4, 3.3)):
    candidates = [
        {"params": {"DeepCache": {"cache_interval": i + 2, "cache_branch_id": 0}}, "speedup": s,
         "latency_s": round(1 / s, 4), "quality": {"ssim": round(0.99 - 0.02 * i, 4), "psnr": 40 - i}}
        for i, s in enumerate(speedups)
    ]
    return {"model": model, "sampler": sampler, "steps": steps, "accelerators": list(accelerators),
            "baseline_latency_s": 1.0, "candidates": candidates,
            "provenance": {"device": "test", "dtype": "float32", "resolution": 128, "weights": "tiny-random"}}


@pytest.fixture
def path(tmp_path):
    return tmp_path / "search_params.json"


def test_store_and_lookup_exact_from_sweep_nearest_missing(path):
    db.update(lambda d: db.store_sweep(d, make_sweep(), GRID_TARGETS), path)
    data = db.load(path)
    exact = db.lookup(data, "SD1.5", "DDIM", 25, ["DeepCache"], 2.0)
    assert exact.match == "exact" and exact.feasible
    assert exact.entry["params"]["DeepCache"]["cache_interval"] == 3  # best quality reaching 2.0
    assert db.lookup(data, "SD1.5", "DDIM", 25, ["DeepCache"], 4.0).entry["status"] == "infeasible"
    between = db.lookup(data, "SD1.5", "DDIM", 25, ["DeepCache"], 2.2)
    assert between.match == "from-sweep" and between.entry["measured"]["speedup"] == 2.4
    near = db.lookup(data, "SD1.5", "UniPC", 30, ["DeepCache"], 2.0)
    assert near.match == "nearest"
    assert "sampler DDIM instead of UniPC" in near.note() and "25 steps instead of 30" in near.note()
    assert db.lookup(data, "SDXL", "DDIM", 25, ["DeepCache"], 2.0).match == "missing"


def test_infeasible_target_records_best_speed_never_fakes(path):
    db.update(lambda d: db.store_sweep(d, make_sweep(speedups=(1.1, 1.3)), [1.2, 3.0]), path)
    entries = {e["target"]: e for e in db.load(path)["entries"]}
    assert entries[1.2]["status"] == "ok" and entries[1.2]["measured"]["speedup"] >= 1.2
    assert entries[3.0]["status"] == "infeasible" and entries[3.0]["measured"]["speedup"] == 1.3


def test_reads_the_original_tuple_key_format(path):
    path.write_text(json.dumps({
        "('SD1.5', 'DDIM', 50, 'DeepCache', 2.0)": {"cache_interval": 3, "cache_branch_id": 0},
        "('SDXL', 'UniPCMultistepScheduler', 25, 'DeepCache and ToMe', 1.5)": {
            "cache_interval": 2, "cache_branch_id": 0, "ratio": 0.5, "speedup": 1.6},
    }))
    data = db.load(path)
    found = db.lookup(data, "SDXL", "UniPC", 25, ["DeepCache", "ToMe"], 1.5)
    assert found.match == "exact"
    assert found.entry["params"] == {"DeepCache": {"cache_interval": 2, "cache_branch_id": 0},
                                     "ToMe": {"ratio": 0.5, "max_downsample": 1, "sx": 2, "sy": 2}}
    assert "not re-measured" in found.entry["provenance"]["source"]


def test_corrupt_file_is_reported_and_never_overwritten(path):
    path.write_text('{"format": "diffaccel-search-params", "entries": [')
    with pytest.raises(DatabaseError, match="not valid JSON"):
        db.load(path)
    with pytest.raises(DatabaseError):
        db.update(lambda d: db.store_sweep(d, make_sweep(), [2.0]), path)
    assert path.read_text() == '{"format": "diffaccel-search-params", "entries": ['


def _write_sweep(path, steps):
    db.update(lambda d: db.store_sweep(d, make_sweep(steps=steps), GRID_TARGETS), path)


def test_concurrent_writers_lose_nothing(path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_sweep, args=(str(path), steps)) for steps in range(10, 18)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    data = db.load(path)
    assert sorted(s["steps"] for s in data["sweeps"]) == list(range(10, 18))
    assert len(data["entries"]) == 8 * len(GRID_TARGETS)


KILLED_WRITER = """
import sys, time
from core import db
from tests.test_db import make_sweep
def slow(data):
    db.store_sweep(data, make_sweep(steps=99), [2.0])
    print("in-lock", flush=True)
    time.sleep(60)
db.update(slow, sys.argv[1])
"""


def test_writer_killed_mid_write_loses_nothing(path):
    _write_sweep(path, 25)
    before = path.read_text()
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "in-lock"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert path.read_text() == before  # the old file, whole
    _write_sweep(path, 30)  # the lock died with the writer
    assert sorted(s["steps"] for s in db.load(path)["sweeps"]) == [25, 30]
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]


def test_shipped_database_is_complete_and_honest():
    data = db.load(ROOT / "search_params.json")
    assert data["format"] == db.FORMAT and data["version"] == db.VERSION
    assert len(data["entries"]) == 1134 and len(data["sweeps"]) == 162
    for entry in data["entries"]:
        source = entry["provenance"]
        assert {"device", "dtype", "resolution", "weights", "libraries", "date", "metrics"} <= set(source)
        speedup = entry["measured"]["speedup"]
        if entry["status"] == "ok":
            assert speedup >= entry["target"]
        else:
            assert entry["status"] == "infeasible" and speedup < entry["target"]
    sweeps = {db.combo_key(s["model"], s["sampler"], s["steps"], s["accelerators"]): s for s in data["sweeps"]}
    for entry in data["entries"]:  # every entry is the pick from its stored sweep
        sweep = sweeps[db.combo_key(entry["model"], entry["sampler"], entry["steps"], entry["accelerators"])]
        assert entry["params"] in [c["params"] for c in sweep["candidates"]]


def test_installed_copy_finds_the_shipped_database(monkeypatch, tmp_path):
    monkeypatch.setenv(db.ENV_VAR, str(tmp_path / "other.json"))
    assert db.default_path() == tmp_path / "other.json"
    monkeypatch.delenv(db.ENV_VAR)
    assert db.default_path().name == "search_params.json" and db.default_path().exists()
