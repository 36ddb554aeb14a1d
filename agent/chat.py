"""`agent chat`: state a task, see it, refine it with follow-ups that edit it, save the script.

The session keeps the task as the user ASKED it: fields nobody stated stay unknown, so every turn
resolves the edited request afresh and an edit gives the same script as asking for the edited task
directly. A turn answers from the database (well under a second): the task and parameter tables,
one line of what the edit changed, and the one file of this session that it rewrote. Running the
script is `/validate` (or `--validate` for every turn); the script is printed on `/show`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from core.errors import DiffaccelError, UnsupportedRequest
from core.task import ACCELERATORS, Task

EDITS = ("'now 3x', 'use DDIM instead', '25 steps', 'drop ToMe', 'add T-Gate', 'without DeepCache', "
         "'why these parameters?'")
HELP = (
    f"Describe a task, e.g. 'make SDXL 2x faster with UniPC'. Then refine it: {EDITS}.\n"
    "Commands: /show (the script), /save [FILE] (a copy), /validate (run it), /reset, /help, /quit."
)
SESSION_FILE = "chat_pipeline.py"
SMOKE_SWEEP = "tiny CPU smoke run: shows the setting works; not a speed figure"
# The fields a turn may change, in the order the task table shows them.
FIELDS = tuple(Task.model_fields)
_ADD = re.compile(r"\b(add|also|plus|too|as well|with|back)\b|加上|再加")
_WHY = re.compile(r"\bwhy\b|\bexplain\b|\bhow (?:were|was|did)\b|为什么")
_QUESTION = re.compile(r"\?\s*$|？\s*$|^\s*(?:how|what|which|is|are|does|do|can|could|will|would)\b|吗")
_GPU = re.compile(r"\b(?:rtx\s*|gtx\s*)?\d{4}(?:\s*ti)?\b|\b(?:[ahlbv]\d{2,3}|t4|mi\d{3}x?)\b", re.IGNORECASE)


class ChatSession:
    def __init__(self, console: Console, agent, llm: Optional[str] = None, llm_model: Optional[str] = None,
                 out_dir: Path = Path("."), validate_each: bool = False, save_each: bool = False):
        self.console, self.agent, self.llm, self.llm_model = console, agent, llm, llm_model
        self.out_dir, self.validate_each, self.save_each = out_dir, validate_each, save_each
        self.asked: Optional[Task] = None  # unknown fields stay None: resolved afresh each turn
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
            try:
                if line.startswith("/") and self.command(line) == "quit":
                    self.console.print("bye")
                    return
                if line and not line.startswith("/"):
                    self.say(line)
            except KeyboardInterrupt:
                self.console.print("[yellow]interrupted[/yellow]")
            except DiffaccelError as error:
                self.console.print(f"[red]Error:[/red] {escape(str(error))}")

    def command(self, line: str) -> Optional[str]:
        name, _, argument = line.partition(" ")
        if name in ("/quit", "/exit", "/q"):
            return "quit"
        if name == "/help":
            self.console.print(HELP)
        elif name == "/reset":
            self.asked = self.outcome = None
            self.console.print("Task cleared.")
        elif name not in ("/show", "/save", "/validate"):
            self.console.print(f"Unknown command {escape(name)}. {HELP}")
        elif self.outcome is None:
            self.console.print("No task yet: describe one first.")
        elif name == "/show":
            self.console.print(Syntax(self.outcome.source, "python", line_numbers=False, word_wrap=True))
        elif name == "/save":
            self.save_copy(Path(argument.strip()) if argument.strip() else None)
        else:
            self.validate()
        return None

    def say(self, line: str) -> None:
        if self.outcome is not None and _WHY.search(line.lower()):
            self.explain()
            return
        try:
            update = self.understand(line)
        except UnsupportedRequest as error:
            if self.outcome is None or "does not look like" not in str(error):
                raise
            update = None  # 'drop ToMe' names no field, only a removal; a question names nothing
        if self.outcome is None:
            self.answer(update)
            return
        shown = self.outcome.resolution.task
        remarks = unapplied(shown, line)
        for remark in remarks:
            self.console.print(remark)
        asked = self.edit(self.asked, update or Task(), line, shown)
        if asked != self.asked:
            self.answer(asked)
        elif remarks:
            self.console.print("The task stays as it is.")
        else:
            self.not_understood(line)

    # -- understanding follow-ups -----------------------------------------------------------------
    def understand(self, line: str) -> Task:
        from agent.extract import extract

        return extract(line, llm=self.llm, llm_model=self.llm_model,
                       notice=lambda message: self.console.print(f"[dim]{escape(message)}[/dim]")).task

    @staticmethod
    def edit(asked: Task, update: Task, line: str, shown: Optional[Task] = None) -> Task:
        """The asked task with a follow-up's fields merged in. `shown` is the task as resolved
        last turn: adding or dropping an accelerator starts from the combination the user sees.
        Dropping one from an assumed combination forbids it and lets the resolver choose again,
        as asking 'without ToMe' directly would."""
        from agent.parser import accelerator_mentions

        task = asked.merged(update.model_copy(update={"accelerators": None, "excluded": None}))
        named, dropped = accelerator_mentions(line)
        excluded = (set(asked.excluded or ()) | set(update.excluded or ())) - named
        accelerators = asked.accelerators
        current = set((shown or asked).accelerators or ())
        if named or dropped:
            if not named and asked.accelerators is None:
                excluded |= dropped & current
            elif dropped or _ADD.search(line.lower()):
                accelerators = sorted((current | named) - dropped)
            else:
                accelerators = sorted(named)
        elif update.accelerators == []:
            accelerators = []
        return task.model_copy(update={
            "accelerators": None if accelerators is None else [a for a in ACCELERATORS if a in accelerators],
            "excluded": [a for a in ACCELERATORS if a in excluded] or None,
        })

    def not_understood(self, line: str) -> None:
        task = self.outcome.resolution.task
        if not _QUESTION.search(line.lower()):
            self.console.print(f"I found no change in that: the task stays {task.describe()}. Edits I understand: "
                               f"{EDITS}.")
            return
        self.console.print(f"I read a question, not a change: the task stays {task.describe()}. "
                           f"{self.measured_where(_GPU.search(line))}")

    def measured_where(self, gpu: Optional[re.Match]) -> str:
        """What diffaccel can say about speed: the measured figure and where it was measured."""
        from tools.render import figure_text

        resolution = self.outcome.resolution
        source = resolution.provenance
        if not resolution.task.accelerators:
            return "No accelerator is in the task, so there is no speed figure to give."
        if source is None or not resolution.choice.measured_here:
            answer = "Nothing is measured for this setting yet."
        else:
            answer = (f"diffaccel answers from measurements: {figure_text(resolution.choice, resolution.task.speedup)}, measured on "
                      f"{source.device} ({source.dtype}, {source.resolution} px, {source.weights} weights).")
        other = f"a {gpu.group(0)}" if gpu else "another GPU"
        return (f"{answer} It does not predict other hardware: to know {other}, run this there: "
                f"{resolution.search_command()}")

    # -- showing ------------------------------------------------------------------------------------
    def answer(self, asked: Task) -> None:
        """Resolve the asked task, show what changed, and rewrite the session's file."""
        from agent.report import print_outcome

        outcome = self.agent.run(asked, filename=None if self.save_each else SESSION_FILE, validate=False)
        before, self.asked, self.outcome = self.outcome, asked, outcome
        print_outcome(self.console, outcome, None)
        if before is not None:
            self.console.print("changed: " + changes(before.resolution, outcome.resolution))
        self.save(self.out_dir / outcome.filename, outcome.source, first=before is None)
        if self.validate_each:
            self.validate()

    def save(self, path: Path, source: str, first: bool = False) -> None:
        from core.files import save_user_file

        target = save_user_file(path, source)
        hint = "" if self.save_each or not first else " (rewritten each turn; /show prints it, /save FILE keeps a copy)"
        self.console.print(f"saved to [bold]{escape(str(target))}[/bold]{hint}")

    def save_copy(self, path: Optional[Path]) -> None:
        """A copy of the current script, named in its own usage lines; by default under its
        descriptive name in the output folder."""
        from tools.render import default_filename, render

        resolution = self.outcome.resolution
        path = path or self.out_dir / default_filename(resolution)
        self.save(path, render(resolution, model_path=self.agent.model_path, filename=path.name))

    def validate(self) -> None:
        from agent.agent import validate_script

        with self.console.status("Running the script (a tiny CPU pipeline unless --model-path weights on a GPU)..."):
            result = validate_script(self.outcome.source, self.outcome.resolution, self.agent.model_path)
        colour = "green" if result.ok else "red"
        self.console.print(f"[{colour}]Validation:[/{colour}] {escape(result.summary())}")

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
        smoke = f"; {SMOKE_SWEEP}" if sweep.provenance.strength == 0 else ""
        self.console.print(f"Pareto front of the sweep (engine, speedup, SSIM, settings), measured on "
                           f"{sweep.provenance.device}{smoke}:")
        for candidate in pareto_front(sweep.candidates):
            self.console.print(f"  {candidate.engine:5} {candidate.speedup:.2f}x  SSIM {candidate.quality.ssim:.3f}  "
                               f"{candidate.params.describe()}")


