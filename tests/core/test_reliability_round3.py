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
from dass import hashing, runid
from dass.cli import run_main
from dass.pipeline.__main__ import _parser, main

REPO = Path(__file__).resolve().parents[2]
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


# ------------------------------------------------------------------------------------- the database

def _tiny_task_db(tmp: Path, tasks=(("t1", "meta_test"), ("t2", "meta_test")), space=TINY) -> Path:
    """``tmp/db`` with task files and a manifest listing them (as a build writes it)."""
    from assets.tiny_db import write_tiny_db
    write_tiny_db(tmp, tasks=tasks, n_students=4, space=space)
    rows = [{"key": k, "split": s, "file": f"{k}.pt", "students": 4} for k, s in tasks]
    (tmp / "db" / "manifest.json").write_text(json.dumps({"tasks": rows}))
    return tmp / "db"


def test_a_task_file_outside_the_manifest_is_not_part_of_the_database(tmp_path, caplog):
    from dass.database.format import load_db
    from dass.database.commands import validate_db
    db = _tiny_task_db(tmp_path / "a")
    stale = _tiny_task_db(tmp_path / "b", tasks=(("old", "meta_test"),))
    (db / "old.pt").write_bytes((stale / "old.pt").read_bytes())   # left over from another task list
    with caplog.at_level("WARNING"):
        tasks = load_db(db)["meta_test"]
    assert sorted(d["task"]["key"] for d in tasks) == ["t1", "t2"]
    assert "old.pt" in caplog.text and "not in manifest.json" in caplog.text
    assert [r["key"] for r in validate_db(db)["meta_test"]] == ["t1", "t2"]


def test_validate_says_on_stdout_which_task_files_it_ignored(tmp_path, capsys):
    from dass.database.commands import validate
    db = _tiny_task_db(tmp_path / "a")
    stale = _tiny_task_db(tmp_path / "b", tasks=(("old", "meta_test"),))
    (db / "old.pt").write_bytes((stale / "old.pt").read_bytes())
    validate(db)
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == "ignored, not in manifest.json (1 files, not part of the database): old.pt"
    assert out[-1] == "database OK (1 unlisted task files ignored)"
    (db / "old.pt").unlink()
    validate(db)
    assert capsys.readouterr().out.splitlines()[-1] == "database OK"


def _damaged(d: dict, how: str) -> dict:
    import torch
    if how == "nan teacher map":
        d["teacher"]["fmap"] = d["teacher"]["fmap"].clone().fill_(float("nan"))
    elif how == "nan one-hot":
        d["students"]["onehot"] = d["students"]["onehot"].clone()
        d["students"]["onehot"][0, 0] = float("nan")
    elif how == "negative macs":
        d["students"]["macs"] = -d["students"]["macs"]
    elif how == "architecture outside the space":
        d["students"]["arch"] = [dict(a) for a in d["students"]["arch"]]
        d["students"]["arch"][0] = {"depths": [9] * len(TINY.stage_widths), "widths": [[4] * 9] * len(TINY.stage_widths)}
    else:
        raise AssertionError(how)
    assert torch.is_tensor(d["teacher"]["fmap"])
    return d


@pytest.mark.parametrize("how, message", [
    ("nan teacher map", "teacher.fmap has non-finite values"),
    ("nan one-hot", "students.onehot has non-finite values"),
    ("negative macs", "students.macs and teacher.macs must be positive"),
    ("architecture outside the space", r"students.arch\[0\] is not of the space"),
])
def test_validate_refuses_damaged_task_files(tmp_path, how, message):
    import torch
    from dass.database.format import load_db
    from dass.errors import DassError
    db = _tiny_task_db(tmp_path)
    d = torch.load(db / "t1.pt", weights_only=True)
    torch.save(_damaged(d, how), db / "t1.pt")
    with pytest.raises(DassError, match=message):
        load_db(db)


