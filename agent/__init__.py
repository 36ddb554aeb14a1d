"""diffaccel: turn a request into an accelerated, measured diffusers script.

Importing this package does no work and does not import torch.
"""

from core.errors import DiffaccelError, UnsupportedRequest
from core.task import Task

__all__ = ["DiffaccelError", "Task", "UnsupportedRequest", "parse", "generate_script"]


def parse(text: str) -> Task:
    """Rule-based parse of a request (offline)."""
    from agent.parser import parse as _parse

    return _parse(text)


def generate_script(request: str, db_path=None, model_path=None) -> str:
    """The accelerated script for a request, from the parameter database."""
    from agent.agent import Agent

    return Agent(db_path=db_path, live_search="never", model_path=model_path).run(parse(request)).source
