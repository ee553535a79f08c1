"""``from dass import find_student``: the pipeline from Python (:mod:`dass.api`).

The README's example runs as written (on the built-in glyph data and the shipped ogham teacher, with
tiny settings added by the test); in-memory arrays on the tiny space of ``tests/assets/tiny_db.py``
with an untrained predictor and a random teacher. Expected values come from the inputs (the arrays
as written by hand, the run's own files), not from the API's return values."""
from __future__ import annotations

import csv
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dass
from assets.tiny_db import TINY, save_teacher, tiny_teacher_state, write_predictor
from dass import config as cfgmod
from dass.api import ARRAYS_ROOT, Arrays, find_student, pipeline_config
from dass.errors import DassError
from dass.pipeline import PipelineConfig
from dass.space import Arch

REPO = Path(__file__).resolve().parents[2]
CLASSES = 3
TINY_SETTINGS = {"teacher_recipe.epochs": 1, "teacher_recipe.batch_size": 8, "kd_recipe.epochs": 1,
                 "kd_recipe.batch_size": 8, "pool_size": 30, "threads": 1, "progress": False, "device": "cpu"}


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 10 x 10 RGB uint8 images of three patterns (labels 0, 1, 2 in turn)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    images = rng.integers(0, 60, (n, 10, 10, 3)).astype(np.uint8)
    for i, c in enumerate(labels):
        if c == 0:
            images[i, :, 4:6] = 250
        elif c == 1:
            images[i, 4:6, :] = 250
        else:
            images[i, np.arange(10), np.arange(10)] = 250
    return images, labels


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    pred = write_predictor(root / "pred" / "best.pt", TINY)
    teacher = save_teacher(root / "teacher.pt", tiny_teacher_state(TINY, CLASSES, 0), TINY, CLASSES, "-", 50.0)
    return root, {**TINY_SETTINGS, "predictor": str(pred)}, teacher


def _run_dir_of(picks) -> Path:
    assert len({p.run_dir for p in picks}) == 1
    return Path(picks[0].run_dir)


@pytest.mark.slow  # ~15 s on 2 loaded cores: one KD epoch of 3 students on ogham, the export checked on 1,400 images
def test_readme_example_runs_as_written(monkeypatch, tmp_path, capsys):
    if not (REPO / "data" / "glyphs" / "ogham" / "train_images.npy").is_file():
        pytest.skip("glyph data not generated (python -m dass.data glyphs --config configs/data/glyphs.yaml)")
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"<!-- python-api-example -->\n```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1 and 5 <= len(blocks[0].strip().splitlines()) <= 15
    # as written, with tiny settings and a run folder of its own added to every call
    calls = []

    def tiny_call(*args, **kwargs):
        settings = {"kd_recipe.epochs": 1, "pool_size": 40, "threads": 1, "progress": False, "device": "cpu",
                    "run_dir": str(tmp_path / "run")}
        picks = find_student(*args, **kwargs, settings=settings)
        calls.append(picks)
        return picks

    monkeypatch.setattr(dass, "find_student", tiny_call)
    monkeypatch.chdir(REPO)
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert len(calls) == 1
    picks, run = calls[0], tmp_path / "run"
    top = json.loads((run / "search" / "top.json").read_text())["top"]
    assert [p.rank for p in picks] == [e["rank"] for e in top] == [1, 2, 3]
    for p, e in zip(picks, top):
        assert p.arch_dict == e["arch"] and p.pred_acc == e["pred_acc"] and p.macs == e["macs"]
        pick_dir = run / "kd" / f"{p.rank}-{Arch.from_dict(e['arch']).key()}"
        m = json.loads((pick_dir / "seed1" / "metrics.json").read_text())
        assert p.kd_acc == {1: m["best_acc"]} and Path(p.checkpoint).is_file()
    assert Path(picks[0].export["onnx"]) == run / "export" / "student.onnx"
    out = capsys.readouterr().out
    for p in picks:   # the example prints each pick's arch
        assert p.arch in out


@pytest.mark.slow
def test_in_memory_arrays_identity_and_search_only(tiny, monkeypatch, tmp_path):
    root, settings, teacher = tiny
    monkeypatch.chdir(tmp_path)
    images, labels = _images(30, 0)
    t_images, t_labels = _images(12, 1)
    first = find_student(Arrays(images, labels, t_images, t_labels), teacher=teacher, budget={"macs": 0.6},
                         top_k=2, settings=settings)
    run = _run_dir_of(first)
    folder = Path(json.loads((run / "identity.json").read_text())["config"]["dataset"].removeprefix("npy:"))
    assert folder.parent == ARRAYS_ROOT and folder.is_dir()
    assert np.array_equal(np.load(folder / "train_images.npy"), images)
    assert np.array_equal(np.load(folder / "test_labels.npy"), t_labels)
    # search only: the picks are search/top.json; nothing trained, no report
    top = json.loads((run / "search" / "top.json").read_text())["top"]
    assert [(p.rank, p.arch_dict, p.score) for p in first] == [(e["rank"], e["arch"], e["score"]) for e in top]
    assert all(p.kd_acc is None and p.checkpoint is None and p.export is None for p in first)
    assert not (run / "kd").exists() and not (run / "report.md").exists()
    searched = (run / "search" / "stage.json").stat().st_mtime_ns

    # the same content, as torch float N x C x H x W in [0, 1]: the same dataset, run folder and stages
    as_float = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    again = find_student((as_float, torch.from_numpy(labels), t_images, t_labels.tolist()), teacher=teacher,
                         budget={"macs": 0.6}, top_k=2, settings=settings)
    assert _run_dir_of(again) == run and (run / "search" / "stage.json").stat().st_mtime_ns == searched

    # now trained: the search is not redone, the picks are KD-trained
    trained = find_student(Arrays(images, labels, t_images, t_labels), teacher=teacher, budget={"macs": 0.6},
                           top_k=2, train=True, settings=settings)
    assert (run / "search" / "stage.json").stat().st_mtime_ns == searched
    for p in trained:
        m = json.loads((Path(p.checkpoint).parent / "metrics.json").read_text())
        assert p.kd_acc == {1: m["best_acc"]} and m["arch"] == p.arch_dict

    # one pixel changed: another dataset, identity and run folder
    changed = images.copy()
    changed[0, 0, 0, 0] += 1
    other = find_student(Arrays(changed, labels, t_images, t_labels), teacher=teacher, budget={"macs": 0.6},
                         top_k=2, settings=settings)
    ident = [json.loads((r / "identity.json").read_text()) for r in (run, _run_dir_of(other))]
    assert _run_dir_of(other) != run and ident[0]["hash"] != ident[1]["hash"]


