"""Functional embedding: what a remapped, untrained student computes on a fixed noise input.

For a task, one noise image ``N(0, 1)`` of shape ``in_channels x image_size x image_size`` is drawn
from a ``torch.Generator`` seeded with ``seed`` (shared by the teacher and every student of the task).
Each student is remapped from the teacher, put in eval mode (BN uses the teacher's running stats)
and run on the noise; the embedding is its last-stage activation map, zero-padded in channels to the
teacher's last-stage width (``C x r x r``; 256 x 8 x 8 for the ``paper`` profile).

``functional_maps`` evaluates many students at once. For ``copy_paste_first`` it runs the teacher
itself on a batch of copies of the noise, with per-sample channel masks and per-sample block skips
(:func:`masked_stages`): since every student tensor is a prefix slice of the teacher's, zeroing the
channels beyond a block's width (after BN, before the ReLU) and skipping absent blocks reproduces
each student exactly. Other remaps fall back to building each student.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .arch import Arch, teacher_arch
from .config import SpaceConfig
from .remap import build_remapped
from .resnet import ResNet, match_channels


def noise_input(space: SpaceConfig, seed: int, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(n, space.in_channels, space.image_size, space.image_size, generator=g)


def _pad_to(x: torch.Tensor, c: int) -> torch.Tensor:
    return match_channels(x, c)


@torch.no_grad()
def functional_map_single(arch: Arch, teacher_sd: dict, space: SpaceConfig, num_classes: int, seed: int,
                          strategy: str = "copy_paste_first", stage: int = -1) -> torch.Tensor:
    """Build, remap and run one student; returns ``C x r x r`` (stage map padded to the teacher width)."""
    net = build_remapped(arch, space, num_classes, teacher_sd, strategy).eval()
    outs = net.forward_stages(noise_input(space, seed))
    return _pad_to(outs[stage], space.stage_widths[stage])[0]


def masked_stages(net: ResNet, x: torch.Tensor, archs: list[Arch], stages=(), site=None,
                  batchnorm: bool = True, start: torch.Tensor | None = None,
                  share: bool = True) -> dict[int, torch.Tensor]:
    """Run the stages of the teacher ``net`` for every entry of ``archs`` (a *row*), each row as its
    own student (see module doc: channels beyond a block's width zeroed after its BN, before the
    ReLU; a block that a row's student lacks leaves the row unchanged). ``x``: the stem's outputs
    after its ReLU (``U x C0 x H x W``); row ``i`` starts from ``x[start[i]]`` (``start`` default:
    row ``i`` from ``x[i]``). Returns ``{stage: output}`` for the stage indices in ``stages``
    (``B x C_s x r x r``, zero beyond each row's width).

    With ``share`` (not for gradients per row), rows with the same start and the same choices so
    far are computed once: block by block, only the distinct prefixes run (10,000 cpu-profile
    students have at most 155 distinct first stages).

    ``site(kind, t, rows, widths, index)``, when given, sees every block's tensors: ``t`` holds the
    computed rows that have the block, row ``rows[j]`` (ascending batch indices) is ``t[index[j]]``
    (``index`` None: ``t[j]``), ``widths`` its width (CPU): ``"conv"``, each conv's output before its
    BN and mask; ``"pre"``, the masked input of the block's first ReLU; ``"out"``, the block's
    output. ``batchnorm=False`` runs without the BN layers (identity), as synflow does.
    Differentiable when run with gradients. (Cutting the teacher's weights to each group of equal
    widths instead of masking was 1.2-3.5x slower on the cpu profile: many small convolutions.)"""
    space = net.space
    dev = x.device
    B = len(archs)
    bn = (lambda m, t: m(t)) if batchnorm else (lambda m, t: t)
    want = {s % space.num_stages for s in stages}
    outs = {}
    uid = torch.arange(B) if start is None else start.to("cpu", torch.long)  # row -> row of x
    for s, layer in enumerate(net.stages):
        C = space.stage_widths[s]
        ar = torch.arange(C, device=dev)
        for b, block in enumerate(layer):
            width = torch.tensor([a.widths[s][b] if b < a.depths[s] else 0 for a in archs], dtype=torch.long)
            if share:
                keys, new_uid = torch.unique(uid * (C + 1) + width, return_inverse=True)
                parent, w_u = keys // (C + 1), keys % (C + 1)
            else:
                parent, w_u, new_uid = uid, width, torch.arange(B)
            act = torch.nonzero(w_u > 0).flatten()  # computed rows that have the block
            if len(act) == 0:
                uid = new_uid
                continue
            every = len(act) == len(w_u)
            src = parent[act].to(dev)
            wa = w_u[act]
            m = (ar[None, :] < wa.to(dev)[:, None]).to(x.dtype)[:, :, None, None]
            xin = x.index_select(0, src) if (share or not every or start is not None) else x
            c1 = block.conv1(xin)
            pre = bn(block.bn1, c1) * m
            c2 = block.conv2(F.relu(pre))
            out = bn(block.bn2, c2) * m
            sc = F.max_pool2d(xin, 2) if block.stride == 2 else xin
            new = F.relu(out + match_channels(sc, C) * m)
            if site is not None:
                rows = torch.nonzero(width > 0).flatten()
                pos = torch.full((len(w_u),), -1, dtype=torch.long)
                pos[act] = torch.arange(len(act))
                index = pos[new_uid[rows]]
                index = None if (not share and every) else index.to(dev)
                for kind, t in (("conv", c1), ("pre", pre), ("conv", c2), ("out", new)):
                    site(kind, t, rows.to(dev), width[rows], index)
            # (a stage's first block is every student's: depths are >= 1)
            if every:
                x = new
            else:
                x = x.index_select(0, parent.to(dev)).index_copy(0, act.to(dev), new)
            uid = new_uid
            start = None
        if s in want:
            outs[s] = x.index_select(0, uid.to(dev))
    return outs


class MaskedTeacher(torch.nn.Module):
    """The teacher run with per-sample width masks and block skips (see module doc)."""

    def __init__(self, teacher_sd: dict, space: SpaceConfig, num_classes: int):
        super().__init__()
        self.space = space
        self.net = ResNet(teacher_arch(space), space, num_classes)
        self.net.load_state_dict(teacher_sd, strict=True)
        self.net.eval()

    @torch.no_grad()
    def forward(self, noise: torch.Tensor, archs: list[Arch], stages=(-1,)) -> list[torch.Tensor]:
        net = self.net
        x = F.relu(net.bn1(net.conv1(noise)))
        outs = masked_stages(net, x, archs, stages, start=torch.zeros(len(archs), dtype=torch.long))
        return [outs[s % self.space.num_stages] for s in stages]


@dataclass(frozen=True)
class MapRun:
    """How :func:`functional_maps` runs (not what it computes): students per masked pass, device,
    progress bar."""

    batch_size: int = 256
    device: object = "cpu"
    progress: bool = False


@torch.no_grad()
def functional_maps(archs: list[Arch], teacher_sd: dict, space: SpaceConfig, num_classes: int, seed: int,
                    strategy: str = "copy_paste_first", run: MapRun = MapRun(),
                    stages=(-1,)) -> torch.Tensor | list[torch.Tensor]:
    """Stage maps of many students: ``len(archs) x C x r x r`` (a list when several ``stages``)."""
    device, batch_size, progress = torch.device(run.device), run.batch_size, run.progress
    results: list[list[torch.Tensor]] = [[] for _ in stages]
    if strategy == "copy_paste_first":
        model = MaskedTeacher({k: v for k, v in teacher_sd.items()}, space, num_classes).to(device)
        noise = noise_input(space, seed).to(device)
        it = range(0, len(archs), batch_size)
        for i in tqdm(it, desc="functional maps", disable=not progress, leave=False):
            for r, o in zip(results, model(noise, archs[i:i + batch_size], stages)):
                r.append(o.float().cpu())
    else:
        for a in tqdm(archs, desc="functional maps", disable=not progress, leave=False):
            net = build_remapped(a, space, num_classes, teacher_sd, strategy).eval().to(device)
            outs = net.forward_stages(noise_input(space, seed).to(device))
            for r, s in zip(results, stages):
                r.append(_pad_to(outs[s], space.stage_widths[s]).float().cpu())
    cat = [torch.cat(r) if r else torch.zeros(0) for r in results]
    return cat[0] if len(stages) == 1 else cat
