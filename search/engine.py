"""The search: measure candidate settings of one combination, store the best per target.

One sweep measures every candidate of one (model, sampler, steps, accelerators), on each engine
asked for, against the eager unaccelerated pipeline by the protocol of search/protocol.py, then
picks for each target the best-quality candidate whose speedup interval's lower bound reaches it.
The grid runner runs sweeps over the whole grid, resumably, optionally one shard of it, on one GPU
in this process or on every GPU of one or more hosts through Dask (search/distributed.py); either
way this process alone writes the database.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Optional

from core import db
from core.errors import DatabaseError, DiffaccelError
from core.settings import Settings
from core.task import (
    GRID_COMBINATIONS,
    GRID_STEPS,
    GRID_TARGETS,
    MODEL_INFO,
    MODELS,
    SAMPLERS,
    canonical_accelerators,
    combination_label,
)
from search import accelerators as acc
from search.distributed import host_timing_lock
from search.measure import (PROMPTS, PROTOCOL_VERSION, by_current_protocol, cpu_share, median, provenance,
                            timed_now, workers_on_host)
from search.protocol import TIMING_LOCK_VARIABLE, Contender, exclusive_timing, measure, stored_figure, timed
from search.stats import FASTEST_OF, fastest_speedup


@dataclass
class SearchConfig:
    """How to measure: shared by one sweep and the grid runner (see search/protocol.py)."""

    weights: str = "random"  # 'real', 'random' (full size) or 'tiny'
    model_path: Optional[str] = None
    device: str = "cpu"
    dtype: str = "float32"
    prompts: int = 2  # quality is averaged over this many prompts; speed is timed on the first
    seeds: tuple[int, ...] = (0,)
    min_rounds: int = 3
    max_rounds: int = 10
    tolerance: float = 0.03  # stop adding rounds once the interval's half-width is within 3%
    engines: tuple[str, ...] = ("eager",)
    targets: tuple[float, ...] = GRID_TARGETS
    db_path: Optional[str] = None
    force: bool = False  # replace a sweep measured on a stronger setup
    gpus: Optional[int] = None  # grid runs on more than one GPU go through search/distributed.py
    scheduler: Optional[str] = None  # a running Dask scheduler (several hosts)
    # Grid sweeps of more settings than this are measured in parts, each resumable on its own
    # (`parts_todo`); 0: whole sweeps. A part times every engine of its settings, as a sweep does.
    part_size: int = 0
    # Overrides the candidate space (tests use it); None means search.accelerators.candidates.
    candidates: Optional[Callable[[tuple, str, int], list]] = None


def load_pipeline(model: str, config: SearchConfig):
    import torch

    from search.pipelines import load

    return load(model, config.weights, config.model_path, config.device, getattr(torch, config.dtype))


@dataclass
class Pipelines:
    """The pipeline accelerators are applied to, and an untouched copy that times the baseline."""

    work: object
    baseline: object

    @classmethod
    def load(cls, model: str, config: SearchConfig) -> "Pipelines":
        import copy

        pipe = load_pipeline(model, config)
        return cls(pipe, copy.deepcopy(pipe))


def sweep(pipes: Pipelines, model: str, sampler: str, steps: int, accelerators, config: SearchConfig,
          part: Optional[tuple[int, int]] = None) -> db.Sweep:
    """Measure every candidate on every engine against the eager baseline; the sweep record (of
    the settings of one `part`, (index, count), when given: `merge_parts` joins them)."""
    from search.pipelines import resolution, set_sampler

    accelerators = canonical_accelerators(accelerators)
    for pipe in (pipes.work, pipes.baseline):
        set_sampler(pipe, sampler)
    settings = _part_of((config.candidates or acc.candidates)(accelerators, model, steps), part)
    jobs = [(prompt, seed) for prompt in PROMPTS[: config.prompts] for seed in config.seeds]
    # Engines take turns setting by setting, so the baseline is timed through the whole sweep and
    # every graph candidate is predicted over all of it (search/stats.py fastest_speedup).
    configurations = [(engine, acc.plan(model, s)) for s in settings for engine in config.engines]
    baseline = Contender("baseline", partial(_generate, pipes.baseline, acc.plan(model, Settings()), steps))
    contenders = [_contender(pipes.work, engine, plan, steps) for engine, plan in configurations]
    # Every search measurement takes turns with the others on this host (search/protocol.py; the
    # `measure` inside re-enters this lock), and its seconds start once it has the host: waiting is
    # not measuring.
    lock = os.environ.get(TIMING_LOCK_VARIABLE) or host_timing_lock()
    with exclusive_timing(lock):
        started = time.perf_counter()
        # A sweep's graph contenders are predicted over its baseline timings even when alone (a part's
        # join the other parts'), as its provenance says.
        results = measure(baseline, contenders, jobs, config.device, config.min_rounds, config.max_rounds,
                          config.tolerance, pooled=True)
        seconds = time.perf_counter() - started
    candidates = [
        db.Candidate(
            params=plan.settings, engine=engine, speedup=result["speedup"],
            speedup_interval=tuple(result["speedup_interval"]), ratios=result["ratios"],
            latency_s=result["latency_s"], latencies_s=result["latencies_s"], quality=result["quality"],
            first_call_s=result["first_call_s"] if engine == "graph" else None,
        )
        for (engine, plan), result in zip(configurations, results)
    ]
    baseline_s = [x for result in results for x in result["baseline_latencies_s"]]
    return db.Sweep(
        model=model, sampler=sampler, steps=steps, accelerators=list(accelerators),
        baseline_latency_s=round(median(baseline_s), 4), baseline_latencies_s=baseline_s,
        candidates=candidates,
        provenance=provenance(
            device=config.device, dtype=config.dtype, resolution=resolution(pipes.work),
            weights="tiny-random" if config.weights == "tiny" else config.weights,
            prompts=[prompt for prompt, _ in jobs], seeds=config.seeds,
            rounds=(config.min_rounds, config.max_rounds, config.tolerance),
            guidance_scale=guidance_scale(model), engines=config.engines,
            seconds=seconds, cpu=cpu_share(lock),
        ),
    )


def _contender(pipe, engine: str, plan, steps: int) -> Contender:
    undo: list = []
    return Contender(
        f"{engine} {plan.settings.describe()}",
        generate=partial(_generate, pipe, plan, steps),
        enter=lambda: undo.append(acc.apply(pipe, plan, engine=engine)),
        exit=lambda: undo.pop()(),
        host_bound=engine == "eager",
    )


def guidance_scale(model: str) -> float:
    """The pipeline's own default: what a user gets, and what the script runs."""
    return MODEL_INFO[model].guidance_scale


