"""Live search: measure a combination the database lacks, within a time budget, into the live cache.

On a CUDA machine it measures the full-size architecture (random weights, float16, both engines);
elsewhere a tiny random pipeline on the CPU, whose figures are labelled as a smoke run. It first
times one unaccelerated image, estimates the whole sweep from it, and refuses (saying how to run it
in full with `agent search`) when the estimate is over the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from core import db
from core.errors import DiffaccelError
from core.task import Task
from tools.lookup import search_command
from tools.validate import missing_dependency

DEFAULT_BUDGET_S = 300.0
CPU_NOTE = ("tiny CPU smoke run: shows the setting works and how settings rank; not a speed figure "
            "(run `agent search` on a GPU for real figures)")


@dataclass
class LiveSearch:
    device: str
    weights: str
    seconds: float
    stored_in: str
    candidates: int
    best_speedup: float
    note: Optional[str]

    def summary(self) -> str:
        line = (f"live search: {self.candidates} settings measured on {self.device} ({self.weights} weights) "
                f"in {self.seconds:.0f} s, stored in {self.stored_in}")
        return line + (f"; {self.note}" if self.note else "")


def live_search(task: Task, db_path: Optional[str] = None, budget_s: float = DEFAULT_BUDGET_S,
                say: Callable[[str], None] = lambda line: None) -> LiveSearch:
    """Measure `task`'s combination now and store it where the lookup that missed will find it."""
    try:
        import torch

        from search import accelerators as acc
        from search.engine import Pipelines, SearchConfig, search_one
    except ImportError as error:
        raise missing_dependency(error) from None
    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(1)
    config = SearchConfig(
        weights="random" if cuda else "tiny", device="cuda" if cuda else "cpu",
        dtype="float16" if cuda else "float32", prompts=2 if cuda else 1,
        min_rounds=3 if cuda else 2, max_rounds=10 if cuda else 2,
        engines=("eager", "graph") if cuda else ("eager",),
        db_path=str(db_path or db.live_path()),
    )
    started = time.monotonic()
    pipes = Pipelines.load(task.model, config)
    settings = acc.candidates(task.accelerators, task.model, task.steps)
    estimate = _estimate(pipes.baseline, task, config, len(settings) * len(config.engines))
    if estimate > budget_s:
        raise DiffaccelError(
            f"a live search of {task.describe()} would take about {estimate:.0f} s on {config.device}, over "
            f"the {budget_s:.0f} s budget (--search-budget). Run it in full with: {search_command(task)}")
    say(f"live search: {len(settings)} settings x {len(config.engines)} engine(s) on {config.device}, "
        f"about {estimate:.0f} s")
    sweep = search_one(task.model, task.sampler, task.steps, task.accelerators, config, pipes=pipes)
    return LiveSearch(
        device=sweep.provenance.device, weights=sweep.provenance.weights,
        seconds=round(time.monotonic() - started, 1), stored_in=config.db_path,
        candidates=len(sweep.candidates), best_speedup=max(c.speedup for c in sweep.candidates),
        note=None if cuda else CPU_NOTE,
    )


def _estimate(pipe, task: Task, config, contenders: int) -> float:
    """Seconds for the sweep, from one timed unaccelerated image (which also warms the pipeline up)."""
    from search.engine import time_one_image

    one = time_one_image(pipe, task.model, task.sampler, task.steps)
    images = (1 + config.prompts) + contenders * (config.prompts + 2 * config.min_rounds)
    return one * images
