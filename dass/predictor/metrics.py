"""Correlations of an adapted predictor with the students' accuracies on database tasks.

The metrics themselves (and the rule for constant vectors: ``nan``, skipped by means) live in
:mod:`dass.correlation`, shared with ``dass.evaluation``.
"""
from __future__ import annotations

import warnings

from ..correlation import PARTIAL, correlations, partial_spearman
from ..space import macs
from .adapt import predict_task
from .data import TaskData
from .checkpoint import LoadedPredictor, check_same_space, load_predictor

__all__ = ["task_metrics", "evaluate_predictor"]


def task_metrics(pred, task: TaskData) -> dict[str, float]:
    """Spearman, Kendall, Pearson and the MACs-controlled Spearman of ``pred`` on ``task``
    (warnings about undefined values silenced: they are ``nan``, skipped by means)."""
    m = [macs(a, task.space, task.num_classes) for a in task.archs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {**correlations(pred, task.acc), PARTIAL: partial_spearman(pred, task.acc, m)}


def evaluate_predictor(predictor, tasks, device="cpu") -> dict[str, dict[str, float]]:
    """Per-task correlations between the adapted predictor's output and the students' accuracies.

    ``predictor``: a ``best.pt`` path or a :class:`~dass.predictor.checkpoint.LoadedPredictor`;
    ``tasks``: :class:`~dass.predictor.data.TaskData` objects or task dicts of the database format.
    Returns ``{task key: {"spearman", "kendall", "pearson", "partial_spearman", "n"}}`` (accuracies of the label the
    predictor was trained on).
    """
    p = predictor if isinstance(predictor, LoadedPredictor) else load_predictor(predictor, device=device)
    dev = next(p.model.parameters()).device
    out = {}
    for t in tasks:
        task = t if isinstance(t, TaskData) else TaskData.from_db(t, p.target["label"])
        check_same_space(p.space, task.space, f"task {task.key}")
        pred = predict_task(p.model, p.inner_lrs, p.target, int(p.adapt["steps"]), task, dev)
        out[task.key] = {**task_metrics(pred, task), "n": len(task)}
    return out
