"""Request text to Task through one interface, whatever the backend.

The rule-based parser is the default and the fallback. An LLM backend (agent.llm) proposes a task,
which is grounded against the request before anything of it is used.
"""

from __future__ import annotations

from typing import Callable, Optional

from core.task import Extraction


def extract(text: str, llm: Optional[str] = None, llm_model: Optional[str] = None,
            notice: Optional[Callable[[str], None]] = None) -> Extraction:
    """Parse `text`; with `llm` set (URL, 'local' or 'openai'), ask that model first."""
    from agent.parser import parse

    if llm in (None, "", "rules"):
        task = parse(text)
        return Extraction(task, {k: "rules" for k, v in task.model_dump().items() if v is not None})
    from agent.llm import extract_with_llm

    return extract_with_llm(text, llm, llm_model, notice=notice or (lambda message: None))