@pytest.mark.slow
def test_held_out_split_and_class_names_reach_the_export(tiny, monkeypatch, tmp_path):
    root, settings, teacher = tiny
    monkeypatch.chdir(tmp_path)
    images, labels = _images(30, 2)   # 10 per class, no test arrays: 2 of each class held out
    picks = find_student(Arrays(images, labels, classes=["bar", "row", "diagonal"]), teacher=teacher,
                         budget={"macs": 0.6}, top_k=1, train=True, export=["torchscript"],
                         settings={**settings, "seeds": [1, 2]})
    folder = Path(json.loads((Path(picks[0].run_dir) / "identity.json").read_text())["config"]["dataset"][4:])
    test_labels, train_labels = np.load(folder / "test_labels.npy"), np.load(folder / "train_labels.npy")
    assert np.bincount(test_labels).tolist() == [2, 2, 2] and np.bincount(train_labels).tolist() == [8, 8, 8]
    both = np.concatenate([np.load(folder / "train_images.npy"), np.load(folder / "test_images.npy")])
    assert sorted(map(bytes, both)) == sorted(map(bytes, images))   # a split of the given images, each once
    pick = picks[0]
    accs = {s: json.loads((Path(pick.checkpoint).parents[1] / f"seed{s}" / "metrics.json").read_text())["best_acc"]
            for s in (1, 2)}
    assert pick.kd_acc == accs
    assert pick.checkpoint.endswith(f"seed{max((1, 2), key=lambda s: (accs[s], -s))}/best.pt")
    meta = json.loads(Path(pick.export["model_json"]).read_text())
    assert meta["classes"] == ["bar", "row", "diagonal"] and set(pick.export) == {"torchscript", "model_json",
                                                                                  "model_card"}
    assert Path(pick.export["torchscript"]).is_file() and not (Path(pick.run_dir) / "export" / "student.onnx").exists()
    with open(Path(pick.run_dir) / "picks.csv", newline="") as f:
        assert float(next(csv.DictReader(f))["best_acc"]) == pytest.approx(statistics.fmean(accs.values()))


@pytest.mark.parametrize("data, kwargs, message", [
    ((np.zeros((6, 8, 8, 3), np.uint8), np.arange(5) % 2), {}, "6 images but 5 labels"),
    ((np.full((6, 8, 8), np.nan), np.arange(6) % 2), {}, "image 0 holds NaN"),
    ((np.full((6, 8, 8), -1.0), np.arange(6) % 2), {}, r"found -1\.\.-1: give the images before any normalisation"),
    ((np.zeros((6, 8, 8, 3), np.uint8), np.arange(6) % 2 * 2), {}, "class 1 of 0..2 has none"),
    ((np.zeros((6, 8, 8, 3), np.uint8), np.arange(6) % 2), {"budget": {"flops": 0.5}}, "unknown key 'budget.flops'"),
    ("glyphs/ogham", {"export": True}, "export needs train=True"),
    ("no/such/thing", {}, "not a known dataset name nor a folder"),
    ((np.zeros((6, 8, 8, 3), np.uint8), np.arange(6) % 2), {"settings": {"pool_sise": 5}}, "unknown key 'pool_sise'"),
])
def test_bad_input_is_a_dass_error_and_writes_nothing(monkeypatch, tmp_path, data, kwargs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DassError, match=message):
        find_student(data, **kwargs)
    assert not (tmp_path / "runs").exists()


def test_import_dass_stays_light(env):
    code = "import sys, dass; assert 'torch' not in sys.modules; assert 'find_student' in dir(dass)"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_settings_dotted_and_nested_are_one_config(tiny):
    root, settings, teacher = tiny
    opts = {"train": True, "export": False}
    dotted = pipeline_config("glyphs/ogham", teacher, {"params": 0.25}, 2,
                             {**opts, "settings": {"kd_recipe.epochs": 2, "kd_recipe": {"lr": 0.01}}})
    cli = cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml",
                      ["dataset=glyphs/ogham", f"teacher={teacher}", "budget.macs=null", "budget.params=0.25",
                       "top_k=2", "kd_recipe.epochs=2", "kd_recipe.lr=0.01", "export=[]"])
    assert dotted == cli
