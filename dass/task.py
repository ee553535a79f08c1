"""A task: a dataset bound to a teacher in a space (:class:`Task`), and what the stages compute from it.

The database builder stores a task's outputs (student maps, the teacher's map and accuracy, dataset
features), search computes them for a new task, meta-training reads proxy batches of the tasks it
trains on: all through one :class:`Task`, so all compute them the same way.

* :meth:`Task.student_maps`: functional maps of students (``N x C x r x r``, float16 as the database
  stores them) on the task's fixed noise input (``noise_seed``), remapped from the teacher with the
  task's ``remap`` strategy (batched: :func:`dass.space.functional_maps`); :meth:`Task.teacher_map`
  is the teacher's own one (its S and T input as a support point, :meth:`Task.support_point`).
* :meth:`Task.dataset_features`: the teacher's globally pooled last-stage features (``M x C``
  float16, the database's ``dataset_feats``) of a class-balanced sample of train images
  (:func:`balanced_sample`, drawn from ``noise_seed``).
* :meth:`Task.teacher_accuracy`: top-1 accuracy in percent of the teacher on the test split (or on
  given arrays); :meth:`Task.recorded_accuracy` the one its checkpoint records.
* :meth:`Task.proxy_batches`: the image batch of each zero-cost proxy (:func:`dass.proxies.image_batch`
  with ``[seed, crc32(dataset name)]``).

The train and test arrays are loaded on first use, the teacher once (:meth:`Task.teacher`); a
teacher of another space or class count is refused with a one-line :class:`~dass.errors.DassError`.
Images go through the evaluation path of :class:`dass.data.loader.DeviceLoader` (resize to the
space's input size, normalise mean 0.5 / std 0.5, no augmentation), as in training.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import config as cfgmod
from .data.arrays import ImageArrays
from .data.loader import DeviceLoader, LoaderConfig
from .data.registry import load_dataset
from .device import resolve_device
from .errors import DassError
from .proxies.batch import image_batch, proxy_images
from .space import Arch, MapRun, SpaceConfig, build, functional_maps, teacher_arch
from .teacher.checkpoint import check_teacher_state_dict, checked_accuracy, load_teacher
from .train.distributed import single_process
from .train.trainer import precision_for, top1_accuracies


@dataclass(frozen=True)
class SupportPoint:
    """The teacher as the one labelled point of a new task: its architecture, its map (``C x r x r``,
    both its S and its T input) and its accuracy in percent (None when unknown)."""
    arch: Arch
    fmap: torch.Tensor
    accuracy: float | None


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


class Task:
    """A dataset (``dataset`` under ``data_root``) bound to a teacher (the checkpoint ``teacher``) in
    ``space``, with the remap strategy and noise seed of its functional maps, computed on ``device``