def test_validate_refuses_mixed_spaces_duplicate_keys_and_edited_splits(tmp_path):
    import dataclasses

    import torch
    from dass.database.format import load_db
    from dass.errors import DassError
    db = _tiny_task_db(tmp_path / "a")
    other = _tiny_task_db(tmp_path / "b", tasks=(("t3", "meta_test"),),
                          space=dataclasses.replace(TINY, name="other", width_mults=[0.5, 0.75, 1.0]))
    (db / "t2.pt").write_bytes((other / "t3.pt").read_bytes())
    rows = [{"key": "t1", "split": "meta_test", "file": "t1.pt"}, {"key": "t3", "split": "meta_test", "file": "t2.pt"}]
    (db / "manifest.json").write_text(json.dumps({"tasks": rows}))
    with pytest.raises(DassError, match="one database holds one space"):
        load_db(db)
    # two files holding one task key (no manifest); a split edited from meta_test to meta_train
    for name, field, value, message in (("c", "key", "t1", "task key 't1' also in t1.pt"),
                                        ("d", "split", "meta_train", "manifest.json says 't2' of split meta_test")):
        db = _tiny_task_db(tmp_path / name)
        d = torch.load(db / "t2.pt", weights_only=True)
        d["task"][field] = value
        torch.save(d, db / "t2.pt")
        if field == "key":
            (db / "manifest.json").unlink()
        with pytest.raises(DassError, match=message):
            load_db(db)


def test_compare_refuses_databases_of_different_spaces(tmp_path):
    import dataclasses

    from dass.database.compare import compare_dbs
    from dass.errors import DassError
    a = _tiny_task_db(tmp_path / "a", tasks=(("t1", "meta_test"),))
    b = _tiny_task_db(tmp_path / "b", tasks=(("t1", "meta_test"),),
                      space=dataclasses.replace(TINY, name="other", stage_widths=[4, 8, 8, 32]))
    with pytest.raises(DassError, match="different spaces"):
        compare_dbs(a, b)


def _build_cfg(tmp: Path, data: Path, **extra):
    import yaml
    from assets.tiny_db import TINY_BUILD_SPACE
    from dass.config import from_dict
    from dass.database.config import DatabaseConfig
    (tmp / "space.yaml").write_text(yaml.safe_dump(TINY_BUILD_SPACE))
    d = {"space": str(tmp / "space.yaml"), "out": str(tmp / "out"), "work_dir": str(tmp / "work"),
         "teachers_dir": str(tmp / "teachers"), "students": {"meta_test": 2},
         "tasks": [{"dataset": f"folder:{data}", "split": "meta_test", "key": "t"}],
         "teacher_recipe": {"epochs": 1, "batch_size": 8}, "kd_recipe": {"epochs": 1, "batch_size": 8},
         "workers": 1, "threads_per_worker": 1, "device": "cpu", "feats_per_class": 2, **extra}
    return from_dict(DatabaseConfig, d)


def test_the_builder_does_not_reuse_a_teacher_after_its_data_changed(tmp_path):
    from dass.database.builder import build
    from dass.errors import DassError
    data = write_class_folder(tmp_path / "d")
    build(_build_cfg(tmp_path, data), "teachers")
    assert (tmp_path / "teachers" / "t" / "teacher.pt").is_file()
    # the reproduction 2: classes 0 and 2 swap their images
    (data / "c0").rename(data / "x")
    (data / "c2").rename(data / "c0")
    (data / "x").rename(data / "c2")
    before = snapshot(tmp_path)
    with pytest.raises(DassError, match="trained on other data"):
        build(_build_cfg(tmp_path, data), "all")
    assert snapshot(tmp_path) == before


def test_two_builds_of_different_recipes_cannot_share_one_out(tmp_path):
    from dass.database.builder import build
    from dass.errors import DassError
    data = write_class_folder(tmp_path / "d")
    build(_build_cfg(tmp_path, data), "teachers")
    assert "lr: 0.05" in (tmp_path / "work" / "config.yaml").read_text()
    before = snapshot(tmp_path)
    with pytest.raises(DassError, match=r"holds another run \(differs in kd_recipe.lr"):
        build(_build_cfg(tmp_path, data, kd_recipe={"epochs": 1, "batch_size": 8, "lr": 0.5}), "teachers")
    assert snapshot(tmp_path) == before    # out, and work_dir/config.yaml still the first recipe's
    with runid.locked(tmp_path / "out", "test"):
        with pytest.raises(DassError, match="in use by another dass.database build"):
            build(_build_cfg(tmp_path, data), "teachers")


# ------------------------------------------------------------------------------------- overrides

