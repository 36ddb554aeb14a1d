import importlib.util
import os
from pathlib import Path

import pytest

# Decided without importing torch: collection stays fast, and core tests run without it.
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_NVIDIA = Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


def benchmark_module(name: str):
    """benchmarks/NAME.py imported as a module (benchmarks/ is scripts, not a package)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # two threads on these machines make timings erratic


def _cuda() -> bool:
    if not (HAS_TORCH and HAS_NVIDIA):
        return False
    import torch

    return torch.cuda.is_available()


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tiny models are built once per test session, in a temp dir, never in the user's cache."""
    os.environ["DIFFACCEL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    if HAS_TORCH:
        import torch

        torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def _no_user_db(monkeypatch):
    monkeypatch.delenv("DIFFACCEL_DB", raising=False)
    monkeypatch.delenv("DIFFACCEL_LLM", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch (pip install 'diffaccel[run]')")
gpu = pytest.mark.skipif(not _cuda(), reason="needs CUDA")
