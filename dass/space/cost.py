"""Exact MACs and parameter counts of a student, by formula (no network is built).

MACs count the multiply-accumulates of convolutions and the classifier (BN, ReLU, pooling, the
parameter-free shortcuts and the residual additions are not counted). Parameters are the trainable
ones: conv weights (no bias), BN weight and bias (2 per channel), classifier weight and bias.
"""
from __future__ import annotations

from .arch import Arch
from .config import SpaceConfig


def layer_shapes(arch: Arch, space: SpaceConfig):
    """Yield ``(name, c_in, c_out, stride, out_resolution)`` for every 3x3 conv, in forward order."""
    r = space.image_size
    c = space.stem_width
    yield "conv1", space.in_channels, c, 1, r
    for s, (ws, stride) in enumerate(zip(arch.widths, space.stage_strides)):
        for b, w in enumerate(ws):
            st = stride if b == 0 else 1
            r = r // st
            yield f"layer{s + 1}.{b}.conv1", c, w, st, r
            yield f"layer{s + 1}.{b}.conv2", w, w, 1, r
            c = w


def _sums(arch: Arch, space: SpaceConfig) -> tuple[int, int]:
    """``(sum r^2 9 c_in c_out, sum 9 c_in c_out + 2 c_out)`` over :func:`layer_shapes` (one plain loop:
    search costs 10,000 candidates twice)."""
    r, c = space.image_size, space.stem_width
    m = r * r * 9 * space.in_channels * c
    p = 9 * space.in_channels * c + 2 * c
    for ws, stride in zip(arch.widths, space.stage_strides):
        for b, w in enumerate(ws):
            if b == 0:
                r //= stride
            m += r * r * 9 * (c * w + w * w)
            p += 9 * (c * w + w * w) + 4 * w
            c = w
    return m, p


def macs(arch: Arch, space: SpaceConfig, num_classes: int | None = None) -> int:
    k = space.num_classes if num_classes is None else num_classes
    return _sums(arch, space)[0] + arch.widths[-1][-1] * k


def params(arch: Arch, space: SpaceConfig, num_classes: int | None = None) -> int:
    k = space.num_classes if num_classes is None else num_classes
    return _sums(arch, space)[1] + arch.widths[-1][-1] * k + k


def macs_params(arch: Arch, space: SpaceConfig, num_classes: int | None = None) -> tuple[int, int]:
    """``(macs(...), params(...))`` from one pass over the layers (what search asks of every candidate)."""
    k = space.num_classes if num_classes is None else num_classes
    m, p = _sums(arch, space)
    head = arch.widths[-1][-1] * k
    return m + head, p + head + k
