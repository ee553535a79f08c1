"""Pilot of a from-scratch label recipe on the students of one database task: seed agreement and
agreement with the task's KD labels (docs/DATABASE.md, "The from-scratch recipe (pilot)").

    python bench/scratch_pilot.py --task assets/cpu/db/glyphs-hebrew.pt --students 12 --out runs/pilot25/scratch \\
        --plan 40:1 40:2 [--max-students 8 --plan 80:1 80:2]
    python bench/scratch_pilot.py --task assets/cpu/db/glyphs-hebrew.pt --students 12 --out runs/pilot25/scratch --analyse [--common]

``--students`` students of the task file are chosen evenly along its MACs order (the middle of each
of ``--students`` equal slices of the order) and trained from random initialisation on CE only
(``remap="random_init"``, the task's recipe with ``alpha`` 1.0 and ``epochs`` from the plan) for each
``epochs:seed`` of ``--plan``, in lockstep groups of 4 (the first ``--max-students`` of them only),
one thread; each group's result is one JSON file in ``--out`` (a rerun skips finished groups).
``--analyse`` prints, per epoch count, the scratch label (mean over its seeds) over the students every
seed has, the seed-vs-seed Spearman and reliability (:func:`dass.database.format.seed_agreement`), its
Spearman with the task's KD label and with MACs, the KD seeds' agreement over the same students and
the mean seconds per student, and the Spearman with the previous epoch count's label over the
students both have; ``--common`` restricts every row to the students all runs have.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dass.config import from_dict  # noqa: E402
from dass.correlation import correlations  # noqa: E402
from dass.data.registry import load_dataset  # noqa: E402
from dass.database.format import load_task_db, seed_agreement  # noqa: E402
from dass.space import Arch, SpaceConfig  # noqa: E402
from dass.teacher.checkpoint import load_teacher  # noqa: E402
from dass.train.kd_setting import KDSetting  # noqa: E402
from dass.train.lockstep import kd_train_many  # noqa: E402
from dass.train.recipe import KDRecipe  # noqa: E402

GROUP = 4


def spread_students(macs: list[int], n: int) -> list[int]:
    """Indices of ``n`` students evenly along the MACs order, sorted by index."""
    order = sorted(range(len(macs)), key=lambda i: macs[i])
    step = len(order) / n
    return sorted(order[int(k * step + step / 2)] for k in range(n))


def train(task: dict, pick: list[int], plan: list[tuple[int, int]], out: Path, data_root: str,
          eval_every: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    space = from_dict(SpaceConfig, dict(task["space"]))
    dataset = task["task"]["dataset"]
    tr, te = load_dataset(dataset, data_root, "train"), load_dataset(dataset, data_root, "test")
    _, sd, _ = load_teacher(task["task"]["teacher_ckpt"], space, tr.num_classes)
    for epochs, seed in plan:
        recipe = from_dict(KDRecipe, {**dict(task["recipe"]), "alpha": 1.0, "epochs": epochs,
                                      **({"eval_every": eval_every} if eval_every else {})})
        for g in range(0, len(pick), GROUP):
            f = out / f"e{epochs}-s{seed}-g{g}.json"
            if f.is_file():
                continue
            idx = pick[g:g + GROUP]
            t0 = time.perf_counter()
            res = kd_train_many([Arch.from_dict(task["students"]["arch"][i]) for i in idx],
                                KDSetting(space, sd, tr, te, recipe, remap="random_init", device="cpu"), seed=seed)
            wall = time.perf_counter() - t0
            f.write_text(json.dumps({"idx": idx, "wall_s": wall, "epochs": epochs, "seed": seed,
                                     "best_acc": [r["best_acc"] for r in res],
                                     "final_acc": [r["final_acc"] for r in res]}))
            print(f"e{epochs} s{seed} group {g}: {wall:.0f} s", flush=True)


def analyse(task: dict, out: Path, common: bool) -> list[dict]:
    res, walls = {}, {}
    for f in sorted(out.glob("e*-s*-g*.json")):
        d = json.loads(f.read_text())
        for i, b in zip(d["idx"], d["best_acc"]):
            res.setdefault((d["epochs"], d["seed"]), {})[i] = b
        walls.setdefault(d["epochs"], []).append(d["wall_s"] / len(d["idx"]))
    if not res:
        raise SystemExit(f"error: no results in {out}")
    sp = lambda a, b: correlations(np.asarray(a, float), np.asarray(b, float))["spearman"]  # noqa: E731
    st = task["students"]
    rows = []
    for E in sorted({e for e, _ in res}):
        runs = {s: v for (e, s), v in res.items() if e == E}
        idx = sorted(set.intersection(*[set(v) for v in (res.values() if common else runs.values())]))
        a = np.array([[runs[s][i] for s in sorted(runs)] for i in idx])
        m, kd = a.mean(1), st["best_acc"].double().numpy()[idx]
        r, rel = seed_agreement(torch.tensor(a)) if a.shape[1] > 1 else (None, None)
        kds = st["best_acc_seeds"].double().numpy()[idx]
        rows.append({"epochs": E, "seeds": sorted(runs), "students": len(idx), "mean": float(m.mean()),
                     "min": float(m.min()), "max": float(m.max()), "seed_rho": r, "reliability": rel,
                     "vs_kd": sp(m, kd), "vs_macs": sp(st["macs"].double().numpy()[idx], m),
                     "kd_seed_rho": sp(kds[:, 0], kds[:, 1]) if kds.shape[1] > 1 else None,
                     "s_per_student": float(np.mean(walls[E])), "label": dict(zip(idx, m.tolist()))})
    for prev, row in zip(rows, rows[1:]):   # agreement with the previous epoch count, shared students
        both = sorted(prev["label"].keys() & row["label"].keys())
        row["vs_previous_epochs"] = sp([prev["label"][i] for i in both], [row["label"][i] for i in both])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, help="database task file (.pt)")
    ap.add_argument("--students", type=int, default=12, help="students chosen along the MACs order")
    ap.add_argument("--max-students", type=int, default=0, help="train only the first N of them (0: all)")
    ap.add_argument("--plan", nargs="*", default=[], help="epochs:seed runs, e.g. 40:1 40:2")
    ap.add_argument("--out", required=True, help="folder of the group results")
    ap.add_argument("--data-root", default="data", help="folder of the datasets")
    ap.add_argument("--eval-every", type=int, default=0,
                    help="validate every N epochs (0: the task recipe's; the last epoch is always validated)")
    ap.add_argument("--analyse", action="store_true", help="print the agreement table of the results in --out")
    ap.add_argument("--common", action="store_true", help="with --analyse: only students every run has")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    task = load_task_db(a.task)
    if a.analyse:
        for row in analyse(task, Path(a.out), a.common):
            print(json.dumps(row))
        return 0
    pick = spread_students(task["students"]["macs"].tolist(), a.students)
    if a.max_students:
        pick = pick[:a.max_students]
    plan = [tuple(int(x) for x in p.split(":")) for p in a.plan]
    train(task, pick, plan, Path(a.out), a.data_root, a.eval_every)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
