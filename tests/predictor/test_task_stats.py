"""Task statistics as predictor inputs (task_stats): the values, the rows they join, and a tree prior
that follows an order of students that flips with the teacher's strength (labels built so that the
answer is known)."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from assets.tiny_db import write_flip_db
from dass import config as cfgmod
from dass.errors import DassError
from dass.predictor import MetaTrainConfig, MetaTrainer, load_tasks, take
from dass.predictor.data import task_context, task_stats
from dass.predictor.model import InputDims, Predictor, PredictorConfig, prior_inputs, scalar_inputs

# meta-train alternates strong (90 %) and weak (20 %) teachers; the held-out tasks have one of each
TASKS = [(f"tr{i}", "meta_train", 90.0 if i % 2 else 20.0) for i in range(6)] + [
    ("va0", "meta_valid", 85.0), ("va1", "meta_valid", 25.0), ("te0", "meta_test", 88.0), ("te1", "meta_test", 22.0)]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return write_flip_db(tmp_path_factory.mktemp("stats"), TASKS, n_students=24)


def test_task_stats_values_and_rows():
    s = task_stats(75.0, 5)
    assert s.tolist() == pytest.approx([0.75, math.log(5)])
    ctx = task_context({"task"}, None, None, s)
    cost = torch.arange(6.0).reshape(3, 2)
    rows = scalar_inputs({"cost": cost, **ctx}, False, False, ["log_classes", "teacher_acc"])
    assert rows.shape == (3, 4)
    torch.testing.assert_close(rows[:, :2], cost)
    torch.testing.assert_close(rows[:, 2:], torch.tensor([[math.log(5), 0.75]] * 3))
    with pytest.raises(DassError, match="teacher's accuracy"):
        task_context({"task"}, None, None, task_stats(None, 5))


def _config(db, run_dir, *extra) -> MetaTrainConfig:
    return cfgmod.load(MetaTrainConfig, None, [
        f"db={db}", f"run_dir={run_dir}", "progress=false", "cost_prior=true", "prior_model=trees",
        "prior_rounds=300", "prior_depth=2", "target=standardized", "first_order=true", *extra])


def _prior_spearman(trainer, task) -> float:
    with torch.no_grad():
        pred = trainer.model(take(task.inputs(trainer.model.needs))).numpy()
    return stats.spearmanr(pred, task.acc.numpy()).statistic


def test_tree_prior_reads_the_teachers_strength(db, tmp_path):
    space, tasks = load_tasks(db)
    aware = MetaTrainer(_config(db, tmp_path, "task_stats=[teacher_acc]"), space, tasks, torch.device("cpu"))
    blind = MetaTrainer(_config(db, tmp_path), space, tasks, torch.device("cpu"))
    weak = next(t for t in tasks["meta_test"] if t.teacher_acc < 50)
    strong = next(t for t in tasks["meta_test"] if t.teacher_acc > 50)
    # piecewise-constant trees on 144 students rank at 0.87-0.90 here (ties within leaves)
    assert _prior_spearman(aware, weak) > 0.8 and _prior_spearman(aware, strong) > 0.8
    # one order for both: the blind prior ranks neither task well
    assert max(_prior_spearman(blind, weak), _prior_spearman(blind, strong)) < 0.3
    with pytest.raises(DassError, match="task_stats"):
        _config(db, tmp_path, "task_stats=[nope]").check()
    with pytest.raises(DassError, match="task_stats"):
        cfgmod.load(MetaTrainConfig, None, [f"db={db}", f"run_dir={tmp_path}", "task_stats=[teacher_acc]"]).check()


def test_prior_interaction_columns():
    cost = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    stage = torch.tensor([[0.5, 0.25], [1.0, 0.75]])
    inputs = {"cost": cost, "stage": stage, "task": task_stats(40.0, 8), "onehot": torch.eye(2)}
    cfg = PredictorConfig(InputDims(4, 2, 6, 2), cost_prior=True, stage_features=True,
                          task_stats=["teacher_acc", "log_classes"], prior_interactions=True, prior_onehot=True)
    rows = prior_inputs(inputs, cfg)
    a, c = 0.4, math.log(8)
    student = torch.cat([cost, stage], dim=1)
    # student scalars, the two statistics, each student scalar times (acc, log classes), then the one-hot
    expect = [[*s, a, c, *[v * w for v in s for w in (a, c)], *o] for s, o in zip(student.tolist(), torch.eye(2).tolist())]
    torch.testing.assert_close(rows, torch.tensor(expect))
    assert Predictor(cfg).prior.in_features == rows.shape[1]
    with pytest.raises(DassError, match="prior_interactions"):
        PredictorConfig(InputDims(4, 2, 6, 2), cost_prior=True, prior_interactions=True)


def test_linear_prior_with_interactions_follows_the_flip(db, tmp_path):
    """Labels are +-(log MACs) by the teacher's side of 50 %: linear in (log MACs) x (teacher accuracy), so
    the interaction prior ranks both held-out tasks exactly; without interactions one linear order
    cannot fit both."""
    space, tasks = load_tasks(db)
    lin = ["prior_model=linear", "task_stats=[teacher_acc]", "prior_ridge=0"]
    inter = MetaTrainer(_config(db, tmp_path, *lin, "prior_interactions=true"), space, tasks, torch.device("cpu"))
    plain = MetaTrainer(_config(db, tmp_path, *lin), space, tasks, torch.device("cpu"))
    weak = next(t for t in tasks["meta_test"] if t.teacher_acc < 50)
    strong = next(t for t in tasks["meta_test"] if t.teacher_acc > 50)
    assert min(_prior_spearman(inter, weak), _prior_spearman(inter, strong)) > 0.99
    assert min(_prior_spearman(plain, weak), _prior_spearman(plain, strong)) < 0
    with pytest.raises(DassError, match="prior_interactions"):
        _config(db, tmp_path, "prior_interactions=true").check()
