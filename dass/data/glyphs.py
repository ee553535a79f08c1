"""The built-in offline dataset family "glyphs": one dataset per writing system or symbol block.

Each class is one Unicode code point; each image renders it with PIL from a font file that covers
it, with per-image variation (font, size, rotation, shear, translation, stroke width, ink dropout,
blur, pixel noise, foreground/background colours and contrast, background texture, distractor
strokes). How strong the variation is is set per dataset (``configs/data/glyphs.yaml``), so the
members differ clearly in difficulty.

Classes of a dataset: its code points in the listed order, keeping one only when at least one of
the dataset's fonts maps it in its cmap AND renders it with ink that differs from the font's
.notdef (tofu) glyph; a code point whose ink (cropped) equals an earlier class's is dropped
(indistinguishable); at most ``max_classes`` are kept. Each image picks uniformly among the fonts
that passed for its class.

Output, per dataset ``<out_root>/<family>/<name>/`` (``family`` is ``glyphs`` for the built-in family,
``outside`` for the probe sets of ``configs/data/outside.yaml``; the registry loads it as
``<family>/<name>``): ``{train,test}_images.npy`` (uint8,
N x S x S x 3, S = ``image_size``, class-major order), ``{train,test}_labels.npy`` (int64) and
``meta.json`` (classes as code points, seed, resolved config, config hash), written last: a
dataset whose ``meta.json`` holds the same config hash is skipped (resumable).

Determinism: image i of class c (code point) in split s of dataset d is drawn with
``np.random.default_rng([seed, crc32(d), s, c, i])`` (s = 0 train, 1 test); nothing uses a global
RNG, so generating twice (any number of workers) gives identical bytes.

Rendering: glyphs are drawn at ``render_scale`` x the output size and box-downsampled. Font paths
are files or globs; ``{mpl}`` expands to matplotlib's bundled font folder (DejaVu, STIX, ...), so
no system font is needed.
"""
from __future__ import annotations

import functools
import glob
import json
import math
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from .. import config as cfgmod
from ..errors import DassError
from ..hashing import json_sha256
from ..io import atomic_write_json
from .arrays import ImageArrays, write_split

GENERATOR_VERSION = 1
MPL_TOKEN = "{mpl}"
CHECK_EM = 48              # font size (px) of the coverage / ink / duplicate check
MIN_INK_PIXELS = 4         # pixels > 50% ink the reference rendering must have
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_NOTDEF_PROBE = 0x10FFFD   # a private-use code point no bundled font maps: renders as .notdef
# Folders under a data root that hold glyph datasets; dataset '<family>/<name>' is read from
# '<root>/<family>/<name>/' (dass/data/registry.py registers one name pattern per family).
FAMILIES = ("glyphs", "outside")


# ---------------------------------------------------------------------------- configuration

def _check_range(where: str, pair, lo: float, hi: float) -> None:
    a, b = pair
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{where} must be a range [a, b] with {lo} <= a <= b <= {hi}, got {list(pair)}")


@dataclass
class Variation:
    """Per-image variation of one dataset. Fractions refer to the canvas side unless stated."""

    size: tuple[float, float] = (0.55, 0.75)      # font size (em) range, fraction of the side
    rotation: float = 0.0                          # max |rotation|, degrees
    shear: float = 0.0                             # max |horizontal shear| (x += shear * y)
    translate: float = 0.04                        # max |shift| of the glyph centre per axis
    stroke: tuple[float, float] = (0.0, 0.0)       # extra stroke width range, fraction of the em
    dropout: float = 0.0                           # share of the ink knocked out in blobs, 0..1
    blur: tuple[float, float] = (0.0, 0.0)         # Gaussian blur radius range, output pixels
    noise: float = 0.0                             # std of Gaussian pixel noise, 0..255 units
    contrast: tuple[float, float] = (0.6, 1.0)     # |mean(fg) - mean(bg)| range, 0..1
    saturation: float = 0.3                        # colourfulness of fg/bg (0 = grey)
    texture: float = 0.0                           # amplitude of a smooth background texture, 0..1
    clutter: int = 0                               # max number of distractor strokes

    def __post_init__(self):
        _check_range("variation.size", self.size, 0.05, 1.5)
        _check_range("variation.stroke", self.stroke, 0.0, 0.3)
        _check_range("variation.blur", self.blur, 0.0, 5.0)
        _check_range("variation.contrast", self.contrast, 0.0, 1.0)
        for key, lo, hi in (("rotation", 0, 180), ("shear", 0, 2), ("translate", 0, 0.5),
                            ("dropout", 0, 0.9), ("noise", 0, 128), ("saturation", 0, 1),
                            ("texture", 0, 1), ("clutter", 0, 50)):
            if not lo <= getattr(self, key) <= hi:
                raise ValueError(f"variation.{key} must lie in [{lo}, {hi}], got {getattr(self, key)}")


