"""target_reliability: how many KD seeds a task's label gets, from the agreement of its first seeds
(Spearman-Brown, values computed by hand), and the config rules around it."""
import json

import pytest

from dass.config import from_dict
from dass.database.plan import seeds_needed, task_seeds
from dass.database.config import DatabaseConfig, TaskSpec
from dass.database.jobs import StudentJob
from dass.errors import DassError


def test_seeds_needed_by_hand():
    # two seeds agreeing at r = 0.74: k seeds give k r / (1 + (k - 1) r) = 0.851 (2), 0.895 (3), 0.919 (4)
    assert seeds_needed(0.74, 0.9, 2, 6) == 4
    assert seeds_needed(0.74, 0.85, 2, 6) == 2
    assert seeds_needed(0.74, 0.89, 2, 6) == 3
    # r = 0.5: 6 seeds give 3 / 3.5 = 0.857 < 0.9: capped
    assert seeds_needed(0.5, 0.9, 2, 6) == 6
    assert seeds_needed(-0.2, 0.9, 2, 5) == 5      # seeds that disagree never get there
    assert seeds_needed(None, 0.9, 2, 6) == 2       # a constant label: nothing to rank, nothing to add


def _cfg(tmp_path, **kw):
    return from_dict(DatabaseConfig, {"work_dir": str(tmp_path), "label_seeds": {"meta_test": [1, 2]},
                                   "target_reliability": {"meta_test": kw.pop("target")}, **kw}, where="test")


def _jobs_with_results(tmp_path, acc_by_seed):
    jobs = []
    for seed, accs in acc_by_seed.items():
        for i, a in enumerate(accs):
            job = StudentJob("t", {"depths": [i]}, seed, f"s{seed}-{i}")
            if a is not None:
                job.result_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
                job.result_path(tmp_path).write_text(json.dumps({"best_acc": a}))
            jobs.append(job)
    return jobs


@pytest.mark.parametrize("target,cap,want", [(0.96, 6, [1, 2, 3]), (0.97, 6, [1, 2, 3, 4]), (0.97, 3, [1, 2, 3]),
                                             (0.94, 6, [1, 2])])
def test_task_seeds_from_the_first_seeds_agreement(tmp_path, target, cap, want):
    # seed 2 swaps the two worst of 5 students: Spearman 1 - 6 * 2 / (5 * 24) = 0.9, so the mean of k
    # seeds has reliability 0.947 (2), 0.964 (3), 0.973 (4)
    jobs = _jobs_with_results(tmp_path, {1: [10, 20, 30, 40, 50], 2: [21, 11, 31, 41, 51]})
    cfg = _cfg(tmp_path, target=target, max_label_seeds=cap)
    task = TaskSpec(dataset="glyphs/x", split="meta_test")
    assert task_seeds(cfg, task, jobs) == want


def test_task_seeds_wait_for_the_first_seeds(tmp_path):
    jobs = _jobs_with_results(tmp_path, {1: [10, 20, 30, 40, 50], 2: [21, 11, 31, 41, None]})
    cfg = _cfg(tmp_path, target=0.99)
    assert task_seeds(cfg, TaskSpec(dataset="glyphs/x", split="meta_test"), jobs) == [1, 2]
    # other splits keep their seeds
    cfg = _cfg(tmp_path, target=0.99, seed=7)
    assert task_seeds(cfg, TaskSpec(dataset="glyphs/x", split="meta_train"), jobs) == [7]


@pytest.mark.parametrize("extra,needle", [
    ({"target_reliability": {"meta_test": 1.0}}, "target_reliability"),
    ({"target_reliability": {"meta_tset": 0.9}}, "target_reliability"),
    ({"target_reliability": {"meta_train": 0.9}}, "at least 2 seeds"),
    ({"max_label_seeds": 1}, "max_label_seeds"),
])
def test_bad_reliability_settings_are_one_line_errors(extra, needle):
    with pytest.raises(DassError, match=needle):
        from_dict(DatabaseConfig, {"label_seeds": {"meta_test": [1, 2]}, **extra}, where="test")

