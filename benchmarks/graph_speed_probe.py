"""Where a graph step's time goes, and which quality-free changes make it shorter (issue 8).

    python benchmarks/graph_speed_probe.py --out probe.jsonl --models SD1.5,SDXL --max-minutes 9

Full-size random-initialised pipelines, fp16, 25 DDIM steps, guidance 7.5, one prompt, seed 0, CUDA.
Rows, each timed after one first call (which captures, or compiles and captures):
  eager baseline; graph baseline; graph DeepCache 3/0 (the goal's quality rule), its latent-only time
  (the pipeline without the VAE decode), and DeepCache 3/0 under graphs with one change each:
  - cudnn:    scaled-dot-product attention prefers cuDNN's kernel (H100 has one) over flash attention
  - chlast:   the U-Net in channels-last memory format
  - fuseqkv:  diffusers' fused q/k/v projections
  - vae:      the VAE decoder replayed as a graph too (not SDXL: its VAE is upcast to fp32 per call)
  - compile:  every ResNet and transformer block of the U-Net compiled by inductor (no CUDA graphs of
              its own), then captured by the graph engine as before
  - all:      the changes named by --all together
a row "reduce-overhead": the eager pipeline with only `pipe.unet = torch.compile(pipe.unet,
mode="reduce-overhead")` (inductor and torch's own CUDA graphs, as issue 8 measured it; it does not
compose with DeepCache), to compare with the graph baseline on the same host; and "graph
compile-unet" and "graph DC3 compile-unet": the whole U-Net's forward compiled by inductor (no CUDA
graphs of its own) before the accelerators, captured by the graph engine; that with the U-Net in channels-last and inductor's
freezing (weights folded in once, their layouts chosen at compile time: "chlast freeze"), and that
with 1x1 convolutions as matmuls and the VAE decoder compiled too ("compile-unet+vae tuned");
"graph compile-pipeline" and "graph DC3 compile-pipeline": the same through the shipped
`search.graph.compile_pipeline`, what generated scripts' --compile does ("... cudnn": with cuDNN's
attention preferred, for SD2.1's 9216-token self-attention);
and graph rows of the baseline compiled, DeepCache 3/0 + T-GATE (gate step 10), that compiled per
block and through compile_pipeline, and DeepCache 3/0 + ToMe 0.3 through compile_pipeline.
Each row: median and CV of --runs, first-call seconds, SSIM against the eager baseline image and max
abs pixel difference against the plain graph DeepCache image. Appends JSON lines; rows already in
--out are skipped. Ratios between graph rows of one process are what to read: the eager baseline
of a host wanders (benchmarks/results/eager_baseline.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import DeepCacheParams, Settings, TGateParams, ToMeParams  # noqa: E402
from search import accelerators as acc  # noqa: E402
from search.measure import PROMPTS  # noqa: E402
from search.protocol import image_quality, timed  # noqa: E402

STEPS = 25
CHANGES = ("cudnn", "chlast", "fuseqkv", "vae", "compile")


def generate(pipe, plan, output_type="np"):
    import torch

    return acc.run(pipe, plan, prompt=PROMPTS[0], num_inference_steps=STEPS, guidance_scale=7.5,
                   generator=torch.Generator("cpu").manual_seed(0), output_type=output_type).images[0]


def compile_blocks(unet, blocks=("ResnetBlock2D", "Transformer2DModel", "Downsample2D", "Upsample2D")):
    """Compile each ResNet, transformer and resampling block of `unet` with inductor; return the undo.

    Call it BEFORE the accelerators: DeepCache then keeps the compiled forwards as the ones it runs
    on full steps, ToMe's and T-GATE's patches inside a block become recompiles of that block, and
    the graph engine captures the compiled kernels as it captured the eager ones. Inductor fuses
    the normalisations, activations and projections that eager runs as separate kernels; CUDA
    graphs of its own stay off (the engine does the capturing). Blocks of one shape share one
    compiled code (inductor's caches also persist on disk, which makes a second start faster).
    """
    import torch
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 256)
    torch._dynamo.config.automatic_dynamic_shapes = False  # one static shape per block, as captured
    compiled = [m for m in unet.modules() if type(m).__name__ in blocks and "forward" not in m.__dict__]
    for block in compiled:
        block.forward = torch.compile(block.forward, dynamic=False)

    def undo() -> None:
        for block in compiled:
            block.__dict__.pop("forward", None)

    return undo


@contextlib.contextmanager
def changed(pipe, model, changes):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from search.graph import MAX_GRAPHS, CudaGraphBackend, _Engine, compile_pipeline

    with contextlib.ExitStack() as stack:
        if "cudnn" in changes:
            stack.enter_context(sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                                             SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], set_priority=True))
        if "chlast" in changes:
            pipe.unet.to(memory_format=torch.channels_last)
            stack.callback(lambda: pipe.unet.to(memory_format=torch.contiguous_format))
        if "fuseqkv" in changes:
            pipe.fuse_qkv_projections(unet=True, vae=False)
            stack.callback(lambda: pipe.unfuse_qkv_projections(unet=True, vae=False))
        if "reduce-overhead" in changes:
            unet = pipe.unet
            pipe.unet = torch.compile(unet, mode="reduce-overhead")
            stack.callback(lambda: setattr(pipe, "unet", unet))
        if "freeze" in changes:  # inductor folds the weights in once (layouts too) instead of per call
            stack.enter_context(torch._inductor.config.patch(freezing=True))
        if "mm1x1" in changes:
            stack.enter_context(torch._inductor.config.patch(conv_1x1_as_mm=True))
        if "compile-unet" in changes:  # the U-Net's forward alone, as compile_pipeline began
            unet = pipe.unet
            stack.enter_context(torch._dynamo.config.patch(recompile_limit=2 * MAX_GRAPHS))  # as compile_pipeline
            unet.forward = torch.compile(unet.forward, dynamic=False)
            stack.callback(lambda: unet.__dict__.pop("forward", None))
        if "compile-pipeline" in changes:
            stack.callback(compile_pipeline(pipe))  # what generated scripts' --compile does
        if "compile-vae" in changes and model != "SDXL":  # SDXL's VAE is upcast to fp32 per call
            decoder = pipe.vae.decoder
            decoder.forward = torch.compile(decoder.forward, dynamic=False)
            stack.callback(lambda: decoder.__dict__.pop("forward", None))
        if "compile" in changes:
            stack.callback(compile_blocks(pipe.unet))  # before the accelerators, as documented
        if "vae" in changes and model != "SDXL":
            engine = _Engine("vae_decoder", pipe.vae.decoder, CudaGraphBackend(), [])
            engine.install()
            stack.callback(engine.uninstall)
        yield


def measure(pipe, model, settings, engine, runs, changes=(), output_type="np", device="cuda"):
    import numpy as np

    import torch

    plan = acc.plan(model, settings)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with changed(pipe, model, changes):
        undo = acc.apply(pipe, plan, engine=engine)
        try:
            first_s, image = timed(lambda _: generate(pipe, plan, output_type), None, device)
            latencies = []
            for _ in range(runs):
                seconds, image = timed(lambda _: generate(pipe, plan, output_type), None, device)
                latencies.append(seconds)
        finally:
            undo()
            # Dynamo keeps compiled code per code object and does not guard on inductor's config:
            # without this a later row would reuse this row's code (and its frozen weights).
            torch._dynamo.reset()
    median = statistics.median(latencies)
    row = {"median_s": round(median, 4), "cv": round(statistics.pstdev(latencies) / statistics.fmean(latencies), 4),
           "first_call_s": round(first_s, 2), "latencies_s": [round(x, 4) for x in latencies]}
    if device == "cuda":
        row["peak_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row, (np.asarray(image, dtype=np.float32) if output_type == "np" else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="probe.jsonl")
    parser.add_argument("--models", default="SD1.5,SD2.1,SDXL")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    parser.add_argument("--all", default="cudnn,vae,compile", help="the changes of the 'all' row")
    parser.add_argument("--max-minutes", type=float, default=9.0)
    parser.add_argument("--size", default="full", help="'tiny' for a dry run of the script on a CPU")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    import numpy as np
    import torch

    from search.measure import device_name, library_versions
    from search.pipelines import build_random

    started = time.perf_counter()
    out = Path(args.out)
    done = {(r["model"], r["row"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    dc3 = Settings(deepcache=DeepCacheParams(cache_interval=3, cache_branch_id=0))
    rows = [("eager", Settings(), "eager", (), "np"), ("graph", Settings(), "graph", (), "np"),
            ("graph DC3", dc3, "graph", (), "np"), ("graph DC3 latent", dc3, "graph", (), "latent")]
    rows += [(f"graph DC3 {c}", dc3, "graph", (c,), "np") for c in CHANGES]
    rows.append(("graph DC3 all", dc3, "graph", tuple(args.all.split(",")), "np"))
    dc3_tgate = Settings(deepcache=dc3.deepcache, tgate=TGateParams(gate_step=round(0.4 * STEPS)))
    rows += [("reduce-overhead", Settings(), "eager", ("reduce-overhead",), "np"),
             ("graph compile-unet", Settings(), "graph", ("compile-unet",), "np"),
             ("graph DC3 compile-unet", dc3, "graph", ("compile-unet",), "np"),
             ("graph DC3 compile-unet chlast freeze", dc3, "graph", ("chlast", "freeze", "compile-unet"), "np"),
             ("graph DC3 compile-unet+vae tuned", dc3, "graph",
              ("chlast", "freeze", "mm1x1", "compile-unet", "compile-vae"), "np"),
             ("graph compile-pipeline", Settings(), "graph", ("compile-pipeline",), "np"),
             ("graph DC3 compile-pipeline", dc3, "graph", ("compile-pipeline",), "np"),
             ("graph DC3 compile-pipeline cudnn", dc3, "graph", ("cudnn", "compile-pipeline"), "np"),
             ("graph compile", Settings(), "graph", ("compile",), "np"),
             ("graph DC3+TGate", dc3_tgate, "graph", (), "np"),
             ("graph DC3+TGate compile", dc3_tgate, "graph", ("compile",), "np"),
             ("graph DC3+TGate compile-pipeline", dc3_tgate, "graph", ("compile-pipeline",), "np"),
             ("graph DC3+ToMe compile-pipeline", Settings(deepcache=dc3.deepcache, tome=ToMeParams(ratio=0.3)),
              "graph", ("compile-pipeline",), "np")]
    wanted = set(args.rows.split(",")) if args.rows else None
    info = {"device": device_name(args.device), "dtype": "float16", "weights": "random" if args.size == "full" else args.size, "steps": STEPS,
            "sampler": "DDIM", "libraries": library_versions()}
    for model in args.models.split(","):
        pipe, images = None, {}
        for name, settings, engine, changes, output_type in rows:
            if (model, name) in done or (wanted and name not in wanted and name not in ("eager", "graph DC3")):
                continue
            if time.perf_counter() - started > args.max_minutes * 60:
                print("stopping: out of time", flush=True)
                return
            if pipe is None:
                pipe = build_random(model, args.size, device=args.device, dtype=torch.float16 if args.device == "cuda" else None)
            try:
                row, image = measure(pipe, model, settings, engine, args.runs, changes, output_type, args.device)
            except Exception as error:  # one row's failure is a finding, not the end of the call
                row, image = {"error": f"{type(error).__name__}: {error}"[:500], "median_s": float("nan"),
                              "cv": float("nan"), "first_call_s": float("nan")}, None
            row.update({"model": model, "row": name, "changes": list(changes), **info})
            if image is not None:
                images[name] = image
                if "eager" in images:
                    row["ssim"] = round(image_quality(images["eager"], image)["ssim"], 4)
                if "graph DC3" in images:
                    row["max_abs_diff_vs_graph_dc3"] = round(float(np.abs(image - images["graph DC3"]).max()) * 255, 2)
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"{model:6} {name:22} {row['median_s']:.4f}s cv {row['cv']:.3f} first {row['first_call_s']}s "
                  f"ssim {row.get('ssim', '-')} diff {row.get('max_abs_diff_vs_graph_dc3', '-')}", flush=True)
        del pipe
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