def _generate(pipe, plan, steps, job):
    import torch

    prompt, seed = job
    output = acc.run(
        pipe,
        plan,
        prompt=prompt,
        num_inference_steps=steps,
        guidance_scale=guidance_scale(plan.model),
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    )
    return output.images[0]


def time_one_image(pipe, model: str, sampler: str, steps: int) -> float:
    """Seconds of one unaccelerated image (a live search's cost estimate starts from it)."""
    from search.pipelines import set_sampler

    set_sampler(pipe, sampler)
    device = next(pipe.unet.parameters()).device.type
    return timed(partial(_generate, pipe, acc.plan(model, Settings()), steps), (PROMPTS[0], 0), device)[0]


def search_one(model, sampler, steps, accelerators, config: SearchConfig,
               pipes: Optional[Pipelines] = None) -> db.Sweep:
    """Sweep one combination and store it with its per-target entries; returns the sweep."""
    record = sweep(pipes or Pipelines.load(model, config), model, sampler, steps, accelerators, config)
    store(record, config)
    return record


def store(record: db.Sweep, config: SearchConfig) -> None:
    """Write a sweep where it belongs: tiny or CPU figures never enter the shipped database."""
    path = config.db_path or str(db.live_path())
    if record.provenance.strength == 0 and db.is_shipped(path):
        raise DatabaseError(
            f"{record.label()} was measured on {record.provenance.device} "
            f"({record.provenance.weights} weights): such figures never enter the shipped database. "
            f"Leave out --db (they go to {db.live_path()}) or name another file")
    db.update(lambda data: db.store_sweep(data, record, config.targets, config.force), path)


