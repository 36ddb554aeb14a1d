"""The grid on a Dask cluster: two CPU worker processes stand in for two GPUs.

The `work` functions below run in worker processes; they reach the test only through their return
value and marker files (which is how a test sees a process that died mid-task).
"""

import os
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
import cloudpickle  # noqa: E402  (a dependency of distributed)

from core import db  # noqa: E402
from search.distributed import (  # noqa: E402
    cpu_blocks,
    host_timing_lock,
    in_model_order,
    keep_one,
    local_cluster,
    parse_cpus,
    pin_from_env,
    run_on_cluster,
)
from search.engine import GridItem  # noqa: E402

# Workers cannot import this test module by name: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TARGETS = (1.5, 2.0)


def grid(count: int, models=("SD1.5", "SDXL")) -> list[GridItem]:
    return [GridItem(models[i % len(models)], "DDIM", 10 + i, ("DeepCache",)) for i in range(count)]


def sweep_record(item: GridItem, **extra) -> dict:
    """A sweep-shaped record, as the engine's `sweep` would return, tagged with where it ran."""
    return {
        "model": item.model, "sampler": item.sampler, "steps": item.steps,
        "accelerators": list(item.accelerators), "baseline_latency_s": 1.0,
        "candidates": [{"params": {}, "speedup": 1.8, "latency_s": 0.55,
                        "quality": {"ssim": 0.9, "psnr": 30.0}}],
        "provenance": {}, "worker_pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), **extra,
    }


def work_quickly(item):
    return sweep_record(item, started=time.monotonic())


def work_pinned(item):
    pinned = pin_from_env()
    return sweep_record(item, pinned=sorted(pinned), cores=sorted(os.sched_getaffinity(0)),
                        cpus=os.environ.get("DIFFACCEL_CPUS"), concurrent=os.environ.get("DIFFACCEL_CONCURRENT"),
                        omp=os.environ.get("OMP_NUM_THREADS"), lock=os.environ.get("DIFFACCEL_TIMING_LOCK"),
                        malloc_trim=os.environ.get("MALLOC_TRIM_THRESHOLD_"))


def work_dying_once(item, markers: str):
    """The first attempt at each item kills its worker process, as a CUDA crash or OOM kill would."""
    marker = Path(markers) / f"{item.steps}.died"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    import dask

    return sweep_record(item, first_pid=int(marker.read_text()), malloc_trim=os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                        profile=dask.config.get("distributed.worker.profile.enabled"),
                        tick=dask.config.get("distributed.admin.tick.interval"))


def work_dying_always(item, markers: str):
    with open(Path(markers) / "attempts", "a") as attempts:
        attempts.write("x")
    os._exit(1)


def work_raising_on_12(item, markers: str):
    with open(Path(markers) / f"{item.steps}.attempts", "a") as attempts:
        attempts.write("x")
    if item.steps == 12:
        raise ValueError("this setting crashes the pipeline")
    return sweep_record(item)


def work_slowly(item):
    started = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the host
    time.sleep(0.5)
    return sweep_record(item, started=started)


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as running:
        yield running.scheduler_address


def recorder():
    seen = []

    def on_result(item, record):
        seen.append((item, record, os.getpid()))

    return seen, on_result


def test_every_item_runs_once_on_pinned_workers_and_only_the_driver_writes(tmp_path):
    """The local-cluster path end to end: on_result writes the database in this process."""
    path = tmp_path / "search_params.json"
    items = grid(6)
    seen = []

    def on_result(item, record):
        seen.append((item, record, os.getpid()))
        sweep = db.Sweep.model_validate({k: v for k, v in record.items() if k in db.Sweep.model_fields})
        db.update(lambda data: db.store_sweep(data, sweep, TARGETS), path)

    report = run_on_cluster(items, work_quickly, on_result, gpus=2)

    assert sorted(report.done, key=lambda i: i.steps) == items and not report.failed
    assert [item for item, _, _ in seen] == report.done  # once each, as each completed
    assert {pid for _, _, pid in seen} == {os.getpid()}
    worker_devices = {record["worker_pid"]: record["cuda_visible_devices"] for _, record, _ in seen}
    assert os.getpid() not in worker_devices
    assert set(worker_devices.values()) <= {"0", "1"}  # each process sees one device
    assert len(set(worker_devices.values())) == len(worker_devices)
    assert len(db.load(path).sweeps) == 6 and report.workers == 2
    # Submission is grouped by model (test_items_are_grouped_by_model_in_first_seen_order); when two
    # loaded processes start them is up to the scheduler, so start order is not asserted here.
    assert sorted(record["model"] for _, record, _ in seen) == ["SD1.5"] * 3 + ["SDXL"] * 3


def test_a_sweep_whose_worker_dies_is_run_again_and_completed(cluster, tmp_path):
    seen, on_result = recorder()
    items = grid(3)
    work = _bind(work_dying_once, tmp_path)
    report = run_on_cluster(items, work, on_result, scheduler_address=cluster, retries=2)

    assert not report.failed and len(report.done) == 3
    for _, record, _ in seen:
        assert record["worker_pid"] != record["first_pid"]  # finished by a fresh process
        # ... started as the first was: as a plain process times (search/distributed.py WORKER_CONFIG)
        assert (record["malloc_trim"], record["profile"], record["tick"]) == (None, False, "1s")


