"""Training: recipes, losses, the shared training loop (teachers and KD), lockstep multi-student KD
and the DistributedDataParallel helpers."""
from .distributed import DistContext, init_distributed, resolve_device, single_process
from .lockstep import kd_train_many
from .losses import kd_loss, smoothed_cross_entropy, soft_cross_entropy
from .recipe import KDRecipe, Recipe, TeacherRecipe
from .trainer import Learner, evaluate, fit, kd_train, train_teacher

__all__ = [
    "Recipe", "KDRecipe", "TeacherRecipe", "kd_loss", "soft_cross_entropy", "smoothed_cross_entropy",
    "Learner", "fit", "evaluate", "kd_train", "kd_train_many", "train_teacher",
    "DistContext", "init_distributed", "single_process", "resolve_device",
]
