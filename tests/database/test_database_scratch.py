"""From-scratch labels (``scratch: true``): students train from random initialisation on CE only,
the functional maps stay those of the teacher remap; jobs equal those of remap=random_init with
kd_recipe.alpha=1.0; the config refuses a teacher term; --compare gives both label sets' reliabilities."""
import json

import pytest
import torch
from scipy import stats

from assets.tiny_db import write_build_config, write_quadrant_glyphs
from dass.config import load
from dass.database.config import DatabaseConfig
from dass.database.plan import build_tasks, evenly, plan_students
from dass.database.compare import compare_dbs
from dass.database.format import load_db, load_task_db, save_task_db
from dass.errors import DassError
from dass.space import Arch
from dass.train import KDSetting, kd_train


def test_scratch_config_needs_ce_only_and_a_teacher_remap(tmp_path):
    data = tmp_path / "data"
    cfg = write_build_config(tmp_path, "s", data)
    with pytest.raises(DassError, match="kd_recipe.alpha: 1.0"):
        load(DatabaseConfig, cfg, ["scratch=true"])
    with pytest.raises(DassError, match="remap"):
        load(DatabaseConfig, cfg, ["scratch=true", "kd_recipe.alpha=1.0", "remap=random_init"])
    c = load(DatabaseConfig, cfg, ["scratch=true", "kd_recipe.alpha=1.0"])
    assert c.train_remap == "random_init" and c.remap == "copy_paste_first"
    assert load(DatabaseConfig, cfg).train_remap == "copy_paste_first"


