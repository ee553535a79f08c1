"""``python -m dass.pipeline``: one command from a user's dataset to a report, on the tiny space.

Fixtures are made here: an image folder and an npy folder of 3 classes, and an untrained
predictor of the tiny space with a raw (accuracy) target, so predicted accuracies exist.
"""
from __future__ import annotations

import csv
import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from assets.tiny_db import TINY, write_predictor
from dass import config as cfgmod
from dass.cli import run_main
from dass.data.arrays import ImageArrays, write_split
from dass.kd import KDRunConfig
from dass.pipeline import PipelineConfig, run
from dass.pipeline.__main__ import _parser, main
from dass.space import Arch, macs, params, teacher_arch
from dass.teacher import TeacherRunConfig

REPO = Path(__file__).resolve().parents[2]
CLASSES = 3
TINY_SETTINGS = ["teacher_recipe.epochs=1", "teacher_recipe.batch_size=8", "kd_recipe.epochs=1",
                 "kd_recipe.batch_size=8", "pool_size=30", "top_k=2", "seeds=[1,2]", "budget.macs=0.6",
                 "threads=1", "progress=false", "device=cpu"]


def _pattern(c: int, rng) -> np.ndarray:
    a = rng.integers(0, 60, (10, 10, 3)).astype(np.uint8)
    if c == 0:
        a[:, 4:6] = 250
    elif c == 1:
        a[4:6, :] = 250
    else:
        a[np.arange(10), np.arange(10)] = 250
    return a


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        d = root / "images" / f"class_{c}"
        d.mkdir(parents=True)
        for i in range(8):
            Image.fromarray(_pattern(c, rng)).save(d / f"{i}.png")
    for split, n in (("train", 12), ("test", 6)):
        labels = np.arange(n) % CLASSES
        images = np.stack([_pattern(int(c), rng) for c in labels])
        write_split(root, "arrays", split, ImageArrays(images, labels, CLASSES, "arrays"))
    pred = write_predictor(root / "pred" / "best.pt", TINY)
    # what meta-training measured, shown in the report
    (root / "pred" / "metrics.json").write_text(json.dumps({"meta_test_mean": {"spearman": 0.5},
                                                            "pred_acc_mae_mean": {"meta_test": 3.25}}))
    return root, pred


def _cfg(*overrides) -> PipelineConfig:
    return cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml", [*TINY_SETTINGS, *overrides])