@pytest.mark.parametrize("item, expected", [
    ("seeds=[0123]", {"seeds": [123]}),              # YAML 1.1: 83 (octal)
    ("search_seed=010", {"search_seed": 10}),        # YAML 1.1: 8
    ("top_k=1:30", {"top_k": "1:30"}),               # YAML 1.1: 90 (sexagesimal); a string, refused as an int
    ("dataset=folder:/x/base #2", {"dataset": "folder:/x/base #2"}),   # YAML: '#2' a comment
    ("progress=no", {"progress": "no"}),             # YAML 1.1: False
    ("kd_recipe.lr=1e-3", {"kd_recipe": {"lr": 0.001}}),
    ("seed=0o17", {"seed": 15}),
    ("a={b: [1, '#x']}", {"a": {"b": [1, "#x"]}}),
])
def test_overrides_are_yaml_1_2(item, expected):
    from dass.config import parse_overrides
    assert parse_overrides([item]) == expected


@pytest.mark.parametrize("item, message", [
    ("top_k=1:30", "key 'top_k' expects int, got '1:30'"),
    ("seeds=[1, #2]", "' #' would start a YAML comment"),
    ("seeds=" + "[" * 5000 + "]" * 5000, "nested more than 32 levels deep"),
])
def test_bad_overrides_are_one_error_line(made, capsys, item, message, tmp_path):
    _, data, pred = made
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={tmp_path / 'r'}", item)
    refused(code, err, re.escape(message))
    assert not (tmp_path / "r").exists()


def test_a_deeply_nested_config_file_is_one_error(tmp_path):
    from dass.config import read_yaml
    from dass.errors import DassError
    (tmp_path / "deep.yaml").write_text("".join(" " * i + "a:\n" for i in range(5000)))
    with pytest.raises(DassError, match="nested more than 32 levels deep"):
        read_yaml(tmp_path / "deep.yaml")


# ------------------------------------------------------------------------------------- image folders

def test_deep_images_are_scaled_not_clipped(tmp_path):
    from dass.data.folder import load_image_folder
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    Image.fromarray(np.full((8, 8), 1000, np.uint16)).save(tmp_path / "a" / "1.png")    # 16-bit PNG
    Image.fromarray(np.full((8, 8), 30000, np.uint16)).save(tmp_path / "b" / "1.png")
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(tmp_path / "c" / "1.tif")   # float TIFF in [0, 1]
    a = load_image_folder(tmp_path, "train", 8, test_fraction=0.01)
    # by hand: 1000 * 255 / 65535 = 3.89 -> 4; 30000 * 255 / 65535 = 116.7 -> 117; 0.5 * 255 = 127.5 -> 128
    assert [int(v) for v in a.images[:, 0, 0, 0]] == [4, 117, 128]
    assert (a.images == a.images[:, :1, :1, :1]).all()    # grey: one value per image


def test_images_of_any_size_and_mode_are_read_at_the_space_size(tmp_path):
    from dass.data.folder import load_image_folder
    data = write_class_folder(tmp_path / "d", size=16)
    Image.new("RGB", (40, 30), (200, 0, 0)).save(data / "c0" / "big.png")
    Image.new("L", (1, 4000), 90).save(data / "c1" / "thin.png")
    Image.new("P", (16, 16)).save(data / "c2" / "pal.gif")
    Image.new("RGBA", (5, 7), (1, 2, 3, 4)).save(data / "c2" / "alpha.png")
    for size in (8, None):
        a, b = (load_image_folder(data, s, size) for s in ("train", "test"))
        assert a.images.shape[1:] == ((8, 8, 3) if size else (16, 16, 3))   # None: the common 16 x 16
        assert len(a) + len(b) == 3 * 8 + 4
    images = np.concatenate([load_image_folder(data, s, 8).images for s in ("train", "test")])
    red = (images.reshape(len(images), -1, 3) == [200, 0, 0]).all(axis=(1, 2))
    assert red.sum() == 1          # the 40 x 30 red image, cut to its centred square and resized


