"""Gradient-boosted trees of the proxy ensemble, against cases whose answer is known by hand."""
import numpy as np
import pytest

from dass.predictor.boosting import BoostedTrees


def test_one_round_of_stumps_finds_the_step_and_its_leaf_means():
    # y is a step at x = 0.5 (values 0 then 4): the best stump cuts between the two values next to
    # the step (0.4 and 0.6 -> 0.5) and each leaf holds learning_rate x (mean of its side - base).
    x = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    y = np.where(x > 0.5, 4.0, 0.0)
    m = BoostedTrees(rounds=1, learning_rate=0.5, max_depth=1, min_leaf=1).fit(x[:, None], y)
    assert m.base == 2.0
    assert m.thresholds[0, 0] == pytest.approx(0.5)
    np.testing.assert_allclose(m.leaves[0], [0.5 * (0 - 2), 0.5 * (4 - 2)])
    np.testing.assert_allclose(m.predict(np.array([[0.0], [0.45], [0.55], [1.0]])), [1, 1, 3, 3])


def test_boosting_converges_to_a_piecewise_constant_target_of_two_columns():
    # y = 3 [x0 > 0] - 2 [x1 > 0.5] (+ an irrelevant column) on a grid of 5 values per column (fewer
    # than the bins, so every gap between values is a candidate cut): depth-2 trees represent y
    # exactly, and each round of learning rate r keeps about (1 - r) of the residual (0.7^60 ~ 5e-10).
    rng = np.random.default_rng(0)
    X = rng.choice([-0.9, -0.4, 0.2, 0.7, 1.0], size=(400, 3))
    y = 3.0 * (X[:, 0] > 0) - 2.0 * (X[:, 1] > 0.5)
    m = BoostedTrees(rounds=60, learning_rate=0.3, max_depth=2, min_leaf=5).fit(X, y)
    assert np.abs(m.predict(X) - y).max() < 1e-5
    Xt = np.array([[0.5, 0.9, 0.0], [0.5, 0.0, 0.0], [-0.5, 0.9, 0.0], [-0.5, 0.0, 0.0]])
    np.testing.assert_allclose(m.predict(Xt), [1.0, 3.0, -2.0, 0.0], atol=0.05)
    assert set(np.unique(m.features[m.thresholds < np.inf])) <= {0, 1}   # never splits on the noise column


def test_min_leaf_is_respected_and_a_node_without_a_split_passes_rows_left():
    x = np.arange(10.0)
    y = np.array([9.0] + [0.0] * 9)          # the best cut isolates one row, which min_leaf 3 forbids
    m = BoostedTrees(rounds=1, learning_rate=1.0, max_depth=1, min_leaf=3).fit(x[:, None], y)
    cut = m.thresholds[0, 0]
    assert 2 < cut < 7                       # at least 3 rows on each side
    const = BoostedTrees(rounds=2, learning_rate=1.0, max_depth=2, min_leaf=1).fit(np.ones((6, 1)), np.arange(6.0))
    assert np.all(const.thresholds == np.inf)                 # a constant column cannot split
    np.testing.assert_allclose(const.predict(np.ones((2, 1))), [2.5, 2.5])


def test_fit_is_deterministic_and_rejects_bad_settings():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(100, 4)), rng.normal(size=100)
    a = BoostedTrees(rounds=20).fit(X, y).predict(X)
    b = BoostedTrees(rounds=20).fit(X, y).predict(X)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        BoostedTrees(learning_rate=0.0)


def test_the_copied_trees_predict_what_scikit_learn_predicts():
    """The arrays (complete trees, +inf chains below early leaves) reproduce the fitted model; min_leaf
    40 on 150 rows stops many branches above depth 3, so the chains are exercised."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 4))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=150)
    m = BoostedTrees(rounds=30, learning_rate=0.2, max_depth=3, min_leaf=40).fit(X, y)
    ref = HistGradientBoostingRegressor(learning_rate=0.2, max_iter=30, max_depth=3, max_leaf_nodes=None,
                                        min_samples_leaf=40, l2_regularization=0.0, max_bins=32,
                                        early_stopping=False, random_state=0).fit(X, y)
    Xt = rng.normal(size=(500, 4))
    np.testing.assert_allclose(m.predict(Xt), ref.predict(Xt), rtol=0, atol=1e-9)
    assert (m.thresholds == np.inf).any()    # some node stopped above full depth
