"""How much a task's own ranking of students departs from the universal (task-blind) one: the room a
task-aware predictor has, per task of a database.

    python bench/task_dependence.py --db assets/cpu/db [--train-db <db>] [--split meta_test] [--json]

For every task of ``--split`` (default ``meta_test``) of ``--db``, against its label ``--label``
(default ``best_acc``, the mean over the task's label seeds):

* ``seed rho`` and ``reliability``: the mean Spearman between two label seeds' accuracies and the
  Spearman-Brown reliability of the mean label (:func:`dass.database.format.seed_agreement`); ``-``
  for a task with one seed;
* ``ceiling``: ``sqrt(reliability)``, the correlation a perfect ranker can expect with a label
  measured at that reliability;
* ``task-blind ridge``: the Spearman of ``encoding_ridge`` (:class:`dass.evaluation.baselines.
  EncodingRidgeScorer`: ridge over log MACs, log params and the one-hot encoding fitted on the
  ``meta_train`` students of ``--train-db``, default ``--db``, penalty chosen on its ``meta_valid``);
* ``MACs``: the Spearman of the students' MACs;
* ``within-task ridge (CV)``: the same features and model fitted on the task's own students,
  ``--folds``-fold cross-validated (the folds a permutation seeded by ``--seed`` and the task key):
  each student is predicted by the ridge fitted on the other folds, and the Spearman is taken over
  these out-of-fold predictions of every student; its penalty is chosen among
  :data:`dass.evaluation.ensemble.ENCODING_ALPHAS` by the same cross-validation on the
  ``meta_valid`` tasks of ``--train-db``;
* ``room``: ``ceiling - task-blind ridge``, what a task-aware ranker could add at most.

The last row is the mean over the tasks (a task without reliability is left out of the means of
the reliability, ceiling and room). Spearman is :func:`dass.correlation.correlations`. Prints a
markdown table; ``--json`` prints the rows as one JSON line instead.
"""
from __future__ import annotations

import argparse
import math
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import print_result  # noqa: E402
from dass.correlation import correlations, nanmean, selection_value  # noqa: E402
from dass.database.format import seed_agreement  # noqa: E402
from dass.database.saved import SavedTask, load_saved_tasks  # noqa: E402
from dass.evaluation import baselines as bl  # noqa: E402
from dass.evaluation.ensemble import ENCODING_ALPHAS, ENCODING_GROUPS, task_features  # noqa: E402
from dass.predictor.linear import Ridge  # noqa: E402
from dass.evaluation.tables import fmt, markdown_table  # noqa: E402

COLUMNS = ("students", "seed_rho", "reliability", "ceiling", "task_blind", "macs", "within_cv", "room")
HEADER = ["task", "students", "seed rho", "reliability", "ceiling sqrt(rel.)", "task-blind ridge", "MACs",
          "within-task ridge (CV)", "room"]


def spearman(pred, true) -> float:
    return correlations(pred, true)["spearman"]


def fold_parts(n: int, folds: int, seed: int, key: str) -> list[np.ndarray]:
    """``folds`` disjoint index sets covering ``range(n)``: a permutation seeded by (seed, key) cut
    into near-equal parts."""
    perm = np.random.default_rng([seed, zlib.crc32(key.encode())]).permutation(n)
    return np.array_split(perm, min(folds, n))


def cv_predictions(X: np.ndarray, y: np.ndarray, alpha: float, parts: list[np.ndarray]) -> np.ndarray:
    """Out-of-fold predictions: each part predicted by the ridge fitted on the other parts."""
    out = np.empty(len(y))
    for p in parts:
        rest = np.setdiff1d(np.arange(len(y)), p)
        out[p] = Ridge().fit(X[rest], y[rest], alpha).predict(X[p])
    return out


def within_task_spearman(task: SavedTask, label: str, alpha: float, folds: int, seed: int) -> float:
    X = task_features(task, None, ENCODING_GROUPS)
    y = task.accuracy(label)
    pred = cv_predictions(X, y, alpha, fold_parts(len(y), folds, seed, task.key))
    return spearman(pred, y)