def test_identity_hashes_exactly_the_files_the_reader_reads(tmp_path):
    from dass.data.folder import load_image_folder
    data = write_class_folder(tmp_path / "d", classes=2, per_class=3)
    ext = write_class_folder(tmp_path / "ext", classes=1, per_class=3, seed=3)
    (data / "linked").symlink_to(ext / "c0", target_is_directory=True)   # a symlinked class folder

    def ident():
        splits = [load_image_folder(data, s, 8, test_fraction=0.34) for s in ("train", "test")]
        return tuple(hashing.dataset_hash(a) for a in splits), splits[0].num_classes

    h0, k = ident()
    assert k == 3
    (data / "README.md").write_text("about")               # not read: same identity (resumable)
    (data / "c0" / ".hidden.png").write_text("not read")    # dot-files: skipped by reader and hash
    run_like = data / "runs" / "r"                          # a run folder inside the dataset: no class
    (run_like / "plots").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(run_like / "plots" / "p.png")
    (run_like / "report.md").write_text("x")
    assert ident() == (h0, 3)
    # a changed image behind the symlink changes the identity
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(next(p for p in sorted((ext / "c0").iterdir())))
    assert ident()[0] != h0


@pytest.mark.slow
def test_the_pipeline_runs_on_a_folder_of_mixed_sizes(made, tmp_path, capsys):
    _, _, pred = made
    data = write_class_folder(tmp_path / "d", size=16)
    Image.new("RGB", (40, 30)).save(data / "c0" / "big.png")     # the reproduction 4
    Image.new("RGB", (1, 400)).save(data / "c1" / "thin.png")
    Image.new("P", (16, 16)).save(data / "c2" / "x.gif")
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={tmp_path / 'r4'}")
    assert code == 0, err
    assert (tmp_path / "r4" / "report.md").is_file()


# ------------------------------------------------------------------------------------- loaded values

def _edited(src: Path, dst: Path, edit) -> Path:
    import torch
    d = torch.load(src, weights_only=True)
    edit(d)
    torch.save(d, dst)
    return dst


def _nan_first_weight(d):
    k = next(k for k, v in d["model"].items() if v.is_floating_point() and v.numel())
    d["model"][k] = d["model"][k].clone().fill_(float("nan"))


def _inf_inner_lr(d):
    k = next(iter(d["inner_lrs"]))
    d["inner_lrs"][k] = d["inner_lrs"][k].clone().fill_(float("inf"))


@pytest.mark.parametrize("edit, message", [
    (_nan_first_weight, r"model\..* has non-finite values"),
    (_inf_inner_lr, r"inner_lrs\..* has non-finite values"),
    (lambda d: d["adapt"].update(steps=-1), r"adapt.steps must be an integer in \[0, 1000\], got -1"),
    (lambda d: d["adapt"].update(steps="x"), r"adapt.steps must be an integer .* got 'x'"),
    (lambda d: d["adapt"].update(steps=10 ** 9), r"adapt.steps .* got 1000000000"),   # the hang of the issue
    (lambda d: d["target"].update(kind="bogus"), r"target.kind must be one of"),
    (lambda d: d["target"].update(calib=[1.0, 0.1, 0.2]), r"target.calib must be two or four finite numbers"),
    (lambda d: d["target"].update(calib=[1.0, 0.1, float("nan"), 0.0]), r"target.calib must be two or four"),
    (lambda d: d["inputs"].update(noise_seed="abc"), r"inputs.noise_seed must be an integer"),
    (lambda d: d["inputs"].clear(), r"inputs lacks noise_seed, remap, which the model .* reads"),   # no silent default
    (lambda d: d["inputs"].update(remap="bogus"), r"inputs.remap must be one of .*copy_paste_first"),
])
def test_predictor_values_are_checked_on_load(made, tmp_path, edit, message):
    from dass.errors import DassError
    from dass.predictor.checkpoint import load_predictor
    _, _, pred = made
    bad = _edited(pred, tmp_path / "bad.pt", edit)
    with pytest.raises(DassError, match=message):
        load_predictor(bad)


def test_four_term_calibration_loads(made, tmp_path):
    from dass.predictor.checkpoint import load_predictor
    _, _, pred = made
    ok = _edited(pred, tmp_path / "ok.pt", lambda d: d["target"].update(calib=[1.2, 0.05, -0.3, 0.02]))
    assert load_predictor(ok).target["calib"] == [1.2, 0.05, -0.3, 0.02]


def _teacher_file(made, tmp_path, edit) -> Path:
    from assets.tiny_db import tiny_teacher_state
    from dass.teacher import save_teacher
    data = made[1]
    sd = tiny_teacher_state(TINY, 3, seed=0)
    path = save_teacher(tmp_path / "t.pt", sd, TINY, 3, f"folder:{data}", {"best_acc": 50.0},
                        recipe=None, seed=None)
    return _edited(path, path, edit)


