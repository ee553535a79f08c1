"""Does the order of students under a weak teacher carry over from one dataset to another? The deciding
measurement before a regime database (issue #26): a ridge fitted on the students of some tasks ranks
the students of other tasks, with and without the task's teacher accuracy among its inputs.

    python bench/regime_transfer.py --fit assets/cpu/db:meta_train bench/results/pilot26/db \\
        --test bench/results/pilot26d/db [--json]

``--fit`` and ``--test`` take databases, each optionally ``:split[,split]`` (default: every split).
Features of a student: log MACs, log params and the one-hot encoding (those of ``encoding_ridge``,
:data:`dass.evaluation.ensemble.ENCODING_GROUPS`); labels ``best_acc`` z-scored per task. Models:

* ``task-blind``: ridge over the features, as ``encoding_ridge`` (fitted on the ``--fit`` tasks);
* ``teacher-aware``: the same features, the teacher's test accuracy ``a`` (fraction, as recorded in
  the task file) and every feature times ``a``, so the weights of the features move with the
  teacher's strength: a ranking that may differ per teacher.

The penalty of each model is chosen among :data:`dass.evaluation.ensemble.ENCODING_ALPHAS` by
leave-one-task-out Spearman over the ``--fit`` tasks (the test tasks are never seen). Per test task it
prints the teacher accuracy, the 2-seed reliability ceiling ``sqrt(rel.)``, MACs and both models'
Spearman; Spearman is :func:`dass.correlation.correlations`.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import print_result  # noqa: E402
from dass.correlation import correlations, nanmean  # noqa: E402
from dass.database.format import seed_agreement  # noqa: E402
from dass.database.saved import SavedTask, load_saved_tasks  # noqa: E402
from dass.database.splits import META_SPLITS  # noqa: E402
from dass.evaluation.ensemble import ENCODING_ALPHAS, ENCODING_GROUPS, task_features  # noqa: E402
from dass.evaluation.tables import fmt, markdown_table  # noqa: E402
from dass.predictor.linear import Ridge  # noqa: E402

MODELS = ("task-blind", "teacher-aware")


def load_tasks(spec: str) -> list[SavedTask]:
    """The tasks of ``db[:split,...]``."""
    path, _, splits = spec.partition(":")
    names = tuple(splits.split(",")) if splits else META_SPLITS
    db = load_saved_tasks(path, splits=names)
    return [t for s in names for t in db.get(s, [])]


def teacher_acc(task: SavedTask) -> float:
    return task.teacher_acc / 100.0


def features(task: SavedTask, model: str) -> np.ndarray:
    X = task_features(task, None, ENCODING_GROUPS)
    if model == "task-blind":
        return X
    a = teacher_acc(task)
    return np.concatenate([X, np.full((len(X), 1), a), X * a], axis=1)


def zlabels(task: SavedTask) -> np.ndarray:
    y = task.accuracy("best_acc")
    return (y - y.mean()) / (y.std() or 1.0)


def fit(tasks: list[SavedTask], model: str, alpha: float) -> Ridge:
    X = np.concatenate([features(t, model) for t in tasks])
    y = np.concatenate([zlabels(t) for t in tasks])
    return Ridge().fit(X, y, alpha)


def spearman(pred, true) -> float:
    return correlations(pred, true)["spearman"]


def choose_alpha(tasks: list[SavedTask], model: str) -> tuple[float, float]:
    """The penalty with the best leave-one-task-out mean Spearman over ``tasks``, and that mean."""
    best = (ENCODING_ALPHAS[0], -math.inf)
    for a in ENCODING_ALPHAS:
        rho = nanmean(spearman(fit(tasks[:i] + tasks[i + 1:], model, a).predict(features(t, model)),
                               t.accuracy("best_acc")) for i, t in enumerate(tasks))
        if rho > best[1]:
            best = (a, rho)
    return best


def transfer(fit_specs: list[str], test_specs: list[str]) -> dict:
    train = [t for s in fit_specs for t in load_tasks(s)]
    test = [t for s in test_specs for t in load_tasks(s)]
    chosen = {m: choose_alpha(train, m) for m in MODELS}
    fitted = {m: fit(train, m, chosen[m][0]) for m in MODELS}
    rows = []
    for t in test:
        true = t.accuracy("best_acc")
        _, rel = seed_agreement(t.seed_accuracies("best_acc"))
        row = {"task": t.key, "teacher": 100 * teacher_acc(t), "students": len(true),
               "ceiling": math.sqrt(rel) if rel is not None and rel >= 0 else None,
               "macs": spearman(t.macs.double().numpy(), true)}
        row.update({m: spearman(fitted[m].predict(features(t, m)), true) for m in MODELS})
        rows.append(row)
    mean = {c: nanmean(float("nan") if r[c] is None else r[c] for r in rows) for c in ("ceiling", "macs", *MODELS)}
    return {"fit": fit_specs, "test": test_specs, "fit_tasks": len(train),
            "alpha": {m: chosen[m][0] for m in MODELS}, "fit_loo_spearman": {m: chosen[m][1] for m in MODELS},
            "rows": rows, "mean": mean}


def markdown(result: dict) -> str:
    cols = ("teacher", "students", "ceiling", "macs", *MODELS)
    body = [[r["task"]] + ["-" if r[c] is None else (f"{r[c]:.1f}" if c == "teacher" else str(r[c]) if c == "students"
                                                     else fmt(r[c])) for c in cols] for r in result["rows"]]
    body.append(["**mean**", "", ""] + [fmt(result["mean"][c]) for c in ("ceiling", "macs", *MODELS)])
    note = (f"\nFitted on {result['fit_tasks']} tasks of {', '.join(result['fit'])}; penalties "
            + ", ".join(f"{m} {result['alpha'][m]:g} (leave-one-task-out {fmt(result['fit_loo_spearman'][m])})"
                        for m in MODELS) + ".")
    return markdown_table(["task", "teacher %", "students", "ceiling sqrt(rel.)", "MACs", *MODELS], body) + note


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", nargs="+", required=True, help="databases (db[:split,...]) whose tasks fit the ridges")
    ap.add_argument("--test", nargs="+", required=True, help="databases (db[:split,...]) whose tasks are ranked")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    a = ap.parse_args(argv)
    return print_result(lambda: transfer(a.fit, a.test), markdown, a.json)


if __name__ == "__main__":
    sys.exit(main())
