"""The `agent` command. Each command's docstring is its --help.

Domain errors (DiffaccelError) end as one line on stderr and a non-zero exit; nothing else is
caught, so a bug keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from core.errors import DiffaccelError, MissingDependency, UnsupportedRequest


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
@click.option("--validate", is_flag=True, help="run the script on a tiny CPU pipeline before writing it")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary instead of tables")
@click.option("--live-search/--no-live-search", default=True, show_default=True,
              help="measure a combination the database lacks (needs torch; tiny CPU model without a GPU)")
@db_option
@_with_llm_options
def generate(request, output, model_path, validate, as_json, live_search, db_path, llm, llm_model):
    """Write an accelerated diffusers script for REQUEST.

    Unknown fields are filled in: steps by the model's default, accelerators by the measured
    combination that reaches the target with the best quality, the target by 2.0x.

    \b
    agent generate "make SDXL 2x faster with UniPC"
    agent generate "SD1.5 DDIM 50 steps DeepCache 3x" -o sd15.py --validate
    """
    from agent.agent import Agent
    from agent.codegen import render
    from agent.report import default_filename, generation_json, print_generation

    notices: list[str] = []
    parsed = _parse(request, llm, llm_model, notices.append)

    def announce(resolution) -> bool:
        click.echo(f"No sweep of {resolution.task.describe()} is measured ({resolution.lookup.note()}): "
                   "running a live search...", err=True)
        return True

    def note(step) -> None:
        if not step.ok:
            raise DiffaccelError(f"the live search failed: {step.observation}")
        result = step.observation
        notices.append(f"live search: {result['candidates']} settings on {result['device']} in {result['seconds']} s")
        if result["note"]:
            notices.append(result["note"])

    agent = Agent(db_path=db_path, live_search="ask" if live_search and _can_search() else "never",
                  confirm=announce, on_step=note)
    resolution = agent.resolve(parsed.task, history=[])
    filename = output if output and output != "-" else default_filename(resolution.task)
    source = render(resolution, model_path=model_path, filename=filename)
    validation = None
    if validate:
        from agent.validate import run_script

        validation = run_script(source, resolution.task.model)
    written = output != "-" and (validation is None or validation.ok)
    if written:
        write_atomic(Path(filename), source)
    if as_json:
        click.echo(json.dumps(generation_json(resolution, filename if written else None, validation)))
    else:
        console = _console(stderr=output == "-")
        _echo_notices(notices)
        print_generation(console, resolution, filename if written else None, validation)
    if output == "-" and (validation is None or validation.ok):
        click.echo(source, nl=False)
    if validation is not None and not validation.ok:
        raise_validation(validation)


def _can_search() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("diffusers") is not None


def raise_validation(validation):
    from core.errors import ValidationFailed

    raise ValidationFailed(f"the generated script did not run ({validation.error}); nothing was written")


def write_atomic(path: Path, text: str) -> None:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@cli.command()
@click.argument("request")
@click.option("--json", "as_json", is_flag=True)
@db_option
def lookup(request, as_json, db_path):
    """Look up measured parameters for REQUEST (model, sampler, steps, accelerators, target).

    \b
    agent lookup "SD1.5 DDIM 25 steps DeepCache 2x"
    """
    from tools.lookup import lookup_parameters

    answer = lookup_parameters(request, db_path=db_path)
    if as_json:
        click.echo(json.dumps(answer))
        return
    from agent.report import print_lookup

    print_lookup(_console(), answer)


@cli.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--model", type=click.Choice(["SD1.5", "SD2.1", "SDXL"]), required=True)
def tiny_model(directory, model):
    """Write a tiny random-initialised pipeline of MODEL's architecture to DIRECTORY.

    `from_pretrained(DIRECTORY)` loads it offline; generated scripts run on it with
    --model-path DIRECTORY --device cpu.
    """
    from agent.validate import _missing

    try:
        from search.pipelines import write_tiny
    except ImportError as error:
        raise MissingDependency(_missing(error)) from None
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

    from agent.report import print_scorecard
    from core import db

    data = db.load(db_path)
    with Progress(console=_console(stderr=True), transient=True) as progress:
        task = progress.add_task("benchmark", total=len(seed.prompts()))
        card = seed.run(Path(out), data, validate=validate, progress=lambda _: progress.advance(task))
    print_scorecard(_console(), card, Path(out))
    if card.failures:
        sys.exit(1)


@cli.command()
@click.option("--out", "out_dir", default=".", type=click.Path(file_okay=False), show_default=True,
              help="where scripts are saved")
@click.option("--validate/--no-validate", default=None,
              help="run each script on a tiny CPU pipeline (default: when torch is installed)")
@click.option("--live-search", type=click.Choice(["ask", "always", "never"]), default="ask", show_default=True)
@click.option("--model-path", default=None, help="local weights: on a GPU, validation benchmarks them")
@db_option
@_with_llm_options
def chat(out_dir, validate, live_search, model_path, db_path, llm, llm_model):
    """An interactive session: state a task, then refine it.

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
    validate = _can_search() if validate is None else validate

    def confirm(resolution) -> bool:
        try:
            return console.input(f"{live_search_question(resolution)} (y/N) ").strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            return False

    agent = Agent(db_path=db_path, live_search=live_search, confirm=confirm, validate=validate,
                  model_path=model_path)
    ChatSession(console, agent, llm=llm, llm_model=llm_model, out_dir=Path(out_dir)).run()


from search.cli import search  # noqa: E402  - registered after the group exists

cli.add_command(search)


def main():
    cli(prog_name="agent")


if __name__ == "__main__":
    main()
