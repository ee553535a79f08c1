"""Rank and linear agreement between predicted and true accuracies (scipy's estimators).

A constant vector carries no ranking information: its correlations are reported as 0.0 (scipy
would return NaN with a warning), so means over tasks stay defined.
"""
from __future__ import annotations

import warnings

import numpy as np

from .adapt import predict_task
from .data import TaskData
from .model import LoadedPredictor, check_same_space, load_predictor

METRICS = ("spearman", "kendall", "pearson")


def _as_vector(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def correlations(pred, true) -> dict[str, float]:
    """``{"spearman", "kendall", "pearson"}`` between two equally long vectors."""
    p, t = _as_vector(pred), _as_vector(true)
    if p.shape != t.shape:
        raise ValueError(f"correlations: {p.size} predictions for {t.size} targets")
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return {m: 0.0 for m in METRICS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from scipy import stats  # imported here: entry modules must not pay for scipy at import time
        out = {"spearman": stats.spearmanr(p, t).statistic,
               "kendall": stats.kendalltau(p, t).statistic,
               "pearson": stats.pearsonr(p, t).statistic}
    return {k: float(v) for k, v in out.items()}


def mean_metrics(per_task: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over tasks (empty dict when there is no task)."""
    if not per_task:
        return {}
    return {m: float(np.mean([r[m] for r in per_task.values()])) for m in METRICS}


def evaluate_predictor(predictor, tasks, device="cpu") -> dict[str, dict[str, float]]:
    """Per-task correlations between the adapted predictor's output and the students' accuracies.

    ``predictor``: a ``best.pt`` path or a :class:`~dass.predictor.model.LoadedPredictor`;
    ``tasks``: :class:`~dass.predictor.data.TaskData` objects or task dicts of the database format.
    Returns ``{task key: {"spearman", "kendall", "pearson", "n"}}`` (accuracies of the label the
    predictor was trained on).
    """
    p = predictor if isinstance(predictor, LoadedPredictor) else load_predictor(predictor, device=device)
    dev = next(p.model.parameters()).device
    out = {}
    for t in tasks:
        task = t if isinstance(t, TaskData) else TaskData.from_db(t, p.target["label"])
        check_same_space(p.space, task.space, f"task {task.key}")
        pred = predict_task(p.model, p.inner_lrs, p.target, int(p.adapt["steps"]), task, dev)
        out[task.key] = {**correlations(pred, task.acc), "n": len(task)}
    return out