@dataclass
class GlyphSet:
    """One dataset of the family."""

    name: str                                       # folder name: lower case, digits, '_'
    fonts: list[str]                                # font files or globs ({mpl} = matplotlib fonts)
    code_points: list[Union[int, str]]              # 65, "0x41", "U+0041", "A", "0x0391-0x03A9"
    # a Variation mapping or a preset's name (a mapping that is not a valid Variation arrives as a
    # dict and is re-read in __post_init__ so the error names the bad key)
    variation: Union[Variation, str, dict] = field(default_factory=Variation)  # a Variation mapping, or a preset's name
    max_classes: int = 100  # most classes kept (code points beyond are dropped)
    train_per_class: int | None = None              # None: the family default
    test_per_class: int | None = None  # None: the family default

    def __post_init__(self):
        if not _NAME_RE.match(self.name):
            raise ValueError(f"dataset name '{self.name}' must match {_NAME_RE.pattern}")
        if not self.fonts:
            raise ValueError(f"dataset '{self.name}': fonts is empty")
        if not 2 <= self.max_classes <= 100_000:
            raise ValueError(f"dataset '{self.name}': max_classes must lie in [2, 100000]")
        for k in ("train_per_class", "test_per_class"):
            if getattr(self, k) is not None and not 1 <= getattr(self, k) <= 1_000_000:
                raise ValueError(f"dataset '{self.name}': {k} must lie in [1, 10^6]")
        parse_code_points(self.code_points, self.name)
        if isinstance(self.variation, dict):
            try:
                self.variation = cfgmod.from_dict(Variation, self.variation, where=f"dataset '{self.name}'",
                                                  prefix="variation.")
            except DassError as e:
                raise ValueError(str(e)) from None


@dataclass
class GlyphsConfig:
    """The family: defaults, difficulty presets and the datasets."""

    out_root: str = "data"                          # datasets go to <out_root>/<family>/<name>/
    family: str = "glyphs"  # folder under out_root and name prefix of the datasets: one of FAMILIES
    seed: int = 0  # seed of the rendering
    image_size: int = 32  # side of the stored images, pixels
    render_scale: int = 2                           # supersampling factor of the rendering
    train_per_class: int = 60  # training images per class (unless a dataset sets its own)
    test_per_class: int = 20  # test images per class (unless a dataset sets its own)
    workers: int = 1                                # processes rendering in parallel
    only: list[str] = field(default_factory=list)   # generate only these datasets (empty: all)
    presets: dict[str, Variation] = field(default_factory=dict)  # named variations that datasets may refer to
    datasets: list[GlyphSet] = field(default_factory=list)  # the datasets of the family

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {list(FAMILIES)} (the folders the dataset registry "
                             f"reads), got '{self.family}'")
        if not (8 <= self.image_size <= 1024 and 1 <= self.render_scale <= 16 and 1 <= self.workers <= 256):
            raise ValueError("image_size must lie in [8, 1024], render_scale in [1, 16] and workers in [1, 256]")
        if not (1 <= self.train_per_class <= 1_000_000 and 1 <= self.test_per_class <= 1_000_000):
            raise ValueError("train_per_class and test_per_class must lie in [1, 10^6]")
        names = [d.name for d in self.datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"dataset '{dup[0]}' is defined twice")
        unknown = [n for n in self.only if n not in names]
        if unknown:
            raise ValueError(f"only: unknown dataset '{unknown[0]}' (known: {', '.join(names)})")
        for d in self.datasets:
            if isinstance(d.variation, str) and d.variation not in self.presets:
                raise ValueError(f"dataset '{d.name}': unknown variation preset '{d.variation}' "
                                 f"(presets: {', '.join(self.presets) or 'none'})")

    def variation_of(self, spec: GlyphSet) -> Variation:
        return self.presets[spec.variation] if isinstance(spec.variation, str) else spec.variation

    def selected(self) -> list[GlyphSet]:
        return [d for d in self.datasets if not self.only or d.name in self.only]