def _nan_teacher(d):
    d["state_dict"]["fc.weight"] = d["state_dict"]["fc.weight"].clone().fill_(float("nan"))


def _int_teacher(d):
    d["state_dict"]["fc.weight"] = d["state_dict"]["fc.weight"].round().to(__import__("torch").int64)


@pytest.mark.parametrize("edit, message", [
    (_nan_teacher, r"'fc.weight' has non-finite values"),
    (_int_teacher, r"'fc.weight' is of type torch.int64, not floating point"),
    (lambda d: d["metrics"].update(best_acc=True), r"metrics.best_acc must be a number, got True"),
    (lambda d: d["metrics"].update(best_acc=[50]), r"metrics.best_acc must be a number"),
    (lambda d: d["metrics"].update(best_acc="x"), r"metrics.best_acc must be a number"),
    (lambda d: d["metrics"].update(best_acc=float("nan")), r"metrics.best_acc is nan"),
])
def test_a_damaged_given_teacher_is_refused_before_training(made, tmp_path, capsys, edit, message):
    _, data, pred = made
    teacher = _teacher_file(made, tmp_path, edit)
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"teacher={teacher}",
                         f"run_dir={tmp_path / 'r'}")
    refused(code, err, message)
    assert not (tmp_path / "r").exists()


def test_a_given_teachers_accuracy_on_other_data_is_measured_here(made, tmp_path):
    from dass import config as cfgmod
    from dass.pipeline import PipelineConfig
    from dass.pipeline.runner import recorded_teacher_accuracy
    from dass.teacher.checkpoint import load_teacher
    _, data, _ = made
    teacher = _teacher_file(made, tmp_path, lambda d: d.update(dataset="glyphs/other"))
    cfg = cfgmod.load(PipelineConfig, None, [f"dataset=folder:{data}", f"teacher={teacher}"])
    assert recorded_teacher_accuracy(cfg, load_teacher(teacher, TINY)[2]) is None
    same = _teacher_file(made, tmp_path / "same", lambda d: None)
    assert recorded_teacher_accuracy(cfg, load_teacher(same, TINY)[2]) == 50.0


@pytest.mark.parametrize("item, message", [
    ("top_k=1000000", "top_k=1000000: every pick is KD-trained"),
    ("pool_size=100000000", r"pool_size must lie in \[1, 10000000\]"),
    ("kd_recipe.batch_size=999", "kd_recipe.batch_size=999 is more than the"),
])
def test_search_and_kd_bounds_are_checked_before_training(made, tmp_path, capsys, item, message):
    _, data, pred = made
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={tmp_path / 'r'}", item)
    refused(code, err, message)
    assert not (tmp_path / "r").exists()


def test_candidates_with_nan_maps_or_a_bad_teacher_accuracy_are_refused(tmp_path):
    import torch
    from dass.errors import DassError
    from dass.search.searcher import read_candidates
    from dass.space import sample_unique
    archs = sample_unique(TINY, 3, np.random.default_rng(0))
    r = TINY.stage_resolutions()[-1]
    shape = (TINY.stage_widths[-1], r, r)
    good = {"archs": [a.to_dict() for a in archs], "fmap": torch.zeros(3, *shape),
            "teacher": {"fmap": torch.zeros(shape), "best_acc": 50.0}}
    torch.save(good, tmp_path / "ok.pt")
    assert read_candidates(tmp_path / "ok.pt", TINY).teacher_acc == 50.0
    for name, edit, message in (("nan", lambda d: d["fmap"].fill_(float("nan")), "'fmap' has non-finite values"),
                                ("acc", lambda d: d["teacher"].update(best_acc="x"), "teacher.best_acc must be a number")):
        d = torch.load(tmp_path / "ok.pt", weights_only=True)
        edit(d)
        torch.save(d, tmp_path / f"{name}.pt")
        with pytest.raises(DassError, match=message):
            read_candidates(tmp_path / f"{name}.pt", TINY)


