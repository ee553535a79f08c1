"""The built-in glyph family: config checks, font coverage, determinism, resumability, difficulty."""
import json
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import ImageFont

from dass.data import glyph_config, glyph_fonts, glyphs
from dass.data.registry import load_dataset
from dass.errors import DassError

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "data" / "glyphs.yaml"


def _config(out_root, only, **overrides):
    items = [f"out_root={out_root}", f"only=[{','.join(only)}]", "train_per_class=3", "test_per_class=2"]
    items += [f"{k}={v}" for k, v in overrides.items()]
    return glyph_config.load_config(SHIPPED, items)


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_code_point_syntax():
    assert glyph_config.parse_code_points(["A-C", "0x3B1", 0x41, "U+0394-U+0395", "-"]) == \
        [65, 66, 67, 0x3B1, 0x394, 0x395, 45]
    with pytest.raises(ValueError, match="'AB' is not a code point"):
        glyph_config.parse_code_points(["AB"])
    with pytest.raises(ValueError, match="bad code point range"):
        glyph_config.parse_code_points(["0x50-0x41"])


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    only = ["hebrew", "ogham"]
    a = glyphs.generate_family(_config(tmp_path / "a", only), progress=False)
    glyphs.generate_family(_config(tmp_path / "b", only, workers=2), progress=False)
    glyphs.generate_family(_config(tmp_path / "c", only, seed=1), progress=False)
    assert a["generated"] == only
    fa, fb, fc = (_files(tmp_path / d / "glyphs") for d in "abc")
    assert len(fa) == 2 * 5 and fa == fb
    for name in only:
        assert fa[f"{name}/train_images.npy"] != fc[f"{name}/train_images.npy"]
        assert fa[f"{name}/train_labels.npy"] == fc[f"{name}/train_labels.npy"]


def test_output_layout_and_meta(tmp_path):
    cfg = _config(tmp_path, ["latin"])
    glyphs.generate_family(cfg, progress=False)
    train = load_dataset("glyphs/latin", tmp_path, "train")
    test = load_dataset("glyphs/latin", tmp_path, "test")
    # latin lists "A-Z" then "0-9": 36 classes, class-major order
    assert train.num_classes == 36 and train.images.shape == (36 * 3, 32, 32, 3)
    assert train.labels.tolist() == [c for c in range(36) for _ in range(3)]
    assert len(test) == 36 * 2
    meta = json.loads((tmp_path / "glyphs" / "latin" / "meta.json").read_text())
    assert [c["code_point"] for c in meta["classes"][:2]] == ["U+0041", "U+0042"]
    assert meta["classes"][26]["char"] == "0" and meta["seed"] == 0
    assert meta["config"]["variation"]["rotation"] == 5.0            # the 'easy' preset, resolved
    # every image shows something: the glyph differs from its background
    assert (train.images.reshape(len(train), -1).std(axis=1) > 5).all()


def test_resumable_skip_and_regenerate_on_change(tmp_path):
    cfg = _config(tmp_path, ["ogham"])
    glyphs.generate_family(cfg, progress=False)
    target = tmp_path / "glyphs" / "ogham" / "train_images.npy"
    stamp = target.stat().st_mtime_ns
    again = glyphs.generate_family(cfg, progress=False)
    assert again["skipped"] == ["ogham"] and again["generated"] == []
    assert target.stat().st_mtime_ns == stamp
    changed = glyphs.generate_family(_config(tmp_path, ["ogham"], test_per_class=1), progress=False)
    assert changed["generated"] == ["ogham"]
    assert len(load_dataset("glyphs/ogham", tmp_path, "test")) == 28


def _notdef_free_ink(font_path: str, code_point: int) -> bool:
    """Independent of the generator: PIL mask has ink and differs from the font's .notdef mask."""
    font = ImageFont.truetype(font_path, 40, layout_engine=ImageFont.Layout.BASIC)
    mask = np.asarray(font.getmask(chr(code_point)))
    notdef = np.asarray(font.getmask(chr(0x10FFFD)))
    return (mask > 127).sum() > 0 and not (mask.shape == notdef.shape and np.array_equal(mask, notdef))


