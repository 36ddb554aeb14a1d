"""Tool: render the accelerated script for a task."""

from __future__ import annotations

from typing import Optional

from core.task import AcceleratorName, ModelName, SamplerName


def render_script(model: ModelName, sampler: SamplerName, steps: int, accelerators: list[AcceleratorName],
                  speedup: Optional[float] = None, model_path: Optional[str] = None,
                  db_path: Optional[str] = None) -> str:
    """Render the Python script for a task, with the parameters from the database.

    Args:
        model: SD1.5, SD2.1 or SDXL.
        sampler: DDIM, DPM-Solver++ or UniPC.
        steps: number of denoising steps.
        accelerators: DeepCache, T-Gate, ToMe (any subset; empty for none).
        speedup: the target speedup; null means 2.0.
        model_path: the weights the script loads by default; null means the model's hub id.
        db_path: the parameter database; null means the shipped one plus live searches.
    """
    from agent.codegen import render, resolve
    from core.task import Task
    from core import db

    task = Task(model=model, sampler=sampler, steps=steps, accelerators=accelerators, speedup=speedup)
    return render(resolve(task, db.load_with_live(db_path)), model_path=model_path)
