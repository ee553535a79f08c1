"""Gradient-boosted regression trees (least squares), fitted by scikit-learn, kept as plain arrays.

A non-linear alternative to :class:`dass.predictor.linear.Ridge` for the proxy ensemble
(:mod:`dass.evaluation.ensemble`) and the predictor's tree prior: a few hundred shallow trees over
cost, proxy and encoding features, fitted on the meta-train students.

The fit is scikit-learn's ``HistGradientBoostingRegressor`` (squared error, no early stopping, no
L2 penalty, deterministic: no row or column sampling): each column is cut into at most ``bins``
quantile bins, the model starts at the mean of ``y`` and every round adds one tree of depth
``max_depth`` with at least ``min_leaf`` rows per leaf, its leaves scaled by ``learning_rate``.
The fitted trees are then copied into arrays of one fixed layout, so that a checkpoint holds them
as tensors and loads with ``weights_only=True`` (:class:`dass.predictor.model.TreePrior`): every
tree is a complete binary tree of depth ``max_depth``, inner node ``i`` sends a row right when
``x[features[i]] > thresholds[i]`` (scikit-learn's rule: left when ``x <= threshold``), its
children are ``2i + 1`` and ``2i + 2``, leaf ``j`` is node ``2**depth - 1 + j``. A node that
scikit-learn left as a leaf above the full depth becomes a chain of nodes with threshold ``+inf``
(every row goes left) ending in a leaf of its value.
"""
from __future__ import annotations

import numpy as np


class BoostedTrees:
    """Least-squares gradient boosting; trees in the complete-binary-tree layout (see module doc)."""

    def __init__(self, rounds: int = 300, learning_rate: float = 0.05, max_depth: int = 3,
                 min_leaf: int = 20, bins: int = 32):
        if rounds < 1 or max_depth < 1 or min_leaf < 1 or not 2 <= bins <= 255 or not 0 < learning_rate <= 1:
            raise ValueError("BoostedTrees: rounds, max_depth, min_leaf >= 1, 2 <= bins <= 255, "
                             "0 < learning_rate <= 1")
        self.rounds, self.learning_rate, self.max_depth = int(rounds), float(learning_rate), int(max_depth)
        self.min_leaf, self.bins = int(min_leaf), int(bins)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "BoostedTrees":
        from sklearn.ensemble import HistGradientBoostingRegressor  # lazy: sklearn costs ~1 s at start-up
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        n_inner = 2 ** self.max_depth - 1
        self.base = float(y.mean())
        self.features = np.zeros((self.rounds, n_inner), dtype=np.int64)
        self.thresholds = np.full((self.rounds, n_inner), np.inf)
        self.leaves = np.zeros((self.rounds, n_inner + 1))
        if X.shape[1] == 0 or len(np.unique(y)) <= 1:
            return self                      # nothing to split on or to fit: the mean alone
        model = HistGradientBoostingRegressor(
            loss="squared_error", learning_rate=self.learning_rate, max_iter=self.rounds,
            max_depth=self.max_depth, max_leaf_nodes=None, min_samples_leaf=self.min_leaf,
            l2_regularization=0.0, max_bins=self.bins, early_stopping=False, random_state=0)
        model.fit(X, y)
        self.base = float(np.ravel(model._baseline_prediction)[0])
        for r, (predictor,) in enumerate(model._predictors):
            self._copy_tree(r, predictor.nodes)
        return self

    def _copy_tree(self, r: int, nodes) -> None:
        """Tree ``r`` from scikit-learn's node array (root at row 0) into the complete layout."""
        n_inner = 2 ** self.max_depth - 1
        stack = [(0, 0)]                     # (scikit-learn node, node of the complete tree)
        while stack:
            src, dst = stack.pop()
            node = nodes[src]
            if dst >= n_inner:               # a leaf at full depth
                self.leaves[r, dst - n_inner] = node["value"]
            elif node["is_leaf"]:            # a leaf above full depth: go left down to depth max_depth
                while dst < n_inner:
                    dst = 2 * dst + 1
                self.leaves[r, dst - n_inner] = node["value"]
            else:
                self.features[r, dst], self.thresholds[r, dst] = node["feature_idx"], node["num_threshold"]
                stack += [(int(node["left"]), 2 * dst + 1), (int(node["right"]), 2 * dst + 2)]

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
