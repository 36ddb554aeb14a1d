"""search_params.json: the parameter database, its format, lookup, and safe writes.

Format (version 1)::

    {
      "format": "diffaccel-search-params",
      "version": 1,
      "entries": [                       # one per (model, sampler, steps, accelerators, target)
        {"model": "SDXL", "sampler": "UniPC", "steps": 25, "accelerators": ["DeepCache"],
         "target": 2.0,
         "status": "ok" | "infeasible",  # infeasible: no measured setting reached the target
         "params": {"DeepCache": {"cache_interval": 3, "cache_branch_id": 0}},
         "measured": {"speedup": 2.31, "baseline_latency_s": 1.92, "latency_s": 0.83,
                      "quality": {"ssim": 0.71, "psnr": 19.2}},
         "provenance": {...}}            # see `search.measure.provenance`
      ],
      "sweeps": [                        # every candidate measured, per combination
        {"model": ..., "sampler": ..., "steps": ..., "accelerators": [...],
         "baseline_latency_s": ..., "candidates": [{"params": ..., "speedup": ..., ...}],
         "provenance": {...}}
      ]
    }

Entries for a target outside the grid are selected from the stored sweep, so every figure served
was measured. The original tool's files (keys like "('SD1.5', 'DDIM', 50, 'DeepCache', 2.0)") are
read too. Writes take a file lock and replace the file atomically; a corrupt file is never
overwritten.
"""

from __future__ import annotations

import ast
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from core.errors import DatabaseError
from core.task import GRID_COMBINATIONS, MODELS, SAMPLERS, canonical_accelerators, combination_label
from core.pareto import pick

FORMAT = "diffaccel-search-params"
VERSION = 1
ENV_VAR = "DIFFACCEL_DB"


def default_path() -> Path:
    """$DIFFACCEL_DB, else the repository's search_params.json, else the installed copy."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    here = Path(__file__).resolve().parent
    checkout = here.parent / "search_params.json"
    return checkout if checkout.exists() else here / "search_params.json"


def live_path() -> Path:
    """Where live searches store what they measure: beside the user's cache, never the shipped file."""
    root = os.environ.get("DIFFACCEL_CACHE") or Path.home() / ".cache" / "diffaccel"
    return Path(root) / "live_search_params.json"


def load_with_live(path: Path | str | None = None) -> dict:
    """The database plus what live searches measured on this machine (searched first)."""
    data = load(path)
    live = live_path()
    if path is None and not os.environ.get(ENV_VAR) and live.exists():
        extra = load(live)
        data = {**data, "entries": extra["entries"] + data["entries"], "sweeps": extra["sweeps"] + data["sweeps"]}
    return data


def empty() -> dict:
    return {"format": FORMAT, "version": VERSION, "entries": [], "sweeps": []}


def combo_key(model: str, sampler: str, steps: int, accelerators) -> tuple:
    return (model, sampler, int(steps), canonical_accelerators(accelerators))


def record_key(record: dict) -> tuple:
    """The combination a stored entry or sweep belongs to."""
    return combo_key(record["model"], record["sampler"], record["steps"], record["accelerators"])


def entry_key(entry: dict) -> tuple:
    return record_key(entry) + (round(float(entry["target"]), 4),)


def find_sweep(data: dict, key: tuple) -> Optional[dict]:
    """The stored sweep of a combination (a `combo_key`), or None."""
    return next((sweep for sweep in data["sweeps"] if record_key(sweep) == key), None)


def load(path: Path | str | None = None) -> dict:
    path = Path(path) if path else default_path()
    if not path.exists():
        return empty()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatabaseError(
            f"{path} is not valid JSON ({error}); restore it from git "
            f"(git checkout -- {path.name}) or point {ENV_VAR} at another file"
        ) from None
    return _upgrade(raw, path)


def _upgrade(raw, path: Path) -> dict:
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        if raw.get("version") != VERSION:
            raise DatabaseError(
                f"{path} is format version {raw.get('version')}; this diffaccel reads {VERSION}"
            )
        raw.setdefault("entries", [])
        raw.setdefault("sweeps", [])
        return raw
    if isinstance(raw, dict) and all(str(key).startswith("(") for key in raw):
        return _from_tuple_keys(raw, path)
    raise DatabaseError(
        f"{path} is not a diffaccel parameter database (no 'format': '{FORMAT}' field)"
    )


def _from_tuple_keys(raw: dict, path: Path) -> dict:
    """Read the original tool's {"('SD1.5', 'DDIM', 50, 'DeepCache', 2.0)": {params}} files."""
    from core.settings import settings_from_json
    from core.task import canonical_name

    data = empty()
    for key, params in raw.items():
        try:
            model, sampler, steps, accelerators, target = ast.literal_eval(key)
            model, sampler = canonical_name(model), canonical_name(sampler)
            if model not in MODELS or sampler not in SAMPLERS:
                raise ValueError("unknown model or sampler")
            settings = settings_from_json(params)
        except Exception as error:  # noqa: BLE001 - any malformed key is the same user problem
            raise DatabaseError(f"{path}: cannot read legacy entry {key!r}: {error}") from None
        data["entries"].append(
            {
                "model": model,
                "sampler": sampler,
                "steps": int(steps),
                "accelerators": list(settings.accelerators),
                "target": float(target),
                "status": "ok",
                "params": settings.to_json(),
                "measured": None,
                "provenance": {"source": "original tool's search_params.json; not re-measured"},
            }
        )
    return data


