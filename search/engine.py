"""The search: measure candidate settings of one combination, store the best per target.

One sweep measures the unaccelerated pipeline and every candidate of one (model, sampler, steps,
accelerators), in interleaved rounds so that drift (clocks, temperature, other load) hits all of
them alike, then picks for each target the best-quality candidate that reaches it. The grid runner
runs sweeps over the whole grid, resumably, optionally one shard of it.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterable, Optional

from core.task import (
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
from search.measure import PROMPTS, mean_quality, median, provenance, timed


@dataclass
class SearchConfig:
    """How to measure: shared by one sweep and the grid runner."""

    weights: str = "random"  # 'real', 'random' (full size) or 'tiny'
    model_path: Optional[str] = None
    device: str = "cpu"
    dtype: str = "float32"
    prompts: int = 1
    seeds: tuple[int, ...] = (0,)
    repeats: int = 3
    warmup_steps: int = 3
    targets: tuple[float, ...] = GRID_TARGETS
    db_path: Optional[str] = None
    # Overrides the candidate space (tests use it); None means search.accelerators.candidates.
    candidates: Optional[Callable[[tuple, str, int], list]] = None


def load_pipeline(model: str, config: SearchConfig):
    import torch

    from search.pipelines import load

    return load(model, config.weights, config.model_path, config.device, getattr(torch, config.dtype))


def sweep(pipe, model: str, sampler: str, steps: int, accelerators, config: SearchConfig) -> dict:
    """Measure the baseline and every candidate; return the sweep record stored in the database."""
    from search.pipelines import resolution, set_sampler

    accelerators = canonical_accelerators(accelerators)
    set_sampler(pipe, sampler)
    choose = config.candidates or acc.candidates
    settings = choose(accelerators, model, steps)
    plans = [acc.plan(model, Settings())] + [acc.plan(model, s) for s in settings]
    prompts = PROMPTS[: config.prompts]
    jobs = [(prompt, seed) for prompt in prompts for seed in config.seeds]
    started = time.perf_counter()

    latencies: list[list[float]] = [[] for _ in plans]
    images: list[list] = [[] for _ in plans]
    for plan in plans:
        with applied(pipe, plan):
            _generate(pipe, plan, jobs[0], config.warmup_steps)
    for round_index in range(config.repeats):
        for plan, timings, outputs in zip(plans, latencies, images):
            with applied(pipe, plan):
                for job in jobs:
                    seconds, image = timed(partial(_generate, pipe, plan, job, steps), config.device)
                    timings.append(seconds)
                    if round_index == 0:
                        outputs.append(image)

    baseline = median(latencies[0])
    candidates = []
    for index, setting in enumerate(settings, start=1):
        latency = median(latencies[index])
        candidates.append(
            {
                "params": setting.to_json(),
                "speedup": round(baseline / latency, 4),
                "latency_s": round(latency, 4),
                "latencies_s": [round(x, 4) for x in latencies[index]],
                "quality": mean_quality(zip(images[0], images[index])),
            }
        )
    seconds = time.perf_counter() - started
    return {
        "model": model,
        "sampler": sampler,
        "steps": steps,
        "accelerators": list(accelerators),
        "baseline_latency_s": round(baseline, 4),
        "baseline_latencies_s": [round(x, 4) for x in latencies[0]],
        "candidates": candidates,
        "provenance": provenance(
            device=config.device,
            dtype=config.dtype,
            resolution=resolution(pipe),
            weights="tiny-random" if config.weights == "tiny" else config.weights,
            prompts=prompts,
            seeds=config.seeds,
            repeats=config.repeats,
            seconds=seconds,
            threads=_threads(config.device),
        ),
    }


def _threads(device: str) -> Optional[int]:
    if device.startswith("cuda"):
        return None
    import torch

    return torch.get_num_threads()


@contextmanager
def applied(pipe, plan):
    """The pipeline with `plan` applied, undone on the way out, whatever happens inside."""
    undo = acc.apply(pipe, plan)
    try:
        yield pipe
    finally:
        undo()


def _generate(pipe, plan, job, steps):
    import torch

    prompt, seed = job
    output = acc.run(
        pipe,
        plan,
        prompt=prompt,
        num_inference_steps=steps,
        guidance_scale=7.5,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    )
    return output.images[0]


def search_one(model, sampler, steps, accelerators, config: SearchConfig, pipe=None) -> dict:
    """Sweep one combination and store it with its per-target entries; returns the sweep."""
    pipe = pipe or load_pipeline(model, config)
    record = sweep(pipe, model, sampler, steps, accelerators, config)
    db.update(lambda data: db.store_sweep(data, record, config.targets), config.db_path)
    return record


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


def plan_grid(items: list[GridItem], data: dict, targets: Iterable[float], shard=(0, 1),
              force=False) -> GridPlan:
    """Which items this runner measures: its shard, minus what the database already has."""
    index, total = shard
    mine = [item for position, item in enumerate(items) if position % total == index]
    result = GridPlan(todo=[], outside_shard=len(items) - len(mine))
    have = {db.record_key(s) for s in data["sweeps"]}
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