@dataclass(frozen=True)
class GridItem:
    model: str
    sampler: str
    steps: int
    accelerators: tuple[str, ...]
    part: Optional[tuple[int, int]] = None  # (index, count): one part of a sweep measured in parts

    def label(self) -> str:
        text = f"{self.model} {self.sampler} {self.steps} {combination_label(self.accelerators)}"
        return text + (f" part {self.part[0] + 1}/{self.part[1]}" if self.part else "")


@dataclass
class GridPlan:
    todo: list[GridItem]
    skipped: int = 0
    outside_shard: int = 0
    done: list[GridItem] = field(default_factory=list)  # sweeps and parts measured
    failed: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)  # the sweeps written to the database


def grid_items(models=MODELS, samplers=SAMPLERS, steps=GRID_STEPS,
               combinations=GRID_COMBINATIONS) -> list[GridItem]:
    """The grid in the spec's loop order: model, sampler, steps, accelerators."""
    return [
        GridItem(m, s, n, canonical_accelerators(c))
        for m in models
        for s in samplers
        for n in steps
        for c in combinations
    ]


def parse_shard(text: Optional[str]) -> tuple[int, int]:
    if not text:
        return 0, 1
    index, _, count = text.partition("/")
    shard, total = int(index), int(count)
    if not 0 <= shard < total:
        raise ValueError(f"shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4")
    return shard, total


def eager_seconds_past(sweep: db.Sweep, rounds: int) -> float:
    """Seconds `sweep` spent timing eager contenders beyond their first `rounds` rounds, the paired
    baseline timings included: what a cap of `rounds` (`--max-rounds`) would not have spent."""
    return sum(sum(block[rounds:]) + sum(candidate.latencies_s[rounds:])
               for candidate, block in zip(sweep.candidates, sweep.baseline_blocks()) if candidate.engine == "eager")


class Estimate(NamedTuple):
    """About how long a sweep takes on one GPU (`estimate_seconds`)."""

    seconds: float
    devices: list[str]  # the GPUs of the sweeps whose seconds it comes from
    scaled_from: Optional[str] = None  # the model whose sweeps those are, where not the sweep's own
    ratio: float = 1.0  # how much longer the sweep's model took an eager step than that one
    ratio_device: Optional[str] = None  # the GPU both were timed on


def step_seconds(data: db.Database, model: str, device: str) -> Optional[float]:
    """The median seconds an eager baseline step of `model` took on `device`, over its full-size
    fp16 sweeps measured with the host to itself (of any protocol version: the baseline is the same
    eager pipeline call in all); None if it has none there."""
    times = [s.baseline_latency_s / s.steps for s in data.sweeps
             if s.model == model and s.provenance.device == device and s.provenance.dtype == "float16"
             and s.provenance.weights != "tiny" and workers_on_host(s.provenance) == 1 and s.baseline_latency_s > 0]
    return median(times) if times else None


def measured_seconds(item: GridItem, data: db.Database, engines: Iterable[str],
                     max_rounds: Optional[int] = None) -> Optional[Estimate]:
    """About how long `item`'s sweep takes on one GPU, from the sweeps of its model that the
    current protocol measured and timed (`timed_now`), on the same engines: the same
    combination's where there are any, else all of the model's; their median seconds scaled by
    steps (a sweep's time is its images'), less what their eager contenders spent past
    `max_rounds` rounds (nothing is added for a cap above what they were measured with). None where
    the model has none.
    """
    def recorded(sweep) -> dict:  # what the search recorded beyond Provenance's fields
        return sweep.provenance.model_extra or {}

    mine = [s for s in data.sweeps if s.model == item.model and timed_now(s.provenance)
            and set(s.engines()) == set(engines) and recorded(s).get("sweep_seconds")]
    same = [s for s in mine if tuple(s.accelerators) == item.accelerators]  # both canonical
    chosen = same or mine
    if not chosen:
        return None
    def seconds(sweep) -> float:
        return recorded(sweep)["sweep_seconds"] - (eager_seconds_past(sweep, max_rounds) if max_rounds else 0.0)

    return Estimate(median([seconds(s) / s.steps for s in chosen]) * item.steps,
                    sorted({s.provenance.device or "unknown GPU" for s in chosen}))


