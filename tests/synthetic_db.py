"""A tiny synthetic meta-training database in the ``dass-db-v1`` format, for tests.

Each task has its own randomly initialised teacher of :func:`tiny_space` (maps 16 x 2 x 2, real
functional maps of the remapped students) and students whose accuracy is a known function of the
architecture: ``acc = base_k + scale_k * log(macs / smallest macs) + noise`` (percent), with a
task-dependent ``base_k`` and ``scale_k``. A predictor that learns the architecture -> size
relation ranks held-out tasks' students almost perfectly.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from dass import config as cfgmod
from dass.data.arrays import ImageArrays
from dass.database.format import FORMAT_V1 as FORMAT, save_task_db
from dass.search import smallest_arch
from dass.space import (Arch, ResNet, SpaceConfig, macs, onehot, onehot_batch, params, sample_unique,
                        teacher_arch)
from dass.task import Task

NUM_CLASSES = 5


def tiny_space() -> SpaceConfig:
    return SpaceConfig(name="tiny", stage_widths=[4, 8, 8, 16], stage_strides=[1, 2, 2, 2], depths=[1, 2],
                       width_mults=[0.5, 0.75, 1.0], image_size=16, in_channels=3, num_classes=NUM_CLASSES)


def random_teacher_sd(space: SpaceConfig, seed: int) -> dict:
    """A randomly initialised teacher with non-trivial BN statistics."""
    torch.manual_seed(seed)
    net = ResNet(teacher_arch(space), space, NUM_CLASSES)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return net.state_dict()


def teacher_net(sd: dict, space: SpaceConfig) -> ResNet:
    net = ResNet(teacher_arch(space), space, NUM_CLASSES)
    net.load_state_dict(sd)
    return net.eval()


def accuracy(arch: Arch, space: SpaceConfig, base: float, scale: float) -> float:
    return base + scale * math.log(macs(arch, space, NUM_CLASSES) / macs(smallest_arch(space), space, NUM_CLASSES))


def write_task(root, key: str, split: str, space: SpaceConfig, n_students: int, seed: int,
               noise: float = 0.2, noise_seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    base, scale = float(rng.uniform(20, 45)), float(rng.uniform(3, 8))
    sd = random_teacher_sd(space, seed)
    t = teacher_arch(space)
    archs = sample_unique(space, n_students, rng, exclude={t})
    acc = torch.tensor([accuracy(a, space, base, scale) for a in archs]) + noise * torch.randn(
        n_students, generator=torch.Generator().manual_seed(seed))
    acc = acc.clamp(0, 100).float()
    images = ImageArrays(rng.integers(0, 256, size=(20, 16, 16, 3), dtype=np.uint8), np.arange(20) % NUM_CLASSES,
                         NUM_CLASSES, key)
    t_acc = min(accuracy(t, space, base, scale) + 1.0, 100.0)
    task = Task(space, key, noise_seed=noise_seed).use_teacher(sd).use_arrays(train=images)
    d = {
        "format": FORMAT,
        "task": {"key": key, "dataset": key, "split": split, "num_classes": NUM_CLASSES,
                 "teacher_ckpt": "", "data_root": ""},
        "space": cfgmod.to_dict(space),
        "noise_seed": noise_seed,
        "remap": "copy_paste_first",
        "recipe": {"synthetic": True},
        "teacher": {"arch": t.to_dict(), "best_acc": t_acc, "final_acc": t_acc,
                    "macs": macs(t, space, NUM_CLASSES), "params": params(t, space, NUM_CLASSES),
                    "onehot": onehot(t, space), "fmap": task.teacher_map()},
        "students": {"arch": [a.to_dict() for a in archs],
                     "onehot": onehot_batch(archs, space),
                     "fmap": task.student_maps(archs),
                     "best_acc": acc, "final_acc": (acc - 0.5).clamp(0, 100), "final_loss": torch.ones(n_students),
                     "macs": torch.tensor([macs(a, space, NUM_CLASSES) for a in archs]),
                     "params": torch.tensor([params(a, space, NUM_CLASSES) for a in archs]),
                     "wall_s": torch.zeros(n_students), "seed": torch.zeros(n_students, dtype=torch.int64)},
        "dataset_feats": task.dataset_features(per_class=3, max_total=12),
    }
    save_task_db(d, f"{root}/{key}.pt")
    return d


def write_synthetic_db(root, n_train: int = 4, n_valid: int = 2, n_test: int = 2, n_students: int = 60,
                       noise: float = 0.2) -> SpaceConfig:
    """Write ``n_train + n_valid + n_test`` task files under ``root``; return their space."""
    space = tiny_space()
    k = 0
    for split, n in (("meta_train", n_train), ("meta_valid", n_valid), ("meta_test", n_test)):
        for _ in range(n):
            write_task(root, f"synth-{k}", split, space, n_students, seed=100 + k, noise=noise)
            k += 1
    return space
