"""The measuring protocol's host lock: processes sharing a host measure one at a time.

Eager timings on a shared host are inflated by whatever else runs there
(benchmarks/results/eager_baseline.md), so `measure` holds the file lock named by
DIFFACCEL_TIMING_LOCK for the whole measurement; a user's script (no variable) locks nothing.
"""

import fcntl
import multiprocessing
import os
import stat
import threading
import time
import types

import pytest

from search import protocol
from search.protocol import Contender, exclusive_timing, measure
from search.stats import FASTEST_OF, expected_fastest


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
    workers = [context.Process(target=spans_under_lock, args=(str(tmp_path / "timing.lock"), out, 0.3),
                               daemon=True) for _ in range(3)]
    try:
        for worker in workers:
            worker.start()
        spans = sorted(out.get(timeout=60) for _ in workers)
        for worker in workers:
            worker.join(timeout=60)
    finally:
        for worker in workers:
            worker.terminate()
    assert all(worker.exitcode == 0 for worker in workers)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))


def test_threads_of_one_process_take_turns_too(tmp_path, monkeypatch):
    monkeypatch.setenv(protocol.TIMING_LOCK_VARIABLE, str(tmp_path / "timing.lock"))
    spans = []

    def hold():
        with exclusive_timing():
            start = time.monotonic()
            time.sleep(0.2)
            spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    spans.sort()
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_without_the_variable_nothing_is_locked(monkeypatch, tmp_path):
    monkeypatch.delenv(protocol.TIMING_LOCK_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    with exclusive_timing():
        with exclusive_timing():
            assert protocol.held() == 2
    assert protocol.held() == 0 and not list(tmp_path.iterdir())  # no lock file anywhere near


def locked_by_someone(path) -> bool:
    """Whether another open file description holds the flock (as another process's would)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def test_measure_holds_the_lock_for_every_call(monkeypatch, tmp_path):
    """Every pipeline call of a measurement runs locked: the baseline's warm-up and 2 references, then
    per contender its first call, 1 more quality image and 2 rounds of baseline and contender."""
    lock = tmp_path / "timing.lock"
    monkeypatch.setenv(protocol.TIMING_LOCK_VARIABLE, str(lock))
    locked_during_calls = []

    def image(_job):
        locked_during_calls.append(locked_by_someone(lock))
        return [[[0.5, 0.5, 0.5]] * 8] * 8

    results = measure(Contender("baseline", image), [Contender("a", image), Contender("b", image)],
                      jobs=[0, 1], device="cpu", min_rounds=2, max_rounds=2)
    assert len(results) == 2 and len(locked_during_calls) == 15 and all(locked_during_calls)
    assert not locked_by_someone(lock) and protocol.held() == 0
    assert stat.S_IMODE(lock.stat().st_mode) == 0o666  # other users of the host can take turns too


def test_a_lock_that_cannot_be_opened_says_which_variable_to_change(monkeypatch, tmp_path):
    monkeypatch.setenv(protocol.TIMING_LOCK_VARIABLE, str(tmp_path / "missing" / "timing.lock"))
    with pytest.raises(RuntimeError, match="DIFFACCEL_TIMING_LOCK"):
        with exclusive_timing():
            pass
    assert protocol.held() == 0


class FakeClock:
    """time.perf_counter for search.protocol: each pipeline call advances it by its own cost."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def costing(self, seconds, calls=None):
        def image(_job):
            self.now += seconds() if callable(seconds) else seconds
            if calls is not None:
                calls.append(1)
            return [[[0.5, 0.5, 0.5]] * 8] * 8
        return image


def test_a_graph_contender_is_predicted_over_every_baseline_timing_of_the_call(monkeypatch):
    """The baseline takes 4 s while the first contender is timed and 2 s after; both graph
    contenders take 1 s, so both get the speedup over the baseline's fastest run among all the
    call's timings, and stop at min_rounds, while an eager contender keeps its paired figure."""
    monkeypatch.delenv(protocol.TIMING_LOCK_VARIABLE, raising=False)
    clock = FakeClock()
    monkeypatch.setattr(protocol, "time", types.SimpleNamespace(perf_counter=clock))  # this module's clock only
    level = {"baseline_s": 4.0}
    calls: list = []
    slow_block = Contender("graph a", clock.costing(1.0, calls), host_bound=False,
                           exit=lambda: level.update(baseline_s=2.0))
    fast_block = Contender("graph b", clock.costing(1.0), host_bound=False)
    eager = Contender("eager", clock.costing(1.0))
    results = measure(Contender("baseline", clock.costing(lambda: level["baseline_s"])),
                      [slow_block, fast_block, eager], jobs=[0], device="cpu", min_rounds=3, max_rounds=10,
                      tolerance=0.001)
    every = [x for result in results for x in result["baseline_latencies_s"]]
    assert every.count(4.0) == 3 and every.count(2.0) == 6
    for result in results[:2]:
        assert result["estimator"] == "fastest" and result["rounds"] == 3
        # the expected fastest of FASTEST_OF draws from all 9 timings, 3 of them slow, over 1 s
        assert result["speedup"] == pytest.approx(expected_fastest(every, FASTEST_OF), rel=1e-3)
        assert result["speedup"] == pytest.approx(2.0, rel=0.01)  # 10 draws all slow: (1/3)^10
        assert result["speedup_interval"][0] <= result["speedup"] <= result["speedup_interval"][1]
    assert len(calls) == 1 + 3  # its first call, then min_rounds rounds: no more
    assert results[2]["estimator"] == "paired" and results[2]["speedup"] == pytest.approx(2.0)
    assert results[2]["rounds"] == 3  # identical rounds: the interval is narrow at once


def test_one_graph_contender_is_measured_over_max_rounds_by_its_fastest_baseline_round(monkeypatch):
    """A script's --benchmark times one graph contender: max_rounds rounds, and its figure is what
    it measured, the fastest baseline round over the contender's median."""
    monkeypatch.delenv(protocol.TIMING_LOCK_VARIABLE, raising=False)
    clock = FakeClock()
    monkeypatch.setattr(protocol, "time", types.SimpleNamespace(perf_counter=clock))
    costs = iter([2.0, 3.0] * 10)
    result, = measure(Contender("baseline", clock.costing(lambda: next(costs))),
                      [Contender("graph", clock.costing(1.0), host_bound=False)],
                      jobs=[0], device="cpu", min_rounds=3, max_rounds=5, tolerance=0.5)
    assert result["estimator"] == "fastest" and result["rounds"] == 5
    assert result["speedup"] == pytest.approx(2.0)  # its fastest round (2 s) over 1 s
    assert result["speedup_interval"][0] <= 2.0 <= result["speedup_interval"][1]
