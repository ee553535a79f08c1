"""Search then KD: each method's top-1 student under a MACs budget, and what it reaches.

The candidate pool of a task under budget fraction ``f`` is the task's database students with
``macs <= f * teacher macs`` (so every pick's ground truth is known). Each method picks the pool
student with its highest score (:func:`dass.correlation.top1_index`); the row
``best_ground_truth`` is the pool's truly best student. A row holds the pick's database accuracy
(``db_acc``) and its regret against the pool's best.

Optionally each pick is KD-trained again with several seeds (``dass.train.kd_train``, remapped from
the teacher with the task's strategy) to report mean and std; every finished run is a JSON file
``<runs>/<task>/<arch key>-<recipe hash>/seed<k>.json``, so a rerun skips it and a pick shared by
several methods is trained once.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import config as cfgmod
from ..data.registry import load_dataset
from ..errors import DassError
from ..hashing import json_sha1
from ..io import atomic_write_json, read_json
from ..space import macs, teacher_arch
from ..train import kd_train
from ..train.recipe import KDRecipe
from .baselines import task_archs, task_key, task_space, true_accuracy
from ..correlation import top1_index

log = logging.getLogger("dass.evaluation")

BEST = "best_ground_truth"


def teacher_macs(task: dict) -> int:
    space = task_space(task)
    return macs(teacher_arch(space), space, int(task["task"]["num_classes"]))


def student_macs(task: dict) -> np.ndarray:
    space, n_cls = task_space(task), int(task["task"]["num_classes"])
    return np.array([macs(a, space, n_cls) for a in task_archs(task)], dtype=np.int64)


def budget_pool(task: dict, fraction: float) -> np.ndarray:
    """Indices of the students with ``macs <= fraction * teacher macs``."""
    return np.flatnonzero(student_macs(task) <= fraction * teacher_macs(task))


def column_name(key: str, fraction: float) -> str:
    return f"{key} @ {fraction:g}"


def search_rows(task: dict, scores: dict[str, np.ndarray], fractions: list[float], label: str) -> list[dict]:
    """One row per (budget, method) plus one ``best_ground_truth`` row per budget; budgets whose pool
    is empty are skipped with a warning."""
    key, archs = task_key(task), task_archs(task)
    acc, m, t_macs = true_accuracy(task, label), student_macs(task), teacher_macs(task)
    rows = []
    for f in fractions:
        pool = budget_pool(task, f)
        if pool.size == 0:
            log.warning("task %s: no database student within %g of the teacher's MACs; budget skipped", key, f)
            continue
        best = int(pool[np.argmax(acc[pool])])
        picks = {name: int(pool[top1_index(s[pool])]) for name, s in scores.items()}
        picks[BEST] = best
        for method, i in picks.items():
            rows.append({"task": key, "budget": f, "column": column_name(key, f), "method": method,
                         "pool_size": int(pool.size), "student": i, "arch": str(archs[i]),
                         "macs": int(m[i]), "macs_fraction": float(m[i] / t_macs),
                         "db_acc": float(acc[i]), "pool_best_acc": float(acc[best]),
                         "regret": float(acc[i] - acc[best])})
    return rows


def load_recipe(path: str, task: dict):
    """The KD recipe: from ``path`` (a YAML that is a recipe, or holds one under ``recipe:``), or, when
    ``path`` is empty, the recipe stored in the task file (the one that made its labels)."""
    if not path:
        if "recipe" not in task:
            raise DassError(f"task {task_key(task)}: the task file stores no KD recipe; give search_kd.recipe")
        return cfgmod.from_dict(KDRecipe, dict(task["recipe"]), where=f"task {task_key(task)} (recipe)")
    data = cfgmod.read_with_bases(path)
    if isinstance(data.get("recipe"), dict):
        data = data["recipe"]
    return cfgmod.from_dict(KDRecipe, data, where=str(path))


def _recipe_hash(recipe) -> str:
    return json_sha1(cfgmod.to_dict(recipe), compact=False)[:8]


def train_picks(rows: list[dict], tasks: dict[str, dict], recipes: dict, seeds: list[int], data_root: str,
                teacher_state, device, runs_dir, progress: bool = True) -> None:
    """KD-train every distinct pick of ``rows`` with each seed; fill ``kd_mean``, ``kd_std`` (sample
    std over seeds, 0 for one seed) and ``kd_accs`` (best test top-1 per seed, %) in place.

    ``tasks``: key -> task dict; ``recipes``: key -> KDRecipe; ``teacher_state(task)`` -> state dict.
    """
    runs_dir = Path(runs_dir)
    todo = sorted({(r["task"], r["student"]) for r in rows})
    jobs = [(k, i, s) for k, i in todo for s in seeds]
    results: dict[tuple, float] = {}
    data: dict[str, tuple] = {}
    for key, i, seed in tqdm(jobs, desc="search-kd", unit="run", disable=not progress):
        task = tasks[key]
        arch = task_archs(task)[i]
        path = runs_dir / key / f"{arch.key()}-{_recipe_hash(recipes[key])}" / f"seed{seed}.json"
        if path.is_file():
            results[(key, i, seed)] = float(read_json(path)["best_acc"])
            continue
        if key not in data:
            name = str(task["task"].get("dataset", key))
            data[key] = (load_dataset(name, data_root, "train"), load_dataset(name, data_root, "test"))
        train, test = data[key]
        out = kd_train(arch, task_space(task), teacher_state(task), train, test, recipes[key], seed=seed,
                       device=device, remap=str(task.get("remap", "copy_paste_first")))
        atomic_write_json(path, {"task": key, "arch": arch.to_dict(), "seed": seed,
                                 "recipe": cfgmod.to_dict(recipes[key]),
                                 **{k: out[k] for k in ("best_acc", "final_acc", "final_loss") if k in out}})
        results[(key, i, seed)] = float(out["best_acc"])
    for r in rows:
        accs = [results[(r["task"], r["student"], s)] for s in seeds]
        r["kd_accs"] = " ".join(f"{a:.2f}" for a in accs)
        r["kd_mean"] = float(np.mean(accs))
        r["kd_std"] = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0

