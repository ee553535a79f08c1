"""The one ResNet used for teachers and students (OFA-style, parameter-free shortcuts).

Layout (names match the original release's checkpoints): ``conv1``/``bn1`` stem (3x3, stride 1, no
max-pool), ``layer{1..S}`` of ``BasicBlock`` (``conv1``/``bn1``/``conv2``/``bn2``), global average
pool, ``fc``. A block's shortcut has no parameters: a 2x2 max-pool when the block has stride 2, then
its channels are zero-padded up to the block's width, or cut to the first ``width`` channels when
the input is wider (the original pads with ``F.pad``, whose negative padding cuts).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .arch import Arch, validate
from .config import SpaceConfig


def match_channels(x: torch.Tensor, c: int) -> torch.Tensor:
    """Zero-pad or cut dim 1 of ``x`` to ``c`` channels."""
    have = x.shape[1]
    if have == c:
        return x
    if have > c:
        return x[:, :c]
    return F.pad(x, (0, 0, 0, 0, 0, c - have))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        self.stride = stride
        self.width = width
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = F.max_pool2d(x, 2)
        return match_channels(x, self.width)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, arch: Arch, space: SpaceConfig, num_classes: int):
        super().__init__()
        validate(arch, space)
        self.arch = arch
        self.space = space
        self.num_classes = num_classes
        c = space.stem_width
        self.conv1 = nn.Conv2d(space.in_channels, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        for s, (ws, stride) in enumerate(zip(arch.widths, space.stage_strides)):
            blocks = []
            for b, w in enumerate(ws):
                blocks.append(BasicBlock(c, w, stride if b == 0 else 1))
                c = w
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.is_meta:  # a meta tensor holds no values: on
                # one, normal_ would only cost (it imports torch._dynamo, ~1.5 s of a process's start)
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{s + 1}") for s in range(self.space.num_stages)]

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every stage (after its last block)."""
        x = F.relu(self.bn1(self.conv1(x)))
        outs = []
        for layer in self.stages:
            x = layer(x)
            outs.append(x)
        return outs

    def head(self, feat: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(feat, 1), 1))

    def forward(self, x: torch.Tensor, return_stages: bool = False):
        outs = self.forward_stages(x)
        logits = self.head(outs[-1])
        return (logits, outs) if return_stages else logits


def build(arch: Arch, space: SpaceConfig, num_classes: int) -> ResNet:
    return ResNet(arch, space, num_classes)
