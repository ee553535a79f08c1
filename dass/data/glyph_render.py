"""Rendering one glyph image: the glyph drawn at ``render_scale`` x the output size with the
dataset's variation (font, size, rotation, shear, translation, stroke, ink dropout, blur, noise,
colours and contrast, background texture, distractor strokes), then box-downsampled."""
from __future__ import annotations

import functools
import math

import numpy as np

from .glyph_config import Variation
from .glyph_fonts import CHECK_EM, GlyphClass, glyph_mask


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


def render_class(task) -> np.ndarray:
    """Worker: all images of one class in one split (task = see ``_tasks``)."""
    cls, var, seed, name_key, split_id, count, size, scale = task
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        rng = np.random.default_rng([seed, name_key, split_id, cls.code_point, i])
        out[i] = render_image(cls, var, rng, size, scale)
    return out
