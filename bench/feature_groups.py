"""Which student features carry the ranking beyond MACs: linear rankers over feature groups, each
scored on a task it was not fitted on (leave one task out).

    python bench/feature_groups.py --db assets/cpu/db_next --data-root data [--splits meta_valid]

Features of a task's students (``dass.predictor`` inputs): ``macs`` (log MACs relative to the
teacher's), ``params`` (log params, likewise), ``stage`` (the stage encoding: per-stage depth and
summed width, :func:`dass.space.stage_batch`), ``onehot`` (the one-hot encoding), ``naswot``
(NASWOT relative to the teacher's, on the predictor's proxy batch: 64 train images, seed 0) and
``inherit`` (the accuracy the remapped student inherits, batch-statistics BN, on 1,024 train
images; :mod:`dass.predictor.proxy_inputs`); proxies are cached in ``--cache``. Each column is z-scored within its task (a constant column is dropped), the target
is the label z-scored within its task; a ridge regression without intercept (penalty ``--alpha``)
is fitted on every task but one, and scores the held-out one. The table gives, per feature set, the
mean over held-out tasks of the Spearman correlation and of the MACs-controlled Spearman
(:func:`dass.correlation.partial_spearman`), and the per-task Spearman.

Only the ``--splits`` tasks are read (default ``meta_valid``; ``meta_train`` may be added): design
choices are made there; meta-test tasks are never scored (no ``--splits`` choice names them).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dass.correlation import correlations, partial_spearman  # noqa: E402
from dass.evaluation.tables import markdown_table  # noqa: E402
from dass.predictor import proxy_inputs  # noqa: E402
from dass.predictor.data import cost_features, load_tasks  # noqa: E402
from dass.space import stage_batch  # noqa: E402

PROXIES = ("naswot", "inherit")
SETS = {
    "macs": ["macs"],
    "macs+params": ["macs", "params"],
    "macs+naswot": ["macs", "naswot"],
    "macs+stage": ["macs", "stage"],
    "macs+stage+naswot": ["macs", "stage", "naswot"],
    "macs+inherit": ["macs", "inherit"],
    "macs+stage+inherit": ["macs", "stage", "inherit"],
    "macs+stage+naswot+inherit": ["macs", "stage", "naswot", "inherit"],
    "macs+onehot": ["macs", "onehot"],
    "macs+onehot+naswot": ["macs", "onehot", "naswot"],
}


def zscore_columns(x: np.ndarray) -> np.ndarray:
    """Columns z-scored (within one task); constant columns become 0."""
    sd = x.std(0)
    return np.where(sd > 0, (x - x.mean(0)) / np.where(sd > 0, sd, 1.0), 0.0)


def task_columns(t, with_proxies: bool) -> dict[str, np.ndarray]:
    cost = cost_features(t.archs, t.space, t.num_classes).double().numpy()
    cols = {"macs": cost[:, :1], "params": cost[:, 1:], "stage": stage_batch(t.archs, t.space).double().numpy(),
            "onehot": t.onehot.double().numpy()}
    if with_proxies:
        for j, name in enumerate(PROXIES):
            cols[name] = t.proxy.double().numpy()[:, j:j + 1]
    return {k: zscore_columns(v) for k, v in cols.items()}


def leave_one_task_out(tasks, cols, groups, alpha: float) -> list[tuple[float, float]]:
    """Per held-out task: (Spearman, MACs-controlled Spearman) of the ridge fitted on the others."""
    X = [np.concatenate([c[g] for g in groups], axis=1) for c in cols]
    y = [(t.acc.double().numpy() - t.acc.double().numpy().mean()) / t.acc.double().numpy().std() for t in tasks]
    out = []
    for i, t in enumerate(tasks):
        A = np.concatenate([x for j, x in enumerate(X) if j != i])
        b = np.concatenate([v for j, v in enumerate(y) if j != i])
        w = np.linalg.solve(A.T @ A + alpha * np.eye(A.shape[1]), A.T @ b)
        pred = X[i] @ w
        acc = t.acc.double().numpy()
        out.append((correlations(pred, acc)["spearman"], partial_spearman(pred, acc, cols[i]["macs"][:, 0])))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--data-root", default="data", help="datasets of the tasks (NASWOT's image batch)")
    ap.add_argument("--splits", nargs="+", default=["meta_valid"], choices=["meta_train", "meta_valid"])
    ap.add_argument("--alpha", type=float, nargs="+", default=[10.0], help="ridge penalties (one table each)")
    ap.add_argument("--cache", default="", help="proxy cache folder (default runs/feature_groups/proxy_cache)")
    ap.add_argument("--no-proxies", action="store_true", help="skip the sets that read a proxy")
    args = ap.parse_args(argv)
    _, by_split = load_tasks(args.db)
    tasks = [t for s in args.splits for t in by_split[s]]
    if len(tasks) < 2:
        sys.exit(f"error: {args.db} has {len(tasks)} task(s) in {args.splits}; leave-one-out needs 2")
    with_proxies = not args.no_proxies
    if with_proxies:
        cache = Path(args.cache or ROOT / "runs" / "feature_groups" / "proxy_cache")
        proxy_inputs.attach(tasks, list(PROXIES), args.data_root, 64, 0, cache=cache, progress=False)
    cols = [task_columns(t, with_proxies) for t in tasks]
    sets = {k: v for k, v in SETS.items() if with_proxies or not set(v) & set(PROXIES)}
    for alpha in args.alpha:
        rows = []
        for name, groups in sets.items():
            res = leave_one_task_out(tasks, cols, groups, alpha)
            rows.append([name, f"{np.mean([r[0] for r in res]):.3f}", f"{np.mean([r[1] for r in res]):+.3f}",
                         " ".join(f"{r[0]:.3f}" for r in res)])
        print(f"\n{len(tasks)} tasks ({', '.join(args.splits)}), ridge alpha {alpha:g}, leave one task out; "
              f"per task: {', '.join(t.key for t in tasks)}\n")
        print(markdown_table(["features", "Spearman", "MACs-controlled", "per task"], rows))


if __name__ == "__main__":
    main()
