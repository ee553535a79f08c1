"""bench/label_quality.py: students matched by architecture across runs, Spearman / gain by hand."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import label_quality as lq  # noqa: E402


def _write(work, task, arch, best, accs, macs=1000, seed=1):
    d = Path(work, "results", task)
    d.mkdir(parents=True, exist_ok=True)
    hist = [{"epoch": i + 1, "test_acc": a, "seconds": 2.0} for i, a in enumerate(accs)]
    rec = {"task": task, "arch": arch, "best_acc": best, "final_acc": accs[-1], "macs": macs, "history": hist,
           "seed": seed}
    (d / f"{abs(hash(json.dumps([arch, seed])))}.json").write_text(json.dumps(rec))


def test_compare_by_hand(tmp_path):
    archs = [{"depths": [i]} for i in range(4)]
    # run A labels 10, 20, 30, 40; run B swaps the middle two: 10, 30, 20, 40 (and lists them in another order)
    for i, a in enumerate(archs):
        _write(tmp_path / "A", "t", a, 10.0 * (i + 1), [0.0, 5.0, 10.0 * (i + 1)], macs=100 * (i + 1))
    for i in (3, 1, 0, 2):
        v = [10.0, 30.0, 20.0, 40.0][i]
        _write(tmp_path / "B", "t", archs[i], v, [v, v - 1, v - 2], macs=100 * (i + 1))
    rep = lq.compare([lq.load_results(tmp_path / "A"), lq.load_results(tmp_path / "B")], "best")
    a, b = rep["t"]
    # Spearman with one adjacent swap among 4: 1 - 6 * 2 / (4 * 15) = 0.8
    assert b["rho"]["best"] == pytest.approx(0.8)
    assert b["reliability"] == pytest.approx(2 * 0.8 / 1.8)
    # A - B: 0, -10, +10, 0 -> mean 0; A higher only for the third student
    assert b["gain"] == pytest.approx(0.0)
    assert b["first_higher"] == pytest.approx(0.25)
    # A peaks at its last epoch; B at its first
    assert a["best_before_last"] == 0.0 and b["best_before_last"] == 1.0
    # last3 of B = the mean of v, v-1, v-2 = v - 1: the same order as B's best
    assert b["rho"]["last3"] == pytest.approx(0.8)
    assert a["rho_macs"] == pytest.approx(1.0)
    assert a["seconds"] == pytest.approx(6.0)


def test_missing_students_are_skipped(tmp_path):
    for i in range(4):
        _write(tmp_path / "A", "t", {"d": i}, float(i), [float(i)], macs=10 * (i + 1))
    _write(tmp_path / "B", "t", {"d": 0}, 0.0, [0.0])
    rep = lq.compare([lq.load_results(tmp_path / "A"), lq.load_results(tmp_path / "B")])
    assert rep["t"][1] == {"run": 1, "n": 1}


def test_seeds_of_one_work_dir(tmp_path):
    """Two label seeds in one work folder: ``DIR@SEED`` picks one; without it the folder is refused."""
    for i in range(4):
        _write(tmp_path / "W", "t", {"d": i}, float(i), [float(i)], seed=1)
        _write(tmp_path / "W", "t", {"d": i}, float(3 - i), [float(3 - i)], seed=2)  # reversed order
    rep = lq.compare([lq.load_results(f"{tmp_path / 'W'}@1"), lq.load_results(f"{tmp_path / 'W'}@2")])
    assert rep["t"][0]["mean"] == pytest.approx(1.5) and rep["t"][1]["rho"]["best"] == pytest.approx(-1.0)
    with pytest.raises(SystemExit, match="seeds"):
        lq.load_results(tmp_path / "W")
