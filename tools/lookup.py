"""Lookup: from a task to the measured parameters the script will use, and why.

`resolve()` fills what the request left unknown (and records it as assumed), honours what it
forbade or fixed (excluded accelerators, stated knobs, an engine), and looks both engines up in the
database: the eager setting, and the graph setting where one was measured. It decides; rendering
only formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from core import db
from core.errors import UnsupportedRequest
from core.pareto import pick
from core.settings import DeepCacheParams, Settings, TGateParams, ToMeParams, default_tome_max_downsample
from core.task import DEFAULT_MODEL, DEFAULT_SAMPLER, DEFAULT_SPEEDUP, ENGINES, MAX_STEPS, Task, default_steps
from search.measure import PROTOCOL_VERSION, by_current_protocol, workers_on_host


@dataclass
class Choice:
    """What one engine runs: the settings and the database's word on them."""

    engine: str
    settings: Settings
    lookup: Optional[db.Lookup]  # None: no accelerator was asked for
    measured_here: bool  # False: library defaults or stated knobs nobody measured
    swept: bool = False  # stated knobs its combination's sweep lacks: a search would not measure them either

    @property
    def entry(self) -> Optional[db.Entry]:
        return self.lookup.entry if self.lookup is not None else None

    def reaches(self, target: float) -> bool:
        """Whether its figure claims `target`: its entry was picked as reaching this target or a
        higher one, or (a nearest entry picked for a lower one) its lower bound reaches `target`.
        Unmeasured settings claim nothing and are labelled so instead."""
        entry = self.entry
        if entry is None or entry.measured is None:
            return True
        if not entry.feasible:
            return False
        interval = entry.measured.speedup_interval
        return entry.target >= target or (interval[0] if interval else entry.measured.speedup) >= target


@dataclass
class Resolution:
    """A complete task, the setting each engine runs, and where every value came from."""

    task: Task
    assumed: dict[str, str]  # field -> why it was filled in
    choices: dict[str, Choice]  # 'eager' always; 'graph' where it was measured or asked for
    engine: str  # what the script runs by default on CUDA
    warnings: list[str] = field(default_factory=list)

    @property
    def choice(self) -> Choice:
        return self.choices[self.engine]

    @property
    def lookup(self) -> Optional[db.Lookup]:
        return self.choice.lookup

    @property
    def settings(self) -> Settings:
        return self.choice.settings

    @property
    def measured(self) -> Optional[db.Measured]:
        entry = self.choice.entry
        return entry.measured if entry else None

    @property
    def provenance(self) -> Optional[db.Provenance]:
        entry = self.choice.entry
        return entry.provenance if entry else None

    @property
    def needs_search(self) -> bool:
        """True when no sweep of exactly this combination was measured."""
        eager = self.choices["eager"]
        return bool(self.task.accelerators) and eager.lookup.match in ("missing", "nearest") and not eager.swept

    def search_command(self) -> str:
        return search_command(self.task)


def search_command(task: Task) -> str:
    """The command that measures a task's combination."""
    return (
        f"agent search --model {task.model} --sampler {task.sampler} --steps {task.steps} "
        f"--accelerators {','.join(task.accelerators)}"
    )


def resolve(task: Task, data: db.Database) -> Resolution:
    if task.steps is not None and task.steps > MAX_STEPS:
        raise UnsupportedRequest(
            f"{task.steps} steps is more than these schedulers accept (at most {MAX_STEPS}, since they "
            "offset timesteps by one): ask for fewer steps, e.g. 50")
    task, assumed = _with_defaults(task)
    warnings: list[str] = []
    if task.accelerators is None:
        task, assumed["accelerators"] = _best_combination(task, data)
    clash = set(task.accelerators) & set(task.excluded or ())
    if clash:
        raise UnsupportedRequest(
            f"the request both asks for and excludes {', '.join(sorted(clash))}: keep one of the two"
        )
    choices = {engine: _choose(task, data, engine, warnings) for engine in ENGINES}
    measured_graph = choices["graph"].lookup is not None and choices["graph"].lookup.match != "missing"
    if task.engine == "graph" and not measured_graph:
        if task.accelerators:
            warnings.append("the graph engine was asked for but is not measured for this combination: the "
                            "script runs the eager setting under CUDA graphs, speed unmeasured")
        choices["graph"] = Choice("graph", choices["eager"].settings, None, measured_here=not task.accelerators)
    elif not measured_graph:
        del choices["graph"]
    engine = task.engine or ("graph" if "graph" in choices else "eager")
    _warn_about(choices[engine], task, warnings)
    return Resolution(task, assumed, choices, engine, warnings)


