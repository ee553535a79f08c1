"""Zero-cost proxies as predictor inputs (``proxies: [naswot, synflow, diswot]`` in meta-training).

A proxy feature is the student's proxy *relative to the teacher's* on the same image batch, so it
is comparable across tasks and known for a single candidate at search time (no statistics over a
population): ``naswot``: ``logdet K(student) - logdet K(teacher)``; ``synflow``: ``log synflow(student)
- log synflow(teacher)``; ``diswot``: DisWOT's relation score of the student against the teacher
(:func:`dass.proxies.zero_cost.diswot`, already relative: the teacher's own is 0); ``inherit``:
``(inherit(student) - inherit(teacher)) / 100``, the accuracy the student inherits (batch-statistics
BN, :func:`dass.proxies.zero_cost.inherit`) below the teacher's own, as a fraction. Non-finite values (a singular NASWOT kernel) become :data:`FLOOR`, and
values are clipped below at it. The teacher's own features are 0 (its support row).

The batch: ``batch_size`` train images of the task's dataset drawn with ``[seed, crc32(dataset
name)]`` (:meth:`dass.task.Task.proxy_batches`), the same in meta-training, evaluation and
search; a proxy that needs more images gets a batch of its own size, drawn the same way
(:func:`dass.proxies.proxy_images`: 1,024 for ``inherit``). Proxies are computed on the remapped, untrained student (the task's remap strategy), as in
:mod:`dass.proxies`. Database features are cached under ``cache_dir`` (:mod:`dass.proxies.cache`).
"""
from __future__ import annotations

import dataclasses

from pathlib import Path

import numpy as np
import torch

from ..errors import DassError
from ..hashing import proxy_state_sha256
from ..proxies.batch import ProxySetting
from ..proxies.cache import ProxyCache, cached_archs_proxy
from ..space import teacher_arch
from ..task import Task
from .config import PROXY_INPUTS, check_proxy_names

FLOOR = -50.0


def relative(name: str, values, teacher: float) -> np.ndarray:
    """The feature of :data:`PROXY_INPUTS` proxy ``name`` (see module doc)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "naswot":
            f = v - float(teacher)
        elif name == "synflow":
            f = np.log(v) - np.log(float(teacher))
        elif name == "diswot":
            f = v - float(teacher)
        elif name == "inherit":
            f = (v - float(teacher)) / 100.0
        else:
            raise DassError(f"unknown proxy input {name!r} (known: {', '.join(PROXY_INPUTS)})")
    f[~np.isfinite(f)] = FLOOR
    return np.maximum(f, FLOOR)


def features(names, archs, setting: ProxySetting, batches_: dict, progress: bool = False,
             cache: ProxyCache | None = None, label: str = "") -> torch.Tensor:
    """``N x P`` float32 proxy features of ``archs`` against the teacher of ``setting`` (remapped with
    its strategy, on its device), each proxy on its batch in ``batches_``
    (:meth:`dass.task.Task.proxy_batches`). With ``cache`` (:class:`dass.proxies.cache.ProxyCache`)
    the raw proxies of the students and of the teacher are read from it, or computed and stored
    (entries labelled ``<label>.<proxy>`` and ``<label>.<proxy>.teacher``)."""
    if cache is not None and setting.teacher_digest is None:
        setting = dataclasses.replace(setting, teacher_digest=proxy_state_sha256(setting.teacher_sd))
    space = setting.space
    cols = []
    for name in names:
        t = cached_archs_proxy(cache, f"{label}.{name}.teacher", name, [teacher_arch(space)], setting, batches_[name])[0]
        v = cached_archs_proxy(cache, f"{label}.{name}", name, archs, setting, batches_[name], progress)
        cols.append(relative(name, v, t))
    return torch.tensor(np.stack(cols, axis=1), dtype=torch.float32).reshape(len(archs), len(cols))


def attach(tasks, names, data_root: str, batch_size: int, seed: int, cache=None, device="cpu",
           progress: bool = False) -> None:
    """Set ``task.proxy`` (``N x P``, columns in ``names`` order) of every
    :class:`~dass.predictor.data.TaskData`. With ``cache`` (a folder, or a
    :class:`~dass.proxies.cache.ProxyCache`, which may also read shipped folders) the proxies are
    cached (:mod:`dass.proxies.cache`: keyed by the students, the teacher's weights and the batch's
    bytes), so runs that read different proxy sets, or the same proxies again, share what they have
    in common."""
    names = check_proxy_names(names)
    if not isinstance(cache, ProxyCache):
        cache = ProxyCache(cache) if cache else None
    for t in tasks:
        if not t.teacher_ckpt or not Path(t.teacher_ckpt).is_file():
            raise DassError(f"task {t.key}: proxy inputs need its teacher checkpoint, not found: "
                            f"'{t.teacher_ckpt}'")
        task = Task(t.space, t.dataset, data_root, t.teacher_ckpt, t.num_classes, t.remap, t.noise_seed, device)
        b = task.proxy_batches(names, batch_size, seed)
        setting = ProxySetting(t.space, t.num_classes, task.teacher_sd, t.remap, device)
        t.proxy = features(names, t.archs, setting, b, progress, cache, label=t.key).float().reshape(len(t), len(names))
