"""Render: from a resolution to the script the user runs.

Templates are Jinja2 with StrictUndefined, and every value reaches the source through a literal
filter, so request text cannot. The protocol (search/stats.py, search/protocol.py) and the graph
engine (search/graph.py) are embedded verbatim from their modules: the search and the script run
one implementation, and a test checks the copies never drift.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from importlib import metadata
from pathlib import Path

from core.pareto import interval_text
from core.task import MODEL_INFO, SAMPLER_INFO, combination_label
from search.accelerators import plan as accelerator_plan
from search.measure import FASTEST_SINCE, PREDICTED_SINCE
from search.stats import FASTEST_OF
from tools.lookup import Resolution

# Modules embedded in every script, in order; lines marked `# not in scripts` are left out.
RUNTIME_MODULES = ("stats", "protocol")
GRAPH_MODULE = "graph"


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tools", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["py"] = python_literal
    return env


def python_literal(value) -> str:
    """A value as Python source, double-quoted as black writes it: JSON is valid Python for strings,
    numbers, and lists and dicts of them (not for true/false/null, which fall back to repr)."""
    try:
        text = json.dumps(value)
    except TypeError:
        return repr(value)
    return text if not re.search(r"\b(true|false|null)\b", text) or isinstance(value, str) else repr(value)


_SAFE = re.compile(r"[^\w .,:;+()/%=@'-]")  # no quote that could end a docstring, no backslash


def clean(text) -> str:
    """Database strings go into a docstring: keep them to plain characters."""
    return _SAFE.sub("", str(text))[:240]


@lru_cache(maxsize=None)
def embedded_source(module: str) -> str:
    """A search/ module's code as a script embeds it: no docstring, no package imports."""
    text = resources.files("search").joinpath(f"{module}.py").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.rstrip().endswith("# not in scripts")]
    body = "\n".join(lines)
    body = re.sub(r'\A"""(?:.|\n)*?"""\n', "", body)  # the module docstring
    body = body.replace("from __future__ import annotations\n", "")
    return body.strip() + "\n"


def graph_basis(resolution: Resolution):
    """What a graph figure is over, where it is a protocol-5 one; None otherwise."""
    source = resolution.provenance
    if "graph" not in resolution.choices or source is None or (source.protocol_version or 0) < FASTEST_SINCE:
        return None
    return (f"A graph figure is over the eager pipeline's fastest of {FASTEST_OF} timed runs, as --benchmark "
            "measures it (a host's slow stretches only add time).")


def measured_lines(resolution: Resolution) -> list[str]:
    """What the database says of each engine's setting, for the script's docstring and the summary."""
    if not resolution.task.accelerators:
        return ["No accelerator: this is the baseline pipeline."]
    lines = []
    for name, choice in resolution.choices.items():
        lines.append(f"{name}: {choice.settings.describe()}; {figure_text(choice, resolution.task.speedup)}")
    source = resolution.provenance
    if source is not None and source.device:
        keys = ("device", "dtype", "resolution", "weights", "date")
        data = source.model_dump()
        lines.append("Measured on: " + ", ".join(f"{k} {data[k]}" for k in keys if data.get(k)))
        if source.weights != "real":
            lines.append("Quality from random weights is only a proxy; the speed figures are real.")
        lines += filter(None, [graph_basis(resolution)])
        guidance = data.get("guidance_scale", 7.5)
        if guidance != MODEL_INFO[resolution.task.model].guidance_scale:
            lines.append(f"Measured at guidance scale {guidance:g}; this script uses the default of the "
                         f"model, {MODEL_INFO[resolution.task.model].guidance_scale:g} (--guidance-scale).")
    return [clean(line) for line in lines]


def figure_text(choice, target: float) -> str:
    """'2.31x (95% 2.24-2.38), SSIM 0.971; first call 1.2 s' or why there is no figure."""
    entry = choice.entry
    if entry is None or entry.measured is None or not choice.measured_here:
        if choice.swept:  # the combination's sweep did not try this knob; a search would not either
            return "UNMEASURED (a stated knob its sweep did not try): the script's --benchmark measures it"
        return "UNMEASURED (the libraries' defaults or a stated knob): run agent search to measure it"
    measured = entry.measured
    text = f"{measured.speedup:.2f}x"
    if measured.speedup_interval:
        low, high = measured.speedup_interval
        # A graph figure is a prediction for a later run from protocol 4 on (now search/stats.py fastest_speedup).
        predicted = entry.engine == "graph" and (entry.provenance.protocol_version or 0) >= PREDICTED_SINCE
        text += f" (95% {'of runs' if predicted else 'interval'} {interval_text(low, high)}x)"
    else:
        text += " (no interval: the first version's 2-round measurement)"
    text += f", SSIM {measured.quality.ssim:.3f}, PSNR {measured.quality.psnr:.1f}"
    if measured.first_call_s is not None:
        text += f"; first call {measured.first_call_s:.1f} s (graph capture)"
    if not choice.reaches(target):
        text += f"; short of {target:g}x"
    if entry.provenance.strength == 0:
        text += "; tiny CPU smoke run, not a speed figure"
    return text


@lru_cache(maxsize=1)
def requirements() -> list[str]:
    """What the script imports, as diffaccel's `run` extra pins it (the versions it was measured with)."""
    try:
        declared = metadata.requires("diffaccel") or []
    except metadata.PackageNotFoundError:
        return ["diffaccel[run] (see its pyproject.toml)"]
    return [line.split(";")[0].strip() for line in declared if "extra == \"run\"" in line]


def render(resolution: Resolution, model_path: str | None = None, filename: str = "pipeline.py") -> str:
    task = resolution.task
    model_info, sampler_info = MODEL_INFO[task.model], SAMPLER_INFO[task.sampler]
    plans = {name: accelerator_plan(task.model, choice.settings) for name, choice in resolution.choices.items()}
    graph = "graph" in plans
    runtime = [embedded_source(name) for name in RUNTIME_MODULES + ((GRAPH_MODULE,) if graph else ())]
    return _environment().get_template("pipeline.py.j2").render(
        task=task,
        plan=plans[resolution.engine],
        settings={name: plan.settings.to_json() for name, plan in plans.items()},
        default_engine=resolution.engine,
        graph=graph,
        combination=combination_label(task.accelerators),
        model_info=model_info,
        sampler_info=sampler_info,
        model_path=model_path or model_info.hub_id,
        target_line=(f"{task.speedup:g}x faster than the unaccelerated eager pipeline"
                     if task.accelerators else "baseline (no accelerator)"),
        measured_lines=measured_lines(resolution),
        warnings=[clean(w) for w in resolution.warnings],
        requirements=requirements(),
        runtime="\n\n".join(runtime),
        filename=clean(Path(filename).name) or "pipeline.py",
    )


def default_filename(resolution: Resolution) -> str:
    """'sdxl_unipc_25steps_deepcache_2_5x.py': readable, distinct for 2x and 2.5x, and never naming
    a speedup the script does not reach ('..._fastest.py' when the target is out of reach)."""
    task = resolution.task
    parts = [task.model, task.sampler, f"{task.steps}steps", combination_label(task.accelerators)]
    if task.accelerators:
        reached = resolution.choice.reaches(task.speedup)
        parts.append(f"{task.speedup:g}x".replace(".", "_") if reached else "fastest")
    words = [re.sub(r"[^a-z0-9_]+", "", part.lower().replace("+", "_").replace("-", "")) for part in parts]
    return "_".join(word.strip("_") for word in words) + ".py"
