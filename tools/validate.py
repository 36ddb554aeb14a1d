"""Tool: validate a generated script by running it."""

from __future__ import annotations

from typing import Optional

from core.task import ModelName


def validate_script(source: str, model: ModelName, target: Optional[float] = None,
                    model_path: Optional[str] = None) -> dict:
    """Run a generated script and report whether it works (and, on a GPU, whether it is fast enough).

    With CUDA and local weights (model_path) the script runs with --benchmark on the real model and
    its measured speedup is checked against the target (within 3%); otherwise it is a smoke run on a
    tiny random pipeline on the CPU.

    Args:
        source: the script's Python source.
        model: SD1.5, SD2.1 or SDXL (picks the tiny pipeline for the smoke run).
        target: the target speedup to check on a GPU run.
        model_path: a local directory with real weights, for a GPU run.
    """
    from agent.validate import run_on_gpu, run_script

    gpu = model_path is not None and _cuda()
    result = run_on_gpu(source, model_path) if gpu else run_script(source, model)
    answer = {"ok": result.ok, "kind": "gpu-benchmark" if gpu else "tiny-cpu-smoke",
              "report": result.report, "error": result.error or None, "seconds": round(result.seconds, 1)}
    if gpu and result.ok and target:
        speedup = result.report["speedup"]
        answer["meets_target"] = speedup >= 0.97 * target
        if not answer["meets_target"]:
            answer["ok"] = False
            answer["error"] = f"measured {speedup:.2f}x, more than 3% short of {target:g}x"
    return answer


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()
