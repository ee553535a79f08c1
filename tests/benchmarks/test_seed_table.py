"""bench/seed_table.py: per task the mean over a method's seeds, then the mean over tasks; ``--tasks``
restricts the columns to one group of tasks (a regime), and unknown tasks or methods are one-line errors."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIELDS = ["method", "task", "label", "spearman", "partial_spearman"]
# method@seed -> {task: spearman}; the hand-computed means are in the tests below
ROWS = {
    "dass@s0": {"a": 0.9, "b": 0.5, "c": 0.1},
    "dass@s1": {"a": 0.7, "b": 0.3, "c": 0.3},
    "macs": {"a": 0.6, "b": 0.2, "c": 0.0},
}


@pytest.fixture()
def correlations(tmp_path):
    path = tmp_path / "correlations.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for method, per_task in ROWS.items():
            for task, v in per_task.items():
                w.writerow({"method": method, "task": task, "label": "best_acc", "spearman": v, "partial_spearman": ""})
            # an evaluation's own summary row and a group row: never taken for tasks
            w.writerow({"method": method, "task": "mean", "label": "best_acc", "spearman": 0.0, "partial_spearman": ""})
            w.writerow({"method": method, "task": "mean:g", "label": "best_acc", "spearman": 0.0, "partial_spearman": ""})
    return path


def run(*args):
    return subprocess.run([sys.executable, str(REPO / "bench/seed_table.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


def test_means_over_seeds_then_tasks(correlations, tmp_path):
    out = tmp_path / "t.json"
    p = run(correlations, "--methods", "dass", "macs", "--json", out)
    assert p.returncode == 0, p.stderr
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    # dass: per task (0.8, 0.4, 0.2) -> mean 0.4667; seed means 0.5 and 0.4333
    assert rows["dass"]["tasks"] == pytest.approx({"a": 0.8, "b": 0.4, "c": 0.2})
    assert rows["dass"]["mean"] == pytest.approx(1.4 / 3)
    assert rows["dass"]["seed_means"] == pytest.approx([0.5, 1.3 / 3])
    assert rows["macs"]["mean"] == pytest.approx(0.8 / 3) and rows["macs"]["seed_sd"] is None


def test_tasks_restricts_the_columns(correlations, tmp_path):
    out = tmp_path / "t.json"
    p = run(correlations, "--methods", "dass", "macs", "--tasks", "a", "c", "--json", out)
    assert p.returncode == 0, p.stderr
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    assert set(rows["dass"]["tasks"]) == {"a", "c"}
    assert rows["dass"]["mean"] == pytest.approx(0.5)          # (0.8 + 0.2) / 2
    assert rows["dass"]["seed_means"] == pytest.approx([0.5, 0.5])
    assert rows["macs"]["mean"] == pytest.approx(0.3)
    assert "| b |" not in p.stdout and "| a | c |" in p.stdout


@pytest.mark.parametrize("args, words", [(["--tasks", "zzz"], "tasks not in"), (["--methods", "nope"], "methods not in")])
def test_unknown_names_are_one_line_errors(correlations, args, words):
    p = run(correlations, *args)
    assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1