def unapplied(shown: Task, line: str) -> list[str]:
    """What a follow-up asks that the task already is: dropping an accelerator it lacks, adding
    one it has."""
    from agent.parser import accelerator_mentions

    named, dropped = accelerator_mentions(line)
    current = set(shown.accelerators or ())
    remarks = [f"{name} is not in the task; nothing to drop." for name in ACCELERATORS if name in dropped - current]
    if _ADD.search(line.lower()):
        remarks += [f"{name} is already in the task." for name in ACCELERATORS if name in named & current]
    return remarks


def changes(before, after) -> str:
    """'speedup 2x -> 3x; accelerators DeepCache -> DeepCache+ToMe (measured best quality ...)':
    each field the turn changed, why where the resolver chose it, and the parameters."""
    parts = []
    for name in FIELDS:
        old, new = _value(before.task, name), _value(after.task, name)
        was_assumed, assumed = name in before.assumed, name in after.assumed
        if old != new:
            parts.append(f"{name} {old} -> {new}" + (f" ({after.assumed[name]})" if assumed else ""))
        elif was_assumed != assumed:
            parts.append(f"{name} {new} now {'assumed' if assumed else 'asked'}")
    old, new = before.settings.describe(), after.settings.describe()
    if old != new:
        parts.append(f"parameters {old} -> {new}")
    return "; ".join(parts) or "nothing in the script"


def _value(task: Task, name: str) -> str:
    value = getattr(task, name)
    if value is None:
        return "default" if name == "engine" else "none"
    if name in ("accelerators", "excluded"):
        return "+".join(value) or "none"
    if name == "speedup":
        return f"{value:g}x"
    if name == "knobs":
        return ", ".join(f"{knob}={number:g}" for knob, number in value.items())
    return str(value)