def test_a_custom_build_never_trains_a_teacher_into_the_shipped_assets(tmp_path):
    from dass.database.builder import ASSETS, build
    from dass.errors import DassError
    data = write_class_folder(tmp_path / "d")
    cfg = _build_cfg(tmp_path, data, teachers_dir=str(ASSETS / "cpu" / "teachers"))   # as configs/database/cpu.yaml
    before = snapshot(ASSETS / "cpu" / "teachers")
    with pytest.raises(DassError, match="lies in the shipped assets/ but out=.* does not"):
        build(cfg, "teachers")
    assert snapshot(ASSETS / "cpu" / "teachers") == before
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_build_with_two_workers_shuts_down_cleanly(tmp_path, env):
    import subprocess
    import sys

    import yaml
    data = write_class_folder(tmp_path / "d")
    cfg = _build_cfg(tmp_path, data, workers=2)
    from dass.config import to_dict
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    r = subprocess.run([sys.executable, "-m", "dass.database", "--config", str(tmp_path / "c.yaml")], env=env,
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "leaked semaphore" not in r.stderr and "resource_tracker" not in r.stderr, r.stderr[-2000:]
    assert (tmp_path / "out" / "t.pt").is_file()


@pytest.mark.slow
def test_a_finished_stage_whose_output_is_gone_or_damaged_is_redone(made, finished, tmp_path, capsys):
    import shutil
    _, data, pred = made
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    (copy / "teacher" / "teacher.pt").unlink()                     # deleted after a finished run
    stage = json.loads((copy / "search" / "stage.json").read_text())
    del stage["result"]["top"]                                     # a stage.json without result.top
    (copy / "search" / "stage.json").write_text(json.dumps(stage))
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={copy}")
    assert code == 0, err
    assert (copy / "teacher" / "teacher.pt").is_file()
    assert json.loads((copy / "search" / "stage.json").read_text())["result"]["top"]


# ------------------------------------------------------------------------------------- seeded fuzzing

FUZZ_KEYS = ["top_k", "pool_size", "seeds", "search_seed", "teacher_seed", "budget.macs", "budget.params", "strategy",
             "evolution.population", "evolution.parents", "evolution.p_mutate", "progress", "threads", "remap",
             "kd_recipe.batch_size", "teacher_recipe.lr", "kd_recipe.temperature", "dataset", "run_dir"]
FUZZ_TOKENS = ["0123", "010", "1:30", "#x", "a #b", "1e9", "-1", "0", "1", "2", "7", "0.5", "[", "[[1]]", "[1, 2]",
               "[1, 1]", "[0123]", "{a: 1}", "null", "~", "yes", "no", "", "1e400", ".nan", "nan", ".inf", "abc",
               "0o17", "0x1F", "'#'", "true", "10**23", str(10 ** 23), "[" * 40 + "]" * 40, "pool", "evolution",
               "copy_paste_first", "é", "1e-3", "3.0e-5"]


def _fuzz_items(rng, n: int) -> list[str]:
    return [f"{FUZZ_KEYS[rng.integers(len(FUZZ_KEYS))]}={FUZZ_TOKENS[rng.integers(len(FUZZ_TOKENS))]}"
            for _ in range(n)]


@pytest.mark.slow
def test_fuzzed_overrides_load_or_give_one_user_error():
    """600 seeded draws of 1-3 hostile overrides on the pipeline's config: loaded and checked, or a
    DassError (what the CLI prints as one ``error:`` line, exit 2); never another exception."""
    from dass import config as cfgmod
    from dass.errors import DassError
    from dass.pipeline import PipelineConfig
    rng = np.random.default_rng(27)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(600):
        items = ["dataset=folder:/nowhere", *_fuzz_items(rng, int(rng.integers(1, 4)))]
        try:
            cfg = cfgmod.load(PipelineConfig, REPO / "configs/pipeline/cpu.yaml", items)
            cfg.check()
        except DassError as e:
            assert "\n" not in str(e), items
            outcomes["refused"] += 1
            continue
        outcomes["ok"] += 1
        assert 1 <= cfg.top_k <= min(100, cfg.pool_size) and cfg.pool_size <= 10 ** 7, items
        assert all(isinstance(s, int) and s >= 0 for s in cfg.seeds), items
    assert outcomes["ok"] > 50 and outcomes["refused"] > 50, outcomes


def _mutate_folder(rng, data: Path) -> str:
    """One real-world change to an image folder; returns what was done."""
    import os
    kind = ["junk.png", "readme", "dot", "deep16", "float", "big", "thin", "grey", "empty class", "nested", "gif",
            "text class"][int(rng.integers(12))]
    c = data / f"c{int(rng.integers(3))}"
    if kind == "junk.png":
        (c / "junk.png").write_bytes(os.urandom(64))
    elif kind == "readme":
        (data / "README.md").write_text("my data")
    elif kind == "dot":
        (c / ".DS_Store").write_bytes(os.urandom(16))
        (c / "._0.png").write_bytes(os.urandom(16))   # macOS resource forks: hidden, not images
    elif kind == "deep16":
        Image.fromarray(rng.integers(0, 65535, (10, 10)).astype(np.uint16)).save(c / "deep.png")
    elif kind == "float":
        Image.fromarray(rng.random((10, 10)).astype(np.float32)).save(c / "f.tif")
    elif kind == "big":
        Image.new("RGB", (40, 30), (9, 9, 9)).save(c / "big.png")
    elif kind == "thin":
        Image.new("RGB", (1, 300)).save(c / "thin.png")
    elif kind == "grey":
        Image.new("LA", (10, 10)).save(c / "grey.png")
    elif kind == "empty class":
        (data / "zz_empty").mkdir()
    elif kind == "nested":
        (c / "sub").mkdir()
        Image.new("RGB", (10, 10)).save(c / "sub" / "n.png")
    elif kind == "gif":
        Image.new("P", (12, 12)).save(c / "g.gif")
    else:
        (data / "notes").mkdir()
        (data / "notes" / "a.txt").write_text("x")
    return kind


@pytest.mark.slow
def test_fuzzed_pipeline_runs_end_in_a_result_or_one_error_and_touch_nothing_else(made, tmp_path, capsys):
    """Seeded: 10 image folders, each changed in one real-world way, run with 0-2 hostile overrides:
    exit 0 with a report whose picks keep the budget, or exit 2 with one ``error:`` line; the dataset,
    the predictor and everything else outside the run folder unchanged."""
    import csv
    import shutil
    _, _, pred = made
    rng = np.random.default_rng(2027)
    outcomes = []
    for case in range(10):
        work = tmp_path / f"case{case}"
        data = write_class_folder(work / "d", seed=case)
        kind = _mutate_folder(rng, data)
        items = [i for i in _fuzz_items(rng, int(rng.integers(0, 3))) if not i.startswith(("dataset=", "run_dir="))]
        before = {**snapshot(work), **{f"pred/{k}": v for k, v in snapshot(pred.parent).items()}}
        code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"run_dir={work / 'run'}", *items)
        after = {k: v for k, v in snapshot(work).items() if not k.startswith("run/")}
        after.update({f"pred/{k}": v for k, v in snapshot(pred.parent).items()})
        assert after == before, (kind, items)
        if code == 0:
            with open(work / "run" / "picks.csv", newline="") as f:
                picks = list(csv.DictReader(f))
            assert picks and all(r["within_budget"] == "True" for r in picks), (kind, items)
        else:
            refused(code, err, ".")
        outcomes.append(code)
        shutil.rmtree(work)
    assert 0 in outcomes and 2 in outcomes, outcomes


