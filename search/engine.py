"""The search: measure candidate settings of one combination, store the best per target.

One sweep measures the unaccelerated pipeline and every candidate of one (model, sampler, steps,
accelerators), in interleaved rounds so that drift (clocks, temperature, other load) hits all of
them alike, then picks for each target the best-quality candidate that reaches it. The grid runner
runs sweeps over the whole grid, resumably, optionally one shard of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterable, Optional

from core.task import (
    MODEL_INFO,
    GRID_COMBINATIONS,
    GRID_STEPS,
    GRID_TARGETS,
    MODELS,
    SAMPLERS,
    canonical_accelerators,
    combination_label,
)
from core.settings import Settings
from search import accelerators as acc
from core import db
from core.errors import DatabaseError
from search.measure import PROMPTS, mean_quality, median, provenance
from search.protocol import Contender, image_quality, measure, timed_call


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
    # Overrides the candidate space (tests use it); None means search.accelerators.candidates.
    candidates: Optional[Callable[[tuple, str, int], list]] = None


def load_pipeline(model: str, config: SearchConfig):
    import torch

    from search.pipelines import load

    return load(model, config.weights, config.model_path, config.device, getattr(torch, config.dtype))


def sweep(pipe, model: str, sampler: str, steps: int, accelerators, config: SearchConfig) -> db.Sweep:
    """Measure every candidate on every engine against the eager baseline; the sweep record."""
    from search.pipelines import resolution, set_sampler

    accelerators = canonical_accelerators(accelerators)
    set_sampler(pipe, sampler)
    settings = (config.candidates or acc.candidates)(accelerators, model, steps)
    jobs = [(prompt, seed) for prompt in PROMPTS[: config.prompts] for seed in config.seeds]
    started = time.perf_counter()

    configurations = [(engine, acc.plan(model, s)) for engine in config.engines for s in settings]
    baseline_plan = acc.plan(model, Settings())

    def contender(engine: str, plan) -> Contender:
        undo: list = []
        return Contender(
            f"{engine} {plan.settings.describe()}",
            generate=partial(_generate, pipe, plan, jobs[0], steps),
            enter=lambda: undo.append(acc.apply(pipe, plan, engine=engine)),
            exit=lambda: undo.pop()(),
        )

    baseline = contender("eager", baseline_plan)
    contenders = [contender(engine, plan) for engine, plan in configurations]
    results = measure(baseline, contenders, config.device, config.min_rounds, config.max_rounds,
                      config.tolerance)
    for job in jobs[1:]:  # quality over the other prompts, untimed
        reference = _generate_with(pipe, "eager", baseline_plan, job, steps)
        for (engine, plan), result in zip(configurations, results):
            image = _generate_with(pipe, engine, plan, job, steps)
            result.setdefault("more_quality", []).append(image_quality(reference, image))
    candidates = [
        db.Candidate(
            params=plan.settings, engine=engine, speedup=result["speedup"],
            speedup_interval=tuple(result["speedup_interval"]), ratios=result["ratios"],
            latency_s=result["latency_s"], latencies_s=result["latencies_s"],
            quality=mean_quality([result["quality"]] + result.get("more_quality", [])),
            first_call_s=result["first_call_s"] if engine == "graph" else None,
        )
        for (engine, plan), result in zip(configurations, results)
    ]
    return db.Sweep(
        model=model, sampler=sampler, steps=steps, accelerators=list(accelerators),
        baseline_latency_s=round(median(baseline.latencies_s), 4),
        baseline_latencies_s=[round(x, 4) for x in baseline.latencies_s],
        candidates=candidates,
        provenance=provenance(
            device=config.device, dtype=config.dtype, resolution=resolution(pipe),
            weights="tiny-random" if config.weights == "tiny" else config.weights,
            prompts=[prompt for prompt, _ in jobs], seeds=config.seeds,
            rounds=(config.min_rounds, config.max_rounds, config.tolerance),
            guidance_scale=guidance_scale(model), engines=config.engines,
            seconds=time.perf_counter() - started, threads=_threads(config.device),
        ),
    )


def time_one_image(pipe, model: str, sampler: str, steps: int) -> float:
    """Seconds of one unaccelerated image (a live search's cost estimate starts from it)."""
    from search.pipelines import set_sampler

    set_sampler(pipe, sampler)
    contender = Contender("probe", partial(_generate, pipe, acc.plan(model, Settings()), (PROMPTS[0], 0), steps))
    seconds, _ = timed_call(contender, next(pipe.unet.parameters()).device.type)
    return seconds


def _generate_with(pipe, engine: str, plan, job, steps):
    undo = acc.apply(pipe, plan, engine=engine)
    try:
        return _generate(pipe, plan, job, steps)
    finally:
        undo()


def _threads(device: str) -> Optional[int]:
    if device.startswith("cuda"):
        return None
    import torch

    return torch.get_num_threads()


def guidance_scale(model: str) -> float:
    """The pipeline's own default: what a user gets, and what the script runs."""
    return MODEL_INFO[model].guidance_scale


def _generate(pipe, plan, job, steps):
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


def search_one(model, sampler, steps, accelerators, config: SearchConfig, pipe=None) -> db.Sweep:
    """Sweep one combination and store it with its per-target entries; returns the sweep."""
    pipe = pipe or load_pipeline(model, config)
    record = sweep(pipe, model, sampler, steps, accelerators, config)
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

    def label(self) -> str:
        return f"{self.model} {self.sampler} {self.steps} {combination_label(self.accelerators)}"


@dataclass
class GridPlan:
    todo: list[GridItem]
    skipped: int = 0
    outside_shard: int = 0
    done: list[GridItem] = field(default_factory=list)


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


def plan_grid(items: list[GridItem], data: db.Database, engines: Iterable[str], shard=(0, 1),
              force=False) -> GridPlan:
    """Which items this runner measures: its shard, minus what the database already has.

    A sweep counts as done only when it was measured by the current protocol (it has intervals) on
    every engine asked for: a refill re-measures the older figures rather than keeping them.
    """
    index, total = shard
    mine = [item for position, item in enumerate(items) if position % total == index]
    result = GridPlan(todo=[], outside_shard=len(items) - len(mine))
    have = {s.combo_key for s in data.sweeps
            if set(engines) <= set(s.engines()) and all(c.speedup_interval for c in s.candidates)}
    for item in mine:
        key = db.combo_key(item.model, item.sampler, item.steps, item.accelerators)
        if key in have and not force:
            result.skipped += 1
        else:
            result.todo.append(item)
    return result


def run_grid(grid: GridPlan, config: SearchConfig, on_start=None, on_done=None,
             deadline: Optional[float] = None) -> GridPlan:
    """Measure every item in order, loading each model once; stop before `deadline` (monotonic).

    Each finished sweep is written at once, so a crash or a stop loses at most the sweep in flight
    and the next run resumes where this one stopped.
    """
    pipe, loaded = None, None
    durations: list[float] = []
    for item in grid.todo:
        estimate = max(durations) if durations else 0.0
        if deadline is not None and time.monotonic() + estimate > deadline:
            break
        if on_start:
            on_start(item)
        started = time.monotonic()
        if loaded != item.model:
            pipe, loaded = None, None
            _free_memory(config.device)
            pipe, loaded = load_pipeline(item.model, config), item.model
        search_one(item.model, item.sampler, item.steps, item.accelerators, config, pipe=pipe)
        durations.append(time.monotonic() - started)
        grid.done.append(item)
        if on_done:
            on_done(item, durations[-1])
    return grid


def _free_memory(device: str) -> None:
    if device.startswith("cuda"):
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()