def load_config(path=None, overrides=None) -> GlyphsConfig:
    cfg = cfgmod.load(GlyphsConfig, path, overrides)
    if not cfg.datasets:
        raise DassError(f"{path or '<defaults>'}: no glyph datasets defined (key 'datasets')")
    return cfg


_CP_TOKEN = re.compile(r"^(?:0[xX]|[uU]\+)([0-9a-fA-F]{1,6})$")


def _code_point(token: str, where: str) -> int:
    token = token.strip()
    m = _CP_TOKEN.match(token)
    if m:
        return int(m.group(1), 16)
    if len(token) == 1:
        return ord(token)
    raise ValueError(f"{where}: '{token}' is not a code point (use 65, '0x41', 'U+0041' or 'A')")


def parse_code_points(items, where: str = "code_points") -> list[int]:
    """Expand ints, single code points and inclusive ranges ("0x0391-0x03A9") in order, unique."""
    out: list[int] = []
    for item in items:
        if isinstance(item, int):
            lo = hi = item
        else:
            text = item.strip()
            dash = text.find("-", 1)            # a leading '-' is the character U+002D itself
            if dash > 0:
                lo, hi = _code_point(text[:dash], where), _code_point(text[dash + 1:], where)
            else:
                lo = hi = _code_point(text, where)
        if not (0 <= lo <= hi <= 0x10FFFF):
            raise ValueError(f"{where}: bad code point range {item!r}")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------- fonts

def mpl_font_dir() -> Path:
    import matplotlib  # lazy: matplotlib only for its font folder; glyphs is on the --help path
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def resolve_fonts(patterns: list[str], where: str) -> list[str]:
    """Font files for ``patterns`` (paths or globs, ``{mpl}`` expanded), sorted, unique."""
    out: list[str] = []
    for pattern in patterns:
        expanded = pattern.replace(MPL_TOKEN, str(mpl_font_dir()))
        matches = sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded]
        matches = [m for m in matches if Path(m).is_file()]
        if not matches:
            raise DassError(f"{where}: font '{pattern}' matches no file")
        out.extend(m for m in matches if m not in out)
    return out


@functools.lru_cache(maxsize=None)
def font_cmap(path: str) -> frozenset:
    """Code points the font's cmap maps."""
    from fontTools.ttLib import TTFont, TTLibError  # lazy: fontTools (~23 ms) only when reading fonts; --help path

    try:
        with TTFont(path, lazy=True) as f:
            return frozenset(f.getBestCmap() or {})
    except (TTLibError, OSError, AssertionError, KeyError) as e:
        raise DassError(f"{path}: not a readable font file ({str(e)[:120]})") from None


@functools.lru_cache(maxsize=4096)
def _font(path: str, em: int):
    from PIL import ImageFont  # lazy: PIL only when rendering; glyphs is on the --help path
    return ImageFont.truetype(path, em, layout_engine=ImageFont.Layout.BASIC)


def glyph_mask(char: str, font_path: str, em: int, stroke: int = 0):
    """The glyph's ink as an 'L' image cropped to its bounding box, or None without ink."""
    from PIL import Image, ImageDraw  # lazy: PIL only when rendering, as above

    font = _font(font_path, em)
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke)
    if right <= left or bottom <= top:
        return None
    img = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(img).text((1 - left, 1 - top), char, fill=255, font=font,
                             stroke_width=stroke, stroke_fill=255)
    box = img.getbbox()
    return img.crop(box) if box else None


@functools.lru_cache(maxsize=None)
def _notdef_key(font_path: str) -> bytes:
    mask = glyph_mask(chr(_NOTDEF_PROBE), font_path, CHECK_EM)
    return b"" if mask is None else _mask_key(mask)


def _mask_key(mask) -> bytes:
    return f"{mask.size}".encode() + mask.tobytes()


def renders_with_ink(code_point: int, font_path: str):
    """The reference rendering if it has ink and is not the font's .notdef glyph, else None."""
    mask = glyph_mask(chr(code_point), font_path, CHECK_EM)
    if mask is None or int((np.asarray(mask) > 127).sum()) < MIN_INK_PIXELS:
        return None
    if _mask_key(mask) == _notdef_key(font_path):
        return None
    return mask


