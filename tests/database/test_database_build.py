"""Database build: local vs torchrun give identical records; kill-and-resume redoes nothing; submitit path."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from assets.tiny_db import write_build_config, write_quadrant_glyphs
from dass.database.commands import validate_db
from dass.database.format import load_db

pytestmark = pytest.mark.slow  # every test builds (or validates) a database in subprocesses


def _config(tmp: Path, name: str, **extra) -> Path:
    data = tmp / "data"
    if not data.exists():
        write_quadrant_glyphs(data, "a", 0)
        write_quadrant_glyphs(data, "b", 1)
    return write_build_config(tmp, name, data, **extra)


def _records(db_dir):
    db = load_db(db_dir)
    out = {}
    for split, tasks in db.items():
        for d in tasks:
            st = d["students"]
            out[d["task"]["key"]] = {
                "arch": [json.dumps(a, sort_keys=True) for a in st["arch"]],
                "best_acc": st["best_acc"].tolist(), "final_loss": st["final_loss"].tolist(),
                "fmap": st["fmap"].float(), "teacher_acc": float(d["teacher"]["best_acc"]),
            }
    return out


def test_local_and_torchrun_builds_are_identical(tmp_path, database_cli):
    local = _config(tmp_path, "local", lockstep=2)
    r = database_cli("--config", str(local))
    assert r.returncode == 0, r.stderr[-2000:]
    # torchrun builds with its own teachers path: reuse the local teachers so both share them
    teachers = tmp_path / "local" / "work" / "teachers"
    tr_cfg = _config(tmp_path, "torchrun", launcher="torchrun", lockstep=1, teacher_logit_cache=False,
                     tasks=[{"dataset": "glyphs/a", "split": "meta_train", "teacher": str(teachers / "glyphs-a" / "teacher.pt")},
                            {"dataset": "glyphs/b", "split": "meta_test", "teacher": str(teachers / "glyphs-b" / "teacher.pt")}])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                        "-m", "dass.database", "--config", str(tr_cfg)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = _records(tmp_path / "local" / "db"), _records(tmp_path / "torchrun" / "db")
    assert a.keys() == b.keys() == {"glyphs-a", "glyphs-b"}
    for k in a:
        assert a[k]["arch"] == b[k]["arch"]
        # lockstep 2 with the teacher-logit cache (local) == single runs without it (torchrun)
        assert a[k]["best_acc"] == b[k]["best_acc"]
        assert a[k]["final_loss"] == pytest.approx(b[k]["final_loss"], rel=1e-5)
        assert torch.equal(a[k]["fmap"], b[k]["fmap"])
    summary = validate_db(tmp_path / "local" / "db")
    assert [t["students"] for t in summary["meta_train"]] == [6]
    # the local build computed the teacher's logits once per task; the torchrun build none
    for key in ("glyphs-a", "glyphs-b"):
        assert len(list((tmp_path / "local" / "work" / "teacher_logits" / key).glob("*.npy"))) == 1
    assert not (tmp_path / "torchrun" / "work" / "teacher_logits").exists()
    # every student result written exactly once per build, no temp files left
    assert not list((tmp_path / "torchrun").rglob("*.tmp"))


def test_kill_and_resume_redoes_nothing(tmp_path, kill_at, database_cli):
    cfg = _config(tmp_path, "kill", lockstep=1)
    results = tmp_path / "kill" / "work" / "results"
    # SIGKILL right after the 3rd of 12 student results is written (a state, not a time: tests/kill_at.py)
    killed = kill_at(f"{results}/*.json", 3, "dass.database", ["--config", cfg])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    first = {f: f.stat().st_mtime_ns for f in results.rglob("*.json")}
    assert len(first) == 3
    # the killed build had claimed and locked its out folder, but merged nothing into it
    assert not list((tmp_path / "kill" / "db").glob("*.pt"))
    assert not (tmp_path / "kill" / "db" / "manifest.json").exists()
    r = database_cli("--config", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    after = {f: f.stat().st_mtime_ns for f in results.rglob("*.json")}
    assert len(after) == 12
    for f, t in first.items():   # finished students were not trained again
        assert after[f] == t
    assert not list((tmp_path / "kill").rglob("*.tmp"))
    db = load_db(tmp_path / "kill" / "db")
    assert sum(len(d["students"]["arch"]) for ts in db.values() for d in ts) == 12


def test_submitit_local_executor(tmp_path, database_cli):
    pytest.importorskip("submitit")
    cfg = _config(tmp_path, "slurm", launcher="slurm", students={"meta_train": 3, "meta_test": 3}, epochs=1,
                  slurm={"cluster": "local", "timeout_min": 10, "groups_per_job": 3})
    r = database_cli("--config", str(cfg))
    assert r.returncode == 0, r.stderr[-3000:]
    db = load_db(tmp_path / "slurm" / "db")
    assert sorted(len(d["students"]["arch"]) for ts in db.values() for d in ts) == [3, 3]


def test_bad_task_config_is_one_line(tmp_path, database_cli):
    cfg = _config(tmp_path, "bad", tasks=[{"dataset": "glyphs/nope", "split": "meta_train"}])
    r = database_cli("--config", str(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    cfg = _config(tmp_path, "bad2", tasks=[{"dataset": "glyphs/a", "split": "train"}])
    r = database_cli("--config", str(cfg))
    assert r.returncode == 2 and "split" in r.stderr


def test_committed_cpu_database_validates(database_cli):
    """The shipped cpu database: every task file loads with weights_only=True and passes validation."""
    root = Path(__file__).resolve().parents[2] / "assets" / "cpu" / "db"
    if not root.is_dir():
        pytest.skip("no committed cpu database")
    r = database_cli("--validate", str(root), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout[: r.stdout.rindex("}") + 1])
    # the ground-truth acceptance: >= 32 meta-train tasks of >= 40 students, >= 4 meta-valid, >= 8
    # meta-test tasks of 50 students with >= 2 KD seeds, no teacher under 50 %, mean meta-test label
    # reliability (Spearman-Brown over the seeds) >= 0.9
    test = summary["meta_test"]
    assert len(test) >= 8 and all(t["students"] >= 50 and len(t["label_seeds"]) >= 2 for t in test)
    assert len(summary["meta_train"]) >= 32 and all(t["students"] >= 40 for t in summary["meta_train"])
    assert len(summary["meta_valid"]) >= 4
    assert sum(t["reliability"] for t in test) / len(test) >= 0.9
    for ts in summary.values():
        for t in ts:
            lo, hi = t["best_acc_range"]
            assert 0 <= lo < hi <= 100 and 50 <= t["teacher_best_acc"] <= 100


def test_groups_interleave_over_tasks():
    """Workers start on different tasks: groups a1 a2 a3 b1 c1 c2 run as a1 b1 c1 a2 c2 a3."""
    from dass.database.plan import interleave_tasks
    from dass.database.jobs import JobGroup
    groups = [JobGroup(t, [i]) for t, i in (("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1), ("c", 2))]
    order = [(g.task, g.jobs[0]) for g in interleave_tasks(groups)]
    assert order == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("c", 2), ("a", 3)]


def test_target_reliability_adds_seeds_and_resume_keeps_them(tmp_path, database_cli):
    # an unreachable target (reliability 1 needs seeds in perfect agreement) with a cap of 3 seeds:
    # the meta-test task gets seed 3 after seeds 1 and 2 finish; meta-train keeps its one seed
    cfg = _config(tmp_path, "rel", lockstep=2, label_seeds={"meta_test": [1, 2]},
                  target_reliability={"meta_test": 0.999999}, max_label_seeds=3)
    r = database_cli("--config", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    db = load_db(tmp_path / "rel" / "db")
    test_task, = db["meta_test"]
    acc = test_task["students"]["best_acc_seeds"]
    assert test_task["label_seeds"] == [1, 2, 3] and tuple(acc.shape) == (6, 3)
    assert torch.allclose(test_task["students"]["best_acc"], acc.mean(1))
    train_task, = db["meta_train"]
    assert train_task["label_seeds"] == [0]
    results = tmp_path / "rel" / "work" / "results"
    assert len(list(results.rglob("*.json"))) == 6 + 18
    # a rerun decides the same from the same first seeds: nothing is trained, nothing changes
    before = {f: f.stat().st_mtime_ns for f in results.rglob("*.json")}
    r = database_cli("--config", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    assert {f: f.stat().st_mtime_ns for f in results.rglob("*.json")} == before
    row = next(t for t in json.loads((tmp_path / "rel" / "db" / "manifest.json").read_text())["tasks"]
               if t["split"] == "meta_test")
    assert row["label_seeds"] == [1, 2, 3] and row["done"] == row["runs"] == 18
