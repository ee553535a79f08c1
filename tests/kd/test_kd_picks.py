"""dass.kd.picks, the one KD-of-picks routine (kd stage, pipeline, evaluation): its folder layout,
its numbers against direct kd_train runs (KD, and the from-scratch baseline as remap random_init
with alpha 1), resumption without retraining, the evaluation's use of it and the report column."""
import dataclasses
import json
import re

import pytest

from dass.kd import picks as picks_mod
from dass.kd.picks import PickSetting, kd_picks
from dass.train import KDSetting, kd_train
from train.test_lockstep import ARCHS, RECIPE, SPACE, setting, without_time  # noqa: F401

ONE_EPOCH = dataclasses.replace(RECIPE, epochs=1)


def trained(path) -> dict:
    m = json.loads(path.read_text())
    return without_time({k: v for k, v in m.items() if k not in ("seed", "dataset", "teacher", "wall_s")})


def reference(result: dict) -> dict:
    return without_time({k: v for k, v in json.loads(json.dumps(result)).items() if k != "wall_s"})


def test_picks_layout_numbers_scratch_and_resume(setting, tmp_path, monkeypatch):  # noqa: F811
    sd, train, test = setting
    s = PickSetting(SPACE, sd, train, test, ONE_EPOCH, "copy_paste_first", "cpu", dataset="toy", teacher="t.pt")
    picks = [(1, ARCHS[0]), (2, ARCHS[1])]
    got = kd_picks(picks, s, [3], tmp_path, scratch_baseline=True)
    scratch_recipe = dataclasses.replace(ONE_EPOCH, alpha=1.0)
    for (rank, arch), p in zip(picks, got):
        folder = tmp_path / f"{rank}-{arch.key()}"
        assert p["run_dir"] == str(folder) and p["rank"] == rank and p["arch"] == arch.to_dict()
        kd = kd_train(arch, KDSetting(SPACE, sd, train, test, ONE_EPOCH, "copy_paste_first", "cpu"), seed=3)
        scratch = kd_train(arch, KDSetting(SPACE, sd, train, test, scratch_recipe, "random_init", "cpu"), seed=3)
        assert trained(folder / "seed3" / "metrics.json") == reference(kd)
        assert trained(folder / "scratch-seed3" / "metrics.json") == reference(scratch)
        assert (folder / "seed3" / "best.pt").is_file() and (folder / "scratch-seed3" / "last.pt").is_file()
        assert p["best_acc"] == kd["best_acc"] and p["final_acc"] == kd["final_acc"] and p["final_acc_std"] == 0.0
        assert p["scratch_final_acc"] == scratch["final_acc"] and p["scratch_best_acc"] == scratch["best_acc"]
        rows = (folder / "results.csv").read_text().splitlines()
        assert len(rows) == 2 and rows[1].startswith("3,")   # the KD seed only, not the scratch run

    def no_training(*a, **k):
        raise AssertionError("a finished (pick, seed) was trained again")
    monkeypatch.setattr(picks_mod, "kd_train_many", no_training)
    assert kd_picks(picks, s, [3], tmp_path, scratch_baseline=True) == got


def test_evaluation_search_kd_trains_its_picks_with_the_routine(tiny_db, tmp_path):
    from dass.data.registry import load_dataset
    from dass.evaluation.search_kd import train_picks
    from dass.evaluation.baselines import EvalContext
    from dass.database.saved import SavedTask
    from dass.space import Arch
    from dass.teacher import load_teacher
    from dass.train.recipe import KDRecipe
    root, tasks = tiny_db
    task = tasks["dtd"]
    space = SavedTask.from_db(task).space
    recipe = KDRecipe(**task["recipe"])
    sd = load_teacher(task["task"]["teacher_ckpt"], space, 5)[1]
    rows = [{"task": "dtd", "student": 3}, {"task": "dtd", "student": 1}, {"task": "dtd", "student": 3}]
    context = EvalContext(data_root=str(root / "data"), progress=False)   # the task file names its teacher
    train_picks(rows, {"dtd": SavedTask.from_db(task)}, {"dtd": recipe}, [0, 1], context, tmp_path)
    train, test = (load_dataset("dtd", str(root / "data"), s) for s in ("train", "test"))
    for i in (1, 3):
        arch = Arch.from_dict(task["students"]["arch"][i])
        accs = [kd_train(arch, KDSetting(space, sd, train, test, recipe, device="cpu"), seed=s)["best_acc"] for s in (0, 1)]
        for r in (r for r in rows if r["student"] == i):
            assert r["kd_accs"] == f"{accs[0]:.2f} {accs[1]:.2f}"
            assert r["kd_mean"] == pytest.approx(sum(accs) / 2)
        assert len(list(tmp_path.glob(f"dtd/*/{i}-{arch.key()}/seed*/metrics.json"))) == 2


def report_result(scratch: bool) -> dict:
    kd = {"rank": 1, "best_acc": 80.0, "final_acc": 79.5, "final_acc_std": 0.5, "wall_s": 1.0, "run_dir": "kd/1-x"}
    if scratch:
        kd.update(scratch_best_acc=61.0, scratch_final_acc=60.25, scratch_final_acc_std=1.5)
    top = {"rank": 1, "arch": ARCHS[0].to_dict(), "macs": 10, "params": 5, "score": 0.5, "pred_acc": 78.0}
    return {"teacher": {"teacher": "t.pt", "trained_here": False, "best_acc": 90.0, "macs": 100, "params": 50},
            "budget": {"max_macs": 50, "max_params": None}, "dataset": "toy", "num_classes": 5, "train_size": 9,
            "test_size": 3, "predictor": "p.pt", "space": "tiny", "kd_epochs": 1, "seeds": [1, 2],
            "search": {"top": [top], "input_type": "STA", "num_candidates": 7, "strategy": "pool"},
            "kd": {"picks": [kd]}, "stages": {}}


def test_report_gives_the_from_scratch_column_only_when_trained():
    from dass.pipeline.report import markdown, pick_rows
    with_scratch = report_result(True)
    md = markdown(with_scratch, pick_rows(with_scratch))
    header = next(ln for ln in md.splitlines() if ln.startswith("| rank"))
    row = next(ln for ln in md.splitlines() if ln.startswith("| 1 |"))
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip("|"))]   # an escaped \| stays in its cell
    names = [c.strip() for c in header.strip("|").split("|")]
    assert cells[names.index("from scratch (same steps) (%)")] == "60.25 ± 1.50"
    assert cells[names.index("measured final (%)")] == "79.50 ± 0.50"
    plain = report_result(False)
    assert "from scratch" not in markdown(plain, pick_rows(plain))


def test_one_writer_of_teacher_checkpoints_and_one_kd_of_picks():
    """A teacher checkpoint dict (``state_dict`` with ``num_classes``) is built only in
    dass/teacher/checkpoint.py, and the stages reach the lockstep KD loop only through dass/kd/picks.py
    (the database build's student phase, which trains sampled students rather than picks, aside)."""
    import ast
    from pathlib import Path
    root = Path(picks_mod.__file__).resolve().parents[1]
    layouts, loops = [], []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if {"state_dict", "num_classes"} <= keys:
                    layouts.append(name)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("kd_train", "kd_train_many"):
                loops.append(name)
    assert sorted(set(layouts)) == ["teacher/checkpoint.py"]
    assert sorted(set(loops)) == ["database/runners.py", "kd/picks.py", "train/lockstep.py"]