@dataclass(frozen=True)
class GlyphClass:
    code_point: int
    fonts: tuple[str, ...]    # font files that render it


def resolve_classes(spec: GlyphSet) -> list[GlyphClass]:
    """The dataset's classes (rules in the module docstring)."""
    fonts = resolve_fonts(spec.fonts, f"glyph dataset '{spec.name}'")
    classes: list[GlyphClass] = []
    seen: set[bytes] = set()
    for cp in parse_code_points(spec.code_points, spec.name):
        good, key = [], None
        for f in fonts:
            if cp not in font_cmap(f):
                continue
            mask = renders_with_ink(cp, f)
            if mask is not None:
                good.append(f)
                key = key or _mask_key(mask)
        if not good or key in seen:
            continue
        seen.add(key)
        classes.append(GlyphClass(cp, tuple(good)))
        if len(classes) == spec.max_classes:
            break
    if len(classes) < 2:
        raise DassError(f"glyph dataset '{spec.name}': only {len(classes)} of its code points render "
                        f"with its fonts; a dataset needs at least 2 classes")
    return classes


# ---------------------------------------------------------------------------- rendering

def _colours(rng: np.random.Generator, var: Variation) -> tuple[np.ndarray, np.ndarray]:
    """(fg, bg) RGB in [0, 1] whose mean intensities differ by a contrast drawn from the range."""
    c = rng.uniform(*var.contrast)
    lo = rng.uniform(0.0, 1.0 - c)
    lumas = (lo + c, lo) if rng.random() < 0.5 else (lo, lo + c)
    out = []
    for luma in lumas:
        tint = rng.uniform(-1.0, 1.0, 3)
        tint -= tint.mean()
        out.append(np.clip(luma + var.saturation * 0.5 * tint, 0.0, 1.0))
    return out[0], out[1]


@functools.lru_cache(maxsize=256)
def _interp_matrix(n: int, cells: int) -> np.ndarray:
    """n x cells linear-interpolation weights from a coarse grid onto n pixel centres."""
    pos = (np.arange(n) + 0.5) * cells / n - 0.5
    lo = np.clip(np.floor(pos).astype(int), 0, cells - 1)
    hi = np.clip(lo + 1, 0, cells - 1)
    frac = np.clip(pos - lo, 0.0, 1.0)
    weights = np.zeros((n, cells), dtype=np.float32)
    weights[np.arange(n), lo] += 1.0 - frac
    weights[np.arange(n), hi] += frac
    return weights


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> tuple[np.ndarray, np.ndarray]:
    """(field, grid): a cells x cells uniform [-1, 1] grid and its bilinear upsampling to ``shape``."""
    grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return _interp_matrix(shape[0], cells) @ grid @ _interp_matrix(shape[1], cells).T, grid


def _affine(w: int, h: int, canvas: int, rng: np.random.Generator, var: Variation) -> tuple:
    """PIL AFFINE data mapping canvas pixels back into the w x h glyph (rotate, shear, shift)."""
    angle = math.radians(rng.uniform(-var.rotation, var.rotation))
    shear = rng.uniform(-var.shear, var.shear)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    fwd = rot @ np.array([[1.0, shear], [0.0, 1.0]])
    corners = fwd @ np.array([[-w, w, w, -w], [-h, -h, h, h]]) / 2.0
    extent = max(np.ptp(corners[0]), np.ptp(corners[1]), 1.0)
    fwd = fwd * min(1.0, 0.92 * canvas / extent)               # keep the glyph inside the canvas
    centre = canvas / 2.0 + rng.uniform(-var.translate, var.translate, 2) * canvas
    inv = np.linalg.inv(fwd)
    offset = np.array([w / 2.0, h / 2.0]) - inv @ centre
    return tuple(float(v) for v in (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1]))


