"""The house's shape: core at the bottom, then search, tools, agent; no module imports upward and no
two modules import each other (at module level or inside a function)."""

import ast
import itertools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "search", "tools", "agent")


def imports() -> dict[str, set[str]]:
    found = {}
    for layer in LAYERS:
        for path in (ROOT / layer).glob("*.py"):
            name = layer if path.stem == "__init__" else f"{layer}.{path.stem}"
            targets = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LAYERS:
                    bare = node.module in LAYERS  # `from search import db` names a module
                    targets |= {f"{node.module}.{a.name}" for a in node.names} if bare else {node.module}
                elif isinstance(node, ast.Import):
                    targets |= {a.name for a in node.names if a.name.split(".")[0] in LAYERS}
            found[name] = targets
    return found


def test_imports_point_down_only():
    upward = [(module, target) for module, targets in imports().items() for target in targets
              if LAYERS.index(target.split(".")[0]) > LAYERS.index(module.split(".")[0])]
    assert upward == []


def test_no_two_modules_import_each_other():
    found = imports()
    assert [(a, b) for a, b in itertools.combinations(found, 2) if b in found[a] and a in found[b]] == []
