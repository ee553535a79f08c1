"""bench/task_dependence.py on a tiny database: reliability from two label seeds by hand, the room,
the task-blind ridge as the encoding_ridge scorer, the within-task ridge against a closed form."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from assets.tiny_db import write_tiny_db
from dass.database.format import load_task_db, save_task_db
from dass.database.saved import SavedTask
from dass.evaluation import baselines as bl

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import task_dependence as td  # noqa: E402

SPLITS = (("dtd", "meta_test"), ("a", "meta_train"), ("b", "meta_train"), ("v1", "meta_valid"), ("v2", "meta_valid"))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("td")
    write_tiny_db(root, tasks=SPLITS, n_students=15)
    path = root / "db" / "dtd.pt"
    d = load_task_db(path)
    st = d["students"]
    noise = torch.tensor(np.random.default_rng(7).normal(0, 3, size=15), dtype=torch.float32)
    for k in ("best_acc", "final_acc"):   # two seeds whose mean is the label
        st[f"{k}_seeds"] = torch.stack([st[k] + noise, st[k] - noise], dim=1)
    d["label_seeds"] = [1, 2]
    save_task_db(d, path)
    return root, load_task_db(path)


def _ridge_closed_form(X, y, alpha):
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1.0
    Xs = (X - mu) / sd
    w = np.linalg.solve(Xs.T @ Xs + alpha * np.eye(X.shape[1]), Xs.T @ (y - y.mean()))
    return lambda Z: ((Z - mu) / sd) @ w + y.mean()


def test_rows_against_independent_computations(db):
    root, task = db
    res = td.task_dependence(str(root / "db"), folds=5, seed=3)
    (row,) = res["rows"]
    seeds = task["students"]["best_acc_seeds"].numpy()
    true = task["students"]["best_acc"].double().numpy()
    r = stats.spearmanr(seeds[:, 0], seeds[:, 1]).statistic
    assert row["seed_rho"] == pytest.approx(r, abs=1e-4)
    assert row["reliability"] == pytest.approx(2 * r / (1 + r), abs=1e-4)
    assert row["ceiling"] == pytest.approx(math.sqrt(row["reliability"]))
    assert row["room"] == pytest.approx(row["ceiling"] - row["task_blind"])
    assert row["macs"] == pytest.approx(stats.spearmanr(task["students"]["macs"].numpy(), true).statistic)
    blind = bl.make_scorer("encoding_ridge")
    ctx = bl.EvalContext(db=str(root / "db"), progress=False)
    scores = blind.score(SavedTask.from_db(task), ctx)
    assert row["task_blind"] == pytest.approx(stats.spearmanr(scores, true).statistic)
    # within-task: folds partition the students; each fold predicted by a closed-form ridge on the rest
    parts = td.fold_parts(15, 5, 3, "dtd")
    assert sorted(np.concatenate(parts).tolist()) == list(range(15)) and [len(p) for p in parts] == [3] * 5
    X = td.task_features(SavedTask.from_db(task), None, td.ENCODING_GROUPS)
    pred = np.empty(15)
    for p in parts:
        rest = np.setdiff1d(np.arange(15), p)
        pred[p] = _ridge_closed_form(X[rest], true[rest], res["within_alpha"])(X[p])
    assert row["within_cv"] == pytest.approx(stats.spearmanr(pred, true).statistic)
    assert res["within_alpha"] in td.ENCODING_ALPHAS
    assert res["mean"]["room"] == pytest.approx(row["room"])


@pytest.mark.slow
def test_cli_prints_the_table_and_json(db, forked):
    root, _ = db
    out = forked([REPO / "bench" / "task_dependence.py", "--db", root / "db", "--json"])   # warm imports
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r["task"] for r in res["rows"]] == ["dtd"]
    bad = forked([REPO / "bench" / "task_dependence.py", "--db", root / "none"])
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_scratch_pilot_spreads_students_along_the_macs_order():
    import scratch_pilot
    # MACs order of the indices: 5 (0), 1 (1), 3 (2), 4 (3), 2 (4), 0 (5); two slices of three, their
    # middles at positions 1 and 4: indices 1 and 2
    assert scratch_pilot.spread_students([5, 1, 4, 2, 3, 0], 2) == [1, 2]
    assert scratch_pilot.spread_students([5, 1, 4, 2, 3, 0], 6) == list(range(6))