def _with_defaults(task: Task) -> tuple[Task, dict[str, str]]:
    assumed: dict[str, str] = {}
    updates = {}
    if task.model is None:
        updates["model"], assumed["model"] = DEFAULT_MODEL, "default model"
    if task.sampler is None:
        updates["sampler"], assumed["sampler"] = DEFAULT_SAMPLER, "default sampler"
    model = task.model or DEFAULT_MODEL
    if task.steps is None:
        updates["steps"], assumed["steps"] = default_steps(model), f"default for {model}"
    if task.speedup is None and task.accelerators != []:
        updates["speedup"], assumed["speedup"] = DEFAULT_SPEEDUP, "default target"
    return task.model_copy(update=updates), assumed


def _best_combination(task: Task, data: db.Database) -> tuple[Task, str]:
    """The combination that reaches the target with the best quality (on the engine the script
    will run), leaving out what the request excluded."""
    excluded = tuple(task.excluded or ())
    best = None
    for engine in ([task.engine] if task.engine else ["graph", "eager"]):
        best = db.best_combination(data, task.model, task.sampler, task.steps, task.speedup, engine, excluded)
        if best is not None:
            break
    if best is not None:
        return task.model_copy(update={"accelerators": list(best[0])}), "measured best quality at this target"
    fallback = next((name for name in ("DeepCache", "T-Gate", "ToMe") if name not in excluded), None)
    if fallback is None:
        raise UnsupportedRequest("every accelerator is excluded: name at least one of DeepCache, T-Gate, ToMe")
    return (task.model_copy(update={"accelerators": [fallback]}),
            f"no measured combination reaches the target; {fallback}")


def _choose(task: Task, data: db.Database, engine: str, warnings: list[str]) -> Choice:
    if not task.accelerators:
        return Choice(engine, Settings(), None, measured_here=True)
    found = db.lookup(data, task.model, task.sampler, task.steps, task.accelerators, task.speedup, engine)
    if task.knobs:
        return _with_stated_knobs(task, data, engine, found, warnings)
    if not found.found:
        return Choice(engine, library_defaults(task), found, measured_here=False)
    return Choice(engine, found.entry.params, found, measured_here=True)


def _with_stated_knobs(task: Task, data: db.Database, engine: str, found: db.Lookup,
                       warnings: list[str]) -> Choice:
    """A request that fixes a knob ('cache interval 3') gets it: the best measured setting with
    that knob, else the stated knob on library defaults, labelled unmeasured."""
    sweep = data.find_sweep(db.combo_key(task.model, task.sampler, task.steps, task.accelerators))
    matching = [c for c in (sweep.candidates if sweep else []) if c.engine == engine and _has_knobs(c.params, task.knobs)]
    if matching:
        status, chosen = pick(matching, task.speedup)
        entry = db.entry_from_sweep(sweep.model_copy(update={"candidates": [chosen]}), task.speedup, engine)
        return Choice(engine, chosen.params, db.Lookup("from-sweep", entry), measured_here=True)
    settings = _override(library_defaults(task), task.knobs)
    if engine == "eager":
        warnings.append("no measured setting has " + _knob_text(task.knobs) + ": the script uses it on the "
                        "libraries' defaults, speed unmeasured")
        warnings.extend(_beyond_the_steps(task))
    return Choice(engine, settings, db.Lookup("missing"), measured_here=False, swept=sweep is not None)


def _beyond_the_steps(task: Task) -> list[str]:
    """What a stated knob does at this step count, where that is not what its name suggests."""
    knobs, steps = task.knobs or {}, task.steps
    said = []
    if knobs.get("cache_interval", 0) >= steps:
        said.append(f"cache_interval {knobs['cache_interval']:g} is not below the {steps} steps: DeepCache runs "
                    "only the first step in full")
    if knobs.get("gate_step", 0) >= steps:
        said.append(f"gate_step {knobs['gate_step']:g} is not below the {steps} steps: T-GATE never caches, "
                    "so it cannot speed anything up")
    return said


def _has_knobs(settings: Settings, knobs: dict) -> bool:
    values = {k: v for params in settings.to_json().values() for k, v in params.items()}
    return all(name in values and float(values[name]) == float(value) for name, value in knobs.items())


