"""``python -m dass.export``: a KD run's student as TorchScript / ONNX / state dict that run without
this package, checked against the package's own network.

The KD run is a real one (two seeds, six epochs) of a tiny student of the tiny space on a toy glyph
dataset whose meta.json names its classes' code points; the expected values (class names,
normalisation, accuracy per seed) come from the fixture's inputs and the KD run's own files."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from assets.tiny_db import TINY, save_teacher, tiny_teacher_state, write_predictor, write_quadrant_glyphs
from dass import config as cfgmod
from dass.errors import DassError
from dass.export.config import ExportConfig
from dass.export.exporter import run as export_run
from dass.kd.config import KDRunConfig, StudentSpec
from dass.kd.distil_student import run as kd_run
from dass.pipeline import PipelineConfig
from dass.pipeline import run as pipeline_run
from dass.space import Arch, build

REPO = Path(__file__).resolve().parents[2]
CODE_POINTS = ["U+0041", "U+0042", "U+0043", "U+0044"]
ARCH = {"depths": [1, 2, 1, 1], "widths": [[2], [4, 8], [4], [16]]}


@pytest.fixture(scope="module")
def kd_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    write_quadrant_glyphs(root / "data", "q", 0, per_class=16, code_points=CODE_POINTS)
    teacher = save_teacher(root / "teacher.pt", tiny_teacher_state(TINY, 4, 0), TINY, 4, "glyphs/q", 61.5)
    cfg = cfgmod.load(KDRunConfig, REPO / "configs/kd/cpu.yaml",
                      [f"teacher={teacher}", "dataset=glyphs/q", f"data_root={root / 'data'}",
                       f"run_dir={root / 'kd'}", "seeds=[1,2]", "kd_recipe.epochs=6", "kd_recipe.batch_size=16", "kd_recipe.alpha=0.9",
                       "progress=false", "device=cpu"])
    cfg.student = StudentSpec(**ARCH)
    kd_run(cfg)
    return root


@pytest.fixture(scope="module")
def exported(kd_folder):
    summary = export_run(cfgmod.load(ExportConfig, REPO / "configs/export/cpu.yaml", [f"run={kd_folder / 'kd'}"]))
    return kd_folder, summary


def package_logits(root: Path, seed: int, x: torch.Tensor) -> torch.Tensor:
    """The student of ``seed`` rebuilt by the package from its KD checkpoint."""
    sd = torch.load(root / "kd" / f"seed{seed}" / "best.pt", weights_only=True)["state_dict"]
    net = build(Arch.from_dict(ARCH), TINY, 4)
    net.load_state_dict(sd)
    with torch.no_grad():
        return net.eval()(x)


def toy_test_images(root: Path) -> tuple[torch.Tensor, np.ndarray]:
    """The toy dataset's test images normalised by hand ((x / 255 - 0.5) / 0.5, the cpu KD recipe's)."""
    imgs = np.load(root / "data" / "glyphs" / "q" / "test_images.npy")
    labels = np.load(root / "data" / "glyphs" / "q" / "test_labels.npy")
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    return (x - 0.5) / 0.5, labels


def plain_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "OMP_NUM_THREADS": "1"}


def test_model_json_and_card(exported):
    root, summary = exported
    out = root / "kd" / "export"
    assert summary["out"] == str(out)
    for f in ("student.ts", "student.onnx", "student_state_dict.pt", "arch.json", "model.json", "MODEL_CARD.md"):
        assert (out / f).is_file(), f
    meta = json.loads((out / "model.json").read_text())
    assert meta["input_size"] == 8 and meta["channels"] == 3
    assert meta["mean"] == [0.5] * 3 and meta["std"] == [0.5] * 3
    assert meta["classes"] == CODE_POINTS and meta["onnx_opset"] == 17
    for seed in (1, 2):
        m = json.loads((root / "kd" / f"seed{seed}" / "metrics.json").read_text())
        assert meta["seeds"][str(seed)]["best_acc"] == m["best_acc"]
        assert meta["seeds"][str(seed)]["final_acc"] == m["final_acc"]
    best = max((1, 2), key=lambda s: (meta["seeds"][str(s)]["best_acc"], -s))
    assert meta["exported_seed"] == best
    # the package's network on the test images, preprocessed as model.json says, is the KD run's best epoch
    assert summary["top1"]["torch"] == pytest.approx(meta["seeds"][str(best)]["best_acc"], abs=1e-9)
    assert summary["top1"]["onnx"] == summary["top1"]["torch"] == summary["top1"]["torchscript"]
    assert summary["images"] == 4 * 8
    card = (out / "MODEL_CARD.md").read_text()
    assert "glyphs/q" in card and "61.50" in card and "U+0041" in card and "opset 17" in card
    assert f"python -m dass.kd --config {root / 'kd' / 'config.yaml'}" in card
    arch = json.loads((out / "arch.json").read_text())
    assert arch["arch"] == ARCH and arch["num_classes"] == 4


@pytest.mark.slow
def test_torchscript_runs_without_dass(exported, tmp_path):
    root, summary = exported
    seed = summary["seed"]
    x, _ = toy_test_images(root)
    np.save(tmp_path / "x.npy", x.numpy())
    code = f"""
