"""Gradient-boosted regression trees (least squares), small and dependency-free.

A non-linear alternative to :class:`dass.predictor.linear.Ridge` for the proxy ensemble
(:mod:`dass.evaluation.ensemble`): a few hundred shallow trees over cost, proxy and encoding
features, fitted on the meta-train students. The data is small (a few thousand rows, ~100
columns), so a histogram method in numpy is fast enough (a fit of 300 depth-3 trees on 1,280 x 89
takes about a second) and keeps the model a set of plain arrays.

Algorithm (as in LightGBM / scikit-learn's ``HistGradientBoostingRegressor``, without their
extras): each column is cut into at most ``bins`` quantile bins of the training rows (the cut
points are kept, so prediction compares raw values against them); the model starts at the mean of
``y``; every round fits one tree of depth ``max_depth`` to the residuals, choosing at each node the
(column, cut) with the largest reduction of the squared error among those leaving at least
``min_leaf`` rows on each side, and adds ``learning_rate`` x the tree's leaf means. A node with no
such split passes every row to its left child (its threshold is ``+inf``), so every tree is a
complete binary tree: node ``i``'s children are ``2i + 1`` and ``2i + 2``, leaf ``j`` is node
``2**depth - 1 + j``. Deterministic: no row or column sampling.
"""
from __future__ import annotations

import numpy as np


def _cut_points(x: np.ndarray, bins: int) -> np.ndarray:
    """Ascending cut points of one column: midpoints between distinct values at its quantiles."""
    values = np.unique(x)
    if len(values) <= 1:
        return np.zeros(0)
    if len(values) <= bins:
        return (values[:-1] + values[1:]) / 2
    q = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    # midpoint between the quantile value and the next distinct value, so no cut sits on a value
    nxt = values[np.minimum(np.searchsorted(values, q, side="right"), len(values) - 1)]
    return np.unique((q + nxt) / 2)


class BoostedTrees:
    """Least-squares gradient boosting of complete binary trees (see module doc)."""

    def __init__(self, rounds: int = 300, learning_rate: float = 0.05, max_depth: int = 3,
                 min_leaf: int = 20, bins: int = 32):
        if rounds < 1 or max_depth < 1 or min_leaf < 1 or bins < 2 or not 0 < learning_rate <= 1:
            raise ValueError("BoostedTrees: rounds, max_depth, min_leaf >= 1, bins >= 2, 0 < learning_rate <= 1")
        self.rounds, self.learning_rate, self.max_depth = int(rounds), float(learning_rate), int(max_depth)
        self.min_leaf, self.bins = int(min_leaf), int(bins)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "BoostedTrees":
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        n, f = X.shape
        cuts = [_cut_points(X[:, j], self.bins) for j in range(f)]
        width = max(1, max(len(c) for c in cuts) + 1)          # bins per column (padded)
        binned = np.stack([np.searchsorted(c, X[:, j], side="left") for j, c in enumerate(cuts)], axis=1) \
            if f else np.zeros((n, 0), dtype=np.int64)
        offsets = np.arange(f) * width
        n_inner = 2 ** self.max_depth - 1
        self.base = float(y.mean())
        self.features = np.zeros((self.rounds, n_inner), dtype=np.int64)
        self.thresholds = np.full((self.rounds, n_inner), np.inf)
        self.leaves = np.zeros((self.rounds, n_inner + 1))
        pred = np.full(n, self.base)
        for r in range(self.rounds):
            resid = y - pred
            node = np.zeros(n, dtype=np.int64)
            for i in range(n_inner):
                rows = np.flatnonzero(node == i)
                if len(rows) >= 2 * self.min_leaf and f:
                    split = self._best_split(binned[rows], resid[rows], offsets, width, f)
                    if split is not None:
                        j, b = split
                        self.features[r, i], self.thresholds[r, i] = j, cuts[j][b]
                right = X[rows, self.features[r, i]] > self.thresholds[r, i]
                node[rows] = 2 * i + 1 + right
            leaf = node - n_inner
            sums = np.bincount(leaf, weights=resid, minlength=n_inner + 1)
            counts = np.bincount(leaf, minlength=n_inner + 1)
            self.leaves[r] = self.learning_rate * np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
            pred += self.leaves[r][leaf]
        return self

    def _best_split(self, binned, g, offsets, width, f):
        """(column, cut index) of the largest squared-error reduction, or None."""
        n = len(g)
        flat = (binned + offsets).ravel()
        sums = np.bincount(flat, weights=np.repeat(g, f), minlength=f * width).reshape(f, width)
        counts = np.bincount(flat, minlength=f * width).reshape(f, width)
        left_sum, left_n = np.cumsum(sums, axis=1)[:, :-1], np.cumsum(counts, axis=1)[:, :-1]
        right_sum, right_n = g.sum() - left_sum, n - left_n
        ok = (left_n >= self.min_leaf) & (right_n >= self.min_leaf)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(ok, left_sum ** 2 / left_n + right_sum ** 2 / right_n - g.sum() ** 2 / n, -np.inf)
        if gain.size == 0:
            return None
        best = int(np.argmax(gain))
        if not np.isfinite(gain.flat[best]) or gain.flat[best] <= 1e-12:
            return None
        return divmod(best, width - 1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        n, n_inner = len(X), 2 ** self.max_depth - 1
        out = np.full(n, self.base)
        rows = np.arange(n)
        for r in range(self.rounds):
            node = np.zeros(n, dtype=np.int64)
            for _ in range(self.max_depth):
                node = 2 * node + 1 + (X[rows, self.features[r, node]] > self.thresholds[r, node])
            out += self.leaves[r][node - n_inner]
        return out
