"""The agent loop: resolve a task, search live on a miss, render, validate. Short and bounded.

Two kinds of failure: a bug in diffaccel propagates; a tool's refusal (bad arguments, missing
dependency, a script that fails) is recorded as an observation and shown, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from pydantic import ValidationError

from core.errors import DiffaccelError
from core.task import Task


@dataclass
class Step:
    tool: str
    arguments: dict
    observation: object
    ok: bool = True


@dataclass
class Outcome:
    resolution: object  # agent.codegen.Resolution
    source: str
    validation: Optional[dict] = None
    steps: list[Step] = field(default_factory=list)


def needs_live_search(resolution) -> bool:
    """True when no sweep of exactly this combination was measured."""
    return bool(resolution.task.accelerators) and resolution.lookup.match in ("missing", "nearest")


class Agent:
    max_steps = 4

    def __init__(self, db_path: Optional[str] = None, live_search: str = "ask",
                 confirm: Callable[[object], bool] = lambda resolution: False, validate: bool = True,
                 model_path: Optional[str] = None, on_step: Callable[[Step], None] = lambda step: None):
        self.db_path, self.live_search, self.confirm = db_path, live_search, confirm
        self.validate, self.model_path, self.on_step = validate, model_path, on_step

    def run(self, task: Task) -> Outcome:
        from agent.codegen import render

        history: list[Step] = []
        resolution = self.resolve(task, history)
        source = render(resolution, model_path=self.model_path)
        validation = None
        if self.validate:
            checked = self._call(history, "validate_script", source=source, model=resolution.task.model,
                                 target=resolution.task.speedup, model_path=self.model_path)
            validation = checked.observation if checked.ok else {"ok": False, "error": checked.observation}
        return Outcome(resolution, source, validation, history)

    def resolve(self, task: Task, history: list[Step]):
        """The task's parameters from the database, after a live search if it lacks them."""
        from agent.codegen import resolve
        from core import db

        resolution = resolve(task, db.load_with_live(self.db_path))
        if needs_live_search(resolution) and self._may_search(resolution):
            fields = resolution.task.model_dump()
            searched = self._call(history, "live_search", model=fields["model"], sampler=fields["sampler"],
                                  steps=fields["steps"], accelerators=fields["accelerators"],
                                  db_path=self.db_path)
            if searched.ok:
                resolution = resolve(resolution.task, db.load_with_live(self.db_path))
        return resolution

    def _call(self, history: list[Step], name: str, **arguments) -> Step:
        from tools import registry

        if len(history) >= self.max_steps:
            raise RuntimeError(f"agent exceeded {self.max_steps} tool calls")
        try:
            step = Step(name, arguments, registry()[name](**arguments))
        except (ValidationError, DiffaccelError) as error:
            step = Step(name, arguments, str(error), ok=False)
        history.append(step)
        self.on_step(step)
        return step

    def _may_search(self, resolution) -> bool:
        if self.live_search == "never":
            return False
        return self.live_search == "always" or self.confirm(resolution)


def live_search_question(resolution) -> str:
    return (
        f"No sweep of {resolution.task.describe()} was measured "
        f"({resolution.lookup.note()}). Measure it now with a live search?"
    )