# ------------------------------------------------------------------------------------- clear errors

def test_an_extra_labels_file_is_named_when_it_sets_the_class_count(tmp_path):
    from dass.data.arrays import ImageArrays, write_split
    from dass.data.registry import load_dataset
    from dass.errors import DassError
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        write_split(tmp_path, "a", split, ImageArrays(rng.integers(0, 255, (6, 8, 8, 3)).astype(np.uint8),
                                                      np.arange(6) % 3, 3, "a"))
    np.save(tmp_path / "a" / "extra_labels.npy", np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))   # labels up to 9
    with pytest.raises(DassError, match=r"the class count 10 comes from .*extra_labels.npy"):
        load_dataset(f"npy:{tmp_path / 'a'}", "", "train")


def test_a_teacher_of_another_space_of_the_same_name_names_both_files(made, tmp_path, capsys):
    import dataclasses

    from assets.tiny_db import tiny_teacher_state
    from dass.teacher import save_teacher
    _, data, pred = made
    other = dataclasses.replace(TINY, stage_widths=[4, 8, 8, 32])   # also named 'tiny'
    teacher = save_teacher(tmp_path / "t.pt", tiny_teacher_state(other, 3, 0), other, 3, f"folder:{data}",
                           {"best_acc": 50.0}, recipe=None, seed=None)
    code, err = pipeline(capsys, f"dataset=folder:{data}", f"predictor={pred}", f"teacher={teacher}",
                         f"run_dir={tmp_path / 'r'}")
    refused(code, err, r"teacher=.*t.pt \(space 'tiny', stage_widths=\[4, 8, 8, 32\]\) and predictor=.*best.pt "
                       r"\(space 'tiny', stage_widths=\[4, 8, 8, 16\]\) are of different spaces")


