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
import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import DassError
from ..hashing import proxy_state_sha256
from ..proxies.batch import ProxySetting
from ..proxies.cache import MissingProxy, ProxyCache, cached_archs_proxy
from ..space import teacher_arch
from ..task import Task
from .config import PROXY_INPUTS, check_proxy_names

FLOOR = -50.0

log = logging.getLogger("dass.predictor")


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
    (entries labelled ``<label>.<proxy>`` and ``<label>.<proxy>.teacher``). Without the teacher's
    weights (``setting.teacher_sd`` None, the teacher named by ``setting.teacher_digest``) every
    entry is read from ``cache``; one it does not hold raises :class:`MissingProxy`."""
    if setting.teacher_sd is None and not setting.teacher_digest:
        raise DassError(f"{label or 'proxy features'}: neither the teacher's weights nor its digest given")
    if cache is not None and setting.teacher_digest is None:
        setting = dataclasses.replace(setting, teacher_digest=proxy_state_sha256(setting.teacher_sd))
    space = setting.space
    cols = []
    for name in names:
        t = cached_archs_proxy(cache, f"{label}.{name}.teacher", name, [teacher_arch(space)], setting,
                               batches_[name])[0]
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
    in common. A task whose teacher checkpoint is missing or unreadable but whose file records the
    teacher's digest (``teacher_digest``, :mod:`dass.database.format`) reads all its proxies from the
    cache (the same features); one the cache lacks is a one-line error naming the task and proxy."""
    names = check_proxy_names(names)
    if not isinstance(cache, ProxyCache):
        cache = ProxyCache(cache) if cache else None
    for t in tasks:
        task = Task(t.space, t.dataset, data_root, t.teacher_ckpt or None, t.num_classes, t.remap, t.noise_seed,
                    device)
        sd = _teacher_weights(t, task)
        b = task.proxy_batches(names, batch_size, seed)
        setting = ProxySetting(t.space, t.num_classes, sd, t.remap, device,
                               teacher_digest=None if sd is not None else t.teacher_digest)
        try:
            f = features(names, t.archs, setting, b, progress, cache, label=t.key)
        except MissingProxy as e:
            where = "no proxy cache given" if cache is None else f"proxy cache {cache.describe()}"
            raise DassError(f"task {t.key}: proxy {e.name} ({e.entry}) is not in the {where}; computing it needs "
                            f"the task's teacher checkpoint, expected at '{t.teacher_ckpt}'") from None
        t.proxy = f.float().reshape(len(t), len(names))


def _teacher_weights(t, task: Task) -> dict | None:
    """The teacher state dict of task ``t`` as the proxies are computed from (and the cache keys it);
    None when its checkpoint is missing or unreadable but ``t`` records the teacher's digest."""
    digest = getattr(t, "teacher_digest", "")
    if not t.teacher_ckpt or not Path(t.teacher_ckpt).is_file():
        if digest:
            return None
        raise DassError(f"task {t.key}: proxy inputs need its teacher checkpoint, not found: '{t.teacher_ckpt}' "
                        f"(or a task file recording teacher.proxy_digest and a proxy cache holding its proxies)")
    try:
        return task.teacher_sd
    except DassError as e:
        if not digest:
            raise
        log.warning("task %s: teacher checkpoint not readable (%s); its proxies are read from the cache by the "
                    "digest its task file records", t.key, e)
        return None
