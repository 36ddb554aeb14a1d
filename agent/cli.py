"""The `agent` command. Each command's docstring is its --help.

Domain errors (DiffaccelError) end as one line on stderr and a non-zero exit; nothing else is
caught, so a bug keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from core.errors import DiffaccelError, MissingDependency, UnsupportedRequest, ValidationFailed
from core.task import GRID_STEPS, MODELS, SAMPLERS
from core.files import save_user_file


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DiffaccelError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    envvar="DIFFACCEL_DB",
    help="parameter database (default: the shipped search_params.json)",
)


@click.group(cls=_Group)
@click.version_option(package_name="diffaccel")
def cli():
    """diffaccel: faster Stable Diffusion without retraining.

    \b
    agent generate "make SDXL 2x faster with UniPC"
    agent parse --json "SD1.5, DDIM, 50 steps, DeepCache and ToMe, 2.5x"
    agent lookup "SD2.1 UniPC 25 steps DeepCache 3x"
    agent search --model SD1.5 --sampler DDIM --steps 25 --accelerators DeepCache
    """


def _parse(text: str, llm=None, llm_model=None, notice=None):
    from agent.extract import extract

    return extract(text, llm=llm, llm_model=llm_model, notice=notice)


llm_options = [
    click.option("--llm", envvar="DIFFACCEL_LLM", default=None,
                 help="OpenAI-compatible base URL, 'local' (bundled SmolLM2), 'openai' "
                      "(OPENAI_BASE_URL/OPENAI_API_KEY), or 'rules' (default: rules)"),
    click.option("--llm-model", envvar="DIFFACCEL_LLM_MODEL", default=None, help="model name for --llm"),
]


def _with_llm_options(fn):
    for option in reversed(llm_options):
        fn = option(fn)
    return fn


@cli.command()
@click.argument("request")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per request")
@_with_llm_options
def parse(request, as_json, llm, llm_model):
    """Parse a request into a task. REQUEST '-' reads one request a line from stdin.

    \b
    agent parse "make SDXL 2x faster with UniPC"
    printf 'SD1.5 ddim 50 steps 2x\\nFLUX 3x\\n' | agent parse --json -
    """
    notices: list[str] = []
    if request == "-":
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                result = _parse(line.strip(), llm, llm_model, notices.append)
                click.echo(json.dumps(result.as_json(with_sources=llm not in (None, "rules"))))
            except UnsupportedRequest as error:
                click.echo(json.dumps({"error": str(error)}))
        _echo_notices(notices)
        return
    result = _parse(request, llm, llm_model, notices.append)
    _echo_notices(notices)
    if as_json:
        click.echo(json.dumps(result.as_json(with_sources=llm not in (None, "rules"))))
    else:
        from agent.report import task_table

        _console().print(task_table(result.task, sources=result.sources))


def _echo_notices(notices):
    for notice in dict.fromkeys(notices):
        click.echo(f"Note: {notice}", err=True)


@cli.command()
@click.argument("request")
@click.option("-o", "--output", "output", default=None,
              help="script path; '-' prints it (default: a name made from the task)")
@click.option("--model-path", default=None, help="weights the script loads by default (hub id or local path)")
@click.option("--validate", is_flag=True,
              help="run the script before writing it: a GPU benchmark with CUDA and local --model-path "
                   "weights, else a tiny CPU smoke run")
@click.option("--validate-timeout", type=click.FloatRange(min=1), default=900, show_default=True,
              help="seconds the validation run may take")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary instead of tables")
@click.option("--live-search/--no-live-search", default=True, show_default=True,
              help="measure a combination the database lacks (needs torch; tiny model without a GPU)")
@click.option("--search-budget", type=click.FloatRange(min=1), default=300, show_default=True,
              help="seconds a live search may take; a longer one is refused with the command that runs it")
@db_option
@_with_llm_options
def generate(request, output, model_path, validate, validate_timeout, as_json, live_search, search_budget,
             db_path, llm, llm_model):
    """Write an accelerated diffusers script for REQUEST.

    Unknown fields are filled in: steps by the model's default, accelerators by the measured
    combination that reaches the target with the best quality, the target by 2.0x.

    \b
    agent generate "make SDXL 2x faster with UniPC"
    agent generate "SD1.5 DDIM 50 steps DeepCache 3x" -o sd15.py --validate
    """
    from agent.agent import Agent
    from agent.report import print_outcome

    if output and output != "-" and _is_stdout(output):
        output = "-"  # /dev/stdout, /proc/self/fd/1: the summary must not follow the script there
    if as_json and output == "-":
        raise click.UsageError("--json and -o - both print to standard output: write the script to a file "
                               "with -o FILE (the JSON names it), or leave out --json")
    notices: list[str] = []
    parsed = _parse(request, llm, llm_model, notices.append)
    console = _console(stderr=output == "-" or as_json)

    def announce(resolution) -> bool:
        console.print(f"No sweep of {resolution.task.describe()} is measured ({resolution.lookup.note()}).")
        return True

    agent = Agent(db_path=db_path, live_search="ask" if live_search and _can_search() else "never",
                  confirm=announce, validate=validate, model_path=model_path, search_budget_s=search_budget,
                  validate_timeout_s=validate_timeout, say=console.print)
    outcome = agent.run(parsed.task, filename=output if output and output != "-" else None)
    written = outcome.filename if output != "-" and outcome.ok else None
    if written:
        save_user_file(written, outcome.source)
    if as_json:
        click.echo(json.dumps(outcome.to_json(written)))
    else:
        _echo_notices(notices)
        print_outcome(console, outcome, written, parsed.sources if llm not in (None, "rules") else None)
    if output == "-" and outcome.ok:
        click.echo(outcome.source, nl=False)
    if not outcome.ok:
        raise ValidationFailed(f"the generated script did not pass validation ({outcome.validation.error}); "
                               "nothing was written")


def _is_stdout(path: str) -> bool:
    import os

    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except (OSError, ValueError):
        return False


def _can_search() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("diffusers") is not None


@cli.command()
@click.argument("request")
@click.option("--json", "as_json", is_flag=True)
@db_option
def lookup(request, as_json, db_path):
    """Look up measured parameters for REQUEST (model, sampler, steps, accelerators, target).

    \b
    agent lookup "SD1.5 DDIM 25 steps DeepCache 2x"
    """
    from core import db
    from tools.lookup import lookup_json, resolve

    resolution = resolve(_parse(request).task, db.load_with_live(db_path))
    if as_json:
        click.echo(json.dumps(lookup_json(resolution)))
        return
    from agent.report import print_resolution

    print_resolution(_console(), resolution)


@cli.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--model", type=click.Choice(["SD1.5", "SD2.1", "SDXL"]), required=True)
def tiny_model(directory, model):
    """Write a tiny random-initialised pipeline of MODEL's architecture to DIRECTORY.

    `from_pretrained(DIRECTORY)` loads it offline; generated scripts run on it with
    --model-path DIRECTORY --device cpu.
    """
    from search.pipelines import write_tiny
    from tools.validate import require_run_extra

    require_run_extra()
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        raise DiffaccelError(f"{target} exists and is not empty: choose a new directory")
    write_tiny(target, model)
    click.echo(f"wrote a tiny {model} pipeline to {target}")


@cli.command()
@click.option("--out", default="bench_out", type=click.Path(file_okay=False), show_default=True)
@click.option("--validate", is_flag=True, help="run one script per model x sampler x combination")
@click.option("--paraphrases", "corpus", is_flag=False, flag_value="", default=None,
              help="score understanding on the paraphrase corpus (default tests/paraphrases.jsonl) instead")
@click.option("--sample", type=int, default=None, help="with --paraphrases: score every Nth request only")
@db_option
@_with_llm_options
def bench(out, validate, corpus, sample, db_path, llm, llm_model):
    """Run the seed benchmark: 1134 prompts (ids 192..1325), their scripts and a scorecard.

    \b
    agent bench --paraphrases                  # rule-based accuracy by request class
    agent bench --paraphrases --llm local      # the same for the rules and for the local LLM
    """
    from rich.progress import Progress

    from agent import bench as seed

    if corpus is not None:
        items = seed.paraphrases(corpus or None)[:: sample or 1]
        backends = ["rules"] + ([llm] if llm not in (None, "rules") else [])
        for backend in backends:
            with Progress(console=_console(stderr=True), transient=True) as progress:
                task = progress.add_task(backend, total=len(items))
                accuracy = seed.paraphrase_accuracy(
                    lambda text: _parse(text, backend, llm_model).task, items,
                    progress=lambda _: progress.advance(task))
            click.echo(f"{backend}: {accuracy.right}/{accuracy.total} "
                       f"({100 * accuracy.right / accuracy.total:.1f}%)")
            for kind, (right, total) in accuracy.by_class.items():
                click.echo(f"  {kind:22} {right:4}/{total}")
        return

    from agent.agent import Agent
    from agent.report import print_scorecard

    agent = Agent(db_path=db_path, live_search="never")
    with Progress(console=_console(stderr=True), transient=True) as progress:
        task = progress.add_task("benchmark", total=len(seed.prompts()))
        card = seed.run(Path(out), agent, validate=validate, progress=lambda _: progress.advance(task))
    print_scorecard(_console(), card, Path(out))
    if card.failures:
        sys.exit(1)


@cli.command()
@click.option("--out", "out_dir", default=".", type=click.Path(file_okay=False), show_default=True,
              help="where the session's script is saved")
@click.option("--validate/--no-validate", default=False, show_default=True,
              help="run the script after every turn (a tiny CPU smoke run, ~20 s); /validate runs it once")
@click.option("--save-each", is_flag=True, help="keep every version under its own name, not one chat_pipeline.py")
@click.option("--live-search", type=click.Choice(["ask", "always", "never"]), default="ask", show_default=True)
@click.option("--model-path", default=None, help="local weights: on a GPU, validation benchmarks them")
@db_option
@_with_llm_options
def chat(out_dir, validate, save_each, live_search, model_path, db_path, llm, llm_model):
    """An interactive session: state a task, then refine it.

    Each turn shows the task (what was asked, what assumed), the parameters and what the edit
    changed, and rewrites OUT/chat_pipeline.py. /show prints the script, /save FILE keeps a copy,
    /validate runs it.

    \b
    you> make SDXL 2x faster with UniPC
    you> now 3x
    you> drop ToMe
    you> why these parameters?
    you> /save sdxl.py
    """
    from agent.agent import Agent, live_search_question
    from agent.chat import ChatSession

    console = _console()

    def confirm(resolution) -> bool:
        try:
            return console.input(f"{live_search_question(resolution)} (y/N) ").strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            return False

    agent = Agent(db_path=db_path, live_search=live_search, confirm=confirm, model_path=model_path)
    ChatSession(console, agent, llm=llm, llm_model=llm_model, out_dir=Path(out_dir), validate_each=validate,
                save_each=save_each).run()


@cli.command()
@click.option("--tasks", "count", type=click.IntRange(1), default=60, show_default=True,
              help="tasks sampled from the grid, stratified by model")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--models", default=",".join(MODELS), show_default=True)
@click.option("--samplers", default=",".join(SAMPLERS), show_default=True)
@click.option("--steps-list", default=",".join(map(str, GRID_STEPS)), show_default=True)
@click.option("--weights", type=click.Choice(["random", "real", "tiny"]), default="random", show_default=True,
              help="full-size random weights (GPU), real ones (--model-path MODEL=DIR), or tiny (CPU smoke run)")
@click.option("--model-path", "model_paths", multiple=True, help="with --weights real: MODEL=DIR, once per model")
@click.option("--out", default="benchmarks/results/verify.jsonl", show_default=True,
              type=click.Path(dir_okay=False), help="results, one JSON line a task; a rerun skips what is there")
@click.option("--gpus", type=click.IntRange(1), default=None, help="worker processes (default: one per GPU)")
@click.option("--scheduler", default=None, help="address of a running Dask scheduler (several hosts)")
@click.option("--max-minutes", type=click.FloatRange(min=0.1), default=None, help="start no script after this long")
@click.option("--max-runs", type=click.IntRange(3), default=None,
              help="each script's --max-runs (timed rounds at most, and a graph pipeline's rounds; the script's "
                   "default: 10, which graph claims are predicted for; tiny runs use 2)")
@click.option("--refilled-only", is_flag=True,
              help="sample only combinations whose served sweep the current protocol measured, "
                   "with the host to itself")
@click.option("--measured-on", "measured_gpu", default=None, metavar="GPU",
              help="sample only combinations measured on a GPU whose name contains this, e.g. H200")
@db_option
def verify(count, seed, models, samplers, steps_list, weights, model_paths, out, gpus, scheduler, max_minutes,
           max_runs, refilled_only, measured_gpu, db_path):
    """Check the product: generate scripts for sampled grid tasks, run them, compare with the database.

    \b
    agent verify --tasks 60 --out benchmarks/results/verify_h100.jsonl      # on a GPU host
    agent verify --tasks 4 --weights tiny --gpus 2 --out /tmp/v.jsonl       # the loop, on a CPU
    """
    import importlib.util
    import time
    from functools import partial

    from rich.markup import escape

    from agent import verify as check
    from agent.agent import Agent
    from search.cli import _choices, steps_choices
    from search.distributed import run_on_cluster
    from tools.validate import cuda_available, require_run_extra

    paths = dict(item.split("=", 1) for item in model_paths)
    if measured_gpu is not None and not measured_gpu.strip():
        raise click.BadParameter("name a GPU, e.g. H200 or 'H100 80GB'", param_hint="--measured-on")
    only = None
    if refilled_only or measured_gpu:
        from core import db

        database = db.load_with_live(db_path)
        only = set(check.served(database))
        if refilled_only:
            only &= check.refilled(database)
        if measured_gpu:
            only &= check.measured_on(database, measured_gpu.strip())
    checks = check.sample(count, seed, _choices(models, MODELS), _choices(samplers, SAMPLERS),
                          steps_choices(steps_list), only=only)
    if not checks:
        which = " and ".join(filter(None, ["by the current protocol (the host to itself)" if refilled_only else "",
                                           f"on a GPU named like {measured_gpu!r}" if measured_gpu else ""]))
        raise DiffaccelError(f"no grid task to sample: no sweep of these models, samplers and steps was "
                             f"measured {which}; run `agent search --grid` there first, or widen "
                             "--models/--samplers/--steps-list")
    if weights == "real" and not {c.model for c in checks} <= set(paths):
        raise DiffaccelError("--weights real needs --model-path MODEL=DIR for every model checked, "
                             f"e.g. --model-path SDXL=/models/sdxl (missing: {sorted({c.model for c in checks} - set(paths))})")
    require_run_extra()
    if weights != "tiny" and scheduler is None and not cuda_available():
        raise DiffaccelError(f"--weights {weights} runs full-size pipelines and needs a CUDA GPU, which this "
                             "machine lacks: on a CPU, --weights tiny runs the loop as a smoke test "
                             "(its figures are not speed figures)")
    if not all(importlib.util.find_spec(name) for name in ("distributed", "matplotlib")):
        raise MissingDependency("agent verify runs its scripts on Dask workers and draws a chart: "
                                "pip install 'diffaccel[dist]'")
    out = Path(out)
    done = {row["id"] for row in check.load_results(out)}
    todo = check.with_scripts([c for c in checks if c.id not in done], Agent(db_path=db_path, live_search="never"))
    console = _console(stderr=True)
    console.print(f"{len(todo)} scripts to run, {len(checks) - len(todo)} already in {out}")

    def record(item, measured) -> None:
        row = check.judge(item, measured)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        console.print(f"{row['verdict']:>30}  {row['task']}: claimed {row['claimed_speedup']}, measured {row['speedup']}")

    deadline = time.monotonic() + max_minutes * 60 if max_minutes else None
    report = run_on_cluster(todo, partial(check.run_check, weights=weights, model_paths=paths,
                                          max_runs=max_runs), record,
                            gpus=gpus, scheduler_address=scheduler, deadline=deadline)
    for failure in report.failed:
        console.print(f"[red]failed:[/red] {failure.item.label()}: {escape(str(failure.reason))}")
    rows = [row for row in check.load_results(out) if row["id"] in {c.id for c in checks}]
    click.echo(json.dumps(check.summary(rows), indent=1))
    if rows:
        check.chart(rows, out.with_suffix(".png"))
        click.echo(f"results: {out}; chart: {out.with_suffix('.png')}")


from search.cli import search  # noqa: E402  - registered after the group exists

cli.add_command(search)


def main():
    cli(prog_name="agent")


if __name__ == "__main__":
    main()
