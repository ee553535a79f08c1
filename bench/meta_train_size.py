"""How many meta-train tasks and students a predictor needs: meta-train one design on views of a
database cut to the first K meta-train tasks and M of their students (evenly along the MACs order,
as ``labelled_students`` picks them), meta-valid and meta-test tasks unchanged, and report the
meta-valid Spearman per size and seed (designs and sizes are chosen on meta-valid only).

    python bench/meta_train_size.py --db assets/cpu/db --sizes 32x40 16x20 8x20 --seeds 0 1 2 \\
        --out runs/bench/meta_train_size -- input_type=DA arch_encoder=graph
Everything after ``--`` is passed to ``python -m dass.predictor`` (``--config`` defaults to
configs/predictor/paper.yaml). Prints one JSON line per run and a summary table; writes summary.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dass.database.format import load_db, save_task_db  # noqa: E402
from dass.database.plan import evenly  # noqa: E402

PER_STUDENT = ("arch", "onehot", "fmap", "best_acc", "final_acc", "final_loss", "best_acc_seeds",
               "final_acc_seeds", "macs", "params", "wall_s", "seed")


def cut_task(t: dict, m: int) -> dict:
    """``t`` with ``m`` of its students, evenly along their order (the sampled order is by MACs)."""
    st = t["students"]
    n = len(st["arch"])
    idx = evenly(list(range(n)), m)
    out = {k: ([v[i] for i in idx] if isinstance(v, list) else v[idx]) if k in PER_STUDENT and k in st else v
           for k, v in st.items()}
    return {**t, "students": out}


def make_view(db: Path, k: int, m: int, out: Path) -> Path:
    if (out / ".done").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    tasks = load_db(db)
    for t in sorted(tasks["meta_train"], key=lambda t: t["task"]["key"])[:k]:
        save_task_db(cut_task(t, m), out / f"{t['task']['key']}.pt")
    for split in ("meta_valid", "meta_test"):
        for t in tasks[split]:
            save_task_db(t, out / f"{t['task']['key']}.pt")
    (out / ".done").write_text("")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default="assets/cpu/db")
    p.add_argument("--sizes", nargs="+", default=["32x40", "16x20", "8x20"], help="TASKSxSTUDENTS")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--config", default="configs/predictor/paper.yaml")
    p.add_argument("--out", default="runs/bench/meta_train_size")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the predictor config (after --)")
    a = p.parse_args()
    out = Path(a.out)
    rows = []
    for size in a.sizes:
        k, m = (int(x) for x in size.split("x"))
        view = make_view(Path(a.db), k, m, out / "views" / size)
        for seed in a.seeds:
            run = out / "runs" / f"{size}-s{seed}"
            if not (run / "metrics.json").is_file():
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                r = subprocess.run([sys.executable, "-m", "dass.predictor", "--config", a.config, f"db={view}",
                                    f"run_dir={run}", f"seed={seed}", "progress=false", *a.overrides],
                                   env=env, capture_output=True, text=True)
                if r.returncode:
                    print(r.stderr[-3000:], file=sys.stderr)
                    return r.returncode
            met = json.loads((run / "metrics.json").read_text())
            row = {"size": size, "tasks": k, "students": m, "seed": seed,
                   "meta_valid": met["best_valid_spearman"], "best_episode": met.get("best_episode")}
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = {}
    for size in a.sizes:
        v = [r["meta_valid"] for r in rows if r["size"] == size]
        summary[size] = {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
    print("| meta-train tasks x students | meta-valid Spearman, mean (sd over seeds) |\n|---|---:|")
    for size, s in summary.items():
        print(f"| {size} | {s['mean']:.3f} ({s['std']:.3f}) |")
    (out / "summary.json").write_text(json.dumps({"config": a.config, "db": a.db, "overrides": a.overrides, "rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
