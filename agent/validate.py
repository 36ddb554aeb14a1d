"""Validation by execution: run a generated script on a tiny random pipeline, on the CPU.

The script runs in its own process, as a user would run it, with `--benchmark`, so every line of it
(loading, scheduler, accelerators, generation, timing, metrics) executes. Its JSON line comes back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core.errors import MissingDependency


@dataclass
class ValidationResult:
    ok: bool
    seconds: float
    report: Optional[dict] = None
    error: str = ""

    def summary(self) -> str:
        if not self.ok:
            return f"script failed: {self.error}"
        figures = ", ".join(f"{k} {v}" for k, v in (self.report or {}).items() if k in ("speedup", "ssim", "psnr"))
        return f"script ran ({figures}; {self.seconds:.1f} s)"


def cache_dir() -> Path:
    root = os.environ.get("DIFFACCEL_CACHE") or Path.home() / ".cache" / "diffaccel"
    return Path(root)


def tiny_model(model: str) -> Path:
    """A tiny pipeline of `model`'s architecture on disk, built once and reused."""
    try:
        from search.pipelines import write_tiny
    except ImportError as error:  # pragma: no cover - depends on the install
        raise MissingDependency(_missing(error)) from None
    target = cache_dir() / "tiny" / model
    if (target / "model_index.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            write_tiny(Path(tmp) / "pipe", model)
        except ImportError as error:
            raise MissingDependency(_missing(error)) from None
        try:
            os.replace(Path(tmp) / "pipe", target)
        except OSError:  # another process won the race: its copy is as good
            pass
    return target


def _missing(error: ImportError) -> str:
    return (
        f"validation needs torch and diffusers ({error.name or error} is missing): "
        "pip install 'diffaccel[run]'"
    )


def run_script(source: str, model: str, timeout: float = 900, model_path: Path | None = None) -> ValidationResult:
    """Smoke run: the script with --benchmark on a tiny pipeline of `model`, on the CPU."""
    model_path = model_path or tiny_model(model)
    return _run(source, ["--model-path", str(model_path), "--device", "cpu", "--dtype", "float32",
                         "--benchmark", "--runs", "1"], timeout)


def run_on_gpu(source: str, model_path: str, timeout: float = 1800) -> ValidationResult:
    """The script with --benchmark on real weights on CUDA: deployment figures."""
    return _run(source, ["--model-path", str(model_path), "--device", "cuda", "--benchmark", "--runs", "3"], timeout)


def _run(source: str, arguments: list[str], timeout: float) -> ValidationResult:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "pipeline.py"
        script.write_text(source, encoding="utf-8")
        command = [sys.executable, str(script), *arguments, "--output", str(Path(tmp) / "image.png")]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            return ValidationResult(False, time.monotonic() - started, error=f"timed out after {timeout:.0f} s")
        seconds = time.monotonic() - started
        if done.returncode != 0:
            tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
            return ValidationResult(False, seconds, error=f"exit {done.returncode}: {tail[0]}")
        try:
            report = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return ValidationResult(False, seconds, error="no JSON line on stdout")
        if not (Path(tmp) / "image.png").exists():
            return ValidationResult(False, seconds, report, "no image was saved")
        return ValidationResult(True, seconds, report)
