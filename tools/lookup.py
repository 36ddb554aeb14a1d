"""Tool: look up measured acceleration parameters."""

from __future__ import annotations

from typing import Optional

from core.task import AcceleratorName, ModelName, SamplerName


def lookup_parameters(request: str, db_path: Optional[str] = None) -> dict:
    """Look up the measured parameters for a request in the parameter database.

    Args:
        request: the task in words, e.g. "SD1.5 DDIM 25 steps DeepCache 2x". Model, sampler,
            steps, accelerators and target speedup are taken from it; unknown ones get defaults.
        db_path: the parameter database; default the shipped search_params.json.

    Returns: {"task", "match" ('exact', 'from-sweep', 'nearest', 'missing'), "note", "status",
    "params", "measured", "provenance", "warnings"}.
    """
    from agent.codegen import resolve
    from agent.parser import parse
    from core import db

    resolution = resolve(parse(request), db.load_with_live(db_path))
    return lookup_answer(resolution)


def lookup_answer(resolution) -> dict:
    found = resolution.lookup
    entry = found.entry if found is not None and found.found else None
    return {
        "task": resolution.task.model_dump(),
        "assumed": resolution.assumed,
        "match": found.match if found is not None else "no-accelerator",
        "note": found.note() if found is not None else "no accelerator asked for",
        "status": entry["status"] if entry else None,
        "params": entry["params"] if entry else None,
        "measured": entry.get("measured") if entry else None,
        "provenance": entry.get("provenance") if entry else None,
        "warnings": resolution.warnings,
    }


def lookup(model: ModelName, sampler: SamplerName, steps: int, accelerators: Optional[list[AcceleratorName]],
           speedup: Optional[float] = None, db_path: Optional[str] = None) -> dict:
    """Look up the measured parameters of one task in the parameter database.

    Args:
        model: SD1.5, SD2.1 or SDXL.
        sampler: DDIM, DPM-Solver++ or UniPC.
        steps: number of denoising steps.
        accelerators: DeepCache, T-Gate, ToMe (any subset); null lets the database choose.
        speedup: the target speedup, e.g. 2.0; null means 2.0.
        db_path: the parameter database; null means the shipped one plus live searches.
    """
    from agent.codegen import resolve
    from core.task import Task
    from core import db

    task = Task(model=model, sampler=sampler, steps=steps, accelerators=accelerators, speedup=speedup)
    return lookup_answer(resolve(task, db.load_with_live(db_path)))
