"""The accelerator knobs: one pydantic model per library, and `Settings`, one setting of a combination.

These are the values the search tunes, the database stores and the templates render. How each knob
reaches its library (loaders, patches, calls) lives in `search.accelerators`.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from core.task import canonical_accelerators


class DeepCacheParams(BaseModel):
    """DeepCacheSDHelper knobs."""

    model_config = ConfigDict(extra="forbid")
    cache_interval: int = Field(3, ge=1, description="run the full U-Net every N steps")
    cache_branch_id: int = Field(
        0, ge=0, description="skip branch recomputed on cached steps; lower is cheaper, coarser"
    )


class TGateParams(BaseModel):
    """Keyword arguments of `pipe.tgate(...)`."""

    model_config = ConfigDict(extra="forbid")
    gate_step: int = Field(10, ge=1, description="step after which cross-attention is cached")
    sp_interval: int = Field(5, ge=1, description="self-attention cache interval before gate_step")
    fi_interval: int = Field(1, ge=1, description="self-attention cache interval after gate_step")
    warm_up: int = Field(2, ge=0, description="first steps always computed in full")


class ToMeParams(BaseModel):
    """tomesd.apply_patch knobs."""

    model_config = ConfigDict(extra="forbid")
    ratio: float = Field(0.5, gt=0.0, le=0.75, description="fraction of tokens merged")
    max_downsample: Literal[1, 2, 4, 8] = Field(1, description="merge in layers up to this downsampling")
    sx: int = Field(2, ge=1)
    sy: int = Field(2, ge=1)


class Settings(BaseModel):
    """One setting of the accelerators of a combination; an accelerator left None is not used."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    deepcache: Optional[DeepCacheParams] = Field(None, alias="DeepCache")
    tgate: Optional[TGateParams] = Field(None, alias="T-Gate")
    tome: Optional[ToMeParams] = Field(None, alias="ToMe")

    @property
    def accelerators(self) -> tuple[str, ...]:
        named = {"DeepCache": self.deepcache, "T-Gate": self.tgate, "ToMe": self.tome}
        return canonical_accelerators(name for name, params in named.items() if params is not None)

    def to_json(self) -> dict:
        """{'DeepCache': {...}, 'ToMe': {...}}: the form stored in search_params.json."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def describe(self) -> str:
        parts = []
        for name, params in self.to_json().items():
            knobs = ", ".join(f"{key}={value}" for key, value in params.items())
            parts.append(f"{name}({knobs})")
        return " + ".join(parts) or "no accelerator"


# Which parameter belongs to which accelerator: reads the original tool's flat parameter dicts.
PARAMETER_OWNERS = {
    name: accelerator
    for accelerator, params_class in (
        ("DeepCache", DeepCacheParams),
        ("T-Gate", TGateParams),
        ("ToMe", ToMeParams),
    )
    for name in params_class.model_fields
}


def default_tome_max_downsample(model: str) -> int:
    return 2 if model == "SDXL" else 1


_FIELD = {"DeepCache": "deepcache", "T-Gate": "tgate", "ToMe": "tome"}


def settings_from_json(data: dict) -> Settings:
    """Read stored parameters: nested by accelerator, or the original tool's flat dict."""
    if any(key in data for key in ("DeepCache", "T-Gate", "ToMe")):
        return Settings.model_validate(data)
    nested: dict[str, dict] = {}
    for key, value in data.items():
        owner = PARAMETER_OWNERS.get(key)
        if owner is not None:  # the original files mix figures (speedup, ssim) into the dict
            nested.setdefault(owner, {})[key] = value
    if not nested:
        raise ValueError(f"no accelerator parameter among {sorted(data)}")
    return Settings.model_validate(nested)


def field_name(accelerator: str) -> str:
    """The `Settings` field of an accelerator: 'T-Gate' -> 'tgate'."""
    return _FIELD[accelerator]
