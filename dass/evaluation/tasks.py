"""Access to a database task dict (:mod:`dass.database.format`) as the evaluation reads it: its key,
space, student architectures, student count and true accuracies."""
from __future__ import annotations

import numpy as np

from .. import config as cfgmod
from ..database.splits import LABELS
from ..errors import DassError
from ..space import Arch, SpaceConfig


def task_key(task: dict) -> str:
    return str(task["task"]["key"])


def task_space(task: dict) -> SpaceConfig:
    return cfgmod.from_dict(SpaceConfig, dict(task["space"]), where=f"task {task_key(task)} (space)")


def task_archs(task: dict) -> list[Arch]:
    return [Arch.from_dict(a) for a in task["students"]["arch"]]


def num_students(task: dict) -> int:
    return len(task["students"]["arch"])


def true_accuracy(task: dict, label: str) -> np.ndarray:
    if label not in LABELS:
        raise DassError(f"label must be one of {list(LABELS)}, got {label!r}")
    return task["students"][label].double().cpu().numpy()
