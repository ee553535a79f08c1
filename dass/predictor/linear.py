"""Ridge regression on standardised columns: the linear prior of meta-training
(:mod:`dass.predictor.meta_train`, ``cost_prior``) and the proxy-ensemble baseline
(:mod:`dass.evaluation.ensemble`) fit the same model."""
from __future__ import annotations

import numpy as np


class Ridge:
    """``y ~ b + X w`` minimising ``||y - b - Xs w||^2 + alpha ||w||^2`` with ``Xs`` the columns of
    ``X`` standardised by their training mean and std (a constant column gets std 1, hence weight
    0). ``alpha = 0`` is least squares (minimum-norm where columns are collinear or constant)."""

    def fit(self, X: np.ndarray, y: np.ndarray, alpha: float) -> "Ridge":
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        Xs = (X - self.mean) / self.std
        self.intercept = float(y.mean())
        A = Xs.T @ Xs + float(alpha) * np.eye(X.shape[1])
        b = Xs.T @ (y - self.intercept)
        self.coef_std = np.linalg.solve(A, b) if alpha > 0 else np.linalg.lstsq(A, b, rcond=None)[0]
        return self

    @property
    def coef(self) -> np.ndarray:
        """Weights on the unstandardised columns."""
        return self.coef_std / self.std

    @property
    def bias(self) -> float:
        """Intercept on the unstandardised columns."""
        return float(self.intercept - self.mean @ self.coef)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float64) - self.mean) / self.std) @ self.coef_std + self.intercept
