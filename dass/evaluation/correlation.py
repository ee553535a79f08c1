"""Agreement between a method's scores and the students' true accuracies.

* :func:`correlations`: Spearman, Kendall tau (tau-b) and Pearson, with scipy's estimators.
* :func:`top_k_overlap`: the share of the ``k`` truly best students found among the ``k`` best scored.
* :func:`regret`: the true accuracy of the scored top-1 minus the best true accuracy (<= 0; 0 means
  the method found the best student).
* :func:`top1_index`: the index a search would take (the first maximal score).

Conventions: scores are "higher = better". A ``nan`` score (a proxy that failed on a student) ranks
below every other score (it becomes ``-inf``); ``+-inf`` keep their order. Pearson needs finite
values: with any non-finite score it is ``nan``. A constant vector (or fewer than two students)
carries no ranking: its correlations are ``nan`` with a :class:`UserWarning`, never an exception.
Means over tasks (:func:`nanmean`) skip ``nan``.
"""
from __future__ import annotations

import warnings

import numpy as np

METRICS = ("spearman", "kendall", "pearson")


def as_scores(x) -> np.ndarray:
    """A 1-D float64 copy with ``nan`` replaced by ``-inf`` (ranked last)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    v = np.array(x, dtype=np.float64).reshape(-1)
    v[np.isnan(v)] = -np.inf
    return v


def _check_pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    p = as_scores(pred)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"{p.size} scores for {t.size} true values")
    if not np.isfinite(t).all():
        raise ValueError("true values must be finite")
    return p, t


def _constant(v: np.ndarray) -> bool:
    return v.size < 2 or bool(np.all(v == v[0]))


def correlations(pred, true) -> dict[str, float]:
    """``{"spearman", "kendall", "pearson"}`` between scores ``pred`` and true values ``true``."""
    p, t = _check_pair(pred, true)
    if _constant(p) or _constant(t):
        warnings.warn("correlation of a constant vector (or of fewer than two values) is undefined: nan",
                      UserWarning, stacklevel=2)
        return {m: float("nan") for m in METRICS}
    from scipy import stats  # imported here: entry modules must not pay for scipy at import time
    out = {"spearman": float(stats.spearmanr(p, t).statistic),
           "kendall": float(stats.kendalltau(p, t).statistic)}
    if np.isfinite(p).all():
        out["pearson"] = float(stats.pearsonr(p, t).statistic)
    else:
        warnings.warn("Pearson correlation of non-finite scores is undefined: nan", UserWarning, stacklevel=2)
        out["pearson"] = float("nan")
    return out


def top1_index(pred) -> int:
    """Index of the first maximal score (``nan`` never wins unless every score is ``nan``)."""
    return int(np.argmax(as_scores(pred)))


def regret(pred, true) -> float:
    """``true[top-1 of pred] - max(true)``; with ties at the top score, the mean true value over the
    tied students (the expected regret of breaking the tie at random)."""
    p, t = _check_pair(pred, true)
    top = p == p.max()
    return float(t[top].mean() - t.max())


def top_k_overlap(pred, true, k: int) -> float:
    """``|top_k(pred) & top_k(true)| / k`` with ``k`` capped at the number of students. Ties are
    broken by index (a stable sort), for both vectors."""
    p, t = _check_pair(pred, true)
    k = min(int(k), p.size)
    if k < 1:
        raise ValueError("k must be >= 1")
    top_p = set(np.argsort(-p, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-t, kind="stable")[:k].tolist())
    return len(top_p & top_t) / k


def nanmean(values) -> float:
    """Mean of the finite values (``nan`` when there is none), without a RuntimeWarning."""
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
