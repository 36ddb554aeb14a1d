"""The grid spread over GPUs with Dask distributed: one worker process per GPU, one task per sweep.

Why Dask: it already knows how to run tasks on worker processes of one or several hosts, notice a
worker that died, and run its task again elsewhere; we only decide what a task is and who writes.

Who does what:

- A worker is one process pinned to one GPU (``CUDA_VISIBLE_DEVICES=i``, one thread, resource
  ``GPU=1``), so sweeps never share a device, and to its own block of CPU cores with one intra-op
  thread (``DIFFACCEL_CPUS``, ``OMP_NUM_THREADS=1``; see `pin_from_env`): the eager baseline is
  bound by the host launching kernels, and four plain processes on one host (torch's default
  threads) slowed it from 0.70 s to 0.93-1.22 s (benchmarks/results/eager_baseline.md), which
  inflated every graph speedup measured beside it. Pinning was not enough (0.77-1.15 s with two
  pinned processes), so workers of one host also take turns to measure (``DIFFACCEL_TIMING_LOCK``,
  see search/protocol.py): GPUs of one host overlap loading pipelines, not measuring; several
  hosts measure in parallel. Even taking turns, two workers on an H200 x2 host measured the eager
  baseline 30-50% slow (benchmarks/results/verify_h200x2_7.*), so a sweep records how many workers
  shared its host and one measured beside another is re-measured by the next refill
  (search/measure.py `by_current_protocol`): for figures that hold, run one worker per host. One
  cause, found on the CPU since: Dask's own worker environment (`NANNY_CONFIG`, `WORKER_CONFIG`);
  whether it was the whole cause there is for benchmarks/gpu_shared_host_check.sh to say. It runs
  ``work(item) -> record``: a picklable top-level function that loads its pipeline itself (see
  `keep_one`, which keeps one model per process) and returns the sweep record. Workers are given
  no database path: they never write.
- The driver (the process calling `run_on_cluster`) alone writes: it calls ``on_result(item,
  record)`` as each sweep completes, so a stop loses at most the sweeps in flight, and a second
  run resumes from what the database holds (the caller skips those items, as `plan_grid` does).

Several hosts: start a scheduler on one host and one worker on every host (``DIFFACCEL_CONCURRENT``
says how many share a host; a sweep records it), without a nanny (it would set
MALLOC_TRIM_THRESHOLD_) and with `WORKER_CONFIG` as DASK_* variables, then pass
``scheduler_address``::

    dask scheduler --port 8786
    CUDA_VISIBLE_DEVICES=0 OMP_NUM_THREADS=1 DIFFACCEL_CONCURRENT=1 \\
    DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s \\
        dask worker tcp://HOST:8786 --no-nanny --nthreads 1 --resources GPU=1 --memory-limit 0

Every host needs diffaccel importable (the same checkout or install) so that `work` unpickles.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

from core.errors import DiffaccelError, MissingDependency
from search.protocol import TIMING_LOCK_VARIABLE

WORKER_START_TIMEOUT_S = 120


@dataclass
class Failure:
    """A sweep that did not complete: its item, one line for the user, and the worker's traceback."""

    item: Any
    reason: str
    traceback: str = ""


@dataclass
class RunReport:
    """What happened to each item: completed (on_result called), failed, or left for the next run."""

    done: list = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    not_started: list = field(default_factory=list)
    workers: int = 0


def run_on_cluster(items: Iterable, work: Callable[[Any], Any], on_result: Callable[[Any, Any], None],
                   *, gpus: Optional[int] = None, scheduler_address: Optional[str] = None,
                   deadline: Optional[float] = None, retries: int = 2) -> RunReport:
    """Run ``work(item)`` for every item on the cluster; call ``on_result(item, record)`` here.

    Args:
        items: what to measure, e.g. `GridItem`s; run grouped by ``item.model`` (in the order the
            models first appear) so each worker loads each model about once.
        work: picklable top-level function, run on a worker; returns the record.
        on_result: called in this process, once per completed item, as it completes.
        gpus: worker processes to start on this host, one per GPU; None means one per CUDA device,
            or two CPU workers where there is no CUDA (tests, demos). Ignored with an address.
        scheduler_address: connect to a running cluster (several hosts) instead of starting one.
        deadline: `time.monotonic()` after which no sweep starts. As in `run_grid`, a sweep is not
            started either when the longest one so far would end past it. Running sweeps finish
            and are recorded: cancelling would throw away GPU minutes already spent.
        retries: how many times a sweep is run again after its worker process died (crash, OOM
            kill, lost host). A Python exception in `work` is not retried: it is a bug or a
            setting that fails the same way every time, and a retry would cost minutes of GPU.
    """
    queue = deque(in_model_order(items))
    report = RunReport()
    with _connected(gpus, scheduler_address) as client:
        _set_worker_death_retries(client, retries)
        report.workers = _gpu_slots(client)
        _drive(client, queue, work, on_result, deadline, report)
    report.not_started.extend(queue)
    return report


