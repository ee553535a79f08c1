"""Database build: label seeds, class-subset tasks, split disjointness, partial merge, a committable work folder."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from assets.tiny_db import write_build_config, write_quadrant_glyphs
from dass.cli import run_main
from dass.config import from_dict, load
from dass.data.registry import load_dataset
from dass.data.subset import parse_subset, subset_name
from dass.database import __main__ as db_cli
from dass.database.config import DatabaseConfig
from dass.database.plan import build_tasks, plan_students
from dass.database.format import load_db, seed_agreement
from dass.database.runners import teacher_recipe
from dass.database.subsets import SubsetTaskSpec, expand, pool_classes
from dass.errors import DassError

def _data(tmp: Path) -> Path:
    data = tmp / "data"
    if not data.exists():
        write_quadrant_glyphs(data, "a", 0, per_class=8, code_points=["U+0041", "U+0042", "U+0043", "U+0044"])
        write_quadrant_glyphs(data, "b", 1, per_class=8, code_points=["U+0061", "U+0062", "U+0063", "U+0064"])
        write_quadrant_glyphs(data, "c", 2, n_classes=6, per_class=8, code_points=["U+0100", "U+0101", "U+0102", "U+0103", "U+0104", "U+0041"])
        write_quadrant_glyphs(data, "d", 3, per_class=8)
    return data


def _config(tmp: Path, name: str, **extra) -> Path:
    kw = {"students": {"meta_train": 3, "meta_test": 3}, "feats_per_class": 2, "lockstep": 3, **extra}
    return write_build_config(tmp, name, _data(tmp), epochs=1, **kw)


def _cfg(path: Path, **changes) -> DatabaseConfig:
    d = yaml.safe_load(Path(path).read_text())
    d.update(changes)
    return from_dict(DatabaseConfig, d)


def _results(work: Path, task: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((work / "results" / task).glob("*.json"))]


# ------------------------------------------------------------------------------------------- seed agreement

def test_seed_agreement_hand_computed():
    # seeds A, B: ranks 1 2 3 4 and 2 1 3 4 -> sum d^2 = 2 -> rho = 1 - 6*2/(4*15) = 0.8;
    # two seeds: Spearman-Brown 2*0.8/1.8
    acc = torch.tensor([[10., 20.], [20., 10.], [30., 30.], [40., 40.]])
    r, rel = seed_agreement(acc)
    assert r == pytest.approx(0.8) and rel == pytest.approx(1.6 / 1.8, abs=1e-4)
    # third seed C ranks 1 3 2 4: rho(A,C) = 0.8, rho(B,C) = 1 - 6*6/60 = 0.4; mean 2/3; 3*(2/3)/(1+2*(2/3)) = 6/7
    acc3 = torch.cat([acc, torch.tensor([[1.], [3.], [2.], [4.]])], 1)
    r, rel = seed_agreement(acc3)
    assert r == pytest.approx(2 / 3, abs=1e-4) and rel == pytest.approx(6 / 7, abs=1e-4)
    assert seed_agreement(acc[:, :1]) == (None, None)
    # two seeds in opposite order: rho = -1 (scipy: -0.9999999999999999), 1 + rho = 0, no reliability
    assert seed_agreement(torch.tensor([[4.0, 4.3], [4.3, 4.0]])) == (-1.0, None)
    assert seed_agreement(torch.tensor([[1., 3.], [2., 2.], [3., 1.]])) == (-1.0, None)


# ------------------------------------------------------------------------------------------- subsets

def test_subset_dataset_relabels_source_classes(tmp_path):
    data = _data(tmp_path)
    assert parse_subset("glyphs/a[0-2,5]+glyphs/b[3]") == [("glyphs/a", [0, 1, 2, 5]), ("glyphs/b", [3])]
    assert subset_name([("glyphs/b", 3), ("glyphs/a", 2), ("glyphs/b", 1), ("glyphs/b", 2)]) == "subset:glyphs/b[1-3]+glyphs/a[2]"
    for split in ("train", "test"):
        sub = load_dataset("subset:glyphs/a[1,3]+glyphs/b[0]", data, split)
        a, b = (load_dataset(f"glyphs/{n}", data, split) for n in "ab")
        assert sub.num_classes == 3
        for new, (src, old) in enumerate([(a, 1), (a, 3), (b, 0)]):
            assert np.array_equal(sub.images[sub.labels == new], src.images[src.labels == old])
        assert len(sub) == (a.labels == 1).sum() + (a.labels == 3).sum() + (b.labels == 0).sum()
    with pytest.raises(DassError, match="no class 9"):
        load_dataset("subset:glyphs/a[9]", data, "train")
    with pytest.raises(DassError, match="listed twice"):
        load_dataset("subset:glyphs/a[1,0-1]", data, "train")


def test_subset_tasks_expand_deterministically(tmp_path):
    data = _data(tmp_path)
    # c's class 5 is U+0041 = a's class 0: the union of a and c holds 4 + 6 - 1 = 9 classes
    pool = pool_classes(SubsetTaskSpec(pool=["glyphs/a", "glyphs/c"], classes=[2, 2]), data)
    assert len(pool) == 9 and ("glyphs/c", 5) not in pool
    spec = dict(pool=["glyphs/a", "glyphs/c"], classes=[3, 6], seed=4)
    few, more = expand(SubsetTaskSpec(count=3, **spec), data), expand(SubsetTaskSpec(count=6, **spec), data)
    assert more[:3] == few and len({t["key"] for t in more}) == 6
    for t in more:
        classes = [(s, i) for s, idx in parse_subset(t["dataset"][len("subset:"):]) for i in idx]
        assert 3 <= len(classes) <= 6 and set(classes) <= set(pool)
        assert t["split"] == "meta_train" and t["key"].startswith("sub")
    with pytest.raises(DassError, match="pool has 9"):
        expand(SubsetTaskSpec(pool=["glyphs/a", "glyphs/c"], classes=[2, 10]), data)


def test_teacher_epochs_cut_the_teacher_and_key_the_subset_tasks(tmp_path):
    data = _data(tmp_path)
    spec = dict(pool=["glyphs/a", "glyphs/c"], classes=[3, 6], seed=4, count=3)
    full, weak = expand(SubsetTaskSpec(**spec), data), expand(SubsetTaskSpec(teacher_epochs=2, **spec), data)
    # same classes, another teacher: the datasets agree, the keys (and so the teachers' folders) do not
    assert [t["dataset"] for t in weak] == [t["dataset"] for t in full]
    assert not {t["key"] for t in weak} & {t["key"] for t in full}
    assert all("teacher_epochs" not in t for t in full) and all(t["teacher_epochs"] == 2 for t in weak)
    cfg = _cfg(_config(tmp_path, "te", subset_tasks=[{**spec, "teacher_epochs": 2}],
                       tasks=[{"dataset": "glyphs/b", "split": "meta_test", "teacher_epochs": 3, "teacher_lr": 0.5}]),
               teacher_recipe={"epochs": 7, "lr": 0.1})
    by_key = {t.key: t for t in cfg.all_tasks}
    recipe = teacher_recipe(cfg, by_key["glyphs-b"])
    assert (recipe.epochs, recipe.lr) == (3, 0.5) and cfg.teacher_recipe.epochs == 7
    subs = [t for t in cfg.all_tasks if t.split == "meta_train"]
    assert len(subs) == 3 and all(teacher_recipe(cfg, t).epochs == 2 for t in subs)
    with pytest.raises(DassError, match="teacher_epochs"):
        SubsetTaskSpec(pool=["glyphs/a"], teacher_epochs=-1)
    with pytest.raises(DassError, match="teacher_epochs"):
        _cfg(_config(tmp_path, "bad", tasks=[{"dataset": "glyphs/b", "split": "meta_test", "teacher_epochs": -2}]))


@pytest.mark.parametrize("tasks, subsets, culprit", [
    # a subset drawn from the meta-test dataset's own classes
    ([{"dataset": "glyphs/b", "split": "meta_test"}], [{"pool": ["glyphs/a", "glyphs/b"], "count": 4, "classes": [7, 8]}],
     "glyphs/b"),
    # a meta-train dataset sharing a code point (U+0041) with the meta-valid dataset
    ([{"dataset": "glyphs/a", "split": "meta_valid"}, {"dataset": "glyphs/c", "split": "meta_train"}], [], "U+0041"),
])
def test_builder_refuses_classes_shared_across_splits(tmp_path, tasks, subsets, culprit, capsys):
    cfg = _config(tmp_path, "overlap", tasks=tasks, subset_tasks=subsets)
    with pytest.raises(SystemExit) as e:  # in process, through the entry's error boundary
        run_main(db_cli.main, ["--config", str(cfg)], db_cli._parser())
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "must not share classes" in line[0] and culprit in line[0]
    assert not (tmp_path / "overlap" / "work" / "teachers").exists()   # refused before any training


# ------------------------------------------------------------------------------------------- seeds, subsets, merge

@pytest.mark.slow  # two database builds in subprocesses (teachers and students trained)
def test_label_seeds_subset_tasks_and_partial_merge(tmp_path, database_cli):
    subsets = [{"pool": ["glyphs/c"], "count": 1, "classes": [2, 3], "seed": 1}]
    seeds = {"meta_train": [1], "meta_test": [1, 2]}
    cfg = _config(tmp_path, "s", label_seeds=seeds, subset_tasks=subsets)
    r = database_cli("--config", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    work, out = tmp_path / "s" / "work", tmp_path / "s" / "db"
    db = load_db(out)
    assert sorted(d["task"]["key"] for d in db["meta_train"])[0] == "glyphs-a" and len(db["meta_train"]) == 2
    test = db["meta_test"][0]
    st = test["students"]
    assert test["label_seeds"] == [1, 2] and st["best_acc_seeds"].shape == (3, 2)
    # per-seed accuracies are the result files' (by architecture and seed), the label their mean
    rec = {(json.dumps(x["arch"], sort_keys=True), x["seed"]): x for x in _results(work, "glyphs-b")}
    assert len(rec) == 6
    for i, arch in enumerate(st["arch"]):
        k = json.dumps(arch, sort_keys=True)
        accs = [rec[(k, s)]["best_acc"] for s in (1, 2)]
        assert st["best_acc_seeds"][i].tolist() == pytest.approx(accs)
        assert float(st["best_acc"][i]) == pytest.approx(sum(accs) / 2)
    # a subset task: its students were trained on the re-indexed classes of c
    sub = [d for d in db["meta_train"] if d["task"]["key"].startswith("sub")]
    assert all(d["task"]["dataset"].startswith("subset:glyphs/c[") and 2 <= d["task"]["num_classes"] <= 3 for d in sub)
    assert all(d["students"]["best_acc_seeds"].shape == (3, 1) for d in sub)

    # the seed-1 students are the same jobs as a plain single-seed build (`seed: 1`): same result files
    c1 = _cfg(cfg, label_seeds={}, seed=1)
    tasks = build_tasks(c1)
    plan1 = plan_students(c1, tasks)
    ids = {p.stem for p in (work / "results" / "glyphs-b").glob("*.json")}
    assert {j.student_id for j in plan1["glyphs-b"]} < ids
    # the students sampled do not depend on the KD recipe (a CE-only companion has the same students)
    ce = plan_students(load(DatabaseConfig, cfg, ["kd_recipe.alpha=1.0", "splits=[meta_test]", f"work_dir={tmp_path}/ce",
                                               f"teachers_dir={work}/teachers"]), tasks)
    base = plan_students(load(DatabaseConfig, cfg), tasks)
    assert list(ce) == ["glyphs-b"] and len(base) == 3
    for key in ce:
        assert [j.arch for j in ce[key]] == [j.arch for j in base[key]]
        assert not {j.student_id for j in ce[key]} & {j.student_id for j in base[key]}

    # partial merge: remove one result of the meta-test task, add a task without a teacher
    stamp = {p.name: p.stat().st_mtime_ns for p in out.glob("*.pt")}
    (out / "glyphs-b.pt").unlink()
    next((work / "results" / "glyphs-b").glob("*.json")).unlink()
    cfg2 = _config(tmp_path, "s", label_seeds=seeds, subset_tasks=subsets,
                   tasks=[{"dataset": "glyphs/a", "split": "meta_train"}, {"dataset": "glyphs/b", "split": "meta_test"},
                          {"dataset": "glyphs/d", "split": "meta_valid"}],
                   students={"meta_train": 3, "meta_test": 3, "meta_valid": 2})
    r = database_cli("--config", str(cfg2), "--phase", "merge")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / "manifest.json").read_text())
    rows = {t["key"]: t for t in m["tasks"]}
    assert not m["complete"] and len(rows) == 4
    assert rows["glyphs-b"]["file"] is None and rows["glyphs-b"]["done"] == 5 and rows["glyphs-b"]["runs"] == 6
    assert rows["glyphs-d"]["file"] is None and rows["glyphs-d"]["done"] == 0
    assert not (out / "glyphs-b.pt").exists()
    # complete tasks kept, not rewritten
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.pt")} == {k: v for k, v in stamp.items() if k != "glyphs-b.pt"}
    assert rows["glyphs-a"]["file"] == "glyphs-a.pt"


@pytest.mark.slow  # a database build in a subprocess (a teacher and students trained)
def test_work_dir_is_committable(tmp_path, database_cli):
    if shutil.which("git") is None:
        pytest.skip("no git")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    cfg = _config(tmp_path, "g", work_dir=str(repo / "db_build"), out=str(repo / "db"),
                  tasks=[{"dataset": "glyphs/b", "split": "meta_test"}])
    r = database_cli("--config", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    # the teacher's resumable training checkpoints are there, but git would not take them
    assert list((repo / "db_build" / "teachers").rglob("last.pt"))
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    staged = subprocess.run(["git", "-C", str(repo), "diff", "--cached", "--name-only"], capture_output=True,
                            text=True, check=True).stdout.split()
    work = [s for s in staged if s.startswith("db_build/")]
    assert "db_build/teachers/glyphs-b/teacher.pt" in work
    assert sum(s.startswith("db_build/results/glyphs-b/") and s.endswith(".json") for s in work) == 3
    assert [s for s in work if s.endswith(".pt")] == ["db_build/teachers/glyphs-b/teacher.pt"]
    # a teacher trained with another recipe is never reused silently
    r = database_cli("--config", str(cfg), "teacher_recipe.lr=0.01")
    assert r.returncode == 2 and "another teacher recipe (lr: 0.05" in r.stderr and r.stderr.strip().count("\n") == 0


# ------------------------------------------------------------------------------------------- validate / compare

def test_validate_table_and_compare_hand_computed(tmp_path):
    from assets.tiny_db import write_tiny_db
    from dass.database.commands import format_summary, validate_db
    from dass.database.compare import compare_dbs
    from dass.database.format import FORMAT, save_task_db
    d = write_tiny_db(tmp_path / "a", tasks=(("dtd", "meta_test"),), n_students=4)["dtd"]
    # seeds 1, 2 of four students: rho = 0.8 (see test_seed_agreement_hand_computed), reliability 1.6/1.8
    seeds = torch.tensor([[10., 20.], [20., 10.], [30., 30.], [40., 40.]])
    d2 = {**d, "format": FORMAT, "label_seeds": [1, 2],
          "students": {**d["students"], "best_acc_seeds": seeds, "final_acc_seeds": seeds,
                       "best_acc": seeds.mean(1), "final_acc": seeds.mean(1)}}
    save_task_db(d2, tmp_path / "v2" / "dtd.pt")
    row = validate_db(tmp_path / "v2")["meta_test"][0]
    assert row["label_seeds"] == [1, 2] and row["students"] == 4 and row["teacher_best_acc"] == 75.0
    assert row["seed_spearman"] == pytest.approx(0.8) and row["reliability"] == pytest.approx(0.8889, abs=1e-4)
    table = format_summary(validate_db(tmp_path / "v2"))
    assert "0.800" in table and "0.889" in table and "meta_test: 1 tasks, 4 students" in table
    bad = {**d2, "students": {**d2["students"], "best_acc": seeds[:, 0]}}
    with pytest.raises(DassError, match="not the mean"):
        save_task_db(bad, tmp_path / "bad" / "dtd.pt")

    # B: the same students in reverse order with labels 25, 18, 33, 40 against A's 15, 15, 30, 40:
    # gains -10, -3, -3, 0 -> mean -4; A better for none; ranks A 1.5 1.5 3 4, B 2 1 3 4 -> rho (Pearson of ranks)
    a = {**d2, "students": {**d2["students"], "best_acc_seeds": seeds[:, :1].repeat(1, 2)}}
    a["students"]["best_acc"] = torch.tensor([15., 15., 30., 40.])
    a["students"]["best_acc_seeds"] = a["students"]["best_acc"][:, None].repeat(1, 2)
    save_task_db(a, tmp_path / "A" / "dtd.pt")
    st = a["students"]
    rev = {k: (v.flip(0) if torch.is_tensor(v) else list(reversed(v))) for k, v in st.items()}
    rev["best_acc"] = torch.tensor([40., 33., 18., 25.])
    rev["best_acc_seeds"] = rev["best_acc"][:, None].repeat(1, 2)
    save_task_db({**a, "students": rev}, tmp_path / "B" / "dtd.pt")
    (row,) = compare_dbs(tmp_path / "A", tmp_path / "B")
    ra, rb = np.array([1.5, 1.5, 3, 4]), np.array([2., 1, 3, 4])
    rho = ((ra - ra.mean()) * (rb - rb.mean())).sum() / np.sqrt(((ra - ra.mean()) ** 2).sum() * ((rb - rb.mean()) ** 2).sum())
    assert row["students"] == 4 and row["gain"] == pytest.approx(-4.0) and row["a_better"] == 0.0
    assert row["mean_a"] == pytest.approx(25.0) and row["mean_b"] == pytest.approx(29.0)
    assert row["spearman"] == pytest.approx(rho)


def test_only_keeps_the_named_tasks_in_order_and_names_an_unknown_key(tmp_path):
    cfg = from_dict(DatabaseConfig, {"tasks": [{"dataset": "glyphs/x", "split": "meta_test"},
                                            {"dataset": "glyphs/y", "split": "meta_valid"},
                                            {"dataset": "glyphs/z", "split": "meta_test"}],
                                  "only": ["glyphs-z", "glyphs-x"]}, where="test")
    assert [t.key for t in cfg.all_tasks] == ["glyphs-x", "glyphs-z"]
    bad = from_dict(DatabaseConfig, {"tasks": [{"dataset": "glyphs/x", "split": "meta_test"}], "only": ["glyphs-q"]},
                    where="test")
    with pytest.raises(DassError, match="only: no task 'glyphs-q'"):
        bad.all_tasks