def estimate_seconds(item: GridItem, data: db.Database, engines: Iterable[str],
                     max_rounds: Optional[int] = None) -> Optional[Estimate]:
    """About how long `item`'s sweep takes on one GPU.

    From the sweeps of its model (`measured_seconds`); for a model with none yet, from those of the
    model nearest in resolution that has some, times how much longer an eager step of this model
    took than one of that model on a GPU both were timed on (`step_seconds`; one the seconds come
    from first). Only eager steps scale so; graph steps follow the GPU's work, which grows with
    resolution, and planned this way from SD1.5's sweeps, SD2.1's took 1.2-1.3x their plan and
    SD1.5's from SD2.1's 0.76x (benchmarks/sweep_cost.py): likely short for a larger model. None
    where no model has a sweep to go on.
    """
    own = measured_seconds(item, data, engines, max_rounds)
    if own:
        return own
    resolution = MODEL_INFO[item.model].resolution
    for model in sorted({s.model for s in data.sweeps} - {item.model},
                        key=lambda m: (abs(MODEL_INFO[m].resolution - resolution), m)):
        base = measured_seconds(replace(item, model=model), data, engines, max_rounds)
        if base is None:
            continue
        for device in sorted({s.provenance.device for s in data.sweeps} - {None},
                             key=lambda d: (d not in base.devices, d)):
            mine, theirs = step_seconds(data, item.model, device), step_seconds(data, model, device)
            if mine and theirs:
                return base._replace(seconds=base.seconds * mine / theirs, scaled_from=model,
                                     ratio=mine / theirs, ratio_device=device)
    return None


def plan_grid(items: list[GridItem], data: db.Database, engines: Iterable[str], shard=(0, 1),
              force=False) -> GridPlan:
    """Which items this runner measures: its shard, minus what the database already has.

    A sweep counts as done only when it was measured by the current protocol on every engine asked
    for (`by_current_protocol`: its version, the host to itself): a refill re-measures the others
    rather than keeping them.
    """
    index, total = shard
    mine = [item for position, item in enumerate(items) if position % total == index]
    result = GridPlan(todo=[], outside_shard=len(items) - len(mine))
    have = {s.combo_key for s in data.sweeps
            if set(engines) <= set(s.engines()) and by_current_protocol(s.provenance)}
    for item in mine:
        key = db.combo_key(item.model, item.sampler, item.steps, item.accelerators)
        if key in have and not force:
            result.skipped += 1
        else:
            result.todo.append(item)
    return result


def run_grid(grid: GridPlan, config: SearchConfig, on_start=None, on_done=None,
             deadline: Optional[float] = None) -> GridPlan:
    """Measure every item, loading each model once per GPU; start nothing after `deadline` (monotonic).

    Each finished sweep is written at once, by this process alone, so a crash or a stop loses at
    most the sweeps in flight and the next run resumes where this one stopped. With `config.gpus`
    above one or a `config.scheduler`, the sweeps run on Dask workers, one per GPU.
    """
    def finished(item, record, seconds) -> None:
        if item.part is not None:
            record = keep_part(item, record, config)  # the whole sweep once its last part is in
        if record is not None:
            store(record, config)
            forget_parts(item, config)  # its parts, or an earlier run's stale ones
            grid.stored.append(record.label())
        grid.done.append(item)
        if on_done:
            on_done(item, seconds)

    if (config.gpus or 1) > 1 or config.scheduler:
        from search.distributed import run_on_cluster

        report = run_on_cluster(grid.todo, partial(measure_item, config=config),
                                lambda item, result: finished(item, result[1], result[0]),
                                gpus=config.gpus, scheduler_address=config.scheduler, deadline=deadline)
        grid.failed = [f"{failure.item.label()}: {failure.reason}" for failure in report.failed]
        return grid
    durations: list[float] = []
    for item in grid.todo:
        if deadline is not None and time.monotonic() + max(durations, default=0.0) > deadline:
            break
        if on_start:
            on_start(item)
        seconds, record = measure_item(item, config)
        durations.append(seconds)
        finished(item, record, seconds)
    return grid


