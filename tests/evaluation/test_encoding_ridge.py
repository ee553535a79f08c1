"""encoding_ridge, the task-blind floor: against a closed-form ridge computed here from the space's own
cost and encoding functions, task-blind (labels, teacher and images of the scored task unused), and
its place in the evaluation stage."""
import csv
import math

import numpy as np
import pytest
import torch
from scipy import stats

from assets.tiny_db import TINY, write_tiny_db
from dass.errors import DassError
from dass.evaluation import baselines as bl
from dass.database.saved import SavedTask
from dass.evaluation.ensemble import ENCODING_ALPHAS
from dass.space import Arch, macs, onehot, params, teacher_arch

SPLITS = (("dtd", "meta_test"), ("a", "meta_train"), ("b", "meta_train"), ("c", "meta_train"),
          ("v1", "meta_valid"), ("v2", "meta_valid"))


def _features(task):
    """log(MACs / teacher MACs), log(params / teacher params), then the one-hot encoding, from the
    space's functions (not the evaluation's feature code)."""
    n_cls = int(task["task"]["num_classes"])
    t = teacher_arch(TINY)
    rows = []
    for a in task["students"]["arch"]:
        arch = Arch.from_dict(a)
        rows.append([math.log(macs(arch, TINY, n_cls) / macs(t, TINY, n_cls)),
                     math.log(params(arch, TINY, n_cls) / params(t, TINY, n_cls)),
                     *onehot(arch, TINY).tolist()])
    return np.array(rows)


def _closed_form(train, alpha):
    """Ridge on standardised columns (a constant column: scale 1), intercept unpenalised, the labels
    z-scored within each task; returns a predict function."""
    X = np.concatenate([_features(t) for t in train])
    y = np.concatenate([(v - v.mean()) / v.std() for v in (t["students"]["best_acc"].double().numpy() for t in train)])
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1.0
    Xs = (X - mu) / sd
    w = np.linalg.solve(Xs.T @ Xs + alpha * np.eye(X.shape[1]), Xs.T @ (y - y.mean()))
    return lambda task: ((_features(task) - mu) / sd) @ w + y.mean()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("er")
    tasks = write_tiny_db(root, tasks=SPLITS, n_students=12)
    return root, tasks


def test_encoding_ridge_equals_closed_form_ridge_with_the_penalty_best_on_meta_valid(db):
    root, tasks = db
    train = [tasks[k] for k in ("a", "b", "c")]
    valid = [tasks[k] for k in ("v1", "v2")]
    best, best_rho = None, -np.inf
    for alpha in ENCODING_ALPHAS:   # the first best on meta-valid, as the scorer chooses
        f = _closed_form(train, alpha)
        rho = np.mean([stats.spearmanr(f(t), t["students"]["best_acc"].numpy()).statistic for t in valid])
        if rho > best_rho + 1e-12:
            best, best_rho = alpha, rho
    want = _closed_form(train, best)(tasks["dtd"])
    ctx = bl.EvalContext(db=str(root / "db"), progress=False)
    scorer = bl.make_scorer("encoding_ridge")
    got = bl.run_scorer(scorer, SavedTask.from_db(tasks["dtd"]), ctx)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert scorer.model.settings == {"alpha": best} and scorer.model.groups == ("cost", "onehot")
    assert scorer.model.valid_spearman == pytest.approx(best_rho)
    # the tiny database's accuracy grows with MACs in every task: the floor ranks the unseen task by it
    assert stats.spearmanr(got, tasks["dtd"]["students"]["best_acc"].numpy()).statistic > 0.5


def test_encoding_ridge_is_task_blind(db):
    """Other labels, no teacher checkpoint and no images for the scored task: the same scores."""
    root, tasks = db
    ctx = bl.EvalContext(db=str(root / "db"), data_root=str(root / "none"), progress=False,
                         teachers={"dtd": str(root / "missing.pt")})
    scorer = bl.make_scorer("encoding_ridge")
    assert not scorer.needs_teacher
    task = tasks["dtd"]
    first = scorer.score(SavedTask.from_db(task), ctx)
    other = {**task, "students": {**task["students"], "best_acc": torch.flip(task["students"]["best_acc"], [0])}}
    np.testing.assert_array_equal(scorer.score(SavedTask.from_db(other), ctx), first)


def test_evaluation_stage_has_the_encoding_ridge_row_and_needs_meta_train(db, tmp_path):
    from dass.evaluation.config import EvaluationConfig
    from dass.evaluation.evaluate_tasks import run
    root, tasks = db
    cfg = EvaluationConfig(db=str(root / "db"), data_root=str(root / "none"), methods=["macs", "encoding_ridge"],
                           run_dir=str(tmp_path / "run"), plots=False, progress=False)
    summary = run(cfg)
    assert "encoding_ridge" in summary["methods"] and "encoding_ridge" in summary["fitted_models"]
    with open(tmp_path / "run" / "correlations.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "encoding_ridge" and r["task"] == "dtd"
                and r["label"] == "best_acc"]
    want = _closed_form([tasks[k] for k in ("a", "b", "c")], float(summary["fitted_models"]["encoding_ridge"]
                                                                   .split("alpha ")[1].split(" ")[0]))(tasks["dtd"])
    assert float(rows[0]["spearman"]) == pytest.approx(
        stats.spearmanr(want, tasks["dtd"]["students"]["best_acc"].numpy()).statistic)
    only_test = write_tiny_db(tmp_path / "t", tasks=(("dtd", "meta_test"),), n_students=6)
    assert only_test
    bad = EvaluationConfig(db=str(tmp_path / "t" / "db"), methods=["encoding_ridge"], run_dir=str(tmp_path / "r2"),
                           plots=False, progress=False)
    with pytest.raises(DassError, match="encoding_ridge needs meta_train tasks"):
        run(bad)
