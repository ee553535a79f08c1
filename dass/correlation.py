"""Agreement between a method's scores and the students' true accuracies: the one home of the
correlation metrics, used by meta-training (validation, ``metrics.json``) and by ``dass.evaluation``.

* :func:`correlations`: Spearman, Kendall tau (tau-b) and Pearson, with scipy's estimators;
  :func:`spearman` alone (e.g. two label sets of the same students, in the database's checks).
* :func:`partial_spearman`: the size-controlled rank correlation: the ranks of the scores and of the
  true values are each regressed (least squares, with intercept) on the ranks of the students' MACs
  and the residuals are correlated (Pearson). It measures the order a score finds among students of
  similar cost; ranking by MACs (or any monotone function of it) scores exactly 0.
* :func:`bootstrap_interval`: a percentile bootstrap interval of a mean over tasks.
* :func:`top_k_overlap`: the share of the ``k`` truly best students found among the ``k`` best scored.
* :func:`regret`: the true accuracy of the scored top-1 minus the best true accuracy (<= 0; 0 means
  the method found the best student).
* :func:`top1_index`: the index a search would take (the first maximal score).

Conventions: scores are "higher = better". A ``nan`` score (a proxy that failed on a student) ranks
below every other score (it becomes ``-inf``); ``+-inf`` keep their order. Pearson needs finite
values: with any non-finite score it is ``nan``. A constant vector (or fewer than two students)
carries no ranking: its correlations are ``nan`` with a :class:`UserWarning`, never an exception.
Means over tasks (:func:`nanmean`) skip ``nan`` (``nan`` only when every task is ``nan``); a
checkpoint selection on such a mean treats ``nan`` as worse than any number. This is the one rule,
for meta-training and evaluation alike. :func:`partial_spearman` follows it (``nan`` for a constant
score or true vector) with one addition: a non-constant score whose ranks are exactly a linear
function of the MACs ranks has nothing left after the regression and scores 0, not ``nan``.
"""
from __future__ import annotations

import warnings

import numpy as np

METRICS = ("spearman", "kendall", "pearson")
PARTIAL = "partial_spearman"
CI_LEVEL = 0.9


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


def spearman(pred, true) -> float:
    """Spearman between ``pred`` and ``true`` under the rules above (``nan`` with a warning for a
    constant vector or fewer than two values)."""
    p, t = _check_pair(pred, true)
    if _constant(p) or _constant(t):
        warnings.warn("correlation of a constant vector (or of fewer than two values) is undefined: nan",
                      UserWarning, stacklevel=2)
        return float("nan")
    from scipy import stats  # imported here: entry modules must not pay for scipy at import time
    return float(stats.spearmanr(p, t).statistic)


def correlations(pred, true) -> dict[str, float]:
    """``{"spearman", "kendall", "pearson"}`` between scores ``pred`` and true values ``true``."""
    p, t = _check_pair(pred, true)
    if _constant(p) or _constant(t):
        warnings.warn("correlation of a constant vector (or of fewer than two values) is undefined: nan",
                      UserWarning, stacklevel=2)
        return {m: float("nan") for m in METRICS}
    from scipy import stats  # imported here: entry modules must not pay for scipy at import time
    out = {"spearman": spearman(p, t), "kendall": float(stats.kendalltau(p, t).statistic)}
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


def _residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Residual of the least-squares fit ``y ~ a + b x``."""
    X = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return y - X @ coef


def partial_spearman(pred, true, macs) -> float:
    """Spearman of ``pred`` and ``true`` controlled for ``macs`` (see module doc; ranks are
    average ranks of ties, so ``log MACs`` and ``MACs`` give the same value)."""
    p, t = _check_pair(pred, true)
    m = np.asarray(macs, dtype=np.float64).reshape(-1)
    if m.shape != p.shape:
        raise ValueError(f"{m.size} MACs for {p.size} scores")
    if _constant(p) or _constant(t):
        warnings.warn("partial correlation of a constant vector (or of fewer than two values) is undefined: nan",
                      UserWarning, stacklevel=2)
        return float("nan")
    from scipy import stats  # lazily, as above
    rp, rt, rm = (stats.rankdata(v) for v in (p, t, m))
    ep, et = _residual(rp, rm), _residual(rt, rm)
    scale = lambda r: np.linalg.norm(r - r.mean())  # noqa: E731
    if np.linalg.norm(ep) <= 1e-9 * scale(rp):
        return 0.0
    if np.linalg.norm(et) <= 1e-9 * scale(rt):
        warnings.warn("partial correlation: the true values are ordered exactly as the MACs: nan",
                      UserWarning, stacklevel=2)
        return float("nan")
    return float(np.dot(ep, et) / (np.linalg.norm(ep) * np.linalg.norm(et)))


def bootstrap_interval(values, level: float = CI_LEVEL, n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per task; ``nan`` skipped):
    ``n_boot`` resamples of the tasks with replacement, seeded. ``(nan, nan)`` without a finite value."""
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(int(n_boot), v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def mean_metrics(per_task: dict[str, dict[str, float]], metrics=METRICS) -> dict[str, float]:
    """``nanmean`` of each metric over tasks (empty dict when there is no task)."""
    if not per_task:
        return {}
    return {m: nanmean(r[m] for r in per_task.values()) for m in metrics}


def selection_value(x: float) -> float:
    """A mean used to pick a checkpoint or a design: ``nan`` ranks below every number."""
    return float(x) if np.isfinite(x) else -float("inf")