def measure_item(item: GridItem, config: SearchConfig) -> tuple[float, db.Sweep]:
    """(seconds, sweep) of one grid item; the pipelines of its model stay loaded for the next item.

    Runs in this process or on a Dask worker, where it must be a picklable top-level function.
    """
    from search.distributed import keep_one, pin_from_env

    pin_from_env()  # on a Dask worker: its own cores, before torch starts threads
    started = time.monotonic()
    pipes = keep_one((item.model, config.weights, config.model_path, config.dtype),
                     lambda: Pipelines.load(item.model, config))
    record = sweep(pipes, item.model, item.sampler, item.steps, item.accelerators, config, item.part)
    return time.monotonic() - started, record


# -- sweeps in parts ------------------------------------------------------------------------------
# A sweep is the unit of the grid, and one that outlasts a device call (SDXL at 50 steps: ten
# settings of full-size 1024 px images) would never be stored. With `SearchConfig.part_size` such a
# sweep is measured in parts of at most that many settings; each finished part is kept in a file
# beside the database (by the one process that writes the database, under the file's lock), with
# the setup it was measured with, and joins only parts of the same setup and protocol. The last
# part to arrive joins them into the sweep, whose graph figures are then estimated over every
# baseline block of all parts, as one measurement of the whole sweep would estimate them; the
# parts are forgotten only once the sweep is stored.


def _part_of(settings: list, part: Optional[tuple[int, int]]) -> list:
    """The settings of part (index, count): contiguous, sizes differing by at most one."""
    if part is None:
        return settings
    index, count = part
    base, extra = divmod(len(settings), count)
    start = index * base + min(index, extra)
    return settings[start:start + base + (index < extra)]


def parts_path(config: SearchConfig) -> Path:
    path = Path(config.db_path or db.live_path())
    return path.with_name(f"{path.stem}.parts.json")


def _setup(config: SearchConfig) -> dict:
    """What a kept part must share with the others to be joined with them."""
    return {"protocol_version": PROTOCOL_VERSION, "engines": list(config.engines), "weights": config.weights,
            "model_path": config.model_path, "device": config.device, "dtype": config.dtype,
            "prompts": config.prompts, "seeds": list(config.seeds),
            "rounds": [config.min_rounds, config.max_rounds, config.tolerance]}


@contextmanager
def _kept_parts(config: SearchConfig):
    """The kept parts, a list to read or change: read and written back under the file's lock."""
    from filelock import FileLock

    from core.files import write_atomic

    path = parts_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=600):
        parts = json.loads(path.read_text())["parts"] if path.exists() else []
        before = json.dumps(parts)
        yield parts
        if json.dumps(parts) != before:
            if parts:
                write_atomic(path, json.dumps({"parts": parts}, indent=1))
            else:
                path.unlink(missing_ok=True)


def _same_combination(kept: dict, item: GridItem) -> bool:
    return (db.combo_key(kept["model"], kept["sampler"], kept["steps"], kept["accelerators"])
            == db.combo_key(item.model, item.sampler, item.steps, item.accelerators))


def _ours(kept: dict, item: GridItem, config: SearchConfig, count: int) -> bool:
    return _same_combination(kept, item) and kept["setup"] == _setup(config) and kept["part"][1] == count


