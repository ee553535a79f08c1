"""A run is what its inputs were; no silent wrong result, no traceback, from any input.

In process (the entry's ``run_main``, the one error boundary), on the tiny fixtures of
``test_bad_input``: run identity (a folder holding another run is refused before anything in it
changes), recursive ``_base_``, intermixed overrides, the umask, range checks at the edge, the
environment's errors (read-only or full disk, names too long, folders for files, undecodable text,
image bombs, huge array headers) as one ``error:`` line with exit code 2.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from assets.tiny_db import TINY, save_teacher, tiny_teacher_state, write_images, write_tiny_db
from core.test_bad_input import K, OTHER, STUDENT, make_files

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    f = make_files(root)
    # a second teacher of the same space and classes (other weights), and other data of the same
    # name and size under another root
    f["teacher_b"] = str(save_teacher(root / "teacher_b.pt", tiny_teacher_state(TINY, K, seed=7), TINY, K,
                                      "glyphs/good", 50.0))
    write_images(root / "data_b" / "glyphs", "good", K, n_train=10, n_test=5, size=8, seed=3)
    f["data_b"] = str(root / "data_b")
    # a database with meta_train and meta_valid tasks (meta-training needs both)
    write_tiny_db(root / "mt", tasks=(("dtd", "meta_train"), ("cub", "meta_valid")), n_students=4, num_classes=K)
    f["mt_db"] = str(root / "mt" / "db")
    return f


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DASS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def entry(module: str):
    """(main, parser) of ``python -m dass.<module>``."""
    import importlib
    mod = importlib.import_module(f"dass.{module}.__main__")  # every stage is a package
    if module == "evaluation":
        from dass.cli import make_parser
        return mod.main, make_parser("python -m dass.evaluation", "")
    if module == "data":
        return (lambda a: a.fn(a)), mod._parser()
    if module == "compat":
        return mod.main, mod.make_parser()
    return mod.main, mod._parser()


def run(capsys, module: str, *argv: str) -> tuple[int, str, str]:
    """Run the entry in process through its error boundary: (exit code, stdout, stderr)."""
    from dass.cli import run_main
    main, parser = entry(module)
    with pytest.raises(SystemExit) as e:
        run_main(main, list(argv), parser)
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


def refused(capsys, module: str, *argv: str, expect=()) -> str:
    """Exit 2 with one ``error:`` line (the last of stderr; log lines may precede it) naming ``expect``."""
    code, _, err = run(capsys, module, *argv)
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    assert "Traceback" not in err, err
    for text in expect:
        assert text in errors[0], (text, errors[0])
    return errors[0]


def tree(folder) -> dict:
    """Every file under ``folder`` with its bytes: what a refused run must leave untouched."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def kd(f, *extra, student=True):
    return ("kd", f"teacher={f['teacher']}", "dataset=glyphs/good", f"data_root={f['data']}", *(STUDENT if student else ()),
            "kd_recipe.epochs=1", "kd_recipe.batch_size=5", "kd_recipe.eval_batch_size=5", "progress=false",
            "device=cpu", *extra)


def teacher(f, *extra):
    return ("teacher", "dataset=glyphs/good", f"data_root={f['data']}", f"space={f['space']}",
            "teacher_recipe.epochs=1", "teacher_recipe.batch_size=5", "teacher_recipe.eval_batch_size=5", "progress=false", "device=cpu",
            *extra)


def search(f, *extra):
    return ("search", f"teacher={f['teacher']}", f"predictor={f['predictor']}", "pool_size=4", "progress=false",
            "device=cpu", *extra)


# ------------------------------------------------------------------------------------------ run identity

