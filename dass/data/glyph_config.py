"""The glyph family's config (``configs/data/glyphs.yaml``, ``configs/data/outside.yaml``): the
per-image variation, the datasets (fonts, code points, class and image counts) and the family
defaults; code points as ints, single characters, ``0x``/``U+`` tokens or inclusive ranges."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

from .. import config as cfgmod
from ..errors import DassError

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# Folders under a data root that hold glyph datasets; dataset '<family>/<name>' is read from
# '<root>/<family>/<name>/' (dass/data/registry.py registers one name pattern per family).
FAMILIES = ("glyphs", "outside")


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
