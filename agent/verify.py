"""`agent verify`: the product checks itself the way DiffBench checks an agent.

It samples tasks from the grid (seeded, stratified by model), writes each one's script through the
normal path (`Agent.run`), runs the script with `--benchmark` as a user would (on a GPU: weights
from `--model-path`, or full-size random-initialised weights saved once per model), and compares
what the script measured with what the database claimed: a feasible claim passes when the script's
speedup reaches the target within `TARGET_TOLERANCE`; an infeasible one is honest when the script
falls short too. Results append to a JSONL file as they arrive (a rerun skips what is there), and
the report is a table plus a PNG chart. Scripts run on every GPU through search/distributed.py.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from core.task import GRID_COMBINATIONS, GRID_STEPS, GRID_TARGETS, MODELS, SAMPLERS, Task, combination_label
from tools.validate import TARGET_TOLERANCE


@dataclass(frozen=True)
class Check:
    """One sampled task, its script and the database's claim; `model` groups checks per GPU."""

    id: str
    model: str
    sampler: str
    steps: int
    accelerators: tuple[str, ...]
    target: float
    source: str = ""
    claim: Optional[dict] = None

    def label(self) -> str:
        return f"{self.model} {self.sampler} {self.steps} {combination_label(self.accelerators)} {self.target:g}x"


def sample(count: int, seed: int = 0, models=MODELS, samplers=SAMPLERS, steps=GRID_STEPS,
           combinations=GRID_COMBINATIONS, targets=GRID_TARGETS, only=None) -> list[Check]:
    """`count` grid tasks, as evenly spread over the models as `count` allows, reproducible by seed;
    `only`: a set of `core.db.combo_key`s to draw from (e.g. the sweeps a refill has measured)."""
    from core.db import combo_key

    rng = random.Random(seed)
    chosen: list[Check] = []
    for index, model in enumerate(models):
        share = count // len(models) + (index < count % len(models))
        pool = [(s, n, c, t) for s in samplers for n in steps for c in combinations for t in targets
                if only is None or combo_key(model, s, n, c) in only]
        for sampler, n, combination, target in rng.sample(pool, min(share, len(pool))):
            chosen.append(Check(f"{model}|{sampler}|{n}|{'+'.join(combination)}|{target:g}", model, sampler, n,
                                tuple(combination), target))
    return chosen


def combo_key_of(row: dict) -> tuple:
    """A result row's `core.db.combo_key`, from its id 'SD1.5|DDIM|25|DeepCache|4' (`sample`)."""
    from core.db import combo_key

    model, sampler, steps, accelerators, _target = row["id"].split("|")
    return combo_key(model, sampler, int(steps), accelerators.split("+"))


def with_scripts(checks: list[Check], agent) -> list[Check]:
    """Each check with the script `agent generate` writes for it and the claim it makes."""
    done = []
    for check in checks:
        task = Task(model=check.model, sampler=check.sampler, steps=check.steps,
                    accelerators=list(check.accelerators), speedup=check.target)
        outcome = agent.run(task, validate=False)
        answer = outcome.to_json()
        source = answer.get("provenance") or {}
        claim = {"engine": answer["engine"], "status": answer["status"], "match": answer["match"],
                 "measured": answer["measured"], "device": source.get("device"),
                 "protocol_version": source.get("protocol_version")}
        done.append(Check(**{**asdict(check), "source": outcome.source, "claim": claim}))
    return done


