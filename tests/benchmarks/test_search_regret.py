"""bench/search_regret.py on a hand-written search_kd.csv: per method and budget the mean regret over
tasks and seeds (``@s<seed>`` merged), and over all budgets; a task filter; clear errors."""
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import search_regret  # noqa: E402

HEAD = "task,budget,column,method,pool_size,student,arch,macs,macs_fraction,db_acc,pool_best_acc,regret\n"
# (task, budget, method, regret)
CELLS = [("a", 0.25, "dass@s0", -1.0), ("a", 0.25, "dass@s1", -3.0), ("a", 0.5, "dass@s0", 0.0),
         ("a", 0.5, "dass@s1", -2.0), ("b", 0.25, "dass@s0", -4.0), ("b", 0.25, "dass@s1", 0.0),
         ("b", 0.5, "dass@s0", -1.0), ("b", 0.5, "dass@s1", -1.0),
         ("a", 0.25, "macs", -6.0), ("a", 0.5, "macs", 0.0), ("b", 0.25, "macs", -2.0), ("b", 0.5, "macs", -4.0)]


@pytest.fixture
def csv_file(tmp_path):
    p = tmp_path / "search_kd.csv"
    p.write_text(HEAD + "".join(f"{t},{b},{t} @ {b},{m},4,0,x,1,{b},70,70,{r}\n" for t, b, m, r in CELLS))
    return p


def test_means_over_tasks_and_seeds(csv_file, tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert search_regret.main([str(csv_file), "--methods", "macs", "dass", "--json", str(out)]) == 0
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    # dass at 0.25: (-1 - 3 - 4 + 0) / 4 = -2; at 0.5: (0 - 2 - 1 - 1) / 4 = -1; all: -12 / 8 = -1.5
    assert rows["dass"]["budgets"] == {"0.25": -2.0, "0.5": -1.0} and rows["dass"]["all"] == -1.5
    assert rows["dass"]["cells"] == 8
    # macs at 0.25: (-6 - 2) / 2 = -4; at 0.5: (0 - 4) / 2 = -2; all -3
    assert rows["macs"]["budgets"] == {"0.25": -4.0, "0.5": -2.0} and rows["macs"]["all"] == -3.0
    printed = capsys.readouterr().out
    assert printed.index("| macs |") < printed.index("| dass |") and "| dass | 8 | -2.00 | -1.00 | -1.50 |" in printed


def test_task_filter(csv_file, capsys):
    assert search_regret.main([str(csv_file), "--tasks", "b"]) == 0
    # task b only: dass at 0.25 (-4 + 0) / 2 = -2, at 0.5 -1; macs -2 and -4
    out = capsys.readouterr().out
    assert "| dass | 4 | -2.00 | -1.00 | -1.50 |" in out and "| macs | 2 | -2.00 | -4.00 | -3.00 |" in out


def test_errors_are_one_line(csv_file, tmp_path, capsys):
    assert search_regret.main([str(csv_file), "--methods", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: no rows for method(s) nope")
    bad = tmp_path / "bad.csv"
    bad.write_text("task,method\na,dass\n")
    assert search_regret.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "search_kd.csv" in err and err.count("\n") == 1
    assert search_regret.main([str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
