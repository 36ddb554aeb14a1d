"""The measuring protocol's host lock: processes sharing a host measure one at a time.

Eager timings on a shared host are inflated by whatever else runs there
(benchmarks/results/eager_baseline.md), so `measure` holds the file lock named by
DIFFACCEL_TIMING_LOCK for the whole measurement; a user's script (no variable) locks nothing.
"""

import multiprocessing
import os
import time

from search import protocol
from search.protocol import Contender, exclusive_timing, measure


def spans_under_lock(lock_path: str, out, hold_s: float) -> None:
    os.environ[protocol.TIMING_LOCK_VARIABLE] = lock_path
    with exclusive_timing():
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the host
        with exclusive_timing():  # re-entrant: the process must not wait on itself
            time.sleep(hold_s)
        out.put((start, time.monotonic()))


def test_processes_sharing_a_lock_never_measure_at_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=spans_under_lock, args=(str(tmp_path / "timing.lock"), out, 0.3))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    spans = sorted(out.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))


def test_without_the_variable_nothing_is_locked(monkeypatch, tmp_path):
    monkeypatch.delenv(protocol.TIMING_LOCK_VARIABLE, raising=False)
    with exclusive_timing():
        with exclusive_timing():
            assert protocol._held[0] == 2
    assert protocol._held[0] == 0 and not list(tmp_path.iterdir())


def test_measure_holds_the_lock_for_every_call(monkeypatch, tmp_path):
    """Every pipeline call of a measurement (warm-up, references, first call, rounds) runs locked."""
    monkeypatch.setenv(protocol.TIMING_LOCK_VARIABLE, str(tmp_path / "timing.lock"))
    held_during_calls = []

    def image(_job):
        held_during_calls.append(protocol._held[0])
        return [[[0.5, 0.5, 0.5]] * 8] * 8

    results = measure(Contender("baseline", image), [Contender("a", image), Contender("b", image)],
                      jobs=[0, 1], device="cpu", min_rounds=2, max_rounds=2)
    assert len(results) == 2 and held_during_calls and all(held_during_calls)
    assert protocol._held[0] == 0
