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
name)]`` (:func:`dass.proxies.image_batch`), the same in meta-training, evaluation and
search; a proxy that needs more images gets a batch of its own size, drawn the same way
(:func:`dass.proxies.proxy_images`: 1,024 for ``inherit``). Proxies are computed on the remapped, untrained student (the task's remap strategy), as in
:mod:`dass.proxies`. Database features are cached per task and proxy under ``cache_dir``.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DassError
from ..io import atomic_torch_save, safe_torch_load
from ..proxies.batch import archs_proxy, image_batch, proxy_images
from ..space import teacher_arch
from ..teacher.checkpoint import load_teacher
from .config import PROXY_INPUTS, check_proxy_names as check_names  # noqa: F401 (re-exported)

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


def batch(dataset: str, data_root: str, space, num_classes: int, batch_size: int, seed: int, device):
    return image_batch(dataset, data_root, space, num_classes, batch_size, [int(seed), zlib.crc32(dataset.encode())],
                       device)


def batches(names, dataset: str, data_root: str, space, num_classes: int, batch_size: int, seed: int,
            device) -> dict:
    """``{proxy name: (x, y)}``: each proxy's image batch (:func:`batch` of its
    :func:`~dass.proxies.proxy_images` size; proxies of one size share one batch)."""
    by_size: dict[int, tuple] = {}
    out = {}
    for name in names:
        n = proxy_images(name, batch_size)
        if n not in by_size:
            by_size[n] = batch(dataset, data_root, space, num_classes, n, seed, device)
        out[name] = by_size[n]
    return out


def features(names, archs, space, num_classes: int, teacher_sd: dict, strategy: str, batches_: dict, device,
             progress: bool = False) -> torch.Tensor:
    """``N x P`` float32 proxy features of ``archs`` against the teacher (``teacher_sd``), each proxy on
    its batch in ``batches_`` (:func:`batches`)."""
    cols = []
    for name in names:
        x, y = batches_[name]
        t = archs_proxy(name, [teacher_arch(space)], space, num_classes, teacher_sd, strategy, x, y, device)[0]
        v = archs_proxy(name, archs, space, num_classes, teacher_sd, strategy, x, y, device, progress)
        cols.append(relative(name, v, t))
    return torch.tensor(np.stack(cols, axis=1), dtype=torch.float32).reshape(len(archs), len(cols))


def attach(tasks, names, data_root: str, batch_size: int, seed: int, cache_dir=None, device="cpu",
           progress: bool = False) -> None:
    """Set ``task.proxy`` (``N x P``, columns in ``names`` order) of every
    :class:`~dass.predictor.data.TaskData`. With ``cache_dir`` each proxy's column is cached in its own
    file, ``<task key>.<proxy>.pt``, used when it was computed on the same batch, teacher and students,
    so runs that read different proxy sets share what they have in common."""
    names = check_names(names)
    for t in tasks:
        cols: dict[str, torch.Tensor] = {}
        paths = {n: Path(cache_dir) / f"{t.key}.{n}.pt" if cache_dir else None for n in names}
        keys = {n: {"name": n, "batch_size": proxy_images(n, batch_size), "seed": int(seed),
                    "teacher_ckpt": t.teacher_ckpt,
                    "dataset": t.dataset, "n": len(t)} for n in names}
        for n in names:
            if paths[n] is not None and paths[n].is_file():
                d = safe_torch_load(paths[n])
                if d.get("key") == keys[n]:
                    cols[n] = d["proxy"]
        todo = [n for n in names if n not in cols]
        if todo:
            if not t.teacher_ckpt or not Path(t.teacher_ckpt).is_file():
                raise DassError(f"task {t.key}: proxy inputs need its teacher checkpoint, not found: "
                                f"'{t.teacher_ckpt}'")
            _, sd, _ = load_teacher(t.teacher_ckpt, t.space, t.num_classes)
            b = batches(todo, t.dataset, data_root, t.space, t.num_classes, batch_size, seed, device)
            new = features(todo, t.archs, t.space, t.num_classes, sd, t.remap, b, device, progress)
            for j, n in enumerate(todo):
                cols[n] = new[:, j]
                if paths[n] is not None:
                    atomic_torch_save({"key": keys[n], "proxy": cols[n]}, paths[n])
        t.proxy = torch.stack([cols[n].float().reshape(len(t)) for n in names], dim=1)