def choose_within_alpha(valid: list[SavedTask], label: str, folds: int, seed: int) -> tuple[float, float]:
    """The penalty of :data:`ENCODING_ALPHAS` whose cross-validated within-task Spearman, averaged over
    ``valid``, is highest (first best on ties), and that mean."""
    best = (ENCODING_ALPHAS[0], float("nan"))
    for a in ENCODING_ALPHAS:
        rho = nanmean(within_task_spearman(t, label, a, folds, seed) for t in valid)
        if selection_value(rho) > selection_value(best[1]):
            best = (a, rho)
    return best


def task_dependence(db: str, train_db: str = "", split: str = "meta_test", label: str = "best_acc",
                    folds: int = 5, seed: int = 0) -> dict:
    """``{"rows": [...], "mean": {...}, "task_blind": <model>, "within_alpha": a, ...}`` (module doc)."""
    tasks = load_saved_tasks(db, splits=(split,))[split]
    train_db = train_db or db
    ctx = bl.EvalContext(db=train_db, label=label, progress=False)
    blind = bl.make_scorer("encoding_ridge")
    blind.fit(ctx)
    valid = load_saved_tasks(train_db, splits=("meta_valid",))["meta_valid"]
    alpha, valid_rho = choose_within_alpha(valid, label, folds, seed)
    rows = []
    for t in tasks:
        true = t.accuracy(label)
        r, rel = seed_agreement(t.seed_accuracies(label))
        ceiling = math.sqrt(rel) if rel is not None and rel >= 0 else None
        row = {"task": t.key, "students": len(true), "seed_rho": r, "reliability": rel, "ceiling": ceiling,
               "task_blind": spearman(blind.score(t, ctx), true),
               "macs": spearman(t.macs.double().numpy(), true),
               "within_cv": within_task_spearman(t, label, alpha, folds, seed)}
        row["room"] = ceiling - row["task_blind"] if ceiling is not None else None
        rows.append(row)
    mean = {c: nanmean(float("nan") if r[c] is None else r[c] for r in rows) for c in COLUMNS}
    return {"db": db, "train_db": train_db, "split": split, "label": label, "folds": folds, "seed": seed,
            "task_blind": blind.model.describe(), "within_alpha": alpha, "within_valid_spearman": valid_rho,
            "rows": rows, "mean": mean}


def markdown(result: dict) -> str:
    def cell(v, c):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return str(int(v)) if c == "students" else fmt(v)
    body = [[r["task"]] + [cell(r[c], c) for c in COLUMNS] for r in result["rows"]]
    body.append([f"**mean ({len(result['rows'])} tasks)**"] + ["" if c == "students" else cell(result["mean"][c], c)
                                                              for c in COLUMNS])
    notes = (f"\nTask-blind ridge: {result['task_blind']}, fitted on the meta_train tasks of {result['train_db']}. "
             f"Within-task ridge: the same features, {result['folds']}-fold cross-validated on each task's own "
             f"students, penalty {result['within_alpha']:g} (chosen on meta_valid, where it reaches "
             f"{fmt(result['within_valid_spearman'])}). Label: {result['label']}.")
    return markdown_table(HEADER, body) + notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="database whose tasks are measured")
    ap.add_argument("--train-db", default="", help="database whose meta_train/meta_valid tasks fit the ridges (default --db)")
    ap.add_argument("--split", default="meta_test", help="split whose tasks are measured")
    ap.add_argument("--label", default="best_acc", help="label: best_acc or final_acc")
    ap.add_argument("--folds", type=int, default=5, help="folds of the within-task cross-validation")
    ap.add_argument("--seed", type=int, default=0, help="seed of the folds")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    a = ap.parse_args(argv)
    if a.folds < 2:
        ap.error("--folds must be >= 2")
    return print_result(lambda: task_dependence(a.db, a.train_db, a.split, a.label, a.folds, a.seed), markdown, a.json)


if __name__ == "__main__":
    sys.exit(main())
