import os

import pytest

try:
    import torch
except ImportError:  # the core tests run without torch
    torch = None


def pytest_configure(config):
    if torch is not None:
        torch.set_num_threads(1)  # two threads on these machines make timings erratic


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tiny models are built once per test session, in a temp dir, never in the user's cache."""
    os.environ["DIFFACCEL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield


@pytest.fixture(autouse=True)
def _no_user_db(monkeypatch):
    monkeypatch.delenv("DIFFACCEL_DB", raising=False)
    monkeypatch.delenv("DIFFACCEL_LLM", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (pip install 'diffaccel[run]')")
gpu = pytest.mark.skipif(
    torch is None or not torch.cuda.is_available(), reason="needs CUDA"
)
