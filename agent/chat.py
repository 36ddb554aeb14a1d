"""`agent chat`: state a task, see it, refine it with follow-ups that edit it, save the script."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.syntax import Syntax

from core.errors import DiffaccelError, UnsupportedRequest
from core.task import ACCELERATORS, Task

HELP = (
    "Describe a task, e.g. 'make SDXL 2x faster with UniPC'. Then refine it: 'now 3x', "
    "'use DDIM instead', '25 steps', 'drop ToMe', 'add T-Gate', 'why these parameters?'.\n"
    "Commands: /save [FILE], /validate, /reset, /help, /quit."
)
_ADD = re.compile(r"\b(add|also|plus|too|as well|with)\b|加上|再加")
_WHY = re.compile(r"\bwhy\b|\bexplain\b|\bhow (?:were|was|did)\b|为什么")


class ChatSession:
    def __init__(self, console: Console, agent, llm: Optional[str] = None, llm_model: Optional[str] = None,
                 out_dir: Path = Path(".")):
        self.console, self.agent, self.llm, self.llm_model = console, agent, llm, llm_model
        self.out_dir = out_dir
        self.task: Optional[Task] = None
        self.outcome = None

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        self.console.print("[bold]diffaccel chat[/bold]: " + HELP)
        while True:
            try:
                line = self.console.input("[bold cyan]you>[/bold cyan] ").strip()
            except (EOFError, KeyboardInterrupt):
                self.console.print("\nbye")
                return
            if not line:
                continue
            if line.startswith("/"):
                if self.command(line) == "quit":
                    self.console.print("bye")
                    return
                continue
            try:
                self.say(line)
            except KeyboardInterrupt:
                self.console.print("[yellow]interrupted[/yellow]")
            except DiffaccelError as error:
                self.console.print(f"[red]{error}[/red]")

    def command(self, line: str) -> Optional[str]:
        name, _, argument = line.partition(" ")
        if name in ("/quit", "/exit", "/q"):
            return "quit"
        if name == "/help":
            self.console.print(HELP)
        elif name == "/reset":
            self.task = self.outcome = None
            self.console.print("Task cleared.")
        elif self.outcome is None:
            self.console.print("No task yet: describe one first.")
        elif name == "/save":
            self.save(Path(argument.strip()) if argument.strip() else None)
        elif name == "/validate":
            self.validate()
        else:
            self.console.print(f"Unknown command {name}. {HELP}")
        return None

    def say(self, line: str) -> None:
        if self.task is not None and _WHY.search(line.lower()):
            self.explain()
            return
        from agent.parser import accelerator_mentions

        try:
            update = self.understand(line)
        except UnsupportedRequest as error:
            if self.task is None or "does not look like" not in str(error):
                raise
            if not accelerator_mentions(line)[1]:  # 'drop ToMe' names no field, only a removal
                self.console.print(f"I did not find a change in that. {HELP}")
                return
            update = Task()
        self.task = update if self.task is None else self.edit(self.task, update, line)
        self.show(self.agent.run(self.task))

    # -- understanding follow-ups -----------------------------------------------------------------
    def understand(self, line: str) -> Task:
        from agent.extract import extract

        return extract(line, llm=self.llm, llm_model=self.llm_model,
                       notice=lambda message: self.console.print(f"[dim]{message}[/dim]")).task

    @staticmethod
    def edit(current: Task, update: Task, line: str) -> Task:
        """A follow-up changes the fields it names; accelerators can be added or dropped."""
        from agent.parser import accelerator_mentions

        task = current.merged(update.model_copy(update={"accelerators": None}))
        named, dropped = accelerator_mentions(line)
        if named or dropped:
            if dropped or _ADD.search(line.lower()):
                base = set(current.accelerators or ())
                chosen = (base | named) - dropped
            else:
                chosen = named
            task = task.model_copy(update={"accelerators": [a for a in ACCELERATORS if a in chosen]})
        elif update.accelerators == []:
            task = task.model_copy(update={"accelerators": []})
        return task

    # -- showing ------------------------------------------------------------------------------------
    def show(self, outcome) -> None:
        from agent.report import print_outcome

        self.outcome = outcome
        self.task = outcome.resolution.task
        print_outcome(self.console, outcome, None)
        self.console.print(Syntax(outcome.source, "python", line_numbers=False))
        self.save(None)

    def save(self, path: Optional[Path]) -> None:
        from core.files import save_user_file

        target = save_user_file(path or self.out_dir / self.outcome.filename, self.outcome.source)
        self.console.print(f"Saved [bold]{target}[/bold]")

    def validate(self) -> None:
        from agent.agent import validate_script

        self.console.print("Running the script...")
        result = validate_script(self.outcome.source, self.outcome.resolution, self.agent.model_path)
        colour = "green" if result.ok else "red"
        self.console.print(f"[{colour}]Validation:[/{colour}] {result.summary()}")

    def explain(self) -> None:
        from core import db
        from core.pareto import pareto_front

        resolution = self.outcome.resolution
        task, found = resolution.task, resolution.lookup
        if found is None:
            self.console.print("No accelerator was asked for, so there are no parameters to choose.")
            return
        if not found.found:
            self.console.print("Nothing was measured for this combination: the script uses the libraries' "
                               f"defaults. Measure it with: {resolution.search_command()}")
            return
        self.console.print(
            f"For {task.describe()} the database holds a sweep of measured settings; diffaccel picks, "
            f"among those whose speedup interval's lower bound reaches {task.speedup:g}x, the one with the "
            "highest SSIM against the unaccelerated image (PSNR breaks ties)."
        )
        sweep = self.agent.data().find_sweep(db.combo_key(task.model, task.sampler, task.steps, task.accelerators))
        if sweep is None:
            return
        self.console.print("Pareto front of the sweep (engine, speedup, SSIM, settings):")
        for candidate in pareto_front(sweep.candidates):
            self.console.print(f"  {candidate.engine:5} {candidate.speedup:.2f}x  SSIM {candidate.quality.ssim:.3f}  "
                               f"{candidate.params.describe()}")
