"""What the user sees: rich tables for tasks, parameters, provenance and scorecards."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.table import Table

from core.task import Task, combination_label


def default_filename(task: Task) -> str:
    parts = [task.model, task.sampler, f"{task.steps}steps", combination_label(task.accelerators)]
    if task.accelerators:
        parts.append(f"{task.speedup:g}x")
    name = "_".join(parts).lower().replace("+", "_").replace(".", "").replace("-", "")
    return f"{name}.py"


def task_table(task: Task, sources: Optional[dict] = None, assumed: Optional[dict] = None) -> Table:
    table = Table(title="Task", show_header=True, header_style="bold")
    table.add_column("field")
    table.add_column("value")
    table.add_column("from", style="dim")
    values = task.model_dump()
    for name, value in values.items():
        if name == "accelerators" and value is not None:
            shown = combination_label(value)
        elif name == "speedup" and value is not None:
            shown = f"{value:g}x"
        else:
            shown = "?" if value is None else str(value)
        origin = (assumed or {}).get(name) or (sources or {}).get(name, "" if value is not None else "unknown")
        table.add_row(name, shown, origin)
    return table


def parameter_table(resolution) -> Table:
    table = Table(title="Parameters", show_header=True, header_style="bold")
    table.add_column("accelerator")
    table.add_column("settings")
    settings = resolution.plan.settings.to_json()
    if not settings:
        table.add_row("none", "the unaccelerated pipeline")
    for name, params in settings.items():
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in params.items()))
    return table


def print_generation(console, resolution, filename: Optional[str], validation=None) -> None:
    console.print(task_table(resolution.task, assumed=resolution.assumed))
    console.print(parameter_table(resolution))
    from agent.codegen import provenance_lines

    for line in provenance_lines(resolution):
        console.print(line)
    for warning in resolution.warnings:
        console.print(f"[yellow]Warning:[/yellow] {warning}")
    if validation is not None:
        colour = "green" if validation.ok else "red"
        console.print(f"[{colour}]Validation:[/{colour}] {validation.summary()}")
    if filename:
        console.print(f"Wrote [bold]{filename}[/bold]; run it with: python {filename} --help")


def generation_json(resolution, filename: Optional[str], validation=None) -> dict:
    from tools.lookup import lookup_answer

    answer = lookup_answer(resolution)
    answer["script"] = filename
    if validation is not None:
        answer["validation"] = {
            "ok": validation.ok,
            "seconds": round(validation.seconds, 2),
            "report": validation.report,
            "error": validation.error or None,
        }
    return answer


def print_lookup(console, answer: dict) -> None:
    console.print(task_table(Task(**answer["task"]), assumed=answer["assumed"]))
    console.print(f"Match: {answer['match']} ({answer['note']})")
    if answer["params"]:
        console.print(f"Status: {answer['status']}; parameters: {answer['params']}")
    measured = answer.get("measured")
    if measured:
        console.print(
            f"Measured: {measured['speedup']:.2f}x, "
            + ", ".join(f"{k} {v}" for k, v in measured["quality"].items())
        )
    source = answer.get("provenance") or {}
    if source:
        console.print(
            "Provenance: "
            + ", ".join(f"{k} {source[k]}" for k in ("device", "dtype", "resolution", "weights", "date") if k in source)
        )
    for warning in answer["warnings"]:
        console.print(f"[yellow]Warning:[/yellow] {warning}")


def print_scorecard(console, card, out: Path) -> None:
    table = Table(title=f"Seed benchmark ({card.total} prompts)", header_style="bold")
    table.add_column("check")
    table.add_column("passed", justify="right")
    table.add_column("of", justify="right")
    table.add_row("parsed correctly", str(card.parsed), str(card.total))
    table.add_row("script compiles", str(card.compiled), str(card.total))
    table.add_row("parameters measured", str(card.measured), str(card.total))
    table.add_row("target reached (measured)", str(card.feasible), str(card.total))
    if card.validation_run:
        table.add_row("script runs (tiny model)", str(card.validated), str(card.validation_run))
    console.print(table)
    console.print(f"Wrote {out / 'gen_4_category.json'}, {out / 'anno_4_category.json'} and {out / 'gen_code'}/")
    for failure in card.failures[:20]:
        console.print(f"[red]{failure}[/red]")
