"""bench/regime_transfer.py: a ridge that sees the teacher's accuracy can follow an order that flips with
the teacher's strength; the task-blind ridge cannot (labels built so that the answer is known)."""
import sys
from pathlib import Path

import pytest
from scipy import stats

from assets.tiny_db import write_flip_db
from dass.database.format import load_task_db

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import regime_transfer as rt  # noqa: E402

# fit tasks alternate strong (90 %) and weak (20 %) teachers; the test task has a weak one (25 %)
FIT = [(f"f{i}", "meta_train", 90.0 if i % 2 else 20.0) for i in range(6)]
TEST = [("t0", "meta_test", 25.0)]


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    return write_flip_db(tmp_path_factory.mktemp("fit"), FIT), write_flip_db(tmp_path_factory.mktemp("test"), TEST)


def test_teacher_aware_ridge_follows_the_flipped_order(dbs):
    fit_db, test_db = dbs
    res = rt.transfer([f"{fit_db}:meta_train"], [str(test_db)])
    (row,) = res["rows"]
    task = load_task_db(test_db / "t0.pt")
    macs = task["students"]["macs"].numpy()
    true = task["students"]["best_acc"].numpy()
    assert stats.spearmanr(macs, true).statistic == pytest.approx(-1.0)   # the weak-teacher order
    assert row["macs"] == pytest.approx(-1.0) and row["teacher"] == pytest.approx(25.0)
    assert row["teacher-aware"] > 0.9          # reads the teacher's accuracy: the order flips
    assert row["task-blind"] < 0.5             # one order for every task: it cannot
    assert res["fit_tasks"] == 6 and set(res["alpha"].values()) <= set(rt.ENCODING_ALPHAS)


@pytest.mark.slow
def test_cli_table(dbs, forked):
    fit_db, test_db = dbs
    script = REPO / "bench" / "regime_transfer.py"   # forked from a warm interpreter (conftest.py)
    out = forked([script, "--fit", f"{fit_db}:meta_train", "--test", test_db])
    assert out.returncode == 0, out.stderr
    assert "| t0 | 25.0 | 12 |" in out.stdout and "teacher-aware" in out.stdout
    bad = forked([script, "--fit", fit_db / "nope", "--test", test_db])
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
