"""Fixed-size encodings of architectures, kept beside the space they encode.

One-hot (``onehot``), length ``S * (len(depths) + max_depth * len(width_mults))`` (200 for the
``paper`` profile). For each stage ``s`` in order, a block of:

* ``len(depths)`` entries: one-hot of the stage depth (position = index in ``space.depths``);
* ``max_depth`` slots of ``len(width_mults)`` entries: slot ``b`` is the one-hot of block ``b``'s
  width (position = index in ``space.width_choices[s]``), all zeros when the block is absent.

Stage (``stage``), length ``2 * S``: for each stage ``s``, ``depth / max_depth`` and the stage's
summed block widths over the largest possible sum, ``sum(widths) / (max_depth * stage_widths[s])``
(the teacher's encoding is all ones): where a student spends its depth and width, in a few numbers
a linear model can weigh. With ``width="mean"`` the second number is the stage's mean block width
over its full width, ``mean(widths) / stage_widths[s]``, which does not grow with the depth (the
first number already says how deep the stage is).

Graph (``graph``): ``N = 2 + S * max_depth`` nodes, node 0 the stem, node ``1 + s*max_depth + b``
block ``b`` of stage ``s``, node ``N-1`` the classifier head. Node features (``F = 7 + S``):
``[is_stem, is_block, is_head, stage one-hot (S), width / stage width, log2(width) / log2(max
width), stride-2 flag, present]``. Absent blocks are all-zero rows with mask 0. ``adj[i, j] = 1``
for the data-flow edge from node ``i`` to the next present node ``j`` (stem -> blocks -> head);
graph encoders symmetrise and add self-loops as they need.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import DassError
from .arch import Arch, validate
from .config import SpaceConfig


def onehot_dim(space: SpaceConfig) -> int:
    return space.num_stages * (len(space.depths) + space.max_depth * len(space.width_mults))


def onehot(arch: Arch, space: SpaceConfig) -> torch.Tensor:
    validate(arch, space)
    nd, nw, md = len(space.depths), len(space.width_mults), space.max_depth
    per = nd + md * nw
    v = torch.zeros(onehot_dim(space))
    for s, (d, ws) in enumerate(zip(arch.depths, arch.widths)):
        base = s * per
        v[base + space.depths.index(d)] = 1.0
        for b, w in enumerate(ws):
            v[base + nd + b * nw + space.width_choices[s].index(w)] = 1.0
    return v


def stage_dim(space: SpaceConfig) -> int:
    return 2 * space.num_stages


STAGE_WIDTHS = ("sum", "mean")


def stage(arch: Arch, space: SpaceConfig, width: str = "sum") -> torch.Tensor:
    validate(arch, space)
    if width not in STAGE_WIDTHS:
        raise DassError(f"stage encoding width must be one of {list(STAGE_WIDTHS)}, got {width!r}")
    md = space.max_depth
    return torch.tensor([v for d, ws, full in zip(arch.depths, arch.widths, space.stage_widths)
                         for v in (d / md, sum(ws) / ((md if width == "sum" else d) * full))], dtype=torch.float32)


def stage_batch(archs, space: SpaceConfig, width: str = "sum") -> torch.Tensor:
    return torch.stack([stage(a, space, width) for a in archs]) if archs else torch.zeros(0, stage_dim(space))


def onehot_batch(archs, space: SpaceConfig) -> torch.Tensor:
    """:func:`onehot` of every arch, as one ``N x onehot_dim`` tensor (filled at once: search encodes
    10,000 candidates)."""
    out = np.zeros((len(archs), onehot_dim(space)), dtype=np.float32)
    nd, nw, md = len(space.depths), len(space.width_mults), space.max_depth
    per = nd + md * nw
    depth_at = {d: i for i, d in enumerate(space.depths)}
    width_at = [{w: i for i, w in enumerate(ch)} for ch in space.width_choices]
    rows, cols = [], []
    for n, arch in enumerate(archs):
        validate(arch, space)
        for s, (d, ws) in enumerate(zip(arch.depths, arch.widths)):
            base = s * per
            cols.append(base + depth_at[d])
            cols.extend(base + nd + b * nw + width_at[s][w] for b, w in enumerate(ws))
            rows.extend([n] * (1 + len(ws)))
    out[rows, cols] = 1.0
    return torch.from_numpy(out)


def decode_onehot(v: torch.Tensor, space: SpaceConfig) -> Arch:
    if v.shape != (onehot_dim(space),):
        raise DassError(f"one-hot vector has shape {tuple(v.shape)}, space '{space.name}' needs ({onehot_dim(space)},)")
    nd, nw, md = len(space.depths), len(space.width_mults), space.max_depth
    per = nd + md * nw
    depths, widths = [], []
    for s in range(space.num_stages):
        block = v[s * per:(s + 1) * per]
        dh = block[:nd]
        if int((dh != 0).sum()) != 1:
            raise DassError(f"one-hot stage {s + 1}: depth part is not one-hot")
        d = space.depths[int(dh.argmax())]
        ws = []
        for b in range(md):
            slot = block[nd + b * nw: nd + (b + 1) * nw]
            hot = int((slot != 0).sum())
            if b < d:
                if hot != 1:
                    raise DassError(f"one-hot stage {s + 1} block {b + 1}: width part is not one-hot")
                ws.append(space.width_choices[s][int(slot.argmax())])
            elif hot:
                raise DassError(f"one-hot stage {s + 1}: block {b + 1} set beyond depth {d}")
        depths.append(d)
        widths.append(tuple(ws))
    return validate(Arch(tuple(depths), tuple(widths)), space)


def graph_num_nodes(space: SpaceConfig) -> int:
    return 2 + space.num_stages * space.max_depth


def graph_feature_dim(space: SpaceConfig) -> int:
    return 7 + space.num_stages


def graph(arch: Arch, space: SpaceConfig) -> dict[str, torch.Tensor]:
    """``{"x": N x F, "adj": N x N, "mask": N}`` for one architecture (layout in the module doc)."""
    validate(arch, space)
    S, md = space.num_stages, space.max_depth
    n, f = graph_num_nodes(space), graph_feature_dim(space)
    x = torch.zeros(n, f)
    mask = torch.zeros(n)
    logmax = math.log2(max(space.stage_widths))
    col_ratio, col_log, col_stride, col_present = 3 + S, 4 + S, 5 + S, 6 + S
    x[0, 0] = 1.0
    x[0, col_ratio] = 1.0
    x[0, col_log] = math.log2(space.stem_width) / logmax
    x[0, col_present] = 1.0
    x[n - 1, 2] = 1.0
    x[n - 1, col_present] = 1.0
    mask[0] = mask[n - 1] = 1.0
    order = [0]
    for s, ws in enumerate(arch.widths):
        for b, w in enumerate(ws):
            i = 1 + s * md + b
            x[i, 1] = 1.0
            x[i, 3 + s] = 1.0
            x[i, col_ratio] = w / space.stage_widths[s]
            x[i, col_log] = math.log2(w) / logmax
            x[i, col_stride] = 1.0 if (b == 0 and space.stage_strides[s] == 2) else 0.0
            x[i, col_present] = 1.0
            mask[i] = 1.0
            order.append(i)
    order.append(n - 1)
    adj = torch.zeros(n, n)
    for a, b in zip(order[:-1], order[1:]):
        adj[a, b] = 1.0
    return {"x": x, "adj": adj, "mask": mask}


def graph_batch(archs, space: SpaceConfig) -> dict[str, torch.Tensor]:
    gs = [graph(a, space) for a in archs]
    return {k: torch.stack([g[k] for g in gs]) for k in ("x", "adj", "mask")}


def decode_graph(g: dict[str, torch.Tensor], space: SpaceConfig) -> Arch:
    S, md = space.num_stages, space.max_depth
    x, mask = g["x"], g["mask"]
    col_ratio = 3 + S
    depths, widths = [], []
    for s in range(S):
        ws = []
        for b in range(md):
            i = 1 + s * md + b
            if mask[i] > 0:
                ws.append(int(round(float(x[i, col_ratio]) * space.stage_widths[s])))
        depths.append(len(ws))
        widths.append(tuple(ws))
    return validate(Arch(tuple(depths), tuple(widths)), space)
