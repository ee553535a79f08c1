"""Parameter remapping: initialise a student from its teacher's weights.

Strategies (``REMAPS``):

* ``copy_paste_first`` (default): student block ``i`` of a stage takes teacher block ``i``; every
  tensor is sliced to its first channels: conv ``W[:out, :in]``, BN weight/bias/running stats
  ``[:out]``, classifier ``W[:, :c]`` (bias whole). The stem is full width, so copied whole.
* ``copy_paste_last``: a stage of depth ``d`` takes the teacher's last ``d`` blocks and the last
  channels of every tensor.
* ``copy_paste_uniform``: blocks at evenly spaced positions ``round(linspace(0, D-1, d))`` and
  channels at evenly spaced indices ``round(linspace(0, C-1, c))``.
* ``random_init``: no remapping (the student keeps its own Kaiming initialisation).

A layer's input-channel selection is always its producer's output selection, so the sliced
network computes on a consistent subset of the teacher's channels. The classifier is handled by
slicing its input columns, so students of any final width are allowed (the original instead
required the student's final width to equal the teacher's).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import DassError
from .resnet import ResNet

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _first(total: int, k: int) -> torch.Tensor:
    return torch.arange(k)


def _last(total: int, k: int) -> torch.Tensor:
    return torch.arange(total - k, total)


def _uniform(total: int, k: int) -> torch.Tensor:
    if k == 1:
        return torch.zeros(1, dtype=torch.long)
    return torch.round(torch.linspace(0, total - 1, k)).long()


_SELECT: dict[str, Callable[[int, int], torch.Tensor]] = {
    "copy_paste_first": _first,
    "copy_paste_last": _last,
    "copy_paste_uniform": _uniform,
}
REMAPS = tuple(_SELECT) + ("random_init",)


def build_remapped(arch, space, num_classes: int, teacher_sd: dict, strategy: str = "copy_paste_first",
                   init_seed: int = 0) -> ResNet:
    """Build a student and remap it. ``random_init`` students are initialised from ``init_seed`` (the
    global RNG is left untouched), so their functional maps are reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        net = ResNet(arch, space, num_classes)
    return remap(net, teacher_sd, strategy)


@torch.no_grad()
def remap(student: ResNet, teacher_sd: dict, strategy: str = "copy_paste_first") -> ResNet:
    """Copy slices of ``teacher_sd`` (a state dict of the teacher ResNet) into ``student`` in place."""
    if strategy == "random_init":
        return student
    if strategy not in _SELECT:
        raise DassError(f"unknown remap strategy '{strategy}' (known: {', '.join(REMAPS)})")
    select = _SELECT[strategy]
    sd = student.state_dict()
    missing = [k for k in ("conv1.weight", "fc.weight", "fc.bias") if k not in teacher_sd]
    if missing:
        raise DassError(f"teacher state dict lacks '{missing[0]}': not a ResNet of this project's layout")
    t_classes = teacher_sd["fc.weight"].shape[0]
    if t_classes != student.num_classes:
        raise DassError(f"teacher has {t_classes} classes, student {student.num_classes}")
    new: dict[str, torch.Tensor] = {}

    def take_conv(s_name, t_name, in_idx, out_idx):
        w = teacher_sd[t_name + ".weight"]
        new[s_name + ".weight"] = w.index_select(0, out_idx).index_select(1, in_idx)

    def take_bn(s_name, t_name, idx):
        for k in BN_KEYS:
            tk = f"{t_name}.{k}"
            if tk not in teacher_sd:
                continue
            v = teacher_sd[tk]
            new[f"{s_name}.{k}"] = v.clone() if v.ndim == 0 else v.index_select(0, idx)

    stem_t = teacher_sd["conv1.weight"].shape[0]
    stem_s = sd["conv1.weight"].shape[0]
    prev_idx = select(stem_t, stem_s)
    take_conv("conv1", "conv1", torch.arange(student.space.in_channels), prev_idx)
    take_bn("bn1", "bn1", prev_idx)
    for s, layer in enumerate(student.stages):
        d = len(layer)
        t_depth = _teacher_depth(teacher_sd, s + 1)
        if d > t_depth:
            raise DassError(f"student stage {s + 1} has {d} blocks, teacher only {t_depth}")
        blocks = select(t_depth, d)
        for b, t_b in enumerate(blocks.tolist()):
            sp, tp = f"layer{s + 1}.{b}", f"layer{s + 1}.{t_b}"
            t_width = teacher_sd[tp + ".conv1.weight"].shape[0]
            w = layer[b].width
            if w > t_width:
                raise DassError(f"student block {sp} is wider ({w}) than the teacher's ({t_width})")
            idx = select(t_width, w)
            take_conv(sp + ".conv1", tp + ".conv1", prev_idx, idx)
            take_bn(sp + ".bn1", tp + ".bn1", idx)
            take_conv(sp + ".conv2", tp + ".conv2", idx, idx)
            take_bn(sp + ".bn2", tp + ".bn2", idx)
            prev_idx = idx
    new["fc.weight"] = teacher_sd["fc.weight"].index_select(1, prev_idx)
    new["fc.bias"] = teacher_sd["fc.bias"].clone()
    for k, v in new.items():
        if sd[k].shape != v.shape:
            raise DassError(f"remap: shape of {k} {tuple(v.shape)} does not fit the student {tuple(sd[k].shape)}")
    student.load_state_dict(new, strict=True)
    return student


def _teacher_depth(teacher_sd: dict, stage: int) -> int:
    n = 0
    while f"layer{stage}.{n}.conv1.weight" in teacher_sd:
        n += 1
    if n == 0:
        raise DassError(f"teacher state dict has no blocks in layer{stage}")
    return n
