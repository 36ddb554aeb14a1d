"""Chart of benchmarks/graph_bench.py's rows: latency per setting, eager vs graph, one panel a model.

    python benchmarks/graph_chart.py benchmarks/results/graph_h200.jsonl -o benchmarks/results/graph_h200.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl")
    parser.add_argument("-o", "--output", default="graph.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(args.jsonl).read_text().splitlines() if line.strip()]
    models = list(dict.fromkeys(r["model"] for r in rows))
    latency = {(r["model"], r["setting"], r["engine"]): r["median_s"] for r in rows}
    figure, axes = plt.subplots(len(models), 1, figsize=(12, 3.6 * len(models)), squeeze=False)
    for axis, model in zip(axes[:, 0], models):
        settings = list(dict.fromkeys(r["setting"] for r in rows if r["model"] == model))
        positions = range(len(settings))
        for offset, engine, color in ((-0.2, "eager", "#9e9e9e"), (0.2, "graph", "#1f77b4")):
            values = [latency.get((model, s, engine), 0.0) for s in settings]
            bars = axis.bar([p + offset for p in positions], values, 0.4, label=engine, color=color)
            for bar, value in zip(bars, values):
                if value:
                    axis.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, value),
                                  ha="center", va="bottom", fontsize=7)
        baseline = latency.get((model, "baseline", "eager"))
        if baseline:
            axis.axhline(baseline, color="#d62728", linewidth=0.8, linestyle="--",
                         label="eager, no accelerator")
        axis.set_xticks(list(positions), settings, rotation=20, fontsize=8)
        axis.set_ylabel("seconds per image")
        axis.set_title(f"{model}: 25 DDIM steps, fp16, median latency "
                       f"({rows[0].get('device', '')}, random weights)", fontsize=10)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
