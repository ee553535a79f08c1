"""Rank and linear agreement between predicted and true accuracies (scipy's estimators).

A constant vector carries no ranking information: its correlations are reported as 0.0 (scipy
would return NaN with a warning), so means over tasks stay defined.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

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
        out = {"spearman": stats.spearmanr(p, t).statistic,
               "kendall": stats.kendalltau(p, t).statistic,
               "pearson": stats.pearsonr(p, t).statistic}
    return {k: float(v) for k, v in out.items()}


def mean_metrics(per_task: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over tasks (empty dict when there is no task)."""
    if not per_task:
        return {}
    return {m: float(np.mean([r[m] for r in per_task.values()])) for m in METRICS}
