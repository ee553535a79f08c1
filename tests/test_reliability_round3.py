"""Reliability round 3 (issue 27): the one-command pipeline and the database builder never lose or
mix up data. Each test reproduces one finding of the issue at a tiny size and asserts the fixed
behaviour: a refusal (exit 2, one ``error:`` line, the folders byte-identical before and after) or a
correct result.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assets.tiny_db import TINY, write_predictor
from dass import runid
from dass.cli import run_main
from dass.pipeline.__main__ import _parser, main

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = ["teacher_recipe.epochs=1", "teacher_recipe.batch_size=8", "kd_recipe.epochs=1", "kd_recipe.batch_size=8",
            "pool_size=10", "top_k=1", "seeds=[1]", "budget.macs=0.6", "threads=1", "progress=false", "device=cpu"]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (links not followed) -> sha256 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_class_folder(root: Path, classes: int = 3, per_class: int = 8, size: int = 10, seed: int = 0) -> Path:
    """``root/c<k>/<i>.png``: class k is noise plus 60 k (as in the issue's reproduction)."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray((rng.integers(0, 60, (size, size, 3)) + 60 * c).astype("uint8")).save(root / f"c{c}" / f"{i}.png")
    return root


def pipeline(capsys, *overrides) -> tuple[int, list[str]]:
    """``python -m dass.pipeline`` in process: (exit code, stderr lines)."""
    capsys.readouterr()
    argv = ["--config", str(REPO / "configs/pipeline/cpu.yaml"), *TINY_RUN, *overrides]
    with pytest.raises(SystemExit) as e:
        run_main(main, argv, _parser())
    return e.value.code, capsys.readouterr().err.strip().splitlines()


def refused(code: int, err: list[str], pattern: str) -> None:
    errors = [line for line in err if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1, err
    assert re.search(pattern, errors[0]), errors[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An image folder, a tiny predictor and one finished pipeline run on them."""
    root = tmp_path_factory.mktemp("round3")
    data = write_class_folder(root / "d")
    pred = write_predictor(root / "pred" / "best.pt", TINY)
    return root, data, pred


@pytest.fixture(scope="module")
def finished(made):
    root, data, pred = made
    from dass import config as cfgmod
    from dass.pipeline import PipelineConfig, run
    run_dir = root / "r"
    run(cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml",
                    [*TINY_RUN, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={run_dir}"]))
    assert (run_dir / "teacher" / "teacher.pt").is_file()
    return run_dir


# ------------------------------------------------------------------------------------- data losses

def test_teacher_inside_the_run_folder_is_refused_before_anything_changes(made, finished, capsys):
    _, data, pred = made
    before = snapshot(finished)
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={finished}",
                         f"teacher={finished / 'teacher' / 'teacher.pt'}", "budget.macs=0.25")
    refused(code, err, r"teacher=.*lies inside run_dir")
    assert snapshot(finished) == before


def test_a_folder_of_files_the_pipeline_did_not_write_is_refused(made, tmp_path, capsys):
    _, data, pred = made
    (tmp_path / "v" / "kd").mkdir(parents=True)
    (tmp_path / "v" / "kd" / "results.csv").write_text("x\n")
    before = snapshot(tmp_path / "v")
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={tmp_path / 'v'}")
    refused(code, err, r"not empty and holds no run")
    assert snapshot(tmp_path / "v") == before


def test_a_run_of_other_data_is_refused_and_kept(made, finished, tmp_path, capsys):
    _, _, pred = made
    other = write_class_folder(tmp_path / "other", seed=5)
    before = snapshot(finished)
    code, err = pipeline(capsys, f"dataset=folder:{other}", f"predictor={pred}", f"run_dir={finished}")
    refused(code, err, r"holds another run")
    assert snapshot(finished) == before


def test_a_second_run_on_a_locked_folder_gets_one_error(made, finished, capsys):
    _, data, pred = made
    before = snapshot(finished)
    with runid.locked(finished, "test"):   # another process's flock: a separate open file description
        code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={finished}",
                             "kd_recipe.lr=0.01")
    refused(code, err, r"in use by another dass.pipeline run")
    assert snapshot(finished) == before


def test_a_stage_folder_not_written_by_a_stage_is_refused(made, finished, tmp_path, capsys):
    import shutil
    _, data, pred = made
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    (copy / "kd" / "stage_identity.json").unlink()
    before = snapshot(copy)
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={copy}", "kd_recipe.lr=0.01")
    refused(code, err, r"kd: holds files but no stage_identity.json")
    assert snapshot(copy) == before
