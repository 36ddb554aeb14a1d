import json
import re
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import DatabaseError
from core.task import GRID_TARGETS
from core import db

ROOT = Path(__file__).resolve().parents[1]


def make_sweep(model="SD1.5", sampler="DDIM", steps=25, accelerators=("DeepCache",), speedups=(1.6, 2.4, 3.3),
               device="test", weights="tiny-random", intervals=None):
    candidates = [
        {"params": {"DeepCache": {"cache_interval": i + 2, "cache_branch_id": 0}}, "speedup": s,
         "speedup_interval": intervals[i] if intervals else None,
         "latency_s": round(1 / s, 4), "quality": {"ssim": round(0.99 - 0.02 * i, 4), "psnr": 40 - i}}
        for i, s in enumerate(speedups)
    ]
    return db.Sweep.model_validate({
        "model": model, "sampler": sampler, "steps": steps, "accelerators": list(accelerators),
        "baseline_latency_s": 1.0, "candidates": candidates,
        "provenance": {"device": device, "dtype": "float32", "resolution": 128, "weights": weights}})


@pytest.fixture
def path(tmp_path):
    return tmp_path / "search_params.json"


def test_store_and_lookup_exact_from_sweep_nearest_missing(path):
    db.update(lambda d: db.store_sweep(d, make_sweep(), GRID_TARGETS), path)
    data = db.load(path)
    exact = db.lookup(data, "SD1.5", "DDIM", 25, ["DeepCache"], 2.0)
    assert exact.match == "exact" and exact.feasible
    assert exact.entry.params.deepcache.cache_interval == 3  # best quality reaching 2.0
    assert db.lookup(data, "SD1.5", "DDIM", 25, ["DeepCache"], 4.0).entry.status == "infeasible"
    between = db.lookup(data, "SD1.5", "DDIM", 25, ["DeepCache"], 2.2)
    assert between.match == "from-sweep" and between.entry.measured.speedup == 2.4
    near = db.lookup(data, "SD1.5", "UniPC", 30, ["DeepCache"], 2.0)
    assert near.match == "nearest"
    assert "sampler DDIM instead of UniPC" in near.note() and "25 steps instead of 30" in near.note()
    assert db.lookup(data, "SDXL", "DDIM", 25, ["DeepCache"], 2.0).match == "missing"


def test_infeasible_target_records_best_speed_never_fakes(path):
    db.update(lambda d: db.store_sweep(d, make_sweep(speedups=(1.1, 1.3)), [1.2, 3.0]), path)
    entries = {e.target: e for e in db.load(path).entries}
    assert entries[1.2].status == "ok" and entries[1.2].measured.speedup >= 1.2
    assert entries[3.0].status == "infeasible" and entries[3.0].measured.speedup == 1.3


def test_intervals_are_shown_rounded_outward():
    from core.pareto import interval_text

    # 1.997 would print as 2.00 beside "infeasible at 2x": shown, a bound never crosses a target it misses
    assert interval_text(1.997, 3.701) == "1.99-3.71"
    assert interval_text(2.0, 3.7) == "2.00-3.70"  # exact values stay as they are
    assert interval_text(0.9951, 1.0049) == "0.99-1.01"


def test_reads_the_original_tuple_key_format(path):
    path.write_text(json.dumps({
        "('SD1.5', 'DDIM', 50, 'DeepCache', 2.0)": {"cache_interval": 3, "cache_branch_id": 0},
        "('SDXL', 'UniPCMultistepScheduler', 25, 'DeepCache and ToMe', 1.5)": {
            "cache_interval": 2, "cache_branch_id": 0, "ratio": 0.5, "speedup": 1.6},
    }))
    data = db.load(path)
    found = db.lookup(data, "SDXL", "UniPC", 25, ["DeepCache", "ToMe"], 1.5)
    assert found.match == "exact"
    assert found.entry.params.to_json() == {"DeepCache": {"cache_interval": 2, "cache_branch_id": 0},
                                     "ToMe": {"ratio": 0.5, "max_downsample": 1, "sx": 2, "sy": 2}}
    assert "not re-measured" in found.entry.provenance.source


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
    assert sorted(s.steps for s in data.sweeps) == list(range(10, 18))
    assert len(data.entries) == 8 * len(GRID_TARGETS)


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
    assert sorted(s.steps for s in db.load(path).sweeps) == [25, 30]
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]


def test_shipped_database_is_complete_and_honest():
    data = db.load(db.shipped_path())
    assert len(data.entries) >= 1134 and len(data.sweeps) == 162
    for entry in data.entries:
        source = entry.provenance.model_dump()
        assert {"device", "dtype", "resolution", "weights", "libraries", "date", "metrics"} <= set(source)
        assert source["weights"] in ("random", "real") and source["device"].startswith("NVIDIA H")
        speedup = entry.measured.speedup
        low = entry.measured.speedup_interval[0] if entry.measured.speedup_interval else speedup
        if entry.status == "ok":
            assert low >= entry.target
        else:
            assert entry.status == "infeasible" and low < entry.target
    for entry in data.entries:  # every entry is the pick from its stored sweep
        sweep = data.find_sweep(entry.combo_key)
        assert entry.params in [c.params for c in sweep.candidates if c.engine == entry.engine]


