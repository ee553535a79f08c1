"""Fonts of the glyph family: font files or globs (``{mpl}``: matplotlib's bundled fonts), their
cmaps, reference renderings, and the classes of a dataset (a code point is kept when a font maps
it and renders it with ink other than the font's .notdef glyph, and its ink is not an earlier
class's)."""
from __future__ import annotations

import functools
import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DassError
from .glyph_config import GlyphSet, parse_code_points

MPL_TOKEN = "{mpl}"
CHECK_EM = 48              # font size (px) of the coverage / ink / duplicate check
MIN_INK_PIXELS = 4         # pixels > 50% ink the reference rendering must have
_NOTDEF_PROBE = 0x10FFFD   # a private-use code point no bundled font maps: renders as .notdef


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
