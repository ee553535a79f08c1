"""Search then KD: each method's top-1 student under a MACs budget, and what it reaches.

The candidate pool of a task under budget fraction ``f`` is the task's database students with
``macs <= f * teacher macs`` (so every pick's ground truth is known). Each method picks the pool
student with its highest score (:func:`dass.correlation.top1_index`); the row
``best_ground_truth`` is the pool's truly best student. A row holds the pick's database accuracy
(``db_acc``) and its regret against the pool's best.

Optionally each pick is KD-trained again with several seeds (:func:`dass.kd.picks.kd_picks`, remapped
from the teacher with the task's strategy) to report mean and std; a task's picks lie in
``<runs>/<task>/<recipe hash>/<index>-<arch key>/seed<k>/`` (``index``: the student's place in the
task file), so a rerun skips every finished run and a pick shared by several methods is trained once.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import config as cfgmod
from ..data.registry import load_dataset
from ..errors import DassError
from ..hashing import json_sha1
from ..database.saved import SavedTask
from ..kd.picks import PickSetting, kd_picks, pick_dir, pick_summary, seed_dir
from ..space import macs, teacher_arch
from ..train.recipe import KDRecipe
from .baselines import EvalContext
from ..correlation import top1_index

log = logging.getLogger("dass.evaluation")

BEST = "best_ground_truth"


def teacher_macs(task: SavedTask) -> int:
    return macs(teacher_arch(task.space), task.space, task.num_classes)


def student_macs(task: SavedTask) -> np.ndarray:
    return np.array([macs(a, task.space, task.num_classes) for a in task.archs], dtype=np.int64)


def budget_pool(task: SavedTask, fraction: float) -> np.ndarray:
    """Indices of the students with ``macs <= fraction * teacher macs``."""
    return np.flatnonzero(student_macs(task) <= fraction * teacher_macs(task))


def column_name(key: str, fraction: float) -> str:
    return f"{key} @ {fraction:g}"


def search_rows(task: SavedTask, scores: dict[str, np.ndarray], fractions: list[float], label: str) -> list[dict]:
    """One row per (budget, method) plus one ``best_ground_truth`` row per budget; budgets whose pool
    is empty are skipped with a warning."""
    key, archs = task.key, task.archs
    acc, m, t_macs = task.accuracy(label), student_macs(task), teacher_macs(task)
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


def load_recipe(path: str, task: SavedTask):
    """The KD recipe: from ``path`` (a YAML that is a recipe, or holds one under ``kd_recipe:``, as a kd
    profile does), or, when ``path`` is empty, the recipe stored in the task file (the one that made its labels)."""
    if not path:
        if task.recipe is None:
            raise DassError(f"task {task.key}: the task file stores no KD recipe; give search_kd.kd_recipe")
        return cfgmod.from_dict(KDRecipe, dict(task.recipe), where=f"task {task.key} (recipe)")
    data = cfgmod.read_with_bases(path)
    if isinstance(data.get("kd_recipe"), dict):
        data = data["kd_recipe"]
    return cfgmod.from_dict(KDRecipe, data, where=str(path))


def _recipe_hash(recipe) -> str:
    return json_sha1(cfgmod.to_dict(recipe), compact=False)[:8]


def train_picks(rows: list[dict], tasks: dict[str, SavedTask], recipes: dict, seeds: list[int], context: EvalContext,
                runs_dir) -> None:
    """KD-train every distinct pick of ``rows`` with each seed (:func:`dass.kd.picks.kd_picks`, into
    ``<runs_dir>/<task>/<recipe hash>/<index>-<arch key>/seed<k>/``); fill ``kd_mean``, ``kd_std``
    (sample std over seeds, 0 for one seed) and ``kd_accs`` (best test top-1 per seed, %) in place.

    ``tasks``: key -> saved task; ``recipes``: key -> KDRecipe; ``context``: where the data lie, the
    tasks' teachers (:meth:`~dass.evaluation.baselines.EvalContext.teacher_state`), device, progress.
    """
    results: dict[tuple, float] = {}
    for key in sorted({r["task"] for r in rows}):
        task, archs = tasks[key], tasks[key].archs
        picks = [(i, archs[i]) for i in sorted({r["student"] for r in rows if r["task"] == key})]
        out = Path(runs_dir) / key / _recipe_hash(recipes[key])
        folders = [pick_dir(out, i, a) for i, a in picks]
        if all((seed_dir(f, s) / "metrics.json").is_file() for f in folders for s in seeds):
            done = [{"rank": i, **pick_summary(f, seeds)} for (i, _), f in zip(picks, folders)]
        else:
            name = task.dataset
            setting = PickSetting(task.space, context.teacher_state(task),
                                  load_dataset(name, context.data_root, "train"),
                                  load_dataset(name, context.data_root, "test"), recipes[key],
                                  task.remap, context.device, dataset=name,
                                  teacher=key, progress=context.progress)
            done = kd_picks(picks, setting, seeds, out)
        for p in done:
            results.update({(key, p["rank"], s): float(a) for s, a in zip(seeds, p["best_accs"])})
    for r in rows:
        accs = [results[(r["task"], r["student"], s)] for s in seeds]
        r["kd_accs"] = " ".join(f"{a:.2f}" for a in accs)
        r["kd_mean"] = float(np.mean(accs))
        r["kd_std"] = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0