import sys, numpy as np, torch
net = torch.jit.load({str(root / 'kd' / 'export' / 'student.ts')!r})
y = net(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))).detach().numpy()
np.save({str(tmp_path / 'y.npy')!r}, y)
assert not any(m == 'dass' or m.startswith('dass.') for m in sys.modules), 'dass imported'
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=plain_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = np.load(tmp_path / "y.npy")
    want = package_logits(root, seed, x).numpy()
    assert got.shape == (32, 4)
    assert np.abs(got - want).max() <= 1e-4


def test_onnxruntime_agrees(exported):
    root, summary = exported
    x, _ = toy_test_images(root)
    s = ort.InferenceSession(str(root / "kd" / "export" / "student.onnx"), providers=["CPUExecutionProvider"])
    got = s.run(None, {"input": x.numpy()})[0]
    want = package_logits(root, summary["seed"], x).numpy()
    assert np.abs(got - want).max() <= 1e-4
    assert summary["max_abs_diff"]["onnx"] == pytest.approx(float(np.abs(got - want).max()), abs=1e-6)


@pytest.mark.slow
def test_readme_snippet_classifies_an_image_file(exported, tmp_path):
    root, summary = exported
    text = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "export/student.ts" in b]
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 5
    imgs = np.load(root / "data" / "glyphs" / "q" / "test_images.npy")
    x, _ = toy_test_images(root)
    logits = package_logits(root, summary["seed"], x)
    # one test image (8 x 8, the input size: no resize) per class the student predicts, at least two classes
    picks = {}
    for i, c in enumerate(logits.argmax(1).tolist()):
        picks.setdefault(c, i)
    assert len(picks) >= 2
    (tmp_path / "export").symlink_to(root / "kd" / "export")
    for c, i in picks.items():
        Image.fromarray(imgs[i]).save(tmp_path / "image.png")
        r = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, env=plain_env(), capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.strip() == CODE_POINTS[c]


@pytest.mark.slow
@pytest.mark.parametrize("what", ["empty", "missing", "teacher_file"])
def test_not_a_kd_run_is_one_error_line(exported, tmp_path, what, forked):
    root, _ = exported
    target = {"empty": tmp_path, "missing": tmp_path / "nowhere", "teacher_file": root}[what]
    r = forked(["-m", "dass.export", "--config", "configs/export/cpu.yaml", f"run={target}"], cwd=REPO)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "KD run" in lines[0], r.stderr
    assert not (Path(target) / "export").exists()


def test_bad_format_is_refused(env):
    r = subprocess.run([sys.executable, "-m", "dass.export", "run=x", "format=[tflite]"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "tflite" in r.stderr


@pytest.mark.slow
def test_pipeline_run_and_image_folder_class_names(tmp_path):
    """A real (tiny) pipeline run on an image folder: its pick of rank 1, given as the pipeline run or
    as its kd/<rank>-<arch> folder, exports with the folder's class names."""
    rng = np.random.default_rng(0)
    names = ["cat", "dog", "eel"]
    for c, name in enumerate(names):
        d = tmp_path / "images" / name
        d.mkdir(parents=True)
        for i in range(8):
            a = rng.integers(0, 60, (8, 8, 3)).astype(np.uint8)
            a[:, 2 * c:2 * c + 2] = 250
            Image.fromarray(a).save(d / f"{i}.png")
    pred = write_predictor(tmp_path / "pred" / "best.pt", TINY)
    pipe = tmp_path / "pipe"
    pipe_cfg = cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml", [
        "teacher_recipe.epochs=1", "teacher_recipe.batch_size=8", "kd_recipe.epochs=1", "kd_recipe.batch_size=8",
        "pool_size=20", "top_k=2", "seeds=[1]", "budget.macs=0.6", "threads=1", "progress=false", "device=cpu",
        f"dataset=folder:{tmp_path / 'images'}", f"predictor={pred.parent}", f"run_dir={pipe}",
        "export=[onnx,torchscript]"])
    pipeline_run(pipe_cfg)
    picks = sorted((pipe / "kd").glob("1-*"))
    assert len(picks) == 1
    # the pipeline's export step: the rank-1 pick in <run>/export
    step = json.loads((pipe / "export" / "model.json").read_text())
    assert step["run"] == str(picks[0]) and (pipe / "export" / "student.ts").is_file()
    assert (pipe / "export" / "student.onnx").is_file() and not (pipe / "export" / "arch.json").exists()
    summary = export_run(cfgmod.load(ExportConfig, REPO / "configs/export/cpu.yaml", [f"run={pipe}", "format=[onnx]"]))
    out = picks[0] / "export"
    assert summary["out"] == str(out) and (out / "student.onnx").is_file() and not (out / "student.ts").exists()
    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == names and meta["classes_from"] == "folder"
    m = json.loads((picks[0] / "seed1" / "metrics.json").read_text())
    assert meta["arch"] == m["arch"] and meta["seeds"]["1"]["best_acc"] == m["best_acc"]
    top = json.loads((pipe / "search" / "top.json").read_text())["top"]
    assert meta["pred_acc"] is not None and meta["pred_acc"] == next(e["pred_acc"] for e in top if e["rank"] == 1)
    assert summary["top1"]["torch"] == pytest.approx(m["best_acc"], abs=1e-9)
    assert summary["max_abs_diff"]["onnx"] <= 1e-4
    assert f"python -m dass.pipeline --config {pipe / 'config.yaml'}" in (out / "MODEL_CARD.md").read_text()
    # the pick folder itself, the second pick by rank
    again = export_run(cfgmod.load(ExportConfig, REPO / "configs/export/cpu.yaml",
                                   [f"run={pipe}", "pick=2", "format=[state_dict]", f"out={tmp_path / 'x'}"]))
    second = sorted((pipe / "kd").glob("2-*"))[0]
    assert json.loads((tmp_path / "x" / "arch.json").read_text())["arch"] == \
        json.loads((second / "seed1" / "metrics.json").read_text())["arch"]
    assert again["seed"] == 1
    # a rerun of the pipeline skips its finished stages with the export folders in place
    assert [r["skipped"] for r in pipeline_run(pipe_cfg)["stages"].values()] == [True, True, True]
    third = export_run(cfgmod.load(ExportConfig, REPO / "configs/export/cpu.yaml",
                                   [f"run={picks[0]}", "format=[torchscript]", f"out={tmp_path / 'y'}"]))
    assert third["top1"]["torchscript"] == summary["top1"]["onnx"]