def run_check(check: Check, weights: str = "random", model_paths: Optional[dict] = None,
              timeout: float = 900.0, max_runs: Optional[int] = None) -> dict:
    """Run one check's script with --benchmark on this worker's GPU; the script's JSON line.

    weights: 'real' (`model_paths[model]`), 'random' (full size, saved once) or 'tiny' (a CPU smoke
    run of the whole loop: its figures are not speed figures).
    """
    from search.distributed import CONCURRENT_VARIABLE, pin_from_env
    from tools.validate import saved_pipeline

    pin_from_env()  # on a Dask worker: the script inherits the worker's cores and thread count
    # ... and its host lock: it may wait for every other worker's measurement before its own.
    timeout *= int(os.environ.get(CONCURRENT_VARIABLE, "1"))
    if weights == "real":
        weights_dir = (model_paths or {})[check.model]
    else:
        weights_dir = str(saved_pipeline(check.model, "tiny" if weights == "tiny" else "full"))
    if weights == "tiny":
        extra = ["--device", "cpu", "--runs", "2", "--max-runs", "2"]
    else:
        extra = ["--max-runs", str(max_runs)] if max_runs else []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "pipeline.py"
        script.write_text(check.source, encoding="utf-8")
        done = subprocess.run([sys.executable, str(script), "--model-path", weights_dir, "--benchmark",
                               "--output", str(Path(tmp) / "image.png"), *extra],
                              capture_output=True, text=True, timeout=timeout, cwd=tmp,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["no output"]
        return {"error": f"exit {done.returncode}: {tail[0]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def judge(check: Check, measured: dict) -> dict:
    """One result row: the claim, what the script measured, and the verdict."""
    claim = check.claim or {}
    claimed_figures = claim.get("measured") or {}
    claimed = claimed_figures.get("speedup")
    # Both latencies on both sides: a ratio off by a factor shows which of the two moved.
    row = {"id": check.id, "task": check.label(), "model": check.model, "target": check.target,
           "engine": claim.get("engine"), "claim": claim.get("status"), "claimed_speedup": claimed,
           "claimed_speedup_interval": claimed_figures.get("speedup_interval"),
           "claimed_baseline_latency_s": claimed_figures.get("baseline_latency_s"),
           "claimed_latency_s": claimed_figures.get("latency_s"),
           # A speedup holds for the GPU it was measured on: `summary` counts a row of another GPU apart.
           "claimed_device": claim.get("device"), "device": measured.get("gpu"),
           # How each side was estimated: the claim's protocol, the script's estimator (paired, fastest).
           "claimed_protocol": claim.get("protocol_version"),
           **{k: measured.get(k) for k in ("speedup", "speedup_interval", "estimator", "baseline_latency_s",
                                            "latency_s", "ssim", "psnr", "rounds", "first_call_s", "error",
                                            "baseline_latencies_s", "latencies_s")}}
    speedup = measured.get("speedup")
    reached = speedup is not None and speedup >= (1 - TARGET_TOLERANCE) * check.target
    if measured.get("error"):
        row["verdict"] = "script failed"
    elif claim.get("status") == "ok":
        row["verdict"] = "reached" if reached else "missed"
    else:
        row["verdict"] = "honestly infeasible" if not reached else "infeasible claim, but reached"
    row["ratio"] = round(speedup / claimed, 3) if speedup and claimed else None
    return row


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def below_claimed_low(row: dict) -> bool:
    interval, speedup = row.get("claimed_speedup_interval"), row.get("speedup")
    return bool(interval and speedup is not None and speedup < interval[0])


def summary(rows: list[dict]) -> dict:
    """Counts and medians over the rows run on the GPU model their claim was measured on (or where
    either is unknown); the rows of another GPU are judged, but only counted (`on_another_gpu`)."""
    elsewhere = [r for r in rows if other_gpu(r)]
    rows = [r for r in rows if not other_gpu(r)]
    feasible = [r for r in rows if r["claim"] == "ok" and r["verdict"] != "script failed"]
    infeasible = [r for r in rows if r["claim"] != "ok" and r["verdict"] != "script failed"]
    ratios = [r["ratio"] for r in feasible if r["ratio"]]
    ssims = [r["ssim"] for r in feasible if r.get("ssim") is not None]
    return {
        "tasks": len(rows) + len(elsewhere),
        "feasible_claims": len(feasible),
        "reached": sum(r["verdict"] == "reached" for r in feasible),
        "pass_rate": round(sum(r["verdict"] == "reached" for r in feasible) / len(feasible), 3) if feasible else None,
        "infeasible_declared": len(infeasible),
        "infeasible_honest": sum(r["verdict"] == "honestly infeasible" for r in infeasible),
        "script_failed": sum(r["verdict"] == "script failed" for r in rows),
        "median_script_over_database": round(statistics.median(ratios), 3) if ratios else None,
        # The promise behind a pick: how many scripts measured below the claim's lower bound (for a
        # graph figure, a prediction interval from protocol 4 on, at most 2.5% of runs should).
        "below_claimed_low": sum(below_claimed_low(r) for r in feasible),
        "median_ssim": round(statistics.median(ssims), 4) if ssims else None,
        "on_another_gpu": len(elsewhere),
    }


def other_gpu(row: dict) -> bool:
    """Whether the script ran on another GPU model than the claim was measured on (both known)."""
    claimed, ran = row.get("claimed_device"), row.get("device")
    return bool(claimed and ran and claimed != ran)


def served(database) -> dict:
    """Each `combo_key`'s sweep as `Database.find_sweep` serves it (the first of its key): the one a
    generated script's claim comes from."""
    first: dict = {}
    for sweep in database.sweeps:
        first.setdefault(sweep.combo_key, sweep)
    return first


def measured_on(database, gpu: str) -> set:
    """The `combo_key`s whose served sweep was measured on a GPU whose name contains `gpu` (any case)."""
    return {key for key, sweep in served(database).items() if gpu.lower() in (sweep.provenance.device or "").lower()}


def refilled(database) -> set:
    """The `combo_key`s whose served sweep the current protocol measured (`by_current_protocol`)."""
    from search.measure import by_current_protocol

    return {key for key, sweep in served(database).items() if by_current_protocol(sweep.provenance)}


def chart(rows: list[dict], path: Path) -> None:
    """Measured against claimed speedup, one point a task, with the y = x line and each target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for verdict, colour in (("reached", "tab:green"), ("missed", "tab:red"),
                            ("honestly infeasible", "tab:gray"), ("infeasible claim, but reached", "tab:orange")):
        points = [(r["claimed_speedup"], r["speedup"]) for r in rows
                  if r["verdict"] == verdict and r["claimed_speedup"] and r["speedup"]]
        if points:
            axes.scatter(*zip(*points), label=f"{verdict} ({len(points)})", color=colour, s=18)
    asked = [(r["claimed_speedup"], r["target"]) for r in rows if r["claimed_speedup"] and r["speedup"]]
    if asked:  # a task is reached when its point stands on or above its own target's tick
        axes.scatter(*zip(*asked), marker="_", s=160, color="black", linewidths=1.2, label="asked target")
    top = max([r["speedup"] or 0 for r in rows] + [r["claimed_speedup"] or 0 for r in rows] + [2])
    axes.plot([1, top], [1, top], color="black", linewidth=0.8, label="script = database")
    axes.set_xlabel("database's speedup (claimed)")
    axes.set_ylabel("script's --benchmark speedup (measured)")
    axes.set_title("agent verify: generated scripts re-run")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))  # outside: no point hidden
    figure.tight_layout()
    figure.savefig(path, dpi=120)
