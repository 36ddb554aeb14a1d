"""`agent search`: one combination, or the whole grid (the old traversal_search.sh)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from core.errors import DiffaccelError, MissingDependency
from core.task import MAX_STEPS, ENGINES, GRID_COMBINATIONS, GRID_STEPS, GRID_TARGETS, MODELS, SAMPLERS, accelerators_from_text


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected numbers like 1.5,2,3") from None
    if not values or any(v <= 1.0 for v in values):
        raise click.BadParameter("targets are speedups above 1.0, e.g. 1.5,2,3")
    return values


def _combination(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("none", ""):
        raise click.BadParameter("the search needs at least one accelerator (DeepCache, T-Gate, ToMe)")
    try:
        accelerators = accelerators_from_text(text)
    except ValueError as error:
        raise click.BadParameter(f"{error}; name accelerators as DeepCache,T-Gate,ToMe") from None
    return accelerators


@click.command()
@click.option("--model", type=click.Choice(MODELS), help="one combination: the model")
@click.option("--sampler", type=click.Choice(SAMPLERS))
@click.option("--steps", type=click.IntRange(1, MAX_STEPS))
@click.option("--accelerators", help="e.g. DeepCache or DeepCache,T-Gate,ToMe")
@click.option("--targets", default=",".join(f"{t:g}" for t in GRID_TARGETS), show_default=True)
@click.option("--grid", is_flag=True, help="all models x samplers x steps x combinations")
@click.option("--models", default=",".join(MODELS), show_default=True, help="with --grid")
@click.option("--samplers", default=",".join(SAMPLERS), show_default=True, help="with --grid")
@click.option("--steps-list", default=",".join(map(str, GRID_STEPS)), show_default=True, help="with --grid")
@click.option("--shard", default=None, help="with --grid: run shard i of n, e.g. 0/4")
@click.option("--force", is_flag=True, help="re-measure what the database already has")
@click.option("--max-minutes", type=float, default=None, help="stop starting sweeps after this long")
@click.option("--weights", type=click.Choice(["real", "random", "tiny"]), default="random", show_default=True,
              help="real weights (--model-path), full-size random weights, or tiny (CPU demos)")
@click.option("--model-path", default=None, help="with --weights real: hub id or local path")
@click.option("--tiny", "tiny", is_flag=True, help="same as --weights tiny")
@click.option("--device", default=None, help="default: cuda if available, else cpu")
@click.option("--dtype", type=click.Choice(["float16", "bfloat16", "float32"]), default=None,
              help="default: float16 on CUDA, float32 on CPU")
@click.option("--prompts", type=click.IntRange(1, 4), default=2, show_default=True,
              help="prompts quality is averaged over (speed is timed on the first)")
@click.option("--min-rounds", type=click.IntRange(2), default=3, show_default=True,
              help="interleaved timed rounds per setting, at least")
@click.option("--max-rounds", type=click.IntRange(2), default=10, show_default=True,
              help="rounds at most, for settings whose interval stays wide")
@click.option("--tolerance", type=click.FloatRange(0.001, 0.5), default=0.03, show_default=True,
              help="stop adding rounds once the 95%% interval's half-width is this fraction of the speedup")
@click.option("--engines", default=None,
              help="eager, graph, or eager,graph (graph needs CUDA); default: both on CUDA and for --plan "
                   "(what a refill measures), eager on the CPU")
@click.option("--gpus", type=click.IntRange(1), default=1, show_default=True,
              help="with --grid: Dask workers on this host, one per GPU; sweeps measured beside another "
                   "worker are kept but marked for re-measuring (scripts measured a median 0.90 of their figures); "
                   "spread over hosts with --scheduler instead")
@click.option("--scheduler", default=None, help="with --grid: address of a running Dask scheduler (several hosts)")
@click.option("--part-size", type=click.IntRange(0), default=0, show_default=True,
              help="measure sweeps of more settings than this in parts, each stored as it finishes "
                   "(for sweeps longer than one sitting); 0: whole sweeps")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar="DIFFACCEL_DB",
              help="where results go (default: this machine's live-search file; the shipped database "
                   "only when named, and never for tiny or CPU figures)")
@click.option("--plan", is_flag=True,
              help="with --grid: list what is left to measure and about how long it takes, measure nothing")
def search(model, sampler, steps, accelerators, targets, grid, models, samplers, steps_list, shard,
           force, max_minutes, weights, model_path, tiny, device, dtype, prompts, min_rounds, max_rounds,
           tolerance, engines, gpus, scheduler, part_size, db_path, plan):
    """Measure accelerator settings and store the best per target speedup.

    \b
    agent search --model SD1.5 --sampler DDIM --steps 25 --accelerators DeepCache
    agent search --grid --weights random --shard 0/2 --max-minutes 9
    agent search --tiny --model SDXL --sampler UniPC --steps 20 --accelerators DeepCache,ToMe
    agent search --grid --db search_params.json --plan
    """
    if plan:  # before torch: planning needs neither it nor a GPU
        if not grid:
            raise click.UsageError("--plan lists what --grid would measure: add --grid")
        planned = _choices(engines or default_engines("cuda"), ENGINES)  # what a refill on CUDA measures
        _print_plan(_grid_items(models, samplers, steps_list), tuple(planned), _shard(shard), force, db_path,
                    max(min_rounds, max_rounds))  # what a run times at least, as below
        return
    try:
        import torch
    except ImportError:
        raise MissingDependency("the search needs torch and diffusers: pip install 'diffaccel[run]'") from None
    from core import db
    from search.engine import SearchConfig, grid_items

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DiffaccelError("--device cuda but CUDA is not available: use --device cpu --tiny")
    if not device.startswith("cuda"):
        torch.set_num_threads(1)  # two threads on small machines make timings erratic
    weights = "tiny" if tiny else weights
    config = SearchConfig(
        weights=weights, model_path=model_path, device=device,
        dtype=dtype or ("float16" if device.startswith("cuda") else "float32"),
        prompts=prompts, min_rounds=min_rounds, max_rounds=max(min_rounds, max_rounds),
        tolerance=tolerance, engines=tuple(_choices(engines or default_engines(device), ENGINES)),
        targets=_floats(targets),
        db_path=db_path, force=force, gpus=gpus, scheduler=scheduler,
        part_size=part_size,
    )
    if "graph" in config.engines and not device.startswith("cuda"):
        raise click.BadParameter("the graph engine needs CUDA: use --engines eager on the CPU",
                                 param_hint="--engines")
    if device == "cpu" and weights != "tiny":
        click.echo("Note: full-size pipelines on the CPU take minutes a run; --tiny is for CPU demos.", err=True)
    if gpus > 1 and not scheduler and weights != "tiny":
        click.echo(f"Note: {gpus} workers share this host: their sweeps are marked so and measured again by a "
                   "later refill with one worker per host (beside another worker, scripts measured a median 0.90 of "
                   "the figures: benchmarks/results/rederive_fastest.txt).", err=True)
    if weights == "tiny":
        click.echo("Note: tiny-model CPU figures show the method works, not deployment speed.", err=True)

    if grid:
        _run_grid(_grid_items(models, samplers, steps_list), config, _shard(shard), force, max_minutes,
                  db.load(config.db_path or db.live_path()))
        return
    if not all((model, sampler, steps, accelerators)):
        raise click.UsageError("give --model, --sampler, --steps and --accelerators, or --grid")
    _run_grid(
        grid_items((model,), (sampler,), (steps,), (_combination(accelerators),)),
        config, (0, 1), True, None, db.load(config.db_path or db.live_path()),
    )


def _grid_items(models: str, samplers: str, steps_list: str):
    from search.engine import grid_items

    return grid_items(models=tuple(_choices(models, MODELS)), samplers=tuple(_choices(samplers, SAMPLERS)),
                      steps=steps_choices(steps_list), combinations=GRID_COMBINATIONS)


def steps_choices(text: str) -> tuple[int, ...]:
    """`--steps-list` as step counts, or a usage error that says what is expected."""
    try:
        steps = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        steps = ()
    if not steps or not all(1 <= n <= MAX_STEPS for n in steps):
        raise click.BadParameter(f"{text!r}: expected step counts from 1 to {MAX_STEPS} like 20,25,50",
                                 param_hint="--steps-list")
    return steps


def _shard(text):
    from search.engine import parse_shard

    try:
        return parse_shard(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--shard") from None


def _print_plan(items, engines, shard, force, db_path, max_rounds) -> None:
    """What `--grid` would measure, each sweep with its estimate (search/engine.py `estimate_seconds`),
    for eager contenders capped at `max_rounds` rounds."""
    from core import db
    from search.engine import estimate_seconds, plan_grid

    path = db_path or db.live_path()
    data = db.load(path)
    grid = plan_grid(items, data, engines, shard, force)
    known, unknown, scaled, gpus = 0.0, 0, 0, set()
    for item in grid.todo:
        estimate = estimate_seconds(item, data, engines, max_rounds)
        if estimate is None:
            unknown += 1
            click.echo(f"{item.label():<45} no estimate")
            continue
        known, gpus = known + estimate.seconds, gpus | set(estimate.devices)
        scaled += bool(estimate.scaled_from)
        click.echo(f"{item.label():<45} ~{estimate.seconds / 60:.1f} min (from {', '.join(estimate.devices)}"
                   + (f"; {estimate.scaled_from}'s sweeps x{estimate.ratio:.2f}, the ratio of their eager step "
                      f"times on {estimate.ratio_device})" if estimate.scaled_from else ")"))
    click.echo(f"{len(grid.todo)} to measure, {grid.skipped} already in the database by the current protocol"
               + (f", {grid.outside_shard} in other shards" if grid.outside_shard else "")
               + f": about {known / 60:.0f} GPU-minutes"
               + (f" ({scaled} sweeps estimated from another model's, scaled by eager step time: likely short "
                  "for a larger model, benchmarks/results/sweep_cost.md)" if scaled else "")
               + (f" and {unknown} sweeps with no estimate (no sweep of this protocol and these engines for "
                  "their model, nor one of another model to scale on a GPU theirs was timed on)" if unknown else "")
               + "; from the seconds of this protocol's sweeps in the database, one GPU each"
               + (f" ({', '.join(sorted(gpus))})" if gpus else "")
               + f". Database: {path}" + ("" if db_path else " (this machine's live-search file; --db names another)")
               + ("" if Path(path).exists() else " (does not exist yet: the whole grid is planned for a new file; "
                  "check the path if you meant an existing one)"))


def default_engines(device: str) -> str:
    """Both engines where CUDA graphs run, as the database ships them; eager elsewhere."""
    return "eager,graph" if device.startswith("cuda") else "eager"


def _choices(text: str, allowed) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    wrong = [c for c in chosen if c not in allowed]
    if wrong:
        raise click.BadParameter(f"{wrong[0]!r} is not one of {', '.join(allowed)}")
    return chosen


def _run_grid(items, config, shard, force, max_minutes, data) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from core import db
    from search.engine import parts_todo, plan_grid, run_grid

    console = Console(stderr=True)
    grid = plan_grid(items, data, config.engines, shard, force)
    grid.todo, notes = parts_todo(grid.todo, config)
    for note in notes:
        console.print(note)
    parts = sum(item.part is not None for item in grid.todo)
    console.print(
        f"{len(grid.todo)} to measure{f' ({parts} of them parts of sweeps)' if parts else ''}, "
        f"{grid.skipped} already in the database"
        + (f", {grid.outside_shard} in other shards" if grid.outside_shard else "")
    )
    deadline = time.monotonic() + max_minutes * 60 if max_minutes else None
    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("search", total=len(grid.todo))

        def start(item):
            progress.update(bar, description=item.label())

        def done(item, seconds):
            progress.advance(bar)
            progress.console.print(f"measured {item.label()} in {seconds:.1f} s")

        run_grid(grid, config, on_start=start, on_done=done, deadline=deadline)
    left = len(grid.todo) - len(grid.done)
    console.print(
        f"{len(grid.stored)} sweeps"
        + (f" ({sum(i.part is not None for i in grid.done)} parts measured)" if parts else "")
        + f" in {time.monotonic() - started:.0f} s on {config.device}, stored in "
        f"{config.db_path or db.live_path()}" + (f"; {left} left for the next run (it resumes)" if left else "")
    )
    for failure in grid.failed:
        console.print(f"[red]failed:[/red] {failure}")
