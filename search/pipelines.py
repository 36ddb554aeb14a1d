"""The three pipelines, built from real weights, or random-initialised at full or tiny size.

Full size (`weights="random"`) has the real architecture and resolution (SD1.5 512 px, SD2.1 768 px,
SDXL 1024 px) so its speed is the real model's speed where no weights exist; its images are noise,
so quality measured on it is only a proxy. Tiny pipelines keep the real block layout (block types,
layers_per_block 2, SDXL's text_time conditioning and two text encoders) at small widths, for tests
and CPU demos. Nothing here downloads anything unless a hub id is given for real weights.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from core.task import MODEL_INFO, SAMPLER_INFO

SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
XL_DOWN = ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
XL_UP = ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]

CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              hidden_act="quick_gelu", projection_dim=768)
OPENCLIP_H = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                  num_attention_heads=16, hidden_act="gelu", projection_dim=512)
OPENCLIP_BIGG = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                     num_attention_heads=20, hidden_act="gelu", projection_dim=1280)
TINY_CLIP = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                 hidden_act="gelu", projection_dim=32)

# The published configs, trimmed to what differs from diffusers' defaults.
FULL = {
    "SD1.5": dict(
        unet=dict(sample_size=64, block_out_channels=[320, 640, 1280, 1280], down_block_types=SD_DOWN,
                  up_block_types=SD_UP, cross_attention_dim=768, attention_head_dim=8),
        vae=dict(block_out_channels=[128, 256, 512, 512], sample_size=512),
        text=[CLIP_L],
        scheduler=dict(prediction_type="epsilon"),
    ),
    "SD2.1": dict(
        unet=dict(sample_size=96, block_out_channels=[320, 640, 1280, 1280], down_block_types=SD_DOWN,
                  up_block_types=SD_UP, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
                  use_linear_projection=True),
        vae=dict(block_out_channels=[128, 256, 512, 512], sample_size=768),
        text=[OPENCLIP_H],
        scheduler=dict(prediction_type="v_prediction"),
    ),
    "SDXL": dict(
        unet=dict(sample_size=128, block_out_channels=[320, 640, 1280], down_block_types=XL_DOWN,
                  up_block_types=XL_UP, transformer_layers_per_block=[1, 2, 10],
                  attention_head_dim=[5, 10, 20], cross_attention_dim=2048,
                  use_linear_projection=True, addition_embed_type="text_time",
                  addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816),
        vae=dict(block_out_channels=[128, 256, 512, 512], sample_size=1024, scaling_factor=0.13025,
                 force_upcast=True),
        text=[CLIP_L, OPENCLIP_BIGG],
        scheduler=dict(prediction_type="epsilon", timestep_spacing="leading"),
    ),
}

TINY = {
    "SD1.5": dict(
        unet=dict(sample_size=16, block_out_channels=[32, 32, 64, 64], down_block_types=SD_DOWN,
                  up_block_types=SD_UP, cross_attention_dim=32, attention_head_dim=8,
                  norm_num_groups=8),
        vae=dict(block_out_channels=[8, 8, 16, 16], sample_size=128, norm_num_groups=8),
        text=[TINY_CLIP],
        scheduler=FULL["SD1.5"]["scheduler"],
    ),
    "SD2.1": dict(
        unet=dict(sample_size=16, block_out_channels=[32, 32, 64, 64], down_block_types=SD_DOWN,
                  up_block_types=SD_UP, cross_attention_dim=32, attention_head_dim=[2, 2, 4, 4],
                  use_linear_projection=True, norm_num_groups=8),
        vae=dict(block_out_channels=[8, 8, 16, 16], sample_size=128, norm_num_groups=8),
        text=[TINY_CLIP],
        scheduler=FULL["SD2.1"]["scheduler"],
    ),
    "SDXL": dict(
        unet=dict(sample_size=16, block_out_channels=[32, 64, 64], down_block_types=XL_DOWN,
                  up_block_types=XL_UP, transformer_layers_per_block=[1, 2, 2],
                  attention_head_dim=[2, 4, 4], cross_attention_dim=64, use_linear_projection=True,
                  addition_embed_type="text_time", addition_time_embed_dim=8,
                  projection_class_embeddings_input_dim=80, norm_num_groups=8),
        vae=dict(block_out_channels=[8, 8, 16, 16], sample_size=128, norm_num_groups=8,
                 force_upcast=True),
        text=[TINY_CLIP, TINY_CLIP],
        scheduler=FULL["SDXL"]["scheduler"],
    ),
}

SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                    clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def write_tokenizer(directory: Path) -> Path:
    """A CLIP BPE tokenizer over single characters: no merges, no download, real special tokens."""
    directory.mkdir(parents=True, exist_ok=True)
    characters = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    vocab = {}
    for token in characters + [c + "</w>" for c in characters] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(token, len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return directory


def _tokenizer():
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tokenizer(Path(tmp))
        return CLIPTokenizer(
            str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
        )


def build_random(model: str, size: str = "tiny", device: str = "cpu", dtype=None, seed: int = 0):
    """A pipeline of `model`'s architecture with random weights; size 'tiny' or 'full'."""
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    configs = (TINY if size == "tiny" else FULL)[model]
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    with torch.device(device):
        unet = diffusers.UNet2DConditionModel(layers_per_block=2, **configs["unet"])
        vae = diffusers.AutoencoderKL(
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            latent_channels=4,
            layers_per_block=2,
            **configs["vae"],
        )
        encoders = []
        for index, text in enumerate(configs["text"]):
            config = CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **text)
            cls = CLIPTextModelWithProjection if (model == "SDXL" and index == 1) else CLIPTextModel
            encoders.append(cls(config))
    scheduler = diffusers.DDIMScheduler(**SD_SCHEDULER, **configs["scheduler"])
    parts = dict(unet=unet, vae=vae, scheduler=scheduler, text_encoder=encoders[0], tokenizer=tokenizer)
    if model == "SDXL":
        pipe = diffusers.StableDiffusionXLPipeline(
            text_encoder_2=encoders[1], tokenizer_2=tokenizer, **parts
        )
    else:
        pipe = diffusers.StableDiffusionPipeline(
            safety_checker=None, feature_extractor=None, requires_safety_checker=False, **parts
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype) if dtype is not None else pipe


def write_tiny(directory: Path | str, model: str) -> Path:
    """Save a tiny random pipeline that `from_pretrained(directory)` loads offline."""
    return write_random(directory, model, "tiny")


def write_random(directory: Path | str, model: str, size: str, device: str = "cpu", dtype=None) -> Path:
    """Save a random-initialised pipeline (tiny, or full size for GPU checks) that loads offline."""
    directory = Path(directory)
    build_random(model, size, device=device, dtype=dtype).save_pretrained(str(directory))
    return directory


def load(model: str, weights: str = "real", model_path: str | None = None, device: str = "cpu",
         dtype=None):
    """weights: 'real' (hub id or local path), 'random' (full size) or 'tiny'."""
    import diffusers

    if weights == "real":
        cls = getattr(diffusers, MODEL_INFO[model].pipeline_class)
        pipe = cls.from_pretrained(model_path or MODEL_INFO[model].hub_id, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device)
    return build_random(model, "full" if weights == "random" else "tiny", device=device, dtype=dtype)


def set_sampler(pipe, sampler: str) -> None:
    import diffusers

    info = SAMPLER_INFO[sampler]
    cls = getattr(diffusers, info.scheduler_class)
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **dict(info.scheduler_kwargs))


def resolution(pipe) -> int:
    return pipe.unet.config.sample_size * pipe.vae_scale_factor
