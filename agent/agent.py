"""The one path from a task to a script: look up, search live on a miss, render, validate.

`agent generate`, `agent chat` and `agent verify` all go through `Agent.run`, so the same task gives
the same script whichever way it was asked. A domain error (DiffaccelError) from a live search is
recorded and the script is labelled unmeasured; anything else is a bug and propagates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

from core import db
from core.errors import DiffaccelError
from core.task import Task
from tools.lookup import Resolution, lookup_json, resolve
from tools.render import default_filename, render
from tools.search import DEFAULT_BUDGET_S, LiveSearch, live_search
from tools.validate import DEFAULT_TIMEOUT_S, Validation, validate

LiveSearchPolicy = Literal["ask", "always", "never"]


@dataclass
class Outcome:
    """What one request produced: the decision, the script, and what was run to get there."""

    resolution: Resolution
    source: str
    filename: str
    live_search: Optional[LiveSearch] = None
    validation: Optional[Validation] = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.validation is None or self.validation.ok

    def to_json(self, written: Optional[str] = None) -> dict:
        answer = lookup_json(self.resolution)
        answer["script"] = written
        answer["notes"] = self.notes
        if self.live_search is not None:
            answer["live_search"] = vars(self.live_search)
        if self.validation is not None:
            answer["validation"] = self.validation.to_json()
        return answer


# Said when the request asks for compilation or graphs and the script runs the graph engine.
COMPILE_NOTE = ("the script replays CUDA graphs by default; run it with --compile to also compile the U-Net "
                "and VAE decoder with inductor: 1.5 to 2.5 minutes more on the first image, about 45 s on a second start; "
                "measured with DeepCache alone, 28-40% shorter images on an H100 (SD1.5 8.2x, SD2.1 4.8x over "
                "eager); with T-GATE or ToMe the same image as eager on a GPU, their speed and compile time not yet "
                "measured (benchmarks/results/graph_probe_h100.md; not in the figures above)")


class Agent:
    def __init__(self, db_path: Optional[str] = None, live_search: LiveSearchPolicy = "ask",
                 confirm: Callable[[Resolution], bool] = lambda resolution: False, validate: bool = False,
                 model_path: Optional[str] = None, search_budget_s: float = DEFAULT_BUDGET_S,
                 validate_timeout_s: float = DEFAULT_TIMEOUT_S, say: Callable[[str], None] = lambda line: None):
        self.db_path, self.live_search, self.confirm = db_path, live_search, confirm
        self.validate, self.model_path, self.say = validate, model_path, say
        self.search_budget_s, self.validate_timeout_s = search_budget_s, validate_timeout_s
        self._data: Optional[db.Database] = None

    def data(self) -> db.Database:
        """The database, read once per agent and again after a live search wrote to it."""
        if self._data is None:
            self._data = db.load_with_live(self.db_path)
        return self._data

    def run(self, task: Task, filename: Optional[str] = None, validate: Optional[bool] = None) -> Outcome:
        resolution = resolve(task, self.data())
        notes: list[str] = []
        searched = None
        if resolution.needs_search and self._may_search(resolution):
            try:
                searched = live_search(resolution.task, self.db_path, self.search_budget_s, self.say)
                notes.append(searched.summary())
                self._data = None
                resolution = resolve(task, self.data())
            except DiffaccelError as error:
                notes.append(f"live search not run: {error}")
        if task.engine == "graph" and resolution.engine == "graph":
            notes.append(COMPILE_NOTE)
        filename = filename or default_filename(resolution)
        source = render(resolution, model_path=self.model_path, filename=filename)
        checked = None
        if self.validate if validate is None else validate:
            checked = validate_script(source, resolution, self.model_path, self.validate_timeout_s)
        return Outcome(resolution, source, filename, searched, checked, notes)

    def _may_search(self, resolution: Resolution) -> bool:
        if self.live_search == "never":
            return False
        return self.live_search == "always" or self.confirm(resolution)


def validate_script(source: str, resolution: Resolution, model_path: Optional[str],
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> Validation:
    task = resolution.task
    return validate(source, task.model, task.speedup if task.accelerators else None, model_path, timeout_s)


def live_search_question(resolution: Resolution) -> str:
    return (f"No sweep of {resolution.task.describe()} was measured ({resolution.lookup.note()}). "
            "Measure it now with a live search?")