@pytest.mark.slow
def test_kd_rerun_with_another_teacher_is_refused_and_changes_nothing(files, capsys, tmp_path):
    """Item 1 and 2: the finished run is never reused for other inputs; the refused rerun writes
    nothing (config.yaml included); the default folder of the other run is another folder."""
    code, out, _ = run(capsys, *kd(files, f"runs_root={tmp_path}/R"))
    assert code == 0
    first = Path(json.loads(out.splitlines()[-1])["run_dir"])
    before = tree(first)
    assert "identity.json" in before and "config.yaml" in before
    refused(capsys, *kd(files, f"teacher={files['teacher_b']}", f"run_dir={first}"),
            expect=["holds another run", "teacher:"])
    refused(capsys, *kd(files, f"run_dir={first}", "kd_recipe.lr=0.2", "kd_recipe.epochs=2"),
            expect=["kd_recipe.lr: 0.05 -> 0.2", "kd_recipe.epochs: 1 -> 2"])
    refused(capsys, *kd(files, f"data_root={files['data_b']}", f"run_dir={first}"), expect=["data.train"])
    assert tree(first) == before
    # the same inputs resume (nothing to do); another teacher by default lands in another folder
    code, out, _ = run(capsys, *kd(files, f"runs_root={tmp_path}/R"))
    assert code == 0 and Path(json.loads(out.splitlines()[-1])["run_dir"]) == first
    code, out, _ = run(capsys, *kd(files, f"runs_root={tmp_path}/R", f"teacher={files['teacher_b']}"))
    second = Path(json.loads(out.splitlines()[-1])["run_dir"])
    assert code == 0 and second != first and second.parent == first.parent


def test_teacher_rerun_on_other_data_of_the_same_name_and_size_is_refused(files, capsys, tmp_path):
    code, out, _ = run(capsys, *teacher(files, f"run_dir={tmp_path}/T"))
    assert code == 0
    before = tree(tmp_path / "T")
    refused(capsys, *teacher(files, f"run_dir={tmp_path}/T", f"data_root={files['data_b']}"),
            expect=["holds another run", "data.train"])
    assert tree(tmp_path / "T") == before
    code, out, _ = run(capsys, *teacher(files, f"runs_root={tmp_path}/R", f"data_root={files['data_b']}"))
    assert code == 0 and Path(json.loads(out)["teacher"]).parent.name.startswith("glyphs-good-")


def test_meta_train_and_search_and_evaluate_refuse_another_runs_folder(files, capsys, tmp_path):
    mt = ("predictor", f"db={files['mt_db']}", f"run_dir={tmp_path}/M", "episodes=1", "progress=false",
          "device=cpu")
    assert run(capsys, *mt)[0] == 0
    before = tree(tmp_path / "M")
    refused(capsys, *mt, "n_query=3", expect=["n_query: 50 -> 3"])
    assert run(capsys, *mt, "episodes=2")[0] == 0  # more episodes: the same run, resumed
    assert tree(tmp_path / "M")["identity.json"] == before["identity.json"]
    assert run(capsys, *search(files, f"run_dir={tmp_path}/S"))[0] == 0
    before = tree(tmp_path / "S")
    refused(capsys, *search(files, f"run_dir={tmp_path}/S", "seed=5"), expect=["seed: 0 -> 5"])
    assert tree(tmp_path / "S") == before
    ev = ("evaluation", f"db={files['db']}", "plots=false", "progress=false", "methods=[macs]", "device=cpu")
    assert run(capsys, *ev, f"run_dir={tmp_path}/E")[0] == 0
    before = tree(tmp_path / "E")
    refused(capsys, *ev, f"run_dir={tmp_path}/E", "top_k=2", expect=["top_k: 5 -> 2"])
    assert tree(tmp_path / "E") == before
    # a folder with files but no identity is another run too
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.yaml").write_text("x: 1\n")
    refused(capsys, *search(files, f"run_dir={tmp_path}/old"), expect=["config.yaml", "no identity.json"])


def test_file_hashes_are_cached_by_path_size_and_mtime(tmp_path):
    from dass import hashing
    p = tmp_path / "a.bin"
    p.write_bytes(b"abc")
    h = hashing.file_hash(p)
    assert h == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    cache = json.loads((tmp_path / "cache" / "file_hashes.json").read_text())
    assert list(cache.values()) == [h]
    os.utime(p, ns=(1, 1))  # same bytes, another mtime: hashed again, same digest
    assert hashing.file_hash(p) == h and len(json.loads((tmp_path / "cache" / "file_hashes.json").read_text())) == 2


