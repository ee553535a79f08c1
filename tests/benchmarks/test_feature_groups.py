"""bench/feature_groups.py: the leave-one-task-out ridge recovers a ranking that is linear in the
stage encoding (and MACs alone does not), on tasks made up here."""
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from feature_groups import leave_one_task_out, zscore_columns  # noqa: E402


def test_zscore_columns_drops_constant_columns():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    assert zscore_columns(x).tolist() == [[-1.0, 0.0], [1.0, 0.0]]


def test_loto_recovers_a_stage_linear_target():
    rng = np.random.default_rng(0)
    tasks, cols = [], []
    for _ in range(4):
        stage = zscore_columns(rng.normal(size=(30, 3)))
        macs = zscore_columns(rng.normal(size=(30, 1)))
        acc = 2.0 * stage[:, 0] - stage[:, 2] + 0.1 * macs[:, 0]   # the same direction in every task
        tasks.append(SimpleNamespace(acc=torch.tensor(50 + 5 * acc)))
        cols.append({"macs": macs, "stage": stage})
    with_stage = leave_one_task_out(tasks, cols, ["macs", "stage"], alpha=0.01)
    # (the target's scale differs by task after z-scoring, so the pooled fit is close, not exact)
    assert min(r[0] for r in with_stage) > 0.99
    macs_only = leave_one_task_out(tasks, cols, ["macs"], alpha=0.01)
    assert all(r[1] == pytest.approx(0.0, abs=1e-9) for r in macs_only)   # MACs-controlled: 0 by construction
    assert max(r[0] for r in macs_only) < 0.5
