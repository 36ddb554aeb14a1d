"""From a Task to a script: fill unknown fields, look the parameters up, render the template.

`resolve()` decides (and records why); `render()` only formats. Templates are Jinja2 with
StrictUndefined, and every value reaches the source through `repr`, so request text cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

from core.task import (
    DEFAULT_MODEL,
    DEFAULT_SAMPLER,
    DEFAULT_SPEEDUP,
    MODEL_INFO,
    SAMPLER_INFO,
    Task,
    default_steps,
)

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Resolution:
    """A complete task with the parameters chosen for it and where they came from."""

    task: Task
    assumed: dict[str, str]  # field -> why it was filled in
    lookup: Optional[object]  # core.db.Lookup, None when no accelerator is used
    plan: object  # search.accelerators.Plan
    warnings: list[str] = field(default_factory=list)

    @property
    def measured(self) -> Optional[dict]:
        entry = self.lookup.entry if self.lookup else None
        return entry.get("measured") if entry else None

    @property
    def provenance(self) -> Optional[dict]:
        entry = self.lookup.entry if self.lookup else None
        return entry.get("provenance") if entry else None

    def search_command(self) -> str:
        return search_command(self.task)


def search_command(task: Task) -> str:
    """The command that measures a task's combination."""
    return (
        f"agent search --model {task.model} --sampler {task.sampler} --steps {task.steps} "
        f"--accelerators {','.join(task.accelerators)}"
    )


def resolve(task: Task, data: dict) -> Resolution:
    from core import db
    from core.settings import Settings, settings_from_json
    from search.accelerators import plan

    assumed: dict[str, str] = {}
    updates = {}
    if task.model is None:
        updates["model"], assumed["model"] = DEFAULT_MODEL, "default model"
    if task.sampler is None:
        updates["sampler"], assumed["sampler"] = DEFAULT_SAMPLER, "default sampler"
    model = task.model or DEFAULT_MODEL
    if task.steps is None:
        updates["steps"], assumed["steps"] = default_steps(model), f"default for {model}"
    if task.speedup is None and task.accelerators != []:
        updates["speedup"], assumed["speedup"] = DEFAULT_SPEEDUP, "default target"
    task = task.model_copy(update=updates)

    warnings: list[str] = []
    if task.accelerators is None:
        best = db.best_combination(data, task.model, task.sampler, task.steps, task.speedup)
        if best is None:
            task = task.model_copy(update={"accelerators": ["DeepCache"]})
            assumed["accelerators"] = "no measured combination reaches the target; DeepCache"
        else:
            combo, _ = best
            task = task.model_copy(update={"accelerators": list(combo)})
            assumed["accelerators"] = "measured best quality at this target"

    if not task.accelerators:
        return Resolution(task, assumed, None, plan(task.model, Settings()), warnings)

    found = db.lookup(data, task.model, task.sampler, task.steps, task.accelerators, task.speedup)
    if not found.found:
        settings = _library_defaults(task)
        warnings.append(
            f"no measured parameters for {task.describe()}: using the libraries' default "
            f"settings, whose speedup is unknown. Measure them with: "
            f"{search_command(task)}"
        )
    else:
        settings = settings_from_json(found.entry["params"])
        if found.match == "nearest":
            warnings.append(f"parameters come from the {found.note()}")
        if found.entry["status"] == "infeasible":
            best = found.entry["measured"]["speedup"] if found.entry.get("measured") else None
            warnings.append(
                f"no measured setting reaches {task.speedup:g}x; this is the fastest measured"
                + (f" ({best:.2f}x)" if best else "")
            )
    return Resolution(task, assumed, found, plan(task.model, settings), warnings)


def _library_defaults(task: Task):
    from core.settings import (
        DeepCacheParams,
        Settings,
        TGateParams,
        ToMeParams,
        default_tome_max_downsample,
    )

    chosen = set(task.accelerators)
    return Settings(
        deepcache=DeepCacheParams() if "DeepCache" in chosen else None,
        tgate=TGateParams(gate_step=max(1, min(10, task.steps - 1))) if "T-Gate" in chosen else None,
        tome=ToMeParams(max_downsample=default_tome_max_downsample(task.model))
        if "ToMe" in chosen
        else None,
    )


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["py"] = python_literal
    return env


def python_literal(value) -> str:
    """A value as Python source; strings double-quoted, with JSON's escapes (also valid Python)."""
    import json

    return json.dumps(value) if isinstance(value, str) else repr(value)


_SAFE = re.compile(r"[^\w .,:;+()/%=@-]")


def _clean(text) -> str:
    """Database strings go into a docstring: keep them to plain characters."""
    return _SAFE.sub("", str(text))[:120]


def provenance_lines(resolution: Resolution) -> list[str]:
    measured, source = resolution.measured, resolution.provenance
    if resolution.lookup is None:
        return ["No accelerator: this is the baseline pipeline."]
    if not resolution.lookup.found:
        return ["UNMEASURED: the libraries' default settings; run the search to measure them."]
    lines = [f"Lookup: {_clean(resolution.lookup.note())}"]
    if measured:
        quality = ", ".join(f"{k.upper()} {v:.3f}" for k, v in measured["quality"].items())
        lines.append(
            f"Measured: {measured['speedup']:.2f}x ({measured['baseline_latency_s']:.3f} s -> "
            f"{measured['latency_s']:.3f} s), {quality} vs. the unaccelerated image"
        )
    if source:
        keys = ("device", "dtype", "resolution", "weights", "date")
        lines.append("Measured on: " + _clean(", ".join(f"{k} {source[k]}" for k in keys if k in source)))
        if source.get("weights") != "real":
            lines.append("Quality from random weights is only a proxy; the speed figures are real.")
    return lines


def render(resolution: Resolution, model_path: Optional[str] = None, filename: str = "pipeline.py") -> str:
    task, accel = resolution.task, resolution.plan
    model_info = MODEL_INFO[task.model]
    sampler_info = SAMPLER_INFO[task.sampler]
    target = (
        f"{task.speedup:g}x faster than the unaccelerated pipeline"
        if task.accelerators
        else "baseline (no accelerator)"
    )
    return _environment().get_template("pipeline.py.j2").render(
        task=task,
        plan=accel,
        model_info=model_info,
        sampler_info=sampler_info,
        plan_classes=sorted({model_info.pipeline_class, sampler_info.scheduler_class}),
        model_path=model_path or model_info.hub_id,
        target_line=target,
        provenance_lines=provenance_lines(resolution),
        filename=_clean(Path(filename).name) or "pipeline.py",
    )
