"""A saved task: one task file of the database (:mod:`dass.database.format`) as a typed object.

:class:`SavedTask` is how the stages read a task file: the evaluation scores its students, the
predictor builds its inputs from it (:meth:`dass.predictor.data.TaskData.from_saved`), and
:meth:`dass.task.Task.from_saved` binds it to its data and teacher. :func:`load_saved_tasks` is
:func:`~dass.database.format.load_db` (same files, order and checks) giving saved tasks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import from_dict
from ..errors import DassError
from ..space import Arch, SpaceConfig, validate
from .format import load_db
from .splits import LABELS, META_SPLITS


def check_label(label: str) -> str:
    if label not in LABELS:
        raise DassError(f"label must be one of {list(LABELS)}, got {label!r}")
    return label


@dataclass(frozen=True, eq=False)
class SavedTask:
    """One database task. Per-student tensors in the file's order and dtype (accuracies in percent,
    maps float16); ``labels`` holds every accuracy label of :data:`~dass.database.splits.LABELS` and,
    in v2 files, their per-seed ``<label>_seeds`` (``N x S``)."""
    key: str
    dataset: str
    split: str
    num_classes: int
    space: SpaceConfig
    archs: list[Arch]
    labels: dict[str, torch.Tensor]
    onehot: torch.Tensor              # N x D float32
    fmap: torch.Tensor                # N x C x r x r
    macs: torch.Tensor                # N int64
    params: torch.Tensor              # N int64
    teacher_arch: Arch
    teacher_acc: float                # the teacher's best_acc
    teacher_onehot: torch.Tensor      # D
    teacher_fmap: torch.Tensor        # C x r x r
    teacher_ckpt: str                 # "" when not recorded
    teacher_digest: str               # teacher.proxy_digest, "" when not recorded
    noise_seed: int
    remap: str
    dataset_feats: torch.Tensor | None   # M x C float16
    recipe: dict | None               # the KD recipe that made the labels, None when not stored

    @classmethod
    def from_db(cls, d: dict) -> "SavedTask":
        """The saved task of a task dict (as :func:`~dass.database.format.load_task_db` gives it)."""
        task, st, te = d["task"], d["students"], d["teacher"]
        key = str(task["key"])
        space = from_dict(SpaceConfig, dict(d["space"]), where=f"task {key} (space)")
        labels = {k: st[k] for k in (*LABELS, *(f"{label}_seeds" for label in LABELS)) if k in st}
        return cls(key=key, dataset=str(task.get("dataset", key)), split=str(task["split"]),
                   num_classes=int(task["num_classes"]), space=space,
                   archs=[validate(Arch.from_dict(a), space) for a in st["arch"]], labels=labels,
                   onehot=st["onehot"], fmap=st["fmap"], macs=st["macs"], params=st["params"],
                   teacher_arch=validate(Arch.from_dict(te["arch"]), space), teacher_acc=float(te["best_acc"]),
                   teacher_onehot=te["onehot"], teacher_fmap=te["fmap"],
                   teacher_ckpt=str(task.get("teacher_ckpt") or ""), teacher_digest=str(te.get("proxy_digest") or ""),
                   noise_seed=int(d["noise_seed"]), remap=str(d.get("remap", "copy_paste_first")),
                   dataset_feats=d.get("dataset_feats"), recipe=d.get("recipe"))

    def __len__(self) -> int:
        return len(self.archs)

    def label(self, label: str) -> torch.Tensor:
        """The students' accuracy ``label`` (percent, ``N``, as stored)."""
        return self.labels[check_label(label)]

    def accuracy(self, label: str) -> np.ndarray:
        """The students' accuracy ``label`` as a new float64 array."""
        return self.label(label).double().cpu().numpy()

    def seed_accuracies(self, label: str = "best_acc") -> torch.Tensor:
        """``N x S`` per-seed accuracies (v1 files: the label itself as one seed)."""
        seeds = self.labels.get(f"{check_label(label)}_seeds")
        return seeds if seeds is not None else self.labels[label][:, None]


def load_saved_tasks(root, splits=META_SPLITS) -> dict[str, list[SavedTask]]:
    """:func:`~dass.database.format.load_db` as saved tasks: ``{split: [SavedTask, ...]}``."""
    return {s: [SavedTask.from_db(d) for d in ds] for s, ds in load_db(root, splits).items()}
