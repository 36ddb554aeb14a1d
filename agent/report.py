"""What the user sees: one printer for a resolution (task, parameters per engine, figures,
warnings) and what a run added (notes, validation, the file written)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.markup import escape
from rich.table import Table

from core.task import Task, combination_label
from tools.render import figure_text, graph_basis


def task_table(task: Task, sources: Optional[dict] = None, assumed: Optional[dict] = None) -> Table:
    table = Table(title="Task", show_header=True, header_style="bold")
    table.add_column("field")
    table.add_column("value")
    table.add_column("from", style="dim")
    for name, value in task.as_json().items():
        if name in ("accelerators", "excluded") and value is not None:
            shown = combination_label(value)
        elif name == "speedup" and value is not None:
            shown = f"{value:g}x"
        else:
            shown = "?" if value is None else str(value)
        origin = (assumed or {}).get(name) or (sources or {}).get(name) or ("asked" if value is not None else "unknown")
        table.add_row(name, shown, origin)
    return table


def parameter_table(resolution) -> Table:
    table = Table(title="Parameters", show_header=True, header_style="bold")
    table.add_column("engine")
    table.add_column("settings")
    table.add_column("measured")
    for name, choice in resolution.choices.items():
        marker = " (default)" if name == resolution.engine and len(resolution.choices) > 1 else ""
        shown = figure_text(choice, resolution.task.speedup) if resolution.task.accelerators else "the unaccelerated pipeline"
        table.add_row(name + marker, choice.settings.describe(), shown)
    return table


def print_resolution(console, resolution, sources: Optional[dict] = None) -> None:
    console.print(task_table(resolution.task, sources=sources, assumed=resolution.assumed))
    console.print(parameter_table(resolution))
    found = resolution.lookup
    if found is not None:
        which = f" ({resolution.engine} engine)" if len(resolution.choices) > 1 else ""
        console.print(f"Lookup{which}: {found.note()}")
    source = resolution.provenance
    if source is not None and source.device:
        console.print(f"Measured on: {source.device}, {source.dtype}, {source.resolution} px, "
                      f"{source.weights} weights" + (", quality a proxy" if source.weights != "real" else ""))
    basis = graph_basis(resolution)
    if basis:
        console.print(basis)
    for warning in resolution.warnings:
        console.print(f"[yellow]Warning:[/yellow] {escape(warning)}")


def print_outcome(console, outcome, written: Optional[str], sources: Optional[dict] = None) -> None:
    print_resolution(console, outcome.resolution, sources)
    for note in outcome.notes:
        console.print(f"Note: {escape(note)}")
    if outcome.validation is not None:
        colour = "green" if outcome.validation.ok else "red"
        console.print(f"[{colour}]Validation:[/{colour}] {escape(outcome.validation.summary())}")
    if written:
        console.print(f"Wrote [bold]{escape(str(written))}[/bold]; run it with: python {escape(str(written))} --help")


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
        table.add_row("script runs (tiny CPU smoke run)", str(card.validated), str(card.validation_run))
    console.print(table)
    console.print(f"Wrote {out / 'gen_4_category.json'}, {out / 'anno_4_category.json'} and {out / 'gen_code'}/")
    for failure in card.failures[:20]:
        console.print(f"[red]{escape(str(failure))}[/red]")
