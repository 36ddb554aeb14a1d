"""The seed benchmark: the original tool's category-4 prompt set (ids 192..1325) and a scorecard."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.task import GRID_STEPS, GRID_TARGETS, MODELS, Task

BENCH_SAMPLERS = ("DDIM", "DPM-Solver++", "UniPCMultistepScheduler")
BENCH_ACCELERATORS = (
    ("DeepCache", ["DeepCache"]),
    ("T-Gate", ["T-Gate"]),
    ("ToMe", ["ToMe"]),
    ("DeepCache and ToMe", ["DeepCache", "ToMe"]),
    ("DeepCache and T-Gate", ["DeepCache", "T-Gate"]),
    ("DeepCache, T-Gate, and ToMe", ["DeepCache", "T-Gate", "ToMe"]),
)
FIRST_ID = 192


def prompts() -> list[tuple[str, str, Task]]:
    """(prompt_id, prompt text, expected Task) in the original loop order."""
    items = []
    for model in MODELS:
        for sampler in BENCH_SAMPLERS:
            for steps in GRID_STEPS:
                for phrase, accelerators in BENCH_ACCELERATORS:
                    for x in GRID_TARGETS:
                        text = (
                            f"Generate a {model} pipeline using the {sampler} sampler with {steps} "
                            f"steps, accelerated by {phrase} with {x}x speedup"
                        )
                        expected = Task(
                            model=model,
                            sampler="UniPC" if sampler.startswith("UniPC") else sampler,
                            steps=steps,
                            accelerators=accelerators,
                            speedup=x,
                        )
                        items.append((str(FIRST_ID + len(items)), text, expected))
    return items


def write_index_files(out: Path) -> tuple[Path, Path]:
    """gen_4_category.json and anno_4_category.json exactly as the original tool wrote them."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, field_name, prefix in (
        ("gen_4_category.json", "path_to_gen_code", "gen_code"),
        ("anno_4_category.json", "path_to_gt_code", "gt_code"),
    ):
        data = [
            {"prompt_id": pid, "category": 4, "prompt_context": text, field_name: f"{prefix}/{pid}.py"}
            for pid, text, _ in prompts()
        ]
        path = out / name
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        files.append(path)
    return files[0], files[1]


@dataclass
class Scorecard:
    total: int = 0
    parsed: int = 0
    compiled: int = 0
    measured: int = 0
    feasible: int = 0
    validated: int = 0
    validation_run: int = 0
    failures: list[str] = field(default_factory=list)


def run(out: Path, agent, validate: bool = False, progress=None) -> Scorecard:
    """Parse every benchmark prompt and write its script (through `Agent.run`) to out/gen_code/<id>.py.

    With `validate`, one script per (model, sampler, accelerators) runs on a tiny pipeline: the
    scripts of one such group differ only in numbers, so this runs every code path the benchmark has.
    """
    from agent.agent import validate_script
    from agent.parser import parse
    from core.errors import UnsupportedRequest

    write_index_files(out)
    code_dir = out / "gen_code"
    code_dir.mkdir(parents=True, exist_ok=True)
    card = Scorecard()
    validated_groups: set[tuple] = set()
    for pid, text, expected in prompts():
        card.total += 1
        try:
            task = parse(text)
        except UnsupportedRequest as error:
            card.failures.append(f"{pid}: refused: {error}")
            continue
        if task == expected:
            card.parsed += 1
        else:
            card.failures.append(f"{pid}: parsed as {task.describe()}")
        outcome = agent.run(task, filename=f"{pid}.py", validate=False)
        try:
            compile(outcome.source, f"{pid}.py", "exec")
            card.compiled += 1
        except SyntaxError as error:
            card.failures.append(f"{pid}: does not compile: {error}")
        found = outcome.resolution.lookup
        if found is not None and found.match in ("exact", "from-sweep"):
            card.measured += 1
            card.feasible += found.feasible
        (code_dir / f"{pid}.py").write_text(outcome.source, encoding="utf-8")
        group = (task.model, task.sampler, tuple(task.accelerators))
        if validate and group not in validated_groups:
            validated_groups.add(group)
            card.validation_run += 1
            result = validate_script(outcome.source, outcome.resolution, None)
            card.validated += result.ok
            if not result.ok:
                card.failures.append(f"{pid}: {result.summary()}")
        if progress:
            progress(pid)
    return card


# -- the paraphrase corpus: free-form requests and what each one means ------------------------------

PARAPHRASES = Path(__file__).resolve().parent.parent / "tests" / "paraphrases.jsonl"


def paraphrases(path: Path | None = None) -> list[dict]:
    """The corpus: {'class', 'text', 'expected'} per line; expected is a Task or {'refuse': substring}."""
    from core.errors import DiffaccelError

    path = Path(path or PARAPHRASES)
    if not path.exists():
        raise DiffaccelError(f"no paraphrase corpus at {path}: run from a source checkout, or pass its path")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def judge(understand, item: dict) -> bool:
    """Did `understand` (text -> Task) answer what the corpus expects: the task, or a refusal?"""
    from core.errors import UnsupportedRequest

    expected = item["expected"]
    try:
        task = understand(item["text"])
    except UnsupportedRequest as error:
        return "refuse" in expected and expected["refuse"].lower() in str(error).lower()
    return "refuse" not in expected and task.as_json() == expected


@dataclass
class Accuracy:
    """Right answers by corpus class, and the requests answered wrongly."""

    by_class: dict[str, list[int]] = field(default_factory=dict)  # class -> [right, total]
    wrong: list[str] = field(default_factory=list)

    @property
    def right(self) -> int:
        return sum(right for right, _ in self.by_class.values())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.by_class.values())


def paraphrase_accuracy(understand, items: list[dict], progress=None) -> Accuracy:
    """Score `understand` (text -> Task, raising UnsupportedRequest to refuse) on corpus items."""
    accuracy = Accuracy()
    for item in items:
        counts = accuracy.by_class.setdefault(item["class"], [0, 0])
        ok = judge(understand, item)
        counts[0] += ok
        counts[1] += 1
        if not ok:
            accuracy.wrong.append(item["text"])
        if progress:
            progress(item)
    return accuracy
