"""The proxy ensemble's ridge regression and its model choice on meta-valid tasks."""
import numpy as np
import pytest

from dass.evaluation import ensemble
from dass.predictor.linear import Ridge


def test_ridge_recovers_a_known_linear_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 5.0, -2.0, 1.0]
    w, b = np.array([2.0, -0.5, 7.0, 0.0]), 3.0
    y = X @ w + b
    m = Ridge().fit(X, y, alpha=1e-9)
    np.testing.assert_allclose(m.coef, w, atol=1e-6)
    assert m.bias == pytest.approx(b, abs=1e-6)
    np.testing.assert_allclose(m.predict(X), y, atol=1e-6)


def test_ridge_penalty_shrinks_by_the_closed_form():
    # One standardised column x (mean 0, std 1 over n rows): w = (x.y) / (x.x + alpha) = n / (n + alpha)
    # for y = x. A constant column gets std 1 and a zero weight.
    x = np.array([-1.0, 1.0, -1.0, 1.0])
    X = np.stack([x, np.full(4, 3.0)], axis=1)
    m = Ridge().fit(X, x, alpha=4.0)
    assert m.coef_std[0] == pytest.approx(4 / 8)
    assert m.coef_std[1] == 0.0


def test_zscore_puts_non_finite_values_at_the_bottom():
    z = ensemble.zscore([1.0, float("-inf"), 3.0, float("nan")])
    # -> (1, 1, 3, 1): mean 1.5, std sqrt(0.75)
    np.testing.assert_allclose(z, (np.array([1, 1, 3, 1]) - 1.5) / np.sqrt(0.75))


@pytest.mark.slow
def test_fit_on_tasks_picks_the_features_that_rank_meta_valid(monkeypatch):
    # Synthetic tasks where accuracy follows one cost column: any candidate with cost features ranks
    # meta-valid perfectly; the choice must have valid Spearman 1.
    rng = np.random.default_rng(1)

    def fake_features(task, ctx, groups):
        return task.X[:, : 2 * len(groups)]

    def task(n):
        X = rng.normal(size=(n, 8))
        return _Task(X, 50 + 10 * X[:, 0] - 3 * X[:, 1])

    monkeypatch.setattr(ensemble, "task_features", fake_features)
    train, valid = [task(30) for _ in range(3)], [task(20) for _ in range(2)]
    ctx = type("Ctx", (), {"label": "best_acc"})()
    fit = ensemble.fit_on_tasks(train, valid, ctx)
    assert fit.valid_spearman == pytest.approx(1.0)
    assert fit.model.coef[0] > 0 > fit.model.coef[1]


class _Task:
    """Minimal stand-in for a saved task: features ``X`` and its ``best_acc`` (``.accuracy(label)``)."""
    def __init__(self, X, best_acc):
        self.X, self._acc = X, np.asarray(best_acc, dtype=np.float64)

    def accuracy(self, label):
        assert label == "best_acc"
        return self._acc.copy()


def test_fit_on_tasks_takes_boosted_trees_when_the_ranking_is_not_linear(monkeypatch):
    # Accuracy follows a threshold of one column times a sign set by another (an interaction no
    # linear model of the columns can rank): the trees win on meta-valid and are the choice.
    rng = np.random.default_rng(2)

    def fake_features(task, ctx, groups):
        return task.X

    def task(n):
        X = rng.uniform(-1, 1, size=(n, 3))
        acc = 50 + 10 * (X[:, 0] > 0) * np.sign(X[:, 1]) + X[:, 2]
        return _Task(X, acc)

    monkeypatch.setattr(ensemble, "task_features", fake_features)
    train, valid = [task(200) for _ in range(4)], [task(60) for _ in range(2)]
    ctx = type("Ctx", (), {"label": "best_acc"})()
    fit = ensemble.fit_on_tasks(train, valid, ctx, candidates=[("cost",)])
    assert fit.model_name == "trees"
    assert fit.valid_spearman > 0.9
    ridge_only = ensemble.fit_on_tasks(train, valid, ctx, candidates=[("cost",)], models=ensemble.MODELS[:5])
    assert ridge_only.model_name == "ridge" and ridge_only.valid_spearman < fit.valid_spearman - 0.2