# ------------------------------------------------------------------------------------------ configs

def test_base_is_recursive_and_a_cycle_is_an_error(tmp_path, capsys):
    from dass import config as cfgmod
    from dass.kd import KDRunConfig
    (tmp_path / "parent.yaml").write_text(f"_base_: {REPO}/configs/kd/cpu.yaml\nseeds: [3]\n")
    (tmp_path / "child.yaml").write_text("_base_: parent.yaml\nkd_recipe: {lr: 0.1}\n")
    cfg = cfgmod.load(KDRunConfig, tmp_path / "child.yaml")
    # the grandparent's schedule, which differs from the dataclass defaults
    grand = yaml.safe_load((REPO / "configs/kd/cpu.yaml").read_text())["kd_recipe"]
    default = KDRunConfig().kd_recipe
    assert (grand["epochs"], grand["batch_size"]) != (default.epochs, default.batch_size)
    assert (cfg.kd_recipe.epochs, cfg.kd_recipe.batch_size, cfg.kd_recipe.lr, cfg.seeds) == (
        grand["epochs"], grand["batch_size"], 0.1, [3])
    (tmp_path / "a.yaml").write_text("_base_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\n")
    refused(capsys, "kd", "--config", str(tmp_path / "a.yaml"), expect=["loops back", "a.yaml"])


def test_overrides_may_follow_options(capsys):
    code, out, _ = run(capsys, "space", "--describe", "image_size=32", "name=x")
    assert code == 0 and json.loads(out)["image_size"] == 32 and json.loads(out)["name"] == "x"


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, mask):
    from dass.io import atomic_write_text
    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~mask


# ------------------------------------------------------------------------------------------ validation

@pytest.mark.parametrize("stage, override, text", [
    ("kd", "kd_recipe.std=.inf", "'kd_recipe.std' must be a finite number"),
    ("kd", "kd_recipe.mean=.nan", "'kd_recipe.mean' must be a finite number"),
    ("kd", "kd_recipe.temperature=.inf", "'kd_recipe.temperature' must be a finite number"),
    ("kd", "seeds=[1,1]", "seeds lists a seed twice"),
    ("kd", "seeds=[-1]", "must be a seed in [0, 2^63)"),
    ("kd", f"seeds=[{10 ** 22}]", "out of range"),
    ("search", "pool_size=1000000000000", "pool_size must lie in"),
    ("search", "budget.macs=.nan", "'budget.macs' must be a finite number"),
    ("search", "seed=-1", "must be a seed"),
    ("search", f"seed={10 ** 22}", "out of range"),
])
def test_values_out_of_range_fail_fast(files, capsys, tmp_path, stage, override, text):
    make = {"kd": kd, "search": search}[stage]
    refused(capsys, *make(files, f"run_dir={tmp_path}/K", override), expect=[text])
    assert not (tmp_path / "K").exists()


def test_datasets_need_two_classes_each_with_training_images(files, capsys, tmp_path):
    root = tmp_path / "d"
    write_images(root / "glyphs", "one", 1, n_train=6, n_test=3, size=8)
    refused(capsys, *teacher(files, f"data_root={root}", "dataset=glyphs/one", f"run_dir={tmp_path}/T"),
            expect=["1 class", "at least 2"])
    rng = np.random.default_rng(0)
    folder = root / "glyphs" / "testonly"
    folder.mkdir(parents=True)
    for split, labels in (("train", [0, 1, 0, 1]), ("test", [0, 1, 2, 2])):
        np.save(folder / f"{split}_images.npy", rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8))
        np.save(folder / f"{split}_labels.npy", np.array(labels))
    refused(capsys, *teacher(files, f"data_root={root}", "dataset=glyphs/testonly", f"run_dir={tmp_path}/T"),
            expect=["class 2 has no training image"])
    assert not (tmp_path / "T").exists()


