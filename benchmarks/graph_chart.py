"""Charts of graph-engine latency: benchmarks/graph_bench.py's rows (eager vs graph per setting) or
benchmarks/graph_speed_probe.py's rows (chosen rows, each model's from one call), one panel a model.

    python benchmarks/graph_chart.py benchmarks/results/graph_h200.jsonl -o benchmarks/results/graph_h200.png
    python benchmarks/graph_chart.py benchmarks/results/graph_probe_h100_6.jsonl benchmarks/results/graph_probe_h100_7.jsonl \\
        --rows "eager,graph DC3,graph DC3 compile-unet+vae tuned,graph DC3 compile-pipeline" \\
        -o benchmarks/results/graph_compile_h100.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

GREY, BLUE, GREEN, RED = "#9e9e9e", "#1f77b4", "#2ca02c", "#d62728"


def annotate(axis, bars, labels) -> None:
    for bar, label in zip(bars, labels):
        if label:
            axis.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=7)


def bench_panel(axis, rows, model) -> None:
    """graph_bench.py rows: per setting an eager and a graph bar, the eager baseline as a line."""
    latency = {(r["setting"], r["engine"]): r["median_s"] for r in rows if r["model"] == model}
    settings = list(dict.fromkeys(r["setting"] for r in rows if r["model"] == model))
    positions = range(len(settings))
    for offset, engine, color in ((-0.2, "eager", GREY), (0.2, "graph", BLUE)):
        values = [latency.get((s, engine), 0.0) for s in settings]
        bars = axis.bar([p + offset for p in positions], values, 0.4, label=engine, color=color)
        annotate(axis, bars, [f"{v:.2f}" if v else "" for v in values])
    baseline = latency.get(("baseline", "eager"))
    if baseline:
        axis.axhline(baseline, color=RED, linewidth=0.8, linestyle="--", label="eager, no accelerator")
    axis.set_xticks(list(positions), settings, rotation=20, fontsize=8)


def probe_panel(axis, rows, model, wanted) -> None:
    """graph_speed_probe.py rows: one bar a row, labelled with its speedup over the call's eager row."""
    latency = {r["row"]: r["median_s"] for r in rows if r["model"] == model and "error" not in r}
    names = [name for name in wanted if name in latency]
    eager = latency.get("eager")
    colors = [GREY if n == "eager" else GREEN if "compile" in n else BLUE for n in names]
    bars = axis.bar(range(len(names)), [latency[n] for n in names], 0.6, color=colors)
    annotate(axis, bars, [f"{latency[n]:.3f} s" + (f"\n{eager / latency[n]:.2f}x" if eager else "")
                          for n in names])
    axis.set_xticks(range(len(names)), names, rotation=12, fontsize=8)
    axis.margins(y=0.15)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", nargs="+")
    parser.add_argument("--rows", default="", help="graph_speed_probe.py rows to draw, in this order")
    parser.add_argument("-o", "--output", default="graph.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for path in args.jsonl for line in Path(path).read_text().splitlines() if line.strip()]
    probe = "row" in rows[0]
    if probe and not args.rows:
        parser.error("graph_speed_probe.py rows need --rows: which rows to draw")
    models = list(dict.fromkeys(r["model"] for r in rows))
    figure, axes = plt.subplots(len(models), 1, figsize=(12, 3.6 * len(models)), squeeze=False)
    for axis, model in zip(axes[:, 0], models):
        if probe:
            probe_panel(axis, rows, model, args.rows.split(","))
        else:
            bench_panel(axis, rows, model)
            axis.legend(fontsize=8)
        axis.set_ylabel("seconds per image")
        device = next(r.get("device", "") for r in rows if r["model"] == model)
        axis.set_title(f"{model}: 25 DDIM steps, fp16, median latency ({device}, random weights)", fontsize=10)
    figure.tight_layout()
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
