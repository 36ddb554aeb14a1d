"""Eager vs graph execution for each accelerator setting, on full-size random-initialised pipelines.

    python benchmarks/graph_bench.py --out graph.jsonl --max-minutes 8 [--models SD1.5,SDXL]

On CUDA, fp16, 25 DDIM steps, guidance 7.5, one prompt, seed 0. For each (model, setting, engine):
median latency over the runs after one first call (which, under graphs, captures), run-to-run CV,
speedup against the EAGER unaccelerated pipeline, SSIM/PSNR against the eager unaccelerated image,
max abs pixel difference (0-255) between the graph and the eager image of the same setting, and
the first call's seconds. One JSON line per row, appended as it finishes; rows already in --out are
skipped, so a stopped run resumes. Stops before a row that would not fit --max-minutes. Prints a
table last; `benchmarks/graph_chart.py` draws the chart from the same file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import DeepCacheParams, Settings, TGateParams, ToMeParams, default_tome_max_downsample  # noqa: E402
from search import accelerators as acc  # noqa: E402
from search.graph import enable_graphs  # noqa: E402
from search.measure import PROMPTS  # noqa: E402
from search.protocol import image_quality, timed  # noqa: E402

STEPS = 25
GATE = round(0.4 * STEPS)


def settings_for(model: str) -> dict[str, Settings]:
    tome = {r: ToMeParams(ratio=r, max_downsample=default_tome_max_downsample(model)) for r in (0.3, 0.5)}

    def dc(interval, branch=0):
        return DeepCacheParams(cache_interval=interval, cache_branch_id=branch)

    tgate = TGateParams(gate_step=GATE)
    return {
        "baseline": Settings(),
        "DC3": Settings(deepcache=dc(3)),
        "DC2": Settings(deepcache=dc(2)),
        "DC4": Settings(deepcache=dc(4)),
        "DC5": Settings(deepcache=dc(5)),
        "DC2b1": Settings(deepcache=dc(2, 1)),
        "DC3b1": Settings(deepcache=dc(3, 1)),
        "ToMe0.3": Settings(tome=tome[0.3]),
        "ToMe0.5": Settings(tome=tome[0.5]),
        "TGate": Settings(tgate=tgate),
        "DC3+ToMe": Settings(deepcache=dc(3), tome=tome[0.5]),
        "DC3+TGate": Settings(deepcache=dc(3), tgate=tgate),
        "DC3+TGate+ToMe": Settings(deepcache=dc(3), tgate=tgate, tome=tome[0.5]),
    }


def row_order(models):
    """The goal rows of every model first (baseline and DeepCache 3), then the rest model by model."""
    first = ("baseline", "DC3")
    order = [(m, s, e) for m in models for s in first for e in ("eager", "graph")]
    for model in models:
        order += [(model, s, e) for s in settings_for(model) if s not in first for e in ("eager", "graph")]
    return order


def generate(pipe, plan):
    import torch

    return acc.run(pipe, plan, prompt=PROMPTS[0], num_inference_steps=STEPS, guidance_scale=7.5,
                   generator=torch.Generator("cpu").manual_seed(0), output_type="np").images[0]


def measure(pipe, model, name, settings, engine, runs):
    import numpy as np
    import torch

    plan = acc.plan(model, settings)
    undo = acc.apply(pipe, plan)
    graphs = enable_graphs(pipe) if engine == "graph" else None
    torch.cuda.reset_peak_memory_stats()
    try:
        first_s, image = timed(lambda _: generate(pipe, plan), None, "cuda")
        latencies = []
        for _ in range(runs):
            seconds, image = timed(lambda _: generate(pipe, plan), None, "cuda")
            latencies.append(seconds)
    finally:
        info = {}
        if graphs is not None:
            unet = graphs["unet"]
            info = {"capture_s": round(graphs.capture_seconds, 3), "unet_graphs": unet.captures,
                    "fallbacks": sorted(set(graphs.fallbacks)),
                    "unet_steps": [f"{label}:{event}" for label, event in list(unet.log)[-STEPS:]]}
            graphs()
        undo()
    median = statistics.median(latencies)
    cv = statistics.pstdev(latencies) / statistics.fmean(latencies) if len(latencies) > 1 else 0.0
    row = {"model": model, "setting": name, "params": settings.to_json(), "engine": engine,
           "runs": runs, "latencies_s": [round(x, 4) for x in latencies], "median_s": round(median, 4),
           "cv": round(cv, 4), "first_call_s": round(first_s, 3),
           "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2), **info}
    return row, np.asarray(image, dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="graph.jsonl")
    parser.add_argument("--models", default="SD1.5,SD2.1,SDXL")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per graph row")
    parser.add_argument("--eager-runs", type=int, default=3, help="timed runs per eager row")
    parser.add_argument("--max-minutes", type=float, default=8.0)
    parser.add_argument("--only", default="", help="comma-separated setting names (default: all)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from search.measure import device_name, library_versions
    from search.pipelines import build_random

    started = time.perf_counter()
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    done = {(r["model"], r["setting"], r["engine"]) for r in rows}
    models = args.models.split(",")
    order = [r for r in row_order(models) if not args.only or r[1] in args.only.split(",")]
    device, versions = device_name("cuda"), library_versions()
    pipes, images, last_cost = {}, {}, {}

    def image_of(model, name, engine):
        """An image measured this session, or one eager call to make it (resumed runs)."""
        if (model, name, engine) not in images:
            undo = acc.apply(pipes[model], acc.plan(model, settings_for(model)[name]))
            images[(model, name, engine)] = np.asarray(generate(pipes[model], acc.plan(model, settings_for(model)[name])), dtype=np.float32)
            undo()
        return images[(model, name, engine)]

    for model, name, engine in order:
        if (model, name, engine) in done:
            continue
        elapsed = time.perf_counter() - started
        if elapsed + 1.3 * last_cost.get((model, engine), 0) > args.max_minutes * 60:
            print(f"stopping: {elapsed / 60:.1f} min used, next row would not fit", flush=True)
            break
        row_started = time.perf_counter()
        if model not in pipes:
            pipes[model] = build_random(model, "full", device="cuda", dtype=torch.float16)
        pipe = pipes[model]
        runs = args.runs if engine == "graph" else args.eager_runs
        row, image = measure(pipe, model, name, settings_for(model)[name], engine, runs)
        images[(model, name, engine)] = image
        baseline = next((r["median_s"] for r in rows if (r["model"], r["setting"], r["engine"]) == (model, "baseline", "eager")), None)
        if baseline is None and (model, name, engine) == (model, "baseline", "eager"):
            baseline = row["median_s"]
        reference = image_of(model, "baseline", "eager")
        quality = image_quality(reference, image)
        row.update({"speedup": round(baseline / row["median_s"], 3) if baseline else None,
                    "ssim": round(quality["ssim"], 4), "psnr": round(quality["psnr"], 2)})
        if engine == "graph":
            row["max_abs_diff_vs_eager"] = round(float(np.abs(image - image_of(model, name, "eager")).max()) * 255, 2)
        row.update({"device": device, "dtype": "float16", "steps": STEPS, "sampler": "DDIM",
                    "weights": "random", "libraries": versions,
                    "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
        rows.append(row)
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        last_cost[(model, engine)] = time.perf_counter() - row_started
        print(f"{model:6} {name:15} {engine:5} median {row['median_s']:.3f}s cv {row['cv']:.3f} "
              f"x{row['speedup']} ssim {row['ssim']} first {row['first_call_s']}s "
              f"diff {row.get('max_abs_diff_vs_eager', '-')} {row.get('fallbacks', '')}", flush=True)
    print_table(rows)


def print_table(rows):
    by_key = {(r["model"], r["setting"], r["engine"]): r for r in rows}
    print("\n| model | setting | eager s | graph s | eager x | graph x | SSIM graph | CV graph | "
          "max diff | first call s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in dict.fromkeys(r["model"] for r in rows):
        for name in settings_for(model):
            eager, graph = by_key.get((model, name, "eager")), by_key.get((model, name, "graph"))
            if not eager and not graph:
                continue

            def get(row, key, fmt="{}"):
                return fmt.format(row[key]) if row and row.get(key) is not None else "-"

            print(f"| {model} | {name} | {get(eager, 'median_s', '{:.3f}')} | {get(graph, 'median_s', '{:.3f}')} | "
                  f"{get(eager, 'speedup', '{:.2f}')} | {get(graph, 'speedup', '{:.2f}')} | {get(graph, 'ssim', '{:.3f}')} | "
                  f"{get(graph, 'cv', '{:.3f}')} | {get(graph, 'max_abs_diff_vs_eager')} | {get(graph, 'first_call_s')} |")


if __name__ == "__main__":
    main()