def test_the_pick_trusts_the_lower_bound_not_the_estimate(path):
    # The best-quality candidate's estimate crosses 2.0 but its interval does not: not picked.
    sweep = make_sweep(speedups=(2.05, 2.6), intervals=[(1.8, 2.3), (2.5, 2.7)])
    db.update(lambda d: db.store_sweep(d, sweep, [2.0]), path)
    entry = db.lookup(db.load(path), "SD1.5", "DDIM", 25, ["DeepCache"], 2.0).entry
    assert entry.measured.speedup == 2.6 and entry.measured.speedup_interval == (2.5, 2.7)


MALFORMED = {
    "entry without sampler": ({"entries": [{"model": "SD1.5", "steps": 25, "accelerators": ["DeepCache"],
                                             "target": 2.0, "status": "ok", "provenance": {}}]},
                              "entry 0 (SD1.5 ? 25): sampler"),
    "entries is an object": ({"entries": {"a": 1}}, "'entries' must be a list"),
    "entries is null": ({"entries": None}, "'entries' must be a list"),
    "knob of the wrong type": ({"entries": [{"model": "SD1.5", "sampler": "DDIM", "steps": 25,
                                             "accelerators": ["DeepCache"], "target": 2.0, "status": "ok",
                                             "params": {"DeepCache": {"cache_interval": "abc"}},
                                             "provenance": {}}]}, "params.DeepCache.cache_interval"),
    "entry without its setting": ({"entries": [{"model": "SD1.5", "sampler": "DDIM", "steps": 25,
                                                "accelerators": ["DeepCache"], "target": 2.0, "status": "ok",
                                                "params": None, "provenance": {}}]}, "entry 0 (SD1.5 DDIM 25): params"),
    "sweep without keys": ({"sweeps": [{"candidates": []}]}, "sweep 0"),
    "not a list of records": ({"sweeps": [3]}, "sweep 0"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_records_are_named_on_load_and_never_overwritten(path, case):
    content, message = MALFORMED[case]
    text = json.dumps({"format": db.FORMAT, "version": 2, **content})
    path.write_text(text)
    with pytest.raises(DatabaseError, match=re.escape(message)):
        db.load(path)
    with pytest.raises(DatabaseError):  # a search's write fails before anything is measured
        db.update(lambda d: None, path)
    assert path.read_text() == text


def test_live_cache_problems_are_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFACCEL_CACHE", str(tmp_path))
    db.live_path().mkdir(parents=True)
    with pytest.raises(DatabaseError, match="is a directory"):
        db.load_with_live()
    db.live_path().rmdir()
    db.live_path().write_text("{broken")
    with pytest.raises(DatabaseError, match=r"this machine's own searches: delete it") as error:
        db.load_with_live()
    assert "git checkout" not in str(error.value)


def test_a_named_database_that_does_not_exist_is_an_error_not_created(tmp_path):
    missing = tmp_path / "nonexistent.json"
    with pytest.raises(DatabaseError, match="does not exist"):
        db.load_with_live(missing)
    assert not missing.exists()


def test_written_files_get_the_umask_mode_and_keep_an_existing_one(path):
    old = os.umask(0o022)
    try:
        _write_sweep(path, 25)
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o664)
        _write_sweep(path, 30)
        assert path.stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_stale_temp_files_of_killed_writers_are_removed(path):
    _write_sweep(path, 25)
    stale = path.parent / f".{path.name}.abc123.tmp"
    stale.write_text("half a file")
    _write_sweep(path, 30)
    assert not stale.exists()


def test_weaker_measurements_never_replace_stronger_ones_without_force(path):
    strong = make_sweep(device="NVIDIA H100 80GB HBM3", weights="random", speedups=(2.5,))
    db.update(lambda d: db.store_sweep(d, strong, [2.0]), path)
    weak = make_sweep(speedups=(1.1,))  # tiny, on the CPU
    with pytest.raises(DatabaseError, match="weaker figures"):
        db.update(lambda d: db.store_sweep(d, weak, [2.0]), path)
    assert db.load(path).sweeps[0].provenance.device.startswith("NVIDIA")
    db.update(lambda d: db.store_sweep(d, weak, [2.0], force=True), path)
    assert db.load(path).sweeps[0].provenance.device == "test"


def test_default_paths(monkeypatch, tmp_path):
    monkeypatch.setenv(db.ENV_VAR, str(tmp_path / "other.json"))
    assert db.default_path() == tmp_path / "other.json"
    monkeypatch.delenv(db.ENV_VAR)
    assert db.default_path() == db.shipped_path() and db.shipped_path().exists()
    assert db.is_shipped(ROOT / "search_params.json")


def test_a_users_file_is_written_through_links_and_devices_and_read_only_files_are_kept(tmp_path):
    from core.errors import DiffaccelError
    from core.files import save_user_file

    real = tmp_path / "real.py"
    real.write_text("old")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    save_user_file(link, "new")
    assert link.is_symlink() and real.read_text() == "new"

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    save_user_file(fifo, "through the pipe")
    assert reader.communicate(timeout=10)[0] == "through the pipe"
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a pipe, not replaced by a file

    locked = tmp_path / "locked.py"
    locked.write_text("keep")
    locked.chmod(0o444)
    with pytest.raises(DiffaccelError, match="read-only"):
        save_user_file(locked, "new")
    assert locked.read_text() == "keep" and not list(tmp_path.glob(".locked.py.*"))

    loop = tmp_path / "loop.py"
    loop.symlink_to(tmp_path / "back.py")
    (tmp_path / "back.py").symlink_to(loop)
    with pytest.raises(DiffaccelError, match="cannot write"):
        save_user_file(loop, "new")
