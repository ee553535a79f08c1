"""The proxy ensemble: a learned, non-meta ranker of students from cheap features.

Features of a student (groups, :data:`GROUPS`):

* ``cost``: ``log(macs / teacher macs)``, ``log(params / teacher params)``
  (:func:`dass.predictor.data.cost_features`);
* ``proxies``: the zero-cost proxies and DisWOT (:data:`dass.proxies.ARCH_PROXIES`) of the remapped
  student on the task's proxy batch, each z-scored within its task (their scales differ between
  tasks); non-finite values (a singular NASWOT kernel, a failed jacov) are set to the task's lowest
  finite value first;
* ``stage``: the stage encoding (per-stage depth and summed width relative to the maximum,
  :func:`dass.space.stage_batch`);
* ``onehot``: the architecture encoding stored in the task file.

Target: each task's accuracies z-scored within the task (the model ranks; it is not an accuracy
regressor). Models (:data:`MODELS`): ridge regression (:class:`Ridge`, columns standardised over the
training rows) at each penalty of :data:`ALPHAS`, and gradient-boosted trees
(:class:`dass.predictor.boosting.BoostedTrees`, depth 2 and 3), fitted on every ``meta_train``
student. The feature groups and the model are chosen among :data:`CANDIDATE_GROUPS` x :data:`MODELS`
by the mean Spearman over the ``meta_valid`` tasks (first best on ties, ridge before trees); the
chosen model is the one fitted on ``meta_train`` only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..correlation import correlations, nanmean, selection_value
from ..database.saved import SavedTask
from ..predictor.data import cost_features
from ..proxies.batch import ARCH_PROXIES
from ..space import stage_batch
from ..predictor.boosting import BoostedTrees
from ..predictor.linear import Ridge

GROUPS = ("cost", "proxies", "stage", "onehot")
CANDIDATE_GROUPS = (("cost",), ("cost", "proxies"), ("cost", "stage"), ("cost", "proxies", "stage"),
                    ("cost", "onehot"), ("cost", "proxies", "onehot"), ("cost", "proxies", "stage", "onehot"))
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
TREES = ({"rounds": 400, "learning_rate": 0.05, "max_depth": 2, "min_leaf": 20},
         {"rounds": 300, "learning_rate": 0.05, "max_depth": 3, "min_leaf": 20})
# (name, settings): ridge at every penalty, then the boosted trees
MODELS = tuple(("ridge", {"alpha": a}) for a in ALPHAS) + tuple(("trees", t) for t in TREES)
# The task-blind floor (``encoding_ridge``): ridge over cost and the one-hot encoding only, its
# penalty (on the standardised columns) chosen on meta_valid in this grid
ENCODING_GROUPS = ("cost", "onehot")
ENCODING_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
ENCODING_MODELS = tuple(("ridge", {"alpha": a}) for a in ENCODING_ALPHAS)


def make_model(name: str, settings: dict, X: np.ndarray, y: np.ndarray):
    """A model of :data:`MODELS` fitted on ``X``, ``y``."""
    if name == "ridge":
        return Ridge().fit(X, y, settings["alpha"])
    if name == "trees":
        return BoostedTrees(**settings).fit(X, y)
    raise ValueError(f"unknown ensemble model {name!r}")


def describe_model(name: str, settings: dict) -> str:
    if name == "ridge":
        return f"ridge, alpha {settings['alpha']:g}"
    return (f"boosted trees, {settings['rounds']} x depth {settings['max_depth']}, "
            f"learning rate {settings['learning_rate']:g}")


def zscore(v: np.ndarray) -> np.ndarray:
    """Within-task z-score; non-finite entries become the lowest finite value first."""
    v = np.array(v, dtype=np.float64)
    finite = np.isfinite(v)
    v[~finite] = v[finite].min() if finite.any() else 0.0
    sd = v.std()
    return (v - v.mean()) / (sd if sd > 0 else 1.0)


def task_features(task: SavedTask, context, groups) -> np.ndarray:
    """``N x F`` features of ``task``'s students (groups in :data:`GROUPS` order)."""
    cols = []
    if "cost" in groups:
        cols.append(cost_features(task.archs, task.space, task.num_classes).double().numpy())
    if "proxies" in groups:
        cols.append(np.stack([zscore(context.proxy_scores(task, p)) for p in ARCH_PROXIES], axis=1))
    if "stage" in groups:
        cols.append(stage_batch(task.archs, task.space).double().numpy())
    if "onehot" in groups:
        cols.append(task.onehot.double().numpy())
    return np.concatenate(cols, axis=1)


def task_target(task: SavedTask, label: str) -> np.ndarray:
    return zscore(task.accuracy(label))


@dataclass
class ProxyEnsemble:
    groups: tuple
    model_name: str          # "ridge" or "trees"
    settings: dict
    model: object            # Ridge or BoostedTrees
    valid_spearman: float

    def predict_task(self, task: SavedTask, context) -> np.ndarray:
        return self.model.predict(task_features(task, context, self.groups))

    def describe(self) -> str:
        return (f"{describe_model(self.model_name, self.settings)} on {'+'.join(self.groups)} "
                f"(meta-valid Spearman {self.valid_spearman:.3f})")


def fit_on_tasks(train: list[SavedTask], valid: list[SavedTask], context, candidates=CANDIDATE_GROUPS,
                 models=MODELS) -> ProxyEnsemble:
    """Fit every candidate on ``train`` and keep the best on ``valid`` (see module doc)."""
    label = context.label
    y = np.concatenate([task_target(t, label) for t in train])
    best = None
    for groups in candidates:
        X = np.concatenate([task_features(t, context, groups) for t in train])
        Xv = [task_features(t, context, groups) for t in valid]
        for name, settings in models:
            model = make_model(name, settings, X, y)
            rho = nanmean(correlations(model.predict(x), t.accuracy(label))["spearman"]
                          for x, t in zip(Xv, valid)) if valid else float("nan")
            if best is None or selection_value(rho) > selection_value(best.valid_spearman):
                best = ProxyEnsemble(tuple(groups), name, dict(settings), model, rho)
    return best
