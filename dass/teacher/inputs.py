"""Task-level predictor inputs computed from a teacher and a dataset. They live in the teacher layer,
below both the database builder (which stores them) and search (which computes them for a new task),
so that both compute them the same way.

* :func:`candidate_maps`: functional maps of students (``N x C x r x r``, float16 as the database
  stores them) on the task's fixed noise input (``noise_seed``); :func:`teacher_map` is the
  teacher's own one (its S and T input as a support point).
* :func:`dataset_features`: the teacher's globally pooled last-stage features (``M x C`` float16,
  the database's ``dataset_feats``) of a class-balanced sample of train images: ``per_class`` images
  of every class drawn without replacement, then, when that exceeds ``max_total``, a uniform subset
  of ``max_total`` of them (sorted by index; all draws from ``seed``).
* :func:`teacher_accuracy`: top-1 accuracy in percent of the teacher on a labelled image set.

Images go through the evaluation path of :class:`dass.data.loader.DeviceLoader` (resize to the
space's input size, normalise mean 0.5 / std 0.5, no augmentation), as in training.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.arrays import ImageArrays
from ..data.loader import DeviceLoader, LoaderConfig
from ..space import Arch, SpaceConfig, functional_maps, teacher_arch
from ..train.distributed import single_process
from ..train.trainer import precision_for, top1_accuracies


def candidate_maps(archs: list[Arch], teacher_sd: dict, space: SpaceConfig, num_classes: int, seed: int,
                   strategy: str = "copy_paste_first", batch_size: int = 256, device="cpu",
                   progress: bool = False) -> torch.Tensor:
    """Last-stage maps of the remapped students, float16 (``len(archs) x C x r x r``)."""
    maps = functional_maps(archs, teacher_sd, space, num_classes, seed, strategy=strategy,
                           batch_size=batch_size, device=device, progress=progress)
    return maps.half()


def teacher_map(teacher_sd: dict, space: SpaceConfig, num_classes: int, seed: int,
                strategy: str = "copy_paste_first", device="cpu") -> torch.Tensor:
    """The teacher's own map, ``C x r x r`` float16."""
    return candidate_maps([teacher_arch(space)], teacher_sd, space, num_classes, seed, strategy, device=device)[0]


def balanced_sample(labels: np.ndarray, num_classes: int, per_class: int, max_total: int, seed: int) -> np.ndarray:
    """Sorted indices: ``per_class`` of each class, then at most ``max_total`` of those (uniformly)."""
    rng = np.random.default_rng(seed)
    idx = []
    for c in range(num_classes):
        where = np.flatnonzero(labels == c)
        idx.extend(rng.choice(where, size=min(per_class, len(where)), replace=False).tolist())
    idx = np.array(idx, dtype=np.int64)
    if len(idx) > max_total:
        idx = rng.choice(idx, size=max_total, replace=False)
    return np.sort(idx)


@torch.no_grad()
def dataset_features(net: nn.Module, arrays: ImageArrays, per_class: int, max_total: int, seed: int,
                     image_size: int, device) -> torch.Tensor:
    """``M x C`` float16 pooled last-stage features of ``net`` (a teacher ResNet) on sampled train images."""
    idx = balanced_sample(arrays.labels, arrays.num_classes, per_class, max_total, seed)
    sub = arrays.subset(idx)
    net = net.to(device).eval()
    feats = []
    for x, _ in DeviceLoader(sub, LoaderConfig(256, train=False, image_size=image_size, pad=0, flip=False),
                             device=device):
        feats.append(torch.flatten(F.adaptive_avg_pool2d(net.forward_stages(x)[-1], 1), 1).cpu())
    return torch.cat(feats).half()


def teacher_accuracy(net: nn.Module, arrays: ImageArrays, image_size: int, device, batch_size: int = 256) -> float:
    """Top-1 accuracy (percent) of ``net`` on ``arrays``."""
    dev = torch.device(device)
    net = net.to(dev)
    loader = DeviceLoader(arrays, LoaderConfig(batch_size, train=False, image_size=image_size, pad=0, flip=False),
                          device=dev)
    acc = top1_accuracies([net], loader, single_process(dev), precision_for(dev))[0]
    net.eval()
    return float(acc)