def _part_count(item: GridItem, config: SearchConfig) -> int:
    settings = (config.candidates or acc.candidates)(item.accelerators, item.model, item.steps)
    return -(-len(settings) // config.part_size) if config.part_size > 0 else 1


def parts_todo(items: list[GridItem], config: SearchConfig) -> tuple[list[GridItem], list[str]]:
    """`items` with each sweep of more than `config.part_size` settings replaced by its parts not
    yet kept, and notes: a sweep whose parts were all kept (a run stopped before storing it) is
    joined and stored here."""
    todo, notes = [], []
    with _kept_parts(config) as kept:
        kept = list(kept)  # read once; what changes below goes through store and forget_parts
    for item in items:
        count = _part_count(item, config)
        if count <= 1:
            todo.append(item)
            continue
        have = {kept_part["part"][0] for kept_part in kept if _ours(kept_part, item, config, count)}
        missing = [replace(item, part=(index, count)) for index in range(count) if index not in have]
        if missing:
            todo += missing
            continue
        try:
            store(_join(item, count, config, kept), config)
        except DiffaccelError as error:
            notes.append(f"{item.label()}: its {count} kept parts were not joined ({error}); they stay in "
                         f"{parts_path(config)}")
            continue
        forget_parts(item, config)
        notes.append(f"{item.label()}: joined from the {count} parts an earlier run kept, and stored")
    return todo, notes


def keep_part(item: GridItem, record: db.Sweep, config: SearchConfig) -> Optional[db.Sweep]:
    """Keep a finished part (replacing parts of its combination measured another way); once all
    parts of its sweep are kept, return the joined sweep. The parts stay until `forget_parts`."""
    count = item.part[1]
    with _kept_parts(config) as kept:
        kept[:] = [k for k in kept if not _same_combination(k, item)
                   or (_ours(k, item, config, count) and k["part"][0] != item.part[0])]
        kept.append({"model": item.model, "sampler": item.sampler, "steps": item.steps,
                     "accelerators": list(item.accelerators), "part": list(item.part),
                     "setup": _setup(config), "sweep": record.model_dump(mode="json")})
        have = {k["part"][0] for k in kept if _ours(k, item, config, count)}
        return _join(item, count, config, kept) if have == set(range(count)) else None


def forget_parts(item: GridItem, config: SearchConfig) -> None:
    """Drop the kept parts of `item`'s combination (its sweep is stored)."""
    if parts_path(config).exists():
        with _kept_parts(config) as kept:
            kept[:] = [k for k in kept if not _same_combination(k, item)]


def _join(item: GridItem, count: int, config: SearchConfig, kept: list[dict]) -> db.Sweep:
    """The sweep of `item` from its `count` parts among `kept`."""
    parts = {k["part"][0]: db.Sweep.model_validate(k["sweep"]) for k in kept if _ours(k, item, config, count)}
    joined = merge_parts([parts[index] for index in range(count)])
    settings = (config.candidates or acc.candidates)(item.accelerators, item.model, item.steps)
    if [(c.params, c.engine) for c in joined.candidates] != [(s, e) for s in settings for e in config.engines]:
        raise DatabaseError(f"the kept parts of {item.label()} do not hold each setting once on each engine: "
                            f"delete {parts_path(config)} and measure them again")
    return joined


def merge_parts(parts: list[db.Sweep]) -> db.Sweep:
    """One sweep from its parts, in order: candidates and baseline timings joined (the baseline
    blocks stay with their candidates), seconds added, each part's device, date and CPU share
    listed, graph figures re-estimated over the baseline timings of every part measured on the same
    GPU model (parts may run on different cards)."""
    baseline_s = [x for part in parts for x in part.baseline_latencies_s]
    provenance = parts[0].provenance.model_copy(deep=True)
    extras = [part.provenance.model_extra for part in parts]
    provenance.model_extra["sweep_seconds"] = round(sum(extra.get("sweep_seconds", 0.0) for extra in extras), 1)
    provenance.model_extra["parts"] = [
        {"device": part.provenance.device, "date": extra.get("date"), "sweep_seconds": extra.get("sweep_seconds"),
         "cpu": extra.get("cpu")} for part, extra in zip(parts, extras)]
    joined = parts[0].model_copy(update={
        "candidates": [c.model_copy(deep=True) for part in parts for c in part.candidates],
        "baseline_latencies_s": baseline_s, "baseline_latency_s": round(median(baseline_s), 4),
        "provenance": provenance})
    position = 0
    for part in parts:
        pool = [x for other in parts if other.provenance.device == part.provenance.device
                for x in other.baseline_latencies_s]
        restate_fastest(joined.candidates[position:position + len(part.candidates)], pool)
        position += len(part.candidates)
    return joined


def restate_fastest(candidates: list[db.Candidate],
                    baseline_s: list[float]) -> list[tuple[db.Candidate, float, tuple]]:
    """Each graph candidate's figure over the baseline timings `baseline_s` (search/protocol.py
    `measure` does the same over one call's), in place; (candidate, speedup, interval before)."""
    before = []
    for candidate in candidates:
        if candidate.engine != "graph":
            continue
        figure = stored_figure(fastest_speedup(baseline_s, candidate.latencies_s, FASTEST_OF))
        before.append((candidate, candidate.speedup, candidate.speedup_interval))
        candidate.speedup, candidate.speedup_interval = figure["speedup"], tuple(figure["speedup_interval"])
    return before