@pytest.mark.slow
def test_a_hand_edited_task_file_does_not_survive_a_rebuild(tmp_path):
    import torch
    from dass.database.builder import build
    data = write_class_folder(tmp_path / "d")
    build(_build_cfg(tmp_path, data), "all")
    path = tmp_path / "out" / "t.pt"
    built = torch.load(path, weights_only=True)
    edited = torch.load(path, weights_only=True)
    edited["students"]["best_acc"] = torch.full_like(built["students"]["best_acc"], 99.0)
    edited["students"]["best_acc_seeds"] = torch.full_like(built["students"]["best_acc_seeds"], 99.0)
    torch.save(edited, path)
    build(_build_cfg(tmp_path, data), "all")   # nothing to train: the merge sees the edit and redoes the file
    again = torch.load(path, weights_only=True)
    assert torch.equal(again["students"]["best_acc"], built["students"]["best_acc"])


def test_npy_identity_hashes_the_files_read_not_the_rest_of_the_folder(tmp_path):
    from dass.data.arrays import ImageArrays, write_split
    from dass.data.registry import load_dataset
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        write_split(tmp_path, "a", split, ImageArrays(rng.integers(0, 255, (6, 8, 8, 3)).astype(np.uint8),
                                                      np.arange(6) % 3, 3, "a"))

    def ident():
        return hashing.dataset_hash(load_dataset(f"npy:{tmp_path / 'a'}", "", "train"))

    h0 = ident()
    (tmp_path / "a" / "README.md").write_text("notes")      # not read: same identity
    assert ident() == h0
    labels = np.load(tmp_path / "a" / "test_labels.npy")
    np.save(tmp_path / "a" / "test_labels.npy", labels[::-1].copy())   # read (class count): a new identity
    assert ident() != h0


def test_a_teachers_accuracy_recorded_on_data_since_changed_is_measured_here(made, tmp_path):
    from dass import config as cfgmod
    from dass.data.folder import load_image_folder
    from dass.pipeline import PipelineConfig
    from dass.pipeline.runner import recorded_data, recorded_teacher_accuracy
    from dass.teacher.checkpoint import load_teacher
    _, data, _ = made
    now = {s: hashing.dataset_hash(load_image_folder(data, s, TINY.image_size)) for s in ("train", "test")}
    cfg = cfgmod.load(PipelineConfig, None, [f"dataset=folder:{data}"])
    for recorded, expected in ((now, 50.0), ({"train": "0" * 64, "test": now["test"]}, None)):
        t = _teacher_file(made, tmp_path / str(expected), lambda d: d.update(data=recorded))
        assert recorded_teacher_accuracy(cfg, load_teacher(t, TINY)[2], recorded_data(t), now) == expected


@pytest.mark.slow
def test_a_build_split_by_split_keeps_the_other_splits_and_a_dropped_task_drops_out(tmp_path):
    from dass.database.builder import build
    from dass.database.format import load_db
    a, b = write_class_folder(tmp_path / "a"), write_class_folder(tmp_path / "b", seed=1)
    tasks = [{"dataset": f"folder:{a}", "split": "meta_train", "key": "ta"},
             {"dataset": f"folder:{b}", "split": "meta_test", "key": "tb"}]
    students = {"meta_train": 2, "meta_test": 2}
    for split in ("meta_train", "meta_test"):     # as script/build_database_ordered.sh does
        build(_build_cfg(tmp_path, a, tasks=tasks, students=students, splits=[split]), "all")
    db = load_db(tmp_path / "out")
    assert [d["task"]["key"] for d in db["meta_train"]] == ["ta"] and [d["task"]["key"] for d in db["meta_test"]] == ["tb"]
    build(_build_cfg(tmp_path, a, tasks=tasks[1:], students=students), "all")   # task ta dropped from the config
    db = load_db(tmp_path / "out")
    assert db["meta_train"] == [] and [d["task"]["key"] for d in db["meta_test"]] == ["tb"]
    assert (tmp_path / "out" / "ta.pt").is_file()   # left in place, not part of the database
