"""Training recipes: the hyper-parameters of a teacher run and of a KD run, as typed dataclasses.

The defaults are the paper's (REFERENCE.md, "KD" and "Teachers"); ``configs/{teacher,kd}/*.yaml``
hold the profiles. Learning rates follow a per-step cosine from ``lr`` to 0 over ``epochs`` epochs.
``batch_size`` is the global batch: under ``torchrun`` each of the ``W`` processes takes
``batch_size / W`` images per step.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DassError


@dataclass
class Recipe:
    """What a teacher run and a KD run share: optimiser, schedule, augmentation, validation."""

    epochs: int = 50  # training epochs
    batch_size: int = 64  # global batch size (split over torchrun processes)
    lr: float = 0.05  # peak learning rate (per-step cosine decay to 0)
    momentum: float = 0.9  # SGD momentum
    nesterov: bool = True  # Nesterov momentum
    weight_decay: float = 3e-5  # L2 weight decay
    eval_every: int = 5          # validate on the test split every N epochs, and after the last
    eval_batch_size: int = 256  # batch size of validation
    crop_pad: int | None = None  # random-crop padding in pixels; None = image_size // 8
    flip: bool = True  # random horizontal flips
    mean: float = 0.5            # input normalisation, the same for the three channels
    std: float = 0.5  # input normalisation: (x - mean) / std

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.momentum < 1, "momentum must lie in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.crop_pad is None or self.crop_pad >= 0, "crop_pad must be >= 0"),
            (self.std > 0, "std must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise DassError(f"recipe: {msg}")

    def validates_after(self, epoch: int) -> bool:
        """True when the test split is evaluated after ``epoch`` (1-based) epochs."""
        return epoch % self.eval_every == 0 or epoch == self.epochs


@dataclass
class TeacherRecipe(Recipe):
    """Teacher: cross-entropy with label smoothing (paper: 180 epochs, smoothing 0.1)."""

    epochs: int = 180
    label_smoothing: float = 0.1  # label smoothing of the cross-entropy

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.label_smoothing < 1:
            raise DassError("recipe: label_smoothing must lie in [0, 1)")


@dataclass
class KDRecipe(Recipe):
    """Knowledge distillation: ``(1-alpha) T^2 softCE(s/T, t/T) + alpha CE`` (paper: alpha 0.5, T 6).

    ``alpha = 1`` trains on the labels alone (the teacher is then not run).
    """

    epochs: int = 50
    alpha: float = 0.5  # weight of the label cross-entropy (1 - alpha on the teacher's soft targets)
    temperature: float = 6.0  # softmax temperature of the distillation term

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.alpha <= 1:
            raise DassError("recipe: alpha must lie in [0, 1]")
        if self.temperature <= 0:
            raise DassError("recipe: temperature must be > 0")
