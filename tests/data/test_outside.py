"""The probe datasets outside the built-in glyph family (configs/data/outside.yaml), their family
folder in the registry, the database config of the check and script/outside_check.sh."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dass.config import load
from dass.data import glyph_config, glyph_fonts, glyphs
from dass.data.registry import class_identities, dataset_info, list_datasets, load_dataset
from dass.database.config import DatabaseConfig
from dass.errors import DassError

ROOT = Path(__file__).resolve().parents[2]
FAMILY = ROOT / "configs" / "data" / "glyphs.yaml"
OUTSIDE = ROOT / "configs" / "data" / "outside.yaml"


def _tiny(config, out_root, only, **overrides):
    items = [f"out_root={out_root}", f"only=[{','.join(only)}]", "train_per_class=2", "test_per_class=1"]
    return glyph_config.load_config(config, items + [f"{k}={v}" for k, v in overrides.items()])


def test_outside_config_loads_apart_from_the_family():
    family, outside = glyph_config.load_config(FAMILY), glyph_config.load_config(OUTSIDE)
    assert family.family == "glyphs" and outside.family == "outside"
    names = [d.name for d in outside.datasets]
    assert names == ["script_capitals", "fraktur_capitals", "cyrillic_cursive"]
    assert not set(names) & {d.name for d in family.datasets}
    # sizes and presets come from the family's file (_base_)
    assert (outside.train_per_class, outside.test_per_class, outside.image_size) == (60, 50, 32)
    assert all(outside.variation_of(d) == family.presets["hard"] for d in outside.datasets)
    # only STIX faces, never the family's DejaVu
    fonts = {Path(f).name for d in outside.datasets for f in glyph_fonts.resolve_fonts(d.fonts, d.name)}
    assert fonts and all(f.startswith("STIXGeneral") for f in fonts)
    # script and Fraktur capitals are code points no family dataset lists
    family_cps = {cp for d in family.datasets for cp in glyph_config.parse_code_points(d.code_points)}
    for d in outside.datasets[:2]:
        assert not set(glyph_config.parse_code_points(d.code_points)) & family_cps, d.name


def test_outside_classes_are_whole_alphabets():
    """Every letter renders: A-Z in script and in Fraktur (the 8 and 5 capitals that the Mathematical
    Alphanumeric block leaves out come from Letterlike Symbols), the 32 Cyrillic lower-case letters."""
    specs = {d.name: d for d in glyph_config.load_config(OUTSIDE).datasets}
    letters = {}
    for name, spec in specs.items():
        cps = [c.code_point for c in glyph_fonts.resolve_classes(spec)]
        letters[name] = sorted(cps)
    # the Unicode names give the letter: "MATHEMATICAL SCRIPT CAPITAL A", "SCRIPT CAPITAL B", ...
    import unicodedata
    for name, word in (("script_capitals", "SCRIPT CAPITAL"), ("fraktur_capitals", ("FRAKTUR CAPITAL",
                                                                                     "BLACK-LETTER CAPITAL"))):
        words = (word,) if isinstance(word, str) else word
        got = sorted(unicodedata.name(chr(cp)).rsplit(" ", 1)[1] for cp in letters[name])
        assert got == [chr(c) for c in range(ord("A"), ord("Z") + 1)], name
        assert all(any(w in unicodedata.name(chr(cp)) for w in words) for cp in letters[name])
    assert letters["cyrillic_cursive"] == list(range(0x0430, 0x0450))


def test_outside_family_folder_and_names(tmp_path):
    """outside/<name> lives in <root>/outside/, glyphs/<name> in <root>/glyphs/; the family folder
    changes nothing in the bytes (the rendering seed depends on the dataset name only)."""
    out = glyphs.generate_family(_tiny(OUTSIDE, tmp_path, ["fraktur_capitals"]), progress=False)
    assert out["out_root"] == str(tmp_path / "outside") and out["classes"] == {"fraktur_capitals": 26}
    arrays = load_dataset("outside/fraktur_capitals", tmp_path, "train")
    assert arrays.name == "outside/fraktur_capitals" and arrays.num_classes == 26 and len(arrays) == 52
    assert list_datasets(tmp_path) == ["outside/fraktur_capitals"]
    assert dataset_info("outside/fraktur_capitals", tmp_path)["test"] == 26
    with pytest.raises(DassError, match="glyphs"):
        load_dataset("glyphs/fraktur_capitals", tmp_path, "train")
    meta = json.loads((tmp_path / "outside" / "fraktur_capitals" / "meta.json").read_text())
    assert meta["family"] == "outside"
    # class identity is the code point, as for the family (U+1D504 MATHEMATICAL FRAKTUR CAPITAL A first)
    assert class_identities("outside/fraktur_capitals", tmp_path)[0] == ("code_point", "U+1D504")
    same = glyphs.generate_family(_tiny(OUTSIDE, tmp_path / "g", ["fraktur_capitals"], family="glyphs"),
                                  progress=False)
    assert same["out_root"] == str(tmp_path / "g" / "glyphs")
    for split in ("train", "test"):
        a = np.load(tmp_path / "outside" / "fraktur_capitals" / f"{split}_images.npy")
        b = np.load(tmp_path / "g" / "glyphs" / "fraktur_capitals" / f"{split}_images.npy")
        assert np.array_equal(a, b)


def test_family_must_be_a_folder_the_registry_reads(tmp_path):
    with pytest.raises(DassError, match=r"family must be one of \['glyphs', 'outside'\]"):
        _tiny(OUTSIDE, tmp_path, ["fraktur_capitals"], family="mine")


def test_check_database_config_is_cpu_recipe_on_outside_tasks():
    cpu = load(DatabaseConfig, ROOT / "configs" / "database" / "cpu.yaml")
    cfg = load(DatabaseConfig, ROOT / "configs" / "database" / "outside.yaml")
    assert [(t.dataset, t.split) for t in cfg.all_tasks] == [
        ("outside/script_capitals", "meta_test"), ("outside/fraktur_capitals", "meta_test"),
        ("outside/cyrillic_cursive", "meta_test")]
    assert cfg.teacher_recipe.epochs == 60 and cfg.kd_recipe.epochs == 10 and cfg.kd_recipe.temperature == 2.0
    assert cfg.kd_recipe.alpha == 0.5 and cfg.students["meta_test"] == 50 and cfg.seeds("meta_test") == [1, 2]
    assert (cfg.lockstep, cfg.workers, cfg.threads_per_worker) == (4, 2, 1)
    for key in ("kd_recipe", "teacher_recipe", "space", "remap", "sample_seed", "pool_factor", "teacher_seed"):
        assert getattr(cfg, key) == getattr(cpu, key), key
    # nothing of the lead's build: its own folders, teachers trained into <work_dir>/teachers
    assert cfg.out.startswith("runs/outside_check/") and cfg.work_dir.startswith("runs/outside_check/")
    assert cfg.teachers_dir == ""


def _check(*args):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    return subprocess.run(["bash", str(ROOT / "script" / "outside_check.sh"), "--dry-run", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_check_script_resolves_its_commands():
    r = _check()
    assert r.returncode == 0, r.stderr
    gen, build, validate = (shlex.split(line) for line in r.stdout.strip().splitlines())  # shell-quoted
    assert gen[-4:] == ["--config", "configs/data/outside.yaml", "out_root=data",
                        "only=[script_capitals,fraktur_capitals,cyrillic_cursive]"]
    assert build[1:] == ["-m", "dass.database", "--config", "configs/database/outside.yaml"]
    assert validate[-2:] == ["--validate", "runs/outside_check/db"]
    # a user's dataset: nothing to generate; the overrides reach the build and the validation
    task = "tasks=[{dataset: folder:/x, split: meta_test}]"
    r = _check(task, "out=/tmp/o", "data_root=/d")
    assert r.returncode == 0, r.stderr
    build, validate = (shlex.split(line) for line in r.stdout.strip().splitlines())
    assert build[-3:] == [task, "out=/tmp/o", "data_root=/d"] and validate[-1] == "/tmp/o"


@pytest.mark.parametrize("args, message", [
    (["no_such_key=1"], "unknown key 'no_such_key'"),
    (["tasks=[{dataset: outside/nope, split: meta_test}]"], "'outside/nope' is not in configs/data/outside.yaml"),
])
def test_check_script_refuses_bad_input_in_one_line(args, message):
    r = _check(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stderr.count("\n") == 1


# ------------------------------------------------------------------ download/make_sklearn_digits.py

def _digits_script():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_sklearn_digits", ROOT / "download" / "make_sklearn_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_digits_maker_splits_and_scales_a_small_fake_input(tmp_path):
    mod = _digits_script()
    # 3 classes x 5 images of 2 x 2; image i of class c is filled with level (i * 4) (0, 4, 8, 12, 16)
    labels = np.repeat([0, 1, 2], 5)
    images = np.stack([np.full((2, 2), 4 * (i % 5), dtype=np.float64) for i in range(15)])
    images[:, 0, 1] = labels          # the class in one pixel, to check that images keep their label
    assert mod.write_digits(tmp_path / "d", images, labels, test_per_class=2, seed=3) == {"train": 9, "test": 6}
    train, test = (load_dataset(f"npy:{tmp_path / 'd'}", None, s) for s in ("train", "test"))
    assert train.num_classes == test.num_classes == 3
    assert np.bincount(test.labels).tolist() == [2, 2, 2] and np.bincount(train.labels).tolist() == [3, 3, 3]
    both = np.concatenate([train.images, test.images])
    # grey levels 0..16 -> 0..255: 4 -> 63.75 -> 64, 8 -> 127.5 -> 128, 16 -> 255; grey in all 3 channels
    assert sorted(set(both[:, 0, 0, 0].tolist())) == [0, 64, 128, 191, 255]
    assert (both[..., 0] == both[..., 2]).all()
    lab = np.concatenate([train.labels, test.labels])
    assert (np.round(both[:, 0, 1, 0].astype(float) * 16 / 255) == lab).all()
    # every image exactly once across the two splits
    assert sorted(map(bytes, both[..., 0].reshape(15, -1))) == sorted(
        map(bytes, np.round(images * 255 / 16).astype(np.uint8).reshape(15, -1)))


@pytest.mark.parametrize("images, labels, message", [
    (np.full((4, 2, 2), 17.0), [0, 0, 1, 1], "grey levels must lie in 0..16"),
    (np.zeros((4, 2, 2)), [0, 0, 2, 2], "labels must be 0..K-1"),
    (np.zeros((4, 2, 2)), [0, 0, 0, 1], "more than test_per_class=1 images"),
])
def test_digits_maker_refuses_bad_arrays(tmp_path, images, labels, message):
    with pytest.raises(DassError, match=message):
        _digits_script().write_digits(tmp_path / "d", images, np.array(labels), test_per_class=1)


def test_digits_maker_without_scikit_learn_is_one_error_line(tmp_path, monkeypatch, capsys):
    mod = _digits_script()
    monkeypatch.setitem(sys.modules, "sklearn", None)          # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(SystemExit) as e:
        mod.run_main(mod.main, ["--out", str(tmp_path / "d")], mod.build_parser())
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: scikit-learn is not installed") and err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_digits_maker_on_the_real_digits(tmp_path):
    pytest.importorskip("sklearn")
    mod = _digits_script()
    with pytest.raises(SystemExit) as e:
        mod.run_main(mod.main, ["--out", str(tmp_path / "d")], mod.build_parser())
    assert e.value.code == 0
    train, test = (load_dataset(f"npy:{tmp_path / 'd'}", None, s) for s in ("train", "test"))
    # load_digits: 1,797 images, 10 classes of 174-183 each
    assert (len(train), len(test)) == (1797 - 500, 500) and train.image_size == (8, 8)
    assert np.bincount(test.labels).tolist() == [50] * 10 and np.bincount(train.labels).min() == 174 - 50
