"""Zero-cost proxies of many students in batched passes of their teacher (remap ``copy_paste_first``).

Every student remapped with ``copy_paste_first`` is a prefix slice of its teacher, so the teacher
run with per-row channel masks and block skips (:func:`dass.space.embed.masked_stages`, as the
functional maps are computed) reproduces each student's activations exactly: row ``s * k + i`` of a
batch is student ``s`` on image ``i`` (students that share their first blocks share those blocks'
computation). From those rows:

* ``naswot``: the stem's codes are every student's (full width, computed once on the ``k`` images);
  a block's codes ``c`` (``k x U``, zero beyond the student's width ``w``) over its ``n = w H W``
  units add ``2 c c^T + n - r_i - r_j`` (``r``: the codes' row sums) to the student's kernel: the
  number of units on which images ``i`` and ``j`` agree, as :func:`dass.proxies.zero_cost.naswot_kernel`
  counts them on the student itself (exact integer counts).
* ``synflow``: one float64 row per student (BatchNorm removed, absolute weights, an all-ones image).
  For a bias-free layer ``y = W * x``, ``sum W dR/dW = sum y dR/dy``, so the score is the sum over
  the student's convolutions of ``sum(y * dR/dy)`` (its own rows: ``R`` is a sum over rows) plus the
  classifier's ``sum(logits - bias)``; one backward pass gives every student's score.
* ``diswot``: the stage outputs of a student's ``k`` rows, zero beyond its widths, have the
  student's Gram matrices.

The one-network-at-a-time functions of :mod:`.zero_cost` stay the reference (``tests/proxies/test_proxies.py``
checks these against them; relative difference ~1e-12 where the codes agree).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..space import Arch, SpaceConfig, build, teacher_arch
from ..space.embed import masked_stages
from .zero_cost import hamming_kernel

# proxies computed here (the others go one network at a time)
BATCHED = ("naswot", "synflow", "diswot")
# rows (students x images) per masked pass: bounds memory (a cpu-profile stage-1 tensor of 2,048
# rows is 16 MB) while keeping the convolutions large
ROWS = 2048


def _teacher(teacher_sd: dict, space: SpaceConfig, num_classes: int, device, dtype=torch.float32):
    net = build(teacher_arch(space), space, num_classes)
    net.load_state_dict(teacher_sd)
    return net.to(device=device, dtype=dtype).eval()


def _chunks(archs: list[Arch], k: int):
    step = max(1, ROWS // max(k, 1))
    for i in range(0, len(archs), step):
        yield i, archs[i:i + step]


@torch.no_grad()
def naswot(archs: list[Arch], space: SpaceConfig, num_classes: int, teacher_sd: dict,
           x: torch.Tensor) -> np.ndarray:
    """NASWOT (``log det K``, ``-inf`` when singular) of every student on the images ``x``."""
    net = _teacher(teacher_sd, space, num_classes, x.device)
    k = x.shape[0]
    pre = net.bn1(net.conv1(x))
    k0 = hamming_kernel((pre > 0).reshape(k, -1))
    stem = F.relu(pre)
    out = np.empty(len(archs), dtype=np.float64)
    for start, chunk in _chunks(archs, k):
        n = len(chunk)
        K = k0.expand(n, k, k).clone()

        def site(kind, t, rows, widths, index):
            if kind == "conv":
                return
            c = (t > 0).to(torch.float32)
            if index is not None:
                c = c.index_select(0, index)
            students = rows[::k] // k
            c = c.reshape(len(students), k, -1)
            units = (widths[::k] * (t.shape[2] * t.shape[3])).to(device=t.device, dtype=torch.float64)
            r = c.sum(-1).double()
            agree = 2 * torch.bmm(c, c.transpose(1, 2)).double() + units[:, None, None] - r[:, :, None] - r[:, None, :]
            K.index_add_(0, students, agree)

        rows_archs = [a for a in chunk for _ in range(k)]
        masked_stages(net, stem, rows_archs, site=site, start=torch.arange(n * k) % k)
        sign, value = torch.linalg.slogdet(K.cpu())
        out[start:start + n] = torch.where(sign > 0, value, torch.full_like(value, float("-inf"))).numpy()
    return out


def synflow(archs: list[Arch], space: SpaceConfig, num_classes: int, teacher_sd: dict,
            input_shape: tuple[int, int, int], device) -> np.ndarray:
    """synflow of every student (see module doc); ``input_shape``: ``(C, H, W)`` of one image."""
    net = _teacher(teacher_sd, space, num_classes, device, torch.float64)
    for p in net.parameters():
        p.requires_grad_(False)
        p.abs_()
    out = np.empty(len(archs), dtype=np.float64)
    for start, chunk in _chunks(archs, 1):
        n = len(chunk)
        ones = torch.ones(n, *input_shape, dtype=torch.float64, device=device, requires_grad=True)
        stem = net.conv1(ones)
        convs = [(stem, None)]

        def site(kind, t, rows, widths, index):
            if kind == "conv":  # (rows are not shared: t's rows are ``rows``, in order)
                convs.append((t, rows))

        last = masked_stages(net, F.relu(stem), chunk, stages=(-1,), site=site, batchnorm=False, share=False)
        logits = net.head(last[space.num_stages - 1])
        grads = torch.autograd.grad(logits.sum(), [t for t, _ in convs])
        score = (logits - net.fc.bias).sum(1)
        for (t, rows), g in zip(convs, grads):
            per_row = (t * g).sum((1, 2, 3))
            score = score + per_row if rows is None else score.index_add(0, rows, per_row)
        out[start:start + n] = score.detach().cpu().numpy()
    return out


@torch.no_grad()
def diswot(archs: list[Arch], space: SpaceConfig, num_classes: int, teacher_sd: dict,
           teacher_relations: list[torch.Tensor], x: torch.Tensor) -> np.ndarray:
    """DisWOT relation score of every student against the teacher's relations on ``x``
    (:func:`dass.proxies.zero_cost.diswot`)."""
    net = _teacher(teacher_sd, space, num_classes, x.device)
    k = x.shape[0]
    stem = F.relu(net.bn1(net.conv1(x)))
    L = space.num_stages
    out = np.empty(len(archs), dtype=np.float64)
    for start, chunk in _chunks(archs, k):
        n = len(chunk)
        stages = masked_stages(net, stem, [a for a in chunk for _ in range(k)], stages=tuple(range(L)),
                               start=torch.arange(n * k) % k)
        total = torch.zeros(n, dtype=torch.float64, device=x.device)
        for s, t in zip(range(L), teacher_relations):
            f = stages[s].reshape(n, k, -1).double()
            g = torch.bmm(f, f.transpose(1, 2))
            g = g / g.norm(dim=2, keepdim=True).clamp_min(1e-12)
            total += ((g - t.to(g.device)[None]) ** 2).sum((1, 2))
        out[start:start + n] = (-total / (L * k)).cpu().numpy()
    return out