@pytest.mark.slow
def test_shipped_family_sizes_and_font_coverage():
    cfg = glyph_config.load_config(SHIPPED)
    assert len(cfg.datasets) >= 16
    cmaps: dict[str, set] = {}
    rng = np.random.default_rng(0)
    for spec in cfg.datasets:
        classes = glyph_fonts.resolve_classes(spec)
        assert len(classes) >= 20, spec.name
        assert len({c.code_point for c in classes}) == len(classes)
        assert all("LastResort" not in f for c in classes for f in c.fonts)
        for c in classes:
            for f in c.fonts:
                if f not in cmaps:
                    with TTFont(f, lazy=True) as t:
                        cmaps[f] = set(t.getBestCmap())
                assert c.code_point in cmaps[f], (spec.name, hex(c.code_point), f)
            # one font per class, picked at random, rendered for real
            f = c.fonts[int(rng.integers(len(c.fonts)))]
            assert _notdef_free_ink(f, c.code_point), (spec.name, hex(c.code_point), f)


def _ink_features(images: np.ndarray) -> np.ndarray:
    """Colour/polarity-free features: distance of each pixel from the border's median colour."""
    x = images.astype(np.float32) / 255.0
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    f = np.abs(x - np.median(border, axis=1)[:, None, None]).sum(-1).reshape(len(x), -1)
    f -= f.mean(axis=1, keepdims=True)
    return f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-6)


def _nearest_centroid_accuracy(train, test) -> float:
    xtr, xte = _ink_features(train.images), _ink_features(test.images)
    centroids = np.stack([xtr[train.labels == c].mean(0) for c in range(train.num_classes)])
    return float(((xte @ centroids.T).argmax(1) == test.labels).mean())


@pytest.mark.slow
def test_members_differ_in_difficulty(tmp_path):
    """Same classifier, same class count: the 'easy' latin set is far easier than a 'very_hard' one."""
    cfg = _config(tmp_path, ["latin", "geometric_shapes"], train_per_class=20, test_per_class=10)
    for spec in cfg.selected():
        spec.max_classes = 20
    glyphs.generate_family(cfg, progress=False)
    acc = {n: _nearest_centroid_accuracy(load_dataset(f"glyphs/{n}", tmp_path, "train"),
                                         load_dataset(f"glyphs/{n}", tmp_path, "test"))
           for n in ("latin", "geometric_shapes")}
    assert acc["latin"] > 0.5, acc                    # chance is 0.05
    assert acc["geometric_shapes"] < 0.2, acc
    assert acc["latin"] - acc["geometric_shapes"] > 0.35, acc


@pytest.mark.parametrize("yaml_text, message", [
    ("datasets: [{name: a, fonts: ['{mpl}/DejaVuSans.ttf'], code_points: [A-Z], colour: 1}]", r"unknown key 'datasets\[0\]\.colour'"),
    ("datasets: [{name: a, fonts: ['{mpl}/DejaVuSans.ttf'], code_points: [AB]}]", "'AB' is not a code point"),
    ("datasets: [{name: a, fonts: ['{mpl}/DejaVuSans.ttf'], code_points: [A-Z], variation: nope}]", "unknown variation preset 'nope'"),
    ("datasets: [{name: A b, fonts: ['{mpl}/DejaVuSans.ttf'], code_points: [A-Z]}]", "dataset name 'A b'"),
    ("presets: {p: {rotation: 500}}\ndatasets: []", r"variation\.rotation must lie in"),
    ("datasets: [{name: a, fonts: ['{mpl}/DejaVuSans.ttf'], code_points: [A-Z], variation: {rotaton: 5}}]",
     r"dataset 'a': unknown key 'variation\.rotaton'"),
    ("datasets: []", "no glyph datasets defined"),
])
def test_bad_config_is_one_dass_error_naming_the_file(tmp_path, yaml_text, message):
    f = tmp_path / "g.yaml"
    f.write_text(yaml_text)
    with pytest.raises(DassError, match=message) as e:
        glyph_config.load_config(f)
    assert "g.yaml" in str(e.value)


def test_font_pattern_matching_nothing(tmp_path):
    f = tmp_path / "g.yaml"
    f.write_text("datasets: [{name: a, fonts: ['{mpl}/NoSuchFont*.ttf'], code_points: [A-Z]}]")
    with pytest.raises(DassError, match=r"font '\{mpl\}/NoSuchFont\*\.ttf' matches no file"):
        glyphs.generate_family(glyph_config.load_config(f, [f"out_root={tmp_path}"]), progress=False)