def test_a_sweep_whose_worker_always_dies_fails_after_its_retries(cluster, tmp_path):
    seen, on_result = recorder()
    report = run_on_cluster(grid(1), _bind(work_dying_always, tmp_path), on_result,
                            scheduler_address=cluster, retries=1)

    assert not seen and len(report.failed) == 1
    assert "died" in report.failed[0].reason
    assert (tmp_path / "attempts").read_text() == "xx"  # the try and one retry


def test_a_sweep_that_raises_fails_once_and_the_others_finish(cluster, tmp_path):
    seen, on_result = recorder()
    items = grid(4)  # steps 10..13
    report = run_on_cluster(items, _bind(work_raising_on_12, tmp_path), on_result,
                            scheduler_address=cluster, retries=2)

    assert [failure.item.steps for failure in report.failed] == [12]
    assert "ValueError: this setting crashes the pipeline" in report.failed[0].reason
    assert "work_raising_on_12" in report.failed[0].traceback
    assert sorted(item.steps for item in report.done) == [10, 11, 13]
    assert (tmp_path / "12.attempts").read_text() == "x"  # a bug is not rerun


def test_no_sweep_starts_after_the_deadline(cluster):
    seen, on_result = recorder()
    # 20 sweeps of 0.5 s on 2 workers take 5 s; the deadline leaves room for a few even on a busy
    # 2-core machine (with 1.2 s, scheduling delays there once let only one start).
    items = grid(20)
    deadline = time.monotonic() + 2.0
    report = run_on_cluster(items, work_slowly, on_result, scheduler_address=cluster,
                            deadline=deadline)

    assert all(record["started"] <= deadline for _, record, _ in seen)
    assert 2 <= len(report.done) < len(items)  # running sweeps finished and were recorded
    assert report.not_started and not report.failed
    assert sorted(report.done + report.not_started, key=lambda i: i.steps) == items


def test_items_are_grouped_by_model_in_first_seen_order():
    items = grid(5, models=("SDXL", "SD1.5", "SD2.1"))
    ordered = in_model_order(items)
    assert [i.model for i in ordered] == ["SDXL", "SDXL", "SD1.5", "SD1.5", "SD2.1"]
    assert [i.steps for i in ordered] == [10, 13, 11, 14, 12]


def test_keep_one_loads_each_model_once_and_drops_the_previous():
    loads = []

    def load(name):
        loads.append(name)
        return f"pipeline {name}"

    assert keep_one("SD1.5", lambda: load("SD1.5")) == "pipeline SD1.5"
    assert keep_one("SD1.5", lambda: load("SD1.5")) == "pipeline SD1.5"
    assert keep_one("SDXL", lambda: load("SDXL")) == "pipeline SDXL"
    assert keep_one("SD1.5", lambda: load("SD1.5")) == "pipeline SD1.5"
    assert loads == ["SD1.5", "SDXL", "SD1.5"]


def _bind(work, markers: Path):
    from functools import partial

    return partial(work, markers=str(markers))


def test_each_worker_measures_on_its_own_cores_with_one_thread(monkeypatch):
    """Host-bound eager timings slow down when processes share cores (benchmarks/results/eager_baseline.md)."""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # workers would inherit it from here
    seen, on_result = recorder()
    run_on_cluster(grid(4), work_pinned, on_result, gpus=2)
    by_worker = {record["worker_pid"]: record for _, record, _ in seen}
    cores = [frozenset(record["cores"]) for record in by_worker.values()]
    assert all(record["omp"] == "1" and record["concurrent"] == "2" for record in by_worker.values())
    # ... and with glibc's own allocator settings, as the user's script runs (Dask's nanny would set
    # MALLOC_TRIM_THRESHOLD_, slowing a host-bound baseline: benchmarks/results/worker_env_cpu.json)
    assert [record["malloc_trim"] for record in by_worker.values()] == [None] * len(by_worker)
    assert all(record["cores"] == record["pinned"] and set(record["cores"]) == parse_cpus(record["cpus"])
               for record in by_worker.values())
    assert {record["lock"] for record in by_worker.values()} == {host_timing_lock()}  # one for the host
    if len(by_worker) == 2 and len(os.sched_getaffinity(0)) >= 2:  # which workers run is the scheduler's
        assert not cores[0] & cores[1]


def test_cpu_blocks_split_the_cores_and_parse_back():
    assert cpu_blocks(4, range(64)) == ["0-15", "16-31", "32-47", "48-63"]
    assert cpu_blocks(3, [0, 2, 4, 6, 8, 10]) == ["0,2", "4,6", "8,10"]
    assert cpu_blocks(4, [0, 1]) == ["0", "1", "0", "1"]  # more workers than cores: shared
    assert parse_cpus("0-3,8") == {0, 1, 2, 3, 8} and parse_cpus(cpu_blocks(1)[0]) == os.sched_getaffinity(0)


def test_a_process_of_its_own_is_not_pinned(monkeypatch):
    monkeypatch.delenv("DIFFACCEL_CPUS", raising=False)
    before = os.sched_getaffinity(0)
    assert pin_from_env() is None and os.sched_getaffinity(0) == before


def test_cores_the_process_may_not_use_are_a_clear_error(monkeypatch):
    from core.errors import DiffaccelError

    monkeypatch.setenv("DIFFACCEL_CPUS", "100000-100003")
    before = os.sched_getaffinity(0)
    with pytest.raises(DiffaccelError, match="DIFFACCEL_CPUS=100000-100003 names no core"):
        pin_from_env()
    assert os.sched_getaffinity(0) == before