def update(mutate: Callable[[dict], None], path: Path | str | None = None) -> dict:
    """Read, mutate and atomically rewrite the database under a file lock; returns the new data.

    Two searches writing at once both land: each re-reads the file inside the lock. A crash leaves
    the old file or the new one, never half of one.
    """
    from filelock import FileLock

    path = Path(path) if path else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=600):
        data = load(path)
        mutate(data)
        data["entries"].sort(key=_sort_key)
        data["sweeps"].sort(key=lambda s: _sort_key({**s, "target": 0}))
        _atomic_write(path, data)
    return data


def _atomic_write(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


_MODEL_ORDER = {"SD1.5": 0, "SD2.1": 1, "SDXL": 2}
_SAMPLER_ORDER = {"DDIM": 0, "DPM-Solver++": 1, "UniPC": 2}


def _sort_key(entry: dict) -> tuple:
    accelerators = tuple(entry["accelerators"])
    combo = GRID_COMBINATIONS.index(accelerators) if accelerators in GRID_COMBINATIONS else 99
    return (
        _MODEL_ORDER.get(entry["model"], 9),
        _SAMPLER_ORDER.get(entry["sampler"], 9),
        int(entry["steps"]),
        combo,
        combination_label(accelerators),
        float(entry["target"]),
    )


def store_sweep(data: dict, sweep: dict, targets) -> None:
    """Put a measured sweep and its per-target entries into `data`, replacing older ones."""
    key = record_key(sweep)
    data["sweeps"] = [s for s in data["sweeps"] if record_key(s) != key]
    data["sweeps"].append(sweep)
    new = [entry_from_sweep(sweep, target) for target in targets]
    replaced = {entry_key(e) for e in new}
    data["entries"] = [e for e in data["entries"] if entry_key(e) not in replaced] + new


def _combo_fields(record: dict) -> dict:
    return {k: record[k] for k in ("model", "sampler", "steps", "accelerators")}


def entry_from_sweep(sweep: dict, target: float) -> dict:
    status, chosen = pick(sweep["candidates"], target)
    measured = None
    if chosen is not None:
        measured = {
            "speedup": chosen["speedup"],
            "baseline_latency_s": sweep["baseline_latency_s"],
            "latency_s": chosen["latency_s"],
            "quality": chosen["quality"],
        }
    return {
        **_combo_fields(sweep),
        "target": float(target),
        "status": status,
        "params": chosen["params"] if chosen else None,
        "measured": measured,
        "provenance": sweep["provenance"],
    }


@dataclass
class Lookup:
    """What the database says about a task: 'exact', 'from-sweep', 'nearest' or 'missing'."""

    match: str
    entry: Optional[dict] = None
    differences: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.entry is not None

    @property
    def feasible(self) -> bool:
        return self.entry is not None and self.entry["status"] == "ok"

    def note(self) -> str:
        if self.match == "missing":
            return "no measured entry"
        if self.match == "exact":
            return "exact match"
        if self.match == "from-sweep":
            return "selected for this target from the measured sweep of this combination"
        return "nearest measured entry: " + "; ".join(self.differences)


def lookup(data: dict, model: str, sampler: str, steps: int, accelerators, target: float) -> Lookup:
    key = combo_key(model, sampler, steps, accelerators) + (round(float(target), 4),)
    for entry in data["entries"]:
        if entry_key(entry) == key:
            return Lookup("exact", entry)
    sweep = find_sweep(data, key[:4])
    if sweep is not None:
        return Lookup("from-sweep", entry_from_sweep(sweep, target))
    return _nearest(data, key)


def _nearest(data: dict, key: tuple) -> Lookup:
    model, sampler, steps, accelerators, target = key
    same_combo = [
        e for e in data["entries"] if e["model"] == model and tuple(e["accelerators"]) == accelerators
    ]
    if not same_combo:
        return Lookup("missing")

    def distance(entry: dict) -> tuple:
        return (
            entry["sampler"] != sampler,
            abs(int(entry["steps"]) - steps),
            entry["status"] != "ok",
            abs(float(entry["target"]) - target),
        )

    best = min(same_combo, key=distance)
    differences = []
    if best["sampler"] != sampler:
        differences.append(f"sampler {best['sampler']} instead of {sampler}")
    if int(best["steps"]) != steps:
        differences.append(f"{best['steps']} steps instead of {steps}")
    if float(best["target"]) != target:
        differences.append(f"target {best['target']:g}x instead of {target:g}x")
    return Lookup("nearest", best, tuple(differences))


def best_combination(data: dict, model: str, sampler: str, steps: int, target: float):
    """(accelerators, Lookup) of the measured combination that reaches the target with the best
    quality; None when no combination of this model/sampler/steps is measured as feasible."""
    from core.pareto import quality_key

    feasible = []
    for combo in GRID_COMBINATIONS:
        found = lookup(data, model, sampler, steps, combo, target)
        if found.match in ("exact", "from-sweep") and found.feasible:
            feasible.append((combo, found))
    if not feasible:
        return None
    return max(feasible, key=lambda item: quality_key(item[1].entry["measured"]))