@pytest.mark.parametrize("override, text", [
    ("image_size=-16", "image_size must lie in"), ("in_channels=0", "in_channels"), ("num_classes=-3", "num_classes"),
])
def test_space_sizes_are_checked(capsys, override, text):
    refused(capsys, "space", "--describe", override, expect=[text])


@pytest.mark.parametrize("acc, text", [(float("nan"), "nan"), (5000.0, "5000.0"), (-1.0, "-1.0")])
def test_search_refuses_a_teacher_accuracy_outside_0_100(files, capsys, tmp_path, acc, text):
    ckpt = torch.load(files["teacher"], weights_only=True)
    torch.save({**ckpt, "metrics": {"best_acc": acc}}, tmp_path / "t.pt")
    refused(capsys, *search(files, f"teacher={tmp_path / 't.pt'}", f"run_dir={tmp_path}/S"),
            expect=["metrics.best_acc", text, "[0, 100]"])
    assert not (tmp_path / "S").exists()


def test_sampling_fails_fast_when_the_space_cannot_supply_the_pool():
    from dass.errors import DassError
    from dass.space import num_architectures, sample_unique
    n = num_architectures(TINY)
    with pytest.raises(DassError, match=f"holds {n} architectures"):
        sample_unique(TINY, n + 1, np.random.default_rng(0))
    with pytest.raises(DassError, match="could only find 0"):  # nothing accepted: stops at the first check
        sample_unique(TINY, 5, np.random.default_rng(0), accept=lambda a: False, max_tries=10 ** 15)


@pytest.mark.parametrize("override, text", [("outer_lr=.nan", "'outer_lr' must be a finite number"),
                                            ("device=meta", "device 'meta'")])
def test_meta_train_bad_values(files, capsys, tmp_path, override, text):
    refused(capsys, "predictor", f"db={files['mt_db']}", f"run_dir={tmp_path}/M", "episodes=1", "progress=false",
            override, expect=[text])
    assert not (tmp_path / "M").exists()


# ------------------------------------------------------------------------------------------ databases

def test_evaluate_refuses_a_database_missing_a_listed_task_file(files, capsys, tmp_path):
    import shutil
    db = tmp_path / "db"
    shutil.copytree(files["db"], db)
    (db / "manifest.json").write_text(json.dumps({"tasks": [{"key": "dtd", "file": "dtd.pt", "students": 4},
                                                            {"key": "cub", "file": "cub.pt", "students": 4}]}))
    refused(capsys, "evaluation", f"db={db}", f"run_dir={tmp_path}/E", "plots=false", "progress=false",
            expect=["manifest.json", "cub.pt", "missing"])
    assert not (tmp_path / "E").exists()


@pytest.mark.parametrize("text, expect", [("{not json", "not valid JSON"), ("[1, 2]", "expected a mapping"),
                                          ('{"tasks": [{"file": "dtd.pt"}]}', "tasks[0] must be a mapping")])
def test_database_validate_with_an_edited_manifest(files, capsys, tmp_path, text, expect):
    import shutil
    db = tmp_path / "db"
    shutil.copytree(files["db"], db)
    (db / "manifest.json").write_text(text)
    refused(capsys, "database", "--validate", str(db), expect=["manifest.json", expect])


# ------------------------------------------------------------------------------------------ environment

def test_read_only_and_full_disks_are_one_error(files, capsys, tmp_path, monkeypatch):
    import dass.io
    for code, text in ((errno.EROFS, "read-only file system"), (errno.ENOSPC, "disk full")):
        def fail(*a, _code=code, **k):
            raise OSError(_code, os.strerror(_code), str(tmp_path / "S" / "x.tmp"))
        monkeypatch.setattr(dass.io.os, "fsync", fail)
        refused(capsys, *search(files, f"run_dir={tmp_path}/S"), expect=[text, "x.tmp"])
        monkeypatch.undo()
        monkeypatch.setenv("DASS_CACHE_DIR", str(tmp_path / "cache"))
        assert not [p for p in (tmp_path / "S").glob("*") if p.name.endswith(".tmp")]


