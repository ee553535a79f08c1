"""Teacher logits computed once and shared by every KD student trained on the same batches.

All students of a task trained with the same seed see the same augmented batches (the loader's
order and augmentation depend only on (seed, epoch)) and the teacher runs in eval mode, so its
logits for those batches are the same for every student. :func:`teacher_logits` computes them once
-- the same loader, the same teacher forward, the same device and precision as a live run -- and
stores them in a folder; any later student, in lockstep or alone, in any process, reads them back
instead of running the teacher. The values are the teacher's outputs cast to float32 (exact for
bf16/fp16 autocast outputs), so a run with the cache is bitwise identical to one without.

Files, content-addressed by :func:`cache_identity` (``<key>`` = its hash)::

    <folder>/<key>.npy    float32 [epochs, steps, batch, classes], a plain .npy (memory-mapped when read)
    <folder>/<key>.json   {format, identity, shape, bytes, sha256}: written after the .npy; a cache
                          exists only when both files are present and agree

Both are written atomically (temporary file + ``os.replace``). A cache whose header is missing or
unreadable, whose identity, shape or size differs, or whose bytes do not hash to the header's
sha256 (truncated, corrupted, half-replaced) is never used: it is rebuilt and rewritten. Workers
that need the same cache at the same time serialise on ``<key>.lock`` (``fcntl.flock``): one
computes, the others either wait and read its file or (``wait=False``, as the database builder
does) run the teacher themselves for that one run; where locking is unavailable each computes the
same bytes and the last atomic rename wins, leaving one valid pair.

Identity: the format, the teacher's weights (sha256 of its state dict), the train data (sha256 of
images and labels), the image size, the batch plan (seed, epochs, per-process batch, crop padding,
flip, mean, std, rank, world size) and how the teacher ran (device type, autocast dtype, memory
format, torch version). Nothing else of the recipe (learning rate, loss weights...) enters, so
students trained with other optimiser settings share the file.

Reading: the .npy is opened with ``np.load(mmap_mode="r")`` (the OS shares its pages between
processes); one epoch's slice ``[steps, batch, classes]`` is copied to the training device once per
epoch and each step takes a view of it, so nothing moves between devices per step.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..hashing import arrays_sha256, file_sha256, json_sha256, tensor_dict_sha256
from ..io import atomic_write_json
from ..io import file_lock as _lock

FORMAT = "dass-teacher-logits-v1"
log = logging.getLogger("dass.train")


def cache_identity(teacher_sd: dict, train, loader, precision, epochs: int) -> dict:
    """Everything that determines the teacher's logits of every train batch (see the module doc)."""
    return {"format": FORMAT, "teacher": tensor_dict_sha256(teacher_sd), "data": arrays_sha256(train),
            "num_classes": int(train.num_classes), "image_size": int(loader.image_size),
            "seed": int(loader.seed), "epochs": int(epochs), "batch": int(loader.batch_size),
            "steps": len(loader), "pad": int(loader.pad), "flip": bool(loader.flip),
            "mean": loader.mean.flatten().tolist(), "std": loader.std.flatten().tolist(),
            "rank": int(loader.rank), "world_size": int(loader.world_size),
            "device": loader.device.type, "autocast": str(precision.dtype), "channels_last": bool(precision.channels_last),
            "torch": torch.__version__}


class TeacherLogits:
    """The cached logits ``[epochs, steps, batch, classes]`` (memory-mapped) for one training device."""

    def __init__(self, array: np.ndarray, device: torch.device, path: Path | None = None, built: bool = False):
        self.array = array
        self.device = device
        self.path = path
        self.built = built  # True when this call computed the logits (a cache miss)
        self._epoch, self._slice = None, None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def epoch(self, epoch: int) -> torch.Tensor:
        """float32 ``[steps, batch, classes]`` of ``epoch`` on the device (copied once per epoch)."""
        if self._epoch != epoch:
            self._slice = torch.from_numpy(np.array(self.array[epoch], dtype=np.float32)).to(self.device)
            self._epoch = epoch
        return self._slice


@torch.no_grad()
def compute_logits(teacher: nn.Module, loader, epochs: int, precision) -> np.ndarray:
    """The teacher's logits of every train batch of ``epochs`` epochs, exactly as a live run computes them."""
    first = loader.epoch
    out = None
    try:
        for e in range(epochs):
            loader.set_epoch(e)
            for s, (x, _) in enumerate(loader):
                with precision.autocast(loader.device):
                    logits = teacher(x)
                if out is None:
                    out = np.empty((epochs, len(loader), *logits.shape), dtype=np.float32)
                out[e, s] = logits.float().cpu().numpy()
    finally:
        loader.set_epoch(first)
    return out


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_valid(folder: Path, key: str, identity: dict, shape: tuple | None) -> np.ndarray | None:
    """The memory-mapped array of a complete, intact cache; None (with the reason logged) otherwise."""
    header, data = folder / f"{key}.json", folder / f"{key}.npy"
    if not header.is_file() and not data.is_file():
        return None
    try:
        meta = json.loads(header.read_text())
        if meta.get("format") != FORMAT or meta.get("identity") != identity:
            raise ValueError("header does not match this run")
        if shape is not None and tuple(meta.get("shape", ())) != tuple(shape):
            raise ValueError(f"shape {meta.get('shape')} != expected {list(shape)}")
        if data.stat().st_size != meta["bytes"]:
            raise ValueError(f"{data.stat().st_size} bytes, header says {meta['bytes']}")
        if file_sha256(data) != meta["sha256"]:
            raise ValueError("checksum mismatch")
        array = np.load(data, mmap_mode="r", allow_pickle=False)
        if array.dtype != np.float32 or tuple(array.shape) != tuple(meta["shape"]):
            raise ValueError(f"array {array.dtype} {array.shape} != header {meta['shape']}")
        return array
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        log.warning("teacher-logit cache %s is invalid (%s); rebuilding it", data, e)
        return None


def teacher_logits(folder, identity: dict, make_teacher: Callable[[], nn.Module], loader, epochs: int,
                   precision, wait: bool = True) -> TeacherLogits | None:
    """The cached logits of ``identity`` from ``folder``; on a miss (or an invalid cache) the teacher
    from ``make_teacher()`` computes them over ``loader``'s batches and the cache is written.

    When another process is writing the same cache, ``wait=True`` waits for it and reads its file;
    ``wait=False`` returns None at once (the caller then runs the teacher itself: the same logits,
    and no idle worker)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = json_sha256(identity)[:24]
    expected = (epochs, len(loader), loader.batch_size, int(identity["num_classes"]))
    array = _read_valid(folder, key, identity, expected)
    if array is not None:
        return TeacherLogits(array, loader.device, folder / f"{key}.npy")
    with _lock(folder / f"{key}.lock", wait) as locked:
        if not locked:
            return None
        array = _read_valid(folder, key, identity, expected)  # another worker may have written it meanwhile
        if array is not None:
            return TeacherLogits(array, loader.device, folder / f"{key}.npy")
        logits = compute_logits(make_teacher(), loader, epochs, precision)
        if tuple(logits.shape) != expected:
            raise ValueError(f"teacher logits have shape {logits.shape}, expected {expected}")
        data = folder / f"{key}.npy"
        _atomic_save_npy(data, logits)
        atomic_write_json(folder / f"{key}.json", {"format": FORMAT, "identity": identity,
                                                   "shape": list(logits.shape), "bytes": data.stat().st_size,
                                                   "sha256": file_sha256(data)})
    return TeacherLogits(logits, loader.device, data, built=True)