(a name, ``auto`` included, or a ``torch.device``).

    ``num_classes``: the task's class count; None: the train split's (or the teacher's, when the task
    names no dataset). Use :meth:`for_teacher` to take it from the teacher instead (search: the data
    is read only where needed)."""

    def __init__(self, space: SpaceConfig, dataset: str = "", data_root="", teacher=None,
                 num_classes: int | None = None, remap: str = "copy_paste_first", noise_seed: int = 0,
                 device="cpu"):
        self.space, self.dataset, self.data_root = space, dataset, str(data_root)
        self.teacher_path = None if teacher is None else Path(teacher)
        self.remap, self.noise_seed, self._device = remap, int(noise_seed), device
        self._classes = num_classes
        self._arrays: dict[str, ImageArrays] = {}
        self._teacher: tuple | None = None
        self._teacher_map: torch.Tensor | None = None

    @classmethod
    def for_teacher(cls, space: SpaceConfig, teacher, dataset: str = "", data_root="", **kw) -> "Task":
        """A task whose class count is its teacher's (loaded here, once)."""
        task = cls(space, dataset, data_root, teacher, **kw)
        task._teacher = load_teacher(teacher, space, task._classes)
        task._classes = int(task._teacher[2]["num_classes"])
        return task

    @property
    def device(self) -> torch.device:
        """Where the task computes (``auto`` resolved on first use: a builder process that only forks
        workers never asks CUDA)."""
        if not isinstance(self._device, torch.device):
            self._device = resolve_device(self._device)
        return self._device

    @classmethod
    def from_saved(cls, saved, data_root="", teacher=None, device="cpu") -> "Task":
        """The task a saved database task (:class:`dass.database.saved.SavedTask`) was computed on: its
        space, dataset, class count, remap and noise seed; its teacher ``teacher``, else the file's
        ``teacher_ckpt``."""
        return cls(saved.space, saved.dataset, data_root, teacher or saved.teacher_ckpt or None, saved.num_classes,
                   saved.remap, saved.noise_seed, device)

    # ------------------------------------------------------------------------------------ data
    @property
    def num_classes(self) -> int:
        if self._classes is None:
            self._classes = self.train.num_classes if self.dataset else int(self.teacher_meta["num_classes"])
        return self._classes

    def arrays(self, split: str) -> ImageArrays:
        """The ``train`` or ``test`` split (loaded once), refused when its class count is not the task's."""
        if split not in self._arrays:
            arrays = load_dataset(self.dataset, self.data_root, split)
            if self._classes is not None and arrays.num_classes != self._classes:
                raise DassError(f"dataset {self.dataset} has {arrays.num_classes} classes ({split} split), "
                                f"the task {self._classes}")
            self._classes = arrays.num_classes
            self._arrays[split] = arrays
        return self._arrays[split]

    @property
    def train(self) -> ImageArrays:
        return self.arrays("train")

    @property
    def test(self) -> ImageArrays:
        return self.arrays("test")

    def use_arrays(self, **splits: ImageArrays) -> "Task":
        """Give splits held in memory (``train=``, ``test=``) instead of reading them from ``data_root``."""
        for split, arrays in splits.items():
            if self._classes is not None and arrays.num_classes != self._classes:
                raise DassError(f"{split} arrays have {arrays.num_classes} classes, the task {self._classes}")
            self._classes = arrays.num_classes
            self._arrays[split] = arrays
        return self

    # --------------------------------------------------------------------------------- teacher
    def teacher(self) -> tuple:
        """``(net in eval mode on the CPU, state dict, meta)`` of the teacher (loaded once, see
        :func:`dass.teacher.checkpoint.load_teacher`; refused when of another space or class count)."""
        if self._teacher is None:
            if self.teacher_path is None:
                raise DassError(f"task {self.dataset or '?'}: no teacher given")
            classes = self.num_classes if self.dataset else self._classes   # the data's, checked
            self._teacher = load_teacher(self.teacher_path, self.space, classes)
            self._classes = int(self._teacher[2]["num_classes"])
        return self._teacher

    def use_teacher(self, state_dict: dict, metrics: dict | None = None) -> "Task":
        """Bind a teacher held in memory (checked against the space and class count like a file)."""
        sd, classes = check_teacher_state_dict(state_dict, self.space, "teacher state dict")
        if self._classes is not None and classes != self._classes:
            raise DassError(f"teacher has {classes} classes, the task {self._classes}")
        net = build(teacher_arch(self.space), self.space, classes)
        net.load_state_dict(sd)
        self._classes = classes
        self._teacher = (net.eval(), net.state_dict(), {"path": None, "space": self.space, "num_classes": classes,
                                                        "arch": teacher_arch(self.space), "metrics": metrics})
        return self

    @property
    def teacher_net(self):
        return self.teacher()[0]

    @property
    def teacher_sd(self) -> dict:
        return self.teacher()[1]

    @property
    def teacher_meta(self) -> dict:
        return self.teacher()[2]

    def recorded_accuracy(self) -> float | None:
        """The teacher's ``metrics.best_acc`` as its checkpoint records it (checked), else None."""
        value = (self.teacher_meta.get("metrics") or {}).get("best_acc")
        return None if value is None else checked_accuracy(value, f"{self.teacher_path}: metrics.best_acc")

    def teacher_accuracy(self, arrays: ImageArrays | None = None, batch_size: int = 256) -> float:
        """Top-1 accuracy (percent) of the teacher on ``arrays`` (default: the test split)."""
        dev = torch.device(self.device)
        net = self.teacher_net.to(dev)
        loader = DeviceLoader(self.test if arrays is None else arrays,
                              LoaderConfig(batch_size, train=False, image_size=self.space.image_size, pad=0,
                                           flip=False), device=dev)
        acc = top1_accuracies([net], loader, single_process(dev), precision_for(dev))[0]
        net.eval()
        return float(acc)

    # -------------------------------------------------------------------------------- its maps
    def student_maps(self, archs: list[Arch], batch_size: int = 256, progress: bool = False) -> torch.Tensor:
        """Last-stage maps of the remapped students, float16 (``len(archs) x C x r x r``)."""
        maps = functional_maps(archs, self.teacher_sd, self.space, self.num_classes, self.noise_seed,
                               strategy=self.remap, run=MapRun(batch_size, self.device, progress))
        return maps.half()

    def teacher_map(self) -> torch.Tensor:
        """The teacher's own map, ``C x r x r`` float16 (computed once)."""
        if self._teacher_map is None:
            self._teacher_map = self.student_maps([teacher_arch(self.space)])[0]
        return self._teacher_map

    def support_point(self, accuracy: float | None = None, fmap: torch.Tensor | None = None) -> SupportPoint:
        """The teacher as the support point: its map (``fmap`` when given: one precomputed elsewhere, as
        a candidates file of search may carry) and ``accuracy`` (default: the recorded one)."""
        acc = self.recorded_accuracy() if accuracy is None else accuracy
        return SupportPoint(teacher_arch(self.space), self.teacher_map() if fmap is None else fmap, acc)

    @torch.no_grad()
    def dataset_features(self, per_class: int, max_total: int) -> torch.Tensor:
        """``M x C`` float16 pooled last-stage features of the teacher on sampled train images
        (:func:`balanced_sample` from ``noise_seed``)."""
        train = self.train
        sub = train.subset(balanced_sample(train.labels, train.num_classes, per_class, max_total, self.noise_seed))
        net = self.teacher_net.to(self.device).eval()
        feats = []
        config = LoaderConfig(256, train=False, image_size=self.space.image_size, pad=0, flip=False)
        for x, _ in DeviceLoader(sub, config, device=self.device):
            feats.append(torch.flatten(F.adaptive_avg_pool2d(net.forward_stages(x)[-1], 1), 1).cpu())
        return torch.cat(feats).half()

    def proxy_batches(self, names, batch_size: int, seed: int) -> dict:
        """``{proxy name: (x, y)}``: each proxy's batch of train images (its
        :func:`~dass.proxies.proxy_images` count, drawn with ``[seed, crc32(dataset)]``; proxies of one
        size share one batch)."""
        by_size: dict[int, tuple] = {}
        out = {}
        for name in names:
            n = proxy_images(name, batch_size)
            if n not in by_size:
                by_size[n] = image_batch(self.dataset, self.data_root, self.space, self.num_classes, n,
                                         [int(seed), zlib.crc32(self.dataset.encode())], self.device)
            out[name] = by_size[n]
        return out