def test_names_too_long_and_folders_for_files(files, capsys, tmp_path):
    long = "x" * 300
    refused(capsys, *search(files, f"run_dir={tmp_path}/{long}"), expect=["File name too long"])
    refused(capsys, *kd(files, f"student_file={tmp_path}/{long}.json", student=False),
            expect=["File name too long"])
    (tmp_path / "folder").mkdir()
    refused(capsys, "compat", "teacher", "--src", files["teacher"], "--space", files["space"],
            "--out", str(tmp_path / "folder"), expect=["folder", "Is a directory"])


def test_undecodable_text_is_one_error(files, capsys, tmp_path):
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    refused(capsys, "space", "--config", str(tmp_path / "latin1.yaml"), expect=["latin1.yaml", "UTF-8"])
    (tmp_path / "top.json").write_bytes(bytes(range(256)))
    refused(capsys, *kd(files, f"student_file={tmp_path}/top.json", f"run_dir={tmp_path}/K", student=False),
            expect=["top.json", "UTF-8"])


def test_huge_labels_headers_and_images_are_one_error(files, capsys, tmp_path):
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    big = root / "glyphs" / "big"
    big.mkdir(parents=True)
    for split in ("train", "test"):
        np.save(big / f"{split}_images.npy", images)
        np.save(big / f"{split}_labels.npy", np.array([0, 1, 0, 10 ** 10]))
    refused(capsys, *teacher(files, f"data_root={root}", "dataset=glyphs/big", f"run_dir={tmp_path}/T"),
            expect=["labels.npy", "label 10000000000"])
    hdr = root / "glyphs" / "header"
    hdr.mkdir(parents=True)
    for split in ("train", "test"):
        np.save(hdr / f"{split}_labels.npy", np.array([0, 1, 0, 1]))
        header = {"descr": "|u1", "fortran_order": False, "shape": (10 ** 9, 64, 64, 3)}
        with open(hdr / f"{split}_images.npy", "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            fh.write(images.tobytes())
    refused(capsys, *teacher(files, f"data_root={root}", "dataset=glyphs/header", f"run_dir={tmp_path}/T"),
            expect=["train_images.npy"])
    from PIL import Image
    for cls in ("a", "b"):
        (tmp_path / "bomb" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "bomb" / cls / "ok.png")
    # a PNG whose header claims 30000 x 30000 pixels (PIL's bomb check refuses it before decoding)
    png = (tmp_path / "bomb" / "a" / "ok.png").read_bytes()
    ihdr = png.index(b"IHDR")
    import zlib
    body = b"IHDR" + (30000).to_bytes(4, "big") * 2 + png[ihdr + 12:ihdr + 17]
    bomb = png[:ihdr] + body + zlib.crc32(body).to_bytes(4, "big") + png[ihdr + 21:]
    (tmp_path / "bomb" / "a" / "bomb.png").write_bytes(bomb)
    refused(capsys, *teacher(files, f"dataset=folder:{tmp_path}/bomb", f"run_dir={tmp_path}/T"),
            expect=["bomb.png", "too large"])
    assert not (tmp_path / "T").exists()


# ------------------------------------------------------------------------------------------ messages

def test_unreadable_checkpoint_message_ends_on_a_sentence(tmp_path):
    from dass.errors import DassError
    from dass.io import safe_torch_load
    (tmp_path / "x.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(DassError) as e:
        safe_torch_load(tmp_path / "x.pt")
    msg = str(e.value)
    assert msg.endswith(")") and "x.pt: not a readable checkpoint (" in msg


def test_kd_names_the_teachers_space_when_the_student_does_not_fit(files, capsys, tmp_path):
    refused(capsys, *kd(files, f"teacher={files['teacher_other']}", f"run_dir={tmp_path}/K"),
            expect=["not in space 'other' of teacher", "teacher_other.pt"])


def test_a_zip_extraction_would_refuse_is_never_recorded_as_verified(tmp_path):
    from dass.data.file_checks import validate_file
    from dass.errors import DassError
    with zipfile.ZipFile(tmp_path / "preprocessed.zip", "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DassError, match="extraction would refuse it"):
        validate_file(tmp_path / "preprocessed.zip")