def _png_ok(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"))
    assert a.shape[0] > 100 and a.shape[1] > 100
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 10   # not a blank canvas


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_image_folder_from_scratch_then_resume(fixtures):
    root, pred = fixtures
    out = root / "run_folder"
    cfg = _cfg(f"dataset=folder:{root / 'images'}", f"predictor={pred.parent}", f"run_dir={out}")
    result = run(cfg)
    assert [r["skipped"] for r in result["stages"].values()] == [False, False, False]
    # the teacher was trained by the run, in the predictor's space
    assert result["teacher"]["trained_here"] and Path(result["teacher"]["teacher"]).is_file()
    stored = torch.load(result["teacher"]["teacher"], weights_only=True)   # what trained it, as the database records
    assert stored["seed"] == cfg.teacher_seed and stored["recipe"] == cfgmod.to_dict(cfg.teacher_recipe)
    t_macs = macs(teacher_arch(TINY), TINY, CLASSES)
    assert result["teacher"]["macs"] == t_macs
    picks = _rows(out / "picks.csv")
    assert len(picks) == 2
    top = json.loads((out / "search" / "top.json").read_text())["top"]
    for row, entry in zip(picks, top):
        arch = Arch.from_dict(entry["arch"])
        assert int(row["macs"]) == macs(arch, TINY, CLASSES) <= 0.6 * t_macs
        assert int(row["params"]) == params(arch, TINY, CLASSES)
        assert row["within_budget"] == "True"
        # predicted accuracy: the predictor's, as search wrote it
        assert float(row["pred_acc"]) == pytest.approx(entry["pred_acc"])
        # measured: mean over the seeds of the pick's own KD runs
        runs = [json.loads((Path(row["run_dir"]) / f"seed{s}" / "metrics.json").read_text()) for s in (1, 2)]
        assert float(row["best_acc"]) == pytest.approx(statistics.fmean(m["best_acc"] for m in runs))
        assert float(row["final_acc"]) == pytest.approx(statistics.fmean(m["final_acc"] for m in runs))
        assert 0 <= float(row["best_acc"]) <= 100
        assert len(_rows(Path(row["run_dir"]) / "results.csv")) == 2
    report = (out / "report.md").read_text()
    for row in picks:
        assert row["arch"].replace("|", "\\|") in report
    assert "trained by this run" in report
    assert "mean Spearman 0.500; predicted accuracy off by 3.25 points on average" in report
    _png_ok(out / "plots" / "candidates.png")
    _png_ok(out / "plots" / "predicted_vs_measured.png")
    assert len(_rows(out / "search" / "scores.csv")) == 30

    # a second run skips every finished stage and trains nothing
    # (the export of the rank-1 pick, export/, is redone on every run)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.pt") if "export" not in p.relative_to(out).parts}
    assert len(stamp) >= 2 * 2 + 1   # the teacher and each pick's seeds
    again = run(_cfg(f"dataset=folder:{root / 'images'}", f"predictor={pred.parent}", f"run_dir={out}"))
    assert [r["skipped"] for r in again["stages"].values()] == [True, True, True]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.pt") if "export" not in p.relative_to(out).parts} == stamp
    assert (out / "report.md").read_text() == report.replace("| ran |", "| skipped (finished before) |")
    assert [r["stage"] for r in _rows(out / "stages.csv")] == ["teacher", "search", "kd"]

    # another KD recipe redoes only the KD stage
    third = run(_cfg(f"dataset=folder:{root / 'images'}", f"predictor={pred.parent}", f"run_dir={out}",
                     "kd_recipe.lr=0.01"))
    assert [r["skipped"] for r in third["stages"].values()] == [True, True, False]
    assert json.loads((Path(picks[0]["run_dir"]) / "seed1" / "metrics.json").read_text())["history"]


@pytest.mark.slow
def test_npy_folder_with_a_given_teacher_lacking_its_accuracy(fixtures):
    root, pred = fixtures
    net_sd = {k: v for k, v in torch.load(_teacher(root, pred), weights_only=True)["state_dict"].items()}
    bare = root / "bare_teacher.pt"
    torch.save(net_sd, bare)   # a bare state dict: no space, no accuracy
    out = root / "npy_run"
    result = run(_cfg(f"dataset=npy:{root / 'arrays'}", f"teacher={bare}", f"predictor={pred}", f"run_dir={out}",
                      "budget.macs=null", f"budget.params={params(teacher_arch(TINY), TINY, CLASSES) // 2}",
                      "seeds=[1]", "scratch_baseline=true"))
    t = result["teacher"]
    assert not t["trained_here"] and t["teacher"] == str(out / "teacher" / "teacher.pt")
    stored = torch.load(t["teacher"], weights_only=True)
    assert stored["metrics"]["best_acc"] == pytest.approx(t["best_acc"]) and 0 <= t["best_acc"] <= 100
    assert stored["recipe"] is None and stored["seed"] is None   # a bare state dict records neither
    assert all(int(r["params"]) <= params(teacher_arch(TINY), TINY, CLASSES) // 2 for r in _rows(out / "picks.csv"))
    _png_ok(out / "plots" / "candidates.png")
    assert "(given)" in (out / "report.md").read_text()
    # scratch_baseline: each pick also trained from scratch, its own run beside the KD seed, a report column
    for row in _rows(out / "picks.csv"):
        scratch = json.loads((Path(row["run_dir"]) / "scratch-seed1" / "metrics.json").read_text())
        assert float(row["scratch_final_acc"]) == pytest.approx(scratch["final_acc"])
        assert len(_rows(Path(row["run_dir"]) / "results.csv")) == 1
    assert "| from scratch (same steps) (%) |" in (out / "report.md").read_text()


def _teacher(root: Path, pred: Path) -> Path:
    """The teacher trained by the folder test, or one trained here when that test did not run."""
    path = root / "run_folder" / "teacher" / "teacher.pt"
    if not path.is_file():
        run(_cfg(f"dataset=folder:{root / 'images'}", f"predictor={pred}", f"run_dir={root / 'run_folder'}",
                 "seeds=[1]", "top_k=1"))
    return path


@pytest.mark.parametrize("args, message", [
    (["dataset=folder:{root}/nowhere"], "image folder not found"),
    (["dataset=npy:{root}/images"], "file not found: .*train_images.npy"),
    (["dataset=folder:{root}/images", "budget.macs=100"], r"budget.macs=100: at most 100 MACs, below the smallest"),
    (["dataset=folder:{root}/images", "teacher={root}/junk.pt"], r"junk\.pt: "),
    (["dataset=folder:{root}/images", "teacher={root}/absent.pt"], "absent.pt"),
    (["dataset=folder:{root}/images", "budget.macs=null"], "no budget given"),
    ([], "no dataset given"),
])
def test_bad_input_is_one_error_line_and_exit_2(fixtures, capsys, args, message):
    root, pred = fixtures
    (root / "junk.pt").write_bytes(b"not a checkpoint at all")
    argv = ["--config", str(REPO / "configs/pipeline/cpu.yaml"), f"predictor={pred}",
            f"run_dir={root / 'bad_run'}", *[a.format(root=root) for a in args]]
    with pytest.raises(SystemExit) as e:
        run_main(main, argv, _parser())
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert re.search(message, err[0]), err[0]
    assert not (root / "bad_run").exists()   # nothing started


def test_cpu_profile_recipes_agree_with_the_stage_profiles():
    pipe = cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml")
    assert pipe.teacher_recipe == cfgmod.load(TeacherRunConfig, REPO / "configs/teacher/cpu.yaml").teacher_recipe
    assert pipe.kd_recipe == cfgmod.load(KDRunConfig, REPO / "configs/kd/cpu.yaml").kd_recipe