@pytest.mark.slow
def test_scratch_build_trains_from_random_init_and_keeps_the_teacher_remap_maps(tmp_path, database_cli):
    data = tmp_path / "data"
    write_quadrant_glyphs(data, "a", 0)
    write_quadrant_glyphs(data, "b", 1)
    kd_cfg = write_build_config(tmp_path, "kd", data, epochs=1, students={"meta_train": 3, "meta_test": 3},
                                label_seeds={"meta_test": [1, 2]})
    r = database_cli("--config", str(kd_cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    teachers = tmp_path / "kd" / "work" / "teachers"
    tasks = [{"dataset": "glyphs/a", "split": "meta_train", "teacher": str(teachers / "glyphs-a" / "teacher.pt")},
             {"dataset": "glyphs/b", "split": "meta_test", "teacher": str(teachers / "glyphs-b" / "teacher.pt")}]
    sc_cfg = write_build_config(tmp_path, "sc", data, epochs=1, students={"meta_train": 3, "meta_test": 3},
                                label_seeds={"meta_test": [1, 2]}, tasks=tasks, scratch=True,
                                kd_recipe={"epochs": 1, "batch_size": 16, "eval_every": 1, "alpha": 1.0})
    r = database_cli("--config", str(sc_cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    kd_db, sc_db = load_db(tmp_path / "kd" / "db"), load_db(tmp_path / "sc" / "db")
    kd_t, sc_t = kd_db["meta_test"][0], sc_db["meta_test"][0]
    assert sc_t.get("scratch") is True and "scratch" not in kd_t and sc_t["recipe"]["alpha"] == 1.0
    assert sc_t["students"]["arch"] == kd_t["students"]["arch"]
    # the maps are the copy_paste_first maps of the KD database, not those of random students
    assert torch.equal(sc_t["students"]["fmap"], kd_t["students"]["fmap"])
    # a label is what kd_train gives from random initialisation, CE only (seed 1)
    cfg = load(DatabaseConfig, sc_cfg)
    tasks = build_tasks(cfg)
    task = tasks["glyphs-b"]
    arch = Arch.from_dict(sc_t["students"]["arch"][0])
    want = kd_train(arch, KDSetting(task.space, task.teacher_sd, task.train, task.test, cfg.kd_recipe, remap="random_init",
                                    device="cpu"), seed=1)
    assert float(sc_t["students"]["best_acc_seeds"][0, 0]) == pytest.approx(want["best_acc"], abs=1e-4)
    # the same jobs as remap=random_init with kd_recipe.alpha=1.0 (no scratch flag): results are shared
    plain = load(DatabaseConfig, sc_cfg, ["scratch=false", "remap=random_init"])
    ids = {j.student_id for j in plan_students(plain, build_tasks(plain))["glyphs-b"]}
    assert ids == {j.student_id for j in plan_students(cfg, tasks)["glyphs-b"]}
    # labelled_students: the first and last of the 3 sampled students (MACs order), the same jobs
    two = load(DatabaseConfig, sc_cfg, ["labelled_students={meta_test: 2}"])
    full = plan_students(cfg, tasks)["glyphs-b"]
    assert [j.student_id for j in plan_students(two, build_tasks(two))["glyphs-b"]] == \
        [full[i].student_id for i in (0, 2, 3, 5)]          # seed 1: students 0 and 2, then seed 2


def test_labelled_students_is_a_count_within_the_sampled_students(tmp_path):
    cfg = write_build_config(tmp_path, "s", tmp_path / "data", students={"meta_train": 3, "meta_test": 3})
    with pytest.raises(DassError, match="labelled_students"):
        load(DatabaseConfig, cfg, ["labelled_students={meta_test: 4}"])
    with pytest.raises(DassError, match="labelled_students"):
        load(DatabaseConfig, cfg, ["labelled_students={meta_test: 0}"])
    assert load(DatabaseConfig, cfg, ["labelled_students={meta_test: 2}"]).labelled("meta_test") == 2
    assert load(DatabaseConfig, cfg).labelled("meta_test") == 3


def test_evenly_keeps_first_and_last_at_even_spacing():
    assert evenly(list(range(9)), 5) == [0, 2, 4, 6, 8]
    assert evenly(list(range(40)), 20)[:3] == [0, 2, 4] and evenly(list(range(40)), 20)[-1] == 39
    assert evenly(list(range(4)), 10) == [0, 1, 2, 3]


@pytest.mark.slow
def test_compare_reports_both_label_sets_seed_reliabilities(tiny_db, tmp_path, database_cli):
    """--compare: per task, A vs B Spearman beside each database's own seed-vs-seed Spearman and
    reliability (hand-computed from the seed columns), '-' where a database has one seed."""
    root, tasks = tiny_db
    dirs = {}
    for name, flip in (("a", False), ("b", True)):
        d = tmp_path / name
        d.mkdir()
        for key in tasks:
            t = load_task_db(root / "db" / f"{key}.pt")
            st = t["students"]
            noise = torch.linspace(-2, 2, len(st["arch"]))
            noise = torch.flip(noise, [0]) if flip else noise
            for k in ("best_acc", "final_acc"):
                st[f"{k}_seeds"] = torch.stack([st[k] + noise, st[k] - noise], dim=1)
            t["label_seeds"] = [1, 2]
            save_task_db(t, d / f"{key}.pt")
        dirs[name] = d
    rows = compare_dbs(dirs["a"], dirs["b"])
    for r in rows:
        s = load_task_db(dirs["a"] / f"{r['key']}.pt")["students"]["best_acc_seeds"].numpy()
        rho = stats.spearmanr(s[:, 0], s[:, 1]).statistic
        assert r["seed_rho_a"] == pytest.approx(rho, abs=1e-4)
        assert r["reliability_a"] == pytest.approx(2 * rho / (1 + rho), abs=1e-4)
        s = load_task_db(dirs["b"] / f"{r['key']}.pt")["students"]["best_acc_seeds"].numpy()
        assert r["seed_rho_b"] == pytest.approx(stats.spearmanr(s[:, 0], s[:, 1]).statistic, abs=1e-4)
    one = compare_dbs(dirs["a"], root / "db")        # the tiny database has one seed per task
    assert all(r["seed_rho_b"] is None and r["reliability_b"] is None for r in one)
    out = database_cli("--compare", str(dirs["a"]), str(root / "db"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "rho A seeds" in lines[0] and "rel. B" in lines[0]
    assert lines[1].split()[-1] == "-"
    js = database_cli("--compare", str(dirs["a"]), str(dirs["b"]), "--json")
    assert json.loads(js.stdout)[0]["reliability_b"] is not None
