"""What KD of students from one teacher needs besides the students and the seed (:class:`KDSetting`):
read by the lockstep runner (:func:`dass.train.kd_train_many`) and the student builder
(:func:`dass.train.trainer.kd_learner`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.arrays import ImageArrays
from ..space import SpaceConfig
from .distributed import DistContext
from .recipe import KDRecipe


@dataclass
class KDSetting:
    """What KD of students from one teacher needs besides the students and the seed: the task (space,
    teacher weights, data), the recipe, how the students' initial weights are taken from the teacher
    (``remap``) and where and how it runs. ``logit_cache`` (a folder) takes the teacher's logits from
    the cache there, computing and writing it first when missing or invalid
    (:mod:`dass.train.logit_cache`); the results are the same as without it. When another process is
    writing that cache, ``wait_for_cache=False`` runs the teacher live instead of waiting."""

    space: SpaceConfig
    teacher_sd: dict
    train: ImageArrays
    test: ImageArrays
    recipe: KDRecipe
    remap: str = "copy_paste_first"
    device: str = "auto"
    progress: bool = False
    ctx: DistContext | None = None   # a torchrun context; None: one process on ``device``
    logit_cache: str | Path | None = None
    wait_for_cache: bool = True