def test_a_program_over_tolerance_is_an_error_and_nothing_is_written(exported, tmp_path):
    root, summary = exported
    assert summary["max_abs_diff"]["onnx"] > 1e-12    # float32 ONNX kernels differ from torch's in the last bits
    cfg = cfgmod.load(ExportConfig, REPO / "configs/export/cpu.yaml",
                      [f"run={root / 'kd'}", "format=[onnx]", "tolerance=1e-12", f"out={tmp_path / 'x'}"])
    with pytest.raises(DassError, match="exceeds tolerance"):
        export_run(cfg)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_pipeline_exports_by_default_and_the_program_runs_without_dass(kd_folder, tmp_path):
    """The cpu pipeline profile, no export setting given: <run>/export holds student.ts, student.onnx and
    MODEL_CARD.md (with the latency measured at export); the TorchScript program, loaded in a process
    that never imports dass, and onnxruntime give the package's logits on the test images."""
    pred = write_predictor(tmp_path / "pred" / "best.pt", TINY)
    pipe = tmp_path / "pipe"
    cfg = cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml", [
        "kd_recipe.epochs=2", "kd_recipe.batch_size=16", "pool_size=20", "top_k=2", "budget.macs=0.6", "threads=1",
        "progress=false", "device=cpu", "dataset=glyphs/q", f"data_root={kd_folder / 'data'}",
        f"teacher={kd_folder / 'teacher.pt'}", f"predictor={pred}", f"run_dir={pipe}"])
    assert cfg.export == ["torchscript", "onnx", "state_dict"]
    pipeline_run(cfg)
    out = pipe / "export"
    for f in ("student.ts", "student.onnx", "MODEL_CARD.md", "student_state_dict.pt", "arch.json", "model.json"):
        assert (out / f).is_file(), f
    meta = json.loads((out / "model.json").read_text())
    card = (out / "MODEL_CARD.md").read_text()
    assert re.search(r"\*\*Latency\*\* \(measured at export\): \d+\.\d{3} ms per image", card)
    # the package's network: the rank-1 pick's architecture (search/top.json) with the exported seed's weights
    top = json.loads((pipe / "search" / "top.json").read_text())["top"][0]
    arch = Arch.from_dict(top["arch"])
    sd = torch.load(pipe / "kd" / f"1-{arch.key()}" / f"seed{meta['exported_seed']}" / "best.pt",
                    weights_only=True)["state_dict"]
    net = build(arch, TINY, 4)
    net.load_state_dict(sd)
    x, _ = toy_test_images(kd_folder)
    with torch.no_grad():
        want = net.eval()(x).numpy()
    np.save(tmp_path / "x.npy", x.numpy())
    code = f"""
import sys, numpy as np, torch
net = torch.jit.load({str(out / 'student.ts')!r})
np.save({str(tmp_path / 'y.npy')!r}, net(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))).detach().numpy())
assert not any(m == 'dass' or m.startswith('dass.') for m in sys.modules), 'dass imported'
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=plain_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert np.abs(np.load(tmp_path / "y.npy") - want).max() <= 1e-4
    s = ort.InferenceSession(str(out / "student.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(s.run(None, {"input": x.numpy()})[0] - want).max() <= 1e-4


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_pipeline_without_the_export_extra_stops_before_training(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)   # as if not installed: the import machinery finds nothing
    cfg = cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml", ["dataset=glyphs/q"])
    with pytest.raises(DassError, match=rf"export lists onnx, which needs the package\(s\) {missing} .*\[export\]"):
        cfg.check()
    # without onnx in the list, or searching only, nothing needs the extra
    for without in ("export=[torchscript,state_dict]", "train=false"):
        cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml", ["dataset=glyphs/q", without]).check()