def _override(settings: Settings, knobs: dict) -> Settings:
    data = settings.to_json()
    for name, value in knobs.items():
        owner = next((acc for acc, params in data.items() if name in params), None)
        if owner is None:
            raise UnsupportedRequest(
                f"{name} is a knob of an accelerator this task does not use ({', '.join(data) or 'none'}): "
                "add that accelerator or drop the knob")
        data[owner][name] = value if name == "ratio" else int(value)
    try:
        return Settings.model_validate(data)
    except ValueError as error:
        raise UnsupportedRequest(f"{_knob_text(knobs)} is not a valid setting: {error}") from None


def _knob_text(knobs: dict) -> str:
    return ", ".join(f"{name} {value:g}" for name, value in knobs.items())


def _warn_about(choice: Choice, task: Task, warnings: list[str]) -> None:
    found = choice.lookup
    if found is None or not task.accelerators:
        return
    if not found.found and not task.knobs:
        warnings.append(
            f"no measured parameters for {task.describe()}: using the libraries' default settings, whose "
            f"speedup is unknown. Measure them with: {search_command(task)}")
    elif found.match == "nearest":
        warnings.append(f"the {choice.engine} parameters come from the {found.note()}")
    source = found.entry.provenance if found.entry is not None else None
    if source is not None and source.strength > 0 and source.protocol_version != PROTOCOL_VERSION:
        warnings.append(  # why: benchmarks/results/eager_baseline.md
            f"measured before protocol {PROTOCOL_VERSION} (a host to itself, graph figures over the "
            "eager baseline's fastest run), so the speedup may be overstated: check it with the "
            "script's --benchmark")
    elif source is not None and source.strength > 0 and not by_current_protocol(source):
        workers = workers_on_host(source)
        where = (f"by one of {workers} grid workers sharing a host" if workers > 1
                 else "in a Dask worker started with MALLOC_TRIM_THRESHOLD_")
        warnings.append(  # why: search/measure.py `by_current_protocol`
            f"measured {where}, where scripts measured a median 0.90 of the figures, so the speedup may be "
            "overstated: check it with the script's --benchmark")
    if found.entry is not None and not found.entry.feasible:
        best = found.entry.measured.speedup if found.entry.measured else None
        reach = f"the fastest measured setting reaches {best:.2f}x, which this script uses" if best else \
            "this script uses the fastest measured setting"
        warnings.append(f"{task.speedup:g}x is beyond anything measured for this combination on the "
                        f"{choice.engine} engine: {reach}")


def library_defaults(task: Task) -> Settings:
    """The libraries' own default knobs, for a combination nobody measured."""
    chosen = set(task.accelerators)
    return Settings(
        deepcache=DeepCacheParams() if "DeepCache" in chosen else None,
        tgate=TGateParams(gate_step=max(1, min(10, task.steps - 1))) if "T-Gate" in chosen else None,
        tome=ToMeParams(max_downsample=default_tome_max_downsample(task.model)) if "ToMe" in chosen else None,
    )


def lookup_json(resolution: Resolution) -> dict:
    """The machine-readable answer of `agent lookup --json` and `agent generate --json`."""
    engines = {}
    for name, choice in resolution.choices.items():
        entry = choice.entry
        engines[name] = {
            "match": choice.lookup.match if choice.lookup else "no-accelerator",
            "status": entry.status if entry else None,
            "reaches_target": choice.reaches(resolution.task.speedup) if entry and entry.measured else None,
            "params": choice.settings.to_json(),
            "measured": entry.measured.model_dump(exclude_none=True) if entry and entry.measured else None,
        }
    chosen = resolution.choice
    return {
        "task": resolution.task.as_json(),
        "assumed": resolution.assumed,
        "engine": resolution.engine,
        "match": chosen.lookup.match if chosen.lookup else "no-accelerator",
        "note": chosen.lookup.note() if chosen.lookup else "no accelerator asked for",
        "status": chosen.entry.status if chosen.entry else None,
        "reaches_target": engines[resolution.engine]["reaches_target"],
        "params": chosen.settings.to_json(),
        "measured": engines[resolution.engine]["measured"],
        "provenance": resolution.provenance.model_dump(exclude_none=True) if resolution.provenance else None,
        "engines": engines,
        "warnings": resolution.warnings,
    }