def in_model_order(items: Iterable) -> list:
    """Items grouped by their ``model`` attribute, models in first-seen order, stable within one."""
    items = list(items)
    first_seen: dict = {}
    for item in items:
        first_seen.setdefault(getattr(item, "model", None), len(first_seen))
    return sorted(items, key=lambda item: first_seen[getattr(item, "model", None)])


def _drive(client, queue: deque, work, on_result, deadline, report: RunReport) -> None:
    """Keep one sweep per GPU in flight, in queue order, and collect each as it completes.

    Submitting only as many tasks as there are GPUs (rather than the whole grid at once) is what
    keeps the model order, lets the deadline stop new starts, and leaves the rest of the queue as
    `not_started` for the next run.
    """
    from distributed import as_completed

    running: dict = {}  # future -> (item, submitted at)
    completed = as_completed()
    longest = 0.0

    def fill() -> None:
        while queue and len(running) < max(1, _gpu_slots(client)) and _fits(deadline, longest):
            item = queue.popleft()
            future = client.submit(work, item, key=_task_key(item), resources={"GPU": 1},
                                   pure=False, retries=0)
            running[future] = (item, time.monotonic())
            completed.add(future)

    fill()
    for future in completed:
        item, submitted = running.pop(future)
        longest = max(longest, time.monotonic() - submitted)
        _collect(future, item, on_result, report)
        fill()


def _fits(deadline: Optional[float], longest: float) -> bool:
    return deadline is None or time.monotonic() + longest <= deadline


def _collect(future, item, on_result, report: RunReport) -> None:
    """Hand a finished sweep to on_result, or record why it failed; an error in on_result is ours
    (e.g. the database cannot be written) and propagates."""
    if future.status == "finished":
        record = future.result()
        future.release()
        on_result(item, record)
        report.done.append(item)
        return
    report.failed.append(_failure(future, item))
    future.release()


def _failure(future, item) -> Failure:
    import traceback as tb

    from distributed import KilledWorker

    if future.status == "cancelled":
        return Failure(item, "cancelled: the cluster dropped the task (scheduler restarted?)")
    error = future.exception()
    if isinstance(error, KilledWorker):
        return Failure(item, f"its worker process died on every try ({error})")
    text = "".join(tb.format_exception(type(error), error, future.traceback()))
    return Failure(item, f"{type(error).__name__}: {error}", text)


def _task_key(item) -> str:
    label = item.label() if hasattr(item, "label") else str(item)
    return f"sweep {label} {uuid.uuid4().hex[:8]}"


def _gpu_slots(client) -> int:
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return int(sum(info.get("resources", {}).get("GPU", 0) for info in workers))


def _set_worker_death_retries(client, retries: int) -> None:
    """Worker loss is counted by the scheduler (``allowed-failures``), not by submit's `retries=`,
    which re-runs raised exceptions; setting it here makes `retries` mean the same on any cluster
    (on a shared scheduler it applies to every client's tasks).

    A nested function travels by value, so the scheduler's host needs no diffaccel to run it.
    """

    def allow(dask_scheduler) -> None:
        dask_scheduler.allowed_failures = retries

    client.run_on_scheduler(allow)


@contextmanager
def _connected(gpus: Optional[int], scheduler_address: Optional[str]) -> Iterator:
    """A client of the given cluster, or of a local one started (and stopped) here."""
    try:
        from distributed import Client
    except ImportError:
        raise MissingDependency(
            "running the grid on a cluster needs Dask: pip install 'diffaccel[dist]'"
        ) from None
    if scheduler_address:
        with Client(scheduler_address) as client:
            _wait_for_gpu_workers(client, 1, scheduler_address)
            yield client
        return
    count = cuda_device_count() if gpus is None else gpus
    count = count or 2  # no CUDA: two CPU workers, so tests and demos exercise the same path
    with local_cluster(count) as cluster, Client(cluster) as client:
        _wait_for_gpu_workers(client, count, "the local cluster")
        yield client


def _wait_for_gpu_workers(client, count: int, where: str) -> None:
    try:
        client.wait_for_workers(count, timeout=WORKER_START_TIMEOUT_S)
    except TimeoutError:
        raise DiffaccelError(
            f"no {count} workers joined {where} within {WORKER_START_TIMEOUT_S} s; "
            "start them with: dask worker ADDRESS --nthreads 1 --resources GPU=1"
        ) from None
    if _gpu_slots(client) < 1:
        raise DiffaccelError(
            f"the workers of {where} offer no GPU resource, so no sweep could start; "
            "start them with --resources GPU=1"
        )


