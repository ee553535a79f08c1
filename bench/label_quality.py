"""Label quality of database builds: compare the student results of two or more database builds.

    python bench/label_quality.py BASE_WORK_DIR OTHER_WORK_DIR [...] [--label best|final|last3]
    python bench/label_quality.py WORK_DIR@1 WORK_DIR@2          # two label seeds of one build

Each argument is a ``work_dir`` of ``python -m dass.database`` (``--phase students`` is enough): its
``results/<task>/<student>.json`` files are read and students are matched across runs by task and
architecture (the same ``sample_seed`` samples the same students). ``WORK_DIR@SEED`` takes only the
runs of KD seed ``SEED`` (a build with several ``label_seeds`` keeps them in one folder); a folder
holding several seeds without ``@SEED`` is refused. Typical pairs: KD seed 1 vs seed 2
(seed agreement), a schedule vs a longer one (convergence), ``kd_recipe.alpha=1.0`` vs the KD recipe (what KD
changes). Per task and run it prints:

* ``n``, the mean and max of the label, the mean seconds per student (the trainer's epoch times);
* ``best<last``: the fraction of students whose best validated epoch comes before the last one
  (near 0: the students are stopped while still climbing);
* ``rho(macs)``: Spearman between the students' MACs and the label;
* against the first run: Spearman of the three candidate labels (``best`` = best_acc, ``final`` =
  final_acc, ``last3`` = the mean of the last three validated epochs), the Spearman-Brown
  reliability ``2r/(1+r)`` of a two-run mean for the chosen label, and the mean gain ``first - this``
  with the fraction of students where the first run is higher.

Ends with one JSON line holding every number.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from dass.database.format import spearman_brown

LABELS = ("best", "final", "last3")


def load_results(work_dir) -> dict[str, dict[str, dict]]:
    """``{task: {arch_json: record}}`` from ``<work_dir>/results/<task>/*.json`` (``<work_dir>@<seed>``:
    the runs of that KD seed only)."""
    work_dir, _, seed = str(work_dir).rpartition("@") if "@" in str(work_dir) else (str(work_dir), "", "")
    out: dict[str, dict[str, dict]] = {}
    seeds = set()
    for f in sorted(Path(work_dir, "results").glob("*/*.json")):
        r = json.loads(f.read_text())
        if seed and str(r.get("seed")) != seed:
            continue
        seeds.add(r.get("seed"))
        accs = [h["test_acc"] for h in r.get("history", []) if h.get("test_acc") is not None]
        if not accs:
            accs = [r["final_acc"]]
        rec = {"best": float(r["best_acc"]), "final": float(r["final_acc"]), "last3": float(np.mean(accs[-3:])),
               "best_epoch": int(np.argmax(accs)), "evals": len(accs), "macs": int(r["macs"]),
               "seconds": float(sum(h.get("seconds", 0.0) for h in r.get("history", [])))}
        out.setdefault(r["task"], {})[json.dumps(r["arch"], sort_keys=True)] = rec
    if len(seeds) > 1:
        raise SystemExit(f"error: {work_dir} holds KD seeds {sorted(seeds)}: name one as {work_dir}@<seed>")
    return out


def compare(runs: list[dict], label: str = "best") -> dict:
    """Per task of the first run: one row per run (see the module doc)."""
    report = {}
    for task, base in sorted(runs[0].items()):
        rows = []
        for i, run in enumerate(runs):
            other = run.get(task, {})
            common = [a for a in sorted(base) if a in other]
            if len(common) < 3:
                rows.append({"run": i, "n": len(common)})
                continue
            b = {k: np.array([other[a][k] for a in common], dtype=float) for k in (*LABELS, "macs", "seconds")}
            row = {"run": i, "n": len(common), "mean": float(b[label].mean()), "max": float(b[label].max()),
                   "seconds": float(b["seconds"].mean()),
                   "best_before_last": float(np.mean([other[a]["best_epoch"] < other[a]["evals"] - 1 for a in common])),
                   "rho_macs": float(spearmanr(b["macs"], b[label])[0])}
            if i > 0:
                a0 = {k: np.array([base[a][k] for a in common], dtype=float) for k in LABELS}
                row["rho"] = {k: float(spearmanr(a0[k], b[k])[0]) for k in LABELS}
                row["reliability"] = spearman_brown(row["rho"][label], 2)
                row["gain"] = float(np.mean(a0[label] - b[label]))
                row["first_higher"] = float(np.mean(a0[label] > b[label]))
            rows.append(row)
        report[task] = rows
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work_dirs", nargs="+", help="database-build work_dir folders; the first is the reference")
    p.add_argument("--label", choices=LABELS, default="best", help="label used for gain, reliability, rho(macs)")
    args = p.parse_args(argv)
    runs = [load_results(w) for w in args.work_dirs]
    if not runs[0]:
        raise SystemExit(f"error: no student results under {args.work_dirs[0]}/results")
    report = compare(runs, args.label)
    for task, rows in report.items():
        print(f"## {task} (label: {args.label})")
        print("| run | n | mean | max | best<last | rho(macs) | s/student | rho best / final / last3 vs run 0 "
              "| reliability | gain (run 0 - run) | run 0 higher |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if "mean" not in r:
                print(f"| {args.work_dirs[r['run']]} | {r['n']} |" + " |" * 9)
                continue
            cmp = (" / ".join(f"{r['rho'][k]:.2f}" for k in LABELS) + f" | {r['reliability']:.2f} | {r['gain']:+.2f} "
                   f"| {r['first_higher']:.2f}") if "rho" in r else "- | - | - | -"
            print(f"| {args.work_dirs[r['run']]} | {r['n']} | {r['mean']:.1f} | {r['max']:.1f} | "
                  f"{r['best_before_last']:.2f} | {r['rho_macs']:.2f} | {r['seconds']:.1f} | {cmp} |")
    print(json.dumps({"bench": "label_quality", "work_dirs": args.work_dirs, "label": args.label, "tasks": report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
