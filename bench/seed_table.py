"""The paper-style table: methods meta-trained with several seeds, each seed's checkpoint evaluated
on the same tasks by ``python -m dass.evaluation`` (method names ``<method>@s<seed>``); per task the
mean over a method's seeds, then the mean over tasks with a 90 % bootstrap interval
(``dass.correlation.bootstrap_interval``) and the spread of the seeds' task means.

    python bench/seed_table.py runs/scratch_baselines/evaluate/correlations.csv [--label best_acc]
        [--metric spearman] [--methods dass rapid_nas ...] [--tasks KEY ...] [--json out.json]
Methods without ``@s`` (the deterministic baselines) count as one seed.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dass.correlation import bootstrap_interval  # noqa: E402


SUMMARY_ROWS = ("mean", "ci90_lo", "ci90_hi")   # rows of the evaluation's own summary (and "<row>:<group>"), not tasks


def read(path: Path, label: str, metric: str) -> dict[str, dict[str, dict[int, float]]]:
    """{method: {task: {seed: value}}} from an evaluation's correlations.csv."""
    out: dict = defaultdict(lambda: defaultdict(dict))
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["label"] != label or r[metric] in ("", "nan") or r["task"].split(":")[0] in SUMMARY_ROWS:
                continue
            name, _, seed = r["method"].partition("@s")
            out[name][r["task"]][int(seed) if seed else 0] = float(r[metric])
    return out


def table(data, methods: list[str], only: list[str] | None = None) -> tuple[list[str], list[dict]]:
    tasks = sorted({t for m in methods for t in data[m] if not only or t in only})
    rows = []
    for m in methods:
        per_task = [float(np.mean(list(data[m][t].values()))) for t in tasks]
        seeds = sorted({s for t in tasks for s in data[m][t]})
        seed_means = [float(np.mean([data[m][t][s] for t in tasks])) for s in seeds]
        lo, hi = bootstrap_interval(per_task)
        rows.append({"method": m, "tasks": dict(zip(tasks, per_task)), "mean": float(np.mean(per_task)),
                     "ci90": [lo, hi], "seeds": seeds, "seed_means": seed_means,
                     "seed_sd": float(np.std(seed_means, ddof=1)) if len(seeds) > 1 else None})
    return tasks, rows


def markdown(tasks: list[str], rows: list[dict]) -> str:
    head = "| method | seeds | " + " | ".join(t.replace("glyphs-", "") for t in tasks) + " | mean | 90 % CI | sd over seeds |"
    lines = [head, "|---|---:|" + "---:|" * len(tasks) + "---:|---:|---:|"]
    for r in rows:
        sd = f"{r['seed_sd']:.3f}" if r["seed_sd"] is not None else "-"
        lines.append(f"| {r['method']} | {len(r['seeds'])} | " + " | ".join(f"{r['tasks'][t]:.3f}" for t in tasks)
                     + f" | {r['mean']:.3f} | [{r['ci90'][0]:.3f}, {r['ci90'][1]:.3f}] | {sd} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("correlations", type=Path)
    p.add_argument("--label", default="best_acc")
    p.add_argument("--metric", default="spearman", choices=["spearman", "partial_spearman", "kendall", "regret"])
    p.add_argument("--methods", nargs="*", help="methods in this order (default: all, as read)")
    p.add_argument("--tasks", nargs="*", help="only these task keys (a regime's columns); default: every task")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    if not a.correlations.is_file():
        print(f"error: {a.correlations}: no such file", file=sys.stderr)
        return 2
    data = read(a.correlations, a.label, a.metric)
    methods = a.methods or list(data)
    unknown = [m for m in methods if m not in data]
    if unknown:
        print(f"error: methods not in {a.correlations}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    missing = [t for t in a.tasks or [] if not any(t in data[m] for m in methods)]
    if missing:
        print(f"error: tasks not in {a.correlations}: {', '.join(missing)}", file=sys.stderr)
        return 2
    tasks, rows = table(data, methods, a.tasks)
    print(markdown(tasks, rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