def _clutter(rng: np.random.Generator, canvas: int, em: int, count: int):
    """An 'L' layer of ``count`` random strokes (lines, arcs, ellipses) about as thick as the glyph's."""
    from PIL import Image, ImageDraw  # lazy: PIL only when rendering, as above

    layer = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(layer)
    for _ in range(count):
        kind = rng.integers(3)
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, canvas, 4))
        width = int(rng.integers(1, max(2, em // 10) + 1))
        if kind == 0:
            draw.line((x0, y0, x1, y1), fill=255, width=width)
        else:
            box = (min(x0, x1), min(y0, y1), max(x0, x1) + 2, max(y0, y1) + 2)
            if kind == 1:
                start = float(rng.uniform(0, 360))
                draw.arc(box, start, start + float(rng.uniform(60, 270)), fill=255, width=width)
            else:
                draw.ellipse(box, outline=255, width=width)
    return np.asarray(layer, dtype=np.float32) / 255.0


def render_image(cls: GlyphClass, var: Variation, rng: np.random.Generator, size: int,
                 scale: int) -> np.ndarray:
    """One size x size x 3 uint8 image of ``cls`` drawn with variation ``var``."""
    from PIL import Image, ImageFilter  # lazy: PIL only when rendering, as above

    canvas = size * scale
    font = cls.fonts[int(rng.integers(len(cls.fonts)))]
    em = max(6, int(round(canvas * rng.uniform(*var.size))))
    stroke = int(round(em * rng.uniform(*var.stroke)))
    mask = glyph_mask(chr(cls.code_point), font, em, stroke)
    if mask is None:                      # a tiny glyph lost at this size: use the reference size
        mask = glyph_mask(chr(cls.code_point), font, CHECK_EM, stroke)
    if var.dropout > 0:                   # knock out ink where a smooth field is in its low `dropout` share
        field, grid = _smooth_field(rng, (mask.height, mask.width), 6)
        keep = field > np.sort(grid, axis=None)[int(var.dropout * grid.size)]
        mask = Image.fromarray((np.asarray(mask) * keep).astype(np.uint8))
    data = _affine(mask.width, mask.height, canvas, rng, var)
    alpha = np.asarray(mask.transform((canvas, canvas), Image.AFFINE, data, resample=Image.BILINEAR),
                       dtype=np.float32) / 255.0
    n_clutter = int(rng.integers(var.clutter + 1))
    if n_clutter:
        alpha = np.maximum(alpha, _clutter(rng, canvas, em, n_clutter))
    alpha = alpha.reshape(size, scale, size, scale).mean(axis=(1, 3))[..., None]   # box downsample
    fg, bg = _colours(rng, var)
    background = np.broadcast_to(bg.astype(np.float32), (size, size, 3))
    if var.texture > 0:
        tex = _smooth_field(rng, (size, size), 4)[0][..., None] * rng.uniform(-1, 1, 3).astype(np.float32)
        background = np.clip(background + var.texture * tex, 0.0, 1.0)
    img = (background * (1.0 - alpha) + fg.astype(np.float32) * alpha) * 255.0
    radius = rng.uniform(*var.blur)
    if radius > 0:
        blurred = Image.fromarray(np.round(img).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius))
        img = np.asarray(blurred, dtype=np.float32)
    if var.noise > 0:
        img = img + rng.normal(0.0, var.noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _render_class(task) -> np.ndarray:
    """Worker: all images of one class in one split (task = see ``_tasks``)."""
    cls, var, seed, name_key, split_id, count, size, scale = task
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        rng = np.random.default_rng([seed, name_key, split_id, cls.code_point, i])
        out[i] = render_image(cls, var, rng, size, scale)
    return out


# ---------------------------------------------------------------------------- the family

@dataclass
class _Plan:
    spec: GlyphSet
    variation: Variation
    classes: list[GlyphClass]
    counts: tuple[int, int]          # images per class: train, test
    folder: Path
    config_hash: str

    def tasks(self, cfg: GlyphsConfig):
        key = zlib.crc32(self.spec.name.encode())
        for split_id, count in enumerate(self.counts):
            for cls in self.classes:
                yield (cls, self.variation, cfg.seed, key, split_id, count, cfg.image_size, cfg.render_scale)

    @property
    def num_images(self) -> int:
        return len(self.classes) * sum(self.counts)


def _resolved_spec(cfg: GlyphsConfig, spec: GlyphSet) -> dict:
    d = cfgmod.to_dict(spec)
    d["variation"] = cfgmod.to_dict(cfg.variation_of(spec))
    d["train_per_class"] = spec.train_per_class or cfg.train_per_class
    d["test_per_class"] = spec.test_per_class or cfg.test_per_class
    return d


def config_hash(cfg: GlyphsConfig, spec: GlyphSet) -> str:
    """Hash of everything that determines a dataset's bytes (config, seed, sizes, font files)."""
    fonts = resolve_fonts(spec.fonts, f"glyph dataset '{spec.name}'")
    payload = {"version": GENERATOR_VERSION, "seed": cfg.seed, "image_size": cfg.image_size,
               "render_scale": cfg.render_scale, "spec": _resolved_spec(cfg, spec),
               "fonts": [[Path(f).name, Path(f).stat().st_size] for f in fonts]}
    return json_sha256(payload, compact=False)[:16]


def is_current(folder: Path, digest: str) -> bool:
    meta = folder / "meta.json"
    files = [folder / f"{s}_{k}.npy" for s in ("train", "test") for k in ("images", "labels")]
    if not meta.is_file() or not all(f.is_file() for f in files):
        return False
    try:
        return json.loads(meta.read_text()).get("config_hash") == digest
    except (json.JSONDecodeError, OSError):
        return False


def _write_dataset(cfg: GlyphsConfig, plan: _Plan, blocks: list[np.ndarray]) -> None:
    n_cls = len(plan.classes)
    for split_id, split in enumerate(("train", "test")):
        images = np.concatenate(blocks[split_id * n_cls:(split_id + 1) * n_cls])
        labels = np.repeat(np.arange(n_cls, dtype=np.int64), plan.counts[split_id])
        write_split(plan.folder.parent, plan.folder.name,
                    split, ImageArrays(images, labels, n_cls, f"{cfg.family}/{plan.spec.name}"))
    atomic_write_json(plan.folder / "meta.json", {
        "name": plan.spec.name, "family": cfg.family, "generator_version": GENERATOR_VERSION, "config_hash": plan.config_hash,
        "seed": cfg.seed, "image_size": cfg.image_size, "render_scale": cfg.render_scale,
        "num_classes": n_cls, "train_per_class": plan.counts[0], "test_per_class": plan.counts[1],
        "classes": [{"code_point": f"U+{c.code_point:04X}", "char": chr(c.code_point),
                     "fonts": [Path(f).name for f in c.fonts]} for c in plan.classes],
        "config": _resolved_spec(cfg, plan.spec)})


def plan_family(cfg: GlyphsConfig) -> tuple[list[_Plan], list[str]]:
    """(datasets to generate, names already current) -- validates every dataset before rendering."""
    todo, current = [], []
    for spec in cfg.selected():
        folder = Path(cfg.out_root) / cfg.family / spec.name
        digest = config_hash(cfg, spec)
        if is_current(folder, digest):
            current.append(spec.name)
            continue
        counts = (spec.train_per_class or cfg.train_per_class, spec.test_per_class or cfg.test_per_class)
        todo.append(_Plan(spec, cfg.variation_of(spec), resolve_classes(spec), counts, folder, digest))
    return todo, current


def generate_family(cfg: GlyphsConfig, progress: bool = True) -> dict:
    """Generate every selected dataset not yet current; returns a summary (names, counts, seconds)."""
    from tqdm import tqdm  # lazy: tqdm (~35 ms) only when generating; --help path

    t0 = time.perf_counter()
    todo, current = plan_family(cfg)
    tasks = [t for plan in todo for t in plan.tasks(cfg)]
    bar = tqdm(total=sum(p.num_images for p in todo), unit="img", desc="glyphs", disable=not progress)
    pool = None
    if cfg.workers > 1 and len(tasks) > 1:
        import multiprocessing  # lazy: only with workers > 1 (~8 ms); --help path
        pool = multiprocessing.get_context().Pool(min(cfg.workers, len(tasks)))
    try:
        results = pool.imap(_render_class, tasks, chunksize=2) if pool else map(_render_class, tasks)
        for plan in todo:
            bar.set_postfix_str(plan.spec.name)
            blocks = []
            for _ in range(2 * len(plan.classes)):
                blocks.append(next(results))
                bar.update(len(blocks[-1]))
            _write_dataset(cfg, plan, blocks)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return {"out_root": str(Path(cfg.out_root) / cfg.family),
            "generated": [p.spec.name for p in todo], "skipped": current,
            "classes": {p.spec.name: len(p.classes) for p in todo},
            "images": sum(p.num_images for p in todo), "seconds": round(time.perf_counter() - t0, 2)}
