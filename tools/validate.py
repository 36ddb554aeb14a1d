"""Validate: run a generated script, as a user would, and read its `--benchmark` JSON line.

Two kinds of run, labelled everywhere as what they are:
- `gpu-benchmark`: CUDA and local weights: the real model, whose speedup must reach the target
  within `TARGET_TOLERANCE` (deployment figures);
- `tiny-cpu-smoke`: a tiny random pipeline on the CPU: every line of the script runs, which shows it
  works; its timings are not speed figures.
The script runs in its own process group, which is ended whole when the time limit passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from core.errors import DiffaccelError, MissingDependency
from core.files import cache_dir
from core.pareto import interval_text

# A GPU run passes when its speedup is at least this fraction short of the target at worst.
TARGET_TOLERANCE = 0.03
DEFAULT_TIMEOUT_S = 900.0
SMOKE_LABEL = "tiny CPU smoke run: shows the script works; not a speed figure"


@dataclass
class Validation:
    ok: bool
    kind: Literal["gpu-benchmark", "tiny-cpu-smoke"]
    seconds: float
    report: Optional[dict] = None
    error: str = ""

    def summary(self) -> str:
        if not self.ok:
            return f"the script failed: {self.error}"
        if self.kind == "tiny-cpu-smoke":
            return f"the script ran ({SMOKE_LABEL}; {self.seconds:.1f} s)"
        report = self.report or {}
        low, high = report.get("speedup_interval") or (None, None)
        interval = f" (95% {interval_text(low, high)}x)" if low else ""
        return (f"GPU benchmark: {report.get('speedup', 0):.2f}x{interval}, SSIM {report.get('ssim', 0):.3f} "
                f"({self.seconds:.0f} s)")

    def to_json(self) -> dict:
        return {"ok": self.ok, "kind": self.kind, "seconds": round(self.seconds, 1), "report": self.report,
                "error": self.error or None,
                "note": SMOKE_LABEL if self.kind == "tiny-cpu-smoke" else None}


def missing_dependency(error: ImportError) -> MissingDependency:
    return MissingDependency(
        f"this needs torch and diffusers ({error.name or error} is missing): pip install 'diffaccel[run]'")


def require_run_extra() -> None:
    """Raise MissingDependency, naming the extra to install, where torch or diffusers is missing."""
    import importlib

    for name in ("torch", "diffusers"):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise missing_dependency(error) from None


def tiny_model(model: str) -> Path:
    """A tiny pipeline of `model`'s architecture on disk, built once and reused."""
    return saved_pipeline(model, "tiny")


def saved_pipeline(model: str, size: str) -> Path:
    """A random-initialised pipeline of `model` ('tiny', or 'full' size in float16, built on the GPU
    where there is one) under the cache folder, built once: processes that ask at once wait on a
    lock, and a build is renamed into place whole, so a killed one leaves nothing half-written."""
    require_run_extra()
    import torch
    from filelock import FileLock

    from search.pipelines import write_random

    target = cache_dir() / size / model
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "model_index.json").exists():
            full = size == "full"
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                write_random(Path(tmp) / "pipe", model, size, device="cuda" if full and torch.cuda.is_available()
                             else "cpu", dtype=torch.float16 if full else None)
                os.replace(Path(tmp) / "pipe", target)
    return target


def validate(source: str, model: str, target: Optional[float] = None, model_path: Optional[str] = None,
             timeout: float = DEFAULT_TIMEOUT_S) -> Validation:
    """Run the script: a GPU benchmark with CUDA and local weights, else a tiny CPU smoke run."""
    if model_path is not None and cuda_available():
        result = _run(source, "gpu-benchmark", ["--model-path", str(model_path), "--device", "cuda",
                                                "--benchmark"], timeout)
        if result.ok and target:
            speedup = result.report.get("speedup", 0.0)
            if speedup < (1 - TARGET_TOLERANCE) * target:
                result.ok = False
                result.error = f"measured {speedup:.2f}x, more than {TARGET_TOLERANCE:.0%} short of {target:g}x"
        return result
    return _run(source, "tiny-cpu-smoke", ["--model-path", str(tiny_model(model)), "--device", "cpu",
                                           "--dtype", "float32", "--benchmark", "--runs", "2",
                                           "--max-runs", "2"], timeout)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _run(source: str, kind: str, arguments: list[str], timeout: float) -> Validation:
    if not timeout > 0:
        raise DiffaccelError(f"the validation time limit must be a positive number of seconds, not {timeout}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "pipeline.py"
        script.write_text(source, encoding="utf-8")
        command = [sys.executable, str(script), *arguments, "--output", str(Path(tmp) / "image.png")]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=env, cwd=tmp, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(process)
            return Validation(False, kind, time.monotonic() - started,
                              error=f"timed out after {timeout:.0f} s (set --validate-timeout)")
        seconds = time.monotonic() - started
        if process.returncode != 0:
            return Validation(False, kind, seconds, error=_failure(process.returncode, stderr))
        try:
            report = json.loads(stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return Validation(False, kind, seconds, error="no JSON line on stdout")
        if not (Path(tmp) / "image.png").exists():
            return Validation(False, kind, seconds, report, "no image was saved")
        return Validation(True, kind, seconds, report)


def _end_group(process: subprocess.Popen) -> None:
    """End the script and everything it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def _failure(returncode: int, stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    if "ModuleNotFoundError" in last or "No module named" in last:
        return f"{last}: the script needs diffaccel's run extra: pip install 'diffaccel[run]'"
    return f"exit {returncode}: {last}"
