"""The typed functions the agent calls. Each is a plain function with a docstring whose Args:
section describes every parameter; `Tool` derives a pydantic model from the signature and validates
arguments before the call.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, Field, create_model


@dataclass
class Tool:
    name: str
    fn: Callable
    description: str
    arguments: type[BaseModel]

    def schema(self) -> dict:
        """The OpenAI function-calling description of this tool."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.arguments.model_json_schema()}}

    def __call__(self, **kwargs) -> Any:
        checked = self.arguments(**kwargs)  # raises pydantic.ValidationError on bad arguments
        return self.fn(**{name: getattr(checked, name) for name in type(checked).model_fields})


def tool(fn: Callable) -> Tool:
    doc = inspect.getdoc(fn) or ""
    described = dict(re.findall(r"^\s{4}(\w+): (.+(?:\n\s{8}.+)*)", doc.split("Args:", 1)[-1], re.M))
    fields = {}
    hints = typing.get_type_hints(fn)
    for name, parameter in inspect.signature(fn).parameters.items():
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        description = " ".join(described.get(name, "").split())
        fields[name] = (hints[name], Field(default, description=description))
    model = create_model(f"{fn.__name__}_arguments", **fields)
    return Tool(fn.__name__, fn, doc.split("\n\n")[0], model)


def registry() -> dict[str, Tool]:
    from tools.lookup import lookup
    from tools.render import render_script
    from tools.search import live_search
    from tools.validate import validate_script

    return {t.name: t for t in map(tool, (lookup, live_search, render_script, validate_script))}
