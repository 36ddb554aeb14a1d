"""search_params.json: the parameter database, its typed records, lookup, and safe writes.

The format, written once here (version 2; version 1 files are read as eager-engine records)::

    {
      "format": "diffaccel-search-params",
      "version": 2,
      "sweeps": [Sweep, ...],     # every candidate measured, per (model, sampler, steps, accelerators)
      "entries": [Entry, ...]     # the pick per (model, sampler, steps, accelerators, target, engine)
    }

A `Sweep` holds the eager baseline's latencies and every `Candidate` measured against it (settings,
engine, speedup with its interval and per-round paired ratios, latencies, quality, first-call
seconds for graph candidates) and its `Provenance`. An `Entry` is the best-quality candidate whose
speedup interval's lower bound reaches the target (`core.pareto.pick`), or `infeasible` with the
fastest one. Entries for a target outside the grid are picked from the stored sweep on lookup, so
every figure served was measured. The original tool's files (keys like
"('SD1.5', 'DDIM', 50, 'DeepCache', 2.0)") are read too. The file is validated once on load and a
wrong record is named; writes take a file lock and replace the file atomically; a corrupt file is
never overwritten.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import DatabaseError
from core.files import cache_dir, write_atomic
from core.pareto import pick, quality_key
from core.settings import Settings, settings_from_json
from core.task import (
    GRID_COMBINATIONS,
    MODELS,
    SAMPLERS,
    AcceleratorName,
    EngineName,
    ModelName,
    SamplerName,
    canonical_accelerators,
    canonical_name,
    combination_label,
)

FORMAT = "diffaccel-search-params"
VERSION = 2
ENV_VAR = "DIFFACCEL_DB"
LookupKind = Literal["exact", "from-sweep", "nearest", "missing"]


class Quality(BaseModel):
    """Proxy quality against the unaccelerated image of the same prompt and seed."""

    model_config = ConfigDict(extra="allow")
    ssim: float
    psnr: float


class Provenance(BaseModel):
    """Where a figure came from. Unknown keys are kept: older files recorded other details."""

    model_config = ConfigDict(extra="allow")
    device: Optional[str] = None
    dtype: Optional[str] = None
    resolution: Optional[int] = None
    weights: Optional[str] = None  # 'real', 'random' (full size), 'tiny-random'
    source: Optional[str] = None
    protocol_version: Optional[int] = None  # search/measure.py PROTOCOL_VERSION; None: before versions

    @property
    def strength(self) -> int:
        """How much a figure says about deployment: real weights on CUDA > random on CUDA > CPU."""
        on_gpu = bool(self.device) and not self.device.startswith("CPU")
        if self.weights == "tiny-random" or not on_gpu:
            return 0
        return 2 if self.weights == "real" else 1


class Combination(BaseModel):
    """The key fields shared by sweeps and entries."""

    model_config = ConfigDict(extra="forbid")
    model: ModelName
    sampler: SamplerName
    steps: int = Field(gt=0)
    accelerators: list[AcceleratorName]

    @field_validator("accelerators")
    @classmethod
    def _canonical(cls, value):
        return list(canonical_accelerators(value))

    @property
    def combo_key(self) -> tuple:
        return combo_key(self.model, self.sampler, self.steps, self.accelerators)

    def label(self) -> str:
        return f"{self.model} {self.sampler} {self.steps} steps {combination_label(self.accelerators)}"


class Candidate(BaseModel):
    """One setting measured against the eager unaccelerated baseline."""

    model_config = ConfigDict(extra="forbid")
    params: Settings
    engine: EngineName = "eager"
    speedup: float = Field(gt=0)
    # Two-sided confidence interval of the speedup (search/stats.py); None for older records.
    speedup_interval: Optional[tuple[float, float]] = None
    ratios: list[float] = Field(default_factory=list, description="per-round paired speedups")
    latency_s: float = Field(gt=0)
    latencies_s: list[float] = Field(default_factory=list)
    quality: Quality
    first_call_s: Optional[float] = None  # graph capture (or compile) seconds, paid once per process

    @property
    def speedup_low(self) -> float:
        """What the pick trusts: the interval's lower bound, else the point estimate."""
        return self.speedup_interval[0] if self.speedup_interval else self.speedup