def local_cluster(workers: int):
    """One worker process per GPU of this host, each seeing only its own device.

    No memory limit: the weights live on the GPU, host memory peaks while a pipeline loads, and a
    nanny that killed a worker for it would look like a lost worker and rerun the sweep.
    """
    import dask
    from distributed import Nanny, Scheduler, SpecCluster

    blocks = cpu_blocks(workers)
    spec = {
        f"gpu{index}": {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "resources": {"GPU": 1},
                "env": {"CUDA_VISIBLE_DEVICES": str(index), CPUS_VARIABLE: blocks[index],
                        CONCURRENT_VARIABLE: str(workers), TIMING_LOCK_VARIABLE: host_timing_lock(),
                        **ONE_THREAD},
                "memory_limit": 0,
                "config": WORKER_CONFIG,
                "host": "127.0.0.1",  # one host: nothing leaves the machine
                "silence_logs": logging.ERROR,
            },
        }
        for index in range(workers)
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None, "host": "127.0.0.1"}}
    with dask.config.set(NANNY_CONFIG):  # each nanny reads it as it is made, here
        return SpecCluster(workers=spec, scheduler=scheduler, silence_logs=logging.ERROR)


# A sweep times a host-bound eager baseline, so a worker should run it as the user's plain process
# does. Dask's nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536 (`distributed.nanny.pre-
# spawn-environ`), which also turns off glibc's adaptive mmap threshold: every large allocation
# becomes an mmap and its page faults. And a worker samples every thread's stack each 10 ms
# (`distributed.worker.profile`) and checks its event loop each 20 ms, taking the GIL each time.
# benchmarks/results/worker_env_cpu.json times a tiny SD1.5 image on the CPU in each. Local workers
# start without the variable (the nanny reads it once, when made) and with WORKER_CONFIG (each
# worker process, restarts included, applies its nanny's `config`). Workers started by hand: see
# the module's docstring; a sweep measured under the variable is not counted as refilled.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}
NANNY_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
CPUS_VARIABLE = "DIFFACCEL_CPUS"  # the cores a worker runs on, as "0-15" or "0,2,4"
CONCURRENT_VARIABLE = "DIFFACCEL_CONCURRENT"  # how many workers share this host
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def host_timing_lock() -> str:
    """One lock file per host (not per cluster), so two grid runs on one host take turns too; every
    search measurement takes it (search/engine.py `sweep`) unless DIFFACCEL_TIMING_LOCK names another."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), "diffaccel-timing.lock")


def cpu_blocks(count: int, cores: Optional[Iterable[int]] = None) -> list[str]:
    """This process's CPU cores split into `count` disjoint contiguous blocks, as "first-last";
    with fewer cores than blocks, blocks share cores round-robin."""
    cores = sorted(usable_cores() if cores is None else cores)
    size = max(1, len(cores) // count)
    blocks = [cores[(index * size) % len(cores):][:size] for index in range(count)]
    return [str(block[0]) if len(block) == 1
            else f"{block[0]}-{block[-1]}" if block == list(range(block[0], block[-1] + 1))
            else ",".join(map(str, block)) for block in blocks]


def usable_cores() -> set[int]:
    """The cores this process may run on (all of them where the OS does not say: macOS, Windows)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return set(affinity(0)) if affinity else set(range(os.cpu_count() or 1))


def parse_cpus(text: str) -> set[int]:
    """ "0-3,8" -> {0, 1, 2, 3, 8}."""
    cores: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        cores.update(range(int(first), int(last or first) + 1))
    return cores


def pin_from_env() -> Optional[set[int]]:
    """Pin every thread of this process to the cores in ``DIFFACCEL_CPUS`` (children inherit it);
    the cores, or None when the variable is unset (a process of its own, as a user runs a script:
    nothing is changed). What a measurement ran on is `search.measure.cpu_share`."""
    text = os.environ.get(CPUS_VARIABLE)
    if not text or not hasattr(os, "sched_setaffinity"):
        return None
    cores = parse_cpus(text) & usable_cores()
    if not cores:
        raise DiffaccelError(f"{CPUS_VARIABLE}={text} names no core this process may use "
                             f"({len(usable_cores())} usable): give a range such as 0-7")
    for thread in os.listdir("/proc/self/task"):  # sched_setaffinity(0) would pin only this thread
        try:
            os.sched_setaffinity(int(thread), cores)
        except (ProcessLookupError, PermissionError):  # a thread that ended meanwhile
            pass
    return cores


def cuda_device_count() -> int:
    """CUDA devices on this host; 0 without torch or CUDA (torch is imported only here)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


_kept: dict = {}


def keep_one(key, load: Callable[[], Any]):
    """What ``load()`` built for `key`, built once per worker process; a new key replaces it.

    For `work` functions: a pipeline stays loaded across the sweeps of one model, and the previous
    model is dropped (and its GPU memory returned) before the next loads, so two never coexist.
    """
    if key not in _kept:
        _kept.clear()
        gc.collect()
        _empty_cuda_cache()
        _kept[key] = load()
    return _kept[key]


def _empty_cuda_cache() -> None:
    torch = sys.modules.get("torch")  # only if the work already imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
