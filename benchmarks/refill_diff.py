"""What the refill did to the first version's claims: each eager claim the first version's database
made ("this setting reaches this target") for a combination the current protocol has measured since,
checked against the same setting's new measurement. No GPU needed.

The first version timed 2 rounds of 1 prompt and picked the best-quality setting whose point estimate
crossed the target; the current protocol times up to 6-10 paired rounds and picks by the 95%
interval's lower bound (search/protocol.py). The first version's file is read from git.

    python benchmarks/refill_diff.py [--old 4af8714] [--db search_params.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core import db  # noqa: E402
from core.task import MODELS  # noqa: E402
from search.measure import timed_now  # noqa: E402

FIRST_VERSION = "4af8714"  # "search_params.json: full grid, 162 sweeps, 1134 entries (H100, fp16, random weights)"


def load_at(commit: str, path: str = "search_params.json") -> db.Database:
    text = subprocess.run(["git", "show", f"{commit}:{path}"], check=True, capture_output=True, text=True,
                          cwd=ROOT).stdout
    return db.Database.model_validate_json(text)


def remeasured(new: db.Database) -> dict[tuple, db.Sweep]:
    """The sweeps the current protocol measured and timed, by combination."""
    return {s.combo_key: s for s in new.sweeps if timed_now(s.provenance)}


def eager(sweep: db.Sweep) -> dict[str, db.Candidate]:
    """`sweep`'s eager contenders by setting (Settings is not hashable: its JSON text is the key)."""
    return {str(c.params.to_json()): c for c in sweep.candidates if c.engine == "eager"}


def compare(old: db.Database, new: db.Database) -> dict[str, Counter]:
    """Per model: the first version's eager claims in combinations measured again, and what became of them."""
    current = remeasured(new)
    counts: dict[str, Counter] = {}
    for entry in old.entries:
        sweep = current.get(entry.combo_key)
        if sweep is None or entry.engine != "eager" or entry.status != "ok":
            continue
        count = counts.setdefault(entry.model, Counter())
        count["claims"] += 1
        count["claimed figure within 5% of the target"] += entry.measured.speedup < 1.05 * entry.target
        count["claimed figure within 10% of the target"] += entry.measured.speedup < 1.10 * entry.target
        now = {e.engine: e.status for e in db.entries_from_sweep(sweep, entry.target)}
        count["target reached by the new eager pick"] += now.get("eager") == "ok"
        count["target reached by the new graph pick"] += now.get("graph") == "ok"
        same = eager(sweep).get(str(entry.params.to_json()))
        if same is None:
            count["setting not measured again"] += 1
            continue
        count["setting measured again"] += 1
        count["its new estimate reaches the target"] += same.speedup >= entry.target
        count["its new lower bound reaches the target"] += same.speedup_interval[0] >= entry.target
    return counts


def figure_ratios(old: db.Database, new: db.Database) -> dict[str, list[float]]:
    """Per model: the first version's eager speedup of a setting over its new one, every setting measured by both."""
    first = {s.combo_key: s for s in old.sweeps}
    ratios: dict[str, list[float]] = {}
    for key, sweep in remeasured(new).items():
        if key not in first:
            continue
        before = eager(first[key])
        ratios.setdefault(sweep.model, []).extend(
            before[setting].speedup / c.speedup for setting, c in eager(sweep).items() if setting in before)
    return ratios


def claimed_ratios(old: db.Database, new: db.Database) -> dict[str, list[float]]:
    """Per model: as `figure_ratios`, over the settings the first version claimed for some target (each once)."""
    current = remeasured(new)
    ratios: dict[str, dict] = {}
    for entry in old.entries:
        if entry.engine != "eager" or entry.status != "ok" or entry.combo_key not in current:
            continue
        setting = str(entry.params.to_json())
        now = eager(current[entry.combo_key]).get(setting)
        if now is not None:
            ratios.setdefault(entry.model, {})[setting, entry.combo_key] = entry.measured.speedup / now.speedup
    return {model: list(by_setting.values()) for model, by_setting in ratios.items()}


def devices(sweeps: list[db.Sweep]) -> str:
    return ", ".join(sorted({s.provenance.device or "unknown GPU" for s in sweeps}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default=FIRST_VERSION, help="the commit holding the first version's file")
    parser.add_argument("--db", default=str(db.shipped_path()))
    args = parser.parse_args()
    old, new = load_at(args.old), db.load(args.db)
    counts, ratios, claimed = compare(old, new), figure_ratios(old, new), claimed_ratios(old, new)
    rows = ["claims", "claimed figure within 5% of the target", "claimed figure within 10% of the target",
            "target reached by the new eager pick", "target reached by the new graph pick",
            "setting not measured again", "setting measured again", "its new estimate reaches the target",
            "its new lower bound reaches the target"]
    models = [m for m in MODELS if m in counts]
    if not models:
        raise SystemExit(f"no combination of {args.old}'s file was measured again by the current protocol")
    measured = {m: devices([s for s in remeasured(new).values() if s.model == m]) for m in models}
    how = "/".join(sorted({f"{len(s.provenance.prompts)} prompt(s), {(s.provenance.model_extra or {}).get('repeats')}"
                           " rounds" for s in old.sweeps}))
    print(f"# python benchmarks/refill_diff.py --old {args.old}: the first version (sweeps on {devices(old.sweeps)}, "
          f"{how}) against {os.path.relpath(args.db)} (the current protocol's sweeps: "
          + "; ".join(f"{m} on {measured[m]}" for m in models) + ")\n")
    print("| first version's eager claims, in combinations measured again | " + " | ".join(models) + " |")
    print("|---|" + "---|" * len(models))
    for row in rows:
        print(f"| {row} | " + " | ".join(str(counts[m][row]) for m in models) + " |")
    print("\n| eager speedup of a setting, first version over now | settings | median | quartiles |")
    print("|---|---|---|---|")
    for model in models:
        for which, values in (("every setting", ratios[model]), ("the settings it claimed", claimed[model])):
            low, mid, high = statistics.quantiles(values, n=4)
            print(f"| {model}, {which} | {len(values)} | {mid:.3f} | {low:.3f}-{high:.3f} |")


if __name__ == "__main__":
    main()