class Sweep(Combination):
    """Every candidate of one combination, measured in one session against one baseline."""

    baseline_latency_s: float = Field(gt=0)
    baseline_latencies_s: list[float] = Field(default_factory=list)
    candidates: list[Candidate]
    provenance: Provenance

    def engines(self) -> list[str]:
        return sorted({candidate.engine for candidate in self.candidates})

    def baseline_blocks(self) -> list[list[float]]:
        """The baseline's timings grouped by the candidate each round was paired with, in the order
        timed: `search/protocol.py` stores one baseline timing per round, candidate after candidate."""
        blocks, start = [], 0
        for candidate in self.candidates:
            blocks.append(self.baseline_latencies_s[start:start + len(candidate.latencies_s)])
            start += len(candidate.latencies_s)
        if start != len(self.baseline_latencies_s):
            raise ValueError(f"{self.label()}: {len(self.baseline_latencies_s)} baseline timings for {start} rounds")
        return blocks


class Measured(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speedup: float
    speedup_interval: Optional[tuple[float, float]] = None
    baseline_latency_s: float
    latency_s: float
    quality: Quality
    first_call_s: Optional[float] = None


class Entry(Combination):
    """The setting served for one target: the best quality that reaches it, or the fastest."""

    target: float = Field(gt=0)
    engine: EngineName = "eager"
    status: Literal["ok", "infeasible"]
    params: Settings  # the pick; for an infeasible target the fastest setting measured
    measured: Optional[Measured] = None
    provenance: Provenance

    @property
    def key(self) -> tuple:
        return self.combo_key + (round(self.target, 4), self.engine)

    @property
    def feasible(self) -> bool:
        return self.status == "ok"


class Database(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["diffaccel-search-params"] = FORMAT
    version: int = VERSION
    entries: list[Entry] = Field(default_factory=list)
    sweeps: list[Sweep] = Field(default_factory=list)

    def find_sweep(self, key: tuple) -> Optional[Sweep]:
        """The stored sweep of a combination (a `combo_key`), or None."""
        return next((sweep for sweep in self.sweeps if sweep.combo_key == key), None)

    def merged_with(self, other: "Database") -> "Database":
        """This database with `other`'s records searched first (live searches over the shipped file),
        except those of a combination this one measured more strongly (`Provenance.strength`: a CPU
        smoke run never hides a GPU's figures)."""
        strongest: dict[tuple, int] = {}
        for record in [*self.sweeps, *self.entries]:
            strongest[record.combo_key] = max(strongest.get(record.combo_key, 0), record.provenance.strength)

        def holds(record) -> bool:
            return record.provenance.strength >= strongest.get(record.combo_key, 0)

        return Database(entries=[e for e in other.entries if holds(e)] + self.entries,
                        sweeps=[s for s in other.sweeps if holds(s)] + self.sweeps)


def combo_key(model: str, sampler: str, steps: int, accelerators) -> tuple:
    return (model, sampler, int(steps), canonical_accelerators(accelerators))


# -- where the files are --------------------------------------------------------------------------
def shipped_path() -> Path:
    """The database that ships with diffaccel (package data; the repository root's file in a checkout)."""
    return Path(str(resources.files("core").joinpath("search_params.json"))).resolve()


def default_path() -> Path:
    """$DIFFACCEL_DB, else the shipped database."""
    return Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else shipped_path()


def live_path() -> Path:
    """Where this machine's own measurements go (live and CPU searches): never the shipped file."""
    return cache_dir() / "live_search_params.json"


def is_shipped(path: Path | str) -> bool:
    return Path(path).resolve() == shipped_path()


# -- reading --------------------------------------------------------------------------------------
def load(path: Path | str | None = None, must_exist: bool = False) -> Database:
    """The database at `path` (default: $DIFFACCEL_DB or the shipped one), validated.

    A missing file is an empty database unless `must_exist` (a path the user named to read from).
    """
    path = Path(path) if path else default_path()
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a parameter database: name a .json file")
    if not path.exists():
        if must_exist:
            raise DatabaseError(f"{path} does not exist: check the path, or leave out --db to use the shipped database")
        return Database()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatabaseError(f"{path} is not valid JSON ({error}); {_restore_hint(path)}") from None
    except OSError as error:
        raise DatabaseError(f"cannot read {path}: {error.strerror}") from None
    return _validated(raw, path)


def load_with_live(path: Path | str | None = None) -> Database:
    """The database plus what searches measured on this machine (searched first).

    A corrupt live cache is reported with how to clear it; it never hides the shipped database.
    """
    data = load(path, must_exist=path is not None)
    if path is None and not os.environ.get(ENV_VAR) and live_path().exists():
        data = data.merged_with(load(live_path()))
    return data


def _restore_hint(path: Path) -> str:
    if path.resolve() == live_path().resolve():
        return f"it holds only this machine's own searches: delete it (rm {path}) and search again"
    if is_shipped(path):
        return f"restore it from git (git checkout -- {path.name}) or reinstall diffaccel"
    return f"restore it, or point --db / {ENV_VAR} at another file"


def _validated(raw, path: Path) -> Database:
    if isinstance(raw, dict) and raw and all(str(key).startswith("(") for key in raw):
        return _from_tuple_keys(raw, path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise DatabaseError(f"{path} is not a diffaccel parameter database (no 'format': '{FORMAT}' field)")
    if raw.get("version") not in (1, VERSION):
        raise DatabaseError(f"{path} is format version {raw.get('version')}; this diffaccel reads 1 and {VERSION}")
    for section in ("entries", "sweeps"):
        if not isinstance(raw.get(section, []), list):
            raise DatabaseError(f"{path}: '{section}' must be a list of records; {_restore_hint(path)}")
    try:
        return Database.model_validate({**raw, "version": VERSION})
    except ValidationError as error:
        raise DatabaseError(f"{path}: {_first_problem(raw, error)}; {_restore_hint(path)}") from None


_SINGULAR = {"entries": "entry", "sweeps": "sweep"}


def _first_problem(raw: dict, error: ValidationError) -> str:
    """'entry 12 (SD1.5 DDIM 25 DeepCache 2.0x): params.DeepCache.cache_interval: ...'."""
    problem = error.errors()[0]
    location = list(problem["loc"])
    if len(location) >= 2 and location[0] in ("entries", "sweeps"):
        section, index = location[:2]
        record = raw[section][index] if isinstance(raw[section][index], dict) else {}
        named = " ".join(str(record.get(k, "?")) for k in ("model", "sampler", "steps"))
        field = ".".join(str(part) for part in location[2:]) or "record"
        return f"{_SINGULAR[section]} {index} ({named}): {field}: {problem['msg']}"
    return f"{'.'.join(map(str, location))}: {problem['msg']}"


def _from_tuple_keys(raw: dict, path: Path) -> Database:
    """Read the original tool's {"('SD1.5', 'DDIM', 50, 'DeepCache', 2.0)": {params}} files."""
    entries = []
    for key, params in raw.items():
        try:
            model, sampler, steps, _, target = ast.literal_eval(key)
            model, sampler = canonical_name(model), canonical_name(sampler)
            if model not in MODELS or sampler not in SAMPLERS:
                raise ValueError("unknown model or sampler")
            settings = settings_from_json(params)
            entries.append(Entry(
                model=model, sampler=sampler, steps=int(steps), accelerators=list(settings.accelerators),
                target=float(target), status="ok", params=settings,
                provenance=Provenance(source="original tool's search_params.json; not re-measured"),
            ))
        except Exception as error:  # noqa: BLE001 - any malformed key is the same user problem
            raise DatabaseError(f"{path}: cannot read legacy entry {key!r}: {error}") from None
    return Database(entries=entries)


# -- writing --------------------------------------------------------------------------------------
def update(mutate: Callable[[Database], None], path: Path | str | None = None) -> Database:
    """Read, mutate and atomically rewrite the database under a file lock; returns the new data.

    Two searches writing at once both land: each re-reads the file inside the lock. A crash leaves
    the old file or the new one, never half of one; temp files a killed writer left are removed here.
    """
    from filelock import FileLock

    path = Path(path) if path else default_path()
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a parameter database: name a .json file")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=600):
        data = load(path)
        mutate(data)
        data.entries.sort(key=_sort_key)
        data.sweeps.sort(key=_sort_key)
        text = json.dumps(data.model_dump(mode="json", by_alias=True, exclude_none=True), indent=1,
                          ensure_ascii=False)
        write_atomic(path, text + "\n", remove_stale=True)
    return data


def _sort_key(record: Combination) -> tuple:
    accelerators = tuple(record.accelerators)
    combo = GRID_COMBINATIONS.index(accelerators) if accelerators in GRID_COMBINATIONS else 99
    return (MODELS.index(record.model), SAMPLERS.index(record.sampler), record.steps, combo,
            combination_label(accelerators), getattr(record, "target", 0.0), getattr(record, "engine", ""))


def store_sweep(data: Database, sweep: Sweep, targets, force: bool = False) -> None:
    """Put a measured sweep and its per-target entries into `data`, replacing older ones.

    A sweep never replaces one measured on a stronger setup (real weights > random > CPU or tiny)
    unless `force`.
    """
    old = data.find_sweep(sweep.combo_key)
    if old is not None and old.provenance.strength > sweep.provenance.strength and not force:
        raise DatabaseError(
            f"{sweep.label()} is already measured on {old.provenance.device} ({old.provenance.weights} "
            f"weights); this measurement ({sweep.provenance.device}, {sweep.provenance.weights}) would "
            "replace it with weaker figures: use another --db, or --force"
        )
    data.sweeps = [s for s in data.sweeps if s.combo_key != sweep.combo_key]
    data.sweeps.append(sweep)
    new = [entry for target in targets for entry in entries_from_sweep(sweep, target)]
    data.entries = [e for e in data.entries if e.combo_key != sweep.combo_key] + new


def entries_from_sweep(sweep: Sweep, target: float) -> list[Entry]:
    """One entry per engine the sweep measured."""
    return [entry_from_sweep(sweep, target, engine) for engine in sweep.engines()]


def entry_from_sweep(sweep: Sweep, target: float, engine: str = "eager") -> Entry:
    status, chosen = pick([c for c in sweep.candidates if c.engine == engine], target)
    measured = None
    if chosen is not None:
        measured = Measured(
            speedup=chosen.speedup, speedup_interval=chosen.speedup_interval,
            baseline_latency_s=sweep.baseline_latency_s, latency_s=chosen.latency_s,
            quality=chosen.quality, first_call_s=chosen.first_call_s,
        )
    return Entry(
        model=sweep.model, sampler=sweep.sampler, steps=sweep.steps, accelerators=sweep.accelerators,
        target=float(target), engine=engine, status=status, params=chosen.params if chosen else None,
        measured=measured, provenance=sweep.provenance,
    )


# -- lookup ---------------------------------------------------------------------------------------
@dataclass
class Lookup:
    """What the database says about a task."""

    match: LookupKind
    entry: Optional[Entry] = None
    differences: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.entry is not None

    @property
    def feasible(self) -> bool:
        return self.entry is not None and self.entry.feasible

    def note(self) -> str:
        if self.match == "missing":
            return "no measured entry"
        if self.match == "exact":
            return "exact match"
        if self.match == "from-sweep":
            return "selected for this target from the measured sweep of this combination"
        return "nearest measured entry: " + "; ".join(self.differences)


def lookup(data: Database, model: str, sampler: str, steps: int, accelerators, target: float,
           engine: str = "eager") -> Lookup:
    key = combo_key(model, sampler, steps, accelerators) + (round(float(target), 4), engine)
    for entry in data.entries:
        if entry.key == key:
            return Lookup("exact", entry)
    sweep = data.find_sweep(key[:4])
    if sweep is not None and engine in sweep.engines():
        return Lookup("from-sweep", entry_from_sweep(sweep, target, engine))
    return _nearest(data, key)


def _nearest(data: Database, key: tuple) -> Lookup:
    model, sampler, steps, accelerators, target, engine = key
    same_combo = [e for e in data.entries
                  if e.model == model and tuple(e.accelerators) == accelerators and e.engine == engine]
    if not same_combo:
        return Lookup("missing")

    def distance(entry: Entry) -> tuple:
        return (entry.sampler != sampler, abs(entry.steps - steps), not entry.feasible, abs(entry.target - target))

    best = min(same_combo, key=distance)
    differences = []
    if best.sampler != sampler:
        differences.append(f"sampler {best.sampler} instead of {sampler}")
    if best.steps != steps:
        differences.append(f"{best.steps} steps instead of {steps}")
    if best.target != target:
        differences.append(f"target {best.target:g}x instead of {target:g}x")
    return Lookup("nearest", best, tuple(differences))


def best_combination(data: Database, model: str, sampler: str, steps: int, target: float,
                     engine: str = "eager", excluded=()) -> Optional[tuple[tuple[str, ...], Lookup]]:
    """(accelerators, Lookup) of the measured combination that reaches the target with the best
    quality, leaving out combinations that use an excluded accelerator; None when none is feasible."""
    feasible = []
    for combo in GRID_COMBINATIONS:
        if set(combo) & set(excluded):
            continue
        found = lookup(data, model, sampler, steps, combo, target, engine)
        if found.match in ("exact", "from-sweep") and found.feasible:
            feasible.append((combo, found))
    if not feasible:
        return None
    return max(feasible, key=lambda item: quality_key(item[1].entry.measured))
