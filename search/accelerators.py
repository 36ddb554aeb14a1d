"""Everything diffaccel knows about DeepCache, T-GATE and ToMe, in one place.

`plan()` turns a model and a `Settings` into a `Plan`: which loader, which keyword arguments, which
call. The search applies a plan with `apply()` (which returns an undo) and the code templates render
the same plan as source, so the two can never disagree about a library's API.

Rules measured with diffusers 0.42.1, DeepCache 0.1.1, tgate 1.0.0, tomesd 0.1.3:
- DeepCache together with T-GATE goes through tgate's DeepCache loaders, never DeepCacheSDHelper on
  top of a T-GATE pipeline (the tgate loop toggles its own helper).
- T-GATE has no unload: its loop leaves every Attention module's forward patched. Undo removes them.
- A DeepCache helper enabled twice breaks the U-Net: enable and disable exactly once each.
- T-GATE keeps each Attention's cache, and tgate's DeepCache loaders keep DeepCache's, from one
  `pipe.tgate()` call to the next; a layer that DeepCache skips when T-GATE refreshes its cache then
  reuses the last call's guidance-free (batch 1) features: wrong output, and a crash with ToMe.
  Clear both before every call.
- tomesd's use_rand=True changes the output between calls with the same seed: always False here.
- SDXL has no attention at downsample 1, so ToMe's max_downsample=1 merges nothing there: use 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from core.settings import (
    DeepCacheParams,
    Settings,
    TGateParams,
    ToMeParams,
    default_tome_max_downsample,
    field_name,
)
from core.task import ENGINES, canonical_accelerators


@dataclass(frozen=True)
class Plan:
    """How to apply a Settings to a pipeline of one model: what the code templates render."""

    model: str
    settings: Settings
    tgate_loader: Optional[str] = None
    tgate_loader_kwargs: dict = field(default_factory=dict)
    deepcache_kwargs: Optional[dict] = None
    tome_kwargs: Optional[dict] = None
    call_kwargs: dict = field(default_factory=dict)

    @property
    def uses_tgate(self) -> bool:
        return self.tgate_loader is not None

    @property
    def uses_tgate_deepcache(self) -> bool:
        return self.uses_tgate and bool(self.tgate_loader_kwargs)


def plan(model: str, settings: Settings) -> Plan:
    xl = model == "SDXL"
    deepcache = settings.deepcache.model_dump() if settings.deepcache else None
    tome = None
    if settings.tome:
        tome = settings.tome.model_dump()
        tome["use_rand"] = False
    if settings.tgate is None:
        return Plan(model, settings, deepcache_kwargs=deepcache, tome_kwargs=tome)
    loader = ("TgateSDXL" if xl else "TgateSD") + ("DeepCacheLoader" if deepcache else "Loader")
    return Plan(
        model,
        settings,
        tgate_loader=loader,
        tgate_loader_kwargs=deepcache or {},
        tome_kwargs=tome,
        call_kwargs=settings.tgate.model_dump(),
    )


def apply(pipe, accel: Plan, engine: str = "eager") -> Callable[[], None]:
    """Apply a plan to a pipeline in place; return the function that undoes it.

    engine="graph" also replays the U-Net and text encoders as CUDA graphs (`search.graph`), which
    compose with every accelerator here; on a CPU it warns once and runs eager.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    undos: list[Callable[[], None]] = []
    if accel.uses_tgate:
        import tgate

        getattr(tgate, accel.tgate_loader)(pipe, **accel.tgate_loader_kwargs)
        undos.append(lambda: _remove_tgate(pipe))
    elif accel.deepcache_kwargs is not None:
        from DeepCache import DeepCacheSDHelper

        helper = DeepCacheSDHelper(pipe=pipe)
        helper.set_params(**accel.deepcache_kwargs)
        helper.enable()
        undos.append(helper.disable)
    if accel.tome_kwargs is not None:
        import tomesd

        tomesd.apply_patch(pipe, **accel.tome_kwargs)
        undos.append(lambda: tomesd.remove_patch(pipe))
    if engine == "graph":
        from search.graph import enable_graphs

        undos.append(enable_graphs(pipe))

    def undo() -> None:
        for step in reversed(undos):
            step()

    return undo


def run(pipe, accel: Plan, **call_kwargs):
    """Call the pipeline the way the plan says (T-GATE generates through `pipe.tgate`).

    The same under graphs: clearing the caches empties the state the graph engine reads each step.
    """
    if accel.uses_tgate:
        _clear_tgate_caches(pipe)
        return pipe.tgate(**call_kwargs, **accel.call_kwargs)
    return pipe(**call_kwargs)


def _clear_tgate_caches(pipe) -> None:
    """What the template's `generate()` does before each T-GATE call (see the module docstring)."""
    if getattr(pipe, "deepcache", None) is not None:
        pipe.deepcache.disable()
        pipe.deepcache.enable()
    for module in _attention_modules(pipe):
        module.__dict__.pop("cache", None)


def _attention_modules(pipe):
    """The modules tgate patches: every `Attention` of the U-Net."""
    return (module for module in pipe.unet.modules() if type(module).__name__ == "Attention")


def _remove_tgate(pipe) -> None:
    helper = getattr(pipe, "deepcache", None)
    if helper is not None:
        helper.disable()
        del pipe.deepcache
    del pipe.tgate
    for module in _attention_modules(pipe):
        # tgate set these on each instance; removing them brings back the class's own forward.
        module.__dict__.pop("forward", None)
        module.__dict__.pop("cache", None)


def candidates(accelerators, model: str, steps: int) -> list[Settings]:
    """The settings the search measures for one combination, on each engine (see README: 'The
    candidate space').

    Pruned on purpose, so that a sweep of both engines fits a minute of GPU time: DeepCache's
    interval sets almost all of the speed (2 to 5 at branch 0, the cheapest cached step; branch 1 at
    interval 2 buys quality at low targets); T-GATE (gate at 20% and 40% of the steps) and ToMe
    (ratio 0.3 and 0.6) are swept on their own, and at one middle value inside combinations, where
    DeepCache's interval (2, 3, 5) dominates the speed.
    """
    accelerators = canonical_accelerators(accelerators)
    tome_ds = default_tome_max_downsample(model)
    intervals = [2, 3, 4, 5]
    gate_fractions = [0.2, 0.4]
    ratios = [0.3, 0.6]
    if len(accelerators) > 1:
        intervals, gate_fractions, ratios = [2, 3, 5], [0.4], [0.5]
    deepcache = [DeepCacheParams(cache_interval=n, cache_branch_id=0) for n in intervals]
    if accelerators == ("DeepCache",):
        deepcache.append(DeepCacheParams(cache_interval=2, cache_branch_id=1))
    tgate = [TGateParams(gate_step=max(3, round(f * steps))) for f in gate_fractions]
    tome = [ToMeParams(ratio=r, max_downsample=tome_ds) for r in ratios]
    options = {"DeepCache": deepcache, "T-Gate": tgate, "ToMe": tome}
    settings = [Settings()]
    for name in accelerators:
        settings = [
            s.model_copy(update={field_name(name): params}) for s in settings for params in options[name]
        ]
    return settings if accelerators else []
