"""Zero-cost proxies of a task's students: the image batch they are computed on, and one proxy over
a list of architectures remapped from the task's teacher.

Used by the evaluation's baselines (one score per database student) and by the predictor's proxy
inputs (meta-training, evaluation and search), so all of them score a student the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..data.loader import DeviceLoader, LoaderConfig
from ..data.registry import load_dataset
from ..errors import DassError
from ..space import Arch, SpaceConfig, build, build_remapped, teacher_arch
from . import masked, zero_cost

# the proxies :func:`archs_proxy` computes: the one-network proxies and DisWOT (student vs teacher)
ARCH_PROXIES = (*zero_cost.PROXIES, "diswot")
# images a proxy is computed on where the configured proxy batch is smaller (``inherit`` is an
# accuracy: on 32 images it takes a handful of values)
PROXY_IMAGES = {"inherit": 1024}


def proxy_images(name: str, batch_size: int) -> int:
    """The number of images proxy ``name`` is computed on, given the configured batch size."""
    return max(int(batch_size), PROXY_IMAGES.get(name, 0))


def image_batch(dataset: str, data_root: str, space: SpaceConfig, num_classes: int, n: int, seed,
                device) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` train images of ``dataset`` drawn without replacement with ``seed`` (resized to the
    space's input, normalised, no augmentation) and their labels, on ``device``."""
    arrays = load_dataset(dataset, data_root, "train")
    if arrays.num_classes != num_classes:
        raise DassError(f"{dataset} has {arrays.num_classes} classes, the task {num_classes}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(arrays), size=min(n, len(arrays)), replace=False))
    if len(idx) < 2:
        raise DassError(f"{dataset} has fewer than 2 train images")
    loader = DeviceLoader(arrays.subset(idx), LoaderConfig(len(idx), train=False, image_size=space.image_size,
                                                           pad=0, flip=False), device=device)
    return next(iter(loader))


@dataclass
class ProxySetting:
    """What a task's students' proxies are computed against: their space and class count, the teacher
    weights they are remapped from with ``strategy``, and the device. ``teacher_digest``: the
    teacher's :func:`dass.hashing.proxy_state_sha256` when the caller knows it (the cache's key);
    ``teacher_sd`` None with a digest: the teacher is not at hand, its proxies can only be read from
    a cache (:func:`dass.proxies.cache.stored_archs_proxy`)."""

    space: SpaceConfig
    num_classes: int
    teacher_sd: dict | None
    strategy: str = "copy_paste_first"
    device: object = "cpu"
    teacher_digest: str | None = None


def archs_proxy(name: str, archs: list[Arch], setting: ProxySetting, batch: tuple, progress: bool = False,
                desc: str = "", batched: bool = True) -> np.ndarray:
    """Proxy ``name`` (:data:`ARCH_PROXIES`) of each architecture, remapped from ``setting.teacher_sd``
    with ``setting.strategy``, on ``batch = (x, y)`` (float64). ``diswot`` compares each student's stage
    relations with those of the teacher (``teacher_sd``) on ``x`` (:func:`zero_cost.diswot`).
    ``naswot``, ``synflow`` and ``diswot`` of ``copy_paste_first`` students are computed in batched
    passes of the teacher (:mod:`.masked`; the same values within rounding) unless ``batched`` is
    False, which builds and runs each student (the reference)."""
    if name not in ARCH_PROXIES:
        raise DassError(f"unknown proxy {name!r} (known: {', '.join(ARCH_PROXIES)})")
    if setting.teacher_sd is None:
        raise DassError(f"proxy {name}: computing it needs the teacher's weights, none given")
    space, num_classes, teacher_sd, strategy, device = (setting.space, setting.num_classes, setting.teacher_sd,
                                                         setting.strategy, setting.device)
    x, y = batch
    fast = batched and strategy == "copy_paste_first" and name in masked.BATCHED
    teacher_rel = None
    if name == "diswot":
        teacher = build(teacher_arch(space), space, num_classes)
        teacher.load_state_dict(teacher_sd)
        teacher_rel = zero_cost.relation_matrices(teacher.to(device), x)
        if fast:
            return masked.diswot(archs, space, num_classes, teacher_sd, teacher_rel, x)
    if fast and name == "naswot":
        return masked.naswot(archs, space, num_classes, teacher_sd, x)
    if fast and name == "synflow":
        return masked.synflow(archs, space, num_classes, teacher_sd, tuple(x.shape[1:]), device)
    out = []
    for arch in tqdm(archs, desc=desc or name, leave=False, disable=not progress):
        net = build_remapped(arch, space, num_classes, teacher_sd, strategy).to(device)
        out.append(zero_cost.diswot(net, teacher_rel, x) if teacher_rel is not None
                   else zero_cost.compute(name, net, x, y))
    return np.array(out, dtype=np.float64)
